"""int8 vs fp32 on ONNX Runtime (CPU, 2 threads): speed-up and accuracy cost, side by side in one process.

    .venv/bin/python bench/bench_int8.py [--presets kpt_ih26m_2p5d ...] [--runs 10] [--threads 2]
        [--default-dir models/default] [--data data/hop_synthetic_v4] [--test-split test] [--eval-frames 0] [--reuse]

For each of the authors' presets, with the parity kit's regenerated weights (there are no trained weights
of these here): the fp32 export, its int8 quantization (`export.quantize`, calibrated on 16 rendered hand
crops through the family's adapter, as `tools.export_onnx --precision int8`), then
- speed: batch 1, `--runs` calls of each file alternating (fp32, int8, fp32, ...) after warm-up, median wall
  and process-CPU time per call; the speed-up fp32 / int8 of the medians beside the issue's target (>= 2x for
  the default and each conv-heavy preset; A2J is gather-bound, docs/speed.md);
- drift: every output's largest relative difference int8 vs fp32 (max |int8 - fp32| / max |fp32|,
  probabilities absolute; integer outputs: fraction of elements that differ) on the parity kit's input and
  on 4 rendered crops that calibration never saw.
The shipped default network (`--default-dir`, written by `tools.package_default_model`): the same speed
comparison, and its held-out accuracy in fp32 and int8 in the same run (the evaluation code, ground-truth
crops, `--data/--test-split`): MPJPE beside the target (<= 1 mm worse) and object errors (<= 10 % worse);
when the folder has no model yet, the bench says so. Files go to bench/out/int8 (`--reuse` keeps existing
ones). The load average is printed: ratios are measured side by side, absolute times on a shared machine
are not comparable across runs.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hand_object_pose.export.onnx import ort_session  # noqa: E402
from hand_object_pose.export.parity_kit import SHARED_PARITY_DIR, load_kit  # noqa: E402
from hand_object_pose.export.preset_export import write_graph  # noqa: E402
from hand_object_pose.export.quantize import output_drift, quantize_int8  # noqa: E402
from hand_object_pose.models.registry import get_preset  # noqa: E402
from hand_object_pose.tools.export_onnx import calibration_feeds  # noqa: E402

# preset -> parity kit config
KITS = {"kpt_ih26m_2p5d": "kypt_ih26m_2p5d", "kpt_ih26m_angles": "kypt_ih26m_angles", "kpt_ho3d_3d": "kypt_ho3d_3d",
        "kpt_h2o3d_3d": "kypt_h2o3d_3d", "a2j_ih26m": "a2j_ih26m", "dma_ho3d": "dma_ho3d"}
# Most of the time in convolutions (docs/speed.md, bench_roofline.py): the issue's >= 2x target applies.
CONV_HEAVY = ("kpt_ih26m_2p5d", "kpt_ih26m_angles", "kpt_ho3d_3d", "kpt_h2o3d_3d", "dma_ho3d")
TARGET_SPEEDUP = 2.0
TARGET_MPJPE_MM = 1.0        # int8 held-out MPJPE at most this much worse
TARGET_OBJECT_RELATIVE = 0.10
CALIBRATION_FRAMES, CALIBRATION_SEED = 16, 9161


def kit_model(preset: str, kit):
    """(model with the kit's weights, {input name: kit input})."""
    if preset.startswith("kpt_"):
        from hand_object_pose.export.parity_kpt import build_from_kit
        return build_from_kit(kit), {"image": kit.arrays["input/img"]}
    if preset.startswith("a2j_"):
        from hand_object_pose.models.a2j.checkpoint import load_official
        family, config = get_preset(preset)
        model = family.build(config).eval()
        load_official(model, kit.official_state_dict())
        return model, {"image": kit.arrays["input/img"]}
    from hand_object_pose.export.parity_dma import build_kit_model
    model, _, inputs, _ = build_kit_model(kit, compute_discarded_blocks=False)
    family, config = get_preset(preset)
    return model, {n: t.numpy() for n, t in zip(family.input_names(config), inputs)}


def time_side_by_side(fp32_path, int8_path, feed: dict, runs: int, warmup: int, threads: int) -> dict:
    """Median wall / CPU seconds per call of each file, calls alternating so that load changes hit both."""
    sessions = {"fp32": ort_session(fp32_path, threads, allow_spinning=False),
                "int8": ort_session(int8_path, threads, allow_spinning=False)}
    feeds = {k: {i.name: feed[i.name] for i in s.get_inputs()} for k, s in sessions.items()}
    for _ in range(warmup):
        for key, session in sessions.items():
            session.run(None, feeds[key])
    wall = {k: [] for k in sessions}
    cpu = {k: [] for k in sessions}
    for _ in range(runs):
        for key, session in sessions.items():
            start_cpu, start = time.process_time(), time.perf_counter()
            session.run(None, feeds[key])
            wall[key].append(time.perf_counter() - start)
            cpu[key].append(time.process_time() - start_cpu)
    out = {f"{k}_wall": statistics.median(v) for k, v in wall.items()}
    out.update({f"{k}_cpu": statistics.median(v) for k, v in cpu.items()})
    out["speedup"] = out["fp32_wall"] / out["int8_wall"]
    out["speedup_cpu"] = out["fp32_cpu"] / out["int8_cpu"]
    return out


def bench_preset(preset: str, args) -> dict:
    out = Path(args.out)
    fp32, int8 = out / f"{preset}.onnx", out / f"{preset}.int8.onnx"
    kit = load_kit(KITS[preset], SHARED_PARITY_DIR)
    model, kit_feed = kit_model(preset, kit)
    del kit
    family, _ = get_preset(preset)
    calibration = calibration_feeds(preset)
    started = time.perf_counter()
    if not (args.reuse and fp32.is_file() and int8.is_file()):
        write_graph(family, model, fp32)
        quantize_int8(fp32, int8, calibration(CALIBRATION_FRAMES, CALIBRATION_SEED))
    quantize_s = time.perf_counter() - started
    del model
    gc.collect()
    renders = calibration(4, CALIBRATION_SEED + 1)
    # DMA: the rendered crops get the kit's object and camera inputs (the graph holds the kit's one object).
    renders = [{**kit_feed, **{k: v for k, v in r.items() if k == "image"}} for r in renders]
    drift_kit = output_drift(fp32, int8, [kit_feed], args.threads)
    drift_renders = output_drift(fp32, int8, renders, args.threads)
    timing = time_side_by_side(fp32, int8, kit_feed, args.runs, args.warmup, args.threads)
    print(f"  {preset}: quantized in {quantize_s:.0f} s; fp32 {timing['fp32_wall']:.3f} s, int8 "
          f"{timing['int8_wall']:.3f} s per call", file=sys.stderr)
    return {"preset": preset, "drift_kit": drift_kit, "drift_renders": drift_renders, **timing}


def _fmt_drift(row: dict) -> str:
    if "relative" in row:
        return f"{row['relative']:.1e}"
    return f"{100 * row['differing']:.0f} % differ"


def default_network(args) -> dict | None:
    """Speed and held-out accuracy, fp32 vs int8, of the shipped default network; None when absent."""
    folder = Path(args.default_dir)
    meta_path = folder / "metadata.json"
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    preset, fp32 = meta["preset"], folder / meta["model_file"]
    int8 = Path(args.out) / f"default_{preset}.int8.onnx"
    calibration = calibration_feeds(preset)
    if not (args.reuse and int8.is_file()):
        quantize_int8(fp32, int8, calibration(CALIBRATION_FRAMES, CALIBRATION_SEED))
    # Its object network (object crops), when it has one, in the same precision as the rest.
    object_models = {"fp32": "", "int8": ""}
    if meta.get("object_model_file"):
        object_models = {"fp32": str(folder / meta["object_model_file"]),
                         "int8": str(Path(args.out) / f"default_{preset}_object.int8.onnx")}
        if not (args.reuse and Path(object_models["int8"]).is_file()):
            quantize_int8(Path(object_models["fp32"]), Path(object_models["int8"]),
                          calibration(CALIBRATION_FRAMES, CALIBRATION_SEED))
    renders = calibration(4, CALIBRATION_SEED + 1)
    result = {"preset": preset, "drift_renders": output_drift(fp32, int8, renders, args.threads),
              **time_side_by_side(fp32, int8, renders[0], args.runs, args.warmup, args.threads)}
    # Batch 2: the node's call on a tracked frame (both hands' crops in one call; docs/speed.md).
    pair = {name: np.concatenate([renders[0][name], renders[1][name]]) for name in renders[0]}
    result["batch2"] = time_side_by_side(fp32, int8, pair, args.runs, args.warmup, args.threads)
    test_root = Path(args.data) / args.test_split
    if not (test_root / "meta.json").is_file():
        result["accuracy"] = f"held-out split {test_root} absent (render it: see config/train/)"
        return result
    from hand_object_pose.datasets import SyntheticDataset
    from hand_object_pose.evaluation.evaluate import evaluate_dataset
    from hand_object_pose.inference.estimator import Estimator, EstimatorConfig

    test = SyntheticDataset(Path(args.data), args.test_split)
    summaries = {}
    for name, path in (("fp32", fp32), ("int8", int8)):
        # Ground-truth crops: no coarse pass, so no coarse network on either side.
        estimator = Estimator(EstimatorConfig(model=preset, model_path=str(path), object_model_path=object_models[name],
                                              coarse_model_path="none", warmup_runs=0, crop_source="roi",
                                              threads=args.threads))
        summaries[name] = evaluate_dataset(estimator, test, args.eval_frames, "gt")
    result["accuracy"] = summaries
    result["test"] = f"{test_root}, {args.eval_frames or len(test)} frames"
    return result


def print_default(result, folder) -> None:
    print(f"\n### The default network ({folder}), int8 vs fp32")
    if result is None:
        print(f"{folder} has no trained model yet (metadata.json absent): held-out MPJPE / object error int8 vs "
              "fp32 not measured")
        return
    print("| model | call | fp32 s | int8 s | speed-up | target | met |\n|---|---|---|---|---|---|---|")
    for call, timing in (("batch 1", result), ("batch 2 (both hands, a tracked frame)", result["batch2"])):
        met = "yes" if timing["speedup"] >= TARGET_SPEEDUP else "NO"
        print(f"| {result['preset']} | {call} | {timing['fp32_wall']:.4f} | {timing['int8_wall']:.4f} | "
              f"{timing['speedup']:.2f}x (CPU time {timing['speedup_cpu']:.2f}x) | >= {TARGET_SPEEDUP:.0f}x | {met} |")
    print("output drift on 4 renders: " + ", ".join(f"{k} {_fmt_drift(v)}" for k, v in result["drift_renders"].items()))
    accuracy = result["accuracy"]
    if isinstance(accuracy, str):
        print(accuracy)
        return
    print(f"held-out accuracy ({result['test']}, ground-truth crops):")
    print("| metric | fp32 | int8 | change | target | met |\n|---|---|---|---|---|---|")
    fp, q = accuracy["fp32"], accuracy["int8"]
    rows = [("MPJPE mm (both hands)", fp.get("mpjpe_mm"), q.get("mpjpe_mm"), "abs")]
    rows += [(f"MPJPE mm ({side})", fp["hands"][side]["mpjpe_mm"], q["hands"].get(side, {}).get("mpjpe_mm"), "abs")
             for side in fp.get("hands", {})]
    rows += [(f"object {k}", v, q.get("objects", {}).get(k), "rel") for k, v in fp.get("objects", {}).items()]
    for name, a, b, kind in rows:
        if a is None or b is None:
            print(f"| {name} | {a} | {b} | - | - | - |")
            continue
        if kind == "abs":
            change, ok, target = f"{b - a:+.2f} mm", b - a <= TARGET_MPJPE_MM, f"<= +{TARGET_MPJPE_MM:g} mm"
        else:
            rel = (b - a) / abs(a) if a else 0.0
            change, ok, target = f"{100 * rel:+.1f} %", rel <= TARGET_OBJECT_RELATIVE, \
                f"<= +{100 * TARGET_OBJECT_RELATIVE:.0f} %"
        print(f"| {name} | {a:.2f} | {b:.2f} | {change} | {target} | {'yes' if ok else 'NO'} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="*", default=list(KITS), choices=list(KITS),
                        help="author presets to measure (none: only the default network)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "bench" / "out" / "int8"))
    parser.add_argument("--reuse", action="store_true", help="keep existing fp32/int8 files in --out")
    parser.add_argument("--default-dir", default=str(REPO / "models" / "default"))
    parser.add_argument("--data", default=str(REPO / "data" / "hop_synthetic_v4"),
                        help="folder of the default model's held-out split (its training recipe renders it)")
    parser.add_argument("--test-split", default="test")
    parser.add_argument("--eval-frames", type=int, default=0, help="held-out frames of the default (0 = all)")
    parser.add_argument("--skip-default", action="store_true")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    rows = [bench_preset(p, args) for p in args.presets]
    default = None if args.skip_default else default_network(args)
    load_after = os.getloadavg()[0]
    print(f"int8 (static QDQ, export.quantize) vs fp32, ONNX Runtime CPU, batch 1, {args.threads} threads, median of "
          f"{args.runs} alternating calls after {args.warmup} warm-up; load average 1 min: {load_before:.2f} before, "
          f"{load_after:.2f} after")
    print("| preset | weights | fp32 s | int8 s | speed-up (wall) | speed-up (CPU time) | target | met |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        target = f">= {TARGET_SPEEDUP:.0f}x" if r["preset"] in CONV_HEAVY else "- (gather-bound)"
        met = ("yes" if r["speedup"] >= TARGET_SPEEDUP else "NO") if r["preset"] in CONV_HEAVY else "-"
        print(f"| {r['preset']} | parity kit | {r['fp32_wall']:.3f} | {r['int8_wall']:.3f} | {r['speedup']:.2f}x "
              f"| {r['speedup_cpu']:.2f}x | {target} | {met} |")
    print("\nOutput drift int8 vs fp32 (max |int8 - fp32| / max |fp32|; probabilities absolute; integer outputs: "
          "elements that differ), on the parity kit's input | on 4 rendered crops not calibrated on:")
    print("| preset | output | parity-kit input | 4 renders |\n|---|---|---|---|")
    for r in rows:
        for name, row in r["drift_kit"].items():
            print(f"| {r['preset']} | {name} | {_fmt_drift(row)} | {_fmt_drift(r['drift_renders'][name])} |")
    if not args.skip_default:
        print_default(default, args.default_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
