"""The Keypoint Transformer's inference graph: what the torch backend runs and the ONNX export writes.

The whole pipeline is one graph, image in, last-layer predictions out, keypoint selection included:
the selection is fixed-K (`max_tokens` slots with a validity output), either

- "greedy" (default, the preset's `selection`): the official greedy peak NMS, unrolled for the
  full `max_peaks` iterations (argmax + disk suppression per iteration), so the ONNX graph selects
  exactly the tokens the official code selects; or
- "maxpool": max-pool NMS + top-k (fewer nodes; different tokens on broad blobs, see
  models/kpt/selection.py).

Inputs: `image` (N, 3, S, S) float32 RGB in [0, 1], S = 2 x heatmap_size (256 for the released
presets, 128 for `kpt_h2o3d_3d_lite`). Axis 0 is dynamic.
Outputs (see `output_names(config)`), batch-first, last decoder / encoder layer:
  heatmap (N,128,128); [seg (N,128,128)]; token_xy (N,S,2) 128-grid px; token_kind (N,S) int64;
  token_valid (N,S) bool; joint_class (N,S,C) logits; hand_type (N,2) sigmoid [right, left];
  rel_trans (N,3) m; cam (N,3);
  3D: joints_3d (N,2,20,3) m wrist-relative, InterHand2.6M order without wrist;
  2p5D: joint_2p5d_logits (N,42,3,128), joint_2p5d (N,42,3) int64 bins;
  angles: mano_pose (N,32,3) rad, mano_shape (N,10);
  object: obj_rot6d (N,6), obj_trans (N,3) m, obj_corner_proj (N,16), [obj_left_trans (N,3) m].
"""
from __future__ import annotations

import copy
import dataclasses
import torch
from torch import nn

from .config import KptConfig
from .model import KeypointTransformer

INPUT_NAMES = ("image",)


def output_names(config: KptConfig) -> tuple[str, ...]:
    names = ["heatmap"] + (["seg"] if config.has_object else [])
    names += ["token_xy", "token_kind", "token_valid", "joint_class", "hand_type", "rel_trans", "cam"]
    names += {"3D": ["joints_3d"], "2p5D": ["joint_2p5d_logits", "joint_2p5d"],
              "angles": ["mano_pose", "mano_shape"]}[config.pose_representation]
    if config.has_object:
        names += ["obj_rot6d", "obj_trans", "obj_corner_proj"]
        if config.object_left_translation:
            names.append("obj_left_trans")
    return tuple(names)


class KptInferenceGraph(nn.Module):
    """Tensor-in, tuple-out wrapper of a KeypointTransformer (eval mode), outputs as `output_names`."""

    def __init__(self, model: KeypointTransformer):
        super().__init__()
        self.model = model.eval()
        self.names = output_names(model.config)

    def forward(self, image: torch.Tensor) -> tuple:
        out = self.model(image)
        values = {
            "heatmap": out.heatmap, "seg": out.seg, "token_xy": out.token_xy, "token_kind": out.token_kind,
            "token_valid": out.token_valid, "joint_class": out.joint_class, "hand_type": out.hand_type,
            "rel_trans": out.rel_trans[-1], "cam": out.cam[-1],
        }
        rep = self.model.config.pose_representation
        if rep == "3D":
            values["joints_3d"] = out.joints_3d[-1]
        elif rep == "2p5D":
            values["joint_2p5d_logits"] = out.joint_2p5d_logits[-1]
            values["joint_2p5d"] = out.joint_2p5d
        else:
            values["mano_pose"], values["mano_shape"] = out.mano_pose[-1], out.mano_shape[-1]
        if out.obj_rot6d is not None:
            values.update(obj_rot6d=out.obj_rot6d[-1], obj_trans=out.obj_trans[-1],
                          obj_corner_proj=out.obj_corner_proj[-1])
            if out.obj_left_trans is not None:
                values["obj_left_trans"] = out.obj_left_trans[-1]
        return tuple(values[name] for name in self.names)


def with_selection(model: KeypointTransformer, selection: str | None) -> KeypointTransformer:
    """A view of `model` (same modules and weights; `model` itself is unchanged) with another
    keypoint-selection mode."""
    if selection is None or selection == model.config.selection:
        return model
    view = copy.copy(model)  # shallow: shares the submodules, gets its own `config` attribute
    view.config = dataclasses.replace(model.config, selection=selection)
    return view
