"""Keypoint Transformer (Hampali et al., CVPR 2022) as the official code computes it.

image (N, 3, 256, 256) RGB in [0, 1] (no mean/std) -> ResNet -> U-Net decoder (heat-map,
segmentation, feature pyramid) -> keypoint selection -> tokens -> 6-layer encoder (token identity
per layer) -> decoder with learned queries -> pose heads. See the sibling modules for each stage.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import nn

from ..backbones.resnet import ResNet, ResNetFeatures
from ..common.transformer import AttentionWeightFn, DecoderOutput, EncoderOutput, Transformer, softmax_attention
from .config import KptConfig
from .decoder import UNetDecoder, UNetOutput
from .heads import PoseHeads
from .output import KptOutput
from .queries import memory_mask, query_layout, self_attention_mask
from .selection import Tokens, select_tokens
from .tokens import EncodedTokens, TokenEncoder


class KptTrace(NamedTuple):
    """Intermediate tensors of one forward pass (for parity checks and debugging)."""

    features: ResNetFeatures
    maps: UNetOutput
    tokens: Tokens
    encoded: EncodedTokens
    tgt_mask: torch.Tensor
    memory_mask: Optional[torch.Tensor]
    encoder: EncoderOutput
    decoder: DecoderOutput


class KeypointTransformer(nn.Module):
    """Args: config (KptConfig); attention_weights: attention-weight function of every attention
    layer (softmax by default; OccRobNet plugs in its gated variant)."""

    def __init__(self, config: KptConfig, attention_weights: AttentionWeightFn = softmax_attention):
        super().__init__()
        self.config = config
        self.backbone = ResNet(config.backbone_depth, norm="batch")
        c5 = self.backbone.out_channels
        expansion = c5 // 512
        skips = (64, 64 * expansion, 128 * expansion, 256 * expansion, c5)
        self.decoder = UNetDecoder(skips, config.big_decoder, config.has_object)
        self.tokens = TokenEncoder(self.decoder.pyramid_channels, config.token_dim, config.d_model,
                                   config.heatmap_size, config.has_object, config.big_decoder)
        self.transformer = Transformer(config.d_model, config.nhead, config.enc_layers, config.dec_layers,
                                       config.dim_feedforward, config.dropout, attention_weights)
        self.layout = query_layout(config)
        self.query_embed = nn.Embedding(self.layout.num_queries, config.d_model)
        self.heads = PoseHeads(config, self.layout, c5)
        self.register_buffer("tgt_mask", self_attention_mask(self.layout), persistent=False)

    def forward(self, image: torch.Tensor, tokens: Optional[Tokens] = None,
                trace: bool = False) -> KptOutput | tuple[KptOutput, KptTrace]:
        """image (N, 3, 256, 256) RGB in [0, 1]. `tokens` overrides keypoint selection (ground-truth
        locations in training, or a given peak list); `trace` also returns the intermediates."""
        side = 2 * self.config.heatmap_size
        if image.dim() != 4 or image.shape[1] != 3 or tuple(image.shape[2:]) != (side, side):
            raise ValueError(f"image must be (N, 3, {side}, {side}) RGB in [0, 1], got {tuple(image.shape)}")
        feats = self.backbone(image)
        maps = self.decoder(feats.stem, feats.c2, feats.c3, feats.c4, feats.c5)
        if tokens is None:
            tokens = select_tokens(self.config, maps.heatmap, maps.seg)
        encoded = self.tokens(maps.pyramid, tokens)
        n = image.shape[0]
        src = encoded.src.permute(2, 0, 1)                               # (S, N, C) sequence-first
        query_pos = self.query_embed.weight[:, None].expand(-1, n, -1)  # (Q, N, C)
        mem_mask = memory_mask(self.layout, tokens.kind)
        enc, dec = self.transformer(src, query_pos, key_padding_mask=~tokens.valid, tgt_mask=self.tgt_mask,
                                    memory_mask=mem_mask)
        heads = self.heads(dec.hs)
        out = KptOutput(
            heatmap=maps.heatmap, seg=maps.seg, token_xy=tokens.xy, token_kind=tokens.kind,
            token_valid=tokens.valid, class_logits=self.heads.classify_tokens(enc.normed),
            hand_type_logits=self.heads.hand_type_logits(feats.c5), rel_trans=heads.rel_trans, cam=heads.cam,
            cross_attn_weights=dec.cross_attn_weights, joint_vecs=heads.joint_vecs,
            joint_2p5d_logits=heads.joint_2p5d_logits, mano_pose=heads.mano_pose, mano_shape=heads.mano_shape,
            obj_rot6d=heads.obj_rot6d, obj_trans=heads.obj_trans, obj_corner_proj=heads.obj_corner_proj,
            obj_left_trans=heads.obj_left_trans)
        if trace:
            return out, KptTrace(feats, maps, tokens, encoded, self.tgt_mask, mem_mask, enc, dec)
        return out
