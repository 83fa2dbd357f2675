"""Hand joints' depths refined with the depth image: each visible joint's depth moves half way towards what the
depth image measures on its pixel plus the skin's thickness over that joint.

Why: a 2.5D network's relative depths are its larger error (about 12 mm of the default's 18 mm), while a depth
camera measures the skin over every visible joint. The skin lies in front of the joint by about a finger's half
thickness (`JOINT_SURFACE_OFFSETS_M`), which varies with the view, so the measurement is averaged with the network's
depth rather than taken as it is (JOINT_DEPTH_BLEND), and a joint whose measurement is far from its depth (hidden
behind the object, the other hand or its own fingers; JOINT_DEPTH_GATE_M) keeps the network's. Each joint moves
along its own ray, so its image position does not change.

On the synthetic calibration split (seed 2001, the shipped network, ground-truth crops) root-relative MPJPE right /
left 15.6 / 19.9 -> 15.1 / 18.4 mm, MRRPE 28.2 -> 24.6 mm; with the pipeline's own crops 18.1 / 23.6 -> 17.6 / 22.7
mm (docs/hand_heatmap.md). Frames: camera optical frame, metres; depth image aligned with the colour image.
"""
from __future__ import annotations

import numpy as np

JOINT_SURFACE_OFFSETS_M = np.array([
    0.021,                          # wrist
    0.015, 0.010, 0.009, 0.006,     # thumb: base -> tip
    0.009, 0.008, 0.007, 0.006,     # index
    0.011, 0.009, 0.008, 0.005,     # middle
    0.010, 0.009, 0.009, 0.005,     # ring
    0.008, 0.008, 0.007, 0.0045])   # little
"""How far behind the skin the depth camera sees each joint lies (canonical joint order, metres): the median of
(true joint depth - depth image on its pixel) over the joints within 3 cm of their measurement, on 300 synthetic
frames of seed 1 (a training seed; stand-in hands: thicker over the wrist and finger bases, thinnest at the tips)."""

JOINT_DEPTH_BLEND = 0.5
"""How far a visible joint's depth moves towards the measured one (0: not at all, 1: all the way); on the calibration
split 0.35 / 0.5 / 0.65 / 1.0 gave left hands 18.8 / 18.4 (with a 4 cm gate) / 18.7 / 19.5 mm, right 15.1 / 15.1 /
15.5 / 16.8 mm."""

JOINT_DEPTH_GATE_M = 0.04
"""A joint whose measured depth (with its offset) differs from its own by more than this is taken for hidden (2.5 / 3 /
4 cm: left hands 18.9 / 18.7 / 18.4 mm with the 0.5 blend)."""

WINDOW_PX = 1
"""The depth on a joint's pixel: the median of the valid pixels of the (2 WINDOW_PX + 1)^2 window around it."""


def measured_joint_depths(depth_m: np.ndarray, joints_uv: np.ndarray, window_px: int = WINDOW_PX) -> np.ndarray:
    """(J,) the median of the valid (finite, > 0) depth pixels in a window around each joint's pixel (J, 2), NaN
    where there is none (off the image, no depth)."""
    height, width = depth_m.shape
    out = np.full(len(joints_uv), np.nan)
    for k, (u, v) in enumerate(np.rint(np.nan_to_num(joints_uv, nan=-1e9)).astype(np.int64)):
        if 0 <= u < width and 0 <= v < height:
            window = depth_m[max(0, v - window_px):v + window_px + 1, max(0, u - window_px):u + window_px + 1]
            window = window[np.isfinite(window) & (window > 0)]
            if len(window):
                out[k] = float(np.median(window))
    return out


def refine_joint_depths(joints_xyz: np.ndarray, joints_uv: np.ndarray, depth_m: np.ndarray,
                        blend: float = JOINT_DEPTH_BLEND, gate_m: float = JOINT_DEPTH_GATE_M) -> tuple[np.ndarray, int]:
    """(joints (21, 3) with the visible joints' depths refined (module doc), how many were refined). joints_xyz
    (21, 3) camera frame, metres, z > 0; joints_uv (21, 2) their pixels in the depth image's (= the colour
    image's) coordinates; depth_m (H, W) metres."""
    joints = np.asarray(joints_xyz, np.float64)
    surface = measured_joint_depths(depth_m, joints_uv) + JOINT_SURFACE_OFFSETS_M
    visible = np.isfinite(surface) & (np.abs(surface - joints[:, 2]) < gate_m) & (joints[:, 2] > 0)
    depth = np.where(visible, (1.0 - blend) * joints[:, 2] + blend * np.nan_to_num(surface), joints[:, 2])
    scale = np.where(visible, depth / np.where(joints[:, 2] > 0, joints[:, 2], 1.0), 1.0)
    return joints * scale[:, None], int(visible.sum())
