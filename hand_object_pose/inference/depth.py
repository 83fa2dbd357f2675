"""Absolute hand position: the networks give root-relative 3D joints; these recover the root.

Three sources, tried in the configured order (the official code used the ground-truth root depth):

* `root_depth_from_image`: an aligned depth image sampled around some keypoints (robust median over
  their neighbourhoods, invalid pixels ignored), corrected by each joint's own root-relative depth
  and by a hand-surface offset (the camera sees skin; the joints are inside the hand).
* `fit_translation`: the translation t that makes the root-relative 3D joints project onto the 2D
  keypoints through the intrinsics. Linear least squares in t (closed form), with a few
  iteratively re-weighted steps so that a few bad keypoints do not drag the result.
* the configured default depth.

When only the root depth z is known (depth image, default), `translation_for_depth` places the hand
on the rays of its keypoints at that depth (again linear least squares, in tx and ty).

All positions in metres in the camera's optical frame; keypoints in pixels of the *undistorted*
image matching K (the caller undistorts when the camera has distortion).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np


def _normalised(uv: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(J, 2) pixels -> (J, 2) normalised image coordinates (x/z, y/z)."""
    K = np.asarray(K, dtype=np.float64)
    return np.stack([(uv[:, 0] - K[0, 2] - K[0, 1] * (uv[:, 1] - K[1, 2]) / K[1, 1]) / K[0, 0],
                     (uv[:, 1] - K[1, 2]) / K[1, 1]], axis=1)


def root_depth_from_image(depth_m: np.ndarray, uv: np.ndarray, rel_z: np.ndarray, joints: Sequence[int],
                          window_px: int, min_m: float, max_m: float, min_valid: int,
                          surface_offset_m: float) -> Optional[float]:
    """Root (wrist) depth in metres from a depth image, or None when too few valid pixels.

    Args:
      depth_m: (H, W) depth in metres aligned with the keypoints; 0, NaN, inf and values outside
        [min_m, max_m] are invalid.
      uv: (21, 2) keypoints in depth-image pixels (canonical order).
      rel_z: (21,) each joint's depth relative to the root, metres.
      joints: canonical indices to sample (e.g. the palm: 0, 5, 9, 13, 17).
      window_px: half side of the square neighbourhood around each keypoint.
      min_valid: fewest valid pixels (over all windows) to trust the result.
      surface_offset_m: added to the measured surface depth.

    Each sampled joint j votes `median(window_j) + surface_offset - rel_z[j]` for the root depth; the
    result is the median of the votes (robust to a finger or background filling one window).
    """
    depth_m = np.asarray(depth_m)
    if depth_m.ndim != 2:
        raise ValueError(f"depth image must be (H, W), got shape {depth_m.shape}")
    height, width = depth_m.shape
    votes, total_valid = [], 0
    for j in joints:
        u, v = uv[j]
        if not (np.isfinite(u) and np.isfinite(v)):
            continue
        cu, cv = int(round(float(u))), int(round(float(v)))
        x0, x1 = max(cu - window_px, 0), min(cu + window_px + 1, width)
        y0, y1 = max(cv - window_px, 0), min(cv + window_px + 1, height)
        if x0 >= x1 or y0 >= y1:
            continue  # keypoint outside the depth image
        patch = depth_m[y0:y1, x0:x1].astype(np.float64, copy=False)
        valid = patch[np.isfinite(patch) & (patch >= min_m) & (patch <= max_m)]
        if valid.size == 0:
            continue
        total_valid += valid.size
        votes.append(float(np.median(valid)) + surface_offset_m - float(rel_z[j]))
    if total_valid < min_valid or not votes:
        return None
    return float(np.median(votes))


