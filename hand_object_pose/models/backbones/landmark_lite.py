"""The feature extractor of MediaPipe's hand landmark network (the "lite" variant), written in plain torch.

MediaPipe's landmark network was trained on real photos of hands (models/hand_detector/, Apache-2.0); its
convolutional body, without its regression heads, is a backbone whose features already describe hands. A
network initialised from it starts from what real photos taught it instead of from random weights.

Architecture (read from `models/hand_detector/hand_landmark_lite.onnx`; batch norms are folded into the
convolutions' biases there, so there are none here): a 3x3 stride-2 stem, 15 inverted residual blocks
(1x1 expansion, depthwise k x k, 1x1 projection; ReLU6 after the expansion and the depthwise convolution) and
a final 1x1 expansion + depthwise 3x3. Stride-2 convolutions pad like TensorFlow's "SAME" (more at the bottom
and right), and the one stride-2 block whose channels do not change adds a 2x2 max-pooled shortcut.

forward(image (N, 3, S, S) float in [0, 1], RGB) -> features (N, 672, S/32, S/32): the input the original
network takes, without mean/std normalisation. Its released weights are read by
training.landmark_weights.load_landmark_lite_weights (file reading stays out of the models).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# (expansion channels or None, depthwise kernel, stride, output channels, shortcut: "add" | "maxpool" | None)
BLOCKS = (
    (None, 3, 1, 16, None),
    (64, 3, 2, 16, "maxpool"),
    (96, 3, 1, 16, "add"),
    (96, 5, 2, 24, None),
    (144, 5, 1, 24, "add"),
    (144, 3, 2, 48, None),
    (288, 3, 1, 48, "add"),
    (288, 3, 1, 48, "add"),
    (288, 5, 1, 64, None),
    (384, 5, 1, 64, "add"),
    (384, 5, 1, 64, "add"),
    (384, 5, 2, 112, None),
    (672, 5, 1, 112, "add"),
    (672, 5, 1, 112, "add"),
    (672, 5, 1, 112, "add"),
)
STEM_CHANNELS = 24
OUT_CHANNELS = 672


class SamePadConv(nn.Conv2d):
    """A convolution with TensorFlow "SAME" padding: for stride 2 the extra row and column go at the bottom
    and right (the original graph's pads), which a symmetric PyTorch padding would shift by half a pixel."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(in_channels, out_channels, kernel, stride, padding=0, groups=groups)
        total = kernel - stride if stride > 1 else kernel - 1
        self.pad = (total // 2, total - total // 2) * 2  # (left, right, top, bottom)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pad))


class InvertedResidual(nn.Module):
    def __init__(self, in_channels: int, expansion: int | None, kernel: int, stride: int, out_channels: int,
                 shortcut: str | None):
        super().__init__()
        hidden = expansion or in_channels
        self.expand = SamePadConv(in_channels, hidden, 1) if expansion else None
        self.depthwise = SamePadConv(hidden, hidden, kernel, stride, groups=hidden)
        self.project = SamePadConv(hidden, out_channels, 1)
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self.expand(x)) if self.expand is not None else x
        y = self.project(F.relu6(self.depthwise(y)))
        if self.shortcut == "add":
            return y + x
        if self.shortcut == "maxpool":
            return y + F.max_pool2d(x, 2, 2)
        return y


class LandmarkLiteBackbone(nn.Module):
    """MediaPipe hand landmark (lite) body: image (N, 3, S, S) in [0, 1] -> (N, 672, S/32, S/32); S % 32 == 0."""

    out_channels = OUT_CHANNELS

    def __init__(self):
        super().__init__()
        self.stem = SamePadConv(3, STEM_CHANNELS, 3, 2)
        blocks, channels = [], STEM_CHANNELS
        for expansion, kernel, stride, out_channels, shortcut in BLOCKS:
            blocks.append(InvertedResidual(channels, expansion, kernel, stride, out_channels, shortcut))
            channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.final_expand = SamePadConv(channels, OUT_CHANNELS, 1)
        self.final_depthwise = SamePadConv(OUT_CHANNELS, OUT_CHANNELS, 3, groups=OUT_CHANNELS)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.blocks(F.relu6(self.stem(image)))
        return F.relu6(self.final_depthwise(F.relu6(self.final_expand(x))))

    def convolutions(self) -> list[SamePadConv]:
        """Every convolution in the order the original graph runs them."""
        return [m for m in self.modules() if isinstance(m, SamePadConv)]
