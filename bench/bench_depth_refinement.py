"""What the depth image's two refinements cost and give, with the shipped default network, without ROS.

    .venv/bin/python bench/bench_depth_refinement.py [--scenes 100] [--seed 2001] [--threads 2]

Renders --scenes generated scenes (the generator's defaults at 256x256, the splits' size; seed --seed) and runs
`Estimator.estimate` with ground-truth hand boxes and the scene's depth image:

* object fit (`timings_ms["object_fit"]`, inference/object_depth_fit.py): an object new to the pipeline (tracking
  reset: up to 24 starts) and the same frame again right after (the object fitted on the previous frame: 2 starts);
* joint refinement (inference/joint_depth.py): the `root_depth` stage with and without it;
* accuracy beside the cost: root-relative MPJPE with and without the joint refinement, and the translation error of
  the reported objects of the right class with and without the fit (the heat-map pose alone).

Prints medians and 90th percentiles (ms) and the accuracy pairs. Timings on a loaded machine are not comparable.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

# Run from a source checkout: the working tree's package comes first (as pytest's pythonpath does).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hand_object_pose.geometry.camera import box_around_points  # noqa: E402
from hand_object_pose.inference import per_hand  # noqa: E402
from hand_object_pose.inference.adapters.hand_heatmap import HandHeatmapAdapter  # noqa: E402
from hand_object_pose.inference.estimator import Estimator, EstimatorConfig  # noqa: E402
from hand_object_pose.synthetic.scene import SceneConfig, SceneGenerator  # noqa: E402

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "default" / "hand_heatmap_r18h.onnx"


def _percentiles(values: list) -> str:
    if not values:
        return "n/a"
    return f"median {statistics.median(values):6.1f}  p90 {np.percentile(values, 90):6.1f}  (n={len(values)})"


def _run(estimator, scenes, twice: bool = False):
    """(results of each scene's first call, of its second call when `twice`), tracking reset before each scene."""
    first, second = [], []
    for scene in scenes:
        estimator.reset_tracking()
        boxes = {side: box_around_points(hand.joints_2d, enlarge=1.0) for side, hand in scene.hands.items()}
        first.append(estimator.estimate(scene.rgb, scene.K, depth_m=scene.depth, hand_rois=boxes))
        if twice:
            second.append(estimator.estimate(scene.rgb, scene.K, depth_m=scene.depth, hand_rois=boxes))
    return first, second


def _hand_error_mm(scenes, results) -> float:
    errors = []
    for scene, result in zip(scenes, results):
        for hand in result.hands:
            if hand.present and hand.side in scene.hands:
                truth = scene.hands[hand.side].joints_cam
                errors.append(np.linalg.norm((hand.joints_xyz - hand.joints_xyz[0]) - (truth - truth[0]), axis=1).mean())
    return 1000.0 * float(np.mean(errors))


def _object_errors_mm(scenes, results) -> list:
    errors = []
    for scene, result in zip(scenes, results):
        for label in scene.objects:
            errors += [1000.0 * float(np.linalg.norm(o.translation - label.translation))
                       for o in result.objects if o.object_id == label.object_id]
    return errors


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2001)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if not DEFAULT_MODEL.is_file():
        print(f"bench_depth_refinement: the shipped default {DEFAULT_MODEL} is missing", file=sys.stderr)
        return 2
    generator = SceneGenerator(SceneConfig(image_size=(256, 256)))
    scenes = [generator.sample(args.seed, index) for index in range(args.scenes)]
    estimator = Estimator(EstimatorConfig(model="hand_heatmap_r18h", model_path=str(DEFAULT_MODEL), warmup_runs=2,
                                          crop_source="roi", threads=args.threads))
    _run(estimator, scenes[:5])   # warm-up

    refined, again = _run(estimator, scenes, twice=True)
    fresh_fit = [r.timings_ms["object_fit"] for r in refined if "object_fit" in r.timings_ms]
    tracked_fit = [r.timings_ms["object_fit"] for r in again if "object_fit" in r.timings_ms]
    root_depth = [r.timings_ms["root_depth"] for r in refined if "root_depth" in r.timings_ms]

    refine = per_hand.refine_joint_depths
    per_hand.refine_joint_depths = lambda joints, uv, depth: (joints, 0)
    unrefined, _ = _run(estimator, scenes)
    per_hand.refine_joint_depths = refine
    root_depth_off = [r.timings_ms["root_depth"] for r in unrefined if "root_depth" in r.timings_ms]

    surface = HandHeatmapAdapter.object_surface
    HandHeatmapAdapter.object_surface = lambda self, object_id: None
    heatmap_only, _ = _run(estimator, scenes)
    HandHeatmapAdapter.object_surface = surface

    fitted_errors, heatmap_errors = _object_errors_mm(scenes, refined), _object_errors_mm(scenes, heatmap_only)
    print(f"{args.scenes} scenes of seed {args.seed}, {args.threads} threads, ground-truth hand boxes, depth image")
    print(f"object fit, new object (ms)        {_percentiles(fresh_fit)}")
    print(f"object fit, fitted last frame (ms) {_percentiles(tracked_fit)}")
    print(f"root_depth stage with / without the joint refinement (ms): {_percentiles(root_depth)} / "
          f"{_percentiles(root_depth_off)}")
    print(f"hands, root-relative MPJPE: {_hand_error_mm(scenes, refined):.2f} mm refined, "
          f"{_hand_error_mm(scenes, unrefined):.2f} mm without")
    print(f"objects of the right class reported: fitted {len(fitted_errors)}, translation median "
          f"{statistics.median(fitted_errors) if fitted_errors else float('nan'):.2f} mm; heat-map pose "
          f"{len(heatmap_errors)}, median {statistics.median(heatmap_errors) if heatmap_errors else float('nan'):.2f} mm")
    return 0


if __name__ == "__main__":
    sys.exit(main())
