"""Reading the node's parameter YAML outside ROS (used by the launch file), and making its relative
paths absolute.

The per-preset YAMLs in config/ give paths relative to the directory the node starts in (the
repository root for the plain entry point). An installed package starts nodes elsewhere, so the
launch file resolves those paths against the package's share directory with `resolve_paths`.
"""
from __future__ import annotations

import os
from pathlib import Path

import yaml

PATH_PARAMETERS = ("model_path", "object_catalogue", "mano_path", "trt_cache_dir")


def load_node_parameters(path, node_name: str = "hand_object_pose") -> dict:
    """The `ros__parameters` of a params file: the `/**` section updated by the node's own section."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of node names to {{ros__parameters: ...}}")
    merged = {}
    for key in ("/**", node_name, f"/{node_name}"):
        section = data.get(key) or {}
        merged.update(section.get("ros__parameters") or {})
    return merged


def resolve_paths(parameters: dict, base_dir) -> dict:
    """{name: absolute path} for each non-empty relative path parameter (URIs and absolute paths unchanged)."""
    resolved = {}
    for name in PATH_PARAMETERS:
        value = parameters.get(name)
        if isinstance(value, str) and value and "://" not in value and not os.path.isabs(value):
            resolved[name] = str(Path(base_dir, value))
    return resolved
