"""The training loop shared by every model: one process or many (torchrun + DDP), with AMP,
gradient clipping, the papers' step schedules, deterministic seeding, atomic checkpoints with full
resume, TensorBoard scalars, a progress bar with ETA and periodic evaluation.

What differs between models lives in a `TrainingTask` (see `tasks/`): how to build the model and
its parameter groups, how to turn crops into a batch, the loss, and the evaluation numbers.

Determinism: the sample order comes from a DistributedSampler seeded by (seed, epoch) (also with one
process, so 1-process and N-process runs see the same global batches), augmentation draws from a
generator seeded by (seed, epoch, sample index), and the DataLoader has its own generator, so a
resumed run continues exactly where the checkpoint was taken.
"""
from __future__ import annotations

import dataclasses
import json
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Protocol

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from .augmentation import AugmentationConfig, TrainingCrop, make_training_crop
from .checkpoint import LATEST, load_checkpoint, restore_rng_state, rng_state, save_checkpoint
from .distributed import DistributedContext, all_reduce_mean


@dataclass
class TrainConfig:
    """Schedule and optimisation settings (one YAML section per paper setting, see config/train/)."""

    epochs: int = 1
    batch_size: int = 2                 # per process; global batch = batch_size x world size
    optimizer: str = "adam"             # "adam" | "adamw" | "sgd" (momentum 0.9)
    lr: float = 1e-4
    weight_decay: float = 0.0
    lr_milestones: tuple = ()           # epochs at which the LR is multiplied by lr_gamma
    lr_gamma: float = 0.1
    grad_clip: float = 0.0              # max global grad norm; 0 disables
    amp: bool = False                   # float16 autocast + GradScaler on CUDA (bfloat16 autocast on CPU)
    seed: int = 0
    num_workers: int = 0
    eval_every_epochs: int = 1          # 0 disables periodic evaluation
    checkpoint_every_steps: int = 0     # 0: only at the end of each epoch
    log_every_steps: int = 10
    max_steps: int = 0                  # stop after this many optimiser steps in total (0: no limit)
    out_dir: str = "runs/default"
    progress_bar: bool = True
    tensorboard: bool = True

    def __post_init__(self):
        if self.optimizer not in ("adam", "adamw", "sgd"):
            raise ValueError(f"train.optimizer must be 'adam', 'adamw' or 'sgd'; got {self.optimizer!r}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be >= 1; got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"train.lr must be > 0; got {self.lr}")
        self.lr_milestones = tuple(int(m) for m in self.lr_milestones)


class TrainingTask(Protocol):
    """Model-specific parts of training (see `tasks/`)."""

    name: str
    augmentation: AugmentationConfig
    find_unused_parameters: bool
    input_size: int                      # side of the square network input, pixels

    def build_model(self) -> nn.Module: ...
    def parameter_groups(self, model: nn.Module, lr: float) -> list[dict]: ...
    def collate(self, crops: list[TrainingCrop]) -> dict: ...
    # optional: def on_epoch_start(self, epoch: int) -> None
    def loss(self, model: nn.Module, batch: dict) -> dict: ...         # {"total": tensor, ...}
    def evaluate(self, model: nn.Module, batches) -> dict: ...         # metric name -> float


class CropDataset(Dataset):
    """A dataset reader (returning `Sample`s) seen through the training crop + augmentation."""

    def __init__(self, reader, augmentation: AugmentationConfig, seed: int, input_size: int = 256):
        self.reader = reader
        self.augmentation = augmentation
        self.seed = seed
        self.input_size = input_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, index: int) -> TrainingCrop:
        sample = self.reader[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        masks = ()
        if sample.object_mask_path:
            import cv2

            mask = cv2.imread(sample.object_mask_path, cv2.IMREAD_GRAYSCALE)
            if mask is None:
                raise FileNotFoundError(f"object mask missing or unreadable: {sample.object_mask_path}")
            masks = ((mask > 0).astype(np.uint8),)
        return make_training_crop(sample, sample.load_image(), rng, self.augmentation, self.input_size, masks)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _autocast(device: torch.device, enabled: bool):
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=enabled)


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


