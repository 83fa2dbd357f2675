"""DETR-style post-norm transformer with attention masks and a pluggable attention-weight function.

Shared by Keypoint Transformer (and OccRobNet, which swaps the attention weights for
`sigmoid(logits) * softmax(logits)`). Parameter names follow `torch.nn.Transformer*Layer` and the
official DETR / Keypoint Transformer checkpoints: `self_attn.in_proj_weight`, `self_attn.out_proj`,
`multihead_attn.*`, `linear1`, `linear2`, `norm1..3`, so official tensors load without renaming.

Layout is sequence-first throughout, as in DETR: tokens (S, N, C), queries (Q, N, C).

Masks are boolean with True = "not allowed", the PyTorch convention:
- `key_padding_mask` (N, S): keys to ignore for every query;
- `attn_mask` (Q, S) shared by the batch, or (N, Q, S) per sample (expanded to all heads).

A fully masked row would make softmax undefined (NaN); masked logits are filled with the most
negative finite float instead of -inf, so such a row degrades to uniform weights over all keys
instead of poisoning the batch. Rows with at least one allowed key are identical to -inf masking.
"""
from __future__ import annotations

import copy
import math
from typing import Callable, NamedTuple, Optional

import torch
from torch import nn
from torch.nn import functional as F

# (logits (N, H, Q, S) already scaled by 1/sqrt(head_dim), blocked (broadcastable bool) or None)
#   -> attention weights (N, H, Q, S)
AttentionWeightFn = Callable[[torch.Tensor, Optional[torch.Tensor]], torch.Tensor]


def masked_logits(logits: torch.Tensor, blocked: Optional[torch.Tensor]) -> torch.Tensor:
    if blocked is None:
        return logits
    return logits.masked_fill(blocked, torch.finfo(logits.dtype).min)


def softmax_attention(logits: torch.Tensor, blocked: Optional[torch.Tensor]) -> torch.Tensor:
    """Standard scaled dot-product attention weights: softmax over the keys."""
    return torch.softmax(masked_logits(logits, blocked), dim=-1)


class MultiheadAttention(nn.Module):
    """Multi-head attention with the packed `in_proj_weight` layout of `torch.nn.MultiheadAttention`.

    Written out (instead of using the torch module) so that the attention-weight function can be
    replaced and the head-averaged weights are always available. Dropout acts on the weights.

    Shapes: query (Q, N, C), key/value (S, N, C) -> output (Q, N, C), weights averaged over
    heads (N, Q, S).
    """

    def __init__(self, d_model: int, nhead: int, dropout: float = 0.0,
                 attention_weights: AttentionWeightFn = softmax_attention):
        super().__init__()
        if d_model % nhead:
            raise ValueError(f"d_model {d_model} is not divisible by nhead {nhead}")
        self.d_model, self.nhead = d_model, nhead
        self.head_dim = d_model // nhead
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d_model))
        self.out_proj = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)
        self.attention_weights = attention_weights
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        # (L, N, C) -> (N, H, L, head_dim)
        length, batch = x.shape[0], x.shape[1]
        return x.reshape(length, batch, self.nhead, self.head_dim).permute(1, 2, 0, 3)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                attn_mask: Optional[torch.Tensor] = None,
                key_padding_mask: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        b_q, b_k, b_v = self.in_proj_bias.chunk(3)
        q = self._heads(F.linear(query, w_q, b_q)) * (1.0 / math.sqrt(self.head_dim))
        k = self._heads(F.linear(key, w_k, b_k))
        v = self._heads(F.linear(value, w_v, b_v))
        logits = q @ k.transpose(-2, -1)                       # (N, H, Q, S)
        blocked = None
        if attn_mask is not None:
            blocked = attn_mask if attn_mask.dim() == 2 else attn_mask[:, None]
        if key_padding_mask is not None:
            pad = key_padding_mask[:, None, None, :]
            blocked = pad if blocked is None else (blocked | pad)
        weights = self.attention_weights(logits, blocked)
        out = self.dropout(weights) @ v                         # (N, H, Q, head_dim)
        out = out.permute(2, 0, 1, 3).reshape(query.shape[0], query.shape[1], self.d_model)
        return self.out_proj(out), weights.mean(dim=1)


def _with_pos(x: torch.Tensor, pos: Optional[torch.Tensor]) -> torch.Tensor:
    return x if pos is None else x + pos


