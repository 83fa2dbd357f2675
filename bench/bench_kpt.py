"""Keypoint Transformer: parameters and forward time per released preset, torch eager vs ONNX Runtime.

    .venv/bin/python bench/bench_kpt.py [--presets kpt_ho3d_3d ...] [--runs 10] [--threads 2]

Batch 1, `--threads` intra-op threads for both backends, `--warmup` calls then the median (and min)
of `--runs` timed calls of the full pipeline (image -> last-layer outputs, keypoint selection
included; torch under no_grad with the greedy detector's early stop, ONNX Runtime with the exported
fixed-K graph, ORT_ENABLE_ALL). Weights: the parity kit's regenerated official weights when the kit
is available (realistic peak counts), else random weights with scaled map heads. Also checks that
both backends give the same tokens and outputs (max relative error over all float outputs), and
prints the official code's time (models.md section 0) and our ORT time as a fraction of it.
Reports the 1-minute load average before and after: the machine is shared. Because wall time on a
busy machine says little, the process CPU time per call is reported too (median over the runs, all
threads summed; worker threads wait passively instead of spinning, so idle waiting is not counted):
on a quiet machine the 2-thread wall time lies between CPU time / 2 and CPU time.
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
from pathlib import Path

# Passive waiting for torch's OpenMP workers (before torch is imported): spinning would count as CPU time.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hand_object_pose.export.preset_export import write_graph  # noqa: E402
from hand_object_pose.models.kpt import FAMILY as KPT  # noqa: E402
from hand_object_pose.models.kpt.inference_graph import KptInferenceGraph  # noqa: E402
from hand_object_pose.export.onnx import ort_session  # noqa: E402
from timing import time_calls  # noqa: E402  (bench/timing.py, beside this script)
from hand_object_pose.export.parity_kit import SHARED_PARITY_DIR, load_kit  # noqa: E402
from hand_object_pose.models.kpt import PRESETS, build, load_official  # noqa: E402

# Official code, CPU, batch 1, 2 threads, least-disturbed median (shared/reference/models.md section 0).
OFFICIAL_SECONDS = {"kpt_ih26m_2p5d": 0.110, "kpt_ih26m_angles": 0.328, "kpt_ho3d_3d": 0.356, "kpt_h2o3d_3d": 0.120}
KIT_CONFIG = {name: "kypt" + name[3:] for name in OFFICIAL_SECONDS}


def load_model(name: str):
    """(model, weights description)."""
    model = build(PRESETS[name]).eval()
    kit_name = KIT_CONFIG.get(name)
    if kit_name and (SHARED_PARITY_DIR / f"{kit_name}.npz").is_file():
        kit = load_kit(kit_name, SHARED_PARITY_DIR)
        official = kit.official_state_dict()
        load_official(model, {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in official.items()})
        del official
        image = torch.from_numpy(kit.arrays["input/img"])
        del kit
        gc.collect()
        return model, image, "parity-kit weights"
    torch.manual_seed(0)
    with torch.no_grad():
        heads = [model.decoder.convOut_hm, model.decoder.convOut_seg] if model.config.has_object \
            else [model.decoder.convOut]
        for head in heads:
            head[-1].weight.mul_(3000.0)
    size = 2 * model.config.heatmap_size  # 256, or 128 for kpt_h2o3d_3d_lite
    return model, torch.rand(1, 3, size, size), "random weights"


def bench_preset(name: str, args) -> dict:
    model, image, weights = load_model(name)
    params = sum(p.numel() for p in model.parameters())
    graph = KptInferenceGraph(model)
    with torch.no_grad():
        torch_times, torch_cpu = time_calls(lambda: model(image), args.runs, args.warmup)
        expected = [t.numpy() for t in graph(image)]
    path = write_graph(KPT, model, Path(args.out) / f"{name}.onnx")
    session = ort_session(path, args.threads, allow_spinning=False)  # steadier on a shared machine
    feeds = {"image": image.numpy()}
    ort_times, ort_cpu = time_calls(lambda: session.run(None, feeds), args.runs, args.warmup)
    got = session.run(None, feeds)
    same_tokens, max_rel = True, 0.0
    for key, ref, out in zip(graph.names, expected, got):
        if key.startswith("token_") or ref.dtype.kind in "biu":
            same_tokens &= bool(np.array_equal(ref, out))
        else:
            max_rel = max(max_rel, float(np.abs(out - ref).max()) / max(float(np.abs(ref).max()), 1e-12))
    n_tokens = int(expected[graph.names.index("token_valid")].sum())
    del model, graph, session
    gc.collect()
    return dict(name=name, params=params, weights=weights, tokens=n_tokens,
                torch=statistics.median(torch_times), torch_min=min(torch_times),
                ort=statistics.median(ort_times), ort_min=min(ort_times),
                torch_cpu=statistics.median(torch_cpu), ort_cpu=statistics.median(ort_cpu),
                same_tokens=same_tokens, max_rel=max_rel)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=list(OFFICIAL_SECONDS))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "bench" / "out" / "kpt"))
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    rows = [bench_preset(name, args) for name in args.presets]
    load_after = os.getloadavg()[0]
    print(f"batch 1, {args.threads} threads, median (min) of {args.runs} runs after {args.warmup} warm-up; "
          f"load average 1 min: {load_before:.2f} before, {load_after:.2f} after")
    print("| preset | params | tokens | torch eager wall s | torch CPU s | ORT wall s | ORT CPU s | official s "
          "| ORT wall / official | same tokens | max rel err |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        official = OFFICIAL_SECONDS.get(r["name"])
        ratio = f"{r['ort'] / official:.2f}" if official else "-"
        print(f"| {r['name']} | {r['params'] / 1e6:.2f} M | {r['tokens']} | {r['torch']:.3f} ({r['torch_min']:.3f}) "
              f"| {r['torch_cpu']:.3f} | {r['ort']:.3f} ({r['ort_min']:.3f}) | {r['ort_cpu']:.3f} "
              f"| {official if official else '-'} | {ratio} "
              f"| {'yes' if r['same_tokens'] else 'NO'} | {r['max_rel']:.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
