"""The node driven as a camera driver would drive it, from another process (issue 15): TF from the plain
venv, counters that add up, wrong-typed `-p` overrides, CameraInfo of another frame, implausible
outputs, and what an out-of-the-box start says. The node runs as a subprocess through its plain entry
point (node_process); this process is the camera and the consumer."""
from __future__ import annotations

import time

import numpy as np
import pytest
from sensor_msgs.msg import Image

from hand_object_pose.inference.plausibility import REASONS
from hand_object_pose.ros.inputs import stamp_ns
from hand_object_pose.ros.pose_node import NO_HAND_HINT_FRAMES
from node_process import (HEIGHT, OPTICAL_FRAME, WIDTH, NodeProcess, Peer, camera_info_msg, failed_starts, header,
                          now_ns, scene_image, sleep_until, write_params)
from ros_test_helpers import REPO_ROOT, env_plain_venv, env_without_tf2_fixture, ros_session, wait_until

# errors.<kind> counters whose image is not processed (frames_rejected); the others are worked around.
REJECTING_KINDS = {"out_of_order", "unsupported_encoding", "bad_size", "bad_step", "short_data", "bad_camera_info",
                   "camera_info_frame_mismatch", "invalid_input", "processing_failure"}


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


def counters(values: dict) -> dict:
    return {k: int(float(v)) for k, v in values.items() if k.startswith(("frames_", "errors."))}


def idle_counters(peer) -> dict:
    """The counters of a /diagnostics status published after everything sent so far was handled (a status
    published before the last image arrived can also show an idle node)."""
    seen = len(peer.diagnostics)
    wait_until(lambda: len(peer.diagnostics) >= seen + 2 and peer.latest_values().get("frames_in_progress") == "0",
               10.0, "an idle node")
    return counters(peer.latest_values())


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


# --- 2: every image ends in exactly one counter --------------------------------------------------

def test_every_image_ends_in_exactly_one_counter(tmp_path):
    node = start_node(tmp_path, env_without_tf2_fixture())
    try:
        with ros_session() as session:
            peer = Peer(session, with_tf=False)
            peer.wait_matched(use_depth=False)
            send_until_result(peer)
            in_before = idle_counters(peer)["frames_in"]
            sent, send = [0], peer.send          # from here on every image this peer sends is counted

            def counting_send(*args, **kwargs):
                sent[0] += 1
                send(*args, **kwargs)
            peer.send = counting_send
            # A 50 Hz burst into a model that needs ~0.1 s per frame: most complete frames are replaced.
            start, base = time.monotonic(), now_ns(peer.node)
            for i in range(25):
                sleep_until(start + i * 0.02)
                peer.send(base + i * 20_000_000, depth_mm=None)
            # As fast as this process can publish: the node's depth-1 image queue may be overwritten before
            # its executor takes an image (frames_lost, from the publisher's sequence numbers).
            for i in range(40):
                peer.send(base + 500_000_000 + i * 1_000_000, depth_mm=None)
            # Images whose camera_info never comes: given up after the pairing timeout, counted once each.
            # (Stamps from the clock, so that the images sent next are newer: no out_of_order.)
            for i in range(4):
                sleep_until(time.monotonic() + 0.1)
                peer.send(now_ns(peer.node), depth_mm=None, info=False)
            given_up_at = time.monotonic() + 2.5      # the 2 s pairing timeout plus a diagnostics period
            wait_until(lambda: time.monotonic() > given_up_at and int(peer.latest_values()["frames_unpaired"]) >= 1,
                       15.0, "the images without camera_info to be given up")
            # Rejected images, one reason each.
            rgb = scene_image()
            for key, make in (
                    ("unsupported_encoding", dict(image=lambda s: Image(
                        header=header(s), height=HEIGHT, width=WIDTH, encoding="bayer_rggb8", step=WIDTH,
                        data=rgb[..., 0].tobytes()))),
                    ("bad_step", dict(image=lambda s: Image(header=header(s), height=HEIGHT, width=WIDTH,
                                                            encoding="rgb8", step=WIDTH * 3 - 1, data=rgb.tobytes()))),
                    ("bad_camera_info", dict(camera_info=lambda s: camera_info_msg(s, k=(0.0,) * 9)))):
                stamp = now_ns(peer.node)
                peer.send(stamp, depth_mm=None, **{name: build(stamp) for name, build in make.items()})
                peer.wait_counter(f"errors.{key}")
            last = now_ns(peer.node)
            peer.send(last, depth_mm=None)
            peer.wait_result(last)
            peer.send(last - 1_000_000, depth_mm=None)           # older than the previous image
            peer.wait_counter("errors.out_of_order")
            send_until_result(peer)
            # Idle: nothing waits in the pairer, the slot or the model.
            values = idle_counters(peer)
            time.sleep(1.0)   # several diagnostics periods: counters count images, not ticks
            assert counters(peer.latest_values())["errors.unpaired_images"] == values["errors.unpaired_images"]
    finally:
        node.stop()
    assert values["frames_in"] == values["frames_out"] + values["frames_dropped"] + values["frames_rejected"]
    assert values["frames_dropped"] == values["frames_replaced"] + values["frames_unpaired"] + values["frames_lost"]
    assert values["frames_in"] - in_before == sent[0]    # every image sent is counted, lost ones included
    assert values["frames_unpaired"] == values["errors.unpaired_images"] >= 1
    rejected = {k[len("errors."):]: v for k, v in values.items() if k.startswith("errors.")
                and k[len("errors."):] in REJECTING_KINDS}
    assert set(rejected) == {"unsupported_encoding", "bad_step", "bad_camera_info", "out_of_order"}
    assert values["frames_rejected"] == sum(rejected.values())
    assert values["frames_replaced"] > 0 and values["frames_out"] > 0



