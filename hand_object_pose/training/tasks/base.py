"""`TrainingTask`: what the shared engine asks of every family's training task.

A task subclass registers for its families with `@task_for(...)` (training/tasks/__init__.py). The
engine calls, in order: `build_model()` (untrained, then `start_from` the task's `initial_weights`
when given), `parameter_groups`, then per step `collate` / `loss`, per epoch `on_epoch_start`, and
`evaluate` on the validation batches.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from torch import nn

from hand_object_pose.models.weights_file import load_weights, read_weights_file

from ..augmentation import AugmentationConfig


class TrainingTask:
    """Base class of the per-family tasks.

    Attributes: `family` (models.family.ModelFamily), `model_config`, `augmentation`, `input_size` (px),
    `initial_weights` (a weights file to start from: the authors' release, a training checkpoint or a
    state dict, read by `models.weights_file`; None = from scratch), `name` (recorded in checkpoints,
    so that a checkpoint is only loaded into a family that accepts its task), `find_unused_parameters`
    (DDP: some parameters never receive gradients).
    """

    name = ""
    find_unused_parameters = False

    def __init__(self, family, model_config, augmentation: AugmentationConfig = AugmentationConfig(),
                 initial_weights: Optional[str] = None):
        self.family = family
        self.model_config = model_config
        self.augmentation = dataclasses.replace(augmentation)
        self.input_size = family.input_size(model_config)
        self.initial_weights = initial_weights

    def on_epoch_start(self, epoch: int) -> None:
        """Called before each epoch (0-based)."""

    def start_from(self, model: nn.Module) -> nn.Module:
        """Load `initial_weights` into `model` when given (strict; WeightsFileError naming what does not fit)."""
        if self.initial_weights:
            load_weights(self.family, model, read_weights_file(self.initial_weights))
        return model

    def build_model(self) -> nn.Module:
        raise NotImplementedError

    def parameter_groups(self, model: nn.Module, lr: float) -> list[dict]:
        raise NotImplementedError

    def collate(self, crops: list) -> dict:
        raise NotImplementedError

    def loss(self, model: nn.Module, batch: dict) -> dict:
        raise NotImplementedError

    def evaluate(self, model: nn.Module, batches) -> dict:
        raise NotImplementedError
