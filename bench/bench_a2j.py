"""A2J-Transformer CPU forward time: torch eager vs ONNX Runtime vs the official formulation.

    .venv/bin/python bench/bench_a2j.py [--runs 10] [--warmup 2] [--threads 2] [--weights kit|random]

Batch 1, 256x256 crop, `torch.no_grad()`, fixed thread count. Three variants, timed interleaved
(one call of each per round, so that load from other processes hits all of them alike):

* `eager`: our model in torch, inference mode (last decoder layer's heads only);
* `onnxruntime`: the exported graph (dynamic batch, opset 17) in ONNX Runtime, all graph optimisations;
* `official formulation`: the same weights computed the way the official code does: deformable
  attention by the reference per-level `grid_sample` sampler with separate projections, and the
  offset / weight heads and A2J aggregation of all 6 decoder layers. (The official forward also
  runs the 6 inert anchor-update MLPs and its loss; those are not included, so this baseline is
  slightly faster than the official code.)

Prints the median and min of each, the published official numbers (models.md section 0: median
0.525 s, min 0.460 s on a 2-core box), the ratios, the parameter count, the load average, and the
largest output difference between the variants (they must compute the same joints).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hand_object_pose.export.preset_export import write_graph  # noqa: E402
from hand_object_pose.models.a2j import FAMILY as A2J  # noqa: E402
from hand_object_pose.models.a2j.inference_graph import INPUT_NAMES  # noqa: E402
from hand_object_pose.export.onnx import ort_session  # noqa: E402
from hand_object_pose.models.a2j import PRESETS, build  # noqa: E402
from hand_object_pose.models.common.deformable_attention import (  # noqa: E402
    MultiScaleDeformableAttention, ms_deform_attn_reference)

OFFICIAL_MEDIAN_S = 0.525   # models.md section 0, least-disturbed pass
OFFICIAL_MIN_S = 0.460


def official_formulation_forward(self, query, reference_points, value_input, spatial_shapes, geometry=None):
    """MSDeformAttn as the official pure-PyTorch path computes it (used only for the baseline)."""
    n, q, _ = query.shape
    m, lv, p = self.n_heads, self.n_levels, self.n_points
    value = self.value_proj(value_input).view(n, value_input.shape[1], m, -1)
    offsets = self.sampling_offsets(query).view(n, q, m, lv, p, 2)
    weights = self.attention_weights(query).view(n, q, m, lv * p).softmax(-1).view(n, q, m, lv, p)
    normaliser = query.new_tensor([[w, h] for h, w in spatial_shapes])
    locations = reference_points[:, :, None, :, None, :] + offsets / normaliser[None, None, None, :, None, :]
    return self.output_proj(ms_deform_attn_reference(value, spatial_shapes, locations, weights))


def load_weights(model, source: str) -> None:
    if source == "kit":
        from hand_object_pose.export.parity_kit import SHARED_PARITY_DIR, load_kit
        from hand_object_pose.models.a2j.checkpoint import load_official
        load_official(model, load_kit("a2j_ih26m", SHARED_PARITY_DIR).official_state_dict())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--weights", choices=("kit", "random"), default="kit",
                        help="parity-kit formula weights (default) or random init")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: perf_counter (the published numbers); cpu: process CPU time, a measure of "
                             "work that other processes' load disturbs much less (use with --threads 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = build(PRESETS["a2j_ih26m"]).eval()
    load_weights(model, args.weights)
    baseline = build(PRESETS["a2j_ih26m"]).eval()
    baseline.load_state_dict(model.state_dict())
    for module in baseline.modules():
        if isinstance(module, MultiScaleDeformableAttention):
            module.forward = types.MethodType(official_formulation_forward, module)
    image = torch.rand(1, 3, 256, 256)

    with tempfile.TemporaryDirectory() as tmp:
        path = write_graph(A2J, model, Path(tmp) / "a2j.onnx")
        session = ort_session(path, threads=args.threads)
        feeds = {INPUT_NAMES[0]: image.numpy()}
        with torch.no_grad():
            variants = {
                "torch eager (ours)": lambda: model(image).joints,
                "onnxruntime (ours)": lambda: torch.from_numpy(session.run(None, feeds)[0]),
                "official formulation": lambda: baseline(image, all_layers=True).joints,
            }
            outputs = {name: run() for name, run in variants.items()}
            for _ in range(args.warmup - 1):
                for run in variants.values():
                    run()
            load_before = os.getloadavg()
            clock = time.perf_counter if args.clock == "wall" else time.process_time
            times = {name: [] for name in variants}
            for _ in range(args.runs):
                for name, run in variants.items():
                    start = clock()
                    run()
                    times[name].append(clock() - start)
            load_after = os.getloadavg()

    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    ref = outputs["official formulation"].numpy()
    print(f"A2J-Transformer a2j_ih26m, batch 1, {args.threads} threads, {args.runs} runs after {args.warmup} "
          f"warm-up, weights: {args.weights}, clock: {args.clock}")
    print(f"params: {params / 1e6:.2f} M total, {trainable / 1e6:.2f} M trainable "
          f"(official 42.89 M incl. 0.79 M of inert anchor-update MLPs)")
    print(f"load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f} on {os.cpu_count()} CPUs")
    wall = args.clock == "wall"
    # The published official numbers are wall-clock times with 2 threads: compare only like with like.
    official_cols = " median / official median | min / official min |" if wall else ""
    print(f"| variant | median {'fwd' if wall else 'CPU'} (s) | min {'fwd' if wall else 'CPU'} (s) |{official_cols} "
          f"max joint diff vs official formulation (rel) |")
    print("|---" * (4 + 2 * wall) + "|")
    for name, values in times.items():
        med, low = statistics.median(values), min(values)
        diff = np.abs(outputs[name].numpy() - ref).max() / np.abs(ref).max()
        ratios = f" {med / OFFICIAL_MEDIAN_S:.2f} | {low / OFFICIAL_MIN_S:.2f} |" if wall else ""
        print(f"| {name} | {med:.3f} | {low:.3f} |{ratios} {diff:.1e} |")
    if wall:
        print(f"| official code (models.md section 0) | {OFFICIAL_MEDIAN_S:.3f} | {OFFICIAL_MIN_S:.3f} | 1.00 | 1.00 | - |")
    base_med = statistics.median(times["official formulation"])
    base_min = min(times["official formulation"])
    for name in ("torch eager (ours)", "onnxruntime (ours)"):
        print(f"{name} vs official formulation, same machine and moment: median x{statistics.median(times[name]) / base_med:.2f}, "
              f"min x{min(times[name]) / base_min:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
