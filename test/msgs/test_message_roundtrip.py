"""Every message of hand_object_pose crosses a process boundary through real DDS unchanged.

The test process publishes a fully populated message; test/msgs/echo_peer.py (a second process)
receives and republishes it; the test compares what comes back with what it sent.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
from sensor_msgs.msg import RegionOfInterest
from std_msgs.msg import Header

import hand_object_pose.msg as hop_msg
from ros_test_helpers import (env_without_tf2_fixture, publish_until, ros_session, start_python,
                              stop_process, wait_for_publishers, wait_for_subscribers)

ECHO_PEER = Path(__file__).with_name("echo_peer.py")


def make_hand(side: int) -> hop_msg.HandPose:
    """A hand with every field set to distinct values that float32 represents exactly."""
    offset = 0.5 * side
    return hop_msg.HandPose(
        side=side,
        present=True,
        confidence=0.75,
        joints=[Point(x=0.01 * j + offset, y=-0.02 * j, z=0.5 + 0.001 * j) for j in range(21)],
        joint_confidence=[j / 32.0 for j in range(21)],
        keypoints_2d=[float(k) + 0.5 for k in range(42)],
        wrist_pose=Pose(position=Point(x=offset, y=0.0, z=0.5),
                        orientation=Quaternion(x=0.0, y=0.0, z=0.6, w=0.8)),
        has_wrist_orientation=True,
        root_depth_source=hop_msg.HandPose.DEPTH_SOURCE_2D_FIT,
        has_mano=True,
        mano_pose=[(i - 24) / 64.0 for i in range(48)],
        mano_shape=[(i - 5) / 8.0 for i in range(10)],
        roi=RegionOfInterest(x_offset=100 + 200 * side, y_offset=50, height=256, width=240, do_rectify=False),
    )


def make_object() -> hop_msg.ObjectPose:
    return hop_msg.ObjectPose(
        object_id="mug",
        confidence=0.875,
        pose=Pose(position=Point(x=0.1, y=-0.05, z=0.6), orientation=Quaternion(x=0.0, y=0.6, z=0.0, w=0.8)),
        mesh_resource="package://hand_object_pose/models/objects/mug.obj",
        symmetry=hop_msg.ObjectPose.SYMMETRY_DISCRETE,
        symmetry_order=2,
        symmetry_axis=Vector3(x=0.0, y=0.0, z=1.0),
        symmetry_flip_axis=Vector3(x=1.0, y=0.0, z=0.0),
        tf_frame_id="mug",
    )


def make_timing() -> hop_msg.StageTiming:
    return hop_msg.StageTiming(stage="model", milliseconds=12.25)


def make_frame() -> hop_msg.HandObjectPoses:
    return hop_msg.HandObjectPoses(
        header=Header(stamp=Time(sec=1_700_000_000, nanosec=123_456_789), frame_id="camera_color_optical_frame"),
        hands=[make_hand(hop_msg.HandPose.SIDE_RIGHT), make_hand(hop_msg.HandPose.SIDE_LEFT)],
        objects=[make_object()],
        model="kpt_ho3d_3d",
        backend="onnxruntime:CPUExecutionProvider",
        timings=[make_timing(), hop_msg.StageTiming(stage="total", milliseconds=20.5)],
        latency_ms=31.5,
    )


BUILDERS = {
    "HandObjectPoses": make_frame,
    "HandPose": lambda: make_hand(hop_msg.HandPose.SIDE_LEFT),
    "ObjectPose": make_object,
    "StageTiming": make_timing,
}


def echo(type_name: str):
    """Send BUILDERS[type_name]() through the echo peer; return (sent, received)."""
    msg_type = getattr(hop_msg, type_name)
    sent = BUILDERS[type_name]()
    in_topic, out_topic = f"/roundtrip/{type_name}/in", f"/roundtrip/{type_name}/out"
    peer = start_python([str(ECHO_PEER), type_name, in_topic, out_topic], env_without_tf2_fixture())
    try:
        with ros_session() as ros:
            node = ros.node("roundtrip_test")
            received = []
            publisher = node.create_publisher(msg_type, in_topic, 10)
            subscription = node.create_subscription(msg_type, out_topic, received.append, 10)
            wait_for_subscribers(publisher)
            wait_for_publishers(subscription)
            publish_until(publisher, sent, lambda: bool(received))
    finally:
        peer_output = stop_process(peer)
        print(f"--- echo peer output ---\n{peer_output}")
    assert peer.returncode == 0, f"echo peer exited with {peer.returncode}:\n{peer_output}"
    return sent, received[0]


@pytest.mark.parametrize("type_name", sorted(BUILDERS))
def test_message_crosses_processes_unchanged(type_name):
    sent, received = echo(type_name)
    assert sent != getattr(hop_msg, type_name)(), "the test message must differ from the default message"
    assert received == sent


def test_hand_object_poses_fields_survive_the_round_trip():
    """Spot checks with the values written out, so that a builder and a codec that drop the same
    field cannot agree by accident."""
    _, received = echo("HandObjectPoses")
    assert received.header.stamp.sec == 1_700_000_000 and received.header.stamp.nanosec == 123_456_789
    assert received.header.frame_id == "camera_color_optical_frame"
    assert [hand.side for hand in received.hands] == [hop_msg.HandPose.SIDE_RIGHT, hop_msg.HandPose.SIDE_LEFT]
    left = received.hands[1]
    assert len(left.joints) == 21 and len(left.joint_confidence) == 21 and len(left.keypoints_2d) == 42
    assert left.joints[20].x == pytest.approx(0.2 + 0.5) and left.joints[20].z == pytest.approx(0.52)
    assert list(left.keypoints_2d[:2]) == [0.5, 1.5]
    assert len(left.mano_pose) == 48 and len(left.mano_shape) == 10 and left.has_mano
    assert left.roi.x_offset == 300 and left.roi.height == 256
    assert left.root_depth_source == hop_msg.HandPose.DEPTH_SOURCE_2D_FIT
    (obj,) = received.objects
    assert obj.object_id == "mug" and obj.symmetry_order == 2
    assert obj.symmetry == hop_msg.ObjectPose.SYMMETRY_DISCRETE and obj.symmetry_axis.z == 1.0
    assert obj.symmetry_flip_axis.x == 1.0 and hop_msg.ObjectPose.SYMMETRY_SPHERICAL == 3
    assert [(t.stage, t.milliseconds) for t in received.timings] == [("model", 12.25), ("total", 20.5)]
    assert received.model == "kpt_ho3d_3d" and received.latency_ms == 31.5


def test_constants_follow_the_canonical_conventions():
    hand = hop_msg.HandPose
    assert (hand.SIDE_RIGHT, hand.SIDE_LEFT) == (0, 1)
    assert hand.NUM_JOINTS == 21 and hand.JOINT_WRIST == 0
    # Wrist first, then thumb, index, middle, ring, pinky with 4 joints each, base -> tip.
    tips = [hand.JOINT_THUMB_TIP, hand.JOINT_INDEX_TIP, hand.JOINT_MIDDLE_TIP, hand.JOINT_RING_TIP, hand.JOINT_PINKY_TIP]
    assert tips == [4, 8, 12, 16, 20]
    assert len({hand.DEPTH_SOURCE_DEPTH_IMAGE, hand.DEPTH_SOURCE_2D_FIT, hand.DEPTH_SOURCE_DEFAULT}) == 3
    obj = hop_msg.ObjectPose
    assert len({obj.SYMMETRY_NONE, obj.SYMMETRY_DISCRETE, obj.SYMMETRY_CONTINUOUS}) == 3
    assert obj.SYMMETRY_NONE == 0, "a zero-initialised ObjectPose must mean 'no symmetry'"
