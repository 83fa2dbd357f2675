"""ONNX export of the DMA inference graph: ONNX Runtime must reproduce torch.

Uses the parity kit's weights and assets (a realistic case: the x300-scaled lixel logits make
the rough vertices, and thus every sampled feature, sensitive to rounding) on the kit input and on
a second, different batch element, so the dynamic batch axis and mixed inputs are exercised.
"""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from hand_object_pose.export.onnx import ort_session
from hand_object_pose.export.preset_export import ExportError, write_graph
from hand_object_pose.models.dma import FAMILY
from hand_object_pose.models.dma.inference_graph import INPUT_NAMES, OUTPUT_NAMES, DMAInferenceGraph
from hand_object_pose.export.parity_dma import build_kit_model
from hand_object_pose.export.parity_kit import SHARED_PARITY_DIR, load_kit

# Relative to max|torch output|; measured ~3e-6. Kit README 7: the official code itself moves by up to
# 6e-6 (8e-5 for sampled features) between thread counts, so 1e-4 leaves room for ORT's kernels.
RTOL = 1e-4


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.set_num_threads(2)
    model, _, inputs, _ = build_kit_model(load_kit("dma_ho3d", SHARED_PARITY_DIR), compute_discarded_blocks=True)
    path = write_graph(FAMILY, model, tmp_path_factory.mktemp("onnx") / "dma.onnx")
    return model, inputs, path


def test_exported_graph_has_fixed_graph_ops_and_no_discarded_blocks(exported):
    model, _, path = exported
    proto = onnx.load(str(path))
    assert proto.opset_import[0].version >= 16
    ops = {node.op_type for node in proto.graph.node}
    assert {"GridSample", "Gather", "Softmax"} <= ops and "ScatterElements" not in ops
    # Heads and tails are in the file; the 12 GINConvs of the discarded residual blocks are not.
    weights = {init.name for init in proto.graph.initializer}
    assert {"model.gcn_a.head_h.conv.nn.0.weight", "model.gcn_a.tail_o.conv.nn.2.weight"} <= weights
    assert not any(".res1_" in name or ".res2_" in name or ".res3_" in name for name in weights)
    assert model.gcn_a.compute_discarded_blocks  # export restored the model's flag
    assert [o.name for o in proto.graph.output] == list(OUTPUT_NAMES)


def test_onnxruntime_matches_torch_on_a_mixed_batch(exported):
    model, inputs, path = exported
    image, root, focal, centre, index, depth = inputs
    second = (torch.flip(image, dims=[3]), root + torch.tensor([[0.05, 0.02, 0.1]]), focal * 1.1, centre - 7.0)
    batch = [torch.cat([a, b]) for a, b in zip((image, root, focal, centre), second)]
    batch += [index.repeat(2), torch.cat([depth, depth + 0.08])]
    with torch.no_grad():
        expected = DMAInferenceGraph(model.eval())(*batch)
    session = ort_session(path, threads=2)
    got = session.run(None, {name: t.numpy() for name, t in zip(INPUT_NAMES, batch)})
    for name, ours, ref in zip(OUTPUT_NAMES, got, expected):
        ref = ref.numpy()
        assert ours.shape == ref.shape, name
        rel = np.abs(ours - ref).max() / np.abs(ref).max()
        assert rel <= RTOL, f"{name}: ORT vs torch max relative error {rel:.2e}"
    # The two batch elements really differ (the batch axis is not broadcast from element 0).
    assert np.abs(got[1][0] - got[1][1]).max() > 1e-3


def test_export_rejects_old_opsets(exported, tmp_path):
    model, _, _ = exported
    with pytest.raises(ExportError, match="opset >= 16"):
        write_graph(FAMILY, model, tmp_path / "x.onnx", opset=15)
