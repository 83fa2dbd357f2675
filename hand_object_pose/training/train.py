"""Train a model from a YAML experiment config, on one process or many.

    python -m hand_object_pose.training.train config/train/a2j_ih26m.yaml [--set train.epochs=1 ...]
    torchrun --nproc_per_node 4 -m hand_object_pose.training.train config/train/a2j_ih26m.yaml
    torchrun --nnodes 2 --node_rank R --nproc_per_node 8 --rdzv_backend c10d \\
             --rdzv_endpoint HOST:29500 -m hand_object_pose.training.train CONFIG

A run resumes from OUT_DIR/latest.pt when it exists (unless --no-resume). Exit status 2 on a
configuration error.
"""
from __future__ import annotations

import argparse
import json
import sys

from .config import load_experiment
from hand_object_pose.datasets.registry import build_reader
from .distributed import init_distributed, shutdown_distributed
from .engine import Trainer
from .tasks import build_task


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hand_object_pose.training.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="experiment YAML (see config/train/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config entry (value parsed as YAML); repeatable")
    parser.add_argument("--no-resume", action="store_true", help="ignore an existing OUT_DIR/latest.pt")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    args = parser.parse_args(argv)
    try:
        experiment = load_experiment(args.config, tuple(args.overrides))
        task = build_task(experiment.model, experiment.model_overrides, experiment.augmentation, experiment.task)
        train_reader = build_reader(experiment.dataset["train"])
        val_spec = experiment.dataset.get("val")
        val_reader = build_reader(val_spec) if val_spec else None
    except (ValueError, FileNotFoundError) as exc:
        print(f"train: {exc}", file=sys.stderr)
        return 2
    context = init_distributed(args.device)
    try:
        trainer = Trainer(task, experiment.train, context, train_reader, val_reader, resume=not args.no_resume)
        result = trainer.fit()
    finally:
        shutdown_distributed(context)
    if context.is_main:
        last = result.history[-1] if result.history else {}
        print(json.dumps({"steps": result.steps, "epochs": result.epochs_done, "last": last,
                          "evaluations": result.evaluations}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
