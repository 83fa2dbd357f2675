"""Training task of the per-hand 2.5D heat-map network (`hand_heatmap`): crops, targets, loss, metrics.

One training example is one crop: a square box around ONE hand's 2D joints (left hands mirrored
horizontally, so the network only sees right hands), around the object's projected box corners, or the
whole letterboxed frame (the Estimator's coarse pass: both hands, the object, hand presence).
Targets on the H x H heat-map grid (H = config.heatmap_size, stride s = S / H crop pixels; crop pixel
u <-> grid coordinate g = (u + 0.5) / s - 0.5, cell i's centre at g = i):
  - heat-maps: a Gaussian of sigma 1 cell around each point, normalised to sum 1; loss = softmax
    cross-entropy of the point's logits against it (points outside the grid are left out);
  - relative depth: camera z minus the wrist's (hand) or the object centre's (object), metres; loss =
    L1 of the predicted depth map read at the point's ground-truth cell, weight `depth_weight` (10).
  - object segmentation (a network with that head, config.object_segmentation): on object crops, each
    heat-map cell's share of object pixels (the renderer's object mask) as the soft target of softmax
    cross-entropy over [background, classes], weight `segmentation_weight`.
Object poses are made symmetry-canonical before the corners are computed (`canonical_rotation`), so
symmetric objects have one label per view.

The shared epoch engine (training.engine) feeds whole-frame crops; this family trains with its own
per-crop loop, `training.hand_heatmap_run`, which uses the pieces below.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hand_object_pose.geometry.camera import box_around_points, compose_affines, crop_affine, invert_affine, \
    apply_affine, warp_image
from hand_object_pose.models.hand_heatmap.config import FRAME_CHANNELS, HAND_CHANNELS, NUM_FRAME_POINTS, \
    NUM_HAND_JOINTS, NUM_OBJECT_POINTS, OBJECT_CHANNELS

from hand_object_pose.models.weights_file import load_weights, read_weights_file

from ..landmark_weights import load_landmark_lite_weights
from . import task_for
from .base import TrainingTask

HAND, OBJECT, FRAME = 0, 1, 2
"""Crop kinds: one hand (channels 0-20), the object (21-29), the whole frame = coarse pass (30-80)."""

KIND_CHANNELS = {HAND: HAND_CHANNELS, OBJECT: OBJECT_CHANNELS, FRAME: FRAME_CHANNELS}

def mirror_affine(size: int) -> np.ndarray:
    """2x3 affine of a horizontal mirror of an S-pixel crop (pixel centres at integers): u -> S - 1 - u."""
    return np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0]])


def crop_box(uv: np.ndarray, enlarge: float = 1.25, min_size: float = 48.0) -> np.ndarray:
    """Square box (x0, y0, side, side) around 2D points (P, 2) image px, enlarged, side >= min_size:
    the same box the Estimator tracks (inference.crops.box_around_keypoints)."""
    box = box_around_points(uv, enlarge=enlarge)
    side = max(float(box[2]), float(min_size))
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    return np.array([cx - side / 2, cy - side / 2, side, side])


def canonical_rotation(rotation: np.ndarray, symmetry: Optional[dict]) -> np.ndarray:
    """One representative of an object's symmetric poses (camera <- object rotation (3, 3)): the one closest
    to the camera's axes, so that a view has one label.

    Symmetry about the object's z axis ("continuous", or "discrete" of order n): the object is turned
    about its z axis by the angle (continuous) or the multiple of 2 pi / n (discrete) that brings its x
    axis closest to the camera's x axis; with a `flip_axis` (x or y) the upside-down pose is made so too and
    the one closer to the camera's axes (larger trace) is kept. "spherical": the camera's axes (identity).
    Other symmetries are left as they are.
    """
    r = np.asarray(rotation, np.float64)
    kind = (symmetry or {}).get("kind")
    if kind == "spherical":
        return np.eye(3)
    if kind not in ("continuous", "discrete"):
        return r
    if tuple(np.round(symmetry.get("axis", (0, 0, 1)), 6)) != (0.0, 0.0, 1.0):
        return r
    candidates = [_turned_about_z(r, symmetry)]
    flip = symmetry.get("flip_axis")
    if flip is not None and abs(float(np.asarray(flip, np.float64)[2])) < 1e-6:
        half_turn = 2.0 * np.outer(flip, flip) / float(np.dot(flip, flip)) - np.eye(3)   # 180 deg about flip
        candidates.append(_turned_about_z(r @ half_turn, symmetry))
    return max(candidates, key=np.trace)


def _turned_about_z(r: np.ndarray, symmetry: dict) -> np.ndarray:
    """r turned about the object's z axis (by the symmetry's allowed angles) so its x axis is closest to the
    camera's."""
    a = r.T @ np.array([1.0, 0.0, 0.0])        # camera x in object coordinates
    best = math.atan2(a[1], a[0])
    if symmetry["kind"] == "discrete":
        step = 2 * math.pi / int(symmetry.get("order", 2))
        best = round(best / step) * step
    c, s = math.cos(best), math.sin(best)
    return r @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def object_points(rotation, translation, corners_rest) -> np.ndarray:
    """(9, 3) camera-frame points of an object: its 8 box corners (corners_rest order) and their centre."""
    corners = np.asarray(corners_rest, np.float64)
    pts = np.concatenate([corners, corners.mean(axis=0, keepdims=True)])
    return pts @ np.asarray(rotation, np.float64).T + np.asarray(translation, np.float64)


