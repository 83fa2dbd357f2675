"""TfOutput picks tf2_ros, else a tf2_msgs publisher, else nothing with one warning. tf2_ros is not
installable here: a minimal module with its TransformBroadcaster API stands in for it, to check that
it is preferred and called with the transforms (the tf2_msgs and disabled paths also run end to end
in test_pose_node_e2e)."""
import sys
import types

import pytest
import rclpy
from rclpy.context import Context
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import Header

from hand_object_pose.ros.tf_output import TfOutput, transform_msg


@pytest.fixture
def node():
    context = Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = Node("tf_output_test", context=context)
    yield node
    node.destroy_node()
    context.try_shutdown()


class Broadcaster:
    sent = []

    def __init__(self, node):
        self.node = node

    def sendTransform(self, transforms):  # noqa: N802 (tf2_ros's name)
        Broadcaster.sent.append(list(transforms))


def test_tf2_ros_is_preferred(node, monkeypatch):
    module = types.ModuleType("tf2_ros")
    module.TransformBroadcaster = Broadcaster
    monkeypatch.setitem(sys.modules, "tf2_ros", module)
    Broadcaster.sent = []
    output = TfOutput(node, enabled=True)
    assert output.path == "tf2_ros"
    transform = transform_msg(Header(frame_id="cam"), "right_hand_wrist", None, [0.0, 0.0, 0.5])
    output.send([transform])
    output.send([])                                  # nothing to send: no empty message
    assert Broadcaster.sent == [[transform]]


def test_tf2_msgs_publisher_without_tf2_ros(node, monkeypatch):
    pytest.importorskip("tf2_msgs.msg", reason="needs the tf2_msgs test fixture on the path (make test)")
    monkeypatch.setitem(sys.modules, "tf2_ros", None)
    output = TfOutput(node, enabled=True)
    assert output.path == "tf2_msgs"
    topics = dict(node.get_publisher_names_and_types_by_node("tf_output_test", "/"))
    assert topics["/tf"] == ["tf2_msgs/msg/TFMessage"]


def test_disabled_without_either(node, monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2_ros", None)
    monkeypatch.setitem(sys.modules, "tf2_msgs", None)
    monkeypatch.setitem(sys.modules, "tf2_msgs.msg", None)
    assert TfOutput(node, enabled=True).path == "disabled"
    assert TfOutput(node, enabled=False).path == "disabled"
