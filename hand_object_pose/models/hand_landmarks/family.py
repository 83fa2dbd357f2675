"""The hand_landmarks family object (see `models.family.ModelFamily`).

The network is MediaPipe's hand landmark model: a rotated, upright 224 x 224 RGB crop (NHWC, [0, 1])
-> 21 landmarks (x, y in crop pixels, z relative depth), hand presence, handedness and 21 metric
"world" landmarks (metres, origin near the hand's centre). It always runs inside the hand detector,
which chooses its rotated crops and tracks them; the Estimator takes the detector's hands as this
family's prediction (`runs_on_hand_detector`). The ONNX files are in models/hand_detector.
"""
from __future__ import annotations

from dataclasses import dataclass

from hand_object_pose.geometry.skeleton import JOINT_NAMES

from ..family import ModelFamily

OUTPUT_NAMES = ("landmarks", "presence", "handedness", "world_landmarks")


@dataclass(frozen=True)
class HandLandmarksConfig:
    input_size: int = 224
    variant: str = "lite"     # the converted MediaPipe model size (models/hand_detector/metadata.json)


PRESETS = {
    "hand_landmarks": HandLandmarksConfig(),
}


class HandLandmarksFamily(ModelFamily):
    """MediaPipe's hand landmark network (ONNX only), run by the offline hand detector."""

    name = "hand_landmarks"
    presets = PRESETS
    channels = "RGB"
    runs_on_hand_detector = True

    def build(self, config, **assets):
        raise ValueError("hand_landmarks is MediaPipe's hand landmark network, shipped as ONNX only "
                         "(models/hand_detector) and run by the hand detector: it has no torch model; "
                         "use backend onnxruntime")

    def output_names(self, config) -> tuple:
        return OUTPUT_NAMES

    def joint_order(self, config) -> dict:
        return {"name": "canonical (wrist; thumb, index, middle, ring, pinky, base to tip)",
                "joints": list(JOINT_NAMES)}


FAMILY = HandLandmarksFamily()
