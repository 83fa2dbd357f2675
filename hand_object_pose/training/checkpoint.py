"""Atomic training checkpoints with everything a resume needs.

A checkpoint is written to a temporary file in the same folder, flushed to disk and renamed over
the target, so a run killed at any moment leaves either the previous or the new checkpoint, never
a torn one. Loading uses `torch.load(weights_only=True)`: a checkpoint is a pickle, and only
tensors and plain containers are accepted from it.
"""
from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

LATEST = "latest.pt"


def rng_state() -> dict:
    """Global RNG states as tensors / plain containers (safe for weights_only loading)."""
    state = {"torch": torch.get_rng_state(),
             "numpy": np.random.get_state(legacy=False),
             "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return _plain(state)


def _plain(value):
    """numpy arrays -> lists, recursively, so that weights_only loading accepts them."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.integer):
        return int(value)
    return value


def restore_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state({**state["numpy"], "state": dict(state["numpy"]["state"])})
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write `state` atomically to `path` (and return it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(state, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    return torch.load(path, map_location=map_location, weights_only=True)
