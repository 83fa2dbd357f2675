"""Multi-scale deformable attention: the fast atlas sampler equals the per-level reference, which
equals bilinear sampling with zero padding written out by hand."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hand_object_pose.models.common.deformable_attention import (
    MultiScaleDeformableAttention, sample_atlas, sample_per_level)

SHAPES = [(6, 5), (3, 4), (3, 3), (2, 2)]


def _random_inputs(n=2, queries=7, heads=2, dim=3, points=3, spread=0.6, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = sum(h * w for h, w in SHAPES)
    value = torch.randn(n, s, heads, dim, generator=g, dtype=torch.float64)
    # Locations well outside [0, 1] too, to exercise the zero padding and the atlas clamp.
    loc = 0.5 + spread * 2 * (torch.rand(n, queries, heads, len(SHAPES), points, 2, generator=g, dtype=torch.float64) - 0.5)
    loc[0, 0, 0, :, 0] = torch.tensor([-0.3, 1.2], dtype=torch.float64)      # far outside
    loc[0, 0, 0, :, 1] = torch.tensor([0.0, 1.0], dtype=torch.float64)       # exactly on the borders
    weights = torch.rand(n, queries, heads, len(SHAPES), points, generator=g, dtype=torch.float64)
    return value, loc, weights


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


def test_reference_sampler_is_bilinear_with_zero_padding():
    value, loc, weights = _random_inputs(n=1, queries=3)
    got = sample_per_level(value, SHAPES, loc, weights).numpy()
    _, queries, heads, levels, points, _ = loc.shape
    dim = value.shape[-1]
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


@pytest.mark.parametrize("spread", [0.3, 1.0, 4.0])
def test_atlas_sampler_equals_reference(spread):
    value, loc, weights = _random_inputs(spread=spread)
    torch.testing.assert_close(sample_atlas(value, SHAPES, loc, weights),
                               sample_per_level(value, SHAPES, loc, weights), rtol=0, atol=1e-12)


def test_module_gradients_agree_between_samplers():
    torch.manual_seed(1)
    attn = MultiScaleDeformableAttention(d_model=16, n_levels=4, n_heads=2, n_points=3).double()
    with torch.no_grad():  # large offsets so that samples also leave the maps
        attn.sampling_offsets.weight.mul_(20)
    s = sum(h * w for h, w in SHAPES)
    query = torch.randn(2, 5, 16, dtype=torch.float64)
    memory = torch.randn(2, s, 16, dtype=torch.float64)
    ref = torch.rand(2, 5, 4, 2, dtype=torch.float64)
    results = []
    for sampler in (sample_per_level, sample_atlas):
        attn.zero_grad()
        attn.sampler = sampler
        out = attn(query, ref, memory, SHAPES)
        out.square().sum().backward()
        results.append((out.detach(), attn.value_proj.weight.grad.clone(), attn.sampling_offsets.weight.grad.clone()))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_bad_shapes_are_reported():
    attn = MultiScaleDeformableAttention(d_model=16, n_levels=4, n_heads=2, n_points=3)
    with pytest.raises(ValueError, match="tokens"):
        attn(torch.zeros(1, 5, 16), torch.zeros(1, 5, 4, 2), torch.zeros(1, 10, 16), SHAPES)
    with pytest.raises(ValueError, match="reference_points"):
        attn(torch.zeros(1, 5, 16), torch.zeros(1, 5, 2), torch.zeros(1, 58, 16), SHAPES)
