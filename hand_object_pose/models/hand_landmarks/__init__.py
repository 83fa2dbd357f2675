"""hand_landmarks: 21 joints per hand from MediaPipe's hand landmark network (Apache-2.0), run by the
offline hand detector (`inference.hand_detection`) on ONNX Runtime. Hands only, no object.

It has no torch model and no training here: the network ships as ONNX in models/hand_detector
(`tools/convert_mediapipe_hands`). `FAMILY` is the registry's family object.
"""
from .family import FAMILY, PRESETS, HandLandmarksConfig

__all__ = ["FAMILY", "PRESETS", "HandLandmarksConfig"]
