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


def _bone_terms(uv: np.ndarray, rel_depth: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a, b), each (20, 3): bone k's vector is Z a_k + b_k when the wrist is at depth Z (joint j at
    ray_j (Z + dz_j), so child - parent = Z (ray_c - ray_p) + (dz_c ray_c - dz_p ray_p))."""
    K = np.asarray(K, np.float64)
    rel_depth = np.asarray(rel_depth, np.float64)
    rays = np.stack([(uv[:, 0] - K[0, 2]) / K[0, 0], (uv[:, 1] - K[1, 2]) / K[1, 1], np.ones(len(uv))], 1)
    parents, children = np.array(BONES).T
    return rays[children] - rays[parents], rel_depth[children, None] * rays[children] - \
        rel_depth[parents, None] * rays[parents]


def fit_depth_to_hand_size(uv: np.ndarray, rel_depth: np.ndarray, K: np.ndarray,
                           hand_size_m: float = ADULT_HAND_BONE_SUM_M, min_depth_m: float = 0.1,
                           max_depth_m: float = 5.0, tolerance_m: float = 1e-5) -> Optional[float]:
    """Wrist depth Z (m) at which the hand's bones sum to `hand_size_m`, or None when no Z in
    [min_depth_m, max_depth_m] gives that size (or the keypoints are not finite).

    uv: (21, 2) undistorted pixels; rel_depth: (21,) joint depth minus wrist depth, metres.
    The bisection evaluates `bone_length_sum` through its bones' linear form in Z (`_bone_terms`): the same
    lengths to rounding, a few microseconds a step instead of rebuilding the points (the default pipeline fits
    every hand of every frame).
    """
    uv = np.asarray(uv, np.float64)
    if not (np.isfinite(uv).all() and np.isfinite(rel_depth).all()):
        return None
    a, b = _bone_terms(uv, rel_depth, K)

    def length(z: float) -> float:
        bones = z * a + b
        return float(np.sqrt((bones * bones).sum(axis=1)).sum())

    low = max(min_depth_m, 1e-3 - float(np.min(rel_depth)))  # every joint in front of the camera
    high = max_depth_m
    if low >= high or not length(low) <= hand_size_m <= length(high):
        return None
    while high - low > tolerance_m:
        mid = 0.5 * (low + high)
        if length(mid) < hand_size_m:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)
