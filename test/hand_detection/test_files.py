"""The committed hand detector files (models/hand_detector): intact, loadable, the documented shapes."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hand_object_pose.inference.hand_detection import HandDetectorFilesError, default_dir, locate
from hand_object_pose.file_digest import sha256_of as _sha256

REPO = Path(__file__).resolve().parents[2]
FOLDER = REPO / "models" / "hand_detector"


def test_default_dir_is_the_committed_folder():
    assert default_dir() == FOLDER


def test_installed_layout_is_searched(tmp_path):
    from hand_object_pose.inference.hand_detection.files import default_dirs

    package = tmp_path / "lib" / "python3.11" / "site-packages" / "hand_object_pose"
    assert default_dirs(package) == [package.parent / "models" / "hand_detector",
                                     tmp_path / "share" / "hand_object_pose" / "models" / "hand_detector"]


def test_sha256_and_licence_and_size():
    metadata = json.loads((FOLDER / "metadata.json").read_text())
    total = 0
    for key in ("palm_detection", "hand_landmark"):
        entry = metadata["networks"][key]
        path = FOLDER / entry["file"]
        assert _sha256(path) == entry["sha256"], f"{path} differs from metadata.json"
        assert path.stat().st_size == entry["bytes"]
        total += entry["bytes"]
        # The conversion tool refused anything beyond its tolerance; the recorded diffs say so too.
        scale = {"raw_boxes": 200.0, "landmarks": 224.0}
        for name, diff in entry["max_abs_diff_vs_tflite"].items():
            assert diff <= metadata["tolerance"]["atol"] + metadata["tolerance"]["rtol"] * scale.get(name, 100.0)
    assert total < 20e6
    assert metadata["source"]["version"] == "0.10.21" and len(metadata["source"]["wheel_sha256"]) == 64
    assert "Apache License" in (FOLDER / "LICENSE").read_text()
    assert "MediaPipe" in (FOLDER / "README.md").read_text()


def test_onnx_runtime_loads_them_with_the_documented_shapes():
    import onnxruntime as ort

    files = locate()
    palm = ort.InferenceSession(str(files.palm_detection), providers=["CPUExecutionProvider"])
    out = palm.run(None, {"image": np.zeros((1, 192, 192, 3), np.float32)})
    assert [o.name for o in palm.get_outputs()] == ["raw_boxes", "raw_scores"]
    assert out[0].shape == (1, 2016, 18) and out[1].shape == (1, 2016, 1)
    landmark = ort.InferenceSession(str(files.hand_landmark), providers=["CPUExecutionProvider"])
    out = landmark.run(None, {"image": np.zeros((1, 224, 224, 3), np.float32)})
    assert [o.name for o in landmark.get_outputs()] == ["landmarks", "presence", "handedness", "world_landmarks"]
    assert [o.shape for o in out] == [(1, 63), (1, 1), (1, 1), (1, 63)]
    assert 0.0 <= float(out[1][0, 0]) < 0.5  # nothing in a black crop


def test_missing_or_corrupt_files_are_one_line_errors(tmp_path):
    copy = tmp_path / "detector"
    shutil.copytree(FOLDER, copy)
    locate(copy)
    with open(copy / "palm_detection_lite.onnx", "r+b") as f:
        f.truncate(1000)
    with pytest.raises(HandDetectorFilesError, match="does not match the sha256") as info:
        locate(copy)
    assert "\n" not in str(info.value)
    (copy / "hand_landmark_lite.onnx").unlink()
    with pytest.raises(HandDetectorFilesError, match="missing"):
        locate(copy, verify=False)
    with pytest.raises(HandDetectorFilesError, match="metadata not found"):
        locate(tmp_path / "nowhere")
    (copy / "metadata.json").write_text("{not json")
    with pytest.raises(HandDetectorFilesError, match="unreadable"):
        locate(copy)


def test_corrupt_file_without_verification_fails_at_load(tmp_path):
    from hand_object_pose.inference.hand_detection import HandDetector, HandDetectorConfig

    copy = tmp_path / "detector"
    shutil.copytree(FOLDER, copy)
    (copy / "palm_detection_lite.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(HandDetectorFilesError) as info:
        HandDetector.from_config(HandDetectorConfig(model_dir=str(copy), verify_files=False))
    assert "\n" not in str(info.value) and "palm_detection_lite.onnx" in str(info.value)
