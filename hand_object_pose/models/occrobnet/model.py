"""OccRobNet as a Keypoint Transformer variant.

image (N, 3, 256, 256) RGB in [0, 1] -> ResNet -> FPN (P2..P5) -> CIET on P2 -> per-joint heat-maps
(42 = 21 per hand, native InterHand2.6M order) and object segmentation, upsampled to the 128 grid
-> keypoint selection on the per-pixel max over joints (KPT's detectors) -> tokens sampled from
[CIET(P2), P3, P4, P5] with KPT's token encoder -> transformer with sigmoid ⊙ softmax attention ->
KPT's pose heads. Choices are documented in config.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

from ..backbones.resnet import ResNet
from ..common.transformer import Transformer
from ..kpt.heads import PoseHeads
from ..kpt.output import KptOutput
from ..kpt.queries import memory_mask, query_layout, self_attention_mask
from ..kpt.selection import Tokens, select_tokens
from ..kpt.tokens import TokenEncoder
from .attention import ATTENTION_WEIGHTS
from .ciet import CIET
from .config import OccRobNetConfig
from .fpn import FPN

NUM_JOINTS = 42


@dataclass
class OccRobNetOutput(KptOutput):
    """KptOutput (see kpt/output.py) where `heatmap` (N, 128, 128) is the map the tokens were selected
    from (per-pixel max, or sum, over joints), plus the per-joint maps:

    joint_heatmaps: (N, 42, 128, 128) raw per-joint heat-maps, native order (right 0-20, left 21-41),
        trained against one 255-scaled Gaussian per joint.
    """

    joint_heatmaps: Optional[torch.Tensor] = None


def _map_head(channels: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
                         nn.ReLU(inplace=True), nn.Conv2d(channels, out, 1))


class OccRobNet(nn.Module):
    """Args: config (OccRobNetConfig). forward(image, tokens=None) -> OccRobNetOutput."""

    def __init__(self, config: OccRobNetConfig):
        super().__init__()
        self.config = config
        self.backbone = ResNet(config.backbone_depth, norm="batch")
        c5 = self.backbone.out_channels
        expansion = c5 // 512
        self.fpn = FPN(tuple(64 * expansion * 2 ** i for i in range(4)), config.fpn_channels)
        width = config.fpn_channels
        self.ciet = (CIET(width, config.ciet_layers, kernel=config.ciet_kernel,
                          attention_groups=config.ciet_attention_groups, reduction=config.ciet_reduction,
                          key_groups=config.ciet_key_groups) if config.use_ciet else nn.Identity())
        self.joint_head = _map_head(width, NUM_JOINTS)
        self.seg_head = _map_head(width, 1) if config.has_object else None
        self.tokens = TokenEncoder((width,) * 4, config.token_dim, config.d_model, config.heatmap_size,
                                   config.has_object, big_decoder=False)
        self.transformer = Transformer(config.d_model, config.nhead, config.enc_layers, config.dec_layers,
                                       config.dim_feedforward, config.dropout, ATTENTION_WEIGHTS[config.attention])
        self.layout = query_layout(config)
        self.query_embed = nn.Embedding(self.layout.num_queries, config.d_model)
        self.heads = PoseHeads(config, self.layout, c5)
        self.register_buffer("tgt_mask", self_attention_mask(self.layout), persistent=False)

    def _to_grid(self, maps: torch.Tensor) -> torch.Tensor:
        size = self.config.heatmap_size
        return F.interpolate(maps, size=(size, size), mode="bilinear", align_corners=False)

    def forward(self, image: torch.Tensor, tokens: Optional[Tokens] = None) -> OccRobNetOutput:
        """image (N, 3, 256, 256) RGB in [0, 1]; `tokens` overrides keypoint selection (e.g.
        `kpt.targets.ground_truth_tokens` early in training)."""
        side = 2 * self.config.heatmap_size
        if image.dim() != 4 or image.shape[1] != 3 or tuple(image.shape[2:]) != (side, side):
            raise ValueError(f"image must be (N, 3, {side}, {side}) RGB in [0, 1], got {tuple(image.shape)}")
        feats = self.backbone(image)
        p2, p3, p4, p5 = self.fpn(feats.c2, feats.c3, feats.c4, feats.c5)
        refined = self.ciet(p2)
        joint_maps = self._to_grid(self.joint_head(refined))                       # (N, 42, 128, 128)
        seg = self._to_grid(self.seg_head(refined))[:, 0] if self.seg_head is not None else None
        heatmap = joint_maps.amax(dim=1) if self.config.token_map == "max" else joint_maps.sum(dim=1)
        if tokens is None:
            tokens = select_tokens(self.config, heatmap, seg)
        encoded = self.tokens((refined, p3, p4, p5), tokens)
        n = image.shape[0]
        src = encoded.src.permute(2, 0, 1)                                          # (S, N, C)
        query_pos = self.query_embed.weight[:, None].expand(-1, n, -1)
        enc, dec = self.transformer(src, query_pos, key_padding_mask=~tokens.valid, tgt_mask=self.tgt_mask,
                                    memory_mask=memory_mask(self.layout, tokens.kind))
        heads = self.heads(dec.hs)
        return OccRobNetOutput(
            heatmap=heatmap, seg=seg, token_xy=tokens.xy, token_kind=tokens.kind, token_valid=tokens.valid,
            class_logits=self.heads.classify_tokens(enc.normed), hand_type_logits=self.heads.hand_type_logits(feats.c5),
            rel_trans=heads.rel_trans, cam=heads.cam, cross_attn_weights=dec.cross_attn_weights,
            joint_vecs=heads.joint_vecs, joint_2p5d_logits=heads.joint_2p5d_logits, mano_pose=heads.mano_pose,
            mano_shape=heads.mano_shape, obj_rot6d=heads.obj_rot6d, obj_trans=heads.obj_trans,
            obj_corner_proj=heads.obj_corner_proj, obj_left_trans=heads.obj_left_trans, joint_heatmaps=joint_maps)
