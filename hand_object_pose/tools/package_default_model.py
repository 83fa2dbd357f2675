"""Turn a finished training run into the shipped default model: export, measure, describe.

    python -m hand_object_pose.tools.package_default_model runs/kpt_synthetic_lite/latest.pt \\
        --train-config config/train/kpt_synthetic_lite.yaml --data /data/hop_synthetic \\
        [--object-checkpoint runs/NAME_object/latest.pt --object-train-config CONFIG] \\
        [--coarse-checkpoint runs/NAME_coarse/latest.pt --coarse-train-config CONFIG] \\
        [--earlier-stage-config CONFIG ...] \\
        [--test-split test] [--baseline-split train] [--out models/default] [--limit 0]

1. exports the run's checkpoint with `tools.export_onnx` (compact weights, checked against torch), and with
   `--object-checkpoint` a second run's (same preset) as the object network, `OUT/<preset>_object.onnx`, named in
   the model's export record (`object_model_file`) so that every Estimator of the model runs its object crops there,
   and with `--coarse-checkpoint` a third run's as the coarse network, `OUT/<preset>_coarse.onnx` at its own input
   size (`coarse_model_file`: the coarse pass, the whole-frame crop that finds the hands, runs there);
2. evaluates the export on the held-out synthetic split DATA/TEST_SPLIT through the shared inference
   pipeline (ground-truth crop, the papers' protocol, and the pipeline's own crop), and the mean-pose
   baseline of DATA/BASELINE_SPLIT on the same frames;
3. times the network alone with ONNX Runtime (`--threads`, default 2) on one input, median of 50 runs;
4. writes OUT/metadata.json: preset, input size, joint order, training data and schedule, the
   metrics beside the baseline's, the network time, the date. `make demo` and the launch file use OUT's model.

The held-out split must come from other generator seeds than the training split (the command refuses
a test split whose seed equals the training split's).

    python -m hand_object_pose.tools.package_default_model --rescore --data /data/hop_synthetic [--test-split test]

re-scores the model already in OUT (step 2 alone, both crops) with today's pipeline: when the inference around
an unchanged network changes (the object's fit to the depth image), its held-out numbers in OUT/metadata.json are
replaced and `evaluation.rescored` says when; the files, the training record and the baseline are kept.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import yaml


def _seed_of(root: Path) -> int:
    return int(json.loads((root / "meta.json").read_text())["seed"])


def _split_words(root: Path, frames: int, seed: int) -> str:
    """How the record names a synthetic split: its folder, frames, seed and generator version (when recorded)."""
    generator = json.loads((root / "meta.json").read_text()).get("generator")
    return f"({root}), {frames} frames, seed {seed}" + (f", generator version {generator}" if generator else "")


def _headline(summary: dict) -> dict:
    """The numbers the issue asks for, from an evaluation summary."""
    hands = summary.get("hands", {})
    return {"mpjpe_mm": {side: hands[side]["mpjpe_mm"] for side in hands},
            "mpjpe_mm_both": summary.get("mpjpe_mm"),
            "mrrpe_mm": summary.get("mrrpe_mm"),
            "hand_presence_accuracy": summary.get("hand_presence_accuracy"),
            "object": summary.get("objects"),
            "object_median": summary.get("objects_median"),
            "object_median_all": summary.get("objects_median_all"),
            "counts": summary.get("counts")}


def score_model(preset: str, onnx_path: Path, test, limit: int) -> dict:
    """{"model_gt_crop", "model_pipeline_crop"}: the headline numbers of the export on the held-out reader `test`
    (frames independent), with ground-truth crops and with the pipeline's own."""
    from hand_object_pose.evaluation.evaluate import evaluate_dataset
    from hand_object_pose.inference.estimator import Estimator, EstimatorConfig

    metrics = {}
    for crop in ("gt", "pipeline"):
        estimator = Estimator(EstimatorConfig(model=preset, model_path=str(onnx_path), warmup_runs=0,
                                              crop_source="roi" if crop == "gt" else "auto"))
        metrics[f"model_{crop}_crop"] = _headline(evaluate_dataset(estimator, test, limit, crop, progress=True,
                                                                   independent_frames=True))
    return metrics


