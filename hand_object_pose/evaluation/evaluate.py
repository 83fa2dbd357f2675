"""Evaluate a model through the shared inference pipeline on a dataset split.

    python -m hand_object_pose.evaluation.evaluate --model kpt_h2o3d_3d --model-path M.onnx \\
        --dataset h2o3d --root /data/H2O3D --split evaluation --out reports/h2o3d [--limit 500]

Every frame goes through `inference.Estimator` exactly as on the robot, with the crop taken from the
ground-truth hand box (`--crop gt`, the papers' protocol) or chosen by the pipeline itself
(`--crop pipeline`). Writes OUT/report.json (root-aligned MPJPE per hand and for single / interacting
frames, PA-MPJPE, scale+translation-aligned error, AUC of PCK 0-50 mm, MRRPE, hand-presence accuracy,
object errors) and OUT/pck.png.

    python -m hand_object_pose.evaluation.evaluate --mean-pose-baseline /data/hop_synthetic/train \
        --dataset synthetic --root /data/hop_synthetic/test --split test --out reports/baseline

scores the trivial baseline (`baseline.MeanPoseBaseline`: the training split's mean labels for every
frame) the same way, for the "did the model learn anything" comparison.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from hand_object_pose.geometry.camera import box_around_points

from .baseline import MeanPoseBaseline
from .report import SIDES, HandObjectAccumulator, write_report


def ground_truth_box(sample) -> np.ndarray | None:
    """Square x1.25 box around the projected labelled joints (or the dataset's own hand box)."""
    if sample.hand_box is not None:
        return np.asarray(sample.hand_box, float)
    K = np.asarray(sample.intrinsics, float)
    points = []
    for hand in sample.hands.values():
        cam = hand.joints_cam[hand.joints_valid].astype(float)
        if len(cam):
            points.append(cam[:, :2] / cam[:, 2:] * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]])
    return box_around_points(np.concatenate(points), enlarge=1.0) if points else None


def evaluate_dataset(estimator, reader, limit: int = 0, crop: str = "gt", progress: bool = False,
                     independent_frames: bool | None = None) -> dict:
    """Run `estimator` on (the first `limit` of) `reader`'s samples and return the metric summary.
    `independent_frames` (default: with the ground-truth crop) forgets the previous frame before each
    one; leave it off for video splits evaluated with the pipeline's own (tracked) crop."""
    if independent_frames is None:
        independent_frames = crop == "gt"
    acc = HandObjectAccumulator()
    count = len(reader) if not limit else min(limit, len(reader))
    for index in range(count):
        sample = reader[index]
        if independent_frames:
            estimator.reset_tracking()  # no tracking across unrelated frames
        roi = ground_truth_box(sample) if crop == "gt" else None
        result = estimator.estimate(sample.load_image(), np.asarray(sample.intrinsics, float), roi=roi)
        predicted = {h.side: h for h in result.hands if h.present}
        for side in SIDES:
            label = sample.hands.get(side)
            if label is None:
                acc.add_absent_hand(side in predicted)
            elif not label.root_only:
                hand = predicted.get(side)
                acc.add_hand(side, None if hand is None else hand.joints_xyz, label.joints_cam, label.joints_valid,
                             sample.interacting)
        if all(s in predicted for s in SIDES) and all(s in sample.hands for s in SIDES):
            acc.add_relative_root(predicted["right"].joints_xyz[0], predicted["left"].joints_xyz[0],
                                  sample.hands["right"].joints_cam[0], sample.hands["left"].joints_cam[0])
        for obj in sample.objects:
            match = next((o for o in result.objects), None)
            if match is not None:
                points = None
                if match.vertices is not None:  # object-frame model points from the posed mesh
                    points = (np.asarray(match.vertices) - match.translation) @ np.asarray(match.rotation)
                acc.add_object((match.rotation, match.translation), (obj.rotation, obj.translation), points)
        if progress:
            print(f"\r{index + 1}/{count}", end="", file=sys.stderr)
    if progress:
        print(file=sys.stderr)
    summary = acc.summary()
    summary["counts"]["frames"] = count
    return summary


def main(argv=None) -> int:
    from hand_object_pose.inference.estimator import Estimator, EstimatorConfig
    from hand_object_pose.datasets.registry import READERS, build_reader

    parser = argparse.ArgumentParser(prog="python -m hand_object_pose.evaluation.evaluate",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model preset, e.g. kpt_h2o3d_3d (not with --mean-pose-baseline)")
    parser.add_argument("--model-path", default="", help=".onnx (onnxruntime) or checkpoint (torch)")
    parser.add_argument("--backend", default="onnxruntime", choices=("onnxruntime", "torch"))
    parser.add_argument("--dataset", required=True, choices=READERS)
    parser.add_argument("--root", required=True)
    parser.add_argument("--split", required=True)
    parser.add_argument("--out", required=True, help="report folder")
    parser.add_argument("--crop", default="gt", choices=("gt", "pipeline"))
    parser.add_argument("--limit", type=int, default=0, help="evaluate only the first N frames")
    parser.add_argument("--mean-pose-baseline", metavar="TRAIN_ROOT", default="",
                        help="score the trivial baseline instead of a model: the mean labels of the training "
                             "split at TRAIN_ROOT (same --dataset), the same answer for every frame")
    parser.add_argument("--baseline-split", default="train", help="split name of TRAIN_ROOT (default train)")
    args = parser.parse_args(argv)
    if bool(args.model) == bool(args.mean_pose_baseline):
        parser.error("give exactly one of --model and --mean-pose-baseline")
    try:
        reader = build_reader({"type": args.dataset, "root": args.root, "split": args.split})
        if args.mean_pose_baseline:
            estimator = MeanPoseBaseline.fit(build_reader({"type": args.dataset, "root": args.mean_pose_baseline,
                                                           "split": args.baseline_split}))
            args.model = estimator.model
        else:
            estimator = Estimator(EstimatorConfig(model=args.model, backend=args.backend, model_path=args.model_path,
                                                  crop_source="roi" if args.crop == "gt" else "auto"))
    except (ValueError, FileNotFoundError) as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 2
    summary = evaluate_dataset(estimator, reader, args.limit, args.crop, progress=True)
    path = write_report(summary, args.out, {"model": args.model, "backend": estimator.backend_in_use,
                                            "dataset": args.dataset, "split": args.split, "crop": args.crop})
    print(f"wrote {path}")
    print({k: v for k, v in summary.items() if k not in ("pck_curve",)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
