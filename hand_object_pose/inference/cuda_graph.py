"""CUDA-graph replay of an ONNX network on ONNX Runtime's CUDA provider: one static-batch session per batch size.

At batch 1 our networks are bound by the host launching their small kernels one by one, not by the GPU.
Replaying a captured run as one CUDA graph removes that: on an H200 (docs/speed.md, `bench/device_check.py`,
4 Dec 2026) the shipped default went from 0.94 to 0.49 ms per call, A2J from 6.8 to 4.6 ms, DMA from 7.1 to
3.3 ms, KPT (greedy selection) from 9.9 to 5.1 ms. ONNX Runtime captures only a graph whose every node runs
on the CUDA provider; with a dynamic batch axis the shape computations run on the host, so each session here
gets a copy of the model with the batch axis fixed, which lets ONNX Runtime fold them away.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

LOG = logging.getLogger(__name__)

# ONNX Runtime's tensor type strings -> numpy dtypes (the input types our exports use).
ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
              "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(uint8)": np.uint8,
              "tensor(bool)": np.bool_}

CUDA_GRAPH_OPTION = {"enable_cuda_graph": "1"}
"""CUDA provider option that makes a session capture its first run and replay it afterwards."""


class CaptureUnavailable(RuntimeError):
    """The network cannot be captured as a CUDA graph (a node on the host, an operator that cannot be captured)."""


def static_batch_model(model, batch: int):
    """A copy of the ONNX `model` (ModelProto) with axis 0 of every graph input and output fixed to `batch`."""
    fixed = type(model)()
    fixed.CopyFrom(model)
    for value in (*fixed.graph.input, *fixed.graph.output):
        axis = value.type.tensor_type.shape.dim[0]
        axis.ClearField("dim_param")
        axis.dim_value = int(batch)
    return fixed


class _Replay:
    """One static-batch session, its inputs in device buffers that each call overwrites in place (a captured
    graph reads the addresses it was captured with), outputs bound on the device."""

    def __init__(self, ort, model_bytes: bytes, options, providers: Sequence, device: str):
        try:
            self.session = ort.InferenceSession(model_bytes, sess_options=options, providers=list(providers))
        except Exception as exc:  # onnxruntime raises its own Fail type when capture is impossible
            raise CaptureUnavailable(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
        self.binding = self.session.io_binding()
        self.inputs = {}
        for meta in self.session.get_inputs():
            if meta.type not in ORT_DTYPES:
                raise CaptureUnavailable(f"input {meta.name!r} has type {meta.type}, not one of {sorted(ORT_DTYPES)}")
            value = ort.OrtValue.ortvalue_from_shape_and_type(meta.shape, ORT_DTYPES[meta.type], device, 0)
            self.binding.bind_ortvalue_input(meta.name, value)
            self.inputs[meta.name] = (value, ORT_DTYPES[meta.type])
        for meta in self.session.get_outputs():
            self.binding.bind_output(meta.name, device, 0)
        self.captured = False

    def run(self, inputs: Mapping[str, np.ndarray]) -> list:
        for name, (value, dtype) in self.inputs.items():
            value.update_inplace(np.ascontiguousarray(inputs[name], dtype=dtype))
        if self.captured:
            self.session.run_with_iobinding(self.binding)
        else:
            try:   # the first run captures the graph: an operator that cannot be captured fails here
                self.session.run_with_iobinding(self.binding)
            except Exception as exc:  # noqa: BLE001 - ONNX Runtime's own exception types
                raise CaptureUnavailable(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") \
                    from exc
            self.captured = True
        return self.binding.copy_outputs_to_cpu()


class CapturedRuns:
    """CUDA-graph replays of the ONNX network at `path`, one session per batch size, made on first use.

    `providers` normally `[("CUDAExecutionProvider", {"enable_cuda_graph": "1", ...})]` with `device` "cuda"; any
    provider and device "cpu" run the same code without a graph (tests). `run` returns the outputs in the graph's
    order, or None for a batch size beyond the `max_batches` sessions kept (the caller runs its plain session).
    CaptureUnavailable from `run` when a session cannot be made or its first run cannot be captured.
    """

    def __init__(self, path: str | Path, options, providers: Sequence, device: str = "cuda", max_batches: int = 4):
        import onnx
        import onnxruntime as ort

        self._ort = ort
        self._model = onnx.load(str(path))
        self._options = options
        self._providers = list(providers)
        self._device = device
        self._max_batches = int(max_batches)
        self._replays: dict[int, _Replay] = {}

    @property
    def batch_sizes(self) -> list[int]:
        return sorted(self._replays)

    def run(self, inputs: Mapping[str, np.ndarray], batch: int) -> Optional[list]:
        replay = self._replays.get(batch)
        if replay is None:
            if len(self._replays) >= self._max_batches:
                return None
            model = static_batch_model(self._model, batch).SerializeToString()
            replay = _Replay(self._ort, model, self._options, self._providers, self._device)
            self._replays[batch] = replay
            LOG.info("CUDA graph: a static session for batch %d (%d in all)", batch, len(self._replays))
        return replay.run(inputs)
