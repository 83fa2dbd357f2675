"""`make demo INPUT=<folder>` without MODEL: the launch default (the offline hand detector, hands only)
runs on the user's own frames (here: rendered upright stand-in hands) and draws what it finds."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2

from hand_object_pose.synthetic.upright_hands import upright_frames
from ros_test_helpers import REPO_ROOT, env_plain_venv


def test_demo_on_an_image_folder_uses_the_hand_detector(tmp_path):
    folder = tmp_path / "my_frames"
    folder.mkdir()
    for i, frame in enumerate(upright_frames(3, seed=11)):
        cv2.imwrite(str(folder / f"shot_{i:03d}.png"), frame.rgb[:, :, ::-1])
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "hand_object_pose.tools.demo", "--input", str(folder), "--rate", "3",
                             "--out", str(out)], cwd=REPO_ROOT, env=env_plain_venv(), stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, f"demo failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    assert "the offline hand detector" in result.stdout and "UNTRAINED" not in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "hand_landmarks" and summary["model_trained"] is True
    assert summary["frames_in"] == 3 and summary["frames_out"] + summary["dropped"] == 3
    assert summary["overlays_written"] == summary["frames_out"] >= 1
    params = (out / "pose_node_params.yaml").read_text()
    assert "crop_source: detector" in params and "model_path: ''" in params
    frames = [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]
    assert len(frames) == 3
