"""Plausibility of placed hands (inference.plausibility) and the crop tracker's bound to the image."""
import numpy as np
import pytest

from hand_object_pose.inference.crops import CropTracker
from hand_object_pose.inference.plausibility import (BONE_LENGTHS, NON_POSITIVE_DEPTH, OUTSIDE_VIEW, bone_lengths,
                                                     implausibility)

K = np.array([[300.0, 0.0, 160.0], [0.0, 300.0, 120.0], [0.0, 0.0, 1.0]])
WIDTH, HEIGHT = 320, 240


def hand_at(centre, finger_bones=(0.04, 0.025, 0.02), scale=1.0):
    """A flat open hand (canonical order, wrist first) with human bone lengths, wrist at `centre`."""
    joints = [np.zeros(3)]
    for finger, angle in enumerate(np.radians([-60, -20, 0, 20, 40])):
        direction = np.array([np.sin(angle), -np.cos(angle), 0.0])
        point = direction * (0.03 if finger == 0 else 0.08)
        joints.append(point)
        for length in finger_bones:
            point = point + direction * length
            joints.append(point)
    return np.asarray(joints) * scale + np.asarray(centre, float)


def test_a_human_hand_in_view_is_plausible():
    joints = hand_at([0.0, 0.05, 0.5])
    assert 0.7 < bone_lengths(joints).sum() < 0.8
    assert implausibility(joints, K, WIDTH, HEIGHT) == ""
    # Partly outside the image, or beside it by less than an image size: still possible.
    assert implausibility(hand_at([0.6, 0.05, 0.5]), K, WIDTH, HEIGHT) == ""


@pytest.mark.parametrize("joints,reason", [
    (hand_at([0.0, 0.0, -0.5]), NON_POSITIVE_DEPTH),                        # behind the camera
    (hand_at([0.0, 0.0, 0.01]) - [0, 0, 0.02], NON_POSITIVE_DEPTH),         # partly behind
    (np.full((21, 3), np.nan), NON_POSITIVE_DEPTH),
    (hand_at([-91.6, -113.3, 0.5]), OUTSIDE_VIEW),                          # the 1x1-image case of issue 15
    (hand_at([0.0, 0.0, 0.5], scale=3.0), BONE_LENGTHS),                    # 2.4 m of bones
    (hand_at([0.0, 0.0, 0.5], scale=0.2), BONE_LENGTHS),                    # a doll's hand
    (hand_at([0.0, 0.0, 0.5], finger_bones=(0.04, 0.13, 0.001)), BONE_LENGTHS),  # 10 bones out of range
])
def test_impossible_hands_name_their_reason(joints, reason):
    assert implausibility(joints, K, WIDTH, HEIGHT) == reason


def test_the_view_check_needs_the_image_size():
    assert implausibility(hand_at([-91.6, -113.3, 0.5]), K) == ""


def test_tracked_box_is_dropped_once_its_centre_leaves_the_image():
    tracker = CropTracker(lost_after=5)
    tracker.update(np.array([-30.0, -30.0, 100.0, 100.0]))       # centre (20, 20): partly outside, kept
    assert tracker.box_inside(WIDTH, HEIGHT) is not None
    tracker.update(np.array([-130.0, 50.0, 100.0, 100.0]))       # centre (-80, 100): left the image
    assert tracker.box_inside(WIDTH, HEIGHT) is None and tracker.box is None
    tracker.update(np.array([np.nan, 0.0, 10.0, 10.0]))
    assert tracker.box_inside(WIDTH, HEIGHT) is None