def rescore(out: Path, data: Path, test_split: str, limit: int) -> int:
    """`--rescore` (module doc); 2 when OUT has no packaged model or the split has one of its training seeds."""
    import re

    from hand_object_pose.datasets import SyntheticDataset

    path = out / "metadata.json"
    if not path.is_file():
        print(f"package_default_model: no packaged model to re-score: {path} is missing", file=sys.stderr)
        return 2
    metadata = json.loads(path.read_text())
    test_seed = _seed_of(data / test_split)
    training_seeds = {int(seed) for seed in re.findall(r"seed (\d+)", metadata["training"]["data"])}
    training_seeds |= {seed for role in COMPANIONS for seed in metadata.get(f"{role}_training", {}).get("seeds", [])}
    if test_seed in training_seeds:
        print(f"package_default_model: the test split {test_split} has the training seed {test_seed}: "
              "re-score on a held-out split", file=sys.stderr)
        return 2
    test = SyntheticDataset(data, test_split)
    metrics = score_model(metadata["preset"], out / metadata["model_file"], test, limit)
    evaluation = metadata["evaluation"]
    evaluation.update(metrics)
    evaluation["test_data"] = (f"held-out synthetic split '{test_split}' "
                               f"{_split_words(data / test_split, len(test), test_seed)}"
                               + (f" (first {limit})" if limit else ""))
    evaluation["rescored"] = {"date": datetime.date.today().isoformat(),
                              "note": "model_gt_crop and model_pipeline_crop re-scored with the pipeline of this date "
                                      "(the same files); mean_pose_baseline as packaged"}
    path.write_text(json.dumps(metadata, indent=2) + "\n")
    print(f"re-scored {path}")
    _print_metrics(metrics)
    return 0


def _print_metrics(metrics: dict) -> None:
    for name, numbers in metrics.items():
        print(f"{name}: MPJPE {numbers['mpjpe_mm']}, MRRPE {numbers['mrrpe_mm']}, presence "
              f"{numbers['hand_presence_accuracy']}, object median {numbers['object_median']}, counts {numbers['counts']}")


def _training_splits(experiment, data: Path, train_split: str) -> list[Path]:
    """The training folders: the config's dataset.train roots (or root) when they exist, else DATA/TRAIN_SPLIT."""
    spec = experiment.dataset.get("train", {})
    roots = [Path(r) for r in (spec.get("roots") or ([spec["root"]] if spec.get("root") else []))]
    return roots if roots and all((r / "meta.json").is_file() for r in roots) else [data / train_split]


def _seeds_of_config(train_config: str) -> list[int]:
    """The generator seeds of the training folders a config names that are on this machine (a companion network's
    run: the held-out split must avoid them too); [] without a config."""
    from hand_object_pose.training.config import load_experiment

    if not train_config:
        return []
    spec = load_experiment(train_config).dataset.get("train", {})
    roots = [Path(r) for r in (spec.get("roots") or ([spec["root"]] if spec.get("root") else []))]
    return [_seed_of(root) for root in roots if (root / "meta.json").is_file()]


def network_time_ms(onnx_path: Path, threads: int, runs: int = 50) -> dict:
    """Median and 90th percentile (ms) of ONNX Runtime running the network alone on one random input."""
    import time

    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    shape = [1 if not isinstance(d, int) else d for d in inp.shape]
    feed = {inp.name: np.random.default_rng(0).random(shape, dtype=np.float32)}
    for _ in range(5):
        session.run(None, feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - start) * 1e3)
    return {"threads": threads, "runs": runs, "median_ms": float(np.median(times)),
            "p90_ms": float(np.percentile(times, 90))}


COMPANIONS = {
    "object": "the object crops run through this network (its object channels and class head), the hands through "
              "model_file's",
    "coarse": "the coarse pass (the whole-frame crop that finds the hands and names their sides) runs through this "
              "network, at its own input size; the hand crops through model_file's",
}
"""Companion networks a model may ship with (`--<role>-checkpoint`): role -> what runs through it."""


