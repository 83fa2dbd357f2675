"""ONNX export of OccRobNet's inference graph (KPT's graph wrapper): ONNX Runtime vs torch, batch 1 and 2."""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from hand_object_pose.export.kpt_onnx import KptInferenceGraph, export_kpt_onnx, output_names
from hand_object_pose.export.onnx import ort_session
from hand_object_pose.models.occrobnet import OccRobNetConfig, build

TOKEN_OUTPUTS = ("token_xy", "token_kind", "token_valid")
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
    path = export_kpt_onnx(model, tmp_path / "occrobnet.onnx")
    session = ort_session(path)
    graph = KptInferenceGraph(model)
    assert tuple(o.name for o in session.get_outputs()) == output_names(model.config)
    for batch in (1, 2):
        image = torch.rand(batch, 3, 256, 256, generator=torch.Generator().manual_seed(10 + batch))
        with torch.no_grad():
            expected = dict(zip(graph.names, (t.numpy() for t in graph(image))))
        got = dict(zip(graph.names, session.run(None, {"image": image.numpy()})))
        assert expected["token_valid"].sum(axis=1).min() >= 5, "the test model should find real peaks"
        assert (expected["token_kind"] == 43).any(), "and object samples"
        for key in TOKEN_OUTPUTS:  # discrete selection: identical (no near-ties in these maps)
            np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
        for key, ref in expected.items():
            assert got[key].shape == ref.shape, key
            if key in TOKEN_OUTPUTS:
                continue
            scale = max(float(np.abs(ref).max()), 1e-6)
            err = float(np.abs(got[key].astype(np.float64) - ref).max())
            assert err <= 1e-4 * scale, f"{key}: max abs err {err:.3e} vs scale {scale:.3e}"
