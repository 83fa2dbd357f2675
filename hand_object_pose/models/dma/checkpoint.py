"""Import of the authors' DMA checkpoints (`snapshot_ho3d.pth.tar`, `snapshot_dexycb.pth.tar`).

Format (models.md section 4.4): a dict with `network` (the state dict of a DataParallel-wrapped
model, keys prefixed `module.`; the SyncBatchNorm conversion keeps plain BatchNorm names) and `epoch`.
Our module names equal the official ones, so the map is a prefix strip; every official tensor is
either loaded or listed in `UNUSED_PREFIXES` with the reason. Nothing is dropped silently: an
unknown key, a missing key or a shape mismatch raises.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

# Official tensors we deliberately do not load, with the reason.
UNUSED_PREFIXES = {
    "human_model_layer.": "MANO layer buffers (faces, J_regressor, shape/pose blend shapes, ...): the hand topology "
                          "and joint regressor come from the user's MANO files (or the stand-in hand / parity-kit "
                          "arrays) through HandTopology, never from the network checkpoint",
    "renderer.": "neural_renderer leftovers: the renderer object is constructed but unused by the forward",
}


@dataclass
class ConversionReport:
    loaded: list = field(default_factory=list)            # our keys filled from the checkpoint
    unused: dict = field(default_factory=dict)            # official key -> reason it is not loaded

    def format(self) -> str:
        lines = [f"loaded {len(self.loaded)} tensors; {len(self.unused)} official tensors unused:"]
        lines += [f"  {key}: {reason}" for key, reason in sorted(self.unused.items())]
        return "\n".join(lines)


def read_official_checkpoint(path: str | Path) -> "OrderedDict[str, torch.Tensor]":
    """Load `network` from an official `.pth.tar` (weights only, no pickle code execution)."""
    blob = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(blob, Mapping) or "network" not in blob:
        raise ValueError(f"{path}: expected a dict with a 'network' state dict (official DMA snapshot), "
                         f"got {type(blob).__name__} with keys {list(blob)[:5] if isinstance(blob, Mapping) else ''}")
    return OrderedDict(blob["network"])


def convert_state_dict(official: Mapping, model: torch.nn.Module) -> tuple["OrderedDict[str, torch.Tensor]", ConversionReport]:
    """Official (possibly `module.`-prefixed) tensors -> a strict state dict for `model`.

    numpy arrays are accepted (parity kits). Raises KeyError / ValueError on any unmapped, missing or
    mis-shaped tensor.
    """
    expected = model.state_dict()
    converted, report, unknown = OrderedDict(), ConversionReport(), []
    for key, value in official.items():
        name = key[len("module."):] if key.startswith("module.") else key
        reason = next((why for prefix, why in UNUSED_PREFIXES.items() if name.startswith(prefix)), None)
        if reason is not None:
            report.unused[name] = reason
            continue
        if name not in expected:
            unknown.append(name)
            continue
        tensor = torch.as_tensor(np.asarray(value)) if not isinstance(value, torch.Tensor) else value
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise ValueError(f"official tensor {name} has shape {tuple(tensor.shape)}, "
                             f"model expects {tuple(expected[name].shape)}")
        converted[name] = tensor.to(expected[name].dtype)
        report.loaded.append(name)
    missing = [k for k in expected if k not in converted]
    if unknown or missing:
        raise KeyError(f"checkpoint does not match the DMA model: unknown official keys {unknown[:10]} "
                       f"({len(unknown)} in all); model keys missing from the checkpoint {missing[:10]} "
                       f"({len(missing)} in all)")
    return converted, report


def load_official_weights(model: torch.nn.Module, official: Mapping) -> ConversionReport:
    """Convert and load strictly into `model`; returns what was loaded and what was left out, with reasons."""
    converted, report = convert_state_dict(official, model)
    model.load_state_dict(converted, strict=True)
    return report
