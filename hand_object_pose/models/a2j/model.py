"""A2J-Transformer (Jiang et al., CVPR 2023): RGB crop -> 42 joints of two hands in a 256^3 cube.

Pipeline (official InterHand2.6M configuration):
  crop (N, 3, 256, 256) in [0, 1] -> ResNet-50 (frozen BN, dilated layer4) C3 32x32, C4 16x16,
  C5 16x16 -> input projections (1x1 conv + GroupNorm on C3/C4/C5, 3x3 stride-2 conv + GroupNorm
  on C5 for an 8x8 level) -> 1600 tokens + sine position code + learned level embedding ->
  6 deformable encoder layers -> 6 decoder layers over the 768 anchor queries -> per layer offset
  head (x256) and anchor-weight head -> A2J aggregation.
"""
from __future__ import annotations

import torch
from torch import nn

from hand_object_pose.models.backbones import ResNet
from hand_object_pose.models.common import MLP, sine_grid_code

from .anchors import anchor_grid
from .config import A2JConfig
from .heads import aggregate, presence_from_confidence, weight_peakedness
from .output import CONFIDENCE_FROM_ANCHOR_WEIGHTS, CONFIDENCE_FROM_HEAD, A2JOutput
from .transformer import AnchorDecoder, DeformableEncoder

BACKBONE_CHANNELS = (512, 1024, 2048)   # ResNet-50 C3, C4, C5
GROUPNORM_GROUPS = 32
TRAINED_BACKBONE_STAGES = ("layer2.", "layer3.", "layer4.")


