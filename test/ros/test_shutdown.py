"""ros/shutdown.py: ending the context is quiet when rclpy's SIGINT handler ended it first, and loud otherwise."""
import pytest
import rclpy
from rclpy._rclpy_pybind11 import RCLError

from hand_object_pose.ros import shutdown


def test_a_context_shut_down_under_try_shutdown_is_a_clean_stop(monkeypatch):
    rclpy.init()
    try:
        def lose_the_race():
            # What the signal handler's thread does between try_shutdown's check and its shutdown.
            rclpy.get_default_context().shutdown()
            raise RCLError("failed to shutdown: rcl_shutdown already called on the given context")

        monkeypatch.setattr(shutdown.rclpy, "try_shutdown", lose_the_race)
        shutdown.shutdown_context()
        assert not rclpy.ok()
    finally:
        monkeypatch.undo()
        rclpy.try_shutdown()


def test_an_error_that_leaves_the_context_running_is_raised(monkeypatch):
    rclpy.init()
    try:
        def fail():
            raise RCLError("some other failure")

        monkeypatch.setattr(shutdown.rclpy, "try_shutdown", fail)
        with pytest.raises(RCLError, match="some other failure"):
            shutdown.shutdown_context()
    finally:
        monkeypatch.undo()
        rclpy.try_shutdown()
