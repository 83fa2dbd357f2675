"""Lixel mesh estimators (I2L-MeshNet style) and the training-only joint and silhouette heads.

Module and parameter names follow the official checkpoint (`mesh_net.deconv.0.weight`, ...), so the
converter only strips prefixes.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F


def deconv_stack(in_channels: int = 2048, channels: int = 256, layers: int = 3) -> nn.Sequential:
    """(ConvTranspose2d 4x4 stride 2, no bias -> BN -> ReLU) x layers: 8x8 -> 64x64 for 3 layers."""
    modules = []
    for i in range(layers):
        modules += [nn.ConvTranspose2d(in_channels if i == 0 else channels, channels, 4, 2, 1, bias=False),
                    nn.BatchNorm2d(channels), nn.ReLU()]
    return nn.Sequential(*modules)


def soft_argmax_1d(logits: torch.Tensor) -> torch.Tensor:
    """Expected bin index under softmax(logits) along the last axis: (..., L) -> (...), in [0, L-1]."""
    bins = torch.arange(logits.shape[-1], dtype=logits.dtype, device=logits.device)
    return (torch.softmax(logits, dim=-1) * bins).sum(-1)


class LixelOutput(NamedTuple):
    coords: torch.Tensor      # (N, P, 3) x, y, z in the L^3 lixel grid
    deconv: torch.Tensor      # (N, 256, 64, 64) upsampled feature
    logits_x: torch.Tensor    # (N, P, L)
    logits_y: torch.Tensor    # (N, P, L)
    logits_z: torch.Tensor    # (N, P, L)


class LixelNet(nn.Module):
    """Points (vertices or joints) as three 1D heat maps ("lixels"), decoded by soft-argmax.

    x (y) logits: 1x1 conv1d over the deconvolved feature averaged over rows (columns).
    z logits: C5 viewed as (2048, 64) (8x8 positions as 64 "depth" bins), conv1d 2048 -> 256 + BN + ReLU
    -> conv1d 256 -> P. Input C5 (N, 2048, 8, 8); output coordinates in the 64^3 grid.
    """

    def __init__(self, num_points: int, in_channels: int = 2048, channels: int = 256, bins: int = 64):
        super().__init__()
        self.bins = bins
        self.deconv = deconv_stack(in_channels, channels)
        self.conv_x = nn.Sequential(nn.Conv1d(channels, num_points, 1))
        self.conv_y = nn.Sequential(nn.Conv1d(channels, num_points, 1))
        self.conv_z = nn.Sequential(nn.Conv1d(in_channels, channels, 1), nn.BatchNorm1d(channels), nn.ReLU(),
                                    nn.Conv1d(channels, num_points, 1))

    def forward(self, c5: torch.Tensor) -> LixelOutput:
        n, c, h, w = c5.shape
        if h * w != self.bins:
            raise ValueError(f"C5 must have {self.bins} positions (8x8 for a 256 crop), got {h}x{w}")
        feature = self.deconv(c5)
        logits_x = self.conv_x(feature.mean(dim=2))
        logits_y = self.conv_y(feature.mean(dim=3))
        logits_z = self.conv_z(c5.reshape(n, c, h * w))
        coords = torch.stack([soft_argmax_1d(logits_x), soft_argmax_1d(logits_y), soft_argmax_1d(logits_z)], dim=2)
        return LixelOutput(coords, feature, logits_x, logits_y, logits_z)


class PoseNet(LixelNet):
    """Training-only 21-joint lixel estimator that supervises the hand encoder (paper eq. 5).

    `conv` (3x3 conv 256 -> 64 + BN) is in the official checkpoint but its use in the unreleased
    training code is unknown and the released forward never calls it; it is kept so the weights load
    and round-trip, and is not applied here.
    """

    def __init__(self, num_joints: int = 21, in_channels: int = 2048, channels: int = 256, bins: int = 64):
        super().__init__(num_joints, in_channels, channels, bins)
        self.conv = nn.Sequential(nn.Conv2d(channels, 64, 3, padding=1), nn.BatchNorm2d(64))


class SegmentationNet(nn.Module):
    """Training-only object-silhouette decoder with skip connections from the object encoder (eq. 8).

    The released code contains only its weights; the wiring below is our reading of the key names and
    shapes: at each level a 1x1 conv reduces the deeper feature, it is upsampled x2, added to the skip
    feature and fused by a 3x3 conv (+ BN + ReLU on levels 1-3, ReLU on level 4):
    C5 8x8 -> +layer3 16x16 -> +layer2 32x32 -> +layer1 64x64 -> +stem 128x128, then 3x3 conv 64 -> 16
    and 1x1 conv 16 -> 2 class logits. Output (N, 2, 128, 128) (background, object), half the crop size.
    """

    def __init__(self):
        super().__init__()
        widths = [(2048, 1024), (1024, 512), (512, 256), (256, 64)]
        for level, (cin, cout) in enumerate(widths, start=1):
            setattr(self, f"conv{level}", nn.Conv2d(cin, cout, 1))
            setattr(self, f"fusion{level}", nn.Conv2d(cout, cout, 3, padding=1))
            if level < 4:
                setattr(self, f"bn{level}", nn.BatchNorm2d(cout))
        self.predict_head = nn.Sequential(nn.Conv2d(64, 16, 3, padding=1), nn.Conv2d(16, 2, 1))

    def forward(self, c5, c4, c3, c2, stem) -> torch.Tensor:
        x = c5
        for level, skip in enumerate((c4, c3, c2, stem), start=1):
            x = F.interpolate(getattr(self, f"conv{level}")(x), size=skip.shape[-2:], mode="bilinear",
                              align_corners=False)
            x = getattr(self, f"fusion{level}")(x + skip)
            if level < 4:
                x = getattr(self, f"bn{level}")(x)
            x = torch.relu(x)
        return self.predict_head(x)
