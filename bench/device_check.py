"""GPU check: every preset on ONNX Runtime's CUDA provider (fp32, static batch, CUDA graph, fp16) and TensorRT
provider (fp16), against CPU fp32.

    python bench/device_check.py [--presets ...] [--budget-s 420] [--runs 100] [--trt-cache bench/out/trt_cache]
        [--no-fp16] [--profile] [--default-dir models/default]

Run by bench/device_check.sh on a GPU machine (which installs onnxruntime-gpu first). On a machine without
the CUDA provider it prints one line and exits 0 (so `make bench` passes everywhere).

For each preset (the targets' presets first; `PRESET@maxpool` exports a KPT preset with the max-pool token
selection; the shipped default from --default-dir when it exists): the fp32 export (parity-kit weights when
../shared/reference/parity is there, else seeded random weights: the speed does not depend on them), batch 1
and 2 where the network takes one hand per crop (the default), then
- CPU fp32 once: the reference outputs;
- rows, each `--runs` timed calls after warm-up, network only (inputs and outputs bound on the GPU with I/O
  binding, no host round trip) -> FPS and latency p50/p90/p99, plus the host-to-host (numpy in, numpy out
  through `session.run`) p50 and the first start's time ("start s": session creation + first run, which
  builds a TensorRT engine or captures a CUDA graph):
  CUDA fp32; CUDA fp32 on the graph with its batch axis fixed (ONNX Runtime folds the shape computations,
  which otherwise run on the host); that static graph replayed as a CUDA graph (`enable_cuda_graph`: what the
  node's `cuda_graph` does); CUDA fp16 (the graph converted to float16, unless --no-fp16); TensorRT fp16
  (engine cache in --trt-cache) when TensorRT's libraries load; for the default also the node's own runner
  (inference.backends.OnnxRuntimeBackend, host arrays in and out) with `cuda_graph` off and on;
- the largest relative output drift vs CPU fp32 (max |gpu - cpu| / max |cpu|; probabilities absolute;
  integer outputs: fraction of elements that differ; keypoint tokens near a tie may differ).
--profile adds a row per preset with the op types that take most of the CUDA provider's time and the count
of nodes that ran off the GPU. Rows are printed as they are measured (partial results survive a time-out); a
preset is skipped when --budget-s would be exceeded. Targets (issue 16, network only, batch 1): KPT small
>= 300 FPS, A2J >= 150, DMA >= 150. Measured on an H200: docs/speed.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGET_FPS = {"kpt_ih26m_2p5d": 300, "kpt_h2o3d_3d": 300, "a2j_ih26m": 150, "dma_ho3d": 150}
PRESETS = ["kpt_ih26m_2p5d", "a2j_ih26m", "dma_ho3d", "kpt_h2o3d_3d", "kpt_h2o3d_3d_lite", "kpt_ih26m_angles",
           "kpt_ho3d_3d"]
TRT_BUILD_ESTIMATE_S = 90     # a preset is started only with this much budget left per provider
CUDA_PRESET_ESTIMATE_S = 45   # export + CPU reference + CUDA rows of one preset, when TensorRT is not measured


def say(text: str) -> None:
    print(text, flush=True)


def random_weights_model(family, config):
    """The family's model of `config` in eval mode with seeded random weights (the stand-in hand's templates for a
    family that needs object templates): what the GPU checks time when no trained weights are at hand."""
    import torch

    from hand_object_pose.export.preset_export import template_assets

    torch.manual_seed(0)
    assets = {}
    if family.uses_object_templates:
        hand, templates, _ = template_assets("", (), False)
        assets = {"hand": hand, "objects": templates}
    return family.build(config, **assets).eval()


def export_preset(preset: str, folder: Path):
    """(fp32 .onnx path, {input: batch-1 array}, weights note) for an author preset."""
    import torch

    from hand_object_pose.export.preset_export import write_graph
    from hand_object_pose.models.registry import get_preset

    name, _, selection = preset.partition("@")   # "kpt_...@maxpool": the preset with another token selection
    family, config = get_preset(name)
    if selection:
        config = dataclasses.replace(config, selection=selection)
    note, feed = "random weights (seed 0)", None
    try:
        sys.path.insert(0, str(REPO / "bench"))
        from bench_int8 import KITS, kit_model
        from hand_object_pose.export.parity_kit import SHARED_PARITY_DIR, load_kit
        if not selection and preset in KITS and (SHARED_PARITY_DIR / f"{KITS[preset]}.npz").is_file():
            model, feed = kit_model(preset, load_kit(KITS[preset], SHARED_PARITY_DIR))
            note = "parity-kit weights"
    except Exception as exc:  # noqa: BLE001 - fall back to random weights, say why
        note = f"random weights (seed 0; parity kit unusable: {type(exc).__name__})"
        feed = None
    if feed is None:
        model = random_weights_model(family, config)
        example = family.example_inputs(model, 1, torch.Generator().manual_seed(0))
        feed = {n: t.numpy() for n, t in zip(family.input_names(config), example)}
    path = write_graph(family, model, folder / f"{preset}.onnx")
    return path, feed, note


def tensorrt_loadable() -> bool:
    """Whether TensorRT's runtime library loads: the provider is listed by every onnxruntime-gpu build, but
    without libnvinfer its sessions fall back to CUDA after a failed load (rows that would measure nothing)."""
    import ctypes

    for name in ("libnvinfer.so.11", "libnvinfer.so.10", "libnvinfer.so"):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def batched(feed: dict, batch: int) -> dict:
    return {k: np.ascontiguousarray(np.repeat(v, batch, axis=0)) for k, v in feed.items()}


def drift(got: list, ref: list, names: list) -> tuple[float, str]:
    """(largest float drift, note on integer outputs)."""
    from hand_object_pose.export.check import compare_output

    worst, notes = 0.0, []
    for name, g, r in zip(names, got, ref):
        g, r = np.asarray(g), np.asarray(r)
        if r.dtype.kind in "biu":
            differ = float(np.count_nonzero(g != r)) / max(r.size, 1)
            if differ:
                notes.append(f"{name} {100 * differ:.0f}% differ")
        else:
            worst = max(worst, float(compare_output(name, g, r, True).relative))
    return worst, ", ".join(notes)


def profile_shapes(session, batch: int) -> dict:
    """TensorRT optimisation profile: batch 1..`batch`, every other axis as in the graph."""
    def shapes(n):
        out = []
        for i in session.get_inputs():
            dims = [n if (k == 0) else d for k, d in enumerate(i.shape)]
            out.append(f"{i.name}:" + "x".join(str(d) for d in dims))
        return ",".join(out)
    return {"trt_profile_min_shapes": shapes(1), "trt_profile_opt_shapes": shapes(1),
            "trt_profile_max_shapes": shapes(batch)}


def measure(ort, path: Path, label: str, providers, feed: dict, runs: int, reference: list,
            device: str = "cuda", host_runs: bool = True) -> dict:
    """One provider configuration: start time, network-only latency (I/O binding), host-to-host p50, drift.
    `host_runs` False for a CUDA-graph session (it runs only through I/O binding)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    started = time.perf_counter()
    session = ort.InferenceSession(str(path), options, providers=providers)
    names = [o.name for o in session.get_outputs()]
    # Network only: inputs copied to the GPU once, outputs left there (I/O binding).
    binding = session.io_binding()
    for name, value in feed.items():
        binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(value, device, 0))
    for name in names:
        binding.bind_output(name, device, 0)
    session.run_with_iobinding(binding)   # the first run (TensorRT builds its engine, a CUDA graph is captured)
    start_s = time.perf_counter() - started
    first = binding.copy_outputs_to_cpu()
    in_use = session.get_providers()[0]
    for _ in range(10):
        session.run_with_iobinding(binding)
    times = []
    for _ in range(runs):
        begin = time.perf_counter()
        session.run_with_iobinding(binding)   # returns after the GPU work is done (ORT synchronises)
        times.append(time.perf_counter() - begin)
    host = []
    for _ in range(max(10, runs // 5) if host_runs else 0):
        begin = time.perf_counter()
        session.run(None, feed)
        host.append(time.perf_counter() - begin)
    worst, notes = drift(first, reference, names)
    q = np.percentile(np.array(times) * 1e3, [50, 90, 99])
    return {"label": label, "provider": in_use, "start_s": start_s, "fps": 1.0 / statistics.median(times),
            "p50": q[0], "p90": q[1], "p99": q[2], "host_p50": 1e3 * statistics.median(host) if host else float("nan"),
            "drift": worst, "notes": notes}


def static_batch_graph(path: Path, batch: int, folder: Path) -> Path:
    """A copy of `path` in `folder` with the batch axis fixed to `batch` (what the node's `cuda_graph` runs)."""
    import onnx

    from hand_object_pose.inference.cuda_graph import static_batch_model

    out = folder / f"{path.stem}.batch{batch}.onnx"
    onnx.save(static_batch_model(onnx.load(str(path)), batch), str(out))
    return out


def node_backend(path: Path, label: str, gpu: str, feed: dict, runs: int, reference: list, cuda_graph: bool) -> dict:
    """The node's own runner (inference.backends.OnnxRuntimeBackend: host arrays in and out, as the Estimator
    calls it) with `cuda_graph` off or on: host-to-host latency and drift."""
    from hand_object_pose.inference.backends import OnnxRuntimeBackend

    started = time.perf_counter()
    backend = OnnxRuntimeBackend(str(path), [gpu, "CPUExecutionProvider"], cuda_graph=cuda_graph)
    first = backend.run(feed)
    start_s = time.perf_counter() - started
    for _ in range(10):
        backend.run(feed)
    times = []
    for _ in range(runs):
        begin = time.perf_counter()
        backend.run(feed)
        times.append(time.perf_counter() - begin)
    names = backend.output_names
    worst, notes = drift([first[n] for n in names], reference, names)
    q = np.percentile(np.array(times) * 1e3, [50, 90, 99])
    in_use = backend.in_use.split(":")[-1] + (", CUDA graph" if backend.cuda_graph else "")
    return {"label": label, "provider": in_use, "start_s": start_s, "fps": 1.0 / statistics.median(times),
            "p50": q[0], "p90": q[1], "p99": q[2], "host_p50": q[0], "drift": worst, "notes": notes}


def float16_graph(path: Path) -> Path:
    """`path` with float16 weights and arithmetic (float32 inputs and outputs kept), beside it: the CUDA
    provider's half-precision path when TensorRT is not there."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    half = convert_float_to_float16(onnx.load(str(path)), keep_io_types=True)
    out = path.with_name(path.stem + ".fp16.onnx")
    onnx.save(half, str(out))
    return out


def op_profile(ort, path: Path, providers, feed: dict, runs: int = 20, top: int = 6) -> str:
    """The op types taking most of the time in `runs` profiled calls, with the provider each ran on, and how
    many nodes ran outside the first provider (host round trips)."""
    import collections
    import os

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.gettempdir()) / "hop_device_profile")
    session = ort.InferenceSession(str(path), options, providers=providers)
    for _ in range(runs):
        session.run(None, feed)
    trace = session.end_profiling()
    events = json.loads(Path(trace).read_text())
    os.unlink(trace)
    per_op, off_gpu, total = collections.Counter(), set(), 0.0
    for event in events:
        args = event.get("args", {})
        if event.get("cat") != "Node" or "op_name" not in args or not event.get("name", "").endswith("_kernel_time"):
            continue
        provider = args.get("provider", "?").replace("ExecutionProvider", "")
        per_op[(args["op_name"], provider)] += event.get("dur", 0)
        total += event.get("dur", 0)
        if provider != providers[0][0].replace("ExecutionProvider", ""):
            off_gpu.add(event["name"])
    ranked = ", ".join(f"{op}@{prov} {100 * us / max(total, 1):.0f}%" for (op, prov), us in per_op.most_common(top))
    return f"kernel time {total / runs / 1e3:.2f} ms/call: {ranked}; {len(off_gpu)} nodes off the GPU provider"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="*", default=PRESETS)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--budget-s", type=float, default=420.0)
    parser.add_argument("--trt-cache", default=str(REPO / "bench" / "out" / "trt_cache"))
    parser.add_argument("--default-dir", default=str(REPO / "models" / "default"))
    parser.add_argument("--no-fp16", dest="fp16", action="store_false",
                        help="skip the CUDA fp16 rows (the graph converted to float16)")
    parser.add_argument("--profile", action="store_true",
                        help="print each preset's costliest op types on the CUDA provider (ONNX Runtime profiler)")
    parser.add_argument("--dry-run-cpu", action="store_true",
                        help="exercise the script without a GPU: the CPU provider stands in for CUDA, no TensorRT")
    args = parser.parse_args(argv)
    began = time.monotonic()
    import onnxruntime as ort

    if hasattr(ort, "preload_dlls"):
        try:
            ort.preload_dlls()   # CUDA / cuDNN from the nvidia-* wheels, when installed that way
        except Exception as exc:  # noqa: BLE001
            say(f"onnxruntime.preload_dlls: {exc}")
    available = ort.get_available_providers()
    gpu, device = "CUDAExecutionProvider", "cuda"
    if args.dry_run_cpu:
        gpu, device, available = "CPUExecutionProvider", "cpu", ["CPUExecutionProvider"]
        say("DRY RUN on the CPU: the 'CUDA fp32' rows are the CPU provider")
    elif "CUDAExecutionProvider" not in available:
        say(f"device_check: no CUDA provider in this onnxruntime ({ort.__version__}: {available}): GPU check "
            "skipped (bench/device_check.sh installs onnxruntime-gpu on a GPU machine)")
        return 0
    say(f"onnxruntime {ort.__version__}, providers {available}")
    trt_ok = "TensorrtExecutionProvider" in available and tensorrt_loadable()
    cache = Path(args.trt_cache)
    cache.mkdir(parents=True, exist_ok=True)
    jobs = [(p, [1]) for p in args.presets]
    meta = Path(args.default_dir) / "metadata.json"
    if meta.is_file():
        info = json.loads(meta.read_text())
        jobs.insert(0, (f"default:{info['preset']}", [1, 2]))   # one hand per crop: both hands in one batch
    say("| preset | weights | batch | provider (in use) | start s | FPS | p50 ms | p90 ms | p99 ms | host p50 ms "
        "| max drift vs CPU fp32 | target FPS |")
    say("|---|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for preset, batches in jobs:
            left = args.budget_s - (time.monotonic() - began)
            if left < (2 * TRT_BUILD_ESTIMATE_S if trt_ok else CUDA_PRESET_ESTIMATE_S):
                say(f"| {preset} | skipped: {left:.0f} s of the {args.budget_s:.0f} s budget left |")
                continue
            if preset.startswith("default:"):
                info = json.loads(meta.read_text())
                path = Path(args.default_dir) / info["model_file"]
                note = f"{'trained' if info.get('trained', True) else 'UNTRAINED'} ({args.default_dir})"
                sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
                size = info["input"]["size"]
                feed = {i.name: np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
                        for i in sess.get_inputs()}
            else:
                path, feed, note = export_preset(preset, Path(tmp))
            cpu = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            half = None
            if args.fp16:
                try:
                    half = float16_graph(path if not preset.startswith("default:") else
                                         Path(shutil.copy(path, Path(tmp) / path.name)))
                except Exception as exc:  # noqa: BLE001 - the fp32 rows are still measured
                    say(f"| {preset} | {note} | - | CUDA fp16: conversion FAILED {type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:160] if str(exc) else ''} |")
            if args.profile:
                try:
                    say(f"| {preset} | profile | 1 | CUDA fp32 | "
                        f"{op_profile(ort, path, [(gpu, {}), 'CPUExecutionProvider'], batched(feed, 1))} |")
                except Exception as exc:  # noqa: BLE001
                    say(f"| {preset} | profile FAILED {type(exc).__name__}: {str(exc).splitlines()[0][:160]} |")
            for batch in batches:
                inputs = batched(feed, batch)
                reference = cpu.run(None, inputs)
                def session_row(label, graph, providers, host_runs=True):
                    return label, lambda: measure(ort, graph, label, providers, inputs, args.runs, reference, device,
                                                  host_runs)

                cuda = [(gpu, {}), "CPUExecutionProvider"]
                static = static_batch_graph(path, batch, Path(tmp))
                configs = [session_row("CUDA fp32", path, cuda), session_row("CUDA fp32 static batch", static, cuda)]
                if not args.dry_run_cpu:
                    configs.append(session_row("CUDA graph fp32 static batch", static,
                                               [(gpu, {"enable_cuda_graph": "1"})], host_runs=False))
                if half is not None:
                    configs.append(session_row("CUDA fp16", half, cuda))
                if trt_ok:
                    trt = {"trt_fp16_enable": True, "trt_engine_cache_enable": True,
                           "trt_engine_cache_path": str(cache), "trt_timing_cache_enable": True,
                           "trt_timing_cache_path": str(cache), **profile_shapes(cpu, max(batches))}
                    configs.append(session_row("TensorRT fp16", path, [("TensorrtExecutionProvider", trt), *cuda]))
                if preset.startswith("default:"):   # the node's own runner, as the Estimator calls it
                    for label, on in (("node backend", False), ("node backend, cuda_graph", True)):
                        configs.append((label, lambda label=label, on=on: node_backend(
                            path, label, gpu, inputs, args.runs, reference, on)))
                for label, run in configs:
                    try:
                        r = run()
                    except Exception as exc:  # noqa: BLE001 - one failing provider must not stop the check
                        say(f"| {preset} | {note} | {batch} | {label}: FAILED {type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:160] if str(exc) else ''} |")
                        continue
                    target = TARGET_FPS.get(preset, "-") if batch == 1 else "-"
                    say(f"| {preset} | {note} | {batch} | {label} ({r['provider']}) | {r['start_s']:.1f} | "
                        f"{r['fps'] * batch:.0f} | {r['p50']:.2f} | {r['p90']:.2f} | {r['p99']:.2f} | "
                        f"{r['host_p50']:.2f} | {r['drift']:.1e}{'; ' + r['notes'] if r['notes'] else ''} | "
                        f"{target} |")
    say(f"FPS counts crops per second (batch x calls); network only, I/O binding; total {time.monotonic() - began:.0f} s")
    if not trt_ok:
        say("TensorRT provider not available in this onnxruntime-gpu install (TensorRT libraries missing or "
            "not loadable): TensorRT rows not measured")
    return 0


if __name__ == "__main__":
    sys.exit(main())