# --- 1: wrong-typed -p overrides next to a params file --------------------------------------------

COMMAND_LINE_CASES = {
    "string_for_double": ("crop_margin:=abc", "parameter 'crop_margin' has the wrong type on the command line: "
                                              "-p crop_margin:=abc is a string, expected a floating-point number"),
    "string_for_integer": ("image_depth:=deep", "parameter 'image_depth' has the wrong type on the command line: "
                                                "-p image_depth:=deep is a string, expected an integer"),
    "integer_for_bool": ("use_depth:=1", "parameter 'use_depth' has the wrong type on the command line: "
                                         "-p use_depth:=1 is an integer, expected a boolean"),
    "double_for_integer": ("threads:=2.0", "parameter 'threads' has the wrong type on the command line: "
                                           "-p threads:=2.0 is a floating-point number, expected an integer"),
    # Right type: the -p value (not the file's 1.25) reaches the node's range check.
    "right_type_out_of_range": ("crop_margin:=5.0", "parameter 'crop_margin' is out of range"),
}


def test_wrong_typed_command_line_overrides_stop_the_node(tmp_path):
    results = failed_starts(tmp_path, {name: ({}, ("-p", rule)) for name, (rule, _) in COMMAND_LINE_CASES.items()},
                            env_without_tf2_fixture())
    for name, (rc, errors, proc) in results.items():
        assert rc == 2, f"{name}: exit {rc}\n{proc.output}"
        assert len(errors) == 1 and COMMAND_LINE_CASES[name][1] in errors[0], f"{name}:\n{proc.output}"
        assert "Traceback" not in proc.output, f"{name}:\n{proc.output}"


# --- 3: a CameraInfo of another frame -------------------------------------------------------------

@pytest.mark.parametrize("policy", ["use", "reject"])
def test_camera_info_of_another_frame_is_counted_and_follows_the_policy(tmp_path, policy):
    node = start_node(tmp_path, env_without_tf2_fixture(), camera_info_frame_policy=policy)
    try:
        with ros_session() as session:
            peer = Peer(session, with_tf=False)
            peer.wait_matched(use_depth=False)
            send_until_result(peer)
            stamps = []
            for _ in range(3):
                stamp = now_ns(peer.node)
                info = camera_info_msg(stamp)
                info.header.frame_id = "other_camera_optical_frame"
                peer.send(stamp, depth_mm=None, camera_info=info)
                stamps.append(stamp)
                if policy == "use":
                    assert peer.wait_result(stamp).header.frame_id == OPTICAL_FRAME
                else:
                    peer.wait_counter("errors.camera_info_frame_mismatch", len(stamps))
            values = counters(peer.wait_counter("errors.camera_info_frame_mismatch", 3))
            send_until_result(peer)            # same frame again: processed as before
    finally:
        node.stop()
    assert values["errors.camera_info_frame_mismatch"] == 3
    assert values["frames_rejected"] == (3 if policy == "reject" else 0)
    assert all(peer.result_for(s) is None for s in stamps) == (policy == "reject")
    assert node.count("camera_info frame_id 'other_camera_optical_frame' differs from the image's "
                      f"'{OPTICAL_FRAME}'") == 1      # once per 5 s


# --- 4: implausible outputs and crop drift --------------------------------------------------------

