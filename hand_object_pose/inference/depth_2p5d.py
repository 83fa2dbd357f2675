"""Absolute depth of a 2.5D hand (keypoints + root-relative depths) from its known size.

A 2.5D prediction fixes each joint's ray and its depth relative to the wrist; the absolute wrist
depth Z scales the hand: joint j sits at ray_j * (Z + dz_j). The image alone cannot tell a small
near hand from a large far one, so the hand's size is the missing measurement: Z is chosen so that
the summed length of the 20 bones equals `hand_size_m` (an adult hand: about 0.75 m, from
wrist->finger-base and phalanx lengths). The summed length grows monotonically with Z, so a
bisection finds it.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from hand_object_pose.geometry.skeleton import BONES

ADULT_HAND_BONE_SUM_M = 0.75
"""Sum of the 20 bone lengths (wrist->CMC/MCPs and phalanges) of an average adult hand, metres."""


def bone_length_sum(uv: np.ndarray, rel_depth: np.ndarray, K: np.ndarray, root_z: float) -> float:
    """Summed length (m) of the 20 canonical bones when the wrist is at depth `root_z`."""
    K = np.asarray(K, np.float64)
    depth = root_z + np.asarray(rel_depth, np.float64)
    points = np.stack([(uv[:, 0] - K[0, 2]) / K[0, 0] * depth, (uv[:, 1] - K[1, 2]) / K[1, 1] * depth, depth], 1)
    parents, children = np.array(BONES).T
    return float(np.linalg.norm(points[children] - points[parents], axis=1).sum())


def fit_depth_to_hand_size(uv: np.ndarray, rel_depth: np.ndarray, K: np.ndarray,
                           hand_size_m: float = ADULT_HAND_BONE_SUM_M, min_depth_m: float = 0.1,
                           max_depth_m: float = 5.0, tolerance_m: float = 1e-5) -> Optional[float]:
    """Wrist depth Z (m) at which the hand's bones sum to `hand_size_m`, or None when no Z in
    [min_depth_m, max_depth_m] gives that size (or the keypoints are not finite).

    uv: (21, 2) undistorted pixels; rel_depth: (21,) joint depth minus wrist depth, metres.
    """
    uv = np.asarray(uv, np.float64)
    if not (np.isfinite(uv).all() and np.isfinite(rel_depth).all()):
        return None
    low = max(min_depth_m, 1e-3 - float(np.min(rel_depth)))  # every joint in front of the camera
    high = max_depth_m
    if low >= high or not bone_length_sum(uv, rel_depth, K, low) <= hand_size_m <= \
            bone_length_sum(uv, rel_depth, K, high):
        return None
    while high - low > tolerance_m:
        mid = 0.5 * (low + high)
        if bone_length_sum(uv, rel_depth, K, mid) < hand_size_m:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)
