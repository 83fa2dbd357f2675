"""Where the hands are: the square crop the network sees, and the state that tracks it over frames.

Boxes are (x0, y0, width, height) in pixels of the full image; a crop box is square and may extend
past the image border (the warp pads with black, as the official pipelines do). The crop's affine
(image -> crop pixels) and intrinsics come from `geometry.camera`; nothing here re-implements them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from hand_object_pose.geometry.camera import CameraIntrinsics, box_around_points, crop_affine, square_box

# How a crop was chosen (reported in timings/diagnostics and tests).
FROM_ROI = "roi"
FROM_FIXED = "fixed"
FROM_TRACKING = "tracking"
FROM_FULL_FRAME = "full_frame"   # letterboxed whole frame: crop_source "full", or the coarse pass
FROM_DETECTOR = "detector"       # around the hands the offline hand detector found


@dataclass(frozen=True)
class Crop:
    """One network input region.

    box: (4,) square box in image pixels; affine: (2, 3) image -> crop pixels; camera: the crop's
    intrinsics (K' = A K, distortion carried over); size: crop side in pixels; origin: FROM_*.
    """

    box: np.ndarray
    affine: np.ndarray
    camera: CameraIntrinsics
    size: int
    origin: str


def make_crop(box: Sequence[float], camera: CameraIntrinsics, size: int, origin: str) -> Crop:
    box = np.asarray(box, dtype=np.float64)
    affine = crop_affine(box, size)
    return Crop(box, affine, camera.transformed(affine, size, size), size, origin)


def full_frame_box(width: int, height: int) -> np.ndarray:
    """Square box centred on the image that contains all of it (letterbox: the short side is padded)."""
    side = float(max(width, height))
    return np.array([(width - side) / 2.0, (height - side) / 2.0, side, side])


def clip_roi(roi: Sequence[float], width: int, height: int) -> Optional[np.ndarray]:
    """The part of roi (x, y, w, h) inside the image, or None when nothing of it is inside (or it is
    malformed: not 4 finite numbers, or a non-positive size)."""
    try:
        x, y, w, h = (float(v) for v in roi)
    except (TypeError, ValueError):
        return None
    if not all(np.isfinite([x, y, w, h])) or w <= 0 or h <= 0:
        return None
    x0, y0 = max(x, 0.0), max(y, 0.0)
    x1, y1 = min(x + w, float(width)), min(y + h, float(height))
    if x1 <= x0 or y1 <= y0:
        return None
    return np.array([x0, y0, x1 - x0, y1 - y0])


def enlarge_box(box: Sequence[float], margin: float, min_size: float) -> np.ndarray:
    """Square box around `box` enlarged by `margin`, with a side of at least `min_size` pixels."""
    square = square_box(box, margin)
    if square[2] >= min_size:
        return square
    centre = square[:2] + square[2] / 2
    return np.array([centre[0] - min_size / 2, centre[1] - min_size / 2, min_size, min_size])


def box_around_keypoints(uv_sets: Sequence[np.ndarray], margin: float, min_size: float) -> Optional[np.ndarray]:
    """Square crop box around the keypoints of all given hands (one crop holds both hands), or None
    when no keypoint is finite."""
    points = [np.asarray(uv, np.float64).reshape(-1, 2) for uv in uv_sets]
    points = np.concatenate(points) if points else np.zeros((0, 2))
    points = points[np.isfinite(points).all(axis=1)]
    if len(points) == 0:
        return None
    return enlarge_box(box_around_points(points, enlarge=margin), 1.0, min_size)


class CropTracker:
    """Keeps the crop box between frames.

    `update(box)` after a frame with present hands; `miss()` after a frame without;
    after `lost_after` consecutive misses the track is dropped (`box` becomes None).
    `box_inside(width, height)` is the box to use for the next frame: None (and the track dropped)
    once its centre has left the image, so that a crop following wrong keypoints cannot drift off
    the image without limit; the caller then finds the hands again (coarse pass).
    """

    def __init__(self, lost_after: int = 1):
        self.lost_after = lost_after
        self.reset()

    def reset(self) -> None:
        self.box: Optional[np.ndarray] = None
        self._misses = 0

    def update(self, box: np.ndarray) -> None:
        self.box = np.asarray(box, np.float64)
        self._misses = 0

    def miss(self) -> None:
        self._misses += 1
        if self._misses >= self.lost_after:
            self.box = None

    def box_inside(self, width: int, height: int) -> Optional[np.ndarray]:
        """The tracked box when its centre lies inside the width x height image, else None (track dropped)."""
        if self.box is None:
            return None
        cx, cy = self.box[:2] + self.box[2:] / 2.0
        if not (np.all(np.isfinite(self.box)) and 0.0 <= cx <= width and 0.0 <= cy <= height):
            self.reset()
        return self.box
