"""ONNX export of the Keypoint Transformer inference graph: ONNX Runtime (CPU) vs torch, batch 1 and 2."""
from __future__ import annotations

import dataclasses
from collections import Counter

import onnx
import onnxruntime as ort
import pytest
import torch

from hand_object_pose.models.kpt import PRESETS, build
from hand_object_pose.models.kpt.selection import greedy_peaks
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


class _GreedyPeaks(torch.nn.Module):
    def forward(self, heatmap):
        peaks = greedy_peaks(heatmap, 20.0, 5.0, 40)
        return peaks.rc, peaks.value, peaks.valid


def test_greedy_selection_exports_as_three_nodes_per_peak_and_matches_torch(tmp_path):
    """On a GPU the greedy loop's cost is one kernel launch per node per peak (100 peaks in the presets): the
    graph keeps each iteration to an ArgMax, a table Gather and a ScatterElements, and still gives torch's peaks."""
    path = tmp_path / "greedy.onnx"
    heat = torch.rand(2, 128, 128) * 25.0 + torch.linspace(0, 40, 128)
    torch.onnx.export(_GreedyPeaks(), (heat,), str(path), input_names=["heatmap"], opset_version=17,
                      output_names=["rc", "value", "valid"], dynamic_axes={"heatmap": {0: "batch"}}, dynamo=False)
    graph = onnx.load(str(path)).graph
    ops = Counter(node.op_type for node in graph.node)
    assert ops["ArgMax"] == 40 and ops["ScatterElements"] == 39 and ops["Gather"] <= 40 + 3
    # the loop and a fixed tail (validity, row/col); the disk arithmetic per peak once took ~14 nodes per peak
    assert sum(n for op, n in ops.items() if op not in ("Constant", "Unsqueeze")) <= 3 * 40 + 60
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = _GreedyPeaks()(heat)
    for got, expected in zip(session.run(None, {"heatmap": heat.numpy()}), want):
        assert (got == expected.numpy()).all()
    assert want[2].sum() > 20  # the map has enough peaks to run the loop
