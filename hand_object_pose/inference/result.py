"""The one result type that crosses from `inference/` to its users (ROS layer, demo, evaluation).

Conventions (ARCHITECTURE.md): metres and radians, the camera's OpenCV optical frame (x right,
y down, z forward), joints in the canonical wrist-first order of `geometry.skeleton`
(wrist, thumb1-4, index1-4, middle1-4, ring1-4, pinky1-4, each base -> tip), 2D positions in
pixels of the full input image. Right hand first wherever a pair is stored; sides are named.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

RIGHT = "right"
LEFT = "left"
HAND_SIDES = (RIGHT, LEFT)

# Where the absolute root (wrist) depth came from.
DEPTH_FROM_DEPTH_IMAGE = "depth_image"
DEPTH_FROM_2D_FIT = "fit_2d"
DEPTH_FROM_DEFAULT = "default"


@dataclass
class HandEstimate:
    side: str                              # RIGHT or LEFT
    present: bool
    confidence: float                      # hand presence probability in [0, 1]
    joints_xyz: np.ndarray                 # (21, 3) float, metres, camera optical frame
    joints_uv: np.ndarray                  # (21, 2) float, pixels of the full image
    joint_confidence: np.ndarray           # (21,) float in [0, 1]
    wrist_rotation: Optional[np.ndarray] = None   # (3, 3) camera <- wrist frame, if known
    mano_pose: Optional[np.ndarray] = None        # (48,) axis-angle, radians (global orient first)
    mano_shape: Optional[np.ndarray] = None       # (10,) betas
    vertices: Optional[np.ndarray] = None         # (778, 3) metres, camera frame
    faces: Optional[np.ndarray] = None            # (1538, 3) int
    root_depth_source: str = DEPTH_FROM_DEFAULT
    crop_box: Optional[np.ndarray] = None         # (4,) x0, y0, width, height in image pixels
    implausible: str = ""                         # why the hand was set not present although the network
                                                  # saw one (inference.plausibility.REASONS), else ""


@dataclass
class ObjectEstimate:
    object_id: str                         # id in the object catalogue
    confidence: float
    rotation: np.ndarray                   # (3, 3) camera <- object
    translation: np.ndarray                # (3,) metres, camera frame
    vertices: Optional[np.ndarray] = None  # (V, 3) metres, camera frame
    faces: Optional[np.ndarray] = None     # (F, 3) int


@dataclass
class HandObjectEstimate:
    """Everything estimated from one image."""

    hands: list = field(default_factory=list)      # list[HandEstimate], right first
    objects: list = field(default_factory=list)    # list[ObjectEstimate]
    model: str = ""                                # preset name
    backend: str = ""                              # e.g. "torch:cpu", "onnxruntime:CUDAExecutionProvider"
    timings_ms: dict = field(default_factory=dict) # stage name -> milliseconds
    warnings: list = field(default_factory=list)   # list[str]: input problems worked around in this frame
    crop_source: str = ""                          # how the crop was chosen: roi, fixed, tracking, full_frame, detector
    # The offline hand detector's report when it ran (crop_source "detector"): "ran" (the palm
    # detector ran on this frame, else tracking), "palm_scores" (its detections' scores), "hands"
    # (hands found), "detection_scores" / "presence" (side -> score of each found hand),
    # "detector_runs_per_s", "frames_without_hands"; for hand_landmarks "reprojection_error_px"
    # (side -> mean pixel error of the placed joints against the landmarks). Empty without a detector.
    detector: dict = field(default_factory=dict)

    def hand(self, side: str) -> Optional[HandEstimate]:
        return next((h for h in self.hands if h.side == side), None)
