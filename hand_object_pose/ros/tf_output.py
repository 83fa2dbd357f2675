"""TF frames for each wrist and each object, child of the input image's optical frame.

Publishing path, chosen once at start-up:
1. `tf2_ros.TransformBroadcaster` when tf2_ros is importable (a real ROS install);
2. else a `tf2_msgs/TFMessage` publisher on /tf (reliable, volatile, depth 100, as tf2_ros does)
   when only the message type is importable (same type hash: real tf2 listeners receive it); this
   repository's pip venv gets that type from `make msgs`;
3. else TF is disabled and ONE warning says why.
"""
from __future__ import annotations

import re

from geometry_msgs.msg import Transform, TransformStamped, Vector3

from hand_object_pose.ros.conversions import quaternion_msg

# tf2 frame ids: no leading slash (tf2 rejects it), no whitespace; '/' allowed inside as a namespace separator.
_FRAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_/.\-]*$")


def frame_id_problem(name: str) -> str:
    """'' when `name` is a valid TF child frame id, else what is wrong with it."""
    if not name:
        return "is empty"
    if name.startswith("/"):
        return "starts with '/' (tf2 frame ids must not have a leading slash)"
    if name.endswith("/") or "//" in name or not _FRAME_RE.match(name):
        return "contains characters other than letters, digits, '_', '-', '.' and single inner '/'"
    return ""


def transform_msg(header, child_frame: str, rotation, translation) -> TransformStamped:
    """TransformStamped parent = header.frame_id (optical frame) -> child, stamp = header.stamp."""
    t = [float(v) for v in translation]
    msg = TransformStamped(header=header, child_frame_id=child_frame)
    msg.transform = Transform(translation=Vector3(x=t[0], y=t[1], z=t[2]))
    if rotation is not None:
        msg.transform.rotation = quaternion_msg(rotation)
    else:
        msg.transform.rotation.w = 1.0
    return msg


def estimate_transforms(estimate, header, wrist_frames: dict, objects: dict) -> list:
    """One transform per present hand's wrist (`wrist_frames`: side -> child frame) and per object
    in the catalogue (`objects`: id -> ObjectInfo with `tf_frame`)."""
    transforms = []
    for hand in estimate.hands:
        if hand.present and hand.side in wrist_frames:
            transforms.append(transform_msg(header, wrist_frames[hand.side], hand.wrist_rotation,
                                            hand.joints_xyz[0]))
    for obj in estimate.objects:
        if obj.object_id in objects:
            transforms.append(transform_msg(header, objects[obj.object_id].tf_frame, obj.rotation, obj.translation))
    return transforms


class TfOutput:
    """Sends transforms on /tf by the best available path; `path` says which ("tf2_ros", "tf2_msgs", "disabled")."""

    def __init__(self, node, enabled: bool):
        self._send = None
        self.path = "disabled"
        if not enabled:
            return
        try:
            from tf2_ros import TransformBroadcaster
        except ImportError:
            TransformBroadcaster = None
        if TransformBroadcaster is not None:
            broadcaster = TransformBroadcaster(node)
            self._send, self.path = broadcaster.sendTransform, "tf2_ros"
            return
        try:
            from tf2_msgs.msg import TFMessage
        except ImportError:
            node.get_logger().warning(
                "TF publishing disabled: neither tf2_ros nor tf2_msgs is importable (a ROS install: install "
                "ros-<distro>-tf2-ros; this repository's pip venv: run `make msgs`, which builds tf2_msgs into "
                "it); the poses are still in 'hand_object_poses'")
            return
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
        publisher = node.create_publisher(TFMessage, "/tf", qos)
        self._send = lambda transforms: publisher.publish(TFMessage(transforms=list(transforms)))
        self.path = "tf2_msgs"

    def send(self, transforms: list) -> None:
        if self._send is not None and transforms:
            self._send(transforms)
