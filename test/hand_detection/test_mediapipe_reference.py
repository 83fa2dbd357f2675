"""Our ONNX Runtime pipeline against MediaPipe's own runtime: the same landmarks and handedness on
stored frames (test/fixtures/hand_detector, recorded by test/fixtures/hand_detector/make_reference.py with
mediapipe 0.10.21 in a throwaway venv; MediaPipe itself is never imported here)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from hand_object_pose.inference.hand_detection import HandDetector, HandDetectorConfig

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "hand_detector"
REFERENCE = json.loads((FIXTURE / "mediapipe_reference.json").read_text())


@pytest.fixture(scope="module")
def ours():
    # MediaPipe reports handedness as if the image were mirrored: with mirrored=True our sides must
    # carry the same labels.
    detector = HandDetector.from_config(HandDetectorConfig(tracking=False, mirrored=True, unique_sides=False,
                                                           threads=2))
    return [detector.process(cv2.cvtColor(cv2.imread(str(FIXTURE / frame["file"])), cv2.COLOR_BGR2RGB))
            for frame in REFERENCE["frames"]]


def test_the_fixture_has_hands():
    assert REFERENCE["version"] == "0.10.21"
    assert sum(bool(frame["hands"]) for frame in REFERENCE["frames"]) >= 4


def test_same_hands_same_landmarks_same_handedness(ours):
    for frame, result in zip(REFERENCE["frames"], ours):
        assert len(result.hands) == len(frame["hands"]), frame["file"]
        for reference in frame["hands"]:
            expected = np.asarray(reference["landmarks_px"])
            distances = [np.linalg.norm(h.landmarks_px - expected, axis=1).mean() for h in result.hands]
            best = int(np.argmin(distances))
            # Same networks, same processing (anchors, NMS, ROI, warp): within a pixel or two of MediaPipe.
            assert distances[best] < 2.0, (frame["file"], distances)
            assert result.hands[best].side == reference["label"].lower(), frame["file"]


def test_an_ordinary_camera_swaps_mediapipes_labels():
    detector = HandDetector.from_config(HandDetectorConfig(tracking=False, mirrored=False, unique_sides=False,
                                                           threads=2))
    for frame in REFERENCE["frames"]:
        if len(frame["hands"]) != 1:
            continue
        image = cv2.cvtColor(cv2.imread(str(FIXTURE / frame["file"])), cv2.COLOR_BGR2RGB)
        (hand,) = detector.process(image).hands
        swapped = {"Left": "right", "Right": "left"}[frame["hands"][0]["label"]]
        assert hand.side == swapped, frame["file"]
