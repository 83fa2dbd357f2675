"""Smooth synthetic sequences: small steps between frames, ground truth consistent with the pixels, disk round trip."""
import json

import numpy as np
import pytest

from hand_object_pose.geometry.camera import project_points
from hand_object_pose.synthetic.sequence import SequenceConfig, SequenceRenderer, load_sequence, render_sequence

SMALL = dict(num_frames=90, image_size=(160, 120))   # the demo's length: 6 s at 15 Hz


@pytest.fixture(scope="module")
def renderer():
    return SequenceRenderer(SequenceConfig(**SMALL))


def test_consecutive_frames_move_little_but_the_sequence_moves(renderer):
    frames = [renderer.frame(i) for i in range(0, 4)]
    for a, b in zip(frames, frames[1:]):
        for side in a.truth.hands:
            step = np.linalg.norm(a.truth.hands[side]["joints_cam"] - b.truth.hands[side]["joints_cam"], axis=1)
            assert step.max() < 0.015, f"{side} joint moved {step.max() * 1000:.1f} mm in one frame"
        shift = np.linalg.norm(a.truth.objects[0]["translation"] - b.truth.objects[0]["translation"])
        assert shift < 0.01
    middle = renderer.frame(45)                   # half a period later: clearly elsewhere, fingers opened
    far = np.linalg.norm(middle.truth.hands["right"]["joints_cam"] - frames[0].truth.hands["right"]["joints_cam"],
                         axis=1)
    assert far.max() > 0.02
    assert np.abs(middle.rgb.astype(int) - frames[0].rgb.astype(int)).mean() > 1.0


def test_ground_truth_matches_the_rendering(renderer):
    frame = renderer.frame(3)
    R = frame.truth.objects[0]["rotation"]
    assert np.allclose(R @ R.T, np.eye(3), atol=1e-9)
    assert frame.depth.shape == (120, 160) and frame.rgb.shape == (120, 160, 3)
    # The object's centre is rendered at about its depth (the object is in front of nothing else).
    u, v = np.round(project_points(frame.truth.objects[0]["translation"][None], frame.K)[0]).astype(int)
    assert 0 <= u < 160 and 0 <= v < 120
    for side, hand in frame.truth.hands.items():
        assert np.allclose(hand["joints_2d"], project_points(hand["joints_cam"], frame.K))


def test_render_and_load_round_trip(tmp_path):
    config = SequenceConfig(num_frames=3, image_size=(96, 72))
    path = render_sequence(config, tmp_path)
    loaded = load_sequence(tmp_path)
    direct = SequenceRenderer(config).frame(2)
    assert len(loaded) == 3 and np.allclose(loaded.K, direct.K)
    assert np.array_equal(loaded.rgb(2), direct.rgb)
    depth_mm = loaded.depth_mm(2)
    valid = direct.depth > 0
    assert np.abs(depth_mm[valid] / 1000.0 - direct.depth[valid]).max() <= 0.0005 + 1e-6
    assert np.allclose(loaded.truths[2].hands["right"]["joints_cam"], direct.truth.hands["right"]["joints_cam"],
                       atol=1e-6)
    stamp = path.stat().st_mtime_ns
    render_sequence(config, tmp_path)             # same config: reused, not rendered again
    assert path.stat().st_mtime_ns == stamp
    assert json.loads(path.read_text())["config"]["num_frames"] == 3


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="num_frames"):
        SequenceConfig(num_frames=0).validate()
    with pytest.raises(ValueError, match="finger_open"):
        SequenceConfig(finger_open=2.0).validate()