def project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(P, 3) camera points -> (P, 2) pixels with a 3x3 K."""
    p = points @ np.asarray(K, np.float64).T
    return p[:, :2] / p[:, 2:3]


@dataclass
class CropExample:
    """One training crop. image (S, S, 3) uint8 RGB; kind HAND / OBJECT / FRAME; uv (P, 2) crop px;
    rel_depth (P,) metres (depth minus the group root's); valid (P,) bool; points_cam (P, 3) metres camera
    frame (for metrics); presence (3,) [right, left, object] (FRAME crops); object_class: index into
    config.object_ids of the crop's object, -1 none / unknown; affine (2, 3) image -> crop (mirror
    included); mirrored; K (3, 3) of the full image; side_target (HAND crops trained for handedness): 1 the
    crop shows a right hand (a right hand, or a left hand mirrored), 0 a left hand (mirrored the wrong way
    round: its points are not valid), -1 not trained. P = 21 (hand), 9 (object), 51 (frame)."""

    image: np.ndarray
    kind: int
    uv: np.ndarray
    rel_depth: np.ndarray
    valid: np.ndarray
    points_cam: np.ndarray
    presence: np.ndarray
    object_class: int
    affine: np.ndarray
    mirrored: bool
    K: np.ndarray
    side_target: float = -1.0
    object_mask: Optional[np.ndarray] = None


def frame_points(hands: dict, obj: Optional[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 51 points of a whole-frame crop: right hand (21), left hand (21), object (9) camera points
    (zeros where absent), their validity (51,) and presence (3,) [right hand, left hand, object]."""
    pts = np.zeros((NUM_FRAME_POINTS, 3))
    valid = np.zeros(NUM_FRAME_POINTS, bool)
    presence = np.zeros(3, np.float32)
    for h, side in enumerate(("right", "left")):
        if side in hands:
            part = slice(h * NUM_HAND_JOINTS, (h + 1) * NUM_HAND_JOINTS)
            pts[part], valid[part], presence[h] = hands[side], True, 1.0
    if obj is not None:
        pts[2 * NUM_HAND_JOINTS:], valid[2 * NUM_HAND_JOINTS:], presence[2] = obj, True, 1.0
    return pts, valid, presence


