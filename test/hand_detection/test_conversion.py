"""The conversion tool's pieces that need no TensorFlow, and (only with the convert-hands extra) the
tool itself. `make test`'s venv never has the extra: the full run then skips with the reason."""
from __future__ import annotations

import importlib.util
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from hand_object_pose.export import mediapipe_hands as mh

HAS_EXTRA = all(importlib.util.find_spec(m) is not None for m in ("tf2onnx", "ai_edge_litert", "onnx"))


def test_extract_needs_the_bundling_wheel(tmp_path):
    wheel = tmp_path / "mediapipe-0.10.21-cp311-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("mediapipe/__init__.py", "")
    with pytest.raises(mh.ConversionError, match="has no mediapipe/modules/palm_detection/palm_detection_lite.tflite"):
        mh.extract_from_wheel(wheel, "lite", tmp_path / "out")
    with pytest.raises(mh.ConversionError, match="unknown variant"):
        mh.extract_from_wheel(wheel, "huge", tmp_path / "out")
    (tmp_path / "bad.whl").write_bytes(b"no zip")
    with pytest.raises(mh.ConversionError, match="not a wheel"):
        mh.extract_from_wheel(tmp_path / "bad.whl", "lite", tmp_path / "out")


def test_extract_takes_the_members(tmp_path):
    wheel = tmp_path / "mediapipe-0.10.21-cp311-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for spec in mh.NETWORKS:
            archive.writestr(spec.member.format(variant="full"), spec.key.encode())
        archive.writestr(mh.LICENSE_MEMBER, "Apache License")
    paths = mh.extract_from_wheel(wheel, "full", tmp_path / "out")
    assert paths["palm_detection"].read_bytes() == b"palm_detection"
    assert paths["LICENSE"].read_text() == "Apache License"


def test_check_images_are_deterministic_and_in_range():
    a, b = mh.check_images(192, [("white", np.full((10, 20, 3), 255, np.uint8))]), mh.check_images(192)
    assert len(a) == len(b) + 1
    for (name, image), (_, again) in zip(a, b):
        assert image.shape == (1, 192, 192, 3) and image.dtype == np.float32
        assert 0.0 <= image.min() and image.max() <= 1.0
        np.testing.assert_array_equal(image, again)
    assert np.all(a[-1][1] == 1.0)


@pytest.mark.skipif(not HAS_EXTRA, reason="the convert-hands extra (tensorflow-cpu, tf2onnx, ai-edge-litert) is "
                    "not installed; the committed files are checked by test_files.py")
def test_conversion_reproduces_the_committed_networks(tmp_path):  # pragma: no cover - needs the extra
    import os
    wheel = os.environ.get("MEDIAPIPE_WHEEL", "")
    if not os.path.isfile(wheel):
        pytest.skip("set MEDIAPIPE_WHEEL to a mediapipe-0.10.21 wheel (the test never downloads)")
    metadata = mh.convert(tmp_path / "out", wheel=wheel, log=lambda _: None)
    committed = json.loads((Path(__file__).resolve().parents[2] / "models/hand_detector/metadata.json").read_text())
    for key, entry in metadata["networks"].items():
        # The conversion is deterministic: the same wheel gives the committed bytes.
        assert entry["sha256"] == committed["networks"][key]["sha256"]
