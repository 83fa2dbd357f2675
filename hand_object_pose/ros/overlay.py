"""Debug overlay: 2D skeletons, crop boxes and object axes drawn on the input image (RGB in, RGB out)."""
from __future__ import annotations

import cv2
import numpy as np

from hand_object_pose.geometry.camera import project_points
from hand_object_pose.geometry.skeleton import BONES

_COLOURS = {"right": (51, 153, 255), "left": (255, 128, 26)}   # RGB, as in the markers
_AXIS_LENGTH_M = 0.05
_LIMIT_PX = 1 << 15   # cv2 drawing takes int coordinates; far-off points are clipped (cv2 clips the lines)


def _pixel(uv) -> tuple:
    return tuple(int(round(float(np.clip(v, -_LIMIT_PX, _LIMIT_PX)))) for v in uv)


def draw_overlay(image_rgb: np.ndarray, estimate, camera_matrix: np.ndarray) -> np.ndarray:
    """Copy of `image_rgb` (H, W, 3 uint8) with each present hand's skeleton (2D keypoints, pixels),
    its crop box and each object's axes (x red, y green, z blue, 5 cm) projected with `camera_matrix` (3, 3)."""
    canvas = np.ascontiguousarray(image_rgb).copy()
    for hand in estimate.hands:
        if not hand.present:
            continue
        colour = _COLOURS.get(hand.side, (255, 255, 255))
        uv = np.asarray(hand.joints_uv, np.float64)
        finite = np.all(np.isfinite(uv), axis=1)
        for a, b in BONES:
            if finite[a] and finite[b]:
                cv2.line(canvas, _pixel(uv[a]), _pixel(uv[b]), colour, 2, cv2.LINE_AA)
        for point in uv[finite]:
            cv2.circle(canvas, _pixel(point), 3, colour, -1, cv2.LINE_AA)
        if hand.crop_box is not None:
            x, y, w, h = (int(round(float(v))) for v in hand.crop_box)
            cv2.rectangle(canvas, (x, y), (x + w, y + h), colour, 1)
    K = np.asarray(camera_matrix, np.float64)
    for obj in estimate.objects:
        R, t = np.asarray(obj.rotation, np.float64), np.asarray(obj.translation, np.float64)
        points = np.vstack([t, t + R.T[0] * _AXIS_LENGTH_M, t + R.T[1] * _AXIS_LENGTH_M, t + R.T[2] * _AXIS_LENGTH_M])
        if not np.all(np.isfinite(points)) or np.any(points[:, 2] <= 1e-6):
            continue  # behind the camera (or undefined): nothing sensible to draw
        uv = project_points(points, K)
        for end, colour in zip(uv[1:], ((255, 0, 0), (0, 255, 0), (0, 0, 255))):
            cv2.line(canvas, _pixel(uv[0]), _pixel(end), colour, 2, cv2.LINE_AA)
    return canvas
