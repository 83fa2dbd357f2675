"""The trivial baseline a trained model must beat: the mean pose of a training split, whatever the image.

`MeanPoseBaseline.fit(reader)` averages the labels of a training split; `estimate()` then returns
that same answer for every frame, through the same `HandObjectEstimate` type the real pipeline gives,
so `evaluate_dataset` scores it exactly like a model:

- each hand: present when that side is labelled in at least half of the training frames; its joints
  are the mean camera-frame joints (canonical order, metres). Root-aligned metrics only see the mean
  root-relative pose, and MRRPE sees the mean left-minus-right wrist vector;
- the object: the mean camera-frame translation and the rotation nearest (Frobenius) to the mean
  rotation matrix, with the most frequent object id.

It never looks at the image, so any model that learned something scores better.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from hand_object_pose.geometry.camera import project_points
from hand_object_pose.inference.result import HAND_SIDES, HandEstimate, HandObjectEstimate, ObjectEstimate


def nearest_rotation(matrix: np.ndarray) -> np.ndarray:
    """The rotation closest to a (3, 3) matrix in the Frobenius norm (SVD projection, det +1)."""
    u, _, vt = np.linalg.svd(matrix)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


class MeanPoseBaseline:
    """Mean labels of a training split (see the module docstring)."""

    model = "mean_pose_baseline"
    backend_in_use = "none (mean of the training labels)"

    def __init__(self, joints: dict, presence: dict, object_pose: tuple | None, object_id: str = ""):
        self.joints = {side: np.asarray(j, np.float64) for side, j in joints.items()}   # side -> (21, 3) m
        self.presence = dict(presence)                                                   # side -> rate
        self.object_pose = object_pose                                                   # (R (3, 3), t (3,))
        self.object_id = object_id

    @classmethod
    def fit(cls, reader, limit: int = 0) -> "MeanPoseBaseline":
        """Average (the first `limit` of) `reader`'s samples; sides without any valid label are left out."""
        count = len(reader) if not limit else min(limit, len(reader))
        if count == 0:
            raise ValueError("cannot fit the mean-pose baseline on an empty split")
        sums = {s: np.zeros((21, 3)) for s in HAND_SIDES}
        weights = {s: np.zeros((21, 1)) for s in HAND_SIDES}
        seen = Counter()
        rotations, translations, ids = [], [], Counter()
        for index in range(count):
            sample = reader[index]
            for side, hand in sample.hands.items():
                if hand.root_only:
                    continue
                seen[side] += 1
                valid = np.asarray(hand.joints_valid, bool)[:, None]
                sums[side] += np.where(valid, hand.joints_cam, 0.0)
                weights[side] += valid
            for obj in sample.objects[:1]:
                rotations.append(np.asarray(obj.rotation, np.float64))
                translations.append(np.asarray(obj.translation, np.float64))
                ids[obj.object_id] += 1
        joints = {s: sums[s] / np.maximum(weights[s], 1) for s in HAND_SIDES if weights[s].all()}
        presence = {s: seen[s] / count for s in HAND_SIDES}
        object_pose = None
        if rotations:
            object_pose = (nearest_rotation(np.mean(rotations, axis=0)), np.mean(translations, axis=0))
        return cls(joints, presence, object_pose, ids.most_common(1)[0][0] if ids else "")

    def reset_tracking(self) -> None:
        """Nothing is tracked (same interface as `inference.Estimator`)."""

    def estimate(self, image=None, intrinsics=None, roi=None, **_) -> HandObjectEstimate:
        """The same answer for every frame; `intrinsics` (3, 3) only place the 2D joints."""
        hands = []
        for side, joints in self.joints.items():
            uv = np.zeros((21, 2))
            if intrinsics is not None:
                K = np.asarray(intrinsics, np.float64)
                uv = project_points(joints, K)
            rate = self.presence.get(side, 0.0)
            hands.append(HandEstimate(side=side, present=rate >= 0.5, confidence=rate, joints_xyz=joints.copy(),
                                      joints_uv=uv, joint_confidence=np.full(21, rate)))
        objects = []
        if self.object_pose is not None:
            objects.append(ObjectEstimate(object_id=self.object_id, confidence=1.0,
                                          rotation=self.object_pose[0].copy(), translation=self.object_pose[1].copy()))
        return HandObjectEstimate(hands=hands, objects=objects, model=self.model, backend=self.backend_in_use)