def test_implausible_hands_are_reported_not_present_and_counted(tmp_path):
    # Random weights give joints no human hand has (12 cm finger bones on one line, some behind the
    # camera). Not every draw: seed 0 gave a plausible hand on this image (1 of seeds 0-7; unseeded, it
    # failed CI once), so the weights come from RANDOM_WEIGHTS_SEED. The node checks plausibility by
    # default (node_process turns it off for the plumbing tests).
    node = start_node(tmp_path, env_without_tf2_fixture(), plausibility_checks=True)

    def implausible() -> int:
        return sum(int(v) for k, v in peer.latest_values().items() if k.startswith("errors.implausible_hand_"))

    try:
        with ros_session() as session:
            peer = Peer(session, with_tf=False)
            peer.wait_matched(use_depth=False)
            stamp = send_until_result(peer)
            assert not any(h.present for h in peer.result_for(stamp).hands)
            wait_until(lambda: implausible() >= 1, 20.0, "an errors.implausible_hand_* counter")
            before = implausible()
            # A 1x1 image (issue 15: it gave a "present" wrist at x = -1385 m).
            stamp = now_ns(peer.node)
            tiny = camera_info_msg(stamp, k=(1.0, 0.0, 0.5, 0.0, 1.0, 0.5, 0.0, 0.0, 1.0))
            tiny.width, tiny.height = 1, 1
            peer.send(stamp, rgb=np.full((1, 1, 3), 128, np.uint8), depth_mm=None, camera_info=tiny)
            assert not any(h.present for h in peer.wait_result(stamp).hands)
            wait_until(lambda: implausible() > before, 20.0, "the 1x1 image's hand counted as implausible")
            values = peer.latest_values()
    finally:
        node.stop()
    assert int(values["frames_rejected"]) == 0 and int(values["frames_out"]) >= 2   # the frames were processed
    assert {k for k in values if k.startswith("errors.implausible_hand_")} <= {
        f"errors.implausible_hand_{reason}" for reason in REASONS}
    assert node.count("hand reported as not present: its joints are implausible (") >= 1   # once per 5 s per reason


def test_tracked_crop_does_not_drift_off_the_image(tmp_path):
    # Random weights put the keypoints in the crop's corner: a tracker following them moved the crop
    # 24 px further off the image on every frame. Plausibility checks off: the hands stay "present".
    node = start_node(tmp_path, env_without_tf2_fixture(), crop_source="auto")
    try:
        with ros_session() as session:
            peer = Peer(session, with_tf=False)
            peer.wait_matched(use_depth=False)
            wrists = []
            for _ in range(12):
                stamp = send_until_result(peer)
                wrists += [h.keypoints_2d[:2] for h in peer.result_for(stamp).hands if h.present]
    finally:
        node.stop()
    assert len(wrists) >= 12
    u, v = np.asarray(wrists, float).T
    assert np.all((u > -WIDTH / 2) & (u < 1.5 * WIDTH) & (v > -HEIGHT / 2) & (v < 1.5 * HEIGHT)), wrists


# --- 6: what an out-of-the-box start says ----------------------------------------------------------

def test_the_preset_without_a_shipped_model_says_what_is_missing_and_what_works():
    assert not (REPO_ROOT / "models" / "default" / "kpt_h2o3d_3d_lite.onnx").exists()   # nothing trained yet
    proc = NodeProcess(REPO_ROOT / "config" / "kpt_h2o3d_3d_lite.yaml", env_without_tf2_fixture())
    try:
        proc.proc.wait(timeout=120)
    finally:
        rc = proc.stop()
    errors = [line for line in proc.lines if line.startswith("hand_object_pose: error:")]
    assert rc == 2 and len(errors) == 1, proc.output
    for text in ("models/default/kpt_h2o3d_3d_lite.onnx does not exist", "no trained kpt_h2o3d_3d_lite network is "
                 "shipped", "config/hand_landmarks.yaml", "official checkpoint"):
        assert text in errors[0], errors[0]


def test_no_hand_for_many_frames_is_explained_once(tmp_path):
    # Random weights and a presence threshold they never reach: nothing would appear on TF or in the markers.
    node = start_node(tmp_path, env_without_tf2_fixture(), presence_threshold=1.0)
    try:
        with ros_session() as session:
            peer = Peer(session, with_tf=False)
            peer.wait_matched(use_depth=False)
            for _ in range(NO_HAND_HINT_FRAMES + 2):
                send_until_result(peer)
    finally:
        node.stop()
    assert node.count("RANDOM weights (allow_random_weights): presence is meaningless") == 1
    assert node.count(f"no hand has been present in the first {NO_HAND_HINT_FRAMES} frames") == 1
