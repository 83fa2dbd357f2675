"""ONNX export of the Keypoint Transformer inference graph: ONNX Runtime (CPU) vs torch, batch 1 and 2."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from hand_object_pose.export.kpt_onnx import KptInferenceGraph, export_kpt_onnx, output_names
from hand_object_pose.export.onnx import ort_session
from hand_object_pose.models.kpt import PRESETS, build

TOKEN_OUTPUTS = ("token_xy", "token_kind", "token_valid")


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
])
def test_onnx_runtime_matches_torch_at_batch_1_and_2(tmp_path, name, selection, overrides):
    model = model_with_peaks(name, selection, **overrides)
    path = export_kpt_onnx(model, tmp_path / f"{name}.onnx")
    session = ort_session(path)
    graph = KptInferenceGraph(model)
    assert tuple(o.name for o in session.get_outputs()) == output_names(model.config)
    for batch in (1, 2):
        image = torch.rand(batch, 3, 256, 256, generator=torch.Generator().manual_seed(10 + batch))
        with torch.no_grad():
            expected = dict(zip(graph.names, (t.numpy() for t in graph(image))))
        got = dict(zip(graph.names, session.run(None, {"image": image.numpy()})))
        valid = expected["token_valid"]
        assert valid.sum(axis=1).min() >= 5, "the test model should find real peaks"
        # Token selection is discrete: it must be identical (no near-ties in these maps).
        for key in TOKEN_OUTPUTS:
            np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
        for key, ref in expected.items():
            assert got[key].shape == ref.shape, key
            if key in TOKEN_OUTPUTS:
                continue
            if ref.dtype.kind in "biu":
                np.testing.assert_array_equal(got[key], ref, err_msg=key)
                continue
            scale = max(float(np.abs(ref).max()), 1e-6)
            err = float(np.abs(got[key].astype(np.float64) - ref).max())
            assert err <= 1e-4 * scale, f"{key}: max abs err {err:.3e} vs scale {scale:.3e}"


def test_selection_override_leaves_the_model_unchanged():
    from hand_object_pose.export.kpt_onnx import with_selection
    model = build(dataclasses.replace(PRESETS["kpt_ih26m_2p5d"], backbone_depth=18))
    view = with_selection(model, "maxpool")
    assert view.config.selection == "maxpool" and model.config.selection == "greedy"
    assert view.decoder is model.decoder