def group_roots(kind: int) -> np.ndarray:
    """For each point of a crop kind, the index of its group's root (wrist / object centre)."""
    if kind == HAND:
        return np.zeros(NUM_HAND_JOINTS, int)
    if kind == OBJECT:
        return np.full(NUM_OBJECT_POINTS, NUM_OBJECT_POINTS - 1)
    return np.concatenate([np.zeros(NUM_HAND_JOINTS, int), np.full(NUM_HAND_JOINTS, NUM_HAND_JOINTS),
                           np.full(NUM_OBJECT_POINTS, NUM_FRAME_POINTS - 1)])


def make_example(image: np.ndarray, K: np.ndarray, kind: int, points_cam: np.ndarray, mirrored: bool,
                 size: int, rng: Optional[np.random.Generator] = None, shift: float = 0.1, scale: float = 0.15,
                 colour: float = 0.2, valid: Optional[np.ndarray] = None, presence=None,
                 box: Optional[np.ndarray] = None, object_class: int = -1, side_target: float = -1.0,
                 object_mask: Optional[np.ndarray] = None) -> CropExample:
    """Crop one hand (points_cam (21, 3)), the object ((9, 3)) or the whole frame ((51, 3) with `valid`,
    `presence` and `box` = the letterbox square) from the full RGB image (H, W, 3) with optional
    augmentation (rng None: none): box centre shift up to +-`shift` of the side, side x (1 +- `scale`),
    per-channel gain 1 +- `colour`. Half the object crops are wide (side x 1-2, shift +-25 %): the
    Estimator's first object crop comes from the hands' box. side_target: `CropExample.side_target` (0 makes
    every point invalid: the network is not asked where the joints of a hand it should not see are).
    object_mask: (H, W) of the full image, non-zero on the object's pixels (`CropExample.object_mask`)."""
    valid = np.ones(len(points_cam), bool) if valid is None else np.asarray(valid, bool)
    if box is None:
        box = crop_box(project(np.asarray(points_cam, np.float64)[valid], K))
    if side_target == 0.0:
        valid = np.zeros_like(valid)
    safe = np.where(valid[:, None], points_cam, [[0.0, 0.0, 1.0]])
    uv_img = project(safe, K)
    if rng is not None:
        lo, hi, sh = 1.0 - scale, 1.0 + scale, shift
        if kind == OBJECT and rng.random() < 0.5:
            lo, hi, sh = 1.0, 2.0, 0.25
        if kind == FRAME:
            lo, hi, sh = 0.9, 1.1, 0.05
        side = box[2] * rng.uniform(lo, hi)
        cx = box[0] + box[2] / 2 + rng.uniform(-sh, sh) * box[2]
        cy = box[1] + box[3] / 2 + rng.uniform(-sh, sh) * box[2]
        box = np.array([cx - side / 2, cy - side / 2, side, side])
    affine = crop_affine(box, size)
    if mirrored:
        affine = compose_affines(mirror_affine(size), affine)
    crop = warp_image(image, affine, size)
    if rng is not None and colour > 0:
        gain = rng.uniform(1 - colour, 1 + colour, size=3)
        crop = np.clip(crop.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    rel = safe[:, 2] - safe[group_roots(kind), 2]
    mask = None if object_mask is None else warp_image((np.asarray(object_mask) > 0).astype(np.float32), affine, size)
    return CropExample(crop, kind, apply_affine(uv_img, affine).astype(np.float32), rel.astype(np.float32), valid,
                       safe.astype(np.float32), np.zeros(3, np.float32) if presence is None else
                       np.asarray(presence, np.float32), int(object_class), affine, mirrored, np.asarray(K, np.float64),
                       float(side_target), mask)


def collate_examples(examples: list[CropExample]) -> dict:
    """image (N, 3, S, S) float [0, 1]; kind (N,) int64; uv (N, 51, 2) crop px, rel_depth (N, 51) m and
    valid (N, 51) bool, hand / object crops padded with valid False; presence (N, 3) float; object_class
    (N,) int64 (-1: none); side_target (N,) float (`CropExample.side_target`); object_mask (N, S, S) float and
    object_mask_valid (N,) bool (crops without a mask: zeros, False)."""
    n = len(examples)
    images = np.stack([e.image for e in examples]).astype(np.float32) / 255.0
    uv = np.zeros((n, NUM_FRAME_POINTS, 2), np.float32)
    depth = np.zeros((n, NUM_FRAME_POINTS), np.float32)
    valid = np.zeros((n, NUM_FRAME_POINTS), bool)
    for i, e in enumerate(examples):
        p = len(e.uv)
        uv[i, :p], depth[i, :p], valid[i, :p] = e.uv, e.rel_depth, e.valid
    size = images.shape[1]
    masks = np.stack([e.object_mask if e.object_mask is not None else np.zeros((size, size), np.float32)
                      for e in examples])
    return {"object_mask": torch.from_numpy(masks.astype(np.float32)),
            "object_mask_valid": torch.tensor([e.object_mask is not None for e in examples]),
            "image": torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))),
            "kind": torch.tensor([e.kind for e in examples], dtype=torch.int64),
            "uv": torch.from_numpy(uv), "rel_depth": torch.from_numpy(depth), "valid": torch.from_numpy(valid),
            "presence": torch.from_numpy(np.stack([e.presence for e in examples])),
            "object_class": torch.tensor([e.object_class for e in examples], dtype=torch.int64),
            "side_target": torch.tensor([e.side_target for e in examples], dtype=torch.float32)}


