"""The pose node's parameter YAML read without ROS: by the launch file, and by the evaluation CLI, which
builds from it the same `EstimatorConfig` the node builds (`load_estimator_config`).

The per-preset YAMLs in config/ give paths relative to the directory the node starts in (the
repository root for the plain entry point). An installed package starts nodes elsewhere, so the
launch file resolves those paths against the package's share directory with `resolve_paths`.

The estimator parameters of the node are the fields of `EstimatorConfig` under the same names
(`ros/parameters.py` declares them); the node's own settings (topics, QoS, TF, markers) are the other
keys, which the estimator ignores.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import yaml

from hand_object_pose.inference.config import EstimatorConfig

PATH_PARAMETERS = ("model_path", "object_catalogue", "mano_path", "trt_cache_dir", "hand_detector_dir")


NODE_NAME = "hand_object_pose"
"""The pose node's default name: its section of a params file, beside the `/**` wildcard section."""

NODE_ESTIMATOR_DEFAULTS = {"plausibility_checks": True}
"""The estimator parameters whose node default differs from `EstimatorConfig`'s: the library reports raw
outputs, the node checks them. `ros/parameters.py` declares them with these defaults; a params file that
leaves them out gets them here too."""


def load_node_parameters(path, node_name: str = NODE_NAME) -> dict:
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


def estimator_config_from_parameters(parameters: dict, source: str = "parameters") -> EstimatorConfig:
    """The validated `EstimatorConfig` of the node's parameters (a flat mapping, e.g. `load_node_parameters`):
    the keys that name config fields, as the node reads them (lists become tuples), over the node's own
    defaults (`NODE_ESTIMATOR_DEFAULTS`). `model_overrides` is no ROS parameter and is ignored here too. ValueError naming `source` and the parameter when a value is
    unusable or `model` is missing."""
    names = {f.name for f in dataclasses.fields(EstimatorConfig)} - {"model_overrides"}
    values = {**NODE_ESTIMATOR_DEFAULTS, **{name: value for name, value in parameters.items() if name in names}}
    if not values.get("model"):
        raise ValueError(f"{source}: parameter 'model' is not set: expected a model preset name")
    try:
        return EstimatorConfig.from_dict(values).validate()
    except ValueError as exc:
        raise ValueError(f"{source}: {str(exc).replace('EstimatorConfig.', 'parameter ')}") from None


def load_estimator_config(path, node_name: str = NODE_NAME, **overrides) -> EstimatorConfig:
    """The `EstimatorConfig` the pose node builds from the params file `path` (relative paths in it are
    relative to the working directory, as for the plain entry point), with `overrides` (config field ->
    value) applied on top. FileNotFoundError / ValueError name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"params file not found: {path}")
    parameters = load_node_parameters(path, node_name)
    return estimator_config_from_parameters({**parameters, **overrides}, source=str(path))
