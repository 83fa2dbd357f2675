"""Accumulating predictions against ground truth over a dataset split, and the evaluation report
(JSON numbers + PCK curve image)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import joints as jm
from . import objects as om

SIDES = ("right", "left")
PCK_MAX_MM = 50.0


@dataclass
class HandObjectAccumulator:
    """Collects per-frame predicted and ground-truth hands (canonical (21, 3), metres, camera frame)
    and objects, then computes the benchmark metrics in millimetres / degrees / percent."""

    pred: dict = field(default_factory=lambda: {s: [] for s in SIDES})
    gt: dict = field(default_factory=lambda: {s: [] for s in SIDES})
    valid: dict = field(default_factory=lambda: {s: [] for s in SIDES})
    interacting: dict = field(default_factory=lambda: {s: [] for s in SIDES})
    presence: list = field(default_factory=list)       # (predicted present, labelled) per frame and side
    relative_roots: list = field(default_factory=list)  # (pred L-R, gt L-R) metres
    object_errors: list = field(default_factory=list)   # dicts per matched object
    objects_missed: int = 0                             # labelled objects with no estimate of their id

    def add_frame(self, estimate, hands: dict, objects=(), interacting: bool = False) -> None:
        """Score one `inference.HandObjectEstimate` against one frame's labels (the one scoring path of the
        evaluation CLI and the demo's recorder).

        hands: side -> `datasets.HandLabel` (canonical (21, 3) joints, metres, camera frame; labels that
        are `root_only` are not scored); objects: [`datasets.ObjectLabel`]. Each side: a labelled hand is
        scored when estimated present (else it counts as missed), an unlabelled side counts for presence
        only; MRRPE when both sides are labelled and estimated. Each labelled object is compared with the
        estimated object of the same catalogue id (the most confident one if several), over the object's
        symmetries (`ObjectLabel.symmetry_record`); a labelled object with no estimate of its id counts in
        `objects_missed`. Estimated objects of ids not labelled are not scored.
        """
        predicted = {h.side: h for h in estimate.hands if h.present}
        for side in SIDES:
            label = hands.get(side)
            if label is None:
                self.add_absent_hand(side in predicted)
            elif not label.root_only:
                hand = predicted.get(side)
                self.add_hand(side, None if hand is None else hand.joints_xyz, label.joints_cam, label.joints_valid,
                              interacting)
        if all(s in predicted for s in SIDES) and all(s in hands for s in SIDES):
            self.add_relative_root(predicted["right"].joints_xyz[0], predicted["left"].joints_xyz[0],
                                   hands["right"].joints_cam[0], hands["left"].joints_cam[0])
        for label in objects:
            match = match_object(estimate.objects, label.object_id)
            if match is None:
                self.objects_missed += 1
                continue
            points = None
            if match.vertices is not None:  # object-frame model points from the posed mesh
                points = (np.asarray(match.vertices) - match.translation) @ np.asarray(match.rotation)
            self.add_object((match.rotation, match.translation), (label.rotation, label.translation), points,
                            om.symmetries_of(label.symmetry_record()))

    def add_hand(self, side: str, predicted, gt_joints, gt_valid, interacting: bool) -> None:
        """predicted: (21, 3) or None when the model reported the hand absent."""
        self.presence.append((predicted is not None, True))
        if predicted is None:
            return
        self.pred[side].append(np.asarray(predicted, np.float64))
        self.gt[side].append(np.asarray(gt_joints, np.float64))
        self.valid[side].append(np.asarray(gt_valid, bool))
        self.interacting[side].append(bool(interacting))

    def add_absent_hand(self, predicted_present: bool) -> None:
        """A side that is not labelled in the frame (counts for presence accuracy only)."""
        self.presence.append((bool(predicted_present), False))

    def add_relative_root(self, pred_right, pred_left, gt_right, gt_left) -> None:
        self.relative_roots.append((np.asarray(pred_left) - np.asarray(pred_right),
                                    np.asarray(gt_left) - np.asarray(gt_right)))

    def add_object(self, pred_pose, gt_pose, model_points=None, symmetries=None) -> None:
        """Poses (R (3, 3) camera <- object, t (3,) metres); model_points (V, 3) object frame, metres, for
        MSSD and ADD-S; symmetries (S, 3, 3) (`objects.symmetry_rotations`, None = none) for the rotation
        error and MSSD."""
        entry = {"translation_error_mm": 1000.0 * float(np.linalg.norm(np.asarray(pred_pose[1]) - gt_pose[1])),
                 "rotation_error_deg": om.rotation_error_deg(pred_pose[0], gt_pose[0], symmetries)}
        if model_points is not None:
            entry["mssd_mm"] = 1000.0 * om.mssd(model_points, pred_pose, gt_pose, symmetries)
            entry["add_s_mm"] = 1000.0 * om.add_s(model_points, pred_pose, gt_pose)
        self.object_errors.append(entry)

    def _stack(self, side):
        if not self.pred[side]:
            return None
        return (np.stack(self.pred[side]) * 1000.0, np.stack(self.gt[side]) * 1000.0,
                np.stack(self.valid[side]), np.array(self.interacting[side]))

    def summary(self) -> dict:
        out: dict = {"hands": {}, "counts": {}}
        all_errors = []
        for side in SIDES:
            stacked = self._stack(side)
            out["counts"][f"{side}_hands"] = 0 if stacked is None else len(stacked[0])
            if stacked is None:
                continue
            pred, gt, valid, inter = stacked
            split = jm.interhand_mpjpe(pred, gt, valid, inter)
            errors = jm.joint_errors(pred, gt)
            keep = valid & valid[:, :1]
            all_errors.append(errors[keep])
            out["hands"][side] = {
                "mpjpe_mm": jm.mpjpe(pred, gt, valid),
                "mpjpe_single_mm": split.single, "mpjpe_interacting_mm": split.interacting,
                "pa_mpjpe_mm": jm.aligned_error(pred, gt, valid, "procrustes"),
                "st_aligned_error_mm": jm.aligned_error(pred, gt, valid, "scale_translation"),
            }
        if all_errors:
            errors = np.concatenate(all_errors)
            auc, thresholds, pck = jm.auc_pck(errors, PCK_MAX_MM)
            out["mpjpe_mm"] = float(errors.mean())
            out["auc_pck_0_50mm"] = auc
            out["pck_curve"] = {"thresholds_mm": thresholds.tolist(), "pck": pck.tolist()}
        if self.relative_roots:
            pred_rel = np.array([p for p, _ in self.relative_roots])
            gt_rel = np.array([g for _, g in self.relative_roots])
            out["mrrpe_mm"] = 1000.0 * jm.mrrpe(np.zeros_like(pred_rel), pred_rel, np.zeros_like(gt_rel), gt_rel)
        if self.presence:
            flags = np.array(self.presence, bool)
            out["hand_presence_accuracy"] = float((flags[:, 0] == flags[:, 1]).mean())
        if self.object_errors:
            keys = self.object_errors[0].keys()
            out["objects"] = {k: float(np.mean([e[k] for e in self.object_errors if k in e])) for k in keys}
            out["objects_median"] = {k: float(np.median([e[k] for e in self.object_errors if k in e])) for k in keys}
            out["counts"]["objects"] = len(self.object_errors)
        if self.objects_missed:
            out["counts"]["objects_missed"] = self.objects_missed
        if self.object_errors or self.objects_missed:
            out["objects_median_all"] = self._median_over_every_object()
        return out

    def _median_over_every_object(self) -> dict:
        """Translation (mm) and rotation (deg) medians over every labelled object, a missed one (no estimate of its
        id) counting as an infinite error: None where half or more were missed. The default model's object target
        reads them so: the medians of those estimated alone (`objects_median`) say nothing of the objects never
        reported."""
        out = {}
        for key in ("translation_error_mm", "rotation_error_deg"):
            errors = [e[key] for e in self.object_errors] + [np.inf] * self.objects_missed
            median = float(np.median(errors))
            out[key] = median if np.isfinite(median) else None
        return out


def match_object(estimated, object_id: str):
    """The estimated object (`inference.ObjectEstimate`) of catalogue id `object_id`, the most confident one
    when several carry it; None when none does."""
    candidates = [o for o in estimated if o.object_id == object_id]
    return max(candidates, key=lambda o: o.confidence) if candidates else None


def write_report(summary: dict, out_dir: str | Path, meta: dict) -> Path:
    """Writes OUT/report.json and OUT/pck.png (when a PCK curve exists); returns the JSON path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.json"
    path.write_text(json.dumps({**meta, **summary}, indent=1))
    if "pck_curve" in summary:
        plot_pck(summary["pck_curve"]["thresholds_mm"], summary["pck_curve"]["pck"], out_dir / "pck.png",
                 title=f"3D PCK (root-aligned), AUC 0-{PCK_MAX_MM:.0f} mm = {summary['auc_pck_0_50mm']:.3f}")
    return path