def level_shapes(input_size: int) -> list[tuple[int, int]]:
    """(H, W) of the 4 levels: C3 (stride 8), C4 (16), C5 (16, dilated), extra 3x3 s2 conv on C5."""
    c4 = input_size // 16
    extra = (c4 - 1) // 2 + 1
    return [(input_size // 8,) * 2, (c4, c4), (c4, c4), (extra, extra)]


class A2JTransformer(nn.Module):
    """A2J-Transformer: RGB crop -> 42 joints (both hands) in the output cube, plus confidences.

    Args: config (A2JConfig; the default is the official InterHand2.6M model).

    forward(image, all_layers=None, trace=None): image (N, 3, S, S) RGB in [0, 1] (uint8 / 255, no
    mean/std), S = config.input_size (256) -> `A2JOutput`: joints (N, 42, 3) in the output cube
    (x, y crop pixels scaled to config.output_size; z = root-relative depth mapped to [0, output_size]
    over config.depth_range_mm), InterHand2.6M order, right hand 0-20 then left 21-41; joint
    confidence (N, 42) and hand presence (N, 2) [right, left] in [0, 1]; anchor weights (N, A, 42),
    A = config.num_anchors; with all_layers, every decoder layer's joints and weighted anchor
    positions (L, N, 42, 3) for `A2JCriterion`. `A2JOutput.canonical_joints()` gives the
    project's wrist-first order; `output.output_to_camera` gives metres in the camera frame.
    """

    def __init__(self, config: A2JConfig = A2JConfig()):
        super().__init__()
        self.config = c = config
        d = c.d_model
        self.backbone = ResNet(c.backbone_depth, norm="frozen", dilate_last_stage=True)
        # As the official code: the stem and layer1 are not trained (layer2-4 are).
        for name, param in self.backbone.named_parameters():
            if not name.startswith(TRAINED_BACKBONE_STAGES):
                param.requires_grad_(False)
        projections = [nn.Sequential(nn.Conv2d(ch, d, 1), nn.GroupNorm(GROUPNORM_GROUPS, d))
                       for ch in BACKBONE_CHANNELS]
        projections.append(nn.Sequential(nn.Conv2d(BACKBONE_CHANNELS[-1], d, 3, 2, 1), nn.GroupNorm(GROUPNORM_GROUPS, d)))
        self.input_proj = nn.ModuleList(projections)
        self.level_embed = nn.Parameter(torch.randn(c.n_levels, d))
        layer_kwargs = dict(ffn_dim=c.ffn_dim, dropout=c.dropout, n_levels=c.n_levels, n_heads=c.n_heads,
                            n_points=c.n_points)
        self.encoder = DeformableEncoder(c.enc_layers, d_model=d, **layer_kwargs)
        self.decoder = AnchorDecoder(c.dec_layers, d, **layer_kwargs)
        self.query_content = nn.Parameter(torch.randn(c.num_anchors, d))
        # Anchors (A, 3) in the output cube; trained by the official code (see config.train_anchors).
        self.anchors = nn.Parameter(anchor_grid(c.anchors_per_side, c.anchor_depths, c.output_size),
                                    requires_grad=c.train_anchors)
        self.offset_heads = nn.ModuleList(MLP(d, d, c.num_joints * 3, 3) for _ in range(c.dec_layers))
        self.weight_heads = nn.ModuleList(MLP(d, d, c.num_joints, 3) for _ in range(c.dec_layers))
        # Optional heads (not in the official checkpoint).
        self.presence_head = MLP(d, d, 2, 2) if c.presence_head else None
        self.joint_confidence_head = nn.Linear(d, 1) if c.confidence_head else None
        self.spatial_shapes = level_shapes(c.input_size)
        pos = torch.cat([sine_grid_code(h, w, d // 2, 10000.0, offset=-0.5).flatten(1).t()
                         for h, w in self.spatial_shapes])
        self.register_buffer("position_code", pos, persistent=False)                # (S, d)
        level_of_token = [lvl for lvl, (h, w) in enumerate(self.spatial_shapes) for _ in range(h * w)]
        self.register_buffer("level_index", torch.tensor(level_of_token), persistent=False)   # (S,)

    def tokens(self, image: torch.Tensor, trace: dict | None = None) -> torch.Tensor:
        """image (N, 3, S, S) -> flattened projected levels (N, 1600, d)."""
        feats = self.backbone(image)
        levels = [proj(x) for proj, x in zip(self.input_proj, (feats.c3, feats.c4, feats.c5, feats.c5))]
        if trace is not None:
            trace.update(c3=feats.c3, c4=feats.c4, c5=feats.c5, levels=levels)
        return torch.cat([x.flatten(2) for x in levels], dim=2).transpose(1, 2)

    def forward(self, image: torch.Tensor, all_layers: bool | None = None, trace: dict | None = None) -> A2JOutput:
        """image: (N, 3, S, S) RGB in [0, 1] (uint8 / 255, no mean/std), S = config.input_size.

        all_layers: run the offset/weight heads on every decoder layer (default: in training mode
        only; inference needs the last layer alone). `trace` collects intermediates for parity.
        """
        c = self.config
        if image.dim() != 4 or tuple(image.shape[1:]) != (3, c.input_size, c.input_size):
            raise ValueError(f"image must be (N, 3, {c.input_size}, {c.input_size}) RGB in [0, 1], "
                             f"got {tuple(image.shape)}")
        if all_layers is None:
            all_layers = self.training
        n = image.shape[0]
        src = self.tokens(image, trace)
        pos = (self.position_code + self.level_embed[self.level_index])[None].expand(n, -1, -1)
        memory, enc_outputs = self.encoder(src, pos, self.spatial_shapes, return_all=True)
        tgt = self.query_content[None].expand(n, -1, -1)
        anchors_unit = (self.anchors / c.output_size)[None].expand(n, -1, -1)
        hs = self.decoder(tgt, anchors_unit, memory, self.spatial_shapes, trace)
        if trace is not None:
            trace.update(encoder_layers=enc_outputs, memory=memory, hs=hs)

        layers = range(len(hs)) if all_layers else [len(hs) - 1]
        joints, anchor_pos, offsets_raw, logits = [], [], [], []
        for lid in layers:
            raw = self.offset_heads[lid](hs[lid])
            logit = self.weight_heads[lid](hs[lid])
            j, a, weights = aggregate(self.anchors, raw.view(n, c.num_anchors, c.num_joints, 3) * c.output_size, logit)
            joints.append(j)
            anchor_pos.append(a)
            offsets_raw.append(raw)
            logits.append(logit)
        if trace is not None:
            trace.update(offsets_raw=offsets_raw, anchor_weight_logits=logits)
        return self._output(hs[-1], joints, anchor_pos, weights, all_layers)

    def _output(self, hs_last, joints, anchor_pos, weights, all_layers) -> A2JOutput:
        conf_logits = presence_logits = None
        if self.joint_confidence_head is not None:
            joint_feat = torch.einsum("naj,nad->njd", weights, hs_last)          # (N, J, d) weighted query features
            conf_logits = self.joint_confidence_head(joint_feat).squeeze(-1)
            confidence, conf_source = conf_logits.sigmoid(), CONFIDENCE_FROM_HEAD
        else:
            confidence, conf_source = weight_peakedness(weights), CONFIDENCE_FROM_ANCHOR_WEIGHTS
        if self.presence_head is not None:
            presence_logits = self.presence_head(hs_last.mean(dim=1))
            presence, presence_source = presence_logits.sigmoid(), CONFIDENCE_FROM_HEAD
        else:
            presence, presence_source = presence_from_confidence(confidence), conf_source
        return A2JOutput(
            joints=joints[-1], joint_confidence=confidence, hand_presence=presence,
            confidence_source=conf_source, presence_source=presence_source, anchor_weights=weights,
            joints_per_layer=torch.stack(joints) if all_layers else None,
            anchor_positions_per_layer=torch.stack(anchor_pos) if all_layers else None,
            joint_confidence_logits=conf_logits, hand_presence_logits=presence_logits)
