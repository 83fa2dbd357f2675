"""Process level: the pose node (plain entry point) with the launch default, config/hand_landmarks.yaml
(the offline hand detector, hands only), on rendered upright stand-in hands; and a network preset with
crop_source "detector". A frame without hands is published as an empty result; missing detector
files stop the node at start with one line."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ros"))

from hand_object_pose.ros.inputs import stamp_ns  # noqa: E402
from hand_object_pose.synthetic.upright_hands import UprightConfig, upright_frames  # noqa: E402
from node_process import HEIGHT, WIDTH, NodeProcess, Peer, camera_info_msg, image_msg, now_ns, write_params  # noqa: E402
from ros_test_helpers import REPO_ROOT, env_without_tf2_fixture, ros_session, start_python, wait_until  # noqa: E402

FRAMES = 6


def hand_landmarks_params(directory: Path, **changes) -> Path:
    data = yaml.safe_load((REPO_ROOT / "config" / "hand_landmarks.yaml").read_text())
    data["/**"]["ros__parameters"].update(providers=["cpu"], threads=1, diagnostics_period_s=0.2, **changes)
    path = directory / "hand_landmarks_params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def frames():
    return upright_frames(FRAMES, seed=3, config=UprightConfig(image_size=(WIDTH, HEIGHT)))


def stream(peer, frames, blank_last: bool = True):
    """Publish the frames (and a blank one) one at a time, each after the previous result; returns
    [(stamp, result)]."""
    got = []
    images = [f.rgb for f in frames] + ([np.full((HEIGHT, WIDTH, 3), 100, np.uint8)] if blank_last else [])
    for rgb, k in zip(images, [f.K for f in frames] + [frames[0].K]):
        for attempt in range(2):
            # Best-effort QoS (the node's camera default) may drop a message on a loaded machine: a frame that
            # got no result is sent once more under a new stamp.
            stamp = now_ns(peer.node)
            peer.info_pub.publish(camera_info_msg(stamp, k=tuple(np.asarray(k, float).reshape(-1))))
            peer.image_pub.publish(image_msg(stamp, rgb))
            try:
                got.append((stamp, peer.wait_result(stamp, timeout=30.0 * (attempt + 1))))
                break
            except AssertionError:
                if attempt == 1:
                    raise
    return got


def test_default_node_reports_hands_on_rendered_frames(tmp_path, frames):
    # The frames are unrelated pictures: the palm detector runs on each one (a track carried from one
    # picture into the next finds a hand there only by chance).
    node = NodeProcess(hand_landmarks_params(tmp_path, detector_redetect_interval=1), env_without_tf2_fixture())
    try:
        node.wait_ready()
        assert any("model hand_landmarks" in line for line in node.lines)
        assert any("object poses need" in line for line in node.lines)
        with ros_session() as session:
            peer = Peer(session, with_tf=False)
            peer.wait_matched(use_depth=False)
            results = stream(peer, frames)
            values = peer.wait_counter("frames_out", len(frames) + 1)
    finally:
        node.stop()
    found = 0
    for (stamp, result), frame in zip(results[:-1], frames):
        assert stamp_ns(result.header.stamp) == stamp and result.model == "hand_landmarks"
        assert result.objects == []
        (side, truth), = frame.hands.items()
        for hand in result.hands:
            if not hand.present:
                continue
            uv = np.asarray(hand.keypoints_2d, float).reshape(21, 2)
            if np.linalg.norm(uv - truth.joints_2d, axis=1).mean() < 0.2 * np.ptp(truth.joints_2d, axis=0).max():
                found += 1
                assert 0.1 < hand.joints[0].z < 2.0   # metres, optical frame
    assert found >= FRAMES - 2
    blank = results[-1][1]
    assert not [h for h in blank.hands if h.present]
    assert int(values["detector.frames_without_hands"]) >= 1 and float(values["detector.runs_per_s"]) > 0


def test_network_preset_with_crop_source_detector(tmp_path, frames):
    node = NodeProcess(write_params(tmp_path, crop_source="detector"), env_without_tf2_fixture())
    try:
        node.wait_ready()
        with ros_session() as session:
            peer = Peer(session, with_tf=False)
            peer.wait_matched(use_depth=False)
            results = stream(peer, frames[:2])
    finally:
        node.stop()
    assert any(h.present for h in results[0][1].hands)
    assert not [h for h in results[-1][1].hands if h.present]   # no hands: empty result, network not run


def test_missing_detector_files_stop_the_node_with_one_line(tmp_path):
    proc = start_python(["-m", "hand_object_pose.ros.pose_node", "--ros-args", "--params-file",
                         str(hand_landmarks_params(tmp_path, hand_detector_dir=str(tmp_path / "nothing")))],
                        env_without_tf2_fixture())
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0
    errors = [line for line in output.splitlines() if "hand detector metadata not found" in line]
    assert len(errors) == 1 and "Traceback" not in output
