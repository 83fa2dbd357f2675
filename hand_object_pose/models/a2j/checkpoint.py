"""Import the authors' A2J-Transformer checkpoint (`snapshot_*.pth.tar`) into `A2JTransformer`.

The release file is `{'epoch', 'network', 'optimizer'}` with `network` a DataParallel state dict
(`module.` prefix). Every official tensor is either renamed onto our module tree by the rules in
`RENAME_RULES`, or listed in `UNUSED_RULES` with the reason it is dropped; a key matched by neither
is an error, and the load into our model is strict (only our optional heads may stay untouched).
The anchors come from `refpoint_embed.weight` as stored (they may have moved in training).

The official file has no hand-presence / joint-confidence heads. When the model was built with
them, `load_official(..., heads=...)` decides explicitly what happens (and logs a warning):
"derive" (default) removes them so the outputs fall back to the anchor-weight estimates and say so
(`confidence_source == "anchor_weights"`), "untrained" keeps them at their random initialisation
to be trained next (their outputs mean nothing until then), "raise" refuses with a ValueError.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from .model import A2JTransformer

RENAME_RULES: tuple[tuple[str, str], ...] = (
    (r"^backbone\.0\.body\.(.+)$", r"backbone.\1"),
    (r"^input_proj\.(\d)\.([01])\.(weight|bias)$", r"input_proj.\1.\2.\3"),
    (r"^transformer\.level_embed$", "level_embed"),
    (r"^transformer\.(encoder|decoder)\.layers\.(\d+)\.(linear[12])\.(weight|bias)$", r"\1.layers.\2.ffn.\3.\4"),
    (r"^transformer\.encoder\.layers\.(\d+)\.(self_attn|norm[12])\.(.+)$", r"encoder.layers.\1.\2.\3"),
    (r"^transformer\.decoder\.layers\.(\d+)\.(cross_attn|self_attn|norm[123])\.(.+)$", r"decoder.layers.\1.\2.\3"),
    (r"^transformer\.decoder\.(query_scale|ref_point_head)\.layers\.(\d)\.(weight|bias)$", r"decoder.\1.layers.\2.\3"),
    (r"^tgt_embed\.weight$", "query_content"),
    (r"^refpoint_embed\.weight$", "anchors"),
    (r"^bbox_embed_keypoints\.(\d+)\.layers\.(\d)\.(weight|bias)$", r"offset_heads.\1.layers.\2.\3"),
    (r"^anchor_weights\.(\d+)\.layers\.(\d)\.(weight|bias)$", r"weight_heads.\1.layers.\2.\3"),
)

UNUSED_RULES: tuple[tuple[str, str], ...] = (
    (r"^bbox_embed_anchor\.\d+\.layers\.\d\.(weight|bias)$",
     "anchor-update MLP: with fix_anchor=True its output never changes the reference points, so it "
     "has no effect on any output"),
    (r"^transformer\.decoder\.bbox_embed\.\d+\.layers\.\d\.(weight|bias)$",
     "the same anchor-update MLPs registered a second time under the decoder (identical tensors), inert"),
    (r"\.num_batches_tracked$", "BatchNorm step counter; the backbone uses frozen statistics"),
)

OPTIONAL_PREFIXES = ("presence_head.", "joint_confidence_head.")
# Optional head attribute of `A2JTransformer` -> the `A2JConfig` flag that builds it.
OPTIONAL_HEADS = {"presence_head": "presence_head", "joint_confidence_head": "confidence_head"}
HEAD_POLICIES = ("derive", "untrained", "raise")

log = logging.getLogger(__name__)


@dataclass
class Conversion:
    state_dict: "OrderedDict[str, torch.Tensor]"          # our names -> tensors
    renamed: dict = field(default_factory=dict)           # official name -> our name
    unused: dict = field(default_factory=dict)            # official name -> reason


def _as_tensor(value) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value, copy=True))
    raise TypeError(f"state-dict values must be tensors or numpy arrays, got {type(value).__name__}")


def strip_data_parallel(state_dict: Mapping) -> "OrderedDict":
    """Remove the `module.` prefix of a DataParallel state dict (keys without it are kept as is)."""
    return OrderedDict((k[len("module."):] if k.startswith("module.") else k, v) for k, v in state_dict.items())


def convert_state_dict(official: Mapping) -> Conversion:
    """Official (prefix-free) state dict -> our names. Raises KeyError listing unmatched keys."""
    result = Conversion(OrderedDict())
    unknown = []
    for key, value in official.items():
        for pattern, target in RENAME_RULES:
            if re.match(pattern, key):
                new = re.sub(pattern, target, key)
                result.state_dict[new] = _as_tensor(value)
                result.renamed[key] = new
                break
        else:
            reason = next((why for pattern, why in UNUSED_RULES if re.search(pattern, key)), None)
            if reason is None:
                unknown.append(key)
            else:
                result.unused[key] = reason
    if unknown:
        raise KeyError(f"{len(unknown)} official tensors match no conversion rule: {unknown[:10]}")
    return result


def load_converted(model: A2JTransformer, conversion: Conversion) -> list[str]:
    """Strictly load a conversion into `model`; returns the optional-head keys left at their init.

    Raises RuntimeError naming missing or unexpected keys (other than the optional heads).
    """
    missing, unexpected = model.load_state_dict(conversion.state_dict, strict=False)
    really_missing = [k for k in missing if not k.startswith(OPTIONAL_PREFIXES)]
    if really_missing or unexpected:
        raise RuntimeError(f"checkpoint does not fit the model: missing {really_missing[:10]} "
                           f"(of {len(really_missing)}), unexpected {list(unexpected)[:10]} (of {len(unexpected)})")
    return [k for k in missing if k.startswith(OPTIONAL_PREFIXES)]


def read_official_checkpoint(path: str | Path) -> "OrderedDict[str, torch.Tensor]":
    """Read `snapshot_*.pth.tar` (tensors only, `weights_only=True`) and return the prefix-free network dict."""
    checkpoint = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"{path}: expected a dict checkpoint, got {type(checkpoint).__name__}")
    network = checkpoint.get("network", checkpoint)
    if not isinstance(network, Mapping):
        raise ValueError(f"{path}: 'network' entry is not a state dict")
    return strip_data_parallel(network)


def load_official(model: A2JTransformer, source: str | Path | Mapping, heads: str = "derive") -> Conversion:
    """Load the official checkpoint (a path or an official-format state dict) into `model`.

    heads: what to do with the model's optional heads, which the official file never contains
    (ignored when the model has none):
      "derive"    remove them from `model` (and its config), so `joint_confidence` / `hand_presence`
                  come from the anchor-weight distribution and their sources say "anchor_weights";
      "untrained" keep them at their random initialisation, for training them next: until then
                  their outputs (source "head") are noise;
      "raise"     raise ValueError (the caller needs trained heads, which this file cannot give).
    A warning is logged in every case where the model has heads.
    """
    if heads not in HEAD_POLICIES:
        raise ValueError(f"heads must be one of {HEAD_POLICIES}, got {heads!r}")
    official = read_official_checkpoint(source) if isinstance(source, (str, Path)) else strip_data_parallel(source)
    conversion = convert_state_dict(official)
    present = [name for name in OPTIONAL_HEADS if getattr(model, name, None) is not None]
    if present and heads == "raise":
        message = (f"the official A2J-Transformer checkpoint has no weights for the optional head(s) {present}; "
                   "build the model with presence_head=False, confidence_head=False, or load with "
                   "heads='derive' (anchor-weight estimates) or heads='untrained' (to train them)")
        log.warning(message)
        raise ValueError(message)
    left_at_init = load_converted(model, conversion)
    if present and heads == "derive":
        for name in present:
            setattr(model, name, None)
        model.config = dataclasses.replace(model.config, **{OPTIONAL_HEADS[name]: False for name in present})
        log.warning("official A2J-Transformer checkpoint has no %s: removed from the model, joint confidence "
                    "and hand presence now come from the anchor-weight distribution (source 'anchor_weights')",
                    " / ".join(present))
    elif present:
        log.warning("official A2J-Transformer checkpoint has no %s: %d tensors left at their random "
                    "initialisation; their outputs are meaningless until trained", " / ".join(present),
                    len(left_at_init))
    return conversion