def heatmap_targets(uv: torch.Tensor, size: int, grid: int, sigma: float = 1.0):
    """uv (N, P, 2) crop px -> (targets (N, P, grid*grid) Gaussians normalised to sum 1, inside (N, P) bool:
    the point lies on the grid, cell (N, P) int64: the flat index of its nearest cell)."""
    stride = size / grid
    g = (uv + 0.5) / stride - 0.5
    cells = torch.arange(grid, dtype=uv.dtype)
    dx = (cells.view(1, 1, 1, grid) - g[..., 0:1, None]) ** 2
    dy = (cells.view(1, 1, grid, 1) - g[..., 1:2, None]) ** 2
    target = torch.exp(-(dx + dy) / (2 * sigma ** 2)).flatten(2)
    inside = (g > -0.5).all(-1) & (g < grid - 0.5).all(-1)
    target = target / target.sum(-1, keepdim=True).clamp_min(1e-12)
    ij = g.round().clamp(0, grid - 1).long()
    return target, inside, ij[..., 1] * grid + ij[..., 0]


def segmentation_targets(object_mask: torch.Tensor, object_class: torch.Tensor, classes: int,
                         grid: int) -> torch.Tensor:
    """object_mask (N, S, S) in [0, 1], object_class (N,) int64 (>= 0) -> (N, 1 + classes, grid, grid) soft
    targets: each cell's share of object pixels on its class's channel, the rest on background (channel 0)."""
    share = F.adaptive_avg_pool2d(object_mask[:, None].float(), grid)[:, 0]
    target = torch.zeros(len(share), 1 + classes, grid, grid)
    target[:, 0] = 1.0 - share
    target[torch.arange(len(share)), 1 + object_class] = share
    return target


