"""Keypoint Transformer's prediction heads (MLPs with 256 hidden units, official names).

- `linear_class` (4 layers): token identity logits on every encoder layer's `inter_norm` output.
- pose, per decoder layer, on the query outputs `hs`:
  "3D" `linear_joint_vecs` -> 3 (parent-relative bone vector, metres);
  "2p5D" `linear_joint_2p5d_{px,py,dep}` -> 128 logits each (1D heat-maps over x, y and
  parent-relative depth bins);
  "angles" `linear_pose` -> 3 (MANO axis-angle) per pose query, `linear_shape` -> 10 betas.
- global query: `linear_rel_trans` -> 3 (left root - right root, metres), `linear_cam` -> 3
  (weak perspective [s, tx, ty], metres -> 128-grid pixels).
- `linear_bottleneck_hand_type` (2048 -> 512 -> 2) on the average-pooled C5: logits [right, left].
- object: `linear_obj_rot` -> 6 (6D rotation, from the rotation query), `linear_obj_rel_trans` -> 3
  (translation rel. to the right root, metres), `linear_obj_corner_proj` -> 16 (8 box corners in
  2D), and for two-hand object data `linear_obj_left_rel_trans` -> 3 (rel. to the left root),
  all from the translation query.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import nn
from torch.nn import functional as F

from ..common import MLP
from .config import KptConfig
from .queries import QueryLayout

HEAT_BINS = 128


class HeadOutputs(NamedTuple):
    """Per decoder layer L, batch-first. None where the configuration has no such head."""

    joint_vecs: Optional[torch.Tensor]      # (L, N, 40, 3) metres
    joint_2p5d_logits: Optional[torch.Tensor]  # (L, N, 42, 3, 128): axis 3 = (x, y, depth)
    mano_pose: Optional[torch.Tensor]       # (L, N, 32, 3) axis-angle, radians
    mano_shape: Optional[torch.Tensor]      # (L, N, 10)
    rel_trans: torch.Tensor                 # (L, N, 3) metres
    cam: torch.Tensor                       # (L, N, 3)
    obj_rot6d: Optional[torch.Tensor]       # (L, N, 6)
    obj_trans: Optional[torch.Tensor]       # (L, N, 3) metres
    obj_corner_proj: Optional[torch.Tensor]  # (L, N, 16)
    obj_left_trans: Optional[torch.Tensor]  # (L, N, 3) metres


def pooled_c5(c5: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, size, size) -> (N, C) spatial mean, computed as the official average pooling (same
    rounding). `size` is static (from the config) so that the pooling exports to ONNX."""
    return F.avg_pool2d(c5, size).flatten(1)


def _query_mlp(d_model: int, out_dim: int) -> MLP:
    return MLP(d_model, d_model, out_dim, num_layers=3)


class PoseHeads(nn.Module):
    """All of Keypoint Transformer's prediction heads for one configuration (see the module docstring).

    Args: config (KptConfig: pose representation, object heads, d_model C); layout (QueryLayout: which
    decoder query feeds which head); c5_channels: channels of the backbone's C5 (hand-type head).

    forward(hs): hs (L, Q, N, C) decoder outputs (sequence-first, after the final LayerNorm) ->
    `HeadOutputs`, batch-first per decoder layer: bone vectors / translations in metres, MANO pose in
    radians, 2.5D and identity outputs as logits, camera as weak perspective (metres -> 128-grid px).
    `classify_tokens` (encoder outputs -> identity logits) and `hand_type_logits` (C5 -> (N, 2)
    [right, left] logits) are called separately because they read other inputs.
    """

    def __init__(self, config: KptConfig, layout: QueryLayout, c5_channels: int):
        super().__init__()
        d = config.d_model
        self.layout = layout
        self.rep = config.pose_representation
        self.linear_class = MLP(d, d, config.num_classes, num_layers=4)
        if self.rep == "3D":
            self.linear_joint_vecs = _query_mlp(d, 3)
        elif self.rep == "2p5D":
            self.linear_joint_2p5d_px = _query_mlp(d, HEAT_BINS)
            self.linear_joint_2p5d_py = _query_mlp(d, HEAT_BINS)
            self.linear_joint_2p5d_dep = _query_mlp(d, HEAT_BINS)
        else:
            self.linear_pose = _query_mlp(d, 3)
            self.linear_shape = _query_mlp(d, config.num_shape_params)
        self.linear_rel_trans = _query_mlp(d, 3)
        self.linear_cam = _query_mlp(d, 3)
        self.linear_bottleneck_hand_type = MLP(c5_channels, 512, 2, num_layers=2)
        self.c5_size = 2 * config.heatmap_size // 32  # input side / 32
        self.has_object = config.has_object
        if config.has_object:
            self.linear_obj_rot = _query_mlp(d, 6)
            self.linear_obj_rel_trans = _query_mlp(d, 3)
            self.linear_obj_corner_proj = _query_mlp(d, 16)
        self.linear_obj_left_rel_trans = _query_mlp(d, 3) if config.object_left_translation else None

    def classify_tokens(self, normed: torch.Tensor) -> torch.Tensor:
        """normed (L, S, N, C) encoder outputs after inter_norm -> logits (L, N, S, classes)."""
        return self.linear_class(normed).transpose(1, 2)

    def hand_type_logits(self, c5: torch.Tensor) -> torch.Tensor:
        """c5 (N, C, h, w) -> logits (N, 2) [right, left] from the spatial mean."""
        return self.linear_bottleneck_hand_type(pooled_c5(c5, self.c5_size))

    def forward(self, hs: torch.Tensor) -> HeadOutputs:
        """hs (L, Q, N, C) decoder outputs after the final LayerNorm -> HeadOutputs."""
        hs = hs.transpose(1, 2)  # (L, N, Q, C)
        lay = self.layout
        joints = hs[:, :, :lay.joint_queries]
        glob = hs[:, :, lay.global_index]
        vecs = logits = pose = shape = None
        if self.rep == "3D":
            vecs = self.linear_joint_vecs(joints)
        elif self.rep == "2p5D":
            logits = torch.stack((self.linear_joint_2p5d_px(joints), self.linear_joint_2p5d_py(joints),
                                  self.linear_joint_2p5d_dep(joints)), dim=3)
        else:
            pose = self.linear_pose(joints)
            shape = self.linear_shape(glob)
        rot = trans = corners = left = None
        if self.has_object:
            rot = self.linear_obj_rot(hs[:, :, lay.obj_rot_index])
            obj_q = hs[:, :, lay.obj_trans_index]
            trans = self.linear_obj_rel_trans(obj_q)
            corners = self.linear_obj_corner_proj(obj_q)
            if self.linear_obj_left_rel_trans is not None:
                left = self.linear_obj_left_rel_trans(obj_q)
        return HeadOutputs(vecs, logits, pose, shape, self.linear_rel_trans(glob), self.linear_cam(glob),
                           rot, trans, corners, left)
