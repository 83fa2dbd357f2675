"""Typed output of the DMA model."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch


@dataclass
class DMAOutput:
    """Everything the model predicts for a batch of N crops.

    Grid quantities are in the 64^3 lixel grid of the 256x256 crop: x, y times 4 = crop pixels,
    z = 0..64 spans root depth -/+ 0.15 m. Camera quantities are in metres in the crop camera's OpenCV
    optical frame (x right, y down, z forward), whose intrinsics are the inputs `focal` and
    `principal_point`. Hand joints are wrist, thumb1-4, index1-4, middle1-4, ring1-4, pinky1-4.
    """

    rough_hand_vertices_grid: torch.Tensor    # (N, 778, 3) MeshNet output, grid units
    rough_object_vertices_grid: torch.Tensor  # (N, 1000, 3) object MeshNet output, grid units
    hand_vertices_grid: torch.Tensor          # (N, 778, 3) rough + GCN offset, grid units
    hand_joints_grid: torch.Tensor            # (N, 21, 3) regressor @ hand_vertices_grid
    hand_vertices: torch.Tensor               # (N, 778, 3) metres, camera frame
    hand_joints: torch.Tensor                 # (N, 21, 3) metres, camera frame
    object_quaternion: torch.Tensor           # (N, 4) w, x, y, z vertex mean, NOT normalised
    object_rotation: torch.Tensor             # (N, 3, 3) camera <- object
    object_translation: torch.Tensor          # (N, 3) metres, camera frame (object-frame origin)
    object_vertices: torch.Tensor             # (N, 1000, 3) metres, camera frame = R template + T
    # Training-only heads (None in eval mode):
    pose_net_joints_grid: Optional[torch.Tensor] = None   # (N, 21, 3) PoseNet joints, grid units
    object_silhouette_logits: Optional[torch.Tensor] = None  # (N, 2, 128, 128) background/object logits
