"""`make demo` in small: the orchestrator runs the real camera, pose node and recorder processes on a few
small synthetic frames with the trained default model (models/default/), and the outputs are checked for
consistency and accuracy. The untrained stand-in is only the fallback for a missing models/default/ file."""
import json
import subprocess
import sys
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from ros_test_helpers import REPO_ROOT, env_plain_venv

FRAMES = 6
DEFAULT_DIR = REPO_ROOT / "models" / "default"
DEFAULT_METADATA = json.loads((DEFAULT_DIR / "metadata.json").read_text())
DEFAULT_MODEL = DEFAULT_DIR / DEFAULT_METADATA["model_file"]      # beside it: its object network, if any
DEFAULT_PRESET = DEFAULT_METADATA["preset"]
# The bar for this test: MPJPE < 30 mm on these frames, for each hand. The shipped model (the one-session
# default of 6 Dec 2026 adapted to generator version 11, with its 192 px coarse network since that evening): right
# 13.1, left 22.3 mm on the 6 frames of version 11 with the joint depth refinement (13.2 / 22.0 before the coarse
# network, 31.3 mm left before the adaptation); 11.8 / 19.1 mm over make demo's 90 (docs/demo.md).
# Their large moves between frames need the second crop of a tracked hand that moved out of its crop (without it,
# with an earlier default, 17.7 / 32.8 mm).
MAX_RIGHT_MPJPE_MM = 30.0
MAX_LEFT_MPJPE_MM = 30.0


