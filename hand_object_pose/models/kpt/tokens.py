"""Token encoding: sample the U-Net pyramid at the selected keypoints and embed them.

For each token (official `simpleCat` position mode):
- bilinear `grid_sample` (align_corners=True) of every pyramid level at the token's normalised
  position, concatenated in stride order 2, 4, 8, 16, 32 (`multiscale_feat`, 992 or 3968 ch);
- hand tokens (and padding) -> `linear1` MLP to `token_dim` (224), ReLU after every layer;
  object tokens -> `linear1_obj` on the stride-16 + stride-32 channels only;
- a 32-channel sine code of the 128x128 grid (`sine_grid_code(.., num_feats=16, temperature=100)`,
  y channels first), sampled with `mode="nearest"`, is concatenated: token = [feature, code].
The additive position embedding of the transformer is then zero.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from ..common import MLP, sine_grid_code
from .selection import OBJECT_TOKEN, Tokens

HAND_MLP_HIDDEN = (1024, 512, 256)
OBJECT_MLP_HIDDEN = {True: (1024, 512, 256), False: (512, 256, 256)}  # keyed by big_decoder


class EncodedTokens(NamedTuple):
    src: torch.Tensor              # (N, d_model, S) transformer input = [feature, position code]
    multiscale_feat: torch.Tensor  # (N, S, C) sampled pyramid features
    hand_feat: torch.Tensor        # (N, S, token_dim) linear1 output for every slot
    obj_feat: torch.Tensor | None  # (N, S, token_dim) linear1_obj output for every slot (object configs)
    pos: torch.Tensor              # (N, pos_dim, S) sampled position code


def sample_levels(levels, norm_xy: torch.Tensor) -> torch.Tensor:
    """Bilinear, align_corners=True samples of each NCHW level at norm_xy (N, S, 2) -> (N, S, sum C)."""
    grid = norm_xy[:, None]  # (N, 1, S, 2)
    feats = [F.grid_sample(level, grid, mode="bilinear", align_corners=True)[:, :, 0] for level in levels]
    return torch.cat(feats, dim=1).transpose(1, 2)


class TokenEncoder(nn.Module):
    """Args: pyramid_channels (strides 2..32), token_dim, d_model, grid_size, has_object, big_decoder."""

    def __init__(self, pyramid_channels: tuple, token_dim: int, d_model: int, grid_size: int, has_object: bool,
                 big_decoder: bool):
        super().__init__()
        in_dim = sum(pyramid_channels)
        self.linear1 = MLP(in_dim, HAND_MLP_HIDDEN, token_dim, relu_last=True)
        self.obj_channels = pyramid_channels[-2] + pyramid_channels[-1]
        self.linear1_obj = (MLP(self.obj_channels, OBJECT_MLP_HIDDEN[big_decoder], token_dim, relu_last=True)
                            if has_object else None)
        pos_dim = d_model - token_dim
        # Constant for a given grid; computed once, not saved in checkpoints.
        self.register_buffer("pos_code", sine_grid_code(grid_size, grid_size, pos_dim // 2, temperature=100.0)[None],
                             persistent=False)

    def forward(self, pyramid, tokens: Tokens) -> EncodedTokens:
        multiscale = sample_levels(pyramid, tokens.norm)
        hand_feat = self.linear1(multiscale)
        feat, obj_feat = hand_feat, None
        if self.linear1_obj is not None:
            obj_feat = self.linear1_obj(multiscale[..., -self.obj_channels:])
            feat = torch.where((tokens.kind == OBJECT_TOKEN)[..., None], obj_feat, hand_feat)
        n = tokens.norm.shape[0]
        pos = F.grid_sample(self.pos_code.expand(n, -1, -1, -1), tokens.norm[:, None], mode="nearest",
                            align_corners=True)[:, :, 0]
        src = torch.cat((feat.transpose(1, 2), pos), dim=1)
        return EncodedTokens(src, multiscale, hand_feat, obj_feat, pos)
