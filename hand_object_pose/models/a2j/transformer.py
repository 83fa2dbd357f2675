"""A2J-Transformer's deformable encoder and anchor-query decoder (DAB-Deformable-DETR variant).

Encoder: post-norm layers of multi-scale deformable self-attention over the flattened feature
levels (each token samples around its own pixel centre on every level) and a ReLU FFN.

Decoder: the queries are the 3D anchors. Content queries start from a learned embedding; the
positional query is `ref_point_head` applied to the sine code of the anchor (y, x, z order),
multiplied from layer 1 on by `query_scale(content)`. Each layer: self-attention (post-norm),
deformable cross-attention sampling at the anchors' (x, y) on every level (depth is not used for
sampling), FFN. The anchors are never updated between layers (the official `fix_anchor`).

All tensors are batch-first: (N, tokens, d).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from hand_object_pose.models.common import MLP, sine_axis_code
from hand_object_pose.models.common.deformable_attention import (
    MultiScaleDeformableAttention, ReferenceGeometry, reference_geometry)

SpatialShapes = Sequence[tuple[int, int]]


class FeedForward(nn.Module):
    """linear2(dropout(relu(linear1(x)))) with official names; residual + norm done by the layer."""

    def __init__(self, d_model: int, ffn_dim: int, dropout: float):
        super().__init__()
        self.linear1 = nn.Linear(d_model, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.dropout(F.relu(self.linear1(x))))


class EncoderLayer(nn.Module):
    def __init__(self, d_model: int, ffn_dim: int, dropout: float, n_levels: int, n_heads: int, n_points: int):
        super().__init__()
        self.self_attn = MultiScaleDeformableAttention(d_model, n_levels, n_heads, n_points)
        self.norm1 = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, ffn_dim, dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, src: torch.Tensor, pos: torch.Tensor, reference_points: torch.Tensor,
                spatial_shapes: SpatialShapes, geometry: ReferenceGeometry | None = None) -> torch.Tensor:
        """src, pos: (N, S, d); reference_points: (N, S, L, 2). Returns (N, S, d)."""
        attended = self.self_attn(src + pos, reference_points, src, spatial_shapes, geometry)
        src = self.norm1(src + self.dropout1(attended))
        return self.norm2(src + self.dropout2(self.ffn(src)))


class DecoderLayer(nn.Module):
    def __init__(self, d_model: int, ffn_dim: int, dropout: float, n_levels: int, n_heads: int, n_points: int):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(d_model)       # after self-attention (official numbering)
        self.cross_attn = MultiScaleDeformableAttention(d_model, n_levels, n_heads, n_points)
        self.norm1 = nn.LayerNorm(d_model)       # after cross-attention
        self.ffn = FeedForward(d_model, ffn_dim, dropout)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(self, tgt: torch.Tensor, query_pos: torch.Tensor, reference_points: torch.Tensor,
                memory: torch.Tensor, spatial_shapes: SpatialShapes,
                geometry: ReferenceGeometry | None = None) -> torch.Tensor:
        """tgt, query_pos: (N, Q, d); reference_points: (N, Q, L, 2); memory: (N, S, d)."""
        q = tgt + query_pos
        tgt = self.norm2(tgt + self.dropout2(self.self_attn(q, q, tgt, need_weights=False)[0]))
        attended = self.cross_attn(tgt + query_pos, reference_points, memory, spatial_shapes, geometry)
        tgt = self.norm1(tgt + self.dropout1(attended))
        return self.norm3(tgt + self.dropout3(self.ffn(tgt)))


def encoder_reference_points(spatial_shapes: SpatialShapes, n_levels: int, device=None) -> torch.Tensor:
    """(1, S, L, 2): each token's own pixel centre (x, y) normalised by its level size, for every level.

    Valid ratios are 1 (inputs are never padded), so the same normalised point is used on all levels.
    """
    points = []
    for h, w in spatial_shapes:
        ys = (torch.arange(h, dtype=torch.float32, device=device) + 0.5) / h
        xs = (torch.arange(w, dtype=torch.float32, device=device) + 0.5) / w
        y, x = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack((x.reshape(-1), y.reshape(-1)), dim=-1))
    return torch.cat(points, dim=0)[None, :, None, :].expand(1, -1, n_levels, 2)


def anchor_sine_code(reference: torch.Tensor, num_feats: int = 128, temperature: float = 10000.0) -> torch.Tensor:
    """Sine code of normalised 3D references (..., 3) as (x, y, z) in [0, 1] -> (..., 3*num_feats).

    Channel blocks in the order y, x, z (DAB-DETR's convention extended to depth); argument = coord * 2*pi.
    """
    scaled = reference * (2 * math.pi)
    x, y, z = scaled.unbind(-1)
    return torch.cat([sine_axis_code(c, num_feats, temperature) for c in (y, x, z)], dim=-1)


class DeformableEncoder(nn.Module):
    def __init__(self, num_layers: int, **layer_kwargs):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(**layer_kwargs) for _ in range(num_layers))

    def forward(self, src: torch.Tensor, pos: torch.Tensor, spatial_shapes: SpatialShapes,
                return_all: bool = False):
        """src, pos: (N, S, d). Returns memory (N, S, d), and with return_all the list of layer outputs."""
        attn = self.layers[0].self_attn
        reference = encoder_reference_points(spatial_shapes, attn.n_levels, src.device).expand(src.shape[0], -1, -1, -1)
        geometry = reference_geometry(reference, spatial_shapes, attn.n_points)   # shared by all layers
        outputs = []
        for layer in self.layers:
            src = layer(src, pos, reference, spatial_shapes, geometry)
            outputs.append(src)
        return (src, outputs) if return_all else src


class AnchorDecoder(nn.Module):
    """Decoder whose queries sit at fixed 3D anchors. Returns the output of every layer."""

    def __init__(self, num_layers: int, d_model: int, **layer_kwargs):
        super().__init__()
        self.layers = nn.ModuleList(DecoderLayer(d_model=d_model, **layer_kwargs) for _ in range(num_layers))
        self.query_scale = MLP(d_model, d_model, d_model, 2)
        self.ref_point_head = MLP(3 * d_model // 2, d_model, d_model, 2)
        self.d_model = d_model

    def forward(self, tgt: torch.Tensor, anchors_unit: torch.Tensor, memory: torch.Tensor,
                spatial_shapes: SpatialShapes, trace: dict | None = None) -> list[torch.Tensor]:
        """tgt: (N, Q, d) content queries; anchors_unit: (N, Q, 3) anchors / output_size (x, y, z);
        memory: (N, S, d). Returns the list of per-layer outputs (N, Q, d).

        `trace`, when given, receives intermediates for parity checks (query_sine_embed,
        ref_point_head_out, query_scale_out (list), cross_attn_ref_points_l0).
        """
        attn = self.layers[0].cross_attn
        reference = anchors_unit[:, :, None, :2].expand(-1, -1, attn.n_levels, 2)
        geometry = reference_geometry(reference, spatial_shapes, attn.n_points)   # fixed anchors: shared
        sine = anchor_sine_code(anchors_unit, self.d_model // 2)
        raw_pos = self.ref_point_head(sine)
        if trace is not None:
            trace.update(query_sine_embed=sine, ref_point_head_out=raw_pos, query_scale_out=[],
                         cross_attn_ref_points_l0=reference)
        outputs = []
        for lid, layer in enumerate(self.layers):
            if lid == 0:
                query_pos = raw_pos
            else:
                scale = self.query_scale(tgt)
                if trace is not None:
                    trace["query_scale_out"].append(scale)
                query_pos = scale * raw_pos
            tgt = layer(tgt, query_pos, reference, memory, spatial_shapes, geometry)
            outputs.append(tgt)
        return outputs