def plot_pck(thresholds, pck, path: str | Path, title: str = "", size=(640, 480)) -> Path:
    """A PCK curve as a PNG drawn with OpenCV (no plotting library needed)."""
    import cv2

    width, height = size
    left, right, top, bottom = 70, 20, 40, 50
    canvas = np.full((height, width, 3), 255, np.uint8)
    x0, x1, y0, y1 = left, width - right, height - bottom, top
    cv2.rectangle(canvas, (x0, y1), (x1, y0), (0, 0, 0), 1)
    t = np.asarray(thresholds, float)
    p = np.asarray(pck, float)
    span = t.max() if t.max() > 0 else 1.0
    for k in range(6):  # grid and tick labels
        gx = int(x0 + (x1 - x0) * k / 5)
        gy = int(y0 + (y1 - y0) * k / 5)
        cv2.line(canvas, (gx, y0), (gx, y1), (225, 225, 225), 1)
        cv2.line(canvas, (x0, gy), (x1, gy), (225, 225, 225), 1)
        cv2.putText(canvas, f"{span * k / 5:.0f}", (gx - 10, y0 + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
        cv2.putText(canvas, f"{k / 5:.1f}", (x0 - 40, gy + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    points = np.stack([x0 + (x1 - x0) * t / span, y0 + (y1 - y0) * np.nan_to_num(p)], axis=1).astype(np.int32)
    cv2.polylines(canvas, [points], False, (200, 60, 20), 2, cv2.LINE_AA)
    cv2.putText(canvas, "error threshold (mm)", (x0 + 150, height - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    cv2.putText(canvas, title, (x0, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    cv2.imwrite(str(path), canvas)
    return Path(path)
