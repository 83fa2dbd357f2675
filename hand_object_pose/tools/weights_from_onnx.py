"""Recover a training state dict from one of our own ONNX exports (e.g. the shipped default), so that a shipped
network can be fine-tuned without the training run's checkpoint.

    python -m hand_object_pose.tools.weights_from_onnx models/default/hand_heatmap_r18h.onnx OUT.pt \\
        [--model hand_heatmap_r18h] [--override key=value ...]

The exporter folds each batch norm that follows a convolution into that convolution (weight scaled, a bias
added), and the compact weight storage keeps tensors in fp16. The folded pair comes back as the convolution with
the folded weight and a batch norm that passes its input through plus the folded bias (mean 0, variance 1 - eps,
scale 1): in eval mode the recovered model computes what the file computes (up to the fp16 storage). Which
tensor of the file belongs to which parameter is found by exporting the same preset once with known, distinct
tensors and comparing the graphs node by node.
Batch statistics of such a folded norm are gone: fine-tune with the norms frozen (`freeze_norm` of the
hand_heatmap run), else the first steps see un-normalised activations.

OUT.pt holds {"model": state dict, "source": the file, and the step / epoch / task its export record names} (read
with `torch.load(weights_only=True)`; `initial_weights` of a training config) and is checked against the file with
ONNX Runtime before it is written.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn


def onnx_node_tensors(path: Path) -> dict:
    """(op type, its n-th node of that type, input slot) -> float32 array for every node input that is a stored
    tensor (an initializer, or one through the Casts of the compact storage and the Identities of a tensor stored
    once for several uses: those are not counted as nodes). Keyed by place, not by name: the exporter names folded
    tensors by counter and stores equal tensors (a random network's zero biases) once. Counted per op type so that
    files exported before a change of the parameter-free read-out (other nodes between the Gemms) still match."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(path))
    stored = {t.name: numpy_helper.to_array(t).astype(np.float32) for t in proto.graph.initializer}
    storage = []   # compact storage: initializer (fp16) -> Cast; a tensor stored once for several uses: Identity
    for node in proto.graph.node:
        if node.op_type in ("Cast", "Identity") and node.input[0] in stored:
            stored[node.output[0]] = stored[node.input[0]]
            storage.append(node)
    computing = [node for node in proto.graph.node if not any(node is kept for kept in storage)]
    places, seen = {}, {}
    for node in computing:
        ordinal = seen[node.op_type] = seen.get(node.op_type, -1) + 1
        places.update({(node.op_type, ordinal, slot): stored[name]
                       for slot, name in enumerate(node.input) if name in stored})
    return places


def folded_pairs(model: nn.Module) -> list:
    """(conv name, norm name) of every convolution directly followed by a batch norm, in module order (the
    pairs the ONNX exporter folds)."""
    modules = list(model.named_modules())
    pairs = []
    for (name, module), (next_name, following) in zip(modules, modules[1:]):
        if isinstance(module, nn.Conv2d) and isinstance(following, nn.BatchNorm2d):
            pairs.append((name, next_name))
    return pairs


def trace_places(family, model: nn.Module) -> dict:
    """place (as onnx_node_tensors) -> (state-dict key, kind) of the export of `model`'s architecture; kind "plain" (the
    tensor itself), "folded_weight" (a convolution's weight with its norm folded in) or "folded_bias" (the folded
    norm's bias). Found by exporting the architecture once with every tensor distinct and the folded norms
    passing their input through (so the folded weight is the convolution's and the folded bias the norm's).
    Overwrites `model`'s tensors with those probe values."""
    from hand_object_pose.export.preset_export import write_graph

    folded = dict(folded_pairs(model))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
        for norm_name in folded.values():
            norm = model.get_submodule(norm_name)
            norm.running_mean.zero_()
            norm.running_var.fill_(1.0 - norm.eps)
            norm.weight.fill_(1.0)
    values = {key: tensor.numpy().copy() for key, tensor in model.state_dict().items() if tensor.is_floating_point()}
    kinds = {f"{conv}.weight": "folded_weight" for conv in folded}
    kinds.update({f"{norm}.bias": "folded_bias" for norm in folded.values()})
    with tempfile.TemporaryDirectory() as folder:
        places = onnx_node_tensors(write_graph(family, model, Path(folder) / "probe.onnx"))
    traced = {}
    for place, value in places.items():
        for key, expected in values.items():
            if expected.shape == value.shape and np.allclose(value, expected, rtol=1e-5, atol=1e-6):
                traced[place] = (key, kinds.get(key, "plain"))
                break
    return traced


def recover_state_dict(family, model: nn.Module, onnx_path: Path) -> dict:
    """The state dict of `model`'s architecture that computes what `onnx_path` computes (eval mode)."""
    folded = dict(folded_pairs(model))
    norm_of = {f"{norm}.bias": norm for norm in folded.values()}
    traced = trace_places(family, model)
    places = onnx_node_tensors(onnx_path)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    taken = set()
    for place, (key, kind) in traced.items():
        value = places.get(place)
        if value is None or value.shape != tuple(state[key].shape):
            raise ValueError(f"{onnx_path} has no tensor of shape {tuple(state[key].shape)} where the preset's {key} "
                             f"goes ({place[0]} node {place[1]}, input {place[2]}): another preset or overrides")
        state[key] = torch.from_numpy(value.copy()).to(state[key].dtype)
        taken.add(key)
        if kind == "folded_bias":   # the norm passes its input through; the file's folded bias is its bias
            norm = norm_of[key]
            eps = model.get_submodule(norm).eps
            state[f"{norm}.weight"] = torch.ones_like(state[f"{norm}.weight"])
            state[f"{norm}.running_mean"] = torch.zeros_like(state[f"{norm}.running_mean"])
            state[f"{norm}.running_var"] = torch.full_like(state[f"{norm}.running_var"], 1.0 - eps)
            taken.update({f"{norm}.weight", f"{norm}.running_mean", f"{norm}.running_var"})
    untouched = [k for k, v in state.items() if k not in taken and v.is_floating_point()]
    if untouched:
        raise ValueError(f"{onnx_path} holds no value for {len(untouched)} tensors of the preset, e.g. {untouched[:4]}")
    return state


def max_output_difference(family, model: nn.Module, onnx_path: Path) -> float:
    """Largest |torch - ONNX Runtime| over every output, relative to the output's range, on one example input."""
    import onnxruntime as ort

    graph = family.inference_graph(model.eval())
    example = family.example_inputs(model, 1, torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = graph(*example)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feeds = {i.name: t.numpy() for i, t in zip(session.get_inputs(), example)}
    worst = 0.0
    for got, want in zip(session.run(None, feeds), expected):
        want = want.numpy()
        if want.dtype.kind != "f":
            continue
        scale = max(float(np.abs(want).max()), 1e-3)
        worst = max(worst, float(np.abs(got - want).max()) / scale)
    return worst


def main(argv=None) -> int:
    from hand_object_pose.export.preset_export import ExportError, read_record
    from hand_object_pose.models.registry import get_preset
    from hand_object_pose.tools.export_onnx import parse_overrides

    parser = argparse.ArgumentParser(prog="python -m hand_object_pose.tools.weights_from_onnx",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("onnx", help="an ONNX file this project exported (fp32 or compact weights; not int8)")
    parser.add_argument("out", help="the state dict to write (.pt)")
    parser.add_argument("--model", default="", help="its preset (default: the one its export record names)")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="model config overrides it was exported with")
    parser.add_argument("--tolerance", type=float, default=5e-3,
                        help="largest output difference (relative to each output's range) accepted")
    args = parser.parse_args(argv)
    onnx_path = Path(args.onnx)
    try:
        record = read_record(onnx_path) or {}
        preset = args.model or record.get("preset", "")
        if not preset:
            raise ValueError(f"{onnx_path}: no export record names its preset: give --model")
        family, config = get_preset(preset)
        overrides = {**record.get("overrides", {}), **parse_overrides(args.override, preset)}
        config = dataclasses.replace(config, **overrides)
        model = family.build(config).eval()
        state = recover_state_dict(family, model, onnx_path)
        model.load_state_dict(state)
        difference = max_output_difference(family, model, onnx_path)
    except (ValueError, FileNotFoundError, ExportError) as exc:
        print(f"weights_from_onnx: {exc}", file=sys.stderr)
        return 2
    if difference > args.tolerance:
        print(f"weights_from_onnx: the recovered model differs from {onnx_path} by {difference:.2e} of an output's "
              f"range (tolerance {args.tolerance:.0e}): not written", file=sys.stderr)
        return 1
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    trained = record.get("weights", {})   # the run the file came from: its step and task travel with the weights
    torch.save({"model": state, "source": str(onnx_path),
                **{key: trained[key] for key in ("step", "epoch", "task") if key in trained}}, args.out)
    print(f"wrote {args.out}: {preset}, {len(state)} tensors, largest output difference vs the file {difference:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
