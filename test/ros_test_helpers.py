"""Shared helpers for tests that run real ROS 2 (rclpy) in this process and in subprocesses.

Hygiene these helpers enforce (each rule prevents a failure seen on these machines):
- one ``Context`` per test, initialised with ``SignalHandlerOptions.NO`` (pytest owns SIGINT);
- shutdown in order executor -> nodes -> context, and the executor thread joined: an executor thread
  left spinning aborts pytest with exit code 134 after it has printed "N passed";
- waits are polls with a cap (discovery takes 15 ms or 2.6 s), never fixed sleeps;
- subprocess environments are always derived from ``os.environ``: the ros-wheels bootstrapper
  re-executes Python with LD_LIBRARY_PATH set and marks that in the environment, so a fresh dict
  (or a replaced LD_LIBRARY_PATH) loses the ROS libraries.

``tf2_msgs`` (test/fixtures/tf2_msgs) is built by ``make msgs`` into the venv, where the node finds
it as a pip user's does, and into the test-only prefix build/test_prefix, which is on this
process's paths when pytest runs through ``make test``. Subprocesses choose with
:func:`env_plain_venv` (exactly the venv), :func:`env_with_tf2_fixture` (the test prefix on the
paths) or :func:`env_without_tf2_fixture` (tf2_msgs hidden, also the venv's copy).
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

REPO_ROOT = Path(__file__).resolve().parents[1]


# --- subprocess environments ---------------------------------------------------------------------

def tf2_fixture_prefix() -> Path:
    """Install prefix of the tf2_msgs test fixture (``make msgs`` builds it)."""
    return Path(os.environ.get("HAND_OBJECT_POSE_TEST_PREFIX", REPO_ROOT / "build" / "test_prefix"))


def _fixture_paths() -> tuple[Path, Path]:
    prefix = tf2_fixture_prefix()
    site = prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    return site, prefix / "lib"


def _split(value: str | None) -> list[str]:
    return [part for part in (value or "").split(os.pathsep) if part]


# A package that shadows the venv's tf2_msgs and fails to import like a missing one.
HIDE_TF2_MSGS = REPO_ROOT / "test" / "fixtures" / "hide_tf2_msgs"


def _env(extra: dict[str, str], with_fixture: bool, hide_tf2_msgs: bool = False) -> dict[str, str]:
    site, lib = _fixture_paths()
    if with_fixture and not (site / "tf2_msgs").is_dir():
        raise FileNotFoundError(f"the tf2_msgs test fixture is not built under {tf2_fixture_prefix()}: run `make msgs`")
    env = dict(os.environ)
    fixture = {str(site), str(lib)}
    python_path = [p for p in _split(env.get("PYTHONPATH"))
                   if p not in fixture and p not in (str(REPO_ROOT), str(HIDE_TF2_MSGS))]
    library_path = [p for p in _split(env.get("LD_LIBRARY_PATH")) if p not in fixture]
    # The working tree first: its hand_object_pose/__init__.py extends __path__ to the installed
    # generated hand_object_pose.msg.
    python_path.insert(0, str(REPO_ROOT))
    if hide_tf2_msgs:
        python_path.insert(0, str(HIDE_TF2_MSGS))
    if with_fixture:
        python_path.append(str(site))
        library_path.insert(0, str(lib))
    env["PYTHONPATH"] = os.pathsep.join(python_path)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(library_path)
    env.update(extra)
    return env


def env_with_tf2_fixture(**extra: str) -> dict[str, str]:
    """Environment for a subprocess that can import the test-only ``tf2_msgs`` (and the working tree)."""
    return _env(extra, with_fixture=True)


def env_without_tf2_fixture(**extra: str) -> dict[str, str]:
    """Environment for a subprocess in which ``tf2_msgs`` is not importable: no test prefix, and the
    venv's copy shadowed by test/fixtures/hide_tf2_msgs."""
    return _env(extra, with_fixture=False, hide_tf2_msgs=True)