def heatmap_loss(logits: torch.Tensor, depth: torch.Tensor, presence: torch.Tensor, object_class: torch.Tensor,
                 segmentation: Optional[torch.Tensor], batch: dict, size: int, depth_weight: float = 10.0,
                 object_weight: float = 1.0, frame_weight: float = 1.0, side_weight: float = 1.0,
                 segmentation_weight: float = 1.0) -> dict:
    """Cross-entropy heat-map loss + depth_weight x L1 relative depth read at the ground-truth cell, per
    crop kind on its channels (KIND_CHANNELS), + binary cross-entropy of the presence logits on frame crops
    + cross-entropy of the object class logits on crops with a known object class + side_weight x binary
    cross-entropy of the right / left presence logits on hand crops with a side target (handedness: [1, 0]
    for a crop that shows a right hand, [0, 1] for a left hand, one mirrored the wrong way round)
    + segmentation_weight x the soft cross-entropy of the segmentation logits on object crops with a mask and
    a class (`segmentation_targets`).

    logits, depth: (N, 81, H, H); presence: (N, 3) logits; object_class: (N, C) logits; segmentation:
    (N, 1 + C, H, H) logits or None (no such head); batch: `collate_examples`. Returns scalars {"total",
    "heatmap", "depth" (hand crops), "object", "frame", "presence", "object_class", "side", "segmentation"}.
    """
    grid = logits.shape[-1]
    kind = batch["kind"]
    out = {}
    totals = []
    for k, weight in ((HAND, 1.0), (OBJECT, object_weight), (FRAME, frame_weight)):
        rows = (kind == k).nonzero().flatten()
        if len(rows) == 0:
            continue
        channels = KIND_CHANNELS[k]
        count = channels.stop - channels.start
        lg = logits[rows, channels].float().flatten(2)
        dp = depth[rows, channels].float().flatten(2)
        uv, rel, valid = batch["uv"][rows, :count], batch["rel_depth"][rows, :count], batch["valid"][rows, :count]
        target, inside, cell = heatmap_targets(uv, size, grid)
        mask = (inside & valid).float()
        ce = -(target * F.log_softmax(lg, dim=-1)).sum(-1)
        ce = (ce * mask).sum() / mask.sum().clamp_min(1.0)
        read = dp.gather(2, cell[..., None]).squeeze(-1)
        l1 = ((read - rel).abs() * mask).sum() / mask.sum().clamp_min(1.0)
        part = ce + depth_weight * l1
        if k == HAND:
            out["heatmap"], out["depth"] = ce.detach(), l1.detach()
        elif k == OBJECT:
            out["object"] = part.detach()
        else:
            bce = F.binary_cross_entropy_with_logits(presence[rows].float(), batch["presence"][rows])
            out["frame"], out["presence"] = part.detach(), bce.detach()
            part = part + bce
        totals.append(weight * part)
    labelled = (batch["object_class"] >= 0).nonzero().flatten()
    if len(labelled):
        ce_class = F.cross_entropy(object_class[labelled].float(), batch["object_class"][labelled])
        out["object_class"] = ce_class.detach()
        totals.append(object_weight * ce_class)
    sided = (batch["side_target"] >= 0).nonzero().flatten()
    if len(sided):
        target = batch["side_target"][sided]
        bce_side = F.binary_cross_entropy_with_logits(presence[sided, :2].float(), torch.stack([target, 1 - target], 1))
        out["side"] = bce_side.detach()
        totals.append(side_weight * bce_side)
    masked = (batch["object_mask_valid"] & (batch["object_class"] >= 0)).nonzero().flatten() \
        if segmentation is not None else []
    if len(masked):
        target = segmentation_targets(batch["object_mask"][masked], batch["object_class"][masked],
                                      segmentation.shape[1] - 1, segmentation.shape[-1])
        ce_seg = -(target * F.log_softmax(segmentation[masked].float(), dim=1)).sum(1).mean()
        out["segmentation"] = ce_seg.detach()
        totals.append(segmentation_weight * ce_seg)
    out["total"] = sum(totals)
    return out


def lift_crop_points(uv_crop: np.ndarray, rel_depth: np.ndarray, affine: np.ndarray, K: np.ndarray,
                     root_depth: float) -> np.ndarray:
    """Crop px (P, 2) + relative depth (P,) m + the root's absolute depth (m) -> camera points (P, 3)."""
    uv = apply_affine(uv_crop, invert_affine(affine))
    z = root_depth + rel_depth
    Kinv = np.linalg.inv(K)
    rays = np.concatenate([uv, np.ones((len(uv), 1))], axis=1) @ Kinv.T
    return rays / rays[:, 2:3] * z[:, None]


