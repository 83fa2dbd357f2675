"""The rotated square hand region (ROI) that the landmark network sees, and its image <-> crop maps.

A `HandRoi` is a square of side `size_px` centred at `center_px` (full-image pixels), rotated by
`rotation` radians so that the hand points up in the crop (rotation 0: the wrist is below the
middle finger's base in the image). Crop pixels (u, v) in [0, S) map to image pixels by

    p = center + R(rotation) @ ((u / S - 0.5) * size, (v / S - 0.5) * size),
    R(a) = [[cos a, -sin a], [sin a, cos a]]   (image axes: x right, y down)

Two ways to get one: from a palm detection (box + 7 palm keypoints), or from the previous frame's
21 landmarks (tracking). Both follow the rules published in MediaPipe's hand graphs: the rotation
from the wrist to the middle finger's base, the box enlarged (2.6x for a palm, 2.0x for landmarks),
shifted towards the fingers and made square on its long side.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PALM_WRIST, PALM_MIDDLE_BASE = 0, 2            # palm-detector keypoints used for the rotation
PALM_ROI_SCALE, PALM_ROI_SHIFT = 2.6, -0.5      # enlarge; shift along the hand's axis (x its height)
LANDMARK_ROI_SCALE, LANDMARK_ROI_SHIFT = 2.0, -0.1
# Canonical landmarks that bound the tracking ROI: wrist, thumb base joints, each finger's base and
# next joint (tips are left out: a curled or stretched finger must not move the ROI much).
TRACKING_SUBSET = (0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18)
WRIST, INDEX_BASE, MIDDLE_BASE, RING_BASE = 0, 5, 9, 13


def _rotation_matrix(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def _normalize_angle(angle: float) -> float:
    return float(angle - 2.0 * np.pi * np.floor((angle + np.pi) / (2.0 * np.pi)))


def upright_rotation(start_px: np.ndarray, end_px: np.ndarray) -> float:
    """Rotation (rad) that turns the image vector start -> end to point up (-y) in the crop."""
    dx, dy = float(end_px[0] - start_px[0]), float(end_px[1] - start_px[1])
    return _normalize_angle(0.5 * np.pi - np.arctan2(-dy, dx))


@dataclass(frozen=True)
class HandRoi:
    center_px: np.ndarray   # (2,) full-image pixels
    size_px: float          # side of the square, full-image pixels
    rotation: float         # radians, see the module docstring

    def crop_to_image_matrix(self, crop_size: int) -> np.ndarray:
        """(2, 3) affine: crop pixels -> full-image pixels."""
        R = _rotation_matrix(self.rotation) * (self.size_px / crop_size)
        offset = np.asarray(self.center_px, np.float64) - R @ np.array([crop_size / 2.0, crop_size / 2.0])
        return np.concatenate([R, offset[:, None]], axis=1)

    def crop(self, image: np.ndarray, crop_size: int) -> np.ndarray:
        """(crop_size, crop_size, C) crop of `image` (bilinear, zero outside the image), same dtype."""
        matrix = self.crop_to_image_matrix(crop_size)
        return cv2.warpAffine(image, matrix, (crop_size, crop_size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    def to_image(self, points_crop: np.ndarray, crop_size: int) -> np.ndarray:
        """(N, 2) crop pixels -> (N, 2) full-image pixels."""
        matrix = self.crop_to_image_matrix(crop_size)
        return np.asarray(points_crop, np.float64) @ matrix[:, :2].T + matrix[:, 2]

    def rotate_to_image_axes(self, vectors: np.ndarray) -> np.ndarray:
        """(N, 2) vectors in crop axes -> image axes (no scaling)."""
        return np.asarray(vectors, np.float64) @ _rotation_matrix(self.rotation).T

    def corners_px(self) -> np.ndarray:
        """(4, 2) corners in full-image pixels (top-left, top-right, bottom-right, bottom-left of the crop)."""
        half = 0.5 * self.size_px
        local = np.array([[-half, -half], [half, -half], [half, half], [-half, half]])
        return np.asarray(self.center_px, np.float64) + local @ _rotation_matrix(self.rotation).T

    def bounds_px(self) -> np.ndarray:
        """(4,) axis-aligned bounds (x0, y0, x1, y1) of the rotated square, full-image pixels."""
        corners = self.corners_px()
        return np.concatenate([corners.min(axis=0), corners.max(axis=0)])


def _transformed(center: np.ndarray, width: float, height: float, rotation: float, scale: float,
                 shift_y: float) -> HandRoi:
    """Shift the box along its own y axis by shift_y x height, make it square on its long side, scale."""
    center = np.asarray(center, np.float64) + _rotation_matrix(rotation) @ np.array([0.0, shift_y * height])
    return HandRoi(center_px=center, size_px=float(max(width, height) * scale), rotation=rotation)


def roi_from_palm(box_px: np.ndarray, keypoints_px: np.ndarray) -> HandRoi:
    """Hand ROI from a palm detection: box (4,) x0, y0, x1, y1 and keypoints (7, 2), image pixels."""
    rotation = upright_rotation(keypoints_px[PALM_WRIST], keypoints_px[PALM_MIDDLE_BASE])
    x0, y0, x1, y1 = (float(v) for v in box_px)
    return _transformed(np.array([(x0 + x1) / 2, (y0 + y1) / 2]), x1 - x0, y1 - y0, rotation,
                        PALM_ROI_SCALE, PALM_ROI_SHIFT)


def roi_from_landmarks(landmarks_px: np.ndarray) -> HandRoi:
    """Next frame's hand ROI from this frame's 21 landmarks (canonical order), image pixels."""
    points = np.asarray(landmarks_px, np.float64)[:, :2]
    towards = 0.5 * (0.5 * (points[INDEX_BASE] + points[RING_BASE]) + points[MIDDLE_BASE])
    rotation = upright_rotation(points[WRIST], towards)
    subset = points[list(TRACKING_SUBSET)]
    middle = 0.5 * (subset.min(axis=0) + subset.max(axis=0))
    R = _rotation_matrix(rotation)
    local = (subset - middle) @ R  # rows: R^T (p - middle), i.e. in the ROI's axes
    lo, hi = local.min(axis=0), local.max(axis=0)
    center = middle + R @ (0.5 * (lo + hi))
    width, height = hi - lo
    return _transformed(center, width, height, rotation, LANDMARK_ROI_SCALE, LANDMARK_ROI_SHIFT)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two axis-aligned boxes (x0, y0, x1, y1)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0
