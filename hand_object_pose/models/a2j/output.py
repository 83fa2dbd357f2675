"""What `A2JTransformer` returns, and its conversion to canonical order and metric camera-frame joints."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from hand_object_pose.geometry.skeleton import interhand_to_canonical

CONFIDENCE_FROM_HEAD = "head"
"""`joint_confidence` / `hand_presence` come from the trained optional heads (sigmoid outputs)."""
CONFIDENCE_FROM_ANCHOR_WEIGHTS = "anchor_weights"
"""They are derived from the last layer's anchor-weight distribution (no head in the checkpoint):
joint confidence = 1 - entropy / log(num_anchors) per joint, hand presence = mean joint confidence
of that hand. Heuristics, not probabilities."""


@dataclass
class A2JOutput:
    """A2J-Transformer prediction for a batch of N crops.

    Coordinates are in the output cube of side S = config.output_size (256): x, y are pixels of
    the input crop (scaled by output/input size, 1 in the official config), z is the depth relative
    to each hand's own root (wrist) mapped as z = (d_mm / (R/2) + 1) / 2 * S with R = 400 mm.
    Joint order: InterHand2.6M, right hand 0-20 (tips first per finger, wrist at 20), left 21-41.
    """

    joints: torch.Tensor                         # (N, 42, 3) last decoder layer
    joint_confidence: torch.Tensor               # (N, 42) in [0, 1]
    hand_presence: torch.Tensor                  # (N, 2) [right, left] in [0, 1]
    confidence_source: str                       # CONFIDENCE_FROM_HEAD or CONFIDENCE_FROM_ANCHOR_WEIGHTS
    presence_source: str
    anchor_weights: torch.Tensor                 # (N, A, 42) last layer, softmax over the A anchors
    # Every decoder layer (training losses, parity); only filled when the model ran all heads.
    joints_per_layer: Optional[torch.Tensor] = None            # (L, N, 42, 3)
    anchor_positions_per_layer: Optional[torch.Tensor] = None  # (L, N, 42, 3) sum_a w_aj * anchor_a
    joint_confidence_logits: Optional[torch.Tensor] = None     # (N, 42) when the head exists
    hand_presence_logits: Optional[torch.Tensor] = None        # (N, 2) when the head exists

    def canonical_joints(self) -> torch.Tensor:
        """(N, 42, 3) reordered to the canonical wrist-first order, right hand 0-20 then left 21-41."""
        return interhand_to_canonical(self.joints)

    def canonical_joint_confidence(self) -> torch.Tensor:
        """(N, 42) confidence in the canonical order."""
        return interhand_to_canonical(self.joint_confidence[..., None])[..., 0]


def output_to_camera(joints: torch.Tensor, crop_to_image: torch.Tensor, intrinsics: torch.Tensor,
                     root_depth: torch.Tensor, output_size: int = 256, input_size: int = 256,
                     depth_range_m: float = 0.4) -> tuple[torch.Tensor, torch.Tensor]:
    """Output-cube joints -> metric joints in the camera's optical frame (same joint order).

    joints: (N, 2K, 3) output-cube coordinates, right hand first (any per-hand order).
    crop_to_image: (N, 2, 3) affine mapping crop pixels (x, y) to full-image pixels.
    intrinsics: (N, 3, 3) full-image camera matrix K.
    root_depth: (N, 2) absolute wrist depth of [right, left] hand in metres (from the pipeline:
        depth image, 2D fit or default).
    Returns (xyz (N, 2K, 3) metres, uv (N, 2K, 2) full-image pixels).
    z_m = (z / S * 2 - 1) * depth_range_m / 2 + root_depth of the joint's hand.
    """
    if joints.dim() != 3 or joints.shape[-1] != 3 or joints.shape[1] % 2:
        raise ValueError(f"joints must be (N, 2K, 3), got {tuple(joints.shape)}")
    n, j, _ = joints.shape
    for name, t, shape in (("crop_to_image", crop_to_image, (n, 2, 3)), ("intrinsics", intrinsics, (n, 3, 3)),
                           ("root_depth", root_depth, (n, 2))):
        if tuple(t.shape) != shape:
            raise ValueError(f"{name} must be {shape}, got {tuple(t.shape)}")
    crop_xy = joints[..., :2] * (input_size / output_size)
    uv = crop_xy @ crop_to_image[:, :, :2].transpose(1, 2) + crop_to_image[:, None, :, 2]
    root = root_depth.repeat_interleave(j // 2, dim=1)                                 # (N, 2K)
    depth = (joints[..., 2] / output_size * 2 - 1) * (depth_range_m / 2) + root
    fx, fy = intrinsics[:, 0, 0, None], intrinsics[:, 1, 1, None]
    cx, cy = intrinsics[:, 0, 2, None], intrinsics[:, 1, 2, None]
    x = (uv[..., 0] - cx) / fx * depth
    y = (uv[..., 1] - cy) / fy * depth
    return torch.stack((x, y, depth), dim=-1), uv
