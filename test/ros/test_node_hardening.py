"""The node driven as a camera driver would drive it, from another process (issue 15): TF from the plain
venv, counters that add up, wrong-typed `-p` overrides, CameraInfo of another frame, implausible
outputs, and what an out-of-the-box start says. The node runs as a subprocess through its plain entry
point (node_process); this process is the camera and the consumer."""
from __future__ import annotations

import time

from hand_object_pose.ros.inputs import stamp_ns
from node_process import NodeProcess, Peer, now_ns, write_params
from ros_test_helpers import env_plain_venv, ros_session, wait_until


def start_node(tmp_path, env, *extra_ros_args, **params) -> NodeProcess:
    node = NodeProcess(write_params(tmp_path, **params), env, tuple(extra_ros_args))
    node.wait_ready()
    return node


def send_until_result(peer, timeout=60.0, **send) -> int:
    """Fresh frames until one comes back (the first samples after matching may be lost); its stamp."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stamp = now_ns(peer.node)
        peer.send(stamp, depth_mm=None, **send)
        try:
            peer.wait_result(stamp, timeout=5.0)
            return stamp
        except AssertionError:
            continue
    raise AssertionError(f"no result in {timeout:.0f} s")


# --- 5: TF in the plain venv --------------------------------------------------------------------

def test_tf_is_published_from_the_plain_venv(tmp_path):
    """What `make demo` and a pip user run: only the venv (no test prefix on the paths)."""
    node = start_node(tmp_path, env_plain_venv())
    try:
        with ros_session() as session:
            peer = Peer(session, with_tf=True)
            peer.wait_matched(use_depth=False)
            stamp = send_until_result(peer)
            wait_until(lambda: any(stamp_ns(t.header.stamp) == stamp for m in list(peer.tf) for t in m.transforms),
                       10.0, "the wrist transform of the answered frame")
            assert peer.wait_counter("frames_out")["tf_path"] == "tf2_msgs"
    finally:
        node.stop()
    assert node.count("TF publishing disabled") == 0
