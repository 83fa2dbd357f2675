"""Is a placed hand physically possible? Checks of a hand's camera-frame joints before it is reported
as present.

A network (untrained, or far outside its training data: a 1x1 image, a crop that drifted off the
image) can output joints no camera could have seen: behind the camera, kilometres beside the image,
or with fingers half a metre long. Such a hand is reported as not present, with the reason, instead
of reaching TF and the markers as a "present" hand.

Reasons (`implausibility` returns one, or "" for a plausible hand):
* NON_POSITIVE_DEPTH: a joint is not finite or not in front of the camera (z <= 0);
* OUTSIDE_VIEW: the hand's centre projects more than one image width / height outside the image;
* BONE_LENGTHS: the 20 bones sum to a length no human hand has, or more than a few bones are
  outside the length range of their kind.
"""
from __future__ import annotations

import numpy as np

from hand_object_pose.geometry.skeleton import BONES, WRIST

NON_POSITIVE_DEPTH = "non_positive_depth"
OUTSIDE_VIEW = "outside_view"
BONE_LENGTHS = "bone_lengths"
REASONS = (NON_POSITIVE_DEPTH, OUTSIDE_VIEW, BONE_LENGTHS)

# Human ranges, metres, generous (a child's hand to a large adult's, plus estimation error): bones
# from the wrist (to the thumb's CMC and the fingers' MCPs) and the finger bones after those.
WRIST_BONE_M = (0.01, 0.15)
FINGER_BONE_M = (0.005, 0.10)
HAND_SIZE_M = (0.3, 1.6)          # summed length of the 20 bones (an adult's is about 0.75 m)
MAX_BONES_OUT_OF_RANGE = 4        # a few bad bones (an occluded fingertip) do not make a hand impossible


def bone_lengths(joints_xyz: np.ndarray) -> np.ndarray:
    """(20,) lengths in metres of the canonical skeleton's bones."""
    joints = np.asarray(joints_xyz, np.float64)
    return np.array([np.linalg.norm(joints[child] - joints[parent]) for parent, child in BONES])


def implausibility(joints_xyz: np.ndarray, K: np.ndarray, image_width: int = 0, image_height: int = 0) -> str:
    """The reason why a hand with these (21, 3) camera-frame joints (metres) cannot be real, or "".

    K: (3, 3) intrinsics in pixels; image_width / image_height: the image size (0 = unknown: the
    view check is skipped).
    """
    joints = np.asarray(joints_xyz, np.float64)
    if not np.all(np.isfinite(joints)) or np.any(joints[:, 2] <= 0.0):
        return NON_POSITIVE_DEPTH
    if image_width > 0 and image_height > 0:
        centre = joints.mean(axis=0)
        u = K[0, 0] * centre[0] / centre[2] + K[0, 2]
        v = K[1, 1] * centre[1] / centre[2] + K[1, 2]
        if not (-image_width <= u <= 2 * image_width and -image_height <= v <= 2 * image_height):
            return OUTSIDE_VIEW
    lengths = bone_lengths(joints)
    from_wrist = np.array([parent == WRIST for parent, _ in BONES])
    low = np.where(from_wrist, WRIST_BONE_M[0], FINGER_BONE_M[0])
    high = np.where(from_wrist, WRIST_BONE_M[1], FINGER_BONE_M[1])
    out_of_range = int(np.sum((lengths < low) | (lengths > high)))
    if not HAND_SIZE_M[0] <= lengths.sum() <= HAND_SIZE_M[1] or out_of_range > MAX_BONES_OUT_OF_RANGE:
        return BONE_LENGTHS
    return ""
