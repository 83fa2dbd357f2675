"""The recorder's accuracy: the evaluation package's scoring of the camera's ground truth, on inputs whose
errors are known by construction."""
import math

import numpy as np
import pytest

from hand_object_pose.evaluation.objects import rotation_error_deg, symmetries_of
from hand_object_pose.evaluation.report import HandObjectAccumulator
from hand_object_pose.inference.result import HandEstimate, HandObjectEstimate, ObjectEstimate
from hand_object_pose.ros.recorder import accuracy_summary, percentiles, truth_labels


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


def _score(*frames):
    """The recorder's accuracy block for (estimate, truth) pairs, scored as the recorder scores them."""
    accumulator = HandObjectAccumulator()
    for estimate, truth in frames:
        accumulator.add_frame(estimate, *truth_labels(truth))
    return accuracy_summary(accumulator, len(frames))


@pytest.fixture
def joints():
    return np.random.default_rng(0).normal(0, 0.05, (21, 3)) + [0, 0, 0.5]


def test_root_relative_mpjpe_ignores_a_global_shift_and_measures_joint_offsets(joints):
    moved = joints + [0.1, -0.05, 0.2]            # same pose elsewhere: root-relative error 0
    bent = joints.copy()
    bent[8] += [0.021, 0.0, 0.0]                  # one joint 21 mm off: mean over 21 joints = 1 mm
    estimate = HandObjectEstimate(hands=[_hand("right", moved), _hand("left", bent)])
    accuracy = _score((estimate, _truth(joints, joints)))
    # The labels hold float32 joints (datasets.HandLabel): exact to a few 1e-5 mm at 0.5 m.
    assert accuracy["mpjpe_mm"]["right"] == pytest.approx(0.0, abs=1e-4)
    assert accuracy["mpjpe_mm"]["left"] == pytest.approx(1.0, abs=1e-4)
    assert accuracy["hand_presence_accuracy"] == 1.0


def test_presence_counts_missing_and_spurious_hands(joints):
    # Right in the truth but not found; left found but not in the truth.
    estimate = HandObjectEstimate(hands=[_hand("right", joints, present=False), _hand("left", joints)])
    accuracy = _score((estimate, _truth(joints)))
    assert accuracy["hand_presence_accuracy"] == 0.0
    assert accuracy["mpjpe_mm"] == {"right": None, "left": None}
    assert accuracy["hands_scored"] == {"right": 0, "left": 0}


def test_object_errors_translation_rotation_and_symmetry(joints):
    obj = ObjectEstimate("o", 1.0, _rot_z(90), np.array([0.01, 0.0, 0.5]))
    estimate = HandObjectEstimate(hands=[_hand("right", joints)], objects=[obj])
    plain = _score((estimate, _truth(joints)))
    assert plain["object_translation_error_mm"] == pytest.approx(10.0)
    assert plain["object_rotation_error_deg"] == pytest.approx(90.0, abs=1e-6)
    assert plain["objects_scored"] == 1 and plain["objects_missed"] == 0
    # A body symmetric about its z axis: a rotation about z is no error.
    continuous = _score((estimate, _truth(joints, symmetry={"kind": "continuous", "axis": [0, 0, 1]})))
    assert continuous["object_rotation_error_deg"] == pytest.approx(0.0, abs=1e-4)
    half_turn = symmetries_of({"kind": "discrete", "axis": [0, 0, 1], "order": 2})
    assert rotation_error_deg(_rot_z(180), np.eye(3), half_turn) == pytest.approx(0.0, abs=1e-4)
    assert rotation_error_deg(_rot_z(30), np.eye(3)) == pytest.approx(30.0)


def test_objects_are_matched_by_catalogue_id(joints):
    """The truth's object is compared with the estimated object of its id, not with the first one."""
    other = ObjectEstimate("other", 0.9, np.eye(3), np.array([0.3, 0.0, 0.5]))
    same = ObjectEstimate("o", 0.8, np.eye(3), np.array([0.0, 0.002, 0.5]))
    accuracy = _score((HandObjectEstimate(hands=[_hand("right", joints)], objects=[other, same]), _truth(joints)))
    assert accuracy["object_translation_error_mm"] == pytest.approx(2.0)
    missed = _score((HandObjectEstimate(hands=[_hand("right", joints)], objects=[other]), _truth(joints)))
    assert missed["objects_scored"] == 0 and missed["objects_missed"] == 1
    assert missed["object_translation_error_mm"] is None


def test_summary_aggregates_frames_and_mrrpe(joints):
    left = joints + [0.2, 0, 0]
    frames = []
    for offset in (0.0, 0.042):                   # the left hand 0 then 42 mm too far right
        estimate = HandObjectEstimate(hands=[_hand("right", joints), _hand("left", left + [offset, 0, 0])])
        frames.append((estimate, _truth(joints, left)))
    summary = _score(*frames)
    assert summary["frames_evaluated"] == 2
    assert summary["mpjpe_mm"] == {"right": pytest.approx(0.0, abs=1e-4), "left": pytest.approx(0.0, abs=1e-4)}
    assert summary["hands_scored"] == {"right": 2, "left": 2}
    assert summary["mrrpe_mm"] == pytest.approx(21.0, abs=1e-4)
    assert summary["hand_presence_accuracy"] == 1.0
    assert summary["object_translation_error_mm"] is None   # no object estimated: the truth's is missed
    assert summary["objects_missed"] == 2
    assert accuracy_summary(HandObjectAccumulator(), 0) is None


def test_percentiles_skip_non_finite():
    stats = percentiles([1.0, 2.0, 3.0, float("nan")])
    assert stats["n"] == 3 and stats["p50"] == 2.0 and stats["mean"] == 2.0
    assert percentiles([]) is None
