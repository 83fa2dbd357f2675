"""Multi-scale deformable attention (Deformable DETR), in pure PyTorch and exportable to ONNX.

Each query attends, per head, to `n_points` locations on each of `n_levels` feature maps: its
reference point plus learned offsets (in pixels of each level). Features are read by bilinear
interpolation with zero padding outside the map (as `grid_sample` with `align_corners=False`),
weighted by attention weights softmax-normalised over levels x points, and summed.

`ms_deform_attn_reference` is the reference formulation (one `grid_sample` per level, heads folded
into the batch axis, then a weighted sum), kept for the tests and the benchmark baseline. The
module computes the same function, organised for speed:

* **Fused, head-major projections.** `sampling_offsets` and `attention_weights` run as one batched
  product writing (N, heads, Q, ...) directly; the reference-point part of the sampling position
  (`reference_geometry`) is computed once per forward and shared by all layers with the same
  reference points, so per layer the positions cost one add.
* **One canvas for all levels.** The levels are pasted into one canvas, stacked vertically, each
  framed by a 1-pixel zero border. Every sampling position is clamped to its level's border: beyond
  it every bilinear corner lies outside the level, so the clamp keeps the result exactly zero (the
  zero padding) and no sample ever reads a neighbouring level. No per-level loop, no masks.
* **Eager (torch) path: one weighted gather.** The canvas is channels-last (rows of head_dim per
  pixel and head, straight from the value projection, no transpose). The bilinear corner weights
  times the attention weights, and the 4 corners x levels x points of each query and head, are
  summed by one `embedding_bag`: no (queries x points x channels) intermediate.
* **ONNX path: one `grid_sample`.** The exporter has no fast `embedding_bag`, so the exported graph
  samples a channels-first canvas with a single `grid_sample` and reduces over the points in place.

The parameters keep the official names and layouts (`sampling_offsets`, `attention_weights`,
`value_proj`, `output_proj`), so checkpoints load unchanged. Spatial shapes are python tuples:
every shape in the graph is static apart from the batch axis.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch
from torch import nn
from torch.nn import functional as F

SpatialShapes = Sequence[tuple[int, int]]


def atlas_layout(spatial_shapes: SpatialShapes) -> tuple[int, int, list[int]]:
    """Canvas (height, width) and each level's first row: levels stacked vertically, each framed
    by a 1-pixel zero border. Level l occupies rows [top_l + 1, top_l + 1 + H_l), columns [1, 1 + W_l)."""
    width = max(w for _, w in spatial_shapes) + 2
    tops, row = [], 0
    for h, _ in spatial_shapes:
        tops.append(row)
        row += h + 2
    return row, width, tops


def ms_deform_attn_reference(value: torch.Tensor, spatial_shapes: SpatialShapes, locations: torch.Tensor,
                             weights: torch.Tensor) -> torch.Tensor:
    """Reference formulation of the sampling (as the official pure-PyTorch fallback computes it).

    value: (N, S, M, D) per-head values of the S = sum(H_l*W_l) tokens (levels concatenated, each
    row-major); locations: (N, Q, M, L, P, 2) normalised (x, y) in [0, 1] of each level;
    weights: (N, Q, M, L, P) attention weights. Returns (N, Q, M*D).
    """
    n, _, heads, dim = value.shape
    _, queries, _, levels, points, _ = locations.shape
    per_level = value.split([h * w for h, w in spatial_shapes], dim=1)
    grids = 2 * locations - 1
    sampled = []
    for lvl, (h, w) in enumerate(spatial_shapes):
        level_value = per_level[lvl].flatten(2).transpose(1, 2).reshape(n * heads, dim, h, w)
        level_grid = grids[:, :, :, lvl].transpose(1, 2).flatten(0, 1)                  # (N*M, Q, P, 2)
        sampled.append(F.grid_sample(level_value, level_grid, mode="bilinear", padding_mode="zeros",
                                     align_corners=False))                               # (N*M, D, Q, P)
    w = weights.transpose(1, 2).reshape(n * heads, 1, queries, levels * points)
    out = (torch.stack(sampled, dim=-2).flatten(-2) * w).sum(-1)                          # (N*M, D, Q)
    return out.view(n, heads * dim, queries).transpose(1, 2)


def paste_levels(value: torch.Tensor, spatial_shapes: SpatialShapes) -> torch.Tensor:
    """(B, C, S) channels-first flattened levels -> (B, C, canvas_h, canvas_w) zero-framed canvas."""
    _, canvas_w, _ = atlas_layout(spatial_shapes)
    rows, start = [], 0
    for h, w in spatial_shapes:
        level = value[..., start:start + h * w].reshape(value.shape[0], value.shape[1], h, w)
        rows.append(F.pad(level, (1, canvas_w - 1 - w, 1, 1)))
        start += h * w
    return torch.cat(rows, dim=2)


def paste_levels_channels_last(value: torch.Tensor, spatial_shapes: SpatialShapes) -> torch.Tensor:
    """(N, S, C) flattened levels -> (N, (canvas_h + 1) * canvas_w, C) zero-framed canvas, row-major.

    One extra zero row at the bottom keeps the (zero-weight) lower corners of positions clamped onto
    the last level's bottom border inside the canvas.
    """
    _, canvas_w, _ = atlas_layout(spatial_shapes)
    n, _, c = value.shape
    rows, start = [], 0
    for h, w in spatial_shapes:
        level = value[:, start:start + h * w].reshape(n, h, w, c)
        rows.append(F.pad(level, (0, 0, 1, canvas_w - 1 - w, 1, 1)))
        start += h * w
    rows.append(value.new_zeros(n, 1, canvas_w, c))
    return torch.cat(rows, dim=1).reshape(n, -1, c)


class ReferenceGeometry(NamedTuple):
    """Per-forward constants of the sampling positions (see `reference_geometry`); K = L*P.

    base: (N, 1, Q, 2K) level-pixel position of the reference point on each level, repeated per
        point, laid out (level, point, xy) like the offsets; pixel p = x * W - 0.5 (pixel centres
        at integers, the `align_corners=False` convention).
    low, high: (2K,) clamp bounds in level pixels: -1 and W (resp. H) of each sample's level.
    canvas_origin: (K,) canvas pixel index (row * canvas_w + column) of pixel (0, 0) of each sample's level.
    canvas_w: canvas width in pixels.
    grid_scale, grid_bias: (2K,) affine map of a clamped level pixel to the `grid_sample` coordinate.
    """

    base: torch.Tensor
    low: torch.Tensor
    high: torch.Tensor
    canvas_origin: torch.Tensor
    canvas_w: int
    grid_scale: torch.Tensor
    grid_bias: torch.Tensor


def reference_geometry(reference_points: torch.Tensor, spatial_shapes: SpatialShapes, n_points: int
                       ) -> ReferenceGeometry:
    """reference_points (N, Q, L, 2) normalised (x, y) per level -> `ReferenceGeometry`."""
    canvas_h, canvas_w, tops = atlas_layout(spatial_shapes)
    n, q, levels, _ = reference_points.shape
    like = reference_points
    size = like.new_tensor([[w, h] for h, w in spatial_shapes])                    # (L, 2) as (W, H)
    shift = like.new_tensor([[1.0, top + 1.0] for top in tops])                    # level -> canvas pixel
    scale = 2 / like.new_tensor([canvas_w, canvas_h])
    base = reference_points * size - 0.5                                           # (N, Q, L, 2)
    per_sample = lambda t: t[:, None].expand(levels, n_points).reshape(-1)        # (L,) -> (K,)
    per_coord = lambda t: t[:, None, :].expand(levels, n_points, 2).reshape(-1)   # (L, 2) -> (2K,)
    return ReferenceGeometry(
        base=base[:, None, :, :, None, :].expand(n, 1, q, levels, n_points, 2).reshape(n, 1, q, -1),
        low=per_coord(torch.full_like(size, -1.0)), high=per_coord(size),
        canvas_origin=per_sample(shift[:, 1] * canvas_w + shift[:, 0]), canvas_w=canvas_w,
        grid_scale=per_coord(scale.expand(levels, 2)), grid_bias=per_coord((shift + 0.5) * scale - 1))


class MultiScaleDeformableAttention(nn.Module):
    """Deformable DETR's MSDeformAttn with the official parameter names.

    `sampling_offsets` (d -> M*L*P*2, offsets in level pixels), `attention_weights` (d -> M*L*P),
    `value_proj` (d -> d), `output_proj` (d -> d); M heads, L levels, P points.
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
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Deformable DETR's initialisation: each head starts looking in its own direction (unit
        vectors around the circle, k-th point k pixels away) with uniform attention weights."""
        nn.init.zeros_(self.sampling_offsets.weight)
        angles = torch.arange(self.n_heads, dtype=torch.float32) * (2 * math.pi / self.n_heads)
        directions = torch.stack((angles.cos(), angles.sin()), dim=-1)
        directions = directions / directions.abs().max(dim=-1, keepdim=True).values           # (M, 2), max-norm 1
        steps = torch.arange(1, self.n_points + 1, dtype=torch.float32)
        bias = directions[:, None, None, :] * steps[None, None, :, None]                      # (M, 1, P, 2)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(bias.expand(self.n_heads, self.n_levels, self.n_points, 2).reshape(-1))
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for linear in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)

    def _check(self, reference_points: torch.Tensor, value_input: torch.Tensor, spatial_shapes: SpatialShapes):
        if len(spatial_shapes) != self.n_levels:
            raise ValueError(f"expected {self.n_levels} spatial shapes, got {list(spatial_shapes)}")
        if reference_points.dim() != 4 or reference_points.shape[-2:] != (self.n_levels, 2):
            raise ValueError(f"reference_points must be (N, Q, {self.n_levels}, 2), got {tuple(reference_points.shape)}")
        total = sum(h * w for h, w in spatial_shapes)
        if value_input.shape[1] != total:
            raise ValueError(f"value has {value_input.shape[1]} tokens but spatial_shapes {list(spatial_shapes)} "
                             f"describe {total}")

    def head_major_projections(self, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Offsets in level pixels (N, M, Q, 2K) and attention logits (N, M, Q, K), in one product."""
        m, k = self.n_heads, self.n_levels * self.n_points
        weight = torch.cat((self.sampling_offsets.weight.view(m, 2 * k, -1),
                            self.attention_weights.weight.view(m, k, -1)), dim=1)                # (M, 3K, d)
        bias = torch.cat((self.sampling_offsets.bias.view(m, 2 * k), self.attention_weights.bias.view(m, k)), dim=1)
        out = torch.matmul(query[:, None], weight.transpose(1, 2)) + bias[:, None, :]            # (N, M, Q, 3K)
        return out[..., :2 * k], out[..., 2 * k:]

    def forward(self, query: torch.Tensor, reference_points: torch.Tensor, value_input: torch.Tensor,
                spatial_shapes: SpatialShapes, geometry: ReferenceGeometry | None = None) -> torch.Tensor:
        """query: (N, Q, d) (content + position); reference_points: (N, Q, L, 2) normalised (x, y);
        value_input: (N, S, d) flattened levels (row-major, level order); geometry: the result of
        `reference_geometry(reference_points, spatial_shapes, n_points)` when shared between layers.
        Returns (N, Q, d).
        """
        self._check(reference_points, value_input, spatial_shapes)
        if geometry is None:
            geometry = reference_geometry(reference_points, spatial_shapes, self.n_points)
        offsets, logits = self.head_major_projections(query)
        pixel = offsets + geometry.base                                                          # (N, M, Q, 2K)
        weights = logits.softmax(dim=-1)                                                         # (N, M, Q, K)
        clamped = torch.minimum(torch.maximum(pixel, geometry.low), geometry.high)
        if torch.onnx.is_in_onnx_export():
            out = self.sample_canvas(value_input, spatial_shapes, clamped, weights, geometry)
        else:
            out = self.sample_bags(value_input, spatial_shapes, clamped, weights, geometry)
        return self.output_proj(out)

    def sample_bags(self, value_input: torch.Tensor, spatial_shapes: SpatialShapes, clamped: torch.Tensor,
                    weights: torch.Tensor, geometry: ReferenceGeometry) -> torch.Tensor:
        """Eager path. value_input (N, S, d) before projection; clamped (N, M, Q, 2K) level pixels
        clamped to [-1, size]; weights (N, M, Q, K) -> (N, Q, d)."""
        n, m, q, _ = clamped.shape
        head_dim = self.d_model // m
        canvas = paste_levels_channels_last(self.value_proj(value_input), spatial_shapes)      # (N, C, d)
        pixels = canvas.shape[1]
        corner = clamped.floor()
        frac = (clamped - corner).view(n, m, q, -1, 2)
        corner = corner.view(n, m, q, -1, 2)
        index = corner[..., 1] * geometry.canvas_w + corner[..., 0] + geometry.canvas_origin     # (N, M, Q, K)
        fx, fy = frac[..., 0], frac[..., 1]
        top, bottom = (1 - fy) * weights, fy * weights
        # Corners (x0, y0), (x0+1, y0), (x0, y0+1), (x0+1, y0+1) along a new last axis.
        bag_weights = torch.stack(((1 - fx) * top, fx * top, (1 - fx) * bottom, fx * bottom), dim=-1)
        # Row of (n, pixel, head) in the canvas viewed as (N * C * M, head_dim): pixel * M + n * C * M + head.
        step = torch.tensor([0, 1, geometry.canvas_w, geometry.canvas_w + 1], device=clamped.device) * m
        head_row = (torch.arange(n, device=clamped.device)[:, None] * (pixels * m)
                    + torch.arange(m, device=clamped.device)[None, :])[:, :, None, None, None] + step
        rows = (index * m).long()[..., None] + head_row      # index * m < 2^24: exact in float32
        # Under autocast the projected canvas is half precision while the weights stay float32.
        out = F.embedding_bag(rows.reshape(n * m * q, -1), canvas.reshape(-1, head_dim),
                              per_sample_weights=bag_weights.reshape(n * m * q, -1).to(canvas.dtype), mode="sum")
        return out.view(n, m, q, head_dim).transpose(1, 2).reshape(n, q, self.d_model)

    def sample_canvas(self, value_input: torch.Tensor, spatial_shapes: SpatialShapes, clamped: torch.Tensor,
                      weights: torch.Tensor, geometry: ReferenceGeometry) -> torch.Tensor:
        """The exportable path, same contract as `sample_bags`: one grid_sample on the canvas."""
        n, m, q, _ = clamped.shape
        k = self.n_levels * self.n_points
        head_dim = self.d_model // m
        # value_proj written channels-first: (N, d, S) = (N*M, head_dim, S) without a transpose.
        value = torch.matmul(self.value_proj.weight, value_input.transpose(1, 2)) + self.value_proj.bias[:, None]
        canvas = paste_levels(value.reshape(n * m, head_dim, -1), spatial_shapes)
        grid = clamped * geometry.grid_scale + geometry.grid_bias
        sampled = F.grid_sample(canvas, grid.reshape(n * m, q, k, 2), mode="bilinear", padding_mode="zeros",
                                align_corners=False)                                           # (N*M, hd, Q, K)
        out = (sampled * weights.reshape(n * m, 1, q, k)).sum(dim=-1)                           # (N*M, hd, Q)
        return out.reshape(n, m * head_dim, q).transpose(1, 2)
