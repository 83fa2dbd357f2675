"""ONNX export of an inference graph and its comparison with torch, shared by every model family.

Each family wraps its model in an `nn.Module` whose forward takes tensors only and returns a
tuple of tensors (the inference outputs); this module exports it with a dynamic batch axis and
checks ONNX Runtime against torch.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

DEFAULT_OPSET = 17  # grid_sample needs >= 16; 17 is what the TorchScript exporter supports best


def export_onnx(module: torch.nn.Module, example_inputs: Sequence[torch.Tensor], path: str | Path,
                input_names: Sequence[str], output_names: Sequence[str], opset: int = DEFAULT_OPSET,
                dynamic_batch: bool = True) -> Path:
    """Export `module` (eval mode, no grad) to a single self-contained .onnx file.

    Axis 0 of every input and output is named "batch" and left dynamic when `dynamic_batch`.
    Uses the TorchScript exporter (`dynamo=False`): it handles the data-dependent-free graphs of
    our models and writes one file without external data.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    dynamic_axes = ({name: {0: "batch"} for name in (*input_names, *output_names)} if dynamic_batch else None)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        torch.onnx.export(module, tuple(example_inputs), str(path), input_names=list(input_names),
                          output_names=list(output_names), dynamic_axes=dynamic_axes, opset_version=opset,
                          dynamo=False, do_constant_folding=True)
    return path


def ort_session(path: str | Path, threads: int = 2, providers: Sequence[str] = ("CPUExecutionProvider",),
                allow_spinning: bool = True):
    """An ONNX Runtime session with full graph optimisation and a fixed intra-op thread count.

    allow_spinning=False makes idle worker threads wait passively: slower by a little on an idle
    machine, much steadier on one shared with other jobs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if not allow_spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=options, providers=list(providers))


def compare_with_torch(module: torch.nn.Module, session, inputs: Sequence[torch.Tensor],
                       input_names: Sequence[str]) -> list[float]:
    """Max absolute difference per output between torch and ONNX Runtime on the same inputs."""
    with torch.no_grad():
        expected = module.eval()(*inputs)
    if isinstance(expected, torch.Tensor):
        expected = (expected,)
    feeds = {name: t.detach().cpu().numpy() for name, t in zip(input_names, inputs)}
    got = session.run(None, feeds)
    return [float(np.abs(np.asarray(g, dtype=np.float64) - e.detach().cpu().numpy().astype(np.float64)).max())
            if e.numel() else 0.0 for g, e in zip(got, expected)]
