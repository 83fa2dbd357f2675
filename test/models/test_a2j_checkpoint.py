"""Official A2J-Transformer checkpoint -> our model: every tensor mapped or rejected with a reason."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch

from hand_object_pose.export.parity_kit import SHARED_PARITY_DIR, load_kit
from hand_object_pose.models.a2j import A2JConfig, PRESETS, build
from hand_object_pose.models.a2j.checkpoint import (
    convert_state_dict, load_converted, load_official, read_official_checkpoint)


@pytest.fixture(scope="module")
def official():
    return load_kit("a2j_ih26m", SHARED_PARITY_DIR).official_state_dict()


def test_every_official_tensor_is_renamed_or_listed_unused(official):
    conversion = convert_state_dict(official)
    assert set(conversion.renamed) | set(conversion.unused) == set(official)
    assert not set(conversion.renamed) & set(conversion.unused)
    # Exactly the two registrations of the six inert anchor-update MLPs are dropped.
    assert len(conversion.unused) == 72
    assert all(k.startswith(("bbox_embed_anchor.", "transformer.decoder.bbox_embed.")) for k in conversion.unused)
    model = build(PRESETS["a2j_ih26m"])
    ours = model.state_dict()
    assert set(conversion.state_dict) == set(ours)
    for key, value in conversion.state_dict.items():
        assert value.shape == ours[key].shape, key


def test_load_takes_anchors_and_frozen_bn_from_the_file(official):
    model = build(PRESETS["a2j_ih26m"])
    moved = OrderedDict(official)
    anchors = official["refpoint_embed.weight"] + np.float32(0.25)     # as if trained
    moved["refpoint_embed.weight"] = anchors
    load_official(model, moved)
    np.testing.assert_array_equal(model.anchors.detach().numpy(), anchors)
    np.testing.assert_array_equal(model.backbone.layer4[2].bn3.running_var.numpy(),
                                  official["backbone.0.body.layer4.2.bn3.running_var"])
    np.testing.assert_array_equal(model.query_content.detach().numpy(), official["tgt_embed.weight"])


def test_unknown_and_missing_keys_are_errors(official):
    extra = OrderedDict(official)
    extra["transformer.decoder.class_embed.0.weight"] = np.zeros((2, 256), np.float32)
    with pytest.raises(KeyError, match="class_embed"):
        convert_state_dict(extra)
    partial = OrderedDict((k, v) for k, v in official.items() if not k.startswith("anchor_weights.3."))
    with pytest.raises(RuntimeError, match="weight_heads.3"):
        load_converted(build(PRESETS["a2j_ih26m"]), convert_state_dict(partial))


def test_optional_heads_stay_at_init_with_the_official_checkpoint(official):
    model = build(A2JConfig(presence_head=True, confidence_head=True))
    left = load_converted(model, convert_state_dict(official))
    assert left and all(k.startswith(("presence_head.", "joint_confidence_head.")) for k in left)


def test_reads_the_release_file_format(tmp_path, official):
    # The release file: {'epoch', 'network' (DataParallel, 'module.' prefix), 'optimizer'}.
    small = OrderedDict((k, torch.from_numpy(official[k])) for k in ("refpoint_embed.weight", "tgt_embed.weight"))
    path = tmp_path / "snapshot_0.pth.tar"
    torch.save({"epoch": 41, "network": OrderedDict(("module." + k, v) for k, v in small.items()),
                "optimizer": {}}, path)
    network = read_official_checkpoint(path)
    assert list(network) == list(small)
    torch.testing.assert_close(network["refpoint_embed.weight"], small["refpoint_embed.weight"])
