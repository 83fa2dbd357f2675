"""ONNX export of OccRobNet's inference graph (KPT's graph wrapper): ONNX Runtime vs torch, batch 1 and 2."""
from __future__ import annotations

import dataclasses

import torch

from hand_object_pose.models.occrobnet import OccRobNetConfig, build
from kpt_onnx_check import check_onnx_matches_torch  # test/kpt_onnx_check.py
TINY = OccRobNetConfig(pose_representation="3D", has_object=True, object_left_translation=True, backbone_depth=18,
                       enc_layers=1, dec_layers=2, fpn_channels=64, dim_feedforward=128, ciet_attention_groups=4,
                       ciet_key_groups=2, max_tokens=40, max_object_tokens=10)


def model_with_peaks(config: OccRobNetConfig):
    """Random weights with the map heads scaled up so that the maps have real peaks above threshold."""
    torch.manual_seed(0)
    model = build(config).eval()
    with torch.no_grad():
        for head in (model.joint_head, model.seg_head):
            head[-1].weight.mul_(3000.0)
            head[-1].bias.zero_()
    return model


def test_occrobnet_onnx_runtime_matches_torch_at_batch_1_and_2(tmp_path):
    # Fixed-K max-pool selection inside the graph (the greedy variant is the same KPT code, tested there).
    model = model_with_peaks(dataclasses.replace(TINY, selection="maxpool"))
    for expected in check_onnx_matches_torch(model, tmp_path / "occrobnet.onnx", family="occrobnet"):
        assert (expected["token_kind"] == 43).any(), "the test model should sample the object too"
