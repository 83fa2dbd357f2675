"""Per-family training tasks: what the shared engine needs to know about each network.

Each task module registers its class for one or more families with `@task_for(...)`; the modules of
this package are imported on first use, so a new family's task is one new module here.
"""
from __future__ import annotations

import functools
import importlib
import pkgutil

from ..augmentation import AugmentationConfig
from .base import TrainingTask

_TASKS: dict = {}


def task_for(*family_names: str):
    """Class decorator: register a `TrainingTask` subclass for these family names."""
    def register(cls):
        for name in family_names:
            _TASKS[name] = cls
        return cls
    return register


@functools.lru_cache(maxsize=None)  # once: a module imported directly must not hide the others
def _import_task_modules() -> None:
    for module in pkgutil.iter_modules(__path__):
        if module.name not in ("base", "common"):
            importlib.import_module(f"{__name__}.{module.name}")


def build_task(model: str, model_overrides: dict | None = None, augmentation: dict | None = None,
               task_options: dict | None = None) -> TrainingTask:
    """Task for a model preset name (models.registry); overrides replace preset config fields;
    `task_options` are keyword arguments of the family's task (e.g. KPT's gt_token_epochs; every task
    takes `initial_weights`)."""
    from hand_object_pose.models.registry import get_preset

    family, config = get_preset(model)
    config = family.with_overrides(config, model_overrides)
    _import_task_modules()
    if family.name not in _TASKS:
        raise ValueError(f"no training task for model family {family.name!r} (preset {model!r}) yet; "
                         f"available: {', '.join(sorted(_TASKS))}")
    return _TASKS[family.name](family, config, AugmentationConfig(**(augmentation or {})), **(task_options or {}))


__all__ = ["TrainingTask", "build_task", "task_for"]
