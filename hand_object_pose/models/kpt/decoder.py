"""Keypoint Transformer's U-Net decoder and its 1x1-conv map heads.

Four up-steps (transposed conv k4 s2 + BN + ReLU, concatenation [skip, upsampled] in that order, 3x3 conv +
BN + ReLU) take C5 (stride 32) back to stride 2 (128x128 for a 256 input). Two widths exist in the
official code, with these module names (official `decoder_net.resnet_decoder.*`):

- small: every skip is first reduced by a 1x1 conv + BN + ReLU (`conv1d..conv4d`), C5 itself by
  `conv0d`; pyramid widths 512/256/128/64/32 (strides 32..2), i.e. 992 token channels;
- big: full-width skips, C5 used as is; pyramid widths = the backbone's (2048/1024/512/256) and
  128 at stride 2, i.e. 3968 token channels for ResNet-50.

Heads on the stride-2 level: `convOut` (hand heat-map only, one 1x1 conv) or, with an object,
`convOut_hm` and `convOut_seg` (1x1 conv stacks with BN + ReLU: w-w-1 small, w-w-w/2-1 big).
Maps are raw conv outputs (trained against 255-scaled Gaussians / masks), no activation.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import nn


def _conv_bn_relu(in_ch: int, out_ch: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2), nn.BatchNorm2d(out_ch),
                         nn.ReLU(inplace=True))


def _deconv_bn_relu(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1, bias=False),
                         nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


def _map_head(width: int, deep: bool) -> nn.Sequential:
    """1x1-conv head to one channel; `deep` adds the big decoder's extra halving layer."""
    if deep:
        half = width // 2
        return nn.Sequential(nn.Conv2d(width, width, 1), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                             nn.Conv2d(width, half, 1), nn.BatchNorm2d(half), nn.ReLU(inplace=True),
                             nn.Conv2d(half, 1, 1))
    return nn.Sequential(nn.Conv2d(width, width, 1), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                         nn.Conv2d(width, 1, 1))


class UNetOutput(NamedTuple):
    pyramid: tuple            # 5 NCHW levels sampled for the tokens, strides 2, 4, 8, 16, 32
    heatmap: torch.Tensor     # (N, 128, 128) raw hand-keypoint heat-map
    seg: Optional[torch.Tensor]  # (N, 128, 128) raw object segmentation map, or None


SMALL_WIDTHS = (32, 64, 128, 256, 512)  # pyramid widths at strides 2, 4, 8, 16, 32


class UNetDecoder(nn.Module):
    """U-Net decoder over ResNet features.

    Args:
        skip_channels: backbone widths (stem, C2, C3, C4, C5), e.g. (64, 256, 512, 1024, 2048).
        big: big (full-width) or small (1x1-reduced) variant.
        has_object: add the object segmentation head.
    """

    def __init__(self, skip_channels: tuple, big: bool, has_object: bool):
        super().__init__()
        stem, c2, c3, c4, c5 = skip_channels
        self.big = big
        if big:
            widths = (c2 // 2, c2, c3, c4, c5)
            self.deconv1 = _deconv_bn_relu(c5, c4)
            self.conv1 = _conv_bn_relu(2 * c4, c4, 3)
            self.deconv2 = _deconv_bn_relu(c4, c3)
            self.conv2 = _conv_bn_relu(2 * c3, c3, 3)
            self.deconv3 = _deconv_bn_relu(c3, c2)
            self.conv3 = _conv_bn_relu(2 * c2, c2, 3)
            self.deconv4 = _deconv_bn_relu(c2, widths[0])
            self.conv4 = _conv_bn_relu(widths[0] + stem, widths[0], 3)
        else:
            widths = SMALL_WIDTHS
            w2, w4, w8, w16, w32 = widths
            self.conv0d = _conv_bn_relu(c5, w32, 1)
            self.deconv1 = _deconv_bn_relu(c5, w16)
            self.conv1d = _conv_bn_relu(c4, w16, 1)
            self.conv1 = _conv_bn_relu(2 * w16, w16, 3)
            self.deconv2 = _deconv_bn_relu(w16, w8)
            self.conv2d = _conv_bn_relu(c3, w8, 1)
            self.conv2 = _conv_bn_relu(2 * w8, w8, 3)
            self.deconv3 = _deconv_bn_relu(w8, w4)
            self.conv3d = _conv_bn_relu(c2, w4, 1)
            self.conv3 = _conv_bn_relu(2 * w4, w4, 3)
            self.deconv4 = _deconv_bn_relu(w4, w4)
            self.conv4d = _conv_bn_relu(stem, w2, 1)
            self.conv4 = _conv_bn_relu(w4 + w2, w2, 3)
        self.pyramid_channels = widths
        if has_object:
            self.convOut_hm = _map_head(widths[0], deep=big)
            self.convOut_seg = _map_head(widths[0], deep=big)
        else:
            self.convOut = nn.Sequential(nn.Conv2d(widths[0], 1, 1))
        self.has_object = has_object

    @property
    def token_channels(self) -> int:
        return sum(self.pyramid_channels)

    def forward(self, stem: torch.Tensor, c2: torch.Tensor, c3: torch.Tensor, c4: torch.Tensor,
                c5: torch.Tensor) -> UNetOutput:
        """Backbone features (NCHW, strides 2, 4, 8, 16, 32) -> pyramid + maps (see UNetOutput)."""
        if self.big:
            p32 = c5
            p16 = self.conv1(torch.cat((c4, self.deconv1(c5)), 1))
            p8 = self.conv2(torch.cat((c3, self.deconv2(p16)), 1))
            p4 = self.conv3(torch.cat((c2, self.deconv3(p8)), 1))
            p2 = self.conv4(torch.cat((stem, self.deconv4(p4)), 1))
        else:
            p32 = self.conv0d(c5)
            p16 = self.conv1(torch.cat((self.conv1d(c4), self.deconv1(c5)), 1))
            p8 = self.conv2(torch.cat((self.conv2d(c3), self.deconv2(p16)), 1))
            p4 = self.conv3(torch.cat((self.conv3d(c2), self.deconv3(p8)), 1))
            p2 = self.conv4(torch.cat((self.conv4d(stem), self.deconv4(p4)), 1))
        if self.has_object:
            heatmap, seg = self.convOut_hm(p2)[:, 0], self.convOut_seg(p2)[:, 0]
        else:
            heatmap, seg = self.convOut(p2)[:, 0], None
        return UNetOutput((p2, p4, p8, p16, p32), heatmap, seg)
