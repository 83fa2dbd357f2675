"""Hand-written `HandObjectEstimate`s with known values for the message / marker / TF tests."""
import numpy as np
from transforms3d.euler import euler2mat

from hand_object_pose.inference.result import (DEPTH_FROM_2D_FIT, DEPTH_FROM_DEPTH_IMAGE, LEFT, RIGHT, HandEstimate,
                                               HandObjectEstimate, ObjectEstimate)
from hand_object_pose.ros.conversions import ObjectInfo

OBJECTS = {
    "mug": ObjectInfo("mug", "hop/mug", mesh_resource="package://hand_object_pose/models/objects/mug.obj",
                      mesh_scale=0.001, symmetry="continuous", symmetry_axis=(0.0, 0.0, 1.0)),
    "box": ObjectInfo("box", "hop/box", symmetry="discrete", symmetry_order=2, symmetry_axis=(1.0, 0.0, 0.0),
                      symmetry_flip_axis=(0.0, 1.0, 0.0)),
}


def hand(side, offset, present=True, with_mesh=False):
    joints = np.linspace([0.0, 0.0, 0.0], [0.02, 0.08, 0.01], 21) + np.asarray(offset)
    return HandEstimate(
        side=side, present=present, confidence=0.9 if present else 0.1,
        joints_xyz=joints, joints_uv=np.arange(42, dtype=float).reshape(21, 2) * 3.0 + 10.0,
        joint_confidence=np.linspace(0.5, 1.0, 21),
        wrist_rotation=euler2mat(0.1, 0.2, 0.3) if side == RIGHT else None,
        mano_pose=np.full(48, 0.01) if side == RIGHT else None, mano_shape=np.zeros(10) if side == RIGHT else None,
        vertices=np.random.default_rng(1).normal(size=(30, 3)) * 0.01 + offset if with_mesh else None,
        faces=np.arange(30).reshape(10, 3) if with_mesh else None,
        root_depth_source=DEPTH_FROM_DEPTH_IMAGE if side == RIGHT else DEPTH_FROM_2D_FIT,
        crop_box=np.array([100.4, 50.0, 120.0, 120.0]))


def estimate(sides=(RIGHT, LEFT), objects=("mug",), with_mesh=False):
    hands = [hand(s, [0.1 if s == RIGHT else -0.1, 0.0, 0.5], with_mesh=with_mesh) for s in sides]
    objs = [ObjectEstimate(object_id=o, confidence=0.8, rotation=euler2mat(0.0, 0.0, 0.5),
                           translation=np.array([0.0, 0.05, 0.45]),
                           vertices=np.zeros((3, 3)) if with_mesh else None,
                           faces=np.array([[0, 1, 2]]) if with_mesh else None) for o in objects]
    return HandObjectEstimate(hands=hands, objects=objs, model="kpt_test", backend="torch:cpu",
                              timings_ms={"model": 12.5, "total": 15.0})