class EncoderLayer(nn.Module):
    """Post-norm encoder layer: x = norm1(x + attn(x + pos, x + pos, x)); x = norm2(x + ffn(x))."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float,
                 attention_weights: AttentionWeightFn = softmax_attention):
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout, attention_weights)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, src: torch.Tensor, key_padding_mask: Optional[torch.Tensor] = None,
                pos: Optional[torch.Tensor] = None) -> torch.Tensor:
        q = k = _with_pos(src, pos)
        attended, _ = self.self_attn(q, k, src, key_padding_mask=key_padding_mask)
        src = self.norm1(src + self.dropout1(attended))
        ffn = self.linear2(self.dropout(F.relu(self.linear1(src))))
        return self.norm2(src + self.dropout2(ffn))


class DecoderLayer(nn.Module):
    """Post-norm decoder layer: masked self-attention, cross-attention to memory, FFN.

    Returns the new target (Q, N, C) and the head-averaged cross-attention weights (N, Q, S).
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float,
                 attention_weights: AttentionWeightFn = softmax_attention):
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout, attention_weights)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout, attention_weights)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor, tgt_mask: Optional[torch.Tensor] = None,
                memory_mask: Optional[torch.Tensor] = None,
                memory_key_padding_mask: Optional[torch.Tensor] = None,
                pos: Optional[torch.Tensor] = None,
                query_pos: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        q = k = _with_pos(tgt, query_pos)
        attended, _ = self.self_attn(q, k, tgt, attn_mask=tgt_mask)
        tgt = self.norm1(tgt + self.dropout1(attended))
        attended, cross_weights = self.multihead_attn(_with_pos(tgt, query_pos), _with_pos(memory, pos), memory,
                                                      attn_mask=memory_mask,
                                                      key_padding_mask=memory_key_padding_mask)
        tgt = self.norm2(tgt + self.dropout2(attended))
        ffn = self.linear2(self.dropout(F.relu(self.linear1(tgt))))
        return self.norm3(tgt + self.dropout3(ffn)), cross_weights


def _clones(layer: nn.Module, count: int) -> nn.ModuleList:
    return nn.ModuleList(copy.deepcopy(layer) for _ in range(count))


class EncoderOutput(NamedTuple):
    layer_out: torch.Tensor    # (L, S, N, C) raw output of every layer
    normed: torch.Tensor       # (L, S, N, C) inter_norm of every layer (input of per-layer heads)


class TransformerEncoder(nn.Module):
    """Stack of post-norm encoder layers; every layer's output also passes a shared `inter_norm`.

    The memory handed to a decoder is the raw output of the last layer (`layer_out[-1]`).
    """

    def __init__(self, layer: EncoderLayer, num_layers: int, d_model: int):
        super().__init__()
        self.layers = _clones(layer, num_layers)
        self.inter_norm = nn.LayerNorm(d_model)

    def forward(self, src: torch.Tensor, key_padding_mask: Optional[torch.Tensor] = None,
                pos: Optional[torch.Tensor] = None) -> EncoderOutput:
        outs = []
        for layer in self.layers:
            src = layer(src, key_padding_mask=key_padding_mask, pos=pos)
            outs.append(src)
        layer_out = torch.stack(outs)
        return EncoderOutput(layer_out, self.inter_norm(layer_out))


class DecoderOutput(NamedTuple):
    layer_out: torch.Tensor          # (L, Q, N, C) raw output of every layer
    hs: torch.Tensor                 # (L, Q, N, C) final LayerNorm of every layer (input of query heads)
    cross_attn_weights: torch.Tensor  # (L, N, Q, S) head-averaged cross-attention weights


class TransformerDecoder(nn.Module):
    """Stack of post-norm decoder layers with intermediate outputs through a shared final `norm`."""

    def __init__(self, layer: DecoderLayer, num_layers: int, d_model: int):
        super().__init__()
        self.layers = _clones(layer, num_layers)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor, tgt_mask: Optional[torch.Tensor] = None,
                memory_mask: Optional[torch.Tensor] = None,
                memory_key_padding_mask: Optional[torch.Tensor] = None,
                pos: Optional[torch.Tensor] = None, query_pos: Optional[torch.Tensor] = None) -> DecoderOutput:
        outs, weights = [], []
        for layer in self.layers:
            tgt, cross = layer(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                               memory_key_padding_mask=memory_key_padding_mask, pos=pos, query_pos=query_pos)
            outs.append(tgt)
            weights.append(cross)
        layer_out = torch.stack(outs)
        return DecoderOutput(layer_out, self.norm(layer_out), torch.stack(weights))


class Transformer(nn.Module):
    """Encoder + decoder, DETR post-norm (d_model, nhead, FFN width, dropout; ReLU).

    `attention_weights` is used by every attention of both stacks (self and cross).
    """

    def __init__(self, d_model: int = 256, nhead: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, dim_feedforward: int = 2048, dropout: float = 0.1,
                 attention_weights: AttentionWeightFn = softmax_attention):
        super().__init__()
        self.d_model = d_model
        self.encoder = TransformerEncoder(
            EncoderLayer(d_model, nhead, dim_feedforward, dropout, attention_weights), num_encoder_layers, d_model)
        self.decoder = TransformerDecoder(
            DecoderLayer(d_model, nhead, dim_feedforward, dropout, attention_weights), num_decoder_layers, d_model)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, src: torch.Tensor, query_pos: torch.Tensor, key_padding_mask: Optional[torch.Tensor] = None,
                tgt_mask: Optional[torch.Tensor] = None, memory_mask: Optional[torch.Tensor] = None,
                pos: Optional[torch.Tensor] = None) -> tuple[EncoderOutput, DecoderOutput]:
        """src (S, N, C) tokens; query_pos (Q, N, C) learned queries, used as the query position with a
        zero decoder target. Returns the encoder and decoder outputs (see their fields)."""
        enc = self.encoder(src, key_padding_mask=key_padding_mask, pos=pos)
        tgt = torch.zeros_like(query_pos)
        dec = self.decoder(tgt, enc.layer_out[-1], tgt_mask=tgt_mask, memory_mask=memory_mask,
                           memory_key_padding_mask=key_padding_mask, pos=pos, query_pos=query_pos)
        return enc, dec
