"""The sha256 of a file, read in 1 MiB blocks: how weights, templates and shipped models are identified.

A leaf module with no dependencies (not even numpy or torch), so that every layer, and tools that run in
a throwaway venv without the project's dependencies, can use it.
"""
from __future__ import annotations

import hashlib
import os


def sha256_of(path: str | os.PathLike) -> str:
    """Hex sha256 of the file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