def _demo(*args, timeout=240):
    return subprocess.run([sys.executable, "-m", "hand_object_pose.tools.demo", *args], cwd=REPO_ROOT,
                          env=env_plain_venv(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo_out"
    result = _demo("--frames", str(FRAMES), "--size", "320x240", "--rate", "5", "--out", str(out))
    assert result.returncode == 0, f"demo failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return out, result.stdout, json.loads((out / "summary.json").read_text())


def test_counts_add_up_and_the_trained_default_is_used(demo_run):
    out, stdout, summary = demo_run
    assert "THE MODEL IS UNTRAINED" not in stdout and "hand_object_pose demo summary" in stdout
    assert summary["model_trained"] is True and summary["model"] == DEFAULT_PRESET
    assert summary["backend"].startswith("onnxruntime:")
    assert summary["frames_in"] == FRAMES
    assert 1 <= summary["frames_out"] <= FRAMES
    assert summary["frames_out"] + summary["dropped"] == summary["frames_in"]
    log = [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]
    assert [entry["index"] for entry in log] == list(range(FRAMES))
    assert all(entry["truth"]["hands"] for entry in log)
    latency = summary["latency_ms"]
    assert 0 < latency["end_to_end"]["p50"] < 60_000
    assert latency["end_to_end"]["p50"] >= latency["node"]["p50"] - 1.0   # transport adds, never removes
    assert "total" in latency["stages"] and latency["stages"]["total"]["n"] == summary["frames_out"]


def test_tf_and_markers_come_out(demo_run):
    _, _, summary = demo_run
    if summary["tf_frames"] is not None:   # tf2_msgs (the fixture `make msgs` builds) importable
        assert summary["tf_frames"].get("right_hand_wrist", 0) >= 1
    for namespace in ("right_hand/skeleton", "right_hand/joints"):
        assert summary["marker_namespaces"].get(namespace, 0) >= 1, namespace


def test_overlays_and_video(demo_run):
    out, _, summary = demo_run
    overlays = sorted((out / "overlays").glob("overlay_*.png"))
    assert len(overlays) == summary["overlays_written"] == summary["frames_out"]
    assert cv2.imread(str(overlays[0])).shape == (240, 320, 3)
    capture = cv2.VideoCapture(summary["video"])
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    assert len(frames) == summary["video_frames"] == len(overlays)
    assert frames[0].shape == (240, 320, 3)


def test_the_trained_default_is_under_30_mm_per_hand_on_the_demo_frames(demo_run):
    _, _, summary = demo_run
    accuracy = summary["accuracy"]
    assert accuracy["frames_evaluated"] == summary["frames_out"]
    assert accuracy["hands_scored"]["right"] >= 1
    assert 0 <= accuracy["mpjpe_mm"]["right"] < MAX_RIGHT_MPJPE_MM, accuracy["mpjpe_mm"]
    if accuracy["hands_scored"]["left"]:
        assert 0 <= accuracy["mpjpe_mm"]["left"] < MAX_LEFT_MPJPE_MM, accuracy["mpjpe_mm"]
    scored = [accuracy["mpjpe_mm"][side] for side in ("right", "left") if accuracy["hands_scored"][side]]
    assert all(np.isfinite(v) and v >= 0 for v in scored)
    assert accuracy["hand_presence_accuracy"] >= 0.5


def test_a_missing_default_model_falls_back_to_the_untrained_stand_in(tmp_path):
    from hand_object_pose.tools.demo import choose_model

    settings = {"default_model": {"directory": str(tmp_path / "empty"), "untrained_preset": DEFAULT_PRESET,
                                  "untrained_overrides": {}}}
    args = SimpleNamespace(model="", input="", preset="")
    choice = choose_model(args, settings, tmp_path / "out")
    assert choice.trained is False and choice.origin == "untrained stand-in" and choice.preset == DEFAULT_PRESET
    assert choice.path.is_file() and choice.path.parent == tmp_path / "out" / "untrained_model"
    present = choose_model(args, {"default_model": {"directory": str(DEFAULT_DIR)}}, tmp_path / "out")
    assert present.trained is True and present.path == DEFAULT_MODEL


def test_bad_arguments_fail_fast_with_a_clear_message(tmp_path):
    result = _demo("--input", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "out"), timeout=60)
    assert result.returncode == 1 and "--input" in result.stderr and "no such file" in result.stderr
    result = _demo("--model", str(tmp_path / "missing.onnx"), "--out", str(tmp_path / "out"), timeout=60)
    assert result.returncode == 1 and "--model" in result.stderr and "not found" in result.stderr


def test_input_mode_on_an_image_folder(demo_run, tmp_path):
    """`make demo INPUT=folder MODEL=... DEMO_ARGS=--independent-frames`: the user's own photos, default intrinsics,
    no depth, no ground truth, each photo looked at afresh (the node's tracking off)."""
    out, _, summary = demo_run
    folder = tmp_path / "my_images"
    folder.mkdir()
    for path in sorted((out / "frames").glob("rgb_*.png"))[:4]:
        (folder / path.name.replace("rgb_", "shot_")).write_bytes(path.read_bytes())
    model = DEFAULT_MODEL                                      # its metadata.json names the preset
    result = _demo("--input", str(folder), "--model", str(model), "--rate", "5", "--out", str(tmp_path / "out"),
                   "--independent-frames")
    assert result.returncode == 0, f"demo failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    assert "THE MODEL IS UNTRAINED" not in result.stdout
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["input"] == str(folder) and summary["accuracy"] is None
    assert summary["frames_in"] == 4 and summary["frames_out"] + summary["dropped"] == 4
    assert summary["overlays_written"] == summary["frames_out"] >= 1
    params = (tmp_path / "out" / "pose_node_params.yaml").read_text()
    assert "use_depth: false" in params and "tracking: false" in params


def test_a_failing_pose_node_stops_the_demo_with_its_message(tmp_path):
    model = tmp_path / "broken.onnx"
    model.write_bytes(b"not an onnx file")
    result = _demo("--model", str(model), "--preset", "kpt_h2o3d_3d", "--frames", "2", "--size", "96x72",
                   "--out", str(tmp_path / "out"), timeout=120)
    assert result.returncode == 1
    assert "pose_node exited" in result.stderr and "broken.onnx" in result.stderr