@dataclass
class TrainResult:
    steps: int
    epochs_done: int
    history: list = field(default_factory=list)   # per logged step: {"step", "epoch", "loss", ...}
    evaluations: list = field(default_factory=list)


class Trainer:
    """Runs `task` on `train_reader` (and `val_reader` for periodic evaluation)."""

    def __init__(self, task: TrainingTask, config: TrainConfig, context: DistributedContext,
                 train_reader, val_reader=None, resume: bool = True):
        self.task, self.config, self.context = task, config, context
        self.out_dir = Path(config.out_dir)
        seed_everything(config.seed)
        model = task.build_model().to(context.device)
        self.optimizer = self._optimizer(model)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, list(config.lr_milestones),
                                                              config.lr_gamma)
        self.scaler = torch.amp.GradScaler("cuda", enabled=config.amp and context.device.type == "cuda")
        self.dataset = CropDataset(train_reader, task.augmentation, config.seed, task.input_size)
        self.sampler = DistributedSampler(self.dataset, num_replicas=context.world_size, rank=context.rank,
                                          shuffle=True, seed=config.seed, drop_last=True)
        self.val_reader = val_reader
        self.epoch, self.step, self.step_in_epoch = 0, 0, 0
        if resume and (self.out_dir / LATEST).is_file():
            self._resume(model)
        if context.distributed:
            device_ids = [context.device.index] if context.device.type == "cuda" else None
            model = nn.parallel.DistributedDataParallel(model, device_ids=device_ids,
                                                        find_unused_parameters=task.find_unused_parameters)
        self.model = model
        self.writer = self._tensorboard()

    # --- set-up -------------------------------------------------------------------------------
    def _optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        groups = self.task.parameter_groups(model, self.config.lr)
        if self.config.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=self.config.lr, momentum=0.9, weight_decay=self.config.weight_decay)
        cls = torch.optim.AdamW if self.config.optimizer == "adamw" else torch.optim.Adam
        return cls(groups, lr=self.config.lr, weight_decay=self.config.weight_decay)

    def _tensorboard(self):
        if not (self.config.tensorboard and self.context.is_main):
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is in the `train` extra; training works without it
            print("tensorboard is not installed: no TensorBoard scalars (pip install .[train])", file=sys.stderr)
            return None
        return SummaryWriter(str(self.out_dir / "tensorboard"))

    def _resume(self, model: nn.Module) -> None:
        state = load_checkpoint(self.out_dir / LATEST, map_location=self.context.device)
        model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step, self.step_in_epoch = state["epoch"], state["step"], state["step_in_epoch"]
        restore_rng_state(state["rng"][min(self.context.rank, len(state["rng"]) - 1)])
        if self.context.is_main:
            print(f"resumed from {self.out_dir / LATEST}: epoch {self.epoch}, step {self.step}", file=sys.stderr)

    def _save(self) -> None:
        """Rank 0 writes one checkpoint holding every rank's RNG state."""
        states = [rng_state()]
        if self.context.distributed:
            gathered = [None] * self.context.world_size
            torch.distributed.all_gather_object(gathered, states[0])
            states = gathered
        if not self.context.is_main:
            return
        save_checkpoint(self.out_dir / LATEST, {
            "model": _unwrap(self.model).state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
            "epoch": self.epoch, "step": self.step, "step_in_epoch": self.step_in_epoch, "rng": states,
            "task": self.task.name, "config": dataclasses.asdict(self.config)})

    # --- loop ---------------------------------------------------------------------------------
    def _loader(self, epoch: int) -> DataLoader:
        self.sampler.set_epoch(epoch)
        self.dataset.set_epoch(epoch)
        generator = torch.Generator().manual_seed(self.config.seed * 1000003 + epoch)
        return DataLoader(self.dataset, batch_size=self.config.batch_size, sampler=self.sampler,
                          num_workers=self.config.num_workers, collate_fn=self.task.collate,
                          generator=generator, drop_last=True)

    def _train_step(self, batch: dict) -> dict:
        cfg, device = self.config, self.context.device
        batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        self.optimizer.zero_grad(set_to_none=True)
        with _autocast(device, cfg.amp):
            losses = self.task.loss(self.model, batch)
        total = losses["total"]
        if not torch.isfinite(total):
            raise FloatingPointError(f"non-finite loss at step {self.step}: "
                                     f"{ {k: float(v) for k, v in losses.items()} }")
        self.scaler.scale(total).backward()
        if cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return {k: float(all_reduce_mean(v.detach().float(), self.context)) for k, v in losses.items()}

    def fit(self) -> TrainResult:
        cfg = self.config
        result = TrainResult(steps=self.step, epochs_done=self.epoch)
        steps_per_epoch = len(self.sampler) // cfg.batch_size
        if steps_per_epoch == 0:
            raise ValueError(f"the training set ({len(self.dataset)} samples) is smaller than one global batch "
                             f"({cfg.batch_size} x {self.context.world_size})")
        total_steps = steps_per_epoch * cfg.epochs if not cfg.max_steps else min(cfg.max_steps,
                                                                                  steps_per_epoch * cfg.epochs)
        progress = _Progress(total_steps, self.step, enabled=cfg.progress_bar and self.context.is_main)
        while self.epoch < cfg.epochs and (not cfg.max_steps or self.step < cfg.max_steps):
            self.model.train()
            if hasattr(self.task, "on_epoch_start"):  # e.g. KPT's ground-truth token epochs
                self.task.on_epoch_start(self.epoch)
            for index, batch in enumerate(self._loader(self.epoch)):
                if index < self.step_in_epoch:
                    continue  # resumed mid-epoch: these batches were already trained on
                losses = self._train_step(batch)
                self.step += 1
                self.step_in_epoch = index + 1
                progress.update(self.step, losses["total"])
                if self.step % max(cfg.log_every_steps, 1) == 0 or self.step == 1:
                    result.history.append({"step": self.step, "epoch": self.epoch, **losses,
                                           "lr": self.optimizer.param_groups[0]["lr"]})
                    if self.writer:
                        for name, value in losses.items():
                            self.writer.add_scalar(f"train/{name}", value, self.step)
                if cfg.checkpoint_every_steps and self.step % cfg.checkpoint_every_steps == 0:
                    self._save()
                if cfg.max_steps and self.step >= cfg.max_steps:
                    break
            else:
                self.epoch += 1
                self.step_in_epoch = 0
                self.scheduler.step()
                if self.val_reader is not None and cfg.eval_every_epochs and self.epoch % cfg.eval_every_epochs == 0:
                    result.evaluations.append({"epoch": self.epoch, **self.evaluate()})
                self._save()
                continue
            self._save()
            break
        progress.close()
        if self.writer:
            self.writer.close()
        result.steps, result.epochs_done = self.step, self.epoch
        if self.context.is_main:
            (self.out_dir / "history.json").write_text(json.dumps(
                {"history": result.history, "evaluations": result.evaluations}, indent=1))
        return result

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Task metrics on the validation reader (plain crops, no augmentation), on the main process."""
        if self.val_reader is None:
            return {}
        model = _unwrap(self.model).eval()
        plain = dataclasses.replace(self.task.augmentation, enabled=False)
        dataset = CropDataset(self.val_reader, plain, self.config.seed, self.task.input_size)
        loader = DataLoader(dataset, batch_size=self.config.batch_size, collate_fn=self.task.collate)
        device = self.context.device
        batches = ({k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in b.items()} for b in loader)
        metrics = self.task.evaluate(model, batches)
        if self.writer:
            for name, value in metrics.items():
                self.writer.add_scalar(f"val/{name}", value, self.step)
        model.train()
        return metrics


class _Progress:
    """A one-line progress bar with ETA on stderr (tqdm when installed)."""

    def __init__(self, total: int, start: int, enabled: bool):
        self.total, self.start, self.enabled = total, start, enabled
        self.t0 = time.monotonic()
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True, file=sys.stderr)
            except ImportError:
                pass

    def update(self, step: int, loss: float) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix(loss=f"{loss:.4g}")
            return
        done = step - self.start
        rate = done / max(time.monotonic() - self.t0, 1e-9)
        eta = (self.total - step) / rate if rate > 0 else math.inf
        print(f"\rstep {step}/{self.total} loss {loss:.4g} eta {eta:.0f}s", end="", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            print(file=sys.stderr)
