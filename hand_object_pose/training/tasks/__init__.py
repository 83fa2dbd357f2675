"""Per-family training tasks: what the shared engine needs to know about each network.

Each task module registers its class for one or more families with `@task_for(...)`; the modules of
this package are imported on first use, so a new family's task is one new module here.
"""
from __future__ import annotations

from hand_object_pose.models.family import PerFamilyRegistry
from hand_object_pose.models.registry import get_preset

from ..augmentation import AugmentationConfig
from .base import TrainingTask

_TASKS = PerFamilyRegistry(__name__, __path__, "training task", skip=("base", "common"))
task_for = _TASKS.register
"""Class decorator: register a `TrainingTask` subclass for these family names."""


def build_task(model: str, model_overrides: dict | None = None, augmentation: dict | None = None,
               task_options: dict | None = None) -> TrainingTask:
    """Task for a model preset name (models.registry); overrides replace preset config fields;
    `task_options` are keyword arguments of the family's task (e.g. KPT's gt_token_epochs; every task
    takes `initial_weights`)."""
    family, config = get_preset(model)
    config = family.with_overrides(config, model_overrides)
    task = _TASKS.lookup(family.name)
    return task(family, config, AugmentationConfig(**(augmentation or {})), **(task_options or {}))


__all__ = ["TrainingTask", "build_task", "task_for"]
