"""Evaluate a model through the shared inference pipeline on a dataset split.

    python -m hand_object_pose.evaluation.evaluate --params-file config/kpt_h2o3d_3d.yaml \\
        --dataset h2o3d --root /data/H2O3D --split evaluation --out reports/h2o3d [--limit 500]

Every frame goes through `inference.Estimator` exactly as on the robot: `--params-file` is the pose
node's own parameter YAML, read into the same `EstimatorConfig` the node builds (`--model`,
`--model-path`, `--backend` override it, or configure the estimator alone without a file). The crop is
taken from the ground-truth hand box (`--crop gt`, the papers' protocol) or chosen by the pipeline itself
(`--crop pipeline`); the dataset's aligned depth image, when it has one, is given as the node's depth
topic would be (`--no-depth` withholds it). Predicted objects are matched to the labelled ones by
catalogue id. Writes OUT/report.json (root-aligned MPJPE per hand and for single / interacting frames,
PA-MPJPE, scale+translation-aligned error, AUC of PCK 0-50 mm, MRRPE, hand-presence accuracy, object
errors) and OUT/pck.png.

    python -m hand_object_pose.evaluation.evaluate --mean-pose-baseline /data/hop_synthetic/train \
        --dataset synthetic --root /data/hop_synthetic/test --split test --out reports/baseline

scores the trivial baseline (`baseline.MeanPoseBaseline`: the training split's mean labels for every
frame) the same way, for the "did the model learn anything" comparison.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from hand_object_pose.geometry.camera import box_around_points, project_points

from .baseline import MeanPoseBaseline
from .report import HandObjectAccumulator, write_report


def ground_truth_box(sample) -> np.ndarray | None:
    """Square x1.25 box around the projected labelled joints (or the dataset's own hand box)."""
    if sample.hand_box is not None:
        return np.asarray(sample.hand_box, float)
    K = np.asarray(sample.intrinsics, float)
    points = []
    for hand in sample.hands.values():
        cam = hand.joints_cam[hand.joints_valid].astype(float)
        if len(cam):
            points.append(project_points(cam, K))
    return box_around_points(np.concatenate(points), enlarge=1.0) if points else None


def ground_truth_hand_boxes(sample) -> dict:
    """Side -> tight box (x0, y0, width, height) around each labelled hand's projected valid joints: the
    ground-truth crops of a family that sees one hand per crop (the Estimator enlarges them)."""
    K = np.asarray(sample.intrinsics, float)
    boxes = {}
    for side, hand in sample.hands.items():
        cam = hand.joints_cam[hand.joints_valid].astype(float)
        if len(cam):
            boxes[side] = box_around_points(project_points(cam, K), enlarge=1.0)
    return boxes


def evaluate_dataset(estimator, reader, limit: int = 0, crop: str = "gt", progress: bool = False,
                     independent_frames: bool | None = None, use_depth: bool = True) -> dict:
    """Run `estimator` on (the first `limit` of) `reader`'s samples and return the metric summary.

    `independent_frames` (default: with the ground-truth crop) forgets the previous frame before each
    one; leave it off for video splits evaluated with the pipeline's own (tracked) crop. `use_depth`:
    give the estimator each sample's aligned depth image (metres) when the dataset has one, as the node
    gets its depth topic (whether the estimator uses it is its `depth_sources`); counted in
    `counts["frames_with_depth"]`. Each frame is scored by `HandObjectAccumulator.add_frame`.
    """
    if independent_frames is None:
        independent_frames = crop == "gt"
    acc = HandObjectAccumulator()
    with_depth = 0
    count = len(reader) if not limit else min(limit, len(reader))
    for index in range(count):
        sample = reader[index]
        if independent_frames:
            estimator.reset_tracking()  # no tracking across unrelated frames
        roi = ground_truth_box(sample) if crop == "gt" else None
        depth_m = sample.load_depth() if use_depth else None
        with_depth += depth_m is not None
        extra = {"hand_rois": ground_truth_hand_boxes(sample)} \
            if crop == "gt" and getattr(estimator, "per_hand_crops", False) else {}
        result = estimator.estimate(sample.load_image(), np.asarray(sample.intrinsics, float), depth_m=depth_m,
                                    roi=roi, **extra)
        acc.add_frame(result, sample.hands, sample.objects, sample.interacting)
        if progress:
            print(f"\r{index + 1}/{count}", end="", file=sys.stderr)
    if progress:
        print(file=sys.stderr)
    summary = acc.summary()
    summary["counts"]["frames"] = count
    summary["counts"]["frames_with_depth"] = with_depth
    return summary


def estimator_config(args):
    """The `EstimatorConfig` of the command line: the pose node's params file (`--params-file`, the robot's
    configuration) with --model / --model-path / --backend on top when given, else those flags alone. The
    ground-truth crop (`--crop gt`) sets crop_source "roi"; `--crop pipeline` keeps the file's (default
    "auto")."""
    from hand_object_pose.export.cache import resolve_model_path
    from hand_object_pose.export.preset_export import ExportError
    from hand_object_pose.inference.catalogue import ObjectCatalogue
    from hand_object_pose.inference.config import EstimatorConfig
    from hand_object_pose.inference.params_file import load_estimator_config, load_node_parameters

    given = {name: value for name, value in (("model", args.model), ("model_path", args.model_path),
                                              ("backend", args.backend)) if value is not None}
    if args.crop == "gt":
        given["crop_source"] = "roi"
    if args.params_file:
        if Path(args.params_file).is_file():
            # A weights file as model_path: exported once into the same cache as the node's (export.cache).
            values = {**load_node_parameters(args.params_file), **given}
            try:
                resolved = resolve_model_path(values, args.model_cache_dir, ObjectCatalogue.template_paths_of, print)
            except ExportError as exc:
                raise ValueError(f"{args.params_file}: model_path {values.get('model_path')!r}: {exc}") from None
            if resolved != values.get("model_path", ""):
                given["model_path"] = resolved
        return load_estimator_config(args.params_file, **given)
    given.setdefault("crop_source", "auto")
    return EstimatorConfig(**{"backend": "onnxruntime", "model_path": "", **given}).validate()


def main(argv=None) -> int:
    from hand_object_pose.datasets.registry import READERS, build_reader
    from hand_object_pose.inference.estimator import Estimator

    parser = argparse.ArgumentParser(prog="python -m hand_object_pose.evaluation.evaluate",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--params-file", default="",
                        help="the pose node's parameter YAML (e.g. config/kpt_h2o3d_3d.yaml): the estimator is "
                             "configured exactly as the node would be; --model, --model-path and --backend "
                             "override the file's values")
    parser.add_argument("--model-cache-dir", default="~/.cache/hand_object_pose/onnx",
                        help="where a weights-file model_path (onnxruntime) is exported once and reused, as the "
                             "node's model_cache_dir")
    parser.add_argument("--model", help="model preset, e.g. kpt_h2o3d_3d (not with --mean-pose-baseline)")
    parser.add_argument("--model-path", default=None, help=".onnx (onnxruntime) or checkpoint (torch)")
    parser.add_argument("--backend", default=None, choices=("onnxruntime", "torch"),
                        help="default: the params file's, else onnxruntime")
    parser.add_argument("--dataset", required=True, choices=READERS)
    parser.add_argument("--root", required=True)
    parser.add_argument("--split", required=True)
    parser.add_argument("--out", required=True, help="report folder")
    parser.add_argument("--crop", default="gt", choices=("gt", "pipeline"))
    parser.add_argument("--no-depth", action="store_true",
                        help="do not give the estimator the dataset's depth images (default: given when the "
                             "dataset has them, as the node gets its aligned depth topic)")
    parser.add_argument("--tracking", default="auto", choices=("auto", "on", "off"),
                        help="carry crops from one frame to the next: on for video splits, off for splits of "
                             "unrelated frames (the synthetic splits); auto (default) = off with --crop gt, on with "
                             "--crop pipeline")
    parser.add_argument("--limit", type=int, default=0, help="evaluate only the first N frames")
    parser.add_argument("--mean-pose-baseline", metavar="TRAIN_ROOT", default="",
                        help="score the trivial baseline instead of a model: the mean labels of the training "
                             "split at TRAIN_ROOT (same --dataset), the same answer for every frame")
    parser.add_argument("--baseline-split", default="train", help="split name of TRAIN_ROOT (default train)")
    args = parser.parse_args(argv)
    if bool(args.model or args.params_file) == bool(args.mean_pose_baseline):
        parser.error("give exactly one of --model and --mean-pose-baseline (--params-file counts as --model)")
    try:
        reader = build_reader({"type": args.dataset, "root": args.root, "split": args.split})
        if args.mean_pose_baseline:
            estimator = MeanPoseBaseline.fit(build_reader({"type": args.dataset, "root": args.mean_pose_baseline,
                                                           "split": args.baseline_split}))
            model = estimator.model
        else:
            config = estimator_config(args)
            estimator, model = Estimator(config), config.model
    except (ValueError, FileNotFoundError) as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 2
    independent = {"auto": args.crop == "gt", "on": False, "off": True}[args.tracking]
    summary = evaluate_dataset(estimator, reader, args.limit, args.crop, progress=True,
                               independent_frames=independent, use_depth=not args.no_depth)
    path = write_report(summary, args.out, {"model": model, "backend": estimator.backend_in_use,
                                            "params_file": args.params_file, "dataset": args.dataset,
                                            "split": args.split, "crop": args.crop,
                                            "tracking": "off" if independent else "on"})
    print(f"wrote {path}")
    print({k: v for k, v in summary.items() if k not in ("pck_curve",)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