def _export_companion(role: str, out: Path, preset: str, checkpoint: str, train_config: str, export_onnx) -> tuple:
    """(exit status, None or {"file", "config", "run"}): the `role` network's export, OUT/<preset>_<role>.onnx with
    its training config's model_overrides (an object network's segmentation head, a coarse network's input size);
    without a checkpoint, a stale one beside a model that no longer names it is removed."""
    from hand_object_pose.training.config import load_experiment

    path = out / f"{preset}_{role}.onnx"
    if not checkpoint:
        for stale in (path, path.with_name(path.name + ".json")):
            stale.unlink(missing_ok=True)
        return 0, None
    experiment = load_experiment(train_config)
    overrides = [a for k, v in experiment.model_overrides.items() for a in ("--override", f"{k}={v}")]
    status = export_onnx.main([experiment.model, str(path), "--checkpoint", checkpoint, *overrides, "--weights",
                               "compact", "--check", *(["--coarse-network"] if role == "coarse" else [])])
    if status != 0:
        return status, None
    run = json.loads(path.with_name(path.name + ".json").read_text())["weights"]
    return 0, {"file": path.name, "config": train_config, "run": run}


def main(argv=None) -> int:
    from hand_object_pose.evaluation.baseline import MeanPoseBaseline
    from hand_object_pose.evaluation.evaluate import evaluate_dataset
    from hand_object_pose.inference.per_hand import SIDE_CUE_PRESENCE
    from hand_object_pose.tools import export_onnx
    from hand_object_pose.training.config import load_experiment
    from hand_object_pose.datasets import SyntheticDataset

    parser = argparse.ArgumentParser(prog="python -m hand_object_pose.tools.package_default_model",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", nargs="?", default="", help="the training run's checkpoint (runs/NAME/latest.pt)")
    parser.add_argument("--train-config", default="", help="the training YAML the run used (required to package)")
    parser.add_argument("--rescore", action="store_true",
                        help="re-score the model already in --out with today's pipeline (no checkpoint)")
    parser.add_argument("--data", required=True, help="folder holding the synthetic splits")
    parser.add_argument("--object-checkpoint", default="",
                        help="a second run of the same preset whose network runs the object crops (an object network)")
    parser.add_argument("--object-train-config", default="", help="the training YAML of --object-checkpoint's run")
    parser.add_argument("--coarse-checkpoint", default="",
                        help="a run of the same preset (any input size) whose network runs the coarse pass")
    parser.add_argument("--coarse-train-config", default="", help="the training YAML of --coarse-checkpoint's run")
    parser.add_argument("--earlier-stage-config", action="append", default=[], metavar="CONFIG",
                        help="the training YAML of a stage whose weights started the run (repeat, first stage "
                             "first): recorded with the training config, so that the record has the whole recipe")
    parser.add_argument("--train-split", default="train")
    parser.add_argument("--test-split", default="test")
    parser.add_argument("--baseline-split", default="train", help="split whose mean labels are the baseline")
    parser.add_argument("--out", default="models/default")
    parser.add_argument("--limit", type=int, default=0, help="evaluate only the first N test frames")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads of the network timing")
    args = parser.parse_args(argv)
    if args.rescore:
        if args.checkpoint or args.train_config or args.object_checkpoint or args.coarse_checkpoint:
            parser.error("--rescore takes no checkpoint, --train-config, --object-checkpoint or --coarse-checkpoint")
        return rescore(Path(args.out), Path(args.data), args.test_split, args.limit)
    if not args.checkpoint or not args.train_config:
        parser.error("packaging needs the checkpoint and --train-config (or --rescore)")
    for role in COMPANIONS:
        if bool(getattr(args, f"{role}_checkpoint")) != bool(getattr(args, f"{role}_train_config")):
            print(f"package_default_model: --{role}-checkpoint and --{role}-train-config go together", file=sys.stderr)
            return 2
    missing = [c for c in args.earlier_stage_config if not Path(c).is_file()]
    if missing:
        print(f"package_default_model: --earlier-stage-config {missing[0]} is not a file", file=sys.stderr)
        return 2

    experiment = load_experiment(args.train_config)
    data = Path(args.data)
    train_roots = _training_splits(experiment, data, args.train_split)
    train_seeds = [_seed_of(root) for root in train_roots]
    companion_seeds = {role: _seeds_of_config(getattr(args, f"{role}_train_config")) for role in COMPANIONS}
    train_seeds += [seed for seeds in companion_seeds.values() for seed in seeds]
    test_seed = _seed_of(data / args.test_split)
    if test_seed in train_seeds:
        print(f"package_default_model: the test split {args.test_split} has the training seed {test_seed}: "
              "render the held-out set with another --seed", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / f"{experiment.model}.onnx"
    overrides = [a for k, v in experiment.model_overrides.items() for a in ("--override", f"{k}={v}")]
    status = export_onnx.main([experiment.model, str(onnx_path), "--checkpoint", args.checkpoint, *overrides,
                               "--weights", "compact", "--check"])
    if status != 0:
        return status
    record_path = onnx_path.with_name(onnx_path.name + ".json")
    export_record = json.loads(record_path.read_text())
    companions = {}
    for role in COMPANIONS:
        status, companions[role] = _export_companion(role, out, experiment.model, getattr(args, f"{role}_checkpoint"),
                                                     getattr(args, f"{role}_train_config"), export_onnx)
        if status != 0:
            return status
        if companions[role] is not None:
            export_record[f"{role}_model_file"] = companions[role]["file"]
    if int(experiment.task.get("side_crops", 0)) > 0:   # trained for handedness: the pipeline reads its presence
        export_record["hand_side_cue"] = SIDE_CUE_PRESENCE
    record_path.write_text(json.dumps(export_record, indent=2) + "\n")

    test = SyntheticDataset(data, args.test_split)
    metrics = score_model(experiment.model, onnx_path, test, args.limit)
    baseline = MeanPoseBaseline.fit(SyntheticDataset(data, args.baseline_split))
    metrics["mean_pose_baseline"] = _headline(evaluate_dataset(baseline, test, args.limit))
    timing = network_time_ms(onnx_path, args.threads)

    run_info = export_record["weights"]
    metadata = {
        "preset": experiment.model,
        "trained": True,
        "model_file": onnx_path.name,
        "input": export_record["input"],
        "joint_order": export_record["joint_order"],
        "outputs": export_record["onnx"]["outputs"],
        "weight_storage": export_record.get("weight_storage"),
        **{key: value for role, companion in companions.items() if companion is not None
           for key, value in ((f"{role}_model_file", companion["file"]), (f"{role}_training", {
               "note": COMPANIONS[role], "config": yaml.safe_load(Path(companion["config"]).read_text()),
               "seeds": companion_seeds[role],
               "steps": companion["run"].get("step"), "checkpoint_sha256": companion["run"].get("sha256")}))},
        "training": {
            "data": "synthetic (stand-in hands, NOT MANO; procedural objects): " + ", ".join(
                f"{len(SyntheticDataset(root))} frames rendered with seed {seed} ({root})"
                for root, seed in zip(train_roots, train_seeds)),
            "config": yaml.safe_load(Path(args.train_config).read_text()),
            **({"earlier_stages": [yaml.safe_load(Path(c).read_text()) for c in args.earlier_stage_config]}
               if args.earlier_stage_config else {}),
            "epochs_done": run_info.get("epoch"), "steps": run_info.get("step"),
            "checkpoint_sha256": run_info.get("sha256"),
        },
        "evaluation": {
            "test_data": f"held-out synthetic split '{args.test_split}' "
                         f"{_split_words(data / args.test_split, len(test), test_seed)}"
                         + (f" (first {args.limit})" if args.limit else ""),
            "protocol": "root-aligned MPJPE per hand (mm), MRRPE (mm), hand-presence accuracy, object translation "
                        "(mm) and rotation (deg) error; model_gt_crop: crop from the ground-truth hand box; "
                        "model_pipeline_crop: the pipeline's own crop (coarse pass + tracking reset per frame)",
            **metrics,
        },
        "network_time": {**timing, "note": "the network alone on one input (ONNX Runtime, CPU), measured on the "
                                           "packaging machine; a frame may run it on several crops"},
        "date": datetime.date.today().isoformat(),
    }
    path = out / "metadata.json"
    path.write_text(json.dumps(metadata, indent=2) + "\n")
    print(f"wrote {path}")
    print(f"network alone: median {timing['median_ms']:.1f} ms, p90 {timing['p90_ms']:.1f} ms "
          f"({timing['threads']} threads)")
    _print_metrics(metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
