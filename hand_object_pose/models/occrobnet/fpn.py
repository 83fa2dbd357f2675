"""Feature Pyramid Network (Lin et al., CVPR 2017) over ResNet C2-C5.

Lateral 1x1 convs bring every stage to `channels`; the top-down path adds the 2x nearest-upsampled
coarser level; a 3x3 conv smooths each sum. Returns P2..P5 (strides 4, 8, 16, 32), all `channels`
wide. Input sides must be divisible by 32 (256 crops are).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class FPN(nn.Module):
    """Args: in_channels (C2, C3, C4, C5 widths), channels (output width)."""

    def __init__(self, in_channels: tuple, channels: int = 256):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.smooth = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=1) for _ in in_channels)
        self.channels = channels

    def forward(self, *stages: torch.Tensor) -> tuple:
        """stages C2..C5 (NCHW) -> (P2, P3, P4, P5) NCHW with `channels` channels."""
        if len(stages) != len(self.lateral):
            raise ValueError(f"FPN expects {len(self.lateral)} backbone stages, got {len(stages)}")
        top = self.lateral[-1](stages[-1])
        outs = [self.smooth[-1](top)]
        for i in range(len(stages) - 2, -1, -1):
            top = self.lateral[i](stages[i]) + F.interpolate(top, scale_factor=2.0, mode="nearest")
            outs.append(self.smooth[i](top))
        return tuple(reversed(outs))
