"""Training configuration files (YAML), one per paper setting under config/train/.

Schema:
  model: <preset name>              # models.registry, e.g. a2j_ih26m
  model_overrides: {field: value}   # optional, replace preset config fields
  augmentation: {field: value}      # AugmentationConfig fields
  task: {option: value}             # options of the model family's task (e.g. gt_token_epochs for KPT)
  dataset:
    train: {type: interhand26m | ho3d | h2o3d | dexycb, root: PATH, split: NAME}
    val:   {...}                    # optional, for periodic evaluation
  train: {field: value}             # TrainConfig fields (epochs, batch_size, lr, lr_milestones, ...)

`--set section.key=value` on the command line overrides any entry (values parsed as YAML).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .engine import TrainConfig

SECTIONS = ("model", "model_overrides", "augmentation", "task", "dataset", "train")


@dataclass
class ExperimentConfig:
    model: str
    dataset: dict
    train: TrainConfig
    model_overrides: dict = field(default_factory=dict)
    augmentation: dict = field(default_factory=dict)
    task: dict = field(default_factory=dict)


def _apply_override(tree: dict, assignment: str) -> None:
    if "=" not in assignment:
        raise ValueError(f"--set expects section.key=value; got {assignment!r}")
    path, raw = assignment.split("=", 1)
    keys = path.split(".")
    node = tree
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ValueError(f"--set {path}: {key!r} is not a section")
    node[keys[-1]] = yaml.safe_load(raw)


def load_experiment(path: str | Path, overrides: tuple = ()) -> ExperimentConfig:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training config not found: {path}")
    tree = yaml.safe_load(path.read_text()) or {}
    if not isinstance(tree, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    for assignment in overrides:
        _apply_override(tree, assignment)
    unknown = sorted(set(tree) - set(SECTIONS))
    if unknown:
        raise ValueError(f"{path}: unknown top-level keys {unknown}; allowed: {', '.join(SECTIONS)}")
    for key in ("model", "dataset", "train"):
        if key not in tree:
            raise ValueError(f"{path}: missing required key {key!r}")
    if "train" not in tree["dataset"]:
        raise ValueError(f"{path}: dataset.train is required")
    try:
        train = TrainConfig(**tree["train"])
    except TypeError as exc:
        raise ValueError(f"{path}: bad train section: {exc}") from None
    return ExperimentConfig(model=tree["model"], dataset=tree["dataset"], train=train,
                            model_overrides=tree.get("model_overrides") or {},
                            augmentation=tree.get("augmentation") or {}, task=tree.get("task") or {})
