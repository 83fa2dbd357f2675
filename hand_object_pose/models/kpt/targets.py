"""Training targets of Keypoint Transformer (and OccRobNet) built from one batch of ground truth.

Everything here is in the model's native joint order (InterHand2.6M: per hand thumb tip, thumb3,
thumb2, thumb1, then index, middle, ring, pinky tip->base, wrist last at 20; right hand 0-20, left
21-41) and on the 128x128 heat-map grid (the 256-px crop / 2), as the official code trains it:

- hand heat-map: sum over valid joints of Gaussians (sigma 1.25 grid px), scaled by 255;
- 2.5D coordinates: x, y grid px and the depth relative to the parent joint in 128 bins over
  +-0.15 m, `(d / 0.15 + 1) / 2 * 128`;
- token identity labels: a token gets joint id + 1 of the valid ground-truth joint within 3 grid
  px of it, the front-most (smallest camera depth) one when several are; 0 ("no joint") if none;
  object tokens get 43 when the ground-truth segmentation (0..255) at the token exceeds 100, else 0;
- object segmentation target: the object mask scaled to 0..255.

`kpt_targets` is the entry point: canonical-order ground truth in, `KptTargets` out. Labels depend on
where the tokens were sampled, so `token_identity_labels` is called by the criterion with the model's
tokens; `ground_truth_tokens` gives the tokens of the official early-training mode (tokens at the
ground-truth joints plus object samples from the ground-truth segmentation).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from hand_object_pose.geometry import skeleton

from .selection import OBJECT_TOKEN, Peaks, Tokens, assemble_tokens, greedy_peaks

HEATMAP_SIGMA = 1.25          # grid px (official cfg.sigma = 2.5 / 2)
HEATMAP_SCALE = 255.0         # Gaussians and masks are trained at 0..255
DEPTH_HALF_RANGE_M = 0.15     # 2.5D depth bins cover +-150 mm around the parent joint
IDENTITY_RADIUS_PX = 3.0      # gamma: token-to-joint association radius, grid px
OBJECT_LABEL_THRESHOLD = 100.0  # ground-truth segmentation value above which an object token is "object"
OBJECT_SAMPLE_THRESHOLD = 15.0  # official object peak threshold on the segmentation
OBJECT_SAMPLE_RADIUS = 5.0

OFFICIAL_Z_SYMMETRIC_OBJECT_IDS = (3, 4, 6, 10, 21)
"""YCB ids the official object loss treats as symmetric under a 180 deg turn about the object z axis."""
OFFICIAL_HEAVY_OBJECT_IDS = (10, 24)
"""YCB ids whose object losses the official code weights by 4 (potted meat can, bowl)."""

JOINTS_PER_HAND = 21
NUM_JOINTS = 42
RIGHT_WRIST, LEFT_WRIST = 20, 41


def _interhand_parents() -> tuple:
    """Parent of each native joint (42); a wrist is its own parent."""
    parents = []
    for hand in range(2):
        base = hand * JOINTS_PER_HAND
        for finger in range(5):
            for k in range(4):  # 0 tip .. 3 base; the base's parent is the wrist
                j = base + 4 * finger + k
                parents.append(j + 1 if k < 3 else base + 20)
        parents.append(base + 20)
    return tuple(parents)


INTERHAND_PARENTS = _interhand_parents()


@dataclass
class KptTargets:
    """Ground truth of a batch in the model's native order. N = batch, 128 = heat-map grid.

    joint_xy:       (N, 42, 2) joint (x, y) in grid px.
    joint_rel:      (N, 42, 3) joints in the crop camera frame, metres, relative to the reference wrist
                    (the right wrist; the left wrist in samples whose right wrist is not valid).
    joint_valid:    (N, 42) bool.
    joint_2p5d:     (N, 42, 3) x, y grid px and parent-relative depth bin (wrists: bin 64, unused).
    heatmap:        (N, 128, 128) summed 255-scaled Gaussians of the valid joints.
    heatmap_valid:  (N,) bool, samples whose heat-map is supervised.
    rel_trans:      (N, 3) left wrist minus right wrist, metres; rel_trans_valid (N,) both wrists valid.
    hand_type:      (N, 2) float [right present, left present]; hand_type_valid (N,) bool.
    mano_pose:      (N, 32, 3) axis-angle: right global orientation, 15 right MANO joints, then the
                    same for the left hand (crop camera frame), or None; mano_shape (N, 2, 10) betas
                    [right, left] or None; mano_valid (N, 2) bool or None.
    obj_seg:        (N, 128, 128) object mask scaled to 0..255, or None (no object).
    obj_rot:        (N, 3, 3) object rotation (object -> crop camera frame) or None.
    obj_trans:      (N, 3) object origin relative to the reference wrist, metres, or None.
    obj_corners_rest: (N, 8, 3) 3D bounding-box corners in the object frame, metres, or None.
    obj_symmetric:  (N,) bool: the object looks the same after 180 deg about its z axis.
    obj_weight:     (N,) float weight of the object losses (0 = no valid object pose).
    """

    joint_xy: torch.Tensor
    joint_rel: torch.Tensor
    joint_valid: torch.Tensor
    joint_2p5d: torch.Tensor
    heatmap: torch.Tensor
    heatmap_valid: torch.Tensor
    rel_trans: torch.Tensor
    rel_trans_valid: torch.Tensor
    hand_type: torch.Tensor
    hand_type_valid: torch.Tensor
    mano_pose: Optional[torch.Tensor] = None
    mano_shape: Optional[torch.Tensor] = None
    mano_valid: Optional[torch.Tensor] = None
    obj_seg: Optional[torch.Tensor] = None
    obj_rot: Optional[torch.Tensor] = None
    obj_trans: Optional[torch.Tensor] = None
    obj_corners_rest: Optional[torch.Tensor] = None
    obj_symmetric: Optional[torch.Tensor] = None
    obj_weight: Optional[torch.Tensor] = None

    @property
    def has_object(self) -> bool:
        return self.obj_rot is not None


def gaussian_heatmaps(xy: torch.Tensor, valid: torch.Tensor, size: int, sigma: float = HEATMAP_SIGMA,
                      per_joint: bool = False) -> torch.Tensor:
    """255-scaled Gaussians at xy (N, J, 2) grid px on a size x size grid.

    Returns the sum over valid joints (N, size, size), or with `per_joint` one map per joint
    (N, J, size, size) (zero for invalid joints).
    """
    grid = torch.arange(size, dtype=xy.dtype, device=xy.device)
    gx = torch.exp(-0.5 * ((grid - xy[..., 0:1]) / sigma) ** 2)      # (N, J, W)
    gy = torch.exp(-0.5 * ((grid - xy[..., 1:2]) / sigma) ** 2)      # (N, J, H)
    maps = gy[..., :, None] * gx[..., None, :] * valid[..., None, None].to(xy.dtype) * HEATMAP_SCALE
    return maps if per_joint else maps.sum(dim=1)


def gaussian_1d(coords: torch.Tensor, bins: int, sigma: float = HEATMAP_SIGMA) -> torch.Tensor:
    """1D Gaussians (peak 1) at coords (...,) in bin units -> (..., bins)."""
    grid = torch.arange(bins, dtype=coords.dtype, device=coords.device)
    return torch.exp(-0.5 * ((grid - coords[..., None]) / sigma) ** 2)


def parent_relative_depth_bins(joint_rel: torch.Tensor, bins: int = 128) -> torch.Tensor:
    """(N, 42, 3) metres -> (N, 42) depth relative to the parent joint in bins, (d/0.15 + 1)/2 * bins."""
    parents = torch.tensor(INTERHAND_PARENTS, device=joint_rel.device)
    depth = joint_rel[..., 2] - joint_rel[:, parents, 2]
    return (depth / DEPTH_HALF_RANGE_M + 1.0) / 2.0 * bins


def parent_valid(joint_valid: torch.Tensor) -> torch.Tensor:
    """(N, 42) bool -> (N, 42): joint and its parent valid; False for the wrists (no parent)."""
    parents = torch.tensor(INTERHAND_PARENTS, device=joint_valid.device)
    both = joint_valid & joint_valid[:, parents]
    both[:, [RIGHT_WRIST, LEFT_WRIST]] = False
    return both


def token_identity_labels(token_xy: torch.Tensor, token_kind: torch.Tensor, token_valid: torch.Tensor,
                          joint_xy: torch.Tensor, joint_valid: torch.Tensor, joint_depth: torch.Tensor,
                          obj_seg: Optional[torch.Tensor] = None,
                          radius: float = IDENTITY_RADIUS_PX) -> torch.Tensor:
    """Identity class of every token (the official `nearest_match_2djoints`).

    token_xy (N, S, 2) grid px; token_kind (N, S) (43 = object sample); token_valid (N, S) bool;
    joint_xy (N, 42, 2) grid px; joint_valid (N, 42); joint_depth (N, 42) any common depth origin
    (smaller = nearer the camera); obj_seg (N, H, W) 0..255 ground truth, needed for object tokens.
    Returns (N, S) int64: 0 none, 1 + j for joint j, 43 object; 0 for padding (ignored by the loss).
    """
    dist = torch.linalg.vector_norm(token_xy[:, :, None] - joint_xy[:, None], dim=-1)   # (N, S, 42)
    near = (dist <= radius) & joint_valid[:, None]
    depth = torch.where(near, joint_depth[:, None].expand_as(dist), torch.full_like(dist, float("inf")))
    front = depth.argmin(dim=-1)                                                       # first minimum
    labels = torch.where(near.any(dim=-1), front + 1, torch.zeros_like(front))
    is_obj = token_kind == OBJECT_TOKEN
    if bool(is_obj.any()):
        if obj_seg is None:
            raise ValueError("object tokens need the ground-truth object segmentation (obj_seg)")
        h, w = obj_seg.shape[-2:]
        col = token_xy[..., 0].long().clamp(0, w - 1)  # official int() truncation of the token position
        row = token_xy[..., 1].long().clamp(0, h - 1)
        seg = obj_seg.reshape(obj_seg.shape[0], -1).gather(1, row * w + col)
        obj_label = torch.where(seg > OBJECT_LABEL_THRESHOLD, torch.full_like(labels, OBJECT_TOKEN),
                                torch.zeros_like(labels))
        labels = torch.where(is_obj, obj_label, labels)
    return torch.where(token_valid, labels, torch.zeros_like(labels))


def ground_truth_tokens(targets: KptTargets, max_tokens: int = 100, max_object_tokens: int = 50,
                        grid_size: int = 128) -> Tokens:
    """Tokens of the official early-training mode: one per valid joint inside the grid (native
    order), then up to `max_object_tokens` greedy peaks (threshold 15, radius 5) of the ground-truth
    segmentation, then padding. Pass the result as `model(image, tokens=...)`."""
    xy, valid = targets.joint_xy, targets.joint_valid
    n = xy.shape[0]
    inside = valid & (xy >= 0).all(dim=-1) & (xy <= grid_size - 1).all(dim=-1)
    # Pack the valid joints to the front (stable: native order kept), as Peaks expects prefixes.
    order = torch.sort((~inside).to(torch.int8), dim=1, stable=True).indices
    rc = xy.flip(-1).gather(1, order[..., None].expand(n, NUM_JOINTS, 2))
    hand = Peaks(rc, torch.zeros(n, NUM_JOINTS, device=xy.device), inside.gather(1, order))
    obj = None
    if targets.obj_seg is not None:
        obj = greedy_peaks(targets.obj_seg, OBJECT_SAMPLE_THRESHOLD, OBJECT_SAMPLE_RADIUS, max_object_tokens)
    # Float (row, col) pass through assemble_tokens unchanged, so sub-pixel joint positions are kept.
    return assemble_tokens(hand, obj, max_tokens, grid_size)


def _canonical_pair_to_native(x: torch.Tensor, name: str, width: int) -> torch.Tensor:
    """(N, 2, 21, width) canonical [right, left] -> (N, 42, width) native order."""
    if x.dim() != 4 or x.shape[1:] != (2, JOINTS_PER_HAND, width):
        raise ValueError(f"{name} must have shape (N, 2, 21, {width}) (canonical order, [right, left]), "
                         f"got {tuple(x.shape)}")
    return skeleton.canonical_to_interhand(x.reshape(x.shape[0], NUM_JOINTS, width))


def official_object_weights(obj_ids: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per-sample object-loss weights as the official code sets them: 4 for the ids in
    OFFICIAL_HEAVY_OBJECT_IDS (even when the pose is not valid, as there), else valid (0/1)."""
    heavy = torch.isin(obj_ids, torch.tensor(OFFICIAL_HEAVY_OBJECT_IDS, device=obj_ids.device))
    return torch.where(heavy, torch.full_like(valid, 4.0, dtype=torch.float32), valid.to(torch.float32))


