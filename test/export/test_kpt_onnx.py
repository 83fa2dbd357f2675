"""ONNX export of the Keypoint Transformer inference graph: ONNX Runtime (CPU) vs torch, batch 1 and 2."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from hand_object_pose.models.kpt import PRESETS, build
from kpt_onnx_check import check_onnx_matches_torch  # test/kpt_onnx_check.py


def model_with_peaks(name: str, selection: str, **overrides):
    """Random weights, with the map heads scaled (as the parity kit does) so that real peaks exist."""
    torch.manual_seed(0)
    model = build(dataclasses.replace(PRESETS[name], selection=selection, **overrides)).eval()
    with torch.no_grad():
        heads = [model.decoder.convOut_hm, model.decoder.convOut_seg] if model.config.has_object \
            else [model.decoder.convOut]
        for head in heads:
            head[-1].weight.mul_(3000.0)
            head[-1].bias.zero_()
    return model


@pytest.mark.parametrize("name,selection,overrides", [
    ("kpt_h2o3d_3d", "greedy", {}),
    ("kpt_ih26m_2p5d", "maxpool", {}),
    ("kpt_h2o3d_3d_lite", "greedy", {}),   # the planned default: 128x128 input, 64 grid
])
def test_onnx_runtime_matches_torch_at_batch_1_and_2(tmp_path, name, selection, overrides):
    check_onnx_matches_torch(model_with_peaks(name, selection, **overrides), tmp_path / f"{name}.onnx")
