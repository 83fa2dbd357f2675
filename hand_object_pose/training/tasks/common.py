"""Batch pieces every task needs: image tensors, two-hand joint arrays, crop-space metrics."""
from __future__ import annotations

import numpy as np
import torch

from hand_object_pose.evaluation.joints import mpjpe
from hand_object_pose.geometry.skeleton import NUM_JOINTS

from ..augmentation import TrainingCrop

SIDES = ("right", "left")


def image_tensor(crops: list[TrainingCrop], bgr: bool = False) -> torch.Tensor:
    """(N, 3, S, S) float in [0, 1] (uint8 / 255, no mean/std: the official pipelines' input)."""
    images = np.stack([c.image for c in crops]).astype(np.float32) / 255.0
    if bgr:
        images = images[..., ::-1]
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


def two_hand_arrays(crops: list[TrainingCrop]) -> dict:
    """Canonical-order joints of both hands, right first: joints_cam (N, 42, 3) m, joints_uv (N, 42, 2)
    crop px, valid (N, 42) bool (False for an absent hand), intrinsics (N, 3, 3) of the crops."""
    n = len(crops)
    cam = np.zeros((n, 2 * NUM_JOINTS, 3), np.float32)
    uv = np.zeros((n, 2 * NUM_JOINTS, 2), np.float32)
    valid = np.zeros((n, 2 * NUM_JOINTS), bool)
    for i, crop in enumerate(crops):
        for h, side in enumerate(SIDES):
            hand = crop.hands.get(side)
            if hand is None:
                continue
            part = slice(h * NUM_JOINTS, (h + 1) * NUM_JOINTS)
            cam[i, part], uv[i, part], valid[i, part] = hand.joints_cam, hand.joints_uv, hand.joints_valid
    return {"joints_cam": torch.from_numpy(cam), "joints_uv": torch.from_numpy(uv), "valid": torch.from_numpy(valid),
            "intrinsics": torch.from_numpy(np.stack([c.intrinsics for c in crops]).astype(np.float32))}


def backproject(uv: torch.Tensor, depth: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """Crop pixels (N, J, 2) + depth (N, J) metres -> camera points (N, J, 3) with a full 3x3 K'."""
    ones = torch.ones_like(uv[..., :1])
    rays = torch.cat([uv, ones], dim=-1) @ torch.linalg.inv(intrinsics).transpose(1, 2)
    return rays / rays[..., 2:3] * depth[..., None]


def root_relative_mpjpe_mm(pred_cam: torch.Tensor, gt_cam: torch.Tensor, valid: torch.Tensor) -> dict:
    """Root-aligned MPJPE (mm) of the right hands, the left hands and all hands, from canonical
    right-then-left (N, 42, 3) arrays in metres and their (N, 42) validity."""
    p, g, v = (t.detach().cpu().numpy() for t in (pred_cam, gt_cam, valid))
    n = len(p)
    out = {}
    for h, side in enumerate(SIDES):
        part = slice(h * NUM_JOINTS, (h + 1) * NUM_JOINTS)
        out[f"mpjpe_{side}_mm"] = mpjpe(p[:, part] * 1000.0, g[:, part] * 1000.0, v[:, part])
    hands = lambda a: a.reshape(2 * n, NUM_JOINTS, *a.shape[2:])  # noqa: E731 - both hands as samples
    out["mpjpe_mm"] = mpjpe(hands(p) * 1000.0, hands(g) * 1000.0, hands(v))
    return out
