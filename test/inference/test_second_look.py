"""After the coarse pass saw one hand as both sides, the per-hand path looks at the frame again with that hand and
its forearm painted over (inference/hand_cover.py, per_hand.SECOND_LOOK_PRESENCE): on the shipped default networks
and generated scenes (seed 2001, generator version 12) with known truth."""
from pathlib import Path

import numpy as np
import pytest

from hand_object_pose.inference import per_hand
from hand_object_pose.inference.estimator import Estimator, EstimatorConfig
from hand_object_pose.inference.hand_cover import cover_hands
from hand_object_pose.synthetic.scene import SceneConfig, SceneGenerator

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models" / "default" / "hand_heatmap_r18h.onnx"


def _fingers_up(wrist_uv) -> np.ndarray:
    """(21, 2) keypoints: the wrist at `wrist_uv`, every other joint 30 px above it (image v grows downwards)."""
    uv = np.tile(np.asarray(wrist_uv, np.float64), (21, 1))
    uv[1:, 1] -= 30.0
    return uv


def test_a_covered_hand_and_its_forearm_take_the_frames_mean_colour():
    image = np.zeros((100, 120, 3), np.uint8)
    image[:, :60] = (200, 100, 0)
    box = np.array([40.0, 10.0, 40.0, 40.0])                          # the hand's box: x 40-80, y 10-50
    painted, covered = cover_hands(image, [(_fingers_up((60.0, 45.0)), box)], arm_width=0.5)
    mean = image.reshape(-1, 3).mean(axis=0).astype(np.uint8)
    assert covered[30, 60] and covered[12, 42] and covered[48, 78]    # inside the box
    assert covered[95, 60] and covered[70, 52] and covered[70, 68]    # the forearm: below the wrist, 20 px wide
    assert not covered[70, 45] and not covered[70, 75]                # beside the forearm
    assert not covered[5, 60] and not covered[30, 100]                # above (the fingers' way) and beside the box
    assert np.all(painted[covered] == mean)
    np.testing.assert_array_equal(painted[~covered], image[~covered])
    assert image[30, 60].tolist() == [0, 0, 0]                        # the caller's image is untouched


def test_a_hand_without_a_direction_gets_its_box_painted_only():
    image = np.full((50, 50, 3), 9, np.uint8)
    _, covered = cover_hands(image, [(np.full((21, 2), 25.0), np.array([20.0, 20.0, 10.0, 10.0]))])
    assert covered.sum() == 11 * 11                                   # the box's corners are pixel centres


@pytest.fixture(scope="module")
def estimator() -> Estimator:
    return Estimator(EstimatorConfig(model="hand_heatmap_r18h", model_path=str(DEFAULT_MODEL), warmup_runs=0,
                                     threads=1))


def _reported(estimator, scene, monkeypatch, presence: float) -> dict:
    with monkeypatch.context() as patched:
        patched.setattr(per_hand, "SECOND_LOOK_PRESENCE", presence)
        estimator.reset_tracking()
        result = estimator.estimate(scene.rgb, scene.K, depth_m=scene.depth)
    return {h.side: h for h in result.hands if h.present}


def test_the_hand_missed_beside_a_hand_seen_twice_is_found_by_a_second_look(estimator, monkeypatch):
    """Scene 215: a right and a left hand side by side; the coarse pass put both sides on the right one. Without the
    second look (a presence no hand reaches) one hand is reported; with it both, the left one where it is."""
    scene = SceneGenerator(SceneConfig(image_size=(256, 256))).sample(2001, 215)
    assert sorted(scene.hands) == ["left", "right"]
    assert sorted(_reported(estimator, scene, monkeypatch, 1.01)) == ["right"]
    hands = _reported(estimator, scene, monkeypatch, per_hand.SECOND_LOOK_PRESENCE)
    assert sorted(hands) == ["left", "right"]
    for side, hand in hands.items():
        assert np.linalg.norm(hand.joints_xyz[0] - scene.hands[side].joints_cam[0]) < 0.03   # wrist within 3 cm


def test_a_weak_hand_on_the_second_look_is_not_reported(estimator, monkeypatch):
    """Scene 134: one right hand, seen as both sides; the second look's strongest hand (presence 0.77, at the edge of
    the painted forearm) stays unreported at SECOND_LOOK_PRESENCE and would be a phantom at 0.5."""
    scene = SceneGenerator(SceneConfig(image_size=(256, 256))).sample(2001, 134)
    assert list(scene.hands) == ["right"]
    assert sorted(_reported(estimator, scene, monkeypatch, per_hand.SECOND_LOOK_PRESENCE)) == ["right"]
    assert sorted(_reported(estimator, scene, monkeypatch, 0.5)) == ["left", "right"]
