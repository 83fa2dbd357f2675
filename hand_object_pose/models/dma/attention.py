"""The dense mutual attention layer between the hand graph and the object graph (paper eqs. 13-17).

Quirk kept from the released code (needed to load its weights): the key, query, value and fusion
"1D convolutions" have kernel size 3 with padding 1 and slide along the VERTEX INDEX axis, so each
vertex mixes with the vertices whose ids are adjacent to its own (not its mesh neighbours). They are
followed by BatchNorm and ReLU. Checkpoint tensors: `a1.kh1.0.weight` (64, 64, 3), ...
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional

import torch
from torch import nn


def conv1d_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """Conv1d(kernel 3, padding 1) -> BatchNorm1d -> ReLU, stored as `0` (conv) and `1` (BN)."""
    return nn.Sequential(nn.Conv1d(in_channels, out_channels, 3, padding=1), nn.BatchNorm1d(out_channels),
                         nn.ReLU())


class MutualAttentionOutput(NamedTuple):
    hand: torch.Tensor     # (N, C, V_h) fused hand node features
    obj: torch.Tensor      # (N, C, V_o) fused object node features


class DenseMutualAttention(nn.Module):
    """Object-to-hand and hand-to-object attention between all vertex pairs, then fusion.

    A_o2h = softmax_over_object(Q_h K_o^T / sqrt(C)) (N, V_h, V_o); hand gets A_o2h V_o.
    A_h2o = softmax_over_hand(K_h Q_o^T / sqrt(C)) stored as (N, V_h, V_o); object gets A_h2o^T V_h.
    Each side fuses cat(own, attended) with a kernel-3 conv + BN + ReLU.

    Inputs and outputs are channel-first: hand (N, C, V_h), obj (N, C, V_o).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.scale = 1.0 / math.sqrt(channels)
        self.kh1 = conv1d_bn_relu(channels, channels)
        self.ko1 = conv1d_bn_relu(channels, channels)
        self.qh1 = conv1d_bn_relu(channels, channels)
        self.qo1 = conv1d_bn_relu(channels, channels)
        self.vh1 = conv1d_bn_relu(channels, channels)
        self.vo1 = conv1d_bn_relu(channels, channels)
        self.fuseh1 = conv1d_bn_relu(2 * channels, channels)
        self.fuseo1 = conv1d_bn_relu(2 * channels, channels)

    def forward(self, hand: torch.Tensor, obj: torch.Tensor, trace: Optional[dict] = None) -> MutualAttentionOutput:
        k_h, q_h, v_h = self.kh1(hand), self.qh1(hand), self.vh1(hand)
        k_o, q_o, v_o = self.ko1(obj), self.qo1(obj), self.vo1(obj)
        attn_o2h = torch.softmax(torch.bmm(q_h.transpose(1, 2), k_o) * self.scale, dim=2)  # (N, V_h, V_o)
        attn_h2o = torch.softmax(torch.bmm(k_h.transpose(1, 2), q_o) * self.scale, dim=1)  # (N, V_h, V_o)
        from_obj = torch.bmm(v_o, attn_o2h.transpose(1, 2))   # (N, C, V_h)
        from_hand = torch.bmm(v_h, attn_h2o)                   # (N, C, V_o)
        fused_h = self.fuseh1(torch.cat([hand, from_obj], dim=1))
        fused_o = self.fuseo1(torch.cat([obj, from_hand], dim=1))
        if trace is not None:
            trace.update({"gcn/attn_kh1": k_h, "gcn/attn_qh1": q_h, "gcn/attn_vh1": v_h, "gcn/attn_ko1": k_o,
                          "gcn/attn_qo1": q_o, "gcn/attn_vo1": v_o, "gcn/attn_A_o": attn_o2h,
                          "gcn/attn_A_h": attn_h2o, "gcn/fuse_h": fused_h, "gcn/fuse_o": fused_o})
        return MutualAttentionOutput(fused_h, fused_o)
