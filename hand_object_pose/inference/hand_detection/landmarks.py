"""The hand landmark network on one rotated hand ROI, with its outputs mapped back to the full image.

Network: 224 x 224 RGB in [0, 1] (NHWC) -> "landmarks" (1, 63): 21 x (x, y, z) in crop pixels (z:
depth relative to the wrist, same scale as x, smaller = nearer the camera), "presence" (1, 1) in
[0, 1], "handedness" (1, 1) in [0, 1] (MediaPipe labels a hand "Left" when it is > 0.5, a label that
assumes a mirrored, selfie-style image: on an ordinary camera > 0.5 means a right hand),
"world_landmarks" (1, 63): 21 x (x, y, z) metres,
origin near the hand's centre, axes of the crop (x right, y down, z away from the camera).
Landmarks are in the canonical order (wrist; thumb, index, middle, ring, pinky, base to tip).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .roi import HandRoi

LANDMARK_INPUT_SIZE = 224
NUM_LANDMARKS = 21


@dataclass(frozen=True)
class LandmarkResult:
    landmarks_px: np.ndarray      # (21, 2) full-image pixels
    depth_px: np.ndarray          # (21,) wrist-relative depth, image-pixel scale (smaller = nearer)
    world_m: np.ndarray           # (21, 3) metres, image-aligned axes (x right, y down, z forward),
    #                               origin near the hand's centre
    presence: float               # in [0, 1]
    right_score: float            # probability that it is a right hand, given the camera's mirroring
    roi: HandRoi


def handedness_to_right_score(handedness: float, mirrored: bool) -> float:
    """Probability of a right hand from the network's handedness output.

    MediaPipe reads the output as the probability of its label "Left" and documents that the labels
    assume a mirrored (selfie) image; on an ordinary camera the label is swapped. So on a non-mirrored
    image the output is the probability of a right hand, on a mirrored one of a left hand.
    test/hand_detection/test_mediapipe_reference.py checks that with `mirrored=True` our sides are
    MediaPipe's own labels on the same frames. (On the project's rendered stand-in hands the network
    confuses the palm with the back of the hand, whose mirror image it is, so render-based side
    checks measure that confusion, not this mapping.)"""
    handedness = float(np.clip(handedness, 0.0, 1.0))
    return 1.0 - handedness if mirrored else handedness


class LandmarkNetwork:
    """Runs the landmark network. `run` takes {"image": (1, 224, 224, 3) float32} and returns a dict
    with "landmarks", "presence", "handedness", "world_landmarks" (e.g. `OnnxRuntimeBackend.run`)."""

    def __init__(self, run, mirrored: bool = False, input_size: int = LANDMARK_INPUT_SIZE):
        self.run = run
        self.mirrored = bool(mirrored)
        self.input_size = int(input_size)

    def __call__(self, image: np.ndarray, roi: HandRoi) -> LandmarkResult:
        """Landmarks of the hand in `roi` of an (H, W, 3) uint8 RGB image."""
        size = self.input_size
        crop = roi.crop(image, size).astype(np.float32) * np.float32(1.0 / 255.0)
        outputs = self.run({"image": crop[None]})
        raw = np.asarray(outputs["landmarks"], np.float64).reshape(NUM_LANDMARKS, 3)
        world = np.asarray(outputs["world_landmarks"], np.float64).reshape(NUM_LANDMARKS, 3)
        world_image = np.concatenate([roi.rotate_to_image_axes(world[:, :2]), world[:, 2:]], axis=1)
        return LandmarkResult(landmarks_px=roi.to_image(raw[:, :2], size),
                              depth_px=raw[:, 2] * (roi.size_px / size),
                              world_m=world_image,
                              presence=float(np.asarray(outputs["presence"]).reshape(-1)[0]),
                              right_score=handedness_to_right_score(
                                  float(np.asarray(outputs["handedness"]).reshape(-1)[0]), self.mirrored),
                              roi=roi)
