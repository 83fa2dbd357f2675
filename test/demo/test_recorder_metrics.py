"""The recorder's accuracy metrics on inputs whose errors are known by construction."""
import math

import numpy as np
import pytest

from hand_object_pose.inference.result import HandEstimate, HandObjectEstimate, ObjectEstimate
from hand_object_pose.ros.recorder import accuracy_summary, frame_errors, percentiles, rotation_error_deg


def _rot_z(deg):
    a = math.radians(deg)
    return np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])


def _truth(joints_right, joints_left=None, rotation=np.eye(3), translation=(0, 0, 0.5), symmetry=None):
    hands = {"right": {"joints_cam": joints_right.tolist(), "joints_2d": np.zeros((21, 2)).tolist()}}
    if joints_left is not None:
        hands["left"] = {"joints_cam": joints_left.tolist(), "joints_2d": np.zeros((21, 2)).tolist()}
    return {"hands": hands, "objects": [{"object_id": "o", "rotation": np.asarray(rotation).tolist(),
                                         "translation": list(translation), "symmetry": symmetry or {"kind": "none"}}]}


def _hand(side, joints, present=True):
    return HandEstimate(side=side, present=present, confidence=1.0, joints_xyz=joints, joints_uv=np.zeros((21, 2)),
                        joint_confidence=np.ones(21))


@pytest.fixture
def joints():
    return np.random.default_rng(0).normal(0, 0.05, (21, 3)) + [0, 0, 0.5]


def test_root_relative_mpjpe_ignores_a_global_shift_and_measures_joint_offsets(joints):
    moved = joints + [0.1, -0.05, 0.2]            # same pose elsewhere: root-relative error 0
    bent = joints.copy()
    bent[8] += [0.021, 0.0, 0.0]                  # one joint 21 mm off: mean over 21 joints = 1 mm
    estimate = HandObjectEstimate(hands=[_hand("right", moved), _hand("left", bent)])
    errors = frame_errors(estimate, _truth(joints, joints))
    assert errors["mpjpe_mm"]["right"] == pytest.approx(0.0, abs=1e-9)
    assert errors["mpjpe_mm"]["left"] == pytest.approx(1.0)
    assert errors["presence"] == {"right": True, "left": True}


def test_presence_counts_missing_and_spurious_hands(joints):
    # Right in the truth but not found; left found but not in the truth.
    estimate = HandObjectEstimate(hands=[_hand("right", joints, present=False), _hand("left", joints)])
    errors = frame_errors(estimate, _truth(joints))
    assert errors["presence"] == {"right": False, "left": False}
    assert errors["mpjpe_mm"] == {}


def test_object_errors_translation_rotation_and_symmetry(joints):
    obj = ObjectEstimate("o", 1.0, _rot_z(90), np.array([0.01, 0.0, 0.5]))
    estimate = HandObjectEstimate(hands=[_hand("right", joints)], objects=[obj])
    plain = frame_errors(estimate, _truth(joints))["object"]
    assert plain["translation_mm"] == pytest.approx(10.0)
    assert plain["rotation_deg"] == pytest.approx(90.0, abs=1e-6)
    # A body symmetric about its z axis: a rotation about z is no error.
    continuous = frame_errors(estimate, _truth(joints, symmetry={"kind": "continuous", "axis": [0, 0, 1]}))
    assert continuous["object"]["rotation_deg"] == pytest.approx(0.0, abs=1e-4)
    assert rotation_error_deg(_rot_z(180), np.eye(3), {"kind": "discrete", "axis": [0, 0, 1], "order": 2}) \
        == pytest.approx(0.0, abs=1e-4)
    assert rotation_error_deg(_rot_z(30), np.eye(3)) == pytest.approx(30.0)


def test_summary_aggregates_frames_and_mrrpe(joints):
    left = joints + [0.2, 0, 0]
    frames = []
    for offset in (0.0, 0.042):                   # the left hand 0 then 42 mm too far right
        estimate = HandObjectEstimate(hands=[_hand("right", joints), _hand("left", left + [offset, 0, 0])])
        frames.append(frame_errors(estimate, _truth(joints, left)))
    summary = accuracy_summary(frames)
    assert summary["frames_evaluated"] == 2
    assert summary["mpjpe_mm"] == {"right": pytest.approx(0.0, abs=1e-9), "left": pytest.approx(0.0, abs=1e-9)}
    assert summary["mrrpe_mm"] == pytest.approx(21.0)
    assert summary["hand_presence_accuracy"] == 1.0
    assert summary["object_translation_error_mm"] is None
    assert accuracy_summary([]) is None


def test_percentiles_skip_non_finite():
    stats = percentiles([1.0, 2.0, 3.0, float("nan")])
    assert stats["n"] == 3 and stats["p50"] == 2.0 and stats["mean"] == 2.0
    assert percentiles([]) is None
