"""Per-model training tasks: what the shared engine needs to know about each network."""
from __future__ import annotations

import dataclasses

from ..augmentation import AugmentationConfig


def build_task(model: str, model_overrides: dict | None = None, augmentation: dict | None = None,
               task_options: dict | None = None):
    """Task for a model preset name (models.registry); overrides replace preset config fields;
    `task_options` are keyword arguments of the family's task (e.g. KPT's gt_token_epochs)."""
    from hand_object_pose.models.registry import get_preset

    family, config = get_preset(model)
    if model_overrides:
        config = dataclasses.replace(config, **model_overrides)
    aug = AugmentationConfig(**(augmentation or {}))
    family_name = family.__name__.rsplit(".", 1)[-1]
    if family_name == "a2j":
        from .a2j import A2JTask

        return A2JTask(config, aug, **(task_options or {}))
    if family_name in ("kpt", "occrobnet"):
        from .kpt import KptTask

        return KptTask(family, config, aug, **(task_options or {}))
    if family_name == "dma":
        from .dma import DMATask

        return DMATask(config, aug, **(task_options or {}))
    raise ValueError(f"no training task for model family {family_name!r} (preset {model!r}) yet; "
                     f"available: a2j, dma, kpt, occrobnet")
