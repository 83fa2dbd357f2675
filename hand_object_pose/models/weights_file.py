"""The one reader of weight files: the authors' releases, our training checkpoints and plain state dicts.

Used by the Estimator's torch backend, the ONNX export (and so the node's export cache) and training.
Every file is read with `torch.load(weights_only=True)` (tensors and plain containers only: a weights
file is a pickle, and nothing else in it may run). Layouts:

- "official": the authors' `*.pth.tar` (`{"network": state_dict, ...}`), or a bare state dict whose
  keys all carry DataParallel's `module.` prefix; loaded by the family's `load_official`, which maps
  every tensor or lists it as unused with a reason;
- "training": our engine's checkpoint (`{"model": state_dict, "task": ..., "epoch": ..., ...}`; also
  `{"state_dict": ...}`); loaded strictly by name;
- "state_dict": a bare dict of tensors in our naming; loaded strictly by name.

Any file that does not fit raises `WeightsFileError` with one line naming the file and what is wrong
(for a mismatch: the first missing and first unexpected tensor and their counts).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

import torch

from hand_object_pose.file_digest import sha256_of

from .family import ModelFamily, OfficialLoadReport

OFFICIAL, TRAINING, STATE_DICT = "official", "training", "state_dict"
MESSAGE_LIMIT = 400  # characters of a library error quoted in a one-line error


class WeightsFileError(ValueError):
    """A weights file that cannot be read or does not fit the model; the message is one line."""


@dataclass
class WeightsFile:
    """A weights file as read. `state`: the tensors (still in the authors' naming for "official")."""

    path: Path
    kind: str
    state: Mapping
    sha256: str
    task: Optional[str] = None                 # the training engine's task name, when recorded
    info: dict = field(default_factory=dict)   # epoch / step, when recorded


def one_line(text, limit: int = MESSAGE_LIMIT) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def read_weights_file(path: str | Path) -> WeightsFile:
    """Read a weights file of any supported layout; `WeightsFileError` when missing, corrupt or foreign
    (FileNotFoundError is a subclass of neither: a missing file raises `WeightsFileError` too)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise WeightsFileError(f"weights file not found: {file}")
    try:
        data = torch.load(str(file), map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt zip, truncated pickle, objects other than tensors, ...
        raise WeightsFileError(f"cannot read weights file {file} (corrupt, or not a weights-only torch file): "
                               f"{type(exc).__name__}: {one_line(exc, 200)}") from None
    if not isinstance(data, Mapping):
        raise WeightsFileError(f"weights file {file} holds a {type(data).__name__}; expected a dict (the authors' "
                               "{'network': ...}, our {'model': ...}, or a state dict)")
    digest = sha256_of(file)
    counters = {k: int(data[k]) for k in ("epoch", "step") if isinstance(data.get(k), int)}
    if isinstance(data.get("network"), Mapping):
        return WeightsFile(file, OFFICIAL, data["network"], digest, info=counters)
    for key in ("model", "state_dict"):
        if isinstance(data.get(key), Mapping):
            task = data.get("task") if isinstance(data.get("task"), str) else None
            return WeightsFile(file, TRAINING, data[key], digest, task, counters)
    if data and all(isinstance(v, torch.Tensor) for v in data.values()):
        official = all(str(k).startswith("module.") for k in data)  # DataParallel: how the authors saved
        return WeightsFile(file, OFFICIAL if official else STATE_DICT, data, digest)
    raise WeightsFileError(f"weights file {file} is a dict with keys {sorted(map(str, data))[:8]}, not a state dict "
                           "(expected 'network' (the authors' release), 'model' (our training engine) or tensors)")


def load_weights(family: ModelFamily, model: torch.nn.Module, weights: WeightsFile,
                 preset: str = "") -> Optional[OfficialLoadReport]:
    """Load `weights` into `model` (of `family`, built from `preset`) strictly.

    Returns the official loader's report (mapped / unused tensors) for the authors' files, else None.
    Raises `WeightsFileError` naming what does not fit.
    """
    what = f"preset {preset!r} ({family.name})" if preset else f"this {family.name} model"
    if weights.kind == OFFICIAL:
        if not family.has_official_release:
            raise WeightsFileError(f"weights file {weights.path} is in the authors' layout, but {family.name} has no "
                                   "official release: pass a checkpoint of our training engine (runs/NAME/latest.pt)")
        try:
            return family.load_official(model, weights.state)
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            reason = one_line(exc.args[0] if exc.args else exc)
            raise WeightsFileError(f"weights file {weights.path} does not fit {what}: {reason}"
                                   f"{family.official_mismatch_hint(model, weights.state)}") from None
    if weights.task is not None and weights.task not in family.training_tasks:
        raise WeightsFileError(f"weights file {weights.path} was trained by the {weights.task!r} task; {what} takes "
                               f"checkpoints of the {' or '.join(map(repr, family.training_tasks))} task")
    check_state_fits(model, weights.state, f"weights file {weights.path}", what)
    model.load_state_dict(weights.state, strict=True)
    return None


def check_state_fits(model: torch.nn.Module, state: Mapping, source: str, what: str) -> None:
    """`WeightsFileError` naming the first missing, unexpected and mis-shaped tensor when `state` (our
    naming) does not match `model.state_dict()` exactly."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mis_shaped = [f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}" for k in expected
                  if k in state and isinstance(state[k], torch.Tensor) and state[k].shape != expected[k].shape]
    if missing or unexpected or mis_shaped:
        first = lambda names: repr(names[0]) if names else "none"  # noqa: E731
        raise WeightsFileError(
            f"{source} does not fit {what}: first missing tensor {first(missing)} ({len(missing)} missing), "
            f"first unexpected {first(unexpected)} ({len(unexpected)} unexpected), first of another shape "
            f"{mis_shaped[0] if mis_shaped else 'none'} ({len(mis_shaped)}) (another preset, or overrides that "
            "differ from the training run's model_overrides?)")
