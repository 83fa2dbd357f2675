"""Official A2J-Transformer checkpoint -> our model: every tensor mapped or rejected with a reason."""
from __future__ import annotations

import logging
from collections import OrderedDict

import numpy as np
import pytest
import torch

from hand_object_pose.export.parity_kit import SHARED_PARITY_DIR, load_kit
from hand_object_pose.models.a2j import A2JConfig, PRESETS, build
from hand_object_pose.models.a2j.checkpoint import (
    convert_state_dict, load_converted, load_official, read_official_checkpoint)
from hand_object_pose.models.a2j.heads import presence_from_confidence, weight_peakedness
from hand_object_pose.models.a2j.output import CONFIDENCE_FROM_ANCHOR_WEIGHTS


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


HEADED = A2JConfig(presence_head=True, confidence_head=True)
HEAD_PREFIXES = ("presence_head.", "joint_confidence_head.")


def test_official_checkpoint_lacks_the_optional_heads(official):
    model = build(HEADED)
    left = load_converted(model, convert_state_dict(official))
    assert left and all(k.startswith(HEAD_PREFIXES) for k in left)
    assert {k for k in model.state_dict() if k.startswith(HEAD_PREFIXES)} == set(left)


def test_default_derives_confidence_from_anchor_weights_and_warns(official, caplog):
    model = build(HEADED).eval()
    with caplog.at_level(logging.WARNING, logger="hand_object_pose.models.a2j.checkpoint"):
        load_official(model, official)
    assert "anchor-weight" in caplog.text and "presence_head" in caplog.text
    assert model.presence_head is None and model.joint_confidence_head is None
    assert not model.config.presence_head and not model.config.confidence_head
    assert set(model.state_dict()) == set(build(PRESETS["a2j_ih26m"]).state_dict())
    with torch.no_grad():
        out = model(torch.full((1, 3, 256, 256), 0.5))
    assert out.confidence_source == out.presence_source == CONFIDENCE_FROM_ANCHOR_WEIGHTS
    assert out.hand_presence_logits is None and out.joint_confidence_logits is None
    torch.testing.assert_close(out.joint_confidence, weight_peakedness(out.anchor_weights))
    torch.testing.assert_close(out.hand_presence, presence_from_confidence(out.joint_confidence))


def test_untrained_keeps_the_heads_at_init_for_training_and_warns(official, caplog):
    model = build(HEADED)
    before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith(HEAD_PREFIXES)}
    with caplog.at_level(logging.WARNING, logger="hand_object_pose.models.a2j.checkpoint"):
        load_official(model, official, heads="untrained")
    assert "meaningless until trained" in caplog.text
    assert model.config.presence_head and model.config.confidence_head
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())
    np.testing.assert_array_equal(model.query_content.detach().numpy(), official["tgt_embed.weight"])


def test_raise_refuses_before_touching_the_model(official, caplog):
    model = build(HEADED)
    content = model.query_content.detach().clone()
    with caplog.at_level(logging.WARNING, logger="hand_object_pose.models.a2j.checkpoint"), \
            pytest.raises(ValueError, match=r"no weights for the optional head\(s\) \['presence_head', "
                                            r"'joint_confidence_head'\]"):
        load_official(model, official, heads="raise")
    assert "no weights for the optional head" in caplog.text
    assert torch.equal(model.query_content, content) and model.presence_head is not None
    with pytest.raises(ValueError, match="heads must be one of"):
        load_official(model, official, heads="random")


def test_a_model_without_heads_loads_silently_under_every_policy(official, caplog):
    with caplog.at_level(logging.WARNING, logger="hand_object_pose.models.a2j.checkpoint"):
        load_official(build(PRESETS["a2j_ih26m"]), official, heads="raise")
    assert not caplog.records


def test_training_task_starts_from_the_official_file_with_untrained_heads(tmp_path, official, caplog):
    from hand_object_pose.training.tasks import build_task

    path = tmp_path / "snapshot_41.pth.tar"
    torch.save({"epoch": 41, "network": OrderedDict(("module." + k, torch.from_numpy(v)) for k, v in official.items())},
               path)
    task = build_task("a2j_ih26m", dict(presence_head=True, confidence_head=True), None,
                      dict(official_checkpoint=str(path), heads_only=True))
    with caplog.at_level(logging.WARNING, logger="hand_object_pose.models.a2j.checkpoint"):
        model = task.build_model()
    assert "meaningless until trained" in caplog.text
    np.testing.assert_array_equal(model.query_content.detach().numpy(), official["tgt_embed.weight"])
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(name.startswith(HEAD_PREFIXES) for name in trainable)
    assert model.presence_head is not None and model.joint_confidence_head is not None


def test_reads_the_release_file_format(tmp_path, official):
    # The release file: {'epoch', 'network' (DataParallel, 'module.' prefix), 'optimizer'}.
    small = OrderedDict((k, torch.from_numpy(official[k])) for k in ("refpoint_embed.weight", "tgt_embed.weight"))
    path = tmp_path / "snapshot_0.pth.tar"
    torch.save({"epoch": 41, "network": OrderedDict(("module." + k, v) for k, v in small.items()),
                "optimizer": {}}, path)
    network = read_official_checkpoint(path)
    assert list(network) == list(small)
    torch.testing.assert_close(network["refpoint_embed.weight"], small["refpoint_embed.weight"])
