"""The hand detector inside the Estimator: the hand_landmarks family (hands only, metric joints with
the root from the depth image, the 2D fit or the default depth) and crop_source "detector" for a
network family (one crop around the detected hands; no hands = empty result, network not run)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from hand_object_pose.inference.estimator import TIMING_STAGES, Estimator, EstimatorConfig
from hand_object_pose.synthetic.upright_hands import upright_frames

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def frames():
    # Frames whose hand the detector finds (tests/hand_detection/test_renders.py: 36 of 40).
    return upright_frames(6, seed=5)


@pytest.fixture(scope="module")
def landmarks_estimator():
    return Estimator(EstimatorConfig(model="hand_landmarks", threads=2))


def test_hand_landmarks_places_hands_in_metres(landmarks_estimator, frames):
    placed = 0
    for frame in frames:
        landmarks_estimator.reset_tracking()
        result = landmarks_estimator.estimate(frame.rgb, frame.K)
        assert result.crop_source == "detector" and result.objects == []
        assert result.detector["ran"] and "detector" in result.timings_ms
        assert set(result.timings_ms) <= set(TIMING_STAGES)
        (side, truth), = frame.hands.items()
        for hand in result.hands:
            assert hand.joints_xyz.shape == (21, 3) and hand.joints_uv.shape == (21, 2)
            assert hand.root_depth_source == "fit_2d"
            error_px = np.linalg.norm(hand.joints_uv - truth.joints_2d, axis=1).mean()
            if error_px > 0.2 * np.ptp(truth.joints_2d, axis=0).max():
                continue
            placed += 1
            # Root depth from the metric world landmarks and the intrinsics: within 15 cm at 0.4-0.6 m
            # (the stand-in hand is not the real hands the network learnt sizes from).
            assert abs(hand.joints_xyz[0, 2] - truth.joints_cam[0, 2]) < 0.15
            assert result.detector["reprojection_error_px"][hand.side] < 25.0
            assert hand.crop_box is not None and hand.crop_box[2] > 0
    assert placed >= 4


def test_depth_image_and_default_depth(landmarks_estimator, frames):
    frame = frames[0]
    depth = np.full(frame.rgb.shape[:2], 0.8, np.float32)
    landmarks_estimator.reset_tracking()
    result = landmarks_estimator.estimate(frame.rgb, frame.K, depth_m=depth)
    assert result.hands and result.hands[0].root_depth_source == "depth_image"
    # Palm at 0.8 m + the surface offset, each sampled joint corrected by its own relative depth (the
    # network sees the stand-in's fingers a few cm nearer than the wrist).
    assert 0.78 < result.hands[0].joints_xyz[0, 2] < 0.92
    config = EstimatorConfig(model="hand_landmarks", threads=2, depth_sources=("default",), default_depth_m=0.7)
    result = Estimator(config).estimate(frame.rgb, frame.K)
    assert result.hands[0].root_depth_source == "default"
    assert result.hands[0].joints_xyz[0, 2] == pytest.approx(0.7)


def test_a_frame_without_hands_is_an_empty_result(landmarks_estimator):
    before = landmarks_estimator._hand_detector.stats.frames_without_hands
    result = landmarks_estimator.estimate(np.full((480, 640, 3), 100, np.uint8), np.diag([500.0, 500.0, 1.0]))
    assert result.hands == [] and result.objects == []
    assert result.detector["frames_without_hands"] == before + 1


@pytest.mark.parametrize("changes,field", [
    ({"model_path": "x.onnx"}, "model_path"), ({"crop_source": "roi"}, "crop_source"),
    ({"backend": "torch", "allow_random_weights": True}, "backend")])
def test_hand_landmarks_config_errors(changes, field):
    with pytest.raises(ValueError, match=f"EstimatorConfig.{field}="):
        EstimatorConfig(model="hand_landmarks", **changes).validate()


def test_missing_or_corrupt_detector_files_stop_at_construction(tmp_path):
    with pytest.raises(FileNotFoundError, match="hand detector metadata not found") as info:
        Estimator(EstimatorConfig(model="hand_landmarks", hand_detector_dir=str(tmp_path)))
    assert "\n" not in str(info.value)
    copy = tmp_path / "detector"
    shutil.copytree(REPO / "models" / "hand_detector", copy)
    (copy / "hand_landmark_lite.onnx").write_bytes(b"garbage")
    with pytest.raises(FileNotFoundError, match="does not match the sha256"):
        Estimator(EstimatorConfig(model="hand_landmarks", hand_detector_dir=str(copy)))


def test_crop_source_detector_for_a_network_family(frames):
    estimator = Estimator(EstimatorConfig(model="kpt_h2o3d_3d_lite", backend="torch", allow_random_weights=True,
                                          crop_source="detector", threads=2, warmup_runs=0,
                                          presence_threshold=0.0))
    frame = frames[0]
    (side, truth), = frame.hands.items()
    result = estimator.estimate(frame.rgb, frame.K)
    assert result.crop_source == "detector" and "inference" in result.timings_ms
    box = result.hands[0].crop_box
    # The crop holds the detected hand: (almost) every true keypoint is inside it (the landmarks may
    # fall short of a fingertip by a few pixels).
    inside = ((truth.joints_2d >= box[:2]) & (truth.joints_2d <= box[:2] + box[2:])).all(axis=1)
    assert inside.sum() >= 19
    # Without hands the network is not run and the result is empty.
    empty = estimator.estimate(np.full((480, 640, 3), 100, np.uint8), frame.K)
    assert empty.hands == [] and "inference" not in empty.timings_ms and empty.crop_source == "detector"


def test_a_two_hand_network_gets_one_crop_around_both_hands():
    from hand_object_pose.synthetic.upright_hands import UprightConfig

    estimator = Estimator(EstimatorConfig(model="kpt_h2o3d_3d_lite", backend="torch", allow_random_weights=True,
                                          crop_source="detector", threads=2, warmup_runs=0,
                                          presence_threshold=0.0))
    checked = 0
    for frame in upright_frames(4, seed=21, config=UprightConfig(p_back=0.0), sides=("right", "left")):
        estimator.reset_tracking()
        result = estimator.estimate(frame.rgb, frame.K)
        if result.detector["hands"] != 2:
            continue
        checked += 1
        box = result.hands[0].crop_box
        truth = np.concatenate([hand.joints_2d for hand in frame.hands.values()])
        inside = ((truth >= box[:2]) & (truth <= box[:2] + box[2:])).all(axis=1)
        assert inside.mean() >= 0.9     # both hands (and the space between them) in the one crop
    assert checked >= 2
