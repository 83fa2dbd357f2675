"""Multi-scale deformable attention: both fast paths (eager weighted gather, exportable canvas)
equal the reference formulation, which equals bilinear sampling with zero padding by hand."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hand_object_pose.models.common.deformable_attention import (
    MultiScaleDeformableAttention, ms_deform_attn_reference, reference_geometry)

SHAPES = [(6, 5), (3, 4), (3, 3), (2, 2)]
TOKENS = sum(h * w for h, w in SHAPES)


def _bilinear_zero_padded(image: np.ndarray, x: float, y: float) -> np.ndarray:
    """image (C, H, W); (x, y) normalised in [0, 1] with pixel centres at (k + 0.5) / size."""
    _, h, w = image.shape
    px, py = x * w - 0.5, y * h - 0.5
    x0, y0 = int(np.floor(px)), int(np.floor(py))
    out = np.zeros(image.shape[0])
    for xi, wx in ((x0, 1 - (px - x0)), (x0 + 1, px - x0)):
        for yi, wy in ((y0, 1 - (py - y0)), (y0 + 1, py - y0)):
            if 0 <= xi < w and 0 <= yi < h:
                out += wx * wy * image[:, yi, xi]
    return out


def test_reference_is_bilinear_with_zero_padding():
    g = torch.Generator().manual_seed(0)
    heads, dim, queries, points = 2, 3, 3, 3
    value = torch.randn(1, TOKENS, heads, dim, generator=g, dtype=torch.float64)
    loc = torch.rand(1, queries, heads, len(SHAPES), points, 2, generator=g, dtype=torch.float64) * 1.4 - 0.2
    weights = torch.rand(1, queries, heads, len(SHAPES), points, generator=g, dtype=torch.float64)
    got = ms_deform_attn_reference(value, SHAPES, loc, weights).numpy()
    starts = np.cumsum([0] + [h * w for h, w in SHAPES])
    expected = np.zeros((1, queries, heads * dim))
    for q in range(queries):
        for m in range(heads):
            for lvl, (h, w) in enumerate(SHAPES):
                image = value[0, starts[lvl]:starts[lvl + 1], m].numpy().T.reshape(dim, h, w)
                for p in range(points):
                    x, y = loc[0, q, m, lvl, p].tolist()
                    expected[0, q, m * dim:(m + 1) * dim] += weights[0, q, m, lvl, p].item() * \
                        _bilinear_zero_padded(image, x, y)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def _module_and_inputs(offset_gain: float, seed: int = 0):
    torch.manual_seed(seed)
    attn = MultiScaleDeformableAttention(d_model=16, n_levels=4, n_heads=2, n_points=3).double()
    with torch.no_grad():  # large gains push samples far outside the maps and onto their borders
        attn.sampling_offsets.weight.mul_(offset_gain)
        attn.sampling_offsets.bias.mul_(offset_gain)
    query = torch.randn(2, 5, 16, dtype=torch.float64)
    memory = torch.randn(2, TOKENS, 16, dtype=torch.float64)
    ref = torch.rand(2, 5, 4, 2, dtype=torch.float64)
    ref[0, 0] = torch.tensor([0.0, 1.0], dtype=torch.float64)          # reference exactly on the map edges
    return attn, query, memory, ref


def _reference_forward(attn, query, ref, memory):
    """The module's function written the reference way, from its own parameters."""
    n, q, _ = query.shape
    m, lv, p = attn.n_heads, attn.n_levels, attn.n_points
    value = attn.value_proj(memory).view(n, TOKENS, m, -1)
    offsets = attn.sampling_offsets(query).view(n, q, m, lv, p, 2)
    weights = attn.attention_weights(query).view(n, q, m, lv * p).softmax(-1).view(n, q, m, lv, p)
    normaliser = query.new_tensor([[w, h] for h, w in SHAPES])
    locations = ref[:, :, None, :, None, :] + offsets / normaliser[None, None, None, :, None, :]
    return attn.output_proj(ms_deform_attn_reference(value, SHAPES, locations, weights))


@pytest.mark.parametrize("gain", [1.0, 10.0, 100.0])
def test_both_fast_paths_equal_the_reference(gain):
    attn, query, memory, ref = _module_and_inputs(gain)
    expected = _reference_forward(attn, query, ref, memory)
    torch.testing.assert_close(attn(query, ref, memory, SHAPES), expected, rtol=0, atol=1e-12)
    geometry = reference_geometry(ref, SHAPES, attn.n_points)
    offsets, logits = attn.head_major_projections(query)
    clamped = torch.minimum(torch.maximum(offsets + geometry.base, geometry.low), geometry.high)
    canvas = attn.output_proj(attn.sample_canvas(memory, SHAPES, clamped, logits.softmax(-1), geometry))
    torch.testing.assert_close(canvas, expected, rtol=0, atol=1e-12)


def test_gradients_equal_the_reference():
    attn, query, memory, ref = _module_and_inputs(20.0)
    grads = []
    for run in (lambda: attn(query, ref, memory, SHAPES), lambda: _reference_forward(attn, query, ref, memory)):
        attn.zero_grad()
        run().square().sum().backward()
        grads.append([p.grad.clone() for p in attn.parameters()])
    for ours, ref_grad in zip(*grads):
        torch.testing.assert_close(ours, ref_grad, rtol=1e-9, atol=1e-9)


def test_bad_shapes_are_reported():
    attn = MultiScaleDeformableAttention(d_model=16, n_levels=4, n_heads=2, n_points=3)
    with pytest.raises(ValueError, match="tokens"):
        attn(torch.zeros(1, 5, 16), torch.zeros(1, 5, 4, 2), torch.zeros(1, 10, 16), SHAPES)
    with pytest.raises(ValueError, match="reference_points"):
        attn(torch.zeros(1, 5, 16), torch.zeros(1, 5, 2), torch.zeros(1, TOKENS, 16), SHAPES)


def test_initial_sampling_pattern_spreads_heads_and_points():
    attn = MultiScaleDeformableAttention(d_model=16, n_levels=2, n_heads=4, n_points=2)
    bias = attn.sampling_offsets.bias.view(4, 2, 2, 2)
    # Head 0 looks along +x, head 1 along +y (angles 0 and 90 degrees); point k sits k+1 pixels away.
    torch.testing.assert_close(bias[0, 0], torch.tensor([[1.0, 0.0], [2.0, 0.0]]))
    torch.testing.assert_close(bias[1, 1], torch.tensor([[0.0, 1.0], [0.0, 2.0]]), atol=1e-6, rtol=0)
    assert attn.sampling_offsets.weight.abs().sum() == 0 and attn.attention_weights.weight.abs().sum() == 0


def test_exported_from_models_common():
    from hand_object_pose.models import common
    assert common.MultiScaleDeformableAttention is MultiScaleDeformableAttention
    assert "MultiScaleDeformableAttention" in common.__all__
