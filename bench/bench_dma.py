"""Forward time of Dense Mutual Attention: our torch model and its ONNX Runtime export vs the official code.

    .venv/bin/python bench/bench_dma.py [--runs 10] [--warmup 2] [--threads 2]

Batch 1, CPU, `torch.no_grad()`, eval mode, the parity kit's weights and input (so the outputs can
be checked to be the official ones), medians and minima over `--runs` timed calls after `--warmup`
calls. The official figures (models.md section 0: 0.224 s median of the least-disturbed pass, 0.148 s
min; random weights, same torch, 2 threads, includes torch_geometric batching and FaceToEdge) are
printed beside ours with the ratio. The machine may be shared: the load average is printed, and the
min is the better guide on a busy machine.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch

from hand_object_pose.export.onnx import ort_session
from hand_object_pose.export.preset_export import write_graph
from hand_object_pose.models.dma import FAMILY as DMA
from hand_object_pose.models.dma.inference_graph import INPUT_NAMES, OUTPUT_NAMES, DMAInferenceGraph
from timing import time_calls  # bench/timing.py, beside this script
from hand_object_pose.export.parity_dma import build_kit_model
from hand_object_pose.export.parity_kit import SHARED_PARITY_DIR, load_kit

OFFICIAL_MEDIAN_S = 0.224
OFFICIAL_MIN_S = 0.148


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--kit", default=str(SHARED_PARITY_DIR))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    kit = load_kit("dma_ho3d", args.kit)
    model, _, inputs, _ = build_kit_model(kit, compute_discarded_blocks=False)
    graph = DMAInferenceGraph(model).eval()
    with tempfile.TemporaryDirectory() as folder:
        session = ort_session(write_graph(DMA, model, Path(folder) / "dma.onnx"), threads=args.threads)
    feeds = {name: t.numpy() for name, t in zip(INPUT_NAMES, inputs)}

    with torch.no_grad():
        reference = [t.numpy() for t in graph(*inputs)]
    ort_out = session.run(None, feeds)
    worst = max(float(np.abs(o - r).max() / np.abs(r).max()) for o, r in zip(ort_out, reference))
    official = kit.arrays["out/hand_joints_out"]
    torch_vs_official = float(np.abs(reference[OUTPUT_NAMES.index("hand_joints")] - official).max()
                              / np.abs(official).max())

    def torch_forward():
        with torch.no_grad():
            graph(*inputs)

    results = {"torch (eager, fp32)": time_calls(torch_forward, args.runs, args.warmup),
               "onnxruntime (CPU EP, fp32)": time_calls(lambda: session.run(None, feeds), args.runs, args.warmup)}
    load = os.getloadavg()
    print(f"DMA dma_ho3d forward, batch 1, {args.threads} threads, {args.runs} runs after {args.warmup} warm-up; "
          f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} CPUs")
    print(f"outputs: torch hand joints vs official max rel {torch_vs_official:.1e}; "
          f"ONNX Runtime vs torch, worst output max rel {worst:.1e}")
    print(f"| backend | median wall s | min wall s | median / official {OFFICIAL_MEDIAN_S} s | min / official min "
          f"{OFFICIAL_MIN_S} s | median CPU s per call |")
    print("|---|---|---|---|---|---|")
    for name, (wall, cpu) in results.items():
        median, fastest = statistics.median(wall), min(wall)
        print(f"| {name} | {median:.3f} | {fastest:.3f} | {median / OFFICIAL_MEDIAN_S:.2f} | "
              f"{fastest / OFFICIAL_MIN_S:.2f} | {statistics.median(cpu):.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
