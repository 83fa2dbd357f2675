"""Sine position codes of a 2D grid (DETR family), parameterised for each model's variant.

Keypoint Transformer: `sine_grid_code(128, 128, num_feats=16, temperature=100, offset=0.0)`
(32 channels, y first). A2J-Transformer / DAB-Deformable-DETR: `num_feats=128,
temperature=10000, offset=-0.5` (256 channels). Both normalise the 1-based cumulative index
by the grid size (+1e-6) and multiply by 2*pi.
"""
from __future__ import annotations

import math

import torch


def sine_axis_code(coord: torch.Tensor, num_feats: int, temperature: float) -> torch.Tensor:
    """Interleaved (sin, cos) code of a normalised coordinate.

    coord: (...) angle-like values (already scaled, e.g. by 2*pi). Returns (..., num_feats) with
    channel 2m = sin(coord / T^(2m/num_feats)), channel 2m+1 = cos(same), m = 0..num_feats/2-1.
    """
    if num_feats % 2:
        raise ValueError(f"num_feats must be even, got {num_feats}")
    dim_t = torch.arange(num_feats, dtype=torch.float32, device=coord.device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_feats)
    pos = coord[..., None] / dim_t
    return torch.stack((pos[..., 0::2].sin(), pos[..., 1::2].cos()), dim=-1).flatten(-2)


def sine_grid_code(height: int, width: int, num_feats: int, temperature: float,
                   offset: float = 0.0, scale: float = 2 * math.pi, eps: float = 1e-6,
                   device=None) -> torch.Tensor:
    """Normalised sine code of an unpadded height x width grid.

    Returns (2*num_feats, height, width): the y code in the first num_feats channels, then x.
    The coordinate of row i is (i + 1 + offset) / (height + eps) * scale (same for columns).
    """
    y = (torch.arange(1, height + 1, dtype=torch.float32, device=device) + offset) / (height + eps) * scale
    x = (torch.arange(1, width + 1, dtype=torch.float32, device=device) + offset) / (width + eps) * scale
    code_y = sine_axis_code(y, num_feats, temperature)[:, None, :].expand(height, width, num_feats)
    code_x = sine_axis_code(x, num_feats, temperature)[None, :, :].expand(height, width, num_feats)
    return torch.cat((code_y, code_x), dim=-1).permute(2, 0, 1).contiguous()
