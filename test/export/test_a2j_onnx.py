"""A2J-Transformer ONNX export: dynamic batch, ONNX Runtime equals torch at batch 1 and 2."""
from __future__ import annotations

import onnx
import pytest
import torch

from hand_object_pose.export.onnx import compare_with_torch, ort_session
from hand_object_pose.export.preset_export import write_graph
from hand_object_pose.models.a2j import FAMILY, A2JConfig, build
from hand_object_pose.models.a2j.inference_graph import INPUT_NAMES, OUTPUT_NAMES

# Same operators as the official preset (ResNet-50 DC5, 4 levels, deformable encoder/decoder),
# fewer layers and a smaller crop to keep the test short.
SMALL = A2JConfig(input_size=128, output_size=128, anchors_per_side=4, enc_layers=1, dec_layers=2)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = build(SMALL).eval()
    path = write_graph(FAMILY, model, tmp_path_factory.mktemp("a2j") / "a2j.onnx")
    return model, path


def test_graph_has_dynamic_batch_and_opset_16_or_more(exported):
    _, path = exported
    graph = onnx.load(str(path), load_external_data=False)
    assert max(op.version for op in graph.opset_import if op.domain in ("", "ai.onnx")) >= 16
    assert [o.name for o in graph.graph.output] == list(OUTPUT_NAMES)
    for value in (*graph.graph.input, *graph.graph.output):
        assert value.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert any(node.op_type == "GridSample" for node in graph.graph.node)


@pytest.mark.parametrize("batch", [1, 2])
def test_onnxruntime_matches_torch(exported, batch):
    model, path = exported
    torch.manual_seed(batch)
    image = torch.rand(batch, 3, 128, 128)
    graph = FAMILY.inference_graph(model)
    errors = dict(zip(OUTPUT_NAMES, compare_with_torch(graph, ort_session(path), (image,), INPUT_NAMES)))
    with torch.no_grad():
        errors["joints"] /= float(graph(image)[0].abs().max())  # relative; the [0, 1] outputs stay absolute
    assert errors["joints"] <= 1e-4, errors
    assert errors["joint_confidence"] <= 1e-4 and errors["hand_presence"] <= 1e-4, errors
