"""Import the authors' Keypoint Transformer checkpoints (`.pth.tar`) into `KeypointTransformer`.

Official layout: `torch.save({"epoch", "network", "optimizer", "lr_scheduler"})`, where `network`
is a DataParallel state dict (every key starts with `module.`). The official loader also renames
old keys: under `module.decoder_net.`, a key lacking `resnet_decoder.` gets it inserted after
character 19 (i.e. right after `module.decoder_net.`). This module applies the same rules, then
maps the official names onto ours, which differ only by a module prefix:

    backbone_net.resnet.*          -> backbone.*
    decoder_net.resnet_decoder.*   -> decoder.*
    linear1.*, linear1_obj.*       -> tokens.linear1.*, tokens.linear1_obj.*
    transformer.*, query_embed.*   -> unchanged
    linear_<head>.*                -> heads.linear_<head>.*

Official tensors that the official forward never reads are listed in `UNUSED` with the reason and
dropped; any other unmapped key is an error, and the result is loaded with `strict=True`, so nothing
is silently lost.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from .config import KptConfig

PREFIX_MAP = (
    ("backbone_net.resnet.", "backbone."),
    ("decoder_net.resnet_decoder.", "decoder."),
    ("linear1.", "tokens.linear1."),
    ("linear1_obj.", "tokens.linear1_obj."),
    ("transformer.", "transformer."),
    ("query_embed.", "query_embed."),
)
HEAD_PATTERN = re.compile(r"^(linear_[a-z0-9_]+)\.")

# (regex on official key, condition on config or None, reason)
UNUSED = (
    (r"^norm1\.", None, "LayerNorm `norm1` over the token features: constructed by the official model, "
                        "never applied in its forward"),
    (r"^linear_hand_type\.", None, "head `linear_hand_type` on the queries: constructed, never called (hand type "
                                   "comes from `linear_bottleneck_hand_type` on pooled C5)"),
    (r"^linear_shape\.", lambda c: c.pose_representation != "angles",
     "head `linear_shape`: constructed for every pose representation, read only by 'angles'"),
)


@dataclass
class ConversionReport:
    mapped: dict = field(default_factory=dict)   # official key -> our key
    unused: dict = field(default_factory=dict)   # official key -> reason


def read_official_checkpoint(path: str | Path) -> "OrderedDict[str, torch.Tensor]":
    """Official `.pth.tar` -> official-named state dict (no `module.`, old keys renamed).

    Loads with `weights_only=True` on the CPU; accepts a bare state dict as well as the training dict.
    """
    data = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(data, Mapping) and "network" in data:
        data = data["network"]
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a state dict or a dict with key 'network', got {type(data).__name__}")
    return normalise_official_keys(data)


def normalise_official_keys(state: Mapping) -> "OrderedDict[str, torch.Tensor]":
    """Apply the official loader's old-key rename and strip the DataParallel `module.` prefix."""
    out = OrderedDict()
    for key, value in state.items():
        if key.startswith("module.decoder_net.") and "resnet_decoder." not in key:
            key = key[:19] + "resnet_decoder." + key[19:]
        elif key.startswith("decoder_net.") and "resnet_decoder." not in key:
            key = key[:12] + "resnet_decoder." + key[12:]
        if key.startswith("module."):
            key = key[len("module."):]
        out[key] = value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
    return out


def _unused_reason(key: str, config: KptConfig) -> str | None:
    for pattern, condition, reason in UNUSED:
        if re.match(pattern, key) and (condition is None or condition(config)):
            return reason
    return None


def _our_key(key: str) -> str | None:
    for official, ours in PREFIX_MAP:
        if key.startswith(official):
            return ours + key[len(official):]
    if HEAD_PATTERN.match(key):
        return "heads." + key
    return None


def convert_state_dict(official: Mapping,
                       config: KptConfig) -> tuple["OrderedDict[str, torch.Tensor]", ConversionReport]:
    """Official-named state dict (numpy or torch values, with or without `module.`) -> ours + report."""
    official = normalise_official_keys(official)
    ours, report, unknown = OrderedDict(), ConversionReport(), []
    for key, value in official.items():
        reason = _unused_reason(key, config)
        if reason is not None:
            report.unused[key] = reason
            continue
        target = _our_key(key)
        if target is None:
            unknown.append(key)
            continue
        ours[target] = value
        report.mapped[key] = target
    if unknown:
        raise KeyError(f"official keys with no mapping and no 'unused' rule: {unknown[:10]}"
                       f"{' ...' if len(unknown) > 10 else ''} ({len(unknown)} in all)")
    return ours, report


def load_official(model: torch.nn.Module, official: Mapping) -> ConversionReport:
    """Convert and load strictly into `model` (a KeypointTransformer); raises on any mismatch."""
    ours, report = convert_state_dict(official, model.config)
    result = model.load_state_dict(ours, strict=False)
    problems = []
    if result.missing_keys:
        problems.append(f"missing in checkpoint: {result.missing_keys[:10]}")
    if result.unexpected_keys:
        problems.append(f"not in model: {result.unexpected_keys[:10]}")
    if problems:
        raise KeyError(f"official checkpoint does not fit this KptConfig ({model.config}): " + "; ".join(problems))
    return report


def infer_config(official: Mapping, **overrides) -> KptConfig:
    """Guess the KptConfig of an official state dict from its keys and shapes."""
    keys = normalise_official_keys(official)
    has = lambda prefix: any(k.startswith(prefix) for k in keys)  # noqa: E731
    if has("linear_joint_vecs."):
        rep = "3D"
    elif has("linear_joint_2p5d_px."):
        rep = "2p5D"
    elif has("linear_pose."):
        rep = "angles"
    else:
        raise KeyError("no pose head (linear_joint_vecs / linear_joint_2p5d_* / linear_pose) in the checkpoint")
    dec_layers = len({k.split(".")[3] for k in keys if k.startswith("transformer.decoder.layers.")})
    enc_layers = len({k.split(".")[3] for k in keys if k.startswith("transformer.encoder.layers.")})
    blocks3 = len({k.split(".")[3] for k in keys if k.startswith("backbone_net.resnet.layer3.")})
    depth = 50 if has("backbone_net.resnet.layer1.0.conv3.") else (34 if blocks3 == 6 else 18)
    fields = dict(pose_representation=rep, has_object=has("linear_obj_rot."),
                  object_left_translation=has("linear_obj_left_rel_trans."), backbone_depth=depth,
                  big_decoder=not has("decoder_net.resnet_decoder.conv0d."), enc_layers=enc_layers,
                  dec_layers=dec_layers)
    fields.update(overrides)
    return KptConfig(**fields)
