"""Official Keypoint Transformer checkpoints -> our model: every key mapped or explained, strict load."""
from __future__ import annotations

import dataclasses
import re
from collections import OrderedDict

import pytest
import torch

from hand_object_pose.export.parity_kit import SHARED_LISTINGS_DIR
from hand_object_pose.models.kpt import PRESETS, build, convert_state_dict, infer_config, load_official
from hand_object_pose.models.kpt.checkpoint import PREFIX_MAP, read_official_checkpoint

RELEASED = {"kypt_ih26m_2p5d": "kpt_ih26m_2p5d", "kypt_ih26m_angles": "kpt_ih26m_angles",
            "kypt_ho3d_3d": "kpt_ho3d_3d", "kypt_h2o3d_3d": "kpt_h2o3d_3d"}
LINE = re.compile(r"^(\S+) \(([\d, ]*)\)$")


def listing(config: str) -> "OrderedDict[str, tuple]":
    path = SHARED_LISTINGS_DIR / f"{config}.txt"
    if not path.is_file():
        pytest.skip(f"official key listing not available: {path}")
    keys = OrderedDict()
    in_keys = False
    for line in path.read_text().splitlines():
        if line.startswith("# all keys"):
            in_keys = True
            continue
        match = LINE.match(line.strip()) if in_keys else None
        if match:
            keys[match.group(1)] = tuple(int(v) for v in match.group(2).split(",") if v.strip())
    return keys


@pytest.mark.parametrize("config", sorted(RELEASED))
def test_every_official_tensor_is_mapped_or_explained(config):
    keys = listing(config)
    official = {k: torch.empty(shape, device="meta") for k, shape in keys.items()}
    cfg = infer_config(official)
    assert cfg == PRESETS[RELEASED[config]]
    ours, report = convert_state_dict(official, cfg)
    assert set(report.mapped) | set(report.unused) == set(keys)
    assert all(reason for reason in report.unused.values())
    assert {k.split(".")[0] for k in report.unused} <= {"norm1", "linear_hand_type", "linear_shape"}
    with torch.device("meta"):
        model = build(cfg)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in ours.items()} == expected


def _official_from_ours(model) -> "OrderedDict[str, torch.Tensor]":
    """Invert the prefix map: our state dict -> official names (plus the unused official tensors)."""
    out = OrderedDict()
    for key, value in model.state_dict().items():
        if key.startswith("heads."):
            out[key[len("heads."):]] = value
            continue
        for official, ours in PREFIX_MAP:
            if key.startswith(ours):
                out[official + key[len(ours):]] = value
                break
    out["norm1.weight"] = torch.ones(992)
    out["norm1.bias"] = torch.zeros(992)
    out["linear_hand_type.layers.0.weight"] = torch.zeros(256, 256)
    return out


def test_official_pth_tar_round_trip(tmp_path):
    torch.manual_seed(0)
    cfg = dataclasses.replace(PRESETS["kpt_h2o3d_3d"], backbone_depth=18)
    source = build(cfg).eval()
    official = _official_from_ours(source)
    # DataParallel prefix, and an old-style decoder key (no `resnet_decoder.`) as the official loader renames
    network = OrderedDict()
    for key, value in official.items():
        key = "module." + key
        if key.startswith("module.decoder_net.resnet_decoder.deconv1"):
            key = key.replace("resnet_decoder.", "")
        network[key] = value
    assert any(k.startswith("module.decoder_net.deconv1") for k in network)
    path = tmp_path / "snapshot_99.pth.tar"
    torch.save({"epoch": 99, "network": network, "optimizer": {}, "lr_scheduler": {}}, path)

    loaded = read_official_checkpoint(path)
    assert "decoder_net.resnet_decoder.deconv1.0.weight" in loaded and not any(k.startswith("module.") for k in loaded)
    assert infer_config(loaded, dropout=cfg.dropout) == cfg
    target = build(cfg).eval()
    report = load_official(target, loaded)
    assert "norm1.weight" in report.unused and "linear_hand_type.layers.0.weight" in report.unused
    image = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        torch.testing.assert_close(target(image).heatmap, source(image).heatmap)


def test_unknown_or_missing_keys_fail_loudly():
    cfg = dataclasses.replace(PRESETS["kpt_ih26m_2p5d"], backbone_depth=18)
    model = build(cfg)
    official = _official_from_ours(model)
    with pytest.raises(KeyError, match="no mapping"):
        convert_state_dict({**official, "mystery.weight": torch.zeros(1)}, cfg)
    del official["linear_cam.layers.0.weight"]
    with pytest.raises(KeyError, match="missing in checkpoint"):
        load_official(model, official)


def test_checkpoint_is_read_with_weights_only(tmp_path):
    path = tmp_path / "evil.pth.tar"
    torch.save({"network": {"x": torch.zeros(1)}, "extra": object()}, path)
    with pytest.raises(Exception, match="(?i)weights_only|unsupported global"):
        read_official_checkpoint(path)
