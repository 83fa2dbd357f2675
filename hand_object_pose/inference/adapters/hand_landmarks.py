"""hand_landmarks adapter: the hand detector's hands as a prediction (hands only, no object).

The landmark network runs inside `inference.hand_detection.HandDetector` on its own rotated crops, so
this adapter does not run a graph: `from_detections` turns the detector's hands into a
`CropPrediction` whose "crop" is the full image (identity affine). Per hand: the 21 landmarks in
image pixels, presence as every joint's confidence, the side from the handedness corrected for the
camera's mirroring, and the metric world landmarks minus the wrist as the root-relative 3D joints
(metres, image-aligned axes = the camera's x right, y down, z forward), from which the pipeline
places the root (depth image, else the 2D fit with the intrinsics, else the default depth).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from hand_object_pose.geometry.skeleton import WRIST
from hand_object_pose.inference.result import HAND_SIDES

from . import adapter_for
from .base import CropPrediction, HandInCrop, ModelAdapter


@adapter_for("hand_landmarks")
class HandLandmarksAdapter(ModelAdapter):
    """Reads `inference.hand_detection.DetectedHand`s (no graph of its own)."""

    sides = HAND_SIDES

    def parse(self, outputs: dict) -> CropPrediction:
        raise ValueError("hand_landmarks runs inside the hand detector: use from_detections")

    @staticmethod
    def from_detections(hands: Sequence) -> CropPrediction:
        """`DetectedHand`s -> CropPrediction in full-image pixels (right first, at most one per side)."""
        found = []
        for hand in hands:
            if any(h.side == hand.side for h in found):
                continue
            world = np.asarray(hand.world_m, np.float64)
            joints_rel = world - world[WRIST]
            found.append(HandInCrop(side=hand.side, presence=float(hand.presence),
                                    uv_crop=np.asarray(hand.landmarks_px, np.float64).copy(),
                                    joint_confidence=np.full(21, float(hand.presence)),
                                    rel_depth=joints_rel[:, 2].copy(), joints_rel=joints_rel))
        found.sort(key=lambda h: HAND_SIDES.index(h.side))
        return CropPrediction(hands=found)
