"""An offline hand detector on ONNX Runtime: MediaPipe's palm detector and hand landmark network
(Apache-2.0, converted by `tools/convert_mediapipe_hands`), with the processing around them written
here (anchors, decoding, weighted NMS, rotated ROIs, tracking). No mediapipe import at run time.

    detector = HandDetector.from_config(HandDetectorConfig(mirrored=False))
    result = detector.process(rgb)          # (H, W, 3) uint8
    for hand in result.hands: hand.side, hand.landmarks_px (21, 2), hand.world_m (21, 3)
"""
from .files import HandDetectorFiles, HandDetectorFilesError, default_dir, locate
from .landmarks import LandmarkNetwork, LandmarkResult, handedness_to_right_score
from .palm import PalmDetection, PalmDetector
from .pipeline import DetectedHand, HandDetections, HandDetector, HandDetectorConfig, HandDetectorStats
from .roi import HandRoi, roi_from_landmarks, roi_from_palm

__all__ = ["DetectedHand", "HandDetections", "HandDetector", "HandDetectorConfig", "HandDetectorFiles",
           "HandDetectorFilesError", "HandDetectorStats", "HandRoi", "LandmarkNetwork", "LandmarkResult",
           "PalmDetection", "PalmDetector", "default_dir", "handedness_to_right_score", "locate",
           "roi_from_landmarks", "roi_from_palm"]
