"""Ending a ROS process's node and rclpy context without racing rclpy's own SIGINT handler."""
from __future__ import annotations

import rclpy
from rclpy._rclpy_pybind11 import RCLError


def shutdown_context() -> None:
    """`rclpy.try_shutdown()`, quiet when the context is shut down under it.

    rclpy's SIGINT handler shuts the default context down from its own thread; landing between
    try_shutdown's check and its shutdown, it made the second shutdown raise "rcl_shutdown already called"
    and a cleanly stopped process exit 1 (seen in the message round-trip test's peer). Any other error, or
    one that leaves the context running, is raised.
    """
    try:
        rclpy.try_shutdown()
    except RCLError:
        if rclpy.ok():
            raise


def release_node(node, stopped_by_signal: bool) -> None:
    """Destroy `node`'s entities, except when a signal stopped the process.

    rclpy's SIGINT handler shuts the context down from its own thread, so after a signal `destroy_node`
    runs during or after that shutdown whatever `rclpy.ok()` said a moment before; it crashed rcl now and
    then (exit -11 inside destroy_node after a clean stop: the demo's node, 1 run in some hundreds). The
    process ends next and its entities go with it, so nothing is lost by leaving them.
    """
    if node is not None and not stopped_by_signal and rclpy.ok():
        node.destroy_node()
