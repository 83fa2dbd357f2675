"""Second process of the message round-trip tests: republishes every message it receives.

    python test/msgs/echo_peer.py TYPE_NAME IN_TOPIC OUT_TOPIC

TYPE_NAME is a message of hand_object_pose.msg (e.g. HandObjectPoses). Runs until SIGINT/SIGTERM.
"""
import signal
import sys

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

import hand_object_pose.msg
from hand_object_pose.ros.shutdown import shutdown_context


def main(type_name: str, in_topic: str, out_topic: str) -> int:
    msg_type = getattr(hand_object_pose.msg, type_name)
    rclpy.init()
    signal.signal(signal.SIGTERM, lambda *_: rclpy.try_shutdown())
    node = Node("echo_peer")
    publisher = node.create_publisher(msg_type, out_topic, 10)
    node.create_subscription(msg_type, in_topic, publisher.publish, 10)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)   # stopping anyway: no second shutdown from the handler
        node.destroy_node()
        shutdown_context()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
