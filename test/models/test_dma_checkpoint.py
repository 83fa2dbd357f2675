"""Official DMA checkpoint conversion: prefixes, unused tensors with reasons, strictness."""
from __future__ import annotations

from collections import OrderedDict

import pytest
import torch

from hand_object_pose.export.parity_kit import SHARED_LISTINGS_DIR
from hand_object_pose.models.dma import PRESETS, build
from hand_object_pose.models.dma.checkpoint import (convert_state_dict, load_official_weights,
                                                    read_official_checkpoint)


@pytest.fixture(scope="module")
def model():
    return build(PRESETS["dma_ho3d"])


def _official_names():
    lines = (SHARED_LISTINGS_DIR / "dma_ho3d.txt").read_text().split("# all keys", 1)[1].splitlines()
    return [line.split(" ", 1)[0] for line in lines if line.strip()]


def test_every_official_key_is_loaded_or_listed_as_unused(model):
    names = _official_names()
    assert len(names) == 951
    ours = model.state_dict()
    official = OrderedDict((f"module.{name}", ours[name].clone() if name in ours else torch.zeros(1))
                           for name in names)
    converted, report = convert_state_dict(official, model)
    assert len(report.loaded) == 949 == len(ours)
    assert set(report.unused) == {"human_model_layer.th_faces", "human_model_layer.th_J_regressor"}
    assert all("MANO" in reason for reason in report.unused.values())
    assert "pose_backbone.bn1.weight" in converted  # loaded (round-trips), though not applied


def test_round_trip_through_a_pth_tar_file(model, tmp_path):
    # A small model-compatible dict is enough to test the file format: reuse the real one.
    state = OrderedDict((f"module.{k}", v) for k, v in model.state_dict().items())
    state["module.human_model_layer.th_faces"] = torch.zeros(1538, 3, dtype=torch.int64)
    path = tmp_path / "snapshot.pth.tar"
    torch.save({"network": state, "epoch": 30}, path)
    report = load_official_weights(model, read_official_checkpoint(path))
    assert len(report.loaded) == 949 and list(report.unused) == ["human_model_layer.th_faces"]
    assert "loaded 949 tensors" in report.format()


def test_unknown_missing_and_misshaped_tensors_raise(model, tmp_path):
    ours = model.state_dict()
    with pytest.raises(KeyError, match="unknown official keys \\['not_a_layer.weight'\\]"):
        convert_state_dict({**ours, "not_a_layer.weight": torch.zeros(1)}, model)
    partial = dict(ours)
    del partial["gcn_a.a1.kh1.0.weight"]
    with pytest.raises(KeyError, match="gcn_a.a1.kh1.0.weight"):
        convert_state_dict(partial, model)
    bad = dict(ours)
    bad["gcn_a.a1.kh1.0.weight"] = torch.zeros(64, 64, 1)  # a kernel-1 conv would be a different model
    with pytest.raises(ValueError, match="shape"):
        convert_state_dict(bad, model)
    torch.save({"state_dict": {}}, tmp_path / "wrong.pth.tar")
    with pytest.raises(ValueError, match="'network'"):
        read_official_checkpoint(tmp_path / "wrong.pth.tar")