def kpt_targets(joints_cam: torch.Tensor, joints_2d: torch.Tensor, joint_valid: torch.Tensor, *,
                crop_size: int = 256, heatmap_size: int = 128,
                hand_type: Optional[torch.Tensor] = None, heatmap_valid: Optional[torch.Tensor] = None,
                mano_pose: Optional[torch.Tensor] = None, mano_shape: Optional[torch.Tensor] = None,
                mano_valid: Optional[torch.Tensor] = None, obj_mask: Optional[torch.Tensor] = None,
                obj_rot: Optional[torch.Tensor] = None, obj_trans: Optional[torch.Tensor] = None,
                obj_corners_rest: Optional[torch.Tensor] = None, obj_symmetric: Optional[torch.Tensor] = None,
                obj_weight: Optional[torch.Tensor] = None) -> KptTargets:
    """All Keypoint Transformer targets of a batch from canonical-order ground truth.

    Args (N = batch; "pair" = [right, left] on axis 1; joints in the canonical wrist-first order):
        joints_cam: (N, 2, 21, 3) joints in the crop camera frame (OpenCV), metres (invalid joints may
            hold anything, NaN included: they are zeroed).
        joints_2d: (N, 2, 21, 2) joint (x, y) in crop pixels (crop_size x crop_size input image).
        joint_valid: (N, 2, 21) bool (an absent hand is all False).
        hand_type: (N, 2) [right, left] presence; default: the hand has a valid joint.
        heatmap_valid: (N,) bool; default all True.
        mano_pose: (N, 2, 16, 3) axis-angle per hand: global orientation then the 15 MANO joints in
            MANO order, in the crop camera frame. mano_shape: (N, 2, 10). mano_valid: (N, 2) bool
            (default: the hand has a valid joint).
        obj_mask: (N, heatmap_size, heatmap_size) object mask in [0, 1] on the heat-map grid.
        obj_rot: (N, 3, 3) object-to-camera rotation; obj_trans: (N, 3) object origin in the crop
            camera frame, metres; obj_corners_rest: (N, 8, 3) box corners in the object frame, metres.
        obj_symmetric: (N,) bool (180 deg about the object z axis; see OFFICIAL_Z_SYMMETRIC_OBJECT_IDS).
        obj_weight: (N,) object-loss weight, default 1 (see `official_object_weights`).
    """
    xyz = _canonical_pair_to_native(joints_cam, "joints_cam", 3).float()
    xy = _canonical_pair_to_native(joints_2d, "joints_2d", 2).float() * (heatmap_size / crop_size)
    if joint_valid.shape != joints_cam.shape[:3]:
        raise ValueError(f"joint_valid must have shape {tuple(joints_cam.shape[:3])}, got {tuple(joint_valid.shape)}")
    valid = _canonical_pair_to_native(joint_valid[..., None], "joint_valid", 1)[..., 0].bool()
    # Invalid joints may hold anything (NaN in some datasets); masks multiply errors, so they must be finite.
    xyz = torch.where(valid[..., None], xyz, torch.zeros_like(xyz))
    xy = torch.where(valid[..., None], xy, torch.zeros_like(xy))
    n = xyz.shape[0]
    right_ok, left_ok = valid[:, RIGHT_WRIST], valid[:, LEFT_WRIST]
    reference = torch.where(right_ok[:, None], xyz[:, RIGHT_WRIST], xyz[:, LEFT_WRIST])     # (N, 3)
    rel = xyz - reference[:, None]
    present = torch.stack((valid[:, :JOINTS_PER_HAND].any(1), valid[:, JOINTS_PER_HAND:].any(1)), dim=1)
    coords = torch.cat((xy, parent_relative_depth_bins(rel, heatmap_size)[..., None]), dim=-1)
    out = KptTargets(
        joint_xy=xy, joint_rel=rel, joint_valid=valid, joint_2p5d=coords,
        heatmap=gaussian_heatmaps(xy, valid, heatmap_size),
        heatmap_valid=(torch.ones(n, dtype=torch.bool, device=xy.device) if heatmap_valid is None
                       else heatmap_valid.bool()),
        rel_trans=xyz[:, LEFT_WRIST] - xyz[:, RIGHT_WRIST], rel_trans_valid=right_ok & left_ok,
        hand_type=(present.float() if hand_type is None else hand_type.float()),
        hand_type_valid=torch.ones(n, dtype=torch.bool, device=xy.device))
    if mano_pose is not None:
        if mano_pose.shape != (n, 2, 16, 3) or mano_shape is None or mano_shape.shape != (n, 2, 10):
            raise ValueError("mano_pose must be (N, 2, 16, 3) and mano_shape (N, 2, 10), got "
                             f"{tuple(mano_pose.shape)} and {None if mano_shape is None else tuple(mano_shape.shape)}")
        out.mano_pose = mano_pose.reshape(n, 32, 3).float()
        out.mano_shape = mano_shape.float()
        out.mano_valid = present if mano_valid is None else mano_valid.bool()
    if obj_rot is not None:
        if obj_trans is None or obj_corners_rest is None or obj_mask is None:
            raise ValueError("an object needs obj_rot, obj_trans, obj_corners_rest and obj_mask together")
        if obj_mask.shape != (n, heatmap_size, heatmap_size):
            raise ValueError(f"obj_mask must be (N, {heatmap_size}, {heatmap_size}) on the heat-map grid, "
                             f"got {tuple(obj_mask.shape)}")
        out.obj_seg = obj_mask.float() * HEATMAP_SCALE
        # An object without a valid pose (weight 0) may carry NaN; keep the masked errors finite.
        out.obj_rot = torch.nan_to_num(obj_rot.float())
        out.obj_trans = torch.nan_to_num(obj_trans.float()) - reference
        out.obj_corners_rest = torch.nan_to_num(obj_corners_rest.float())
        out.obj_symmetric = (torch.zeros(n, dtype=torch.bool, device=xy.device) if obj_symmetric is None
                             else obj_symmetric.bool())
        out.obj_weight = (torch.ones(n, device=xy.device) if obj_weight is None else obj_weight.float())
    return out

