"""Typed output of the Keypoint Transformer.

Joint order inside the model is InterHand2.6M's: per hand, thumb tip (4), thumb3, thumb2, thumb1
(MCP), then index, middle, ring, pinky in the same tip->base order, wrist last (index 20); right
hand 0-20, left hand 21-41. `canonical_joints_3d` converts to the project's wrist-first order
(wrist, thumb1-4, index1-4, middle1-4, ring1-4, pinky1-4) with `geometry.skeleton`.

Units: metres for 3D vectors and translations; 128-grid pixels (heat-map grid = 256 crop / 2)
for token positions, 2.5D x/y bins and camera translation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from hand_object_pose.geometry import skeleton


def joints_from_bone_vectors(vecs: torch.Tensor) -> torch.Tensor:
    """Root-relative joints from parent-relative bone vectors, as the official code sums them.

    vecs (..., 40, 3): 20 per hand in InterHand2.6M order without the wrist (per finger tip->base),
    each the vector from the joint's parent (the next joint of the finger, or the wrist for the
    base joint). Returns (..., 2, 20, 3): joints relative to their own hand's wrist, same order.
    """
    fingers = vecs.reshape(*vecs.shape[:-2], 2, 5, 4, 3)
    # Sequential sums from the base joint (index 3) to the tip (index 0): the same float32 rounding as
    # the official code (torch.cumsum accumulates differently).
    running = fingers[..., 3, :]
    chain = [running]
    for k in (2, 1, 0):
        running = running + fingers[..., k, :]
        chain.append(running)
    return torch.stack(chain[::-1], dim=-2).reshape(*vecs.shape[:-2], 2, 20, 3)


@dataclass
class KptOutput:
    """Everything one forward pass gives, batch-first. L_enc = encoder layers, L = decoder layers,
    S = token slots (100), C = identity classes (43, or 44 with object)."""

    heatmap: torch.Tensor              # (N, 128, 128) raw hand-keypoint heat-map
    seg: Optional[torch.Tensor]        # (N, 128, 128) raw object segmentation map
    token_xy: torch.Tensor             # (N, S, 2) token (x=col, y=row), 128-grid px; padding (0, 0)
    token_kind: torch.Tensor           # (N, S) int64: 1 hand peak, 43 object sample, 0 padding
    token_valid: torch.Tensor          # (N, S) bool
    class_logits: torch.Tensor         # (L_enc, N, S, C) token identity: 0 none, 1+j joint j, 43 object
    hand_type_logits: torch.Tensor     # (N, 2) [right, left]
    rel_trans: torch.Tensor            # (L, N, 3) left wrist minus right wrist, metres
    cam: torch.Tensor                  # (L, N, 3) weak perspective [s, tx, ty] (metres -> 128-grid px)
    cross_attn_weights: torch.Tensor   # (L, N, Q, S) head-averaged decoder cross-attention
    joint_vecs: Optional[torch.Tensor] = None        # "3D": (L, N, 40, 3) parent-relative bones, metres
    joint_2p5d_logits: Optional[torch.Tensor] = None  # "2p5D": (L, N, 42, 3, 128) x / y / depth-bin logits
    mano_pose: Optional[torch.Tensor] = None         # "angles": (L, N, 32, 3) axis-angle (0 right global,
    #                                                  1-15 right joints, 16-31 left), radians
    mano_shape: Optional[torch.Tensor] = None        # "angles": (L, N, 10) betas (shared by both hands)
    obj_rot6d: Optional[torch.Tensor] = None         # (L, N, 6) first two rotation columns
    obj_trans: Optional[torch.Tensor] = None         # (L, N, 3) object rel. to right wrist, metres
    obj_corner_proj: Optional[torch.Tensor] = None   # (L, N, 16) 8 box corners (x, y)
    obj_left_trans: Optional[torch.Tensor] = None    # (L, N, 3) object rel. to left wrist, metres

    @property
    def hand_type(self) -> torch.Tensor:
        """(N, 2) presence probabilities [right, left] (sigmoid)."""
        return torch.sigmoid(self.hand_type_logits)

    @property
    def joint_class(self) -> torch.Tensor:
        """(N, S, C) identity logits of the last encoder layer (official `joint_class_out`)."""
        return self.class_logits[-1]

    @property
    def joints_3d(self) -> Optional[torch.Tensor]:
        """"3D": (L, N, 2, 20, 3) wrist-relative joints per hand [right, left], InterHand2.6M order
        without the wrist, metres. The left hand is NOT shifted by rel_trans."""
        return None if self.joint_vecs is None else joints_from_bone_vectors(self.joint_vecs)

    @property
    def joint_2p5d(self) -> Optional[torch.Tensor]:
        """"2p5D": (N, 42, 3) int64 argmax bins of the last layer: x, y (128-grid px) and the depth
        bin relative to the parent joint, (d / 0.15 m + 1) / 2 * 128."""
        return None if self.joint_2p5d_logits is None else self.joint_2p5d_logits[-1].argmax(dim=-1)

    def canonical_joints_3d(self) -> Optional[torch.Tensor]:
        """"3D": last-layer joints (N, 42, 3), right then left hand, each in the canonical wrist-first
        order with its wrist at the origin (left NOT shifted by rel_trans), metres."""
        joints = self.joints_3d
        if joints is None:
            return None
        last = joints[-1]                                                    # (N, 2, 20, 3)
        with_wrist = torch.cat((last, torch.zeros_like(last[..., :1, :])), dim=-2)  # IH2.6M: wrist at 20
        return skeleton.interhand_to_canonical(with_wrist.flatten(-3, -2))

    def canonical_joint_2p5d(self) -> Optional[torch.Tensor]:
        """"2p5D": `joint_2p5d` (N, 42, 3) reordered to right then left canonical wrist-first order."""
        bins = self.joint_2p5d
        return None if bins is None else skeleton.interhand_to_canonical(bins)
