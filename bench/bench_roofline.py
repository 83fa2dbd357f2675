"""How fast could each network possibly run here in fp32? Multiply-accumulates vs this machine's peak.

    .venv/bin/python bench/bench_roofline.py [--threads 2] [--presets kpt_ih26m_2p5d a2j_ih26m ...]

The issues ask ONNX Runtime for at most half the official code's time "at identical outputs", i.e. in
fp32. Convolutions and matrix products are most of every forward here, and neither ONNX Runtime nor
any other library can run them faster than the CPU's fp32 multiply-add rate. This script:

1. measures that rate on this machine with ONNX Runtime itself (`--threads` threads, median of
   `--runs` calls after warm-up): one large MatMul (2048^3) and one large 3x3 convolution
   (256 -> 256 channels on 64x64), and takes the faster as the machine's sustained peak;
2. counts each preset's multiply-accumulates of one batch-1 forward of the exported inference graph
   with `torch.utils.flop_counter.FlopCounterMode` (convolutions, transposed convolutions, matrix
   products and attention; element-wise work, sampling and softmax are not counted, so the count is
   a lower bound of the work);
3. prints the floor = MACs / peak beside the official time and the issues' target (half of it);
4. for A2J, whose floor alone would fit, adds the time deformable attention's sampling takes in its
   cheapest stock-operator form (one row Gather per layer, nothing else) at the model's sizes.

A preset whose floor exceeds the target cannot meet it in fp32 on this machine, however its graph is
arranged: only fewer operations (a smaller network: other outputs) or cheaper arithmetic (bf16 / int8:
other outputs) would. Needs the parity kits in ../shared/reference/parity/ for DMA (its templates).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import time_calls  # noqa: E402  (bench/timing.py)

# Official code, CPU, batch 1, 2 threads, median of the least-disturbed pass (models.md section 0),
# the same figures bench_kpt / bench_a2j / bench_dma print.
OFFICIAL_SECONDS = {"kpt_ih26m_2p5d": 0.110, "kpt_ih26m_angles": 0.328, "kpt_ho3d_3d": 0.356,
                    "kpt_h2o3d_3d": 0.120, "a2j_ih26m": 0.525, "dma_ho3d": 0.224}


def _ort_rate(nodes, inputs, initializers, feeds, macs: float, threads: int, runs: int) -> float:
    """GMAC/s of a one-node graph in ONNX Runtime (median of `runs`)."""
    graph = helper.make_graph(nodes, "peak", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    wall, _ = time_calls(lambda: session.run(None, feeds), runs, warmup=3)
    return macs / statistics.median(wall) / 1e9


def peak_rates(threads: int, runs: int) -> dict:
    """{"matmul": GMAC/s, "conv3x3": GMAC/s} of ONNX Runtime fp32 on this machine."""
    rng = np.random.default_rng(0)
    n = 2048
    weight = numpy_helper.from_array(rng.random((n, n), dtype=np.float32), "w")
    matmul = _ort_rate([helper.make_node("MatMul", ["x", "w"], ["y"])],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, n])], [weight],
                       {"x": rng.random((n, n), dtype=np.float32)}, float(n) ** 3, threads, runs)
    c, side = 256, 64
    kernel = numpy_helper.from_array(rng.random((c, c, 3, 3), dtype=np.float32) * 0.01, "k")
    conv = _ort_rate([helper.make_node("Conv", ["x", "k"], ["y"], pads=[1, 1, 1, 1])],
                     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, side, side])], [kernel],
                     {"x": rng.random((1, c, side, side), dtype=np.float32)}, float(c * c * 9 * side * side),
                     threads, runs)
    return {"matmul": matmul, "conv3x3": conv}


def _frozen(module: torch.nn.Module) -> torch.nn.Module:
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module.eval()


def forward_of(name: str):
    """(callable running one batch-1 inference forward, description) for a preset."""
    torch.manual_seed(0)
    if name.startswith("kpt_"):
        from hand_object_pose.models.kpt.inference_graph import KptInferenceGraph
        from hand_object_pose.models.kpt import PRESETS, build

        graph = KptInferenceGraph(_frozen(build(PRESETS[name])))
        image = torch.rand(1, 3, 2 * PRESETS[name].heatmap_size, 2 * PRESETS[name].heatmap_size)
        return lambda: graph(image), "exported inference graph (fixed-K selection)"
    if name.startswith("a2j_"):
        from hand_object_pose.models.a2j import PRESETS, build

        model = _frozen(build(PRESETS[name]))
        image = torch.rand(1, 3, 256, 256)
        return lambda: model(image), "model forward"
    if name == "dma_ho3d":
        from hand_object_pose.models.dma.inference_graph import DMAInferenceGraph
        from hand_object_pose.export.parity_dma import build_kit_model
        from hand_object_pose.export.parity_kit import SHARED_PARITY_DIR, load_kit

        model, _, inputs, _ = build_kit_model(load_kit("dma_ho3d", SHARED_PARITY_DIR), compute_discarded_blocks=False)
        graph = _frozen(DMAInferenceGraph(model))
        return lambda: graph(*inputs), "exported inference graph (parity kit templates)"
    raise ValueError(f"no roofline recipe for preset {name!r}; known: {', '.join(OFFICIAL_SECONDS)}")


def a2j_sampling_floor(threads: int, runs: int) -> tuple[float, str]:
    """Seconds that deformable attention's sampling alone takes in ONNX Runtime at A2J's sizes, in its
    cheapest stock-operator form: one row `Gather` of the 4 bilinear corners of every sample from a
    channels-last value canvas, with no weighting, reduction or index arithmetic at all."""
    from hand_object_pose.models.a2j import PRESETS, build
    from hand_object_pose.models.common.deformable_attention import MultiScaleDeformableAttention

    config = PRESETS["a2j_ih26m"]
    model = _frozen(build(config))
    calls = []
    hooks = [m.register_forward_pre_hook(lambda _, args: calls.append((args[0].shape[1], args[2].shape[1])))
             for m in model.modules() if isinstance(m, MultiScaleDeformableAttention)]
    with torch.no_grad():
        model(torch.rand(1, 3, 256, 256))
    for hook in hooks:
        hook.remove()
    head_dim = config.d_model // config.n_heads
    samples_per_query = config.n_levels * config.n_points * 4  # 4 bilinear corners each
    rng = np.random.default_rng(0)
    total = 0.0
    for queries, tokens in sorted(set(calls)):
        rows = config.n_heads * tokens
        count = config.n_heads * queries * samples_per_query
        node = helper.make_node("Gather", ["v", "i"], ["y"], axis=0)
        inputs = [helper.make_tensor_value_info("v", TensorProto.FLOAT, [rows, head_dim]),
                  helper.make_tensor_value_info("i", TensorProto.INT64, [count])]
        feeds = {"v": rng.random((rows, head_dim), dtype=np.float32), "i": rng.integers(0, rows, count)}
        rate = _ort_rate([node], inputs, [], feeds, 1e9, threads, runs)  # "GMAC" = 1e9 per call: calls per second
        total += calls.count((queries, tokens)) / rate
    layers = ", ".join(f"{calls.count(c)} x ({c[0]} queries over {c[1]} tokens)" for c in sorted(set(calls)))
    return total, layers


def count_macs(forward) -> float:
    """Multiply-accumulates of one call (FlopCounterMode counts 2 FLOPs per MAC)."""
    counter = FlopCounterMode(display=False)
    with counter:  # not under no_grad: its module tracker needs autograd (the parameters are frozen instead)
        forward()
    return counter.get_total_flops() / 2.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=list(OFFICIAL_SECONDS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    rates = peak_rates(args.threads, args.runs)
    peak = max(rates.values())
    rows = []
    for name in args.presets:
        forward, what = forward_of(name)
        rows.append((name, count_macs(forward), what))
    print(f"ONNX Runtime {ort.__version__}, fp32, {args.threads} threads, median of {args.runs}; load average "
          f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(f"sustained peak: MatMul 2048^3 {rates['matmul']:.1f} GMAC/s, Conv 3x3 256->256 @64x64 "
          f"{rates['conv3x3']:.1f} GMAC/s; floor uses {peak:.1f} GMAC/s")
    print("| preset | GMAC (conv + matmul) | fp32 floor s | official s | target s (0.5x) | floor / official "
          "| target reachable in fp32 |")
    print("|---|---|---|---|---|---|---|")
    for name, macs, what in rows:
        floor = macs / (peak * 1e9)
        official = OFFICIAL_SECONDS.get(name)
        if official is None:
            print(f"| {name} | {macs / 1e9:.2f} | {floor:.3f} | - | - | - | - |")
            continue
        print(f"| {name} | {macs / 1e9:.2f} | {floor:.3f} | {official:.3f} | {official / 2:.3f} "
              f"| {floor / official:.2f} | {'no' if floor > official / 2 else 'only if other work < ' f'{official / 2 - floor:.3f} s'} |")
    if "a2j_ih26m" in args.presets:
        sampling, layers = a2j_sampling_floor(args.threads, args.runs)
        macs = next(m for n, m, _ in rows if n == "a2j_ih26m")
        floor = macs / (peak * 1e9) + sampling
        print(f"a2j_ih26m: deformable sampling as one stock Gather per layer ({layers}): {sampling:.3f} s; "
              f"with the GEMM floor {floor:.3f} s = {floor / OFFICIAL_SECONDS['a2j_ih26m']:.2f}x official, leaving "
              f"{OFFICIAL_SECONDS['a2j_ih26m'] / 2 - floor:.3f} s for every other operation of 12 attention layers "
              f"(weights, softmax, normalisation, residuals, heads)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
