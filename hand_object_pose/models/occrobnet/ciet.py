"""CIET: the Contextual Information Enhancement Transformer block of OccRobNet (CoTNet-like).

Paper (sec. III-B, Fig. 2, eqs. 1-2), with this project's reading of what it leaves open:

- static context: the keys are contextualised by a k x k convolution over each position's
  neighbours, K¹ = ReLU(BN(conv_kxk(F))) (grouped, `groups` as in CoTNet);
- local attention: A = δ(θ([K¹, Q])), θ = 1x1 conv + BN + ReLU (2C -> 2C / reduction), δ = 1x1 conv
  without activation -> one k x k window of weights per position and per channel group
  (`attention_groups` groups of C / attention_groups channels share a window), normalised with a
  softmax over the window (the paper calls CIET "softmax based");
- dynamic context: Y(p) = sum over the k x k window around p of A(p, offset) * V(p + offset), with
  V = BN(conv_1x1(F)) and zero padding at the border;
- fusion with the static context by addition, a 1x1 projection + BN, and a residual connection to
  the block input (CIET "is backed up by a backbone residual network"): out = F + BN(W (K¹ + Y)).

Q = K = V = F (the feature map is injected into all three). Everything is local: an output
position depends on inputs within Chebyshev distance k // 2 per block (in eval mode, where
BatchNorm is a per-position affine map).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class CIETBlock(nn.Module):
    """Args: channels C; kernel k (odd); attention_groups (divides C); reduction of θ's width;
    key_groups of the k x k key convolution (divides C). Shapes: (N, C, H, W) -> (N, C, H, W)."""

    def __init__(self, channels: int, kernel: int = 3, attention_groups: int = 8, reduction: int = 4,
                 key_groups: int = 4):
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError(f"CIET kernel must be odd, got {kernel}")
        if channels % attention_groups or channels % key_groups:
            raise ValueError(f"channels {channels} must be divisible by attention_groups {attention_groups} "
                             f"and key_groups {key_groups}")
        self.kernel, self.groups = kernel, attention_groups
        self.key_embed = nn.Sequential(
            nn.Conv2d(channels, channels, kernel, padding=kernel // 2, groups=key_groups, bias=False),
            nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        self.value_embed = nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels))
        hidden = 2 * channels // reduction
        self.theta = nn.Sequential(nn.Conv2d(2 * channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden),
                                   nn.ReLU(inplace=True))
        self.delta = nn.Conv2d(hidden, kernel * kernel * attention_groups, 1)
        self.project = nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels))

    def local_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, C, H, W) -> (static context K¹ (N, C, H, W), window weights A (N, G, k*k, H, W))."""
        static = self.key_embed(x)
        logits = self.delta(self.theta(torch.cat((static, x), dim=1)))
        n, _, h, w = x.shape
        return static, torch.softmax(logits.reshape(n, self.groups, self.kernel * self.kernel, h, w), dim=2)

    def aggregate(self, value: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Y(p) = sum_o A(p, o) V(p + o): value (N, C, H, W), weights (N, G, k*k, H, W) -> (N, C, H, W).

        Written as k*k shifted slices of the zero-padded values (exports to plain ONNX slices)."""
        n, c, h, w = value.shape
        r = self.kernel // 2
        padded = F.pad(value, (r, r, r, r)).reshape(n, self.groups, c // self.groups, h + 2 * r, w + 2 * r)
        out = torch.zeros(n, self.groups, c // self.groups, h, w, dtype=value.dtype, device=value.device)
        for i in range(self.kernel):
            for j in range(self.kernel):
                out = out + weights[:, :, None, i * self.kernel + j] * padded[..., i:i + h, j:j + w]
        return out.reshape(n, c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        static, weights = self.local_attention(x)
        dynamic = self.aggregate(self.value_embed(x), weights)
        return x + self.project(static + dynamic)


class CIET(nn.Sequential):
    """`layers` CIETBlocks in a row (same arguments as CIETBlock)."""

    def __init__(self, channels: int, layers: int = 1, **block_args):
        super().__init__(*(CIETBlock(channels, **block_args) for _ in range(layers)))
