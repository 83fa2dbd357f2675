"""The detector on rendered stand-in hands (no real photos exist here): upright hands with a forearm,
as a webcam sees a raised hand, are what it finds (shared/reference/hand-detector.md: 35/40)."""
from __future__ import annotations

import numpy as np
import pytest

from hand_object_pose.geometry.rotations import axis_angle_to_matrix
from hand_object_pose.inference.hand_detection import HandDetector, HandDetectorConfig
from hand_object_pose.synthetic.upright_hands import UprightConfig, upright_frames

FRAMES = 40


def _found(hand_truth, hands, within: float = 0.2) -> object:
    """The detected hand whose mean 2D landmark error is < `within` of the true hand's 2D size, or None."""
    size = np.ptp(hand_truth.joints_2d, axis=0).max()
    for hand in hands:
        if np.linalg.norm(hand.landmarks_px - hand_truth.joints_2d, axis=1).mean() < within * size:
            return hand
    return None


@pytest.fixture(scope="module")
def detector():
    return HandDetector.from_config(HandDetectorConfig(tracking=False, threads=2))


@pytest.fixture(scope="module")
def frames():
    return upright_frames(FRAMES, seed=5)


def test_upright_hands_with_forearm_are_found(detector, frames):
    found, palm_side_right, palm_side_total = 0, 0, 0
    for frame in frames:
        result = detector.process(frame.rgb)
        assert result.detector_ran and result.detector_ms > 0
        (side, truth), = frame.hands.items()
        hand = _found(truth, result.hands)
        if hand is None:
            continue
        found += 1
        assert hand.presence >= 0.5 and hand.detection_score >= 0.5
        assert hand.landmarks_px.shape == (21, 2) and hand.world_m.shape == (21, 3)
        # World landmarks: metric, a plausible wrist -> middle-finger-base length (truth ~87 mm).
        assert 0.05 < np.linalg.norm(hand.world_m[9] - hand.world_m[0]) < 0.13
        if np.asarray(axis_angle_to_matrix(truth.mano_pose[:3]))[2, 2] < 0:  # palm towards the camera
            palm_side_total += 1
            palm_side_right += hand.side == side
    # Sides are printed, not asserted: the network takes some of the stand-in's palms for the back of the
    # other hand (and the reverse; fewer since the generator draws creases and knuckles, issue 14), so
    # on renders the side measures that confusion; the handedness mapping
    # itself is checked against MediaPipe's own labels in test_mediapipe_reference.py.
    print(f"found {found}/{FRAMES}; side right on {palm_side_right}/{palm_side_total} palm-side views")
    assert found >= 0.8 * FRAMES


def test_a_frame_without_hands_is_empty_and_counted(detector):
    before = detector.stats.frames_without_hands
    result = detector.process(np.full((480, 640, 3), 90, np.uint8))
    assert result.hands == [] and result.detector_ran
    assert detector.stats.frames_without_hands == before + 1


def test_tracking_follows_the_hand_without_the_detector(frames):
    tracker = HandDetector.from_config(HandDetectorConfig(max_hands=1, threads=2, redetect_interval=0))
    # A frame the detector gets well (landmarks within 10 % of the hand size): tracking is tested, not
    # the detector on a borderline frame.
    frame = next(f for f in frames if _found(next(iter(f.hands.values())), HandDetector.from_config(
        HandDetectorConfig(tracking=False, threads=2)).process(f.rgb).hands, within=0.1) is not None)
    truth = next(iter(frame.hands.values()))
    ran = []
    for step in range(6):
        shift = 4 * step
        image = np.roll(frame.rgb, shift, axis=1)
        result = tracker.process(image)
        ran.append(result.detector_ran)
        assert len(result.hands) == 1
        error = np.linalg.norm(result.hands[0].landmarks_px - (truth.joints_2d + [shift, 0]), axis=1).mean()
        assert error < 0.2 * np.ptp(truth.joints_2d, axis=0).max()
        assert result.hands[0].tracked == (step > 0)
    assert ran == [True] + [False] * 5
    # The hand leaves: the tracked ROI finds nothing (empty result, no detector run); the next frame
    # looks for it again with the detector.
    gone = tracker.process(np.zeros_like(frame.rgb))
    assert gone.hands == [] and not gone.detector_ran
    assert tracker.process(frame.rgb).detector_ran
    assert tracker.stats.detector_runs == 2 and tracker.stats.frames == 8
    assert tracker.stats.frames_without_hands == 1


def test_redetect_interval_forces_the_detector(frames):
    tracker = HandDetector.from_config(HandDetectorConfig(max_hands=1, threads=2, redetect_interval=2))
    ran = [tracker.process(frames[0].rgb).detector_ran for _ in range(5)]
    assert ran[0] and sum(ran) >= 2


def test_two_hands_get_two_sides():
    frames = upright_frames(6, seed=21, config=UprightConfig(p_back=0.0), sides=("right", "left"))
    detector = HandDetector.from_config(HandDetectorConfig(tracking=False, threads=2))
    both = 0
    for frame in frames:
        result = detector.process(frame.rgb)
        assert len(result.hands) <= 2
        if len(result.hands) == 2:
            assert {h.side for h in result.hands} == {"right", "left"}
            assert result.hands[0].side == "right"
            both += all(_found(truth, result.hands) is not None for truth in frame.hands.values())
    assert both >= 3


def test_looking_for_a_second_hand_does_not_re_detect_every_frame(frames):
    # One hand in view, two allowed: the palm detector looks for more every `search_interval` frames;
    # finding the tracked hand again is no loss (it must not force a detector run on every frame).
    tracker = HandDetector.from_config(HandDetectorConfig(max_hands=2, search_interval=3, threads=2))
    single = HandDetector.from_config(HandDetectorConfig(tracking=False, threads=2))
    # One hand found, and well (within 10 % of its size), so that tracking keeps it.
    frame = next(f for f in frames if len(hands := single.process(f.rgb).hands) == 1
                 and _found(next(iter(f.hands.values())), hands, within=0.1) is not None)
    ran = [tracker.process(frame.rgb).detector_ran for _ in range(9)]
    assert ran == [True, False, False, True, False, False, True, False, False]
    assert tracker.stats.detector_runs_per_s() == pytest.approx(3 / 5.0)
    assert tracker.stats.detector_runs_per_s(now_s=1e12) == 0.0   # the window forgets old runs
