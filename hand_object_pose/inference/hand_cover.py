"""Painting found hands over, forearms included, so that a second look at a frame sees only the rest of it.

The coarse pass sometimes puts both sides' heat-maps on one hand and misses the other hand (the per-hand path then
keeps one of them: `per_hand.one_hand_per_place`). Looked at again with the found hand painted over, the network
finds the hand it missed; painted over without its forearm, it found the forearm instead (a hand's worth of skin
leaving the painted box), so the arm is painted too: a strip from the wrist away from the fingers to the image's
edge.

Frames: image pixels (u right, v down); boxes are square (x0, y0, side, side).
"""
from __future__ import annotations

import cv2
import numpy as np

from hand_object_pose.geometry.skeleton import JOINT_INDEX, WRIST

MIDDLE_MCP = JOINT_INDEX["middle1"]

ARM_WIDTH = 0.6
"""Width of the painted forearm strip, as a share of the hand's box side. Calibration splits (seeds 2001 and 2002,
900 frames, presence errors of 1800 with the second look, `per_hand.SECOND_LOOK_PRESENCE` 0.9): no strip 65,
0.6 60, 1.0 66 (a wider strip covers a second hand beside the first)."""


def cover_hands(image: np.ndarray, hands: list, arm_width: float = ARM_WIDTH) -> tuple[np.ndarray, np.ndarray]:
    """(painted image, covered (H, W) bool): `image` (H, W, 3) with each hand's box and forearm strip painted in
    the image's mean colour. hands: (joints_uv (21, 2) image pixels, box (4,) x0, y0, side, side) per hand; the
    strip runs from the wrist along the middle finger's knuckle -> wrist direction, `arm_width` x the box side
    wide, out of the image."""
    height, width = image.shape[:2]
    covered = np.zeros((height, width), np.uint8)
    reach = 2.0 * (width + height)   # past every edge of the image
    for joints_uv, box in hands:
        x0, y0, side = float(box[0]), float(box[1]), float(box[2])
        corners = np.array([[x0, y0], [x0 + side, y0], [x0 + side, y0 + side], [x0, y0 + side]])
        cv2.fillConvexPoly(covered, np.round(corners).astype(np.int32), 1)
        wrist = np.asarray(joints_uv[WRIST], np.float64)
        along = wrist - np.asarray(joints_uv[MIDDLE_MCP], np.float64)
        length = float(np.linalg.norm(along))
        if length > 1e-6:
            along /= length
            across = np.array([-along[1], along[0]]) * arm_width * side / 2
            far = wrist + along * reach
            strip = np.array([wrist + across, wrist - across, far - across, far + across])
            cv2.fillConvexPoly(covered, np.round(strip).astype(np.int32), 1)
    covered = covered.astype(bool)
    painted = np.array(image, copy=True)
    painted[covered] = painted.reshape(-1, painted.shape[-1]).mean(axis=0).astype(painted.dtype)
    return painted, covered
