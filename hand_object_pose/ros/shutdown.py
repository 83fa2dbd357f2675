"""Ending a ROS process's rclpy context without racing rclpy's own SIGINT handler."""
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