@task_for("hand_heatmap")
class HandHeatmapTask(TrainingTask):
    """The hand_heatmap task: model building, parameter groups and the loss on `collate_examples` batches.

    Train with `python -m hand_object_pose.training.hand_heatmap_run CONFIG` (per-hand crops from the
    synthetic set held in memory); the shared whole-frame engine cannot feed this network.
    """

    name = "hand_heatmap"

    def __init__(self, family, model_config, augmentation=None, initial_weights: Optional[str] = None,
                 depth_weight: float = 10.0, object_weight: float = 1.0, frame_weight: float = 1.0,
                 side_weight: float = 1.0, backbone_init: Optional[str] = None, segmentation_weight: float = 1.0,
                 **_runner_options):
        from ..augmentation import AugmentationConfig

        super().__init__(family, model_config, augmentation or AugmentationConfig(), initial_weights)
        if backbone_init and model_config.backbone != "landmark_lite":
            raise ValueError(f"backbone_init ({backbone_init}) loads MediaPipe's landmark network, which only the "
                             f"landmark_lite backbone has; this model's backbone is {model_config.backbone!r}")
        self.backbone_init = backbone_init
        self.depth_weight = float(depth_weight)
        self.object_weight = float(object_weight)
        self.frame_weight = float(frame_weight)
        self.side_weight = float(side_weight)
        self.segmentation_weight = float(segmentation_weight)

    def build_model(self) -> nn.Module:
        """The untrained network; its landmark body from `backbone_init` (MediaPipe's landmark network as our ONNX
        conversion, models/hand_detector/hand_landmark_lite.onnx) when given, then `initial_weights` over all."""
        model = self.family.build(self.model_config)
        if self.backbone_init:
            load_landmark_lite_weights(model.backbone, self.backbone_init)
        return self.start_from(model)

    def start_from(self, model: nn.Module) -> nn.Module:
        """`initial_weights` loaded strictly, except that a segmentation head the weights do not have starts
        untrained (an object network grown from one without it: every other tensor must fit)."""
        if not self.initial_weights or model.segmentation is None:
            return super().start_from(model)
        weights = read_weights_file(self.initial_weights)
        if not any(name.startswith("segmentation.") for name in weights.state):
            own = {f"segmentation.{k}": v for k, v in model.segmentation.state_dict().items()}
            print(f"{self.initial_weights}: no segmentation head; it starts untrained", flush=True)
            weights = dataclasses.replace(weights, state={**weights.state, **own})
        load_weights(self.family, model, weights)
        return model

    def parameter_groups(self, model: nn.Module, lr: float) -> list[dict]:
        decay = [p for n, p in model.named_parameters() if p.ndim > 1]
        rest = [p for n, p in model.named_parameters() if p.ndim <= 1]
        return [{"params": decay, "lr": lr}, {"params": rest, "lr": lr, "weight_decay": 0.0}]

    def collate(self, crops: list) -> dict:
        if crops and not isinstance(crops[0], CropExample):
            raise ValueError("hand_heatmap trains on per-hand crops: use python -m "
                             "hand_object_pose.training.hand_heatmap_run CONFIG, not training.train")
        return collate_examples(crops)

    def loss(self, model: nn.Module, batch: dict) -> dict:
        return heatmap_loss(*model(batch["image"]), batch, self.input_size, self.depth_weight, self.object_weight,
                            self.frame_weight, self.side_weight, self.segmentation_weight)

    def evaluate(self, model: nn.Module, batches) -> dict:
        raise ValueError("hand_heatmap is evaluated by training.hand_heatmap_run (held-out per-hand crops)")
