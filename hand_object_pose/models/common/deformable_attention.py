"""Multi-scale deformable attention (Deformable DETR), in pure PyTorch and exportable to ONNX.

Each query attends to `n_points` sampled locations on each of `n_levels` feature maps, per head.
The locations are the query's reference point plus learned offsets (in pixels of each level);
the features there are read by bilinear interpolation with zero padding outside the map
(`grid_sample`, `align_corners=False`), weighted by softmax-normalised attention weights
(softmax over levels x points, per head) and summed.

Two samplers compute the same function:

* `sample_per_level` follows the reference formulation: one `grid_sample` per level with the heads
  folded into the batch axis, the per-level results stacked and weighted.
* `sample_atlas` (used by the module) first pastes all levels into one zero-bordered canvas,
  clamps every sampling position to its level's 1-pixel border (a position beyond the border reads
  only zeros either way, so the clamp is exact) and shifts it into the canvas, then reads all
  levels and points with a single `grid_sample` and reduces the weights with one batched
  matrix product. This replaces n_levels sampler calls, the stack and a broadcast-multiply-sum
  by one sampler call and one `matmul`.

Spatial shapes are python tuples, so every shape in the graph is static apart from the batch axis.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

SpatialShapes = Sequence[tuple[int, int]]


def check_spatial_shapes(value: torch.Tensor, spatial_shapes: SpatialShapes) -> None:
    """Raise if value's token axis does not hold exactly the levels' H*W tokens."""
    total = sum(h * w for h, w in spatial_shapes)
    if value.shape[1] != total:
        raise ValueError(f"value has {value.shape[1]} tokens but spatial_shapes {list(spatial_shapes)} "
                         f"describe {total}")


def sample_per_level(value: torch.Tensor, spatial_shapes: SpatialShapes, locations: torch.Tensor,
                     weights: torch.Tensor) -> torch.Tensor:
    """Reference sampler.

    value: (N, S, M, D) per-head values of the S = sum(H_l*W_l) tokens (levels concatenated,
        each row-major). locations: (N, Q, M, L, P, 2) normalised (x, y) in [0, 1] of each level.
    weights: (N, Q, M, L, P) attention weights. Returns (N, Q, M*D).
    """
    n, _, heads, dim = value.shape
    _, queries, _, levels, points, _ = locations.shape
    per_level = value.split([h * w for h, w in spatial_shapes], dim=1)
    grids = 2 * locations - 1
    sampled = []
    for lvl, (h, w) in enumerate(spatial_shapes):
        # (N, H*W, M, D) -> (N*M, D, H, W)
        level_value = per_level[lvl].flatten(2).transpose(1, 2).reshape(n * heads, dim, h, w)
        # (N, Q, M, P, 2) -> (N*M, Q, P, 2)
        level_grid = grids[:, :, :, lvl].transpose(1, 2).flatten(0, 1)
        sampled.append(F.grid_sample(level_value, level_grid, mode="bilinear", padding_mode="zeros",
                                     align_corners=False))                      # (N*M, D, Q, P)
    w = weights.transpose(1, 2).reshape(n * heads, 1, queries, levels * points)
    out = (torch.stack(sampled, dim=-2).flatten(-2) * w).sum(-1)                 # (N*M, D, Q)
    return out.view(n, heads * dim, queries).transpose(1, 2).contiguous()


def _atlas_layout(spatial_shapes: SpatialShapes) -> tuple[int, int, list[int]]:
    """Levels stacked vertically, each with a 1-pixel zero border: (height, width, level row offsets).

    Level l occupies rows [top_l + 1, top_l + 1 + H_l) and columns [1, 1 + W_l); the border rows and
    columns around it are zero, and levels do not share border rows.
    """
    width = max(w for _, w in spatial_shapes) + 2
    tops, row = [], 0
    for h, _ in spatial_shapes:
        tops.append(row)
        row += h + 2
    return row, width, tops


def sample_atlas(value: torch.Tensor, spatial_shapes: SpatialShapes, locations: torch.Tensor,
                 weights: torch.Tensor) -> torch.Tensor:
    """Single-call sampler; same contract and result as `sample_per_level` (to rounding)."""
    n, _, heads, dim = value.shape
    _, queries, _, levels, points, _ = locations.shape
    atlas_h, atlas_w, tops = _atlas_layout(spatial_shapes)
    # (N, S, M, D) -> (N*M, D, S), then paste each level into the zero canvas.
    value_cf = value.permute(0, 2, 3, 1).reshape(n * heads, dim, -1)
    rows, start = [], 0
    for h, w in spatial_shapes:
        level = value_cf[..., start:start + h * w].reshape(n * heads, dim, h, w)
        rows.append(F.pad(level, (1, atlas_w - 1 - w, 1, 1)))
        start += h * w
    canvas = torch.cat(rows, dim=2)                                              # (N*M, D, Ha, Wa)

    sizes = locations.new_tensor([[w, h] for h, w in spatial_shapes])            # (L, 2) as (W, H)
    shift = locations.new_tensor([[1.0, top + 1.0] for top in tops])             # (L, 2)
    canvas_size = locations.new_tensor([atlas_w, atlas_h])
    # Pixel position in the level (align_corners=False: pixel centres at k + 0.5, so p = x*W - 0.5).
    pixel = locations * sizes[:, None, :] - 0.5
    # Outside [-1, W] every bilinear corner is outside the level: clamping keeps it zero.
    pixel = torch.minimum(torch.maximum(pixel, torch.full_like(sizes, -1.0)[:, None, :]),
                          sizes[:, None, :])
    grid = (pixel + shift[:, None, :] + 0.5) / canvas_size * 2 - 1              # (N, Q, M, L, P, 2)
    grid = grid.transpose(1, 2).reshape(n * heads, queries, levels * points, 2)
    sampled = F.grid_sample(canvas, grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)                                 # (N*M, D, Q, L*P)
    w = weights.transpose(1, 2).reshape(n * heads, queries, levels * points, 1)
    out = torch.matmul(sampled.permute(0, 2, 1, 3), w).squeeze(-1)               # (N*M, Q, D)
    return out.view(n, heads, queries, dim).transpose(1, 2).reshape(n, queries, heads * dim)


class MultiScaleDeformableAttention(nn.Module):
    """Deformable DETR's MSDeformAttn with the official parameter names.

    `sampling_offsets` (d -> M*L*P*2), `attention_weights` (d -> M*L*P), `value_proj` (d -> d),
    `output_proj` (d -> d).
    """

    def __init__(self, d_model: int = 256, n_levels: int = 4, n_heads: int = 8, n_points: int = 4):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} must be divisible by n_heads {n_heads}")
        self.d_model, self.n_levels, self.n_heads, self.n_points = d_model, n_levels, n_heads, n_points
        self.sampling_offsets = nn.Linear(d_model, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)
        self.sampler = sample_atlas

    def sampling(self, query: torch.Tensor, reference_points: torch.Tensor, spatial_shapes: SpatialShapes
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sampling locations (N, Q, M, L, P, 2) in [0, 1] per level and softmaxed weights (N, Q, M, L, P).

        reference_points: (N, Q, L, 2) normalised (x, y) per level.
        """
        n, q, _ = query.shape
        m, lv, p = self.n_heads, self.n_levels, self.n_points
        offsets = self.sampling_offsets(query).view(n, q, m, lv, p, 2)
        logits = self.attention_weights(query).view(n, q, m, lv * p)
        weights = logits.softmax(-1).view(n, q, m, lv, p)
        # Offsets are in pixels of each level: normalise by (W, H).
        normaliser = query.new_tensor([[w, h] for h, w in spatial_shapes])
        locations = reference_points[:, :, None, :, None, :] + offsets / normaliser[None, None, None, :, None, :]
        return locations, weights

    def forward(self, query: torch.Tensor, reference_points: torch.Tensor, value_input: torch.Tensor,
                spatial_shapes: SpatialShapes) -> torch.Tensor:
        """query: (N, Q, d) (content + position); reference_points: (N, Q, L, 2) in [0, 1];
        value_input: (N, S, d) flattened levels; returns (N, Q, d)."""
        if reference_points.shape[-2:] != (self.n_levels, 2):
            raise ValueError(f"reference_points must be (N, Q, {self.n_levels}, 2), got {tuple(reference_points.shape)}")
        check_spatial_shapes(value_input, spatial_shapes)
        n, s, _ = value_input.shape
        value = self.value_proj(value_input).view(n, s, self.n_heads, self.d_model // self.n_heads)
        locations, weights = self.sampling(query, reference_points, spatial_shapes)
        return self.output_proj(self.sampler(value, spatial_shapes, locations, weights))
