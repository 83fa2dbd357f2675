"""HandObjectEstimate -> HandObjectPoses: fields, units, frames, enum mappings."""
import numpy as np
import pytest
from std_msgs.msg import Header
from transforms3d.quaternions import quat2mat

from hand_object_pose.inference.result import LEFT, RIGHT
from hand_object_pose.msg import HandPose, ObjectPose
from hand_object_pose.ros.conversions import estimate_to_msg, known_objects, pose_msg, quaternion_msg
from node_test_estimates import OBJECTS, estimate, hand

HEADER = Header(frame_id="camera_color_optical_frame")
HEADER.stamp.sec, HEADER.stamp.nanosec = 1234, 567


def test_message_keeps_header_and_fills_every_field():
    est = estimate(objects=("mug", "box"))
    msg = estimate_to_msg(est, HEADER, OBJECTS, latency_ms=21.5, extra_timings_ms={"decode": 1.0})
    assert msg.header == HEADER
    assert (msg.model, msg.backend) == ("kpt_test", "torch:cpu")
    assert msg.latency_ms == pytest.approx(21.5)
    assert {t.stage: t.milliseconds for t in msg.timings} == {"model": 12.5, "total": 15.0, "decode": 1.0}
    right, left = msg.hands
    assert (right.side, left.side) == (HandPose.SIDE_RIGHT, HandPose.SIDE_LEFT)
    joints = np.array([[p.x, p.y, p.z] for p in right.joints])
    np.testing.assert_allclose(joints, est.hands[0].joints_xyz)   # metres, unchanged
    np.testing.assert_allclose(right.keypoints_2d, est.hands[0].joints_uv.reshape(-1), rtol=1e-6)
    np.testing.assert_allclose(right.joint_confidence, est.hands[0].joint_confidence, rtol=1e-6)
    assert right.root_depth_source == HandPose.DEPTH_SOURCE_DEPTH_IMAGE
    assert left.root_depth_source == HandPose.DEPTH_SOURCE_2D_FIT
    assert right.has_mano and len(right.mano_pose) == 48 and len(right.mano_shape) == 10
    assert not left.has_mano and len(left.mano_pose) == 0
    assert right.has_wrist_orientation and not left.has_wrist_orientation
    assert left.wrist_pose.orientation.w == 1.0
    assert right.wrist_pose.position.z == pytest.approx(0.5)
    assert (right.roi.x_offset, right.roi.y_offset, right.roi.width, right.roi.height) == (100, 50, 120, 120)
    mug, box = msg.objects
    assert mug.object_id == "mug" and mug.tf_frame_id == "hop/mug"
    assert mug.mesh_resource.startswith("package://")
    assert mug.symmetry == ObjectPose.SYMMETRY_CONTINUOUS
    assert (box.symmetry, box.symmetry_order, box.symmetry_axis.x) == (ObjectPose.SYMMETRY_DISCRETE, 2, 1.0)
    assert (box.symmetry_flip_axis.x, box.symmetry_flip_axis.y) == (0.0, 1.0)
    assert (mug.symmetry_flip_axis.x, mug.symmetry_flip_axis.y, mug.symmetry_flip_axis.z) == (0.0, 0.0, 0.0)
    assert mug.pose.position.y == pytest.approx(0.05) and mug.pose.position.z == pytest.approx(0.45)


def test_absent_hand_has_empty_arrays():
    est = estimate(sides=())
    est.hands = [hand(LEFT, [0, 0, 0.5], present=False)]
    msg = estimate_to_msg(est, HEADER, OBJECTS, 0.0)
    assert not msg.hands[0].present and len(msg.hands[0].joints) == 0


def test_empty_estimate_gives_empty_message_with_header():
    msg = estimate_to_msg(estimate(sides=(), objects=()), HEADER, OBJECTS, 0.0)
    assert msg.header == HEADER and len(msg.hands) == 0 and len(msg.objects) == 0


def test_quaternion_round_trip():
    rotation = estimate().hands[0].wrist_rotation
    q = quaternion_msg(rotation)
    np.testing.assert_allclose(quat2mat([q.w, q.x, q.y, q.z]), rotation, atol=1e-12)
    assert pose_msg(None, [1, 2, 3]).orientation.w == 1.0


def test_unknown_objects_are_split_off():
    known, unknown = known_objects(estimate(objects=("mug", "spaceship")), OBJECTS)
    assert [o.object_id for o in known] == ["mug"] and unknown == ["spaceship"]
    assert RIGHT == "right"


def test_catalogue_symmetries_reach_the_object_infos():
    from hand_object_pose.inference.catalogue import ObjectCatalogue
    from hand_object_pose.ros.conversions import object_infos

    catalogue = ObjectCatalogue.from_dict({"objects": [
        {"id": "brick", "symmetry": {"kind": "discrete", "axis": [0, 0, 1], "order": 2, "flip_axis": [0, 2, 0]}},
        {"id": "ball", "symmetry": {"kind": "spherical"}}]})
    infos = object_infos(catalogue, "hop/")
    assert infos["brick"].symmetry_flip_axis == (0.0, 1.0, 0.0) and infos["brick"].tf_frame == "hop/brick"
    assert infos["ball"].symmetry == "spherical" and infos["ball"].symmetry_flip_axis is None
