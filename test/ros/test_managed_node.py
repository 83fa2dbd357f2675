"""The pose node as a managed (lifecycle) node, driven from this process through its lifecycle services
while it runs as a subprocess (`--managed`, `--managed --autostart`): configure loads the model,
activate subscribes and publishes, deactivate stops and releases the model, cleanup and shutdown."""
from __future__ import annotations

import ast
import time

from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState

from node_process import NodeProcess, Peer, failed_starts, now_ns, write_params
from ros_test_helpers import REPO_ROOT, env_without_tf2_fixture, ros_session, wait_until


class Lifecycle:
    """Client of the node's lifecycle services (what `ros2 lifecycle set` and lifecycle managers use)."""

    def __init__(self, node, name: str = "/hand_object_pose"):
        self._change = node.create_client(ChangeState, f"{name}/change_state")
        self._get = node.create_client(GetState, f"{name}/get_state")
        wait_until(lambda: self._change.service_is_ready() and self._get.service_is_ready(), 60.0,
                   "the node's lifecycle services", poll=0.05)

    @staticmethod
    def _call(client, request, timeout: float = 120.0):
        future = client.call_async(request)
        wait_until(future.done, timeout, f"the answer of {client.srv_name}", poll=0.05)
        return future.result()

    def state(self) -> str:
        return self._call(self._get, GetState.Request()).current_state.label

    def set(self, transition_id: int) -> bool:
        return self._call(self._change, ChangeState.Request(transition=Transition(id=transition_id))).success


def answers(peer, timeout: float) -> bool:
    """Whether a fresh frame gets a result within `timeout` s."""
    stamp = now_ns(peer.node)
    peer.send(stamp, depth_mm=None)
    try:
        peer.wait_result(stamp, timeout=timeout)
        return True
    except AssertionError:
        return False


def answers_within(peer, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answers(peer, 3.0):
            return True
    return False


def test_lifecycle_driven_from_another_process(tmp_path):
    node = NodeProcess(write_params(tmp_path), env_without_tf2_fixture(), ("--", "--managed"))
    try:
        wait_until(lambda: node.count("managed node: unconfigured") == 1 or node.proc.poll() is not None, 120.0,
                   "the managed node to come up", poll=0.05)
        with ros_session() as session:
            peer = Peer(session, with_tf=False)
            lifecycle = Lifecycle(peer.node)
            assert lifecycle.state() == "unconfigured"
            assert peer.image_pub.get_subscription_count() == 0          # nothing subscribed yet

            assert lifecycle.set(Transition.TRANSITION_CONFIGURE) and lifecycle.state() == "inactive"
            assert node.count("model kpt_ho3d_3d_r18 loaded on torch:cpu in") == 1
            assert lifecycle.set(Transition.TRANSITION_ACTIVATE) and lifecycle.state() == "active"
            peer.wait_matched(use_depth=False)
            assert answers_within(peer, 60.0)

            assert lifecycle.set(Transition.TRANSITION_DEACTIVATE) and lifecycle.state() == "inactive"
            wait_until(lambda: peer.image_pub.get_subscription_count() == 0, 10.0, "the image subscription to go")
            assert not answers(peer, 2.0)                                  # no processing while inactive
            assert node.count("deactivate (model released): done") == 1

            assert lifecycle.set(Transition.TRANSITION_ACTIVATE) and lifecycle.state() == "active"
            assert node.count("model kpt_ho3d_3d_r18 loaded on torch:cpu in") == 2   # loaded again
            peer.wait_matched(use_depth=False)
            assert answers_within(peer, 60.0)
            values = peer.wait_counter("frames_out", 2)                 # counters run on across activations

            # A stream running into the deactivate: every image still ends in one counter.
            for _ in range(10):
                peer.send(now_ns(peer.node), depth_mm=None)
                time.sleep(0.02)
            statuses = len(peer.diagnostics)
            assert lifecycle.set(Transition.TRANSITION_DEACTIVATE)
            # The deactivate publishes a final status (no timer runs any more); on a loaded machine it may take
            # more than a second to arrive.
            wait_until(lambda: len(peer.diagnostics) > statuses, 15.0, "the final status of the deactivate")
            final = {k: int(float(v)) for k, v in peer.latest_values().items() if k.startswith("frames_")}
            assert lifecycle.set(Transition.TRANSITION_CLEANUP) and lifecycle.state() == "unconfigured"
            assert lifecycle.set(Transition.TRANSITION_UNCONFIGURED_SHUTDOWN) and lifecycle.state() == "finalized"
        assert node.proc.poll() is None                                   # finalized, still answering
    finally:
        rc = node.stop()
    assert rc == 0 and "Traceback" not in node.output, node.output
    assert int(values["frames_in"]) >= 2
    # Nothing left in flight: the last status ever published adds up (frames in flight at the deactivate
    # were counted as discarded / unpaired instead of staying in progress).
    assert final["frames_in_progress"] == 0, final
    assert final["frames_in"] == final["frames_out"] + final["frames_dropped"] + final["frames_rejected"] >= 12


def test_managed_with_autostart_runs_at_once(tmp_path):
    node = NodeProcess(write_params(tmp_path), env_without_tf2_fixture(), ("--", "--managed", "--autostart"))
    try:
        node.wait_ready()
        with ros_session() as session:
            peer = Peer(session, with_tf=False)
            assert Lifecycle(peer.node).state() == "active"
            peer.wait_matched(use_depth=False)
            assert answers_within(peer, 60.0)
    finally:
        assert node.stop() == 0, node.output


def test_autostart_failures_exit_with_one_line(tmp_path):
    cases = {"missing_model": (("--", "--managed", "--autostart"), dict(backend="onnxruntime", allow_random_weights=False,
                                                                          model_path="/nonexistent/kpt.onnx"),
                               "/nonexistent/kpt.onnx does not exist"),
             "autostart_alone": (("--", "--autostart"), {}, "--autostart needs --managed")}
    results = failed_starts(tmp_path, {name: (changes, args) for name, (args, changes, _) in cases.items()},
                            env_without_tf2_fixture())
    for name, (rc, errors, proc) in results.items():
        assert rc == 2 and len(errors) == 1 and cases[name][2] in errors[0], f"{name}:\n{proc.output}"


def test_launch_file_offers_unmanaged_and_managed_starts():
    """pose.launch.py (checked statically: launch_ros is not installable here) passes the entry point's
    flags: lifecycle:=unmanaged (default) none, managed --managed, plus --autostart unless autostart:=false."""
    launch = REPO_ROOT / "launch" / "pose.launch.py"
    tree = ast.parse(launch.read_text())
    arguments = next({name: default for name, default, _ in ast.literal_eval(node.value)} for node in tree.body
                     if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "ARGUMENTS")
    assert arguments["lifecycle"] == "unmanaged" and arguments["autostart"] == "true"
    source = launch.read_text()
    assert '["--managed"]' in source and '["--autostart"]' in source and "*lifecycle_flags" in source
