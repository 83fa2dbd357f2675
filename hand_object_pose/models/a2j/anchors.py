"""The A2J-Transformer 3D anchor grid, for building a fresh (untrained) model.

A converted checkpoint always brings its own anchors (`refpoint_embed.weight`), which may have
moved during training; this grid is only the initial value.
"""
from __future__ import annotations

import torch


def anchor_grid(per_side: int = 16, depths: int = 3, size: float = 256.0) -> torch.Tensor:
    """(per_side*per_side*depths, 3) anchors (x, y, z) in the size^3 output space.

    In-plane positions are the cell centres minus 0.5 pixel: (k + 0.5) * stride - 0.5 with
    stride = size / per_side (7.5, 23.5, ..., 247.5 for 16 in 256); depths at
    (k + 1) * size / (depths + 1) - 0.5 (63.5, 127.5, 191.5 for 3 in 256).
    Row order as the official code: z fastest, then x, then y.
    """
    stride = size / per_side
    xy = (torch.arange(per_side, dtype=torch.float64) + 0.5) * stride - 0.5
    z = (torch.arange(depths, dtype=torch.float64) + 1) * size / (depths + 1) - 0.5
    y_grid, x_grid, z_grid = torch.meshgrid(xy, xy, z, indexing="ij")   # index order (y, x, z)
    return torch.stack((x_grid, y_grid, z_grid), dim=-1).reshape(-1, 3).float()
