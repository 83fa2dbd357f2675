"""GPU check without onnxruntime-gpu: every preset's inference graph in PyTorch on CUDA, fp32 and fp16.

    python bench/device_torch_check.py [--presets ...] [--batches 1 2] [--runs 100] [--budget-s 150]

The PyTorch counterpart of bench/device_check.py for a GPU machine that has a CUDA build of PyTorch but on
which onnxruntime-gpu cannot be installed. It measures the same graphs the ONNX export traces
(`family.inference_graph`), seeded random weights (speed does not depend on them), network only: inputs
already on the GPU, outputs left there, `torch.cuda.synchronize()` after each call. Rows per preset and batch:
- eager fp32 (TF32 matrix products off: the fp32 reference);
- eager fp16 (`torch.autocast`): largest relative output drift vs fp32;
- fp16 replayed as one CUDA graph (no per-kernel launch cost from Python), where capture works.
On a machine without CUDA it prints one line and exits 0 (so `make bench` passes everywhere).
Targets (issue 16, batch 1, network only): KPT small >= 300 FPS, A2J >= 150, DMA >= 150.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from device_check import PRESETS, TARGET_FPS, random_weights_model, say  # noqa: E402  (bench/ is this script's folder)

DEFAULT_PRESET = "hand_heatmap_r18h"   # the shipped default's network (its weights do not change its speed)


def build(preset: str, batch: int, device):
    """(inference graph on `device`, example inputs on `device`) with seeded random weights."""
    import torch

    from hand_object_pose.models.registry import get_preset

    family, config = get_preset(preset)
    model = random_weights_model(family, config)
    graph = family.inference_graph(model).to(device).eval()
    example = family.example_inputs(model, batch, torch.Generator().manual_seed(0))
    return graph, tuple(t.to(device) for t in example)


def float_outputs(outputs) -> list:
    return [o.float() for o in outputs if o.is_floating_point()]


def relative_drift(got: list, ref: list) -> float:
    worst = 0.0
    for g, r in zip(got, ref):
        scale = float(r.abs().max().clamp_min(1e-12))
        worst = max(worst, float((g - r).abs().max()) / scale)
    return worst


def time_gpu(fn, runs: int, warmup: int = 10) -> list[float]:
    """Milliseconds of each of `runs` calls, each followed by a synchronize (the output is ready)."""
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        begin = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(1e3 * (time.perf_counter() - begin))
    return times


def graph_replay(graph, inputs):
    """A callable replaying `graph(*inputs)` under fp16 autocast as one captured CUDA graph."""
    import torch

    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream), torch.no_grad(), torch.autocast("cuda", dtype=torch.float16):
        for _ in range(3):   # warm-up on a side stream, as capture requires
            graph(*inputs)
    torch.cuda.current_stream().wait_stream(stream)
    captured = torch.cuda.CUDAGraph()
    with torch.cuda.graph(captured), torch.no_grad(), torch.autocast("cuda", dtype=torch.float16):
        static_out = graph(*inputs)
    return captured.replay, static_out


def row(preset: str, batch: int, label: str, times: list, drift: str) -> None:
    p50 = statistics.median(times)
    p90, p99 = (sorted(times)[min(len(times) - 1, int(q * len(times)))] for q in (0.9, 0.99))
    target = TARGET_FPS.get(preset, "-") if batch == 1 else "-"
    say(f"| {preset} | {batch} | {label} | {1e3 * batch / p50:.0f} | {p50:.2f} | {p90:.2f} | {p99:.2f} | {drift} "
        f"| {target} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="*", default=[DEFAULT_PRESET, *PRESETS])
    parser.add_argument("--batches", nargs="*", type=int, default=[1, 2])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--budget-s", type=float, default=150.0)
    args = parser.parse_args(argv)
    began = time.monotonic()
    import torch

    if not torch.cuda.is_available():
        say(f"device_torch_check: no CUDA device for torch {torch.__version__}: skipped")
        return 0
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    say(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}")
    say("| preset | batch | PyTorch CUDA | FPS | p50 ms | p90 ms | p99 ms | max drift vs fp32 | target FPS |")
    say("|---|---|---|---|---|---|---|---|---|")
    for preset in args.presets:
        for batch in args.batches:
            if time.monotonic() - began > args.budget_s:
                say(f"| {preset} | {batch} | skipped: the {args.budget_s:.0f} s budget is spent |")
                continue
            try:
                graph, inputs = build(preset, batch, "cuda")
                with torch.no_grad():
                    reference = float_outputs(graph(*inputs))
                    row(preset, batch, "eager fp32", time_gpu(lambda: graph(*inputs), args.runs), "-")
                    with torch.autocast("cuda", dtype=torch.float16):
                        half = float_outputs(graph(*inputs))
                        times = time_gpu(lambda: graph(*inputs), args.runs)
                row(preset, batch, "eager fp16", times, f"{relative_drift(half, reference):.1e}")
            except Exception as exc:  # noqa: BLE001 - one failing preset must not stop the check
                say(f"| {preset} | {batch} | FAILED {type(exc).__name__}: {str(exc).splitlines()[0][:160]} |")
                continue
            try:
                replay, static_out = graph_replay(graph, inputs)
                times = time_gpu(replay, args.runs)
                drift = relative_drift(float_outputs(static_out), reference)
                row(preset, batch, "CUDA graph fp16", times, f"{drift:.1e}")
            except Exception as exc:  # noqa: BLE001 - capture fails on graphs that synchronise with the host
                say(f"| {preset} | {batch} | CUDA graph fp16: not captured ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0][:120]}) |")
            del graph, inputs
            torch.cuda.empty_cache()
    say(f"FPS counts crops per second (batch x calls); network only, random weights; "
        f"total {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
