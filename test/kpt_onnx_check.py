"""Shared check of a Keypoint Transformer-style ONNX export (KPT, OccRobNet) against its torch graph."""
from __future__ import annotations

import numpy as np
import torch

from hand_object_pose.export.onnx import ort_session
from hand_object_pose.export.preset_export import write_graph
from hand_object_pose.models.kpt.inference_graph import KptInferenceGraph, output_names
from hand_object_pose.models.registry import get_family

TOKEN_OUTPUTS = ("token_xy", "token_kind", "token_valid")


def check_onnx_matches_torch(model, path, batches=(1, 2), rtol: float = 1e-4, family: str = "kpt") -> list[dict]:
    """Export `model` to `path`, run ONNX Runtime and torch on random images of each batch size and
    assert: the output names, identical token selection (discrete: no near-ties in test maps), and
    every other output within `rtol` of its largest magnitude. Returns torch's outputs per batch."""
    session = ort_session(write_graph(get_family(family), model, path))
    graph = KptInferenceGraph(model)
    assert tuple(o.name for o in session.get_outputs()) == output_names(model.config)
    size = 2 * model.config.heatmap_size
    results = []
    for batch in batches:
        image = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(10 + batch))
        with torch.no_grad():
            expected = dict(zip(graph.names, (t.numpy() for t in graph(image))))
        got = dict(zip(graph.names, session.run(None, {"image": image.numpy()})))
        assert expected["token_valid"].sum(axis=1).min() >= 5, "the test model should find real peaks"
        for key, ref in expected.items():
            assert got[key].shape == ref.shape, key
            if key in TOKEN_OUTPUTS or ref.dtype.kind in "biu":
                np.testing.assert_array_equal(got[key], ref, err_msg=key)
                continue
            scale = max(float(np.abs(ref).max()), 1e-6)
            err = float(np.abs(got[key].astype(np.float64) - ref).max())
            assert err <= rtol * scale, f"{key}: max abs err {err:.3e} vs scale {scale:.3e}"
        results.append(expected)
    return results