def translation_for_depth(rel_xyz: np.ndarray, uv: np.ndarray, K: np.ndarray, root_z: float,
                          weights: Optional[np.ndarray] = None) -> np.ndarray:
    """Root position (3,) with depth `root_z` whose x, y best align the joints with their keypoints.

    For joint j with root-relative (X, Y, Z) and normalised keypoint (x, y):
    x (Z + tz) = X + tx  ->  tx = x (Z + tz) - X; the weighted mean over joints is the least-squares tx.
    """
    xy = _normalised(np.asarray(uv, np.float64), K)
    rel = np.asarray(rel_xyz, np.float64)
    w = np.ones(len(rel)) if weights is None else np.asarray(weights, np.float64)
    if w.sum() <= 0:
        w = np.ones(len(rel))
    depth = rel[:, 2] + root_z
    tx = np.sum(w * (xy[:, 0] * depth - rel[:, 0])) / w.sum()
    ty = np.sum(w * (xy[:, 1] * depth - rel[:, 1])) / w.sum()
    return np.array([tx, ty, root_z])


def fit_translation(rel_xyz: np.ndarray, uv: np.ndarray, K: np.ndarray, weights: Optional[np.ndarray] = None,
                    min_depth_m: float = 0.05, max_depth_m: float = 10.0, irls_steps: int = 3
                    ) -> Optional[np.ndarray]:
    """Translation t (3,) minimising the reprojection error of `rel_xyz + t` against `uv`.

    Args:
      rel_xyz: (J, 3) root-relative joints, metres (root = wrist at the origin).
      uv: (J, 2) keypoints in undistorted pixels.
      K: (3, 3) intrinsics.
      weights: (J,) non-negative per-joint weights (e.g. confidences); None = all 1.
      min_depth_m, max_depth_m: plausible root depths; a solution outside is rejected (None).
      irls_steps: re-weighting steps (Cauchy weights on the pixel residual) after the first solve.

    With normalised keypoints (x, y), each joint gives two equations linear in t:
      tx - x tz = x Z - X,   ty - y tz = y Z - Y
    (the pinhole equations multiplied by the depth). Exact for noise-free data. Needs the hand to
    have some extent in depth or in the image plane relative to its distance (always true for a
    real hand); a degenerate system returns None.
    """
    rel = np.asarray(rel_xyz, np.float64)
    uv = np.asarray(uv, np.float64)
    xy = _normalised(uv, K)
    w = np.ones(len(rel)) if weights is None else np.clip(np.asarray(weights, np.float64), 0, None)
    usable = np.isfinite(xy).all(axis=1) & np.isfinite(rel).all(axis=1) & (w > 0)
    if usable.sum() < 3:
        return None
    rel, xy, w, uv = rel[usable], xy[usable], w[usable], uv[usable]
    n = len(rel)
    A = np.zeros((2 * n, 3))
    A[0::2, 0] = 1.0
    A[0::2, 2] = -xy[:, 0]
    A[1::2, 1] = 1.0
    A[1::2, 2] = -xy[:, 1]
    b = np.empty(2 * n)
    b[0::2] = xy[:, 0] * rel[:, 2] - rel[:, 0]
    b[1::2] = xy[:, 1] * rel[:, 2] - rel[:, 1]
    K = np.asarray(K, np.float64)
    focal = 0.5 * (K[0, 0] + K[1, 1])
    robust = np.ones(n)
    t = None
    for step in range(irls_steps + 1):
        # Equations are in metres at the joint's depth; dividing by the depth makes each residual a
        # normalised image error, i.e. uniform in pixels (the depth comes from the previous solve).
        scale = np.ones(n) if t is None else 1.0 / np.clip(rel[:, 2] + t[2], 1e-3, None)
        row_w = np.sqrt(np.repeat(w * robust, 2)) * np.repeat(scale, 2)
        solution, _, rank, singular = np.linalg.lstsq(A * row_w[:, None], b * row_w, rcond=None)
        if rank < 3 or singular[-1] < 1e-9 * singular[0]:
            return None
        t = solution
        if step == irls_steps:
            break
        projected = rel + t
        with np.errstate(divide="ignore", invalid="ignore"):
            residual_px = focal * np.linalg.norm(projected[:, :2] / projected[:, 2:3] - xy, axis=1)
        residual_px = np.nan_to_num(residual_px, nan=1e6, posinf=1e6)
        c = 3.0 * max(np.median(residual_px), 1.0)  # Cauchy scale: a few pixels, or the typical error
        robust = 1.0 / (1.0 + (residual_px / c) ** 2)
    if not (min_depth_m <= t[2] <= max_depth_m) or not np.all(rel[:, 2] + t[2] > 0):
        return None
    return t
