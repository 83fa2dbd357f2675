"""Model-only vs full-pipeline time of `inference.Estimator` at 640x480, without ROS.

    .venv/bin/python bench/bench_estimator.py --preset kpt_h2o3d_3d --backend onnxruntime --threads 2

Random weights (timing does not depend on them); for onnxruntime the preset is exported once with
its family's export graph into --onnx-dir (re-used when present). Measures, after warm-up:

* model: `Estimator.run_network` on a 256x256 crop (input normalisation + the backend call);
* pipeline: `Estimator.estimate` on a 640x480 frame with crop tracking (crop warp, network,
  decoding, root depth from an aligned depth image, mapping back; the steady-state path);
* pipeline_coarse: the same on a frame where tracking was reset (coarse whole-frame pass first);
* per-stage medians of `timings_ms`, and the pipeline overhead per frame (total minus the
  network call of the same frame), which a loaded machine disturbs far less than the difference
  of two medians.

Prints a table and, with --json, writes the numbers. Reported numbers are medians over --runs.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

# Run from a source checkout: the working tree's package comes first (as pytest's pythonpath does).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hand_object_pose.geometry.camera import CameraIntrinsics  # noqa: E402
from hand_object_pose.inference.estimator import Estimator, EstimatorConfig  # noqa: E402
from hand_object_pose.export.preset_export import write_graph  # noqa: E402
from hand_object_pose.models.registry import get_preset, preset_names  # noqa: E402

def export_preset(preset: str, folder: Path) -> Path:
    """The preset's ONNX file (random weights) in `folder`, exported on first use."""
    path = folder / f"{preset}_random.onnx"
    if path.is_file():
        return path
    family, config = get_preset(preset)
    torch.manual_seed(0)
    return write_graph(family, family.build(config).eval(), path)


def test_frame(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 480x640 RGB frame and an aligned depth image (metres, with holes)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    depth = np.full((480, 640), 0.6, np.float32)
    depth[rng.random((480, 640)) < 0.2] = 0.0
    return image, depth


def median_ms(function, runs: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="kpt_h2o3d_3d", choices=preset_names())
    parser.add_argument("--backend", default="onnxruntime", choices=("onnxruntime", "torch"))
    parser.add_argument("--providers", default="cpu", help="comma-separated ORT providers, e.g. tensorrt,cuda,cpu")
    parser.add_argument("--device", default="cpu", help="torch device")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10, help="timed runs per measurement (>= 10)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--onnx-dir", default="build/bench_onnx")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    if args.runs < 10:
        parser.error("--runs must be >= 10")
    torch.set_num_threads(args.threads)

    common = dict(model=args.preset, backend=args.backend, threads=args.threads, warmup_runs=args.warmup,
                  presence_threshold=0.0)  # random weights: treat every hand as present so tracking runs
    if args.backend == "onnxruntime":
        folder = Path(args.onnx_dir)
        folder.mkdir(parents=True, exist_ok=True)
        config = EstimatorConfig(model_path=str(export_preset(args.preset, folder)),
                                 providers=tuple(args.providers.split(",")), **common)
    else:
        config = EstimatorConfig(allow_random_weights=True, device=args.device, **common)
    estimator = Estimator(config)
    camera = CameraIntrinsics(615.0, 615.0, 320.0, 240.0, width=640, height=480)
    image, depth = test_frame()
    crop = image[:256, :256].copy()

    for _ in range(args.warmup):
        estimator.estimate(image, camera, depth_m=depth)
    model_ms, _ = median_ms(lambda: estimator.run_network(crop), args.runs)
    stage_samples: dict[str, list[float]] = {}

    def tracked():
        result = estimator.estimate(image, camera, depth_m=depth)
        for name, value in result.timings_ms.items():
            stage_samples.setdefault(name, []).append(value)

    pipeline_ms, _ = median_ms(tracked, args.runs)

    def coarse():
        estimator.reset_tracking()
        estimator.estimate(image, camera, depth_m=depth)

    coarse_ms, _ = median_ms(coarse, args.runs)
    stages = {name: statistics.median(values) for name, values in stage_samples.items()}
    overheads = [t - i for t, i in zip(stage_samples["total"], stage_samples["inference"])]
    overhead = statistics.median(overheads)
    results = {"preset": args.preset, "backend": estimator.backend_in_use, "threads": args.threads,
               "runs": args.runs, "image": "640x480", "model_ms": model_ms, "pipeline_ms": pipeline_ms,
               "pipeline_overhead_ms": overhead, "pipeline_overhead_min_ms": min(overheads),
               "pipeline_coarse_ms": coarse_ms,
               "stages_ms": stages}
    print(f"{args.preset} on {estimator.backend_in_use}, {args.threads} threads, median of {args.runs} runs:")
    print(f"  model only (256x256 crop)       {model_ms:8.1f} ms")
    print(f"  pipeline, tracking (640x480)    {pipeline_ms:8.1f} ms")
    print(f"  pipeline overhead per frame     {overhead:8.2f} ms  (total - network call, same frame; "
          f"min {min(overheads):.2f} ms)")
    print(f"  pipeline, coarse pass first     {coarse_ms:8.1f} ms")
    print("  stages (tracking): " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