def env_plain_venv(**extra: str) -> dict[str, str]:
    """Environment for a subprocess that sees what a pip user's venv holds (``make msgs`` output, no test
    prefix, nothing hidden), plus the working tree."""
    return _env(extra, with_fixture=False)


def tf2_msgs_importable_here() -> bool:
    """Whether this process can use tf2_msgs (true under ``make test``)."""
    try:
        from tf2_msgs.msg import TFMessage  # noqa: F401
    except ImportError:
        return False
    return True


# --- processes -----------------------------------------------------------------------------------

def start_python(args: Sequence[str], env: dict[str, str], cwd: Path = REPO_ROOT) -> subprocess.Popen:
    """Start ``python ARGS...`` with this interpreter; stdout and stderr merged into a pipe."""
    return subprocess.Popen([sys.executable, *args], env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> str:
    """Interrupt ``proc`` (SIGINT, like Ctrl-C / ros2 launch), kill it if it does not exit in time,
    and return its output."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
    return output or ""


# --- in-process ROS ------------------------------------------------------------------------------

def wait_until(condition: Callable[[], bool], timeout: float, what: str, poll: float = 0.01) -> None:
    """Poll ``condition`` until it holds; AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(poll)


class RosSession:
    """One rclpy Context with nodes spun by one executor thread (see :func:`ros_session`)."""

    def __init__(self, context: Context, executor: SingleThreadedExecutor):
        self.context = context
        self.executor = executor
        self.nodes: list[Node] = []

    def node(self, name: str, **kwargs) -> Node:
        """Create a node in this session's context and add it to the spinning executor."""
        node = Node(name, context=self.context, **kwargs)
        self.nodes.append(node)
        self.executor.add_node(node)
        return node


@contextlib.contextmanager
def ros_session() -> Iterator[RosSession]:
    """A fresh Context (domain from ROS_DOMAIN_ID, set by conftest) and a spinning executor thread;
    everything is shut down in the safe order on exit, whatever the test did."""
    context = Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    executor = SingleThreadedExecutor(context=context)
    session = RosSession(context, executor)
    thread = threading.Thread(target=executor.spin, name="ros_session_executor", daemon=True)
    thread.start()
    try:
        yield session
    finally:
        executor.shutdown(timeout_sec=5.0)
        thread.join(timeout=5.0)
        for node in session.nodes:
            node.destroy_node()
        context.try_shutdown()
        if thread.is_alive():
            raise RuntimeError("the executor thread did not stop; it would abort pytest at exit")


def wait_for_subscribers(publisher, count: int = 1, timeout: float = 20.0) -> None:
    """Wait until ``publisher`` has matched ``count`` subscriptions (discovery done)."""
    wait_until(lambda: publisher.get_subscription_count() >= count, timeout,
               f"{count} subscriber(s) on {publisher.topic_name}")


def wait_for_publishers(subscription, count: int = 1, timeout: float = 20.0) -> None:
    """Wait until ``subscription`` has matched ``count`` publishers (discovery done)."""
    wait_until(lambda: subscription.get_publisher_count() >= count, timeout,
               f"{count} publisher(s) on {subscription.topic_name}")


def publish_until(publisher, message, condition: Callable[[], bool], timeout: float = 10.0,
                  period: float = 0.2) -> None:
    """Publish ``message`` every ``period`` seconds until ``condition`` holds.

    Matching is per side: our writer may have matched a reader that has not matched our writer yet,
    and the first sample can then be dropped even on a reliable topic; a resend closes that window.
    """
    deadline = time.monotonic() + timeout
    while True:
        publisher.publish(message)
        try:
            wait_until(condition, min(period, max(deadline - time.monotonic(), 0.0)), "")
            return
        except AssertionError:
            if time.monotonic() >= deadline:
                raise AssertionError(f"no answer after publishing on {publisher.topic_name} for {timeout:.1f} s") from None
