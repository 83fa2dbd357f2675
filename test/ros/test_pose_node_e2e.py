"""End to end with real rclpy across processes: this test process plays the camera (image + camera_info
+ depth) and the consumers (results, markers, TF, diagnostics, debug image); the pose node runs as a
subprocess through its plain entry point with a real Estimator (see node_process)."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from sensor_msgs.msg import Image, RegionOfInterest
from visualization_msgs.msg import Marker

from hand_object_pose.msg import HandPose
from hand_object_pose.ros.inputs import stamp_ns
from node_process import (DEPTH_MM, HEIGHT, OPTICAL_FRAME, WIDTH, NodeProcess, Peer, camera_info_msg, depth_msg,
                          header, now_ns, scene_image, sleep_until, write_params)
from ros_test_helpers import (env_with_tf2_fixture, env_without_tf2_fixture, ros_session, tf2_msgs_importable_here,
                              wait_for_subscribers, wait_until)

needs_tf2_msgs = pytest.mark.skipif(not tf2_msgs_importable_here(),
                                    reason="needs the tf2_msgs test fixture on this process's paths (make test)")

@pytest.fixture
def node_with_depth(tmp_path):
    # mano_path points nowhere: the node must start anyway, on the stand-in hand, with one warning.
    node = NodeProcess(write_params(tmp_path, use_depth=True, mano_path=str(tmp_path / "no_mano")),
                       env_with_tf2_fixture())
    try:
        node.wait_ready()
        yield node
    finally:
        node.stop()


@needs_tf2_msgs
def test_images_in_results_markers_tf_diagnostics_out(node_with_depth):
    with ros_session() as session:
        peer = Peer(session)
        peer.subscribe_overlay()
        peer.wait_matched(use_depth=True)
        base = now_ns(peer.node)
        period_ns = 100_000_000          # 10 Hz input; the random-weight model needs ~0.4 s per frame
        # A first frame, answered before the burst: our publishers seeing the node's subscriptions does not mean
        # the node's readers see our publishers yet, and an image lost before the first one the node receives
        # leaves no gap in the sequence numbers to count it by (frames_lost); after it, every image is counted.
        peer.send(base)
        peer.wait_result(base)
        stamps = [base + (i + 1) * period_ns for i in range(8)]
        start = time.monotonic()
        for i, stamp in enumerate(stamps):
            sleep_until(start + i * 0.1)
            peer.send(stamp, info_first=i % 2 == 0)   # CameraInfo before or after its image
        last = peer.wait_result(stamps[-1])            # the newest frame is never the one dropped
        stamps = [base] + stamps
        values = peer.wait_counter("frames_in", len(stamps))
        wait_until(lambda: int(peer.latest_values()["frames_out"]) + int(peer.latest_values()["frames_dropped"])
                   == len(stamps), 10.0, "every frame processed or counted as dropped")
        wait_until(lambda: len(peer.overlays) > 0 and len(peer.tf) > 0, 10.0, "overlay and TF")

    results = list(peer.results)
    got = [stamp_ns(r.header.stamp) for r in results]
    assert got == sorted(set(got)) and set(got) <= set(stamps)            # in order, no duplicates, real stamps
    values = peer.latest_values()
    assert int(values["frames_out"]) == len(results) and int(values["frames_dropped"]) == len(stamps) - len(results)
    assert values["backend"] == "torch:cpu" and values["tf_path"] == "tf2_msgs" and values["model"] == "kpt_ho3d_3d_r18"
    assert values["pairing"] == "own"   # message_filters is not installable here
    assert values["cuda_graph"] == "off"
    for key in ("input_rate_hz", "output_rate_hz", "latency_ms_p50", "latency_ms_p99", "model_ms_p50"):
        assert float(values[key]) > 0.0, key
    assert not [k for k in values if k.startswith("errors.")]

    # Result message: header of the input image, metres. (With random weights the keypoints fall outside the
    # image and get zero confidence, so the root depth comes from default_depth_m = 0.5 m: the depth decoding
    # itself is checked in test_image_codec.)
    assert last.header.frame_id == OPTICAL_FRAME and last.model == "kpt_ho3d_3d_r18" and last.backend == "torch:cpu"
    assert last.latency_ms > 0 and {"decode", "node_total"} <= {t.stage for t in last.timings}
    right = next(h for h in last.hands if h.side == HandPose.SIDE_RIGHT)
    assert right.present and len(right.joints) == 21 and len(right.keypoints_2d) == 42
    assert right.root_depth_source == HandPose.DEPTH_SOURCE_DEFAULT
    assert right.joints[0].z == pytest.approx(0.5, abs=1e-6)
    assert [o.object_id for o in last.objects] == ["025_mug"] and last.objects[0].tf_frame_id == "mug"

    # Markers: same header as the result, stable namespaces.
    marker_arrays = [m for m in peer.markers if m.markers and m.markers[0].header.stamp == last.header.stamp]
    assert marker_arrays
    keys = {(m.ns, m.id) for m in marker_arrays[-1].markers if m.action == Marker.ADD}
    assert {("right_hand/skeleton", 0), ("right_hand/joints", 0), ("objects", 1)} <= keys  # mug = 2nd entry
    assert all(m.header.frame_id == OPTICAL_FRAME for m in marker_arrays[-1].markers)

    # TF: wrist and object frames, parent = optical frame, stamp = image stamp, translation = result (m).
    transforms = {(t.child_frame_id, stamp_ns(t.header.stamp)): t for msg in peer.tf for t in msg.transforms}
    wrist = transforms[("right_hand_wrist", stamps[-1])]
    assert wrist.header.frame_id == OPTICAL_FRAME
    assert wrist.transform.translation.z == pytest.approx(right.joints[0].z, abs=1e-6)
    assert ("mug", stamps[-1]) in transforms

    assert node_with_depth.count("using the licence-free stand-in hand") == 1
    overlay = peer.overlays[-1]
    assert (overlay.width, overlay.height, overlay.encoding) == (WIDTH, HEIGHT, "rgb8")
    assert stamp_ns(overlay.header.stamp) in stamps and overlay.header.frame_id == OPTICAL_FRAME


def test_bad_input_is_counted_and_the_node_keeps_running(node_with_depth):
    node = node_with_depth
    with ros_session() as session:
        peer = Peer(session, with_tf=False)
        peer.wait_matched(use_depth=True)
        stamp = [now_ns(peer.node)]

        def next_stamp():
            stamp[0] += 50_000_000
            return stamp[0]

        def still_works():
            s = next_stamp()
            peer.send(s)
            return peer.wait_result(s)

        def bad(key, **send):
            s = next_stamp()
            peer.send(s, **{k: (v(s) if callable(v) else v) for k, v in send.items()})
            peer.wait_counter(f"errors.{key}")
            return s

        rgb = scene_image()
        still_works()
        # Unsupported encoding (Bayer), zero size, step smaller than a row.
        bad("unsupported_encoding", image=lambda s: Image(header=header(s), height=HEIGHT, width=WIDTH,
                                                          encoding="bayer_rggb8", step=WIDTH,
                                                          data=rgb[..., 0].tobytes()))
        bad("bad_size", image=lambda s: Image(header=header(s), height=0, width=0, encoding="rgb8", step=0))
        bad("bad_step", image=lambda s: Image(header=header(s), height=HEIGHT, width=WIDTH, encoding="rgb8",
                                              step=WIDTH * 3 - 1, data=rgb.tobytes()))
        # Padded rows decode correctly: same result as the unpadded image would give.
        s = next_stamp()
        padded = np.concatenate([rgb.reshape(HEIGHT, -1), np.zeros((HEIGHT, 32), np.uint8)], axis=1)
        peer.send(s, image=Image(header=header(s), height=HEIGHT, width=WIDTH, encoding="rgb8",
                                 step=WIDTH * 3 + 32, data=padded.tobytes()))
        assert peer.wait_result(s).hands
        # Big-endian 16UC1 depth is accepted (its values are checked in test_image_codec).
        s = next_stamp()
        be = np.full((HEIGHT, WIDTH), DEPTH_MM, ">u2")
        peer.send(s, depth=Image(header=header(s), height=HEIGHT, width=WIDTH, encoding="16UC1", is_bigendian=1,
                                 step=WIDTH * 2, data=be.tobytes()))
        assert peer.wait_result(s).hands
        # NaN / inf / zero depth: no valid pixel, counted; processed with another depth source.
        s = next_stamp()
        invalid = np.tile(np.array([np.nan, np.inf, 0.0, -1.0], np.float32), HEIGHT * WIDTH // 4)
        peer.send(s, depth=Image(header=header(s), height=HEIGHT, width=WIDTH, encoding="32FC1", step=WIDTH * 4,
                                 data=invalid.tobytes()))
        assert peer.wait_result(s).hands[0].root_depth_source != HandPose.DEPTH_SOURCE_DEPTH_IMAGE
        assert int(peer.wait_counter("errors.depth_no_valid_pixels")["errors.depth_no_valid_pixels"]) == 1
        assert not [k for k in peer.latest_values() if k.startswith("errors.depth_") and "no_valid" not in k]
        # Depth of another size: ignored, frame processed.
        s = next_stamp()
        peer.send(s, depth=depth_msg(s, np.full((HEIGHT // 2, WIDTH // 2), DEPTH_MM, np.uint16)))
        peer.wait_result(s)
        peer.wait_counter("errors.depth_size_mismatch")
        # All-zero intrinsics.
        bad("bad_camera_info", camera_info=lambda s: camera_info_msg(s, k=(0.0,) * 9))
        # ROI outside the image: ignored, frame processed.
        wait_for_subscribers(peer.roi_pub)
        peer.roi_pub.publish(RegionOfInterest(x_offset=WIDTH + 10, y_offset=0, width=20, height=20))
        still_works()
        peer.wait_counter("errors.roi_outside_image")
        # An image older than the previous one.
        s_new = next_stamp()
        peer.send(s_new)
        peer.wait_result(s_new)
        peer.send(s_new - 10_000_000)
        peer.wait_counter("errors.out_of_order")
        # A stamp far in the past (bag loop, clock reset): processed, tracking restarted, counted.
        s_back = s_new - 2_000_000_000
        peer.send(s_back)
        peer.wait_result(s_back)
        peer.wait_counter("errors.time_jumped_back")
        # No camera_info: the node waits and warns (throttled) naming what is missing.
        for _ in range(3):
            sleep_until(time.monotonic() + 0.5)
            peer.send(next_stamp(), info=False)
        peer.wait_counter("errors.unpaired_images", timeout=15.0)
        still_works()
    assert node.proc.poll() is None
    assert node.count("waiting for a camera_info with exactly the same stamp") >= 1
    assert node.count("[bad_step] image step 959 B is smaller than one row") == 1
    assert node.count("bayer_rggb8") >= 1 and node.count("debayer") >= 1


def test_runs_without_tf2_msgs_with_one_warning(tmp_path):
    node = NodeProcess(write_params(tmp_path), env_without_tf2_fixture())
    try:
        node.wait_ready()
        with ros_session() as session:
            peer = Peer(session, with_tf=False)
            peer.wait_matched(use_depth=False)
            # The first samples after matching can be lost (matching is per side): send fresh frames
            # until two results came back, instead of waiting on one frame that may never arrive.
            stamps, deadline = [], time.monotonic() + 120.0
            while len(stamps) < 2 and time.monotonic() < deadline:
                stamp = now_ns(peer.node)
                peer.send(stamp, depth_mm=None)
                try:
                    peer.wait_result(stamp, timeout=15.0)
                    stamps.append(stamp)
                except AssertionError:
                    continue
            assert len(stamps) == 2, "the node answered fewer than two frames in 120 s"
            assert peer.wait_counter("frames_out", 2)["tf_path"] == "disabled"
            hand = peer.result_for(stamps[-1]).hands[0]
            assert hand.root_depth_source != HandPose.DEPTH_SOURCE_DEPTH_IMAGE   # no depth subscribed
    finally:
        node.stop()
    assert node.count("TF publishing disabled: neither tf2_ros nor tf2_msgs is importable") == 1
