"""`python -m hand_object_pose.tools.weights_from_onnx`: the training weights of one of our exports (batch norms
folded into the convolutions, fp16 storage) come back as a state dict that computes what the file computes, so
that the shipped default can be fine-tuned without its training checkpoint."""
import dataclasses

import numpy as np
import pytest
import torch

from hand_object_pose.export.preset_export import ExportRequest, export_preset
from hand_object_pose.models.registry import get_preset
from hand_object_pose.tools.weights_from_onnx import folded_pairs, main


@pytest.fixture(scope="module")
def trained_looking_export(tmp_path_factory):
    """A hand_heatmap export (compact weights) of a network whose batch norms carry statistics, as a trained one's do."""
    family, config = get_preset("hand_heatmap_r18h")
    torch.manual_seed(4)
    model = family.build(config).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    folder = tmp_path_factory.mktemp("recover")
    weights = folder / "trained.pt"
    torch.save({"model": model.state_dict(), "step": 7, "task": "hand_heatmap"}, weights)
    path = folder / "hand_heatmap_r18h.onnx"
    export_preset(ExportRequest("hand_heatmap_r18h", path, weights=str(weights), weight_storage="compact"))
    return family, model, path


def test_the_recovered_weights_compute_what_the_file_computes(trained_looking_export, tmp_path, capsys):
    family, original, path = trained_looking_export
    out = tmp_path / "recovered.pt"
    assert main([str(path), str(out)]) == 0
    assert "largest output difference vs the file" in capsys.readouterr().out
    saved = torch.load(out, weights_only=True)
    state = saved["model"]
    assert saved["step"] == 7 and saved["task"] == "hand_heatmap" and saved["source"] == str(path)   # its run
    recovered = family.build(original.config).eval()
    recovered.load_state_dict(state)
    image = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        for want, got in zip(original(image), recovered(image)):
            if want is None:   # no segmentation head (the object network's)
                assert got is None
                continue
            assert (got - want).abs().max() <= 2e-3 * want.abs().max()    # fp16 storage
    # The folded norms pass their input through plus the folded bias; the rest are the file's tensors.
    conv, norm = folded_pairs(recovered)[0]
    assert torch.equal(state[f"{norm}.weight"], torch.ones_like(state[f"{norm}.weight"]))
    assert torch.allclose(state[f"{norm}.running_var"] + recovered.get_submodule(norm).eps, torch.ones(1))
    assert not torch.equal(state[f"{norm}.bias"], original.state_dict()[f"{norm}.bias"])
    assert torch.allclose(state["deconv.1.running_mean"], original.state_dict()["deconv.1.running_mean"], atol=1e-3)


def test_a_file_of_another_architecture_is_refused_by_name(trained_looking_export, tmp_path, capsys):
    _, _, path = trained_looking_export
    assert main([str(path), str(tmp_path / "x.pt"), "--model", "hand_heatmap_r18h", "--override",
                 "deconv_channels=64"]) == 2
    assert "deconv" in capsys.readouterr().err and not (tmp_path / "x.pt").exists()
    assert main([str(tmp_path / "absent.onnx"), str(tmp_path / "x.pt"), "--model", "hand_heatmap_r18h"]) == 2


def test_a_file_whose_parameter_free_nodes_differ_still_recovers(trained_looking_export, tmp_path):
    """Files shipped before a change of the read-out (other nodes between the weighted ones, e.g. the default
    exported before SoftArgmax's constant reshapes) must still come back: tensors are placed by their node's
    order among nodes of its type, not by the node's index in the whole graph."""
    import onnx
    from onnx import helper

    family, original, path = trained_looking_export
    proto = onnx.load(str(path))
    # Parameter-free nodes, with unused outputs, at the front: every node index after them moves.
    extra = [helper.make_node("Shape", ["image"], [f"unused_shape_{i}"]) for i in range(3)]
    nodes = extra + list(proto.graph.node)
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    shifted = tmp_path / "hand_heatmap_r18h.onnx"
    onnx.save(proto, str(shifted))
    (tmp_path / "hand_heatmap_r18h.onnx.json").write_text(path.with_name(path.name + ".json").read_text())
    out = tmp_path / "recovered.pt"
    assert main([str(shifted), str(out)]) == 0
    recovered = family.build(original.config).eval()
    recovered.load_state_dict(torch.load(out, weights_only=True)["model"])
    image = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want, got = original(image)[0], recovered(image)[0]
    assert (got - want).abs().max() <= 2e-3 * want.abs().max()
