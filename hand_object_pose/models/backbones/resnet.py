"""ResNet-18/34/50/101 written in plain torch, with torchvision-compatible state-dict names.

No torchvision wheel exists for the pinned CPU torch, so the backbone lives here. Parameter names
(`conv1`, `bn1`, `layer1.0.conv1`, `layer1.0.downsample.0`, ...) match torchvision's, so that the
official checkpoints of all four models map onto it with a prefix change only.

Variants the official code bases need, as constructor options:
- `norm="batch"` (Keypoint Transformer), `norm="frozen"` (A2J: FrozenBatchNorm2d, no
  `num_batches_tracked` buffer);
- `dilate_last_stage=True` (A2J's DC5: layer4 keeps stride 16 and uses dilation 2);
- `stem_norm=False` and `downsample_norm=False` (Dense Mutual Attention: the stem BN exists in the
  checkpoint but is not applied, and the downsample branches are a bare 1x1 convolution).

`forward` returns every stage, so callers pick the levels they need:
`ResNetFeatures(stem, pooled, c2, c3, c4, c5)`; for a 256x256 input the spatial sizes are
128, 64, 64, 32, 16, 8 (C5 is 16 with the dilated last stage).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d with fixed statistics and affine parameters, all stored as buffers.

    Matches torchvision's FrozenBatchNorm2d (eps 1e-5) including the state-dict layout
    (weight, bias, running_mean, running_var; no num_batches_tracked).
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        # Checkpoints made with a regular BatchNorm2d carry this counter; it has no meaning here.
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)


def make_norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "frozen":
        return FrozenBatchNorm2d(channels)
    raise ValueError(f"unknown norm kind {kind!r}; expected 'batch' or 'frozen'")


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_ch: int, width: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None, norm: str = "batch"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, width, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn1 = make_norm(norm, width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = make_norm(norm, width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """torchvision's v1.5 bottleneck: the stride sits on the 3x3 convolution."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None, norm: str = "batch"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn1 = make_norm(norm, width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = make_norm(norm, width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = make_norm(norm, width * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNetFeatures(NamedTuple):
    """All stage outputs, NCHW. Strides for a 256 input: stem 2, pooled 4, c2 4, c3 8, c4 16, c5 32."""

    stem: torch.Tensor    # after conv1 (+ bn1) + ReLU, 64 ch
    pooled: torch.Tensor  # after the 3x3 max-pool, 64 ch
    c2: torch.Tensor      # layer1: 64 (basic) / 256 (bottleneck) ch
    c3: torch.Tensor      # layer2: 128 / 512 ch
    c4: torch.Tensor      # layer3: 256 / 1024 ch
    c5: torch.Tensor      # layer4: 512 / 2048 ch


_DEPTHS = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
}


class ResNet(nn.Module):
    """ResNet trunk without the classifier.

    Args:
        depth: 18, 34, 50 or 101.
        norm: "batch" or "frozen" (see module docstring).
        dilate_last_stage: replace layer4's stride by dilation 2 (DC5).
        stem_norm: apply `bn1` after `conv1`. When False the module still exists (so official
            checkpoints load strictly) but is skipped, as in Dense Mutual Attention.
        downsample_norm: whether each downsample branch has a norm after its 1x1 conv.
        base_width: channels of the stem and the first stage (64 = torchvision's; 32 = "half width",
            stages 32/64/128/256 for ResNet-18). The official checkpoints all use 64.
    """

    def __init__(self, depth: int = 50, norm: str = "batch", dilate_last_stage: bool = False,
                 stem_norm: bool = True, downsample_norm: bool = True, base_width: int = 64):
        super().__init__()
        if depth not in _DEPTHS:
            raise ValueError(f"unsupported ResNet depth {depth}; expected one of {sorted(_DEPTHS)}")
        block, counts = _DEPTHS[depth]
        self.depth = depth
        self.norm = norm
        self.stem_norm = stem_norm
        self.downsample_norm = downsample_norm
        w = int(base_width)
        if w < 1:
            raise ValueError(f"base_width must be >= 1, got {base_width}")
        self._in_ch = w
        self._dilation = 1
        self.conv1 = nn.Conv2d(3, w, 7, 2, 3, bias=False)
        self.bn1 = make_norm(norm, w)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_stage(block, w, counts[0], 1, False)
        self.layer2 = self._make_stage(block, 2 * w, counts[1], 2, False)
        self.layer3 = self._make_stage(block, 4 * w, counts[2], 2, False)
        self.layer4 = self._make_stage(block, 8 * w, counts[3], 2, dilate_last_stage)
        self.out_channels = 8 * w * block.expansion

    def _make_stage(self, block, width: int, count: int, stride: int, dilate: bool) -> nn.Sequential:
        previous_dilation = self._dilation
        if dilate:
            self._dilation *= stride
            stride = 1
        downsample = None
        if stride != 1 or self._in_ch != width * block.expansion:
            conv = nn.Conv2d(self._in_ch, width * block.expansion, 1, stride, bias=False)
            downsample = (nn.Sequential(conv, make_norm(self.norm, width * block.expansion))
                          if self.downsample_norm else nn.Sequential(conv))
        layers = [block(self._in_ch, width, stride, previous_dilation, downsample, self.norm)]
        self._in_ch = width * block.expansion
        layers += [block(self._in_ch, width, 1, self._dilation, None, self.norm) for _ in range(1, count)]
        return nn.Sequential(*layers)

    def freeze_norm_affine(self) -> None:
        """Stop gradients into the affine parameters of norms whose name contains 'bn'.

        This is Keypoint Transformer's rule (downsample norms keep training, as in the official code).
        """
        for name, param in self.named_parameters():
            if "bn" in name:
                param.requires_grad_(False)

    def forward(self, image: torch.Tensor) -> ResNetFeatures:
        """image: (N, 3, H, W) float. Returns every stage (see ResNetFeatures)."""
        stem = self.conv1(image)
        if self.stem_norm:
            stem = self.bn1(stem)
        stem = self.relu(stem)
        pooled = self.maxpool(stem)
        c2 = self.layer1(pooled)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return ResNetFeatures(stem, pooled, c2, c3, c4, c5)
