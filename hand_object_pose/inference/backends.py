"""Network runners: ONNX Runtime (TensorRT / CUDA / CPU providers) and torch (CPU / CUDA).

Both take and return numpy arrays keyed by name, so the adapters and the pipeline do not care which
one runs. Both check after start-up where the network really runs: onnxruntime-gpu silently falls
back to the CPU when CUDA is unusable (and `get_available_providers()` still lists CUDA), so the
session's own `get_providers()` is what counts.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from .config import GPU_PROVIDERS
from .cuda_graph import CUDA_GRAPH_OPTION, CaptureUnavailable, CapturedRuns

LOG = logging.getLogger(__name__)


class GpuUnavailableError(RuntimeError):
    """A GPU was required (`require_gpu`) but the network runs on the CPU."""


def check_gpu_use(requested_gpu: bool, in_use: str, active_on_gpu: bool, require_gpu: bool) -> None:
    """Warn loudly, or raise GpuUnavailableError when `require_gpu`, if a requested GPU is not used."""
    if not requested_gpu or active_on_gpu:
        return
    message = (f"A GPU was requested but the network runs on {in_use}: inference will be much slower. "
               "Check the CUDA/TensorRT installation (onnxruntime-gpu, not onnxruntime; matching CUDA and "
               "cuDNN libraries on the library path) or request the CPU explicitly.")
    if require_gpu:
        raise GpuUnavailableError(message + " (require_gpu is set)")
    LOG.warning("!" * 80 + "\n" + message + "\n" + "!" * 80)


def provider_options(provider: str, fp16: bool, trt_cache_dir: str) -> dict:
    """ONNX Runtime options for one provider: fp16 and the engine cache for TensorRT."""
    if provider != "TensorrtExecutionProvider":
        return {}
    options = {"trt_fp16_enable": bool(fp16)}
    if trt_cache_dir:
        cache = Path(trt_cache_dir).expanduser()
        cache.mkdir(parents=True, exist_ok=True)
        options.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(cache),
                       trt_timing_cache_enable=True, trt_timing_cache_path=str(cache))
    return options


ALLOW_SPINNING_KEY = "session.intra_op.allow_spinning"
"""ONNX Runtime session option: whether idle intra-op worker threads busy-wait for work ("0": they sleep)."""

# metadata_props key in which an export records its arithmetic precision (export.quantize); absent = fp32.
PRECISION_KEY = "precision"


def onnx_precision(metadata: Mapping[str, str], providers_in_use: Sequence[str], fp16: bool) -> str:
    """What the network computes in: "int8" (a quantized export), "fp16" (TensorRT with fp16 on), else "fp32"."""
    stored = metadata.get(PRECISION_KEY, "fp32")
    if stored == "fp32" and fp16 and providers_in_use and providers_in_use[0] == "TensorrtExecutionProvider":
        return "fp16"
    return stored


class OnnxRuntimeBackend:
    """An ONNX Runtime session over one .onnx file.

    Attributes: input_names, output_names (the graph's), takes_batches (every input's first axis is
    dynamic: several crops can go in one call), providers_in_use (the session's own list,
    first = the provider that runs most of the graph), in_use ("onnxruntime:<first provider>"),
    on_gpu, precision ("fp32", "int8" for a quantized export, "fp16" on TensorRT with fp16).
    """

    def __init__(self, path: str, providers: Sequence[str] = ("CPUExecutionProvider",), fp16: bool = False,
                 trt_cache_dir: str = "", threads: int = 0, require_gpu: bool = False,
                 io_binding: Optional[bool] = None, cuda_graph: bool = False):
        """`io_binding`: run through ONNX Runtime's I/O binding (inputs bound from host memory, outputs
        written straight into host arrays, no per-call output allocation in the session); None = on a GPU.
        `cuda_graph`: on the CUDA provider, replay each batch size's run as a captured CUDA graph
        (inference/cuda_graph.py); where the graph cannot be captured, a warning and the plain session."""
        import onnxruntime as ort

        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model file not found: {path} (export one with the model's "
                                    "export command, or set model_path)")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        # No busy-waiting: by default the intra-op workers spin after each parallel section, burning a core
        # that the next network (the detector's, this one's) or the node's own threads need. On the 2-core
        # CPU the default pipeline (palm detector, landmarks and this network in turn) took about half the
        # CPU time and wall time per frame without spinning (docs/speed.md, "default pipeline at camera rate").
        options.add_session_config_entry(ALLOW_SPINNING_KEY, "0")
        # ORT itself only logs (at warning level) that a requested provider is unavailable: keep its
        # message, and make our own check below the loud one.
        requested = [(p, provider_options(p, fp16, trt_cache_dir)) for p in providers]
        started = time.perf_counter()
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=requested)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf/... types
            raise ValueError(f"cannot load ONNX model {path} with providers {list(providers)} (corrupt file, or a "
                             f"provider that fails to start): {type(exc).__name__}: {exc}") from exc
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        # Several crops in one call need a free first axis (the exports' "batch"); a fixed one takes one crop.
        self.takes_batches = all(i.shape and not isinstance(i.shape[0], int) for i in self.session.get_inputs())
        # The side of a square image input (N, C, S, S) fixed in the graph, else None.
        shape = self.session.get_inputs()[0].shape if self.session.get_inputs() else []
        self.input_side = shape[-1] if len(shape) == 4 and isinstance(shape[-1], int) and shape[-1] == shape[-2] \
            else None
        self.providers_in_use = list(self.session.get_providers())
        first = self.providers_in_use[0]
        self.in_use = f"onnxruntime:{first}"
        self.on_gpu = first in GPU_PROVIDERS
        self.precision = onnx_precision(self.session.get_modelmeta().custom_metadata_map, self.providers_in_use, fp16)
        check_gpu_use(any(p in GPU_PROVIDERS for p in providers), self.in_use, self.on_gpu, require_gpu)
        if first == "TensorrtExecutionProvider":
            # Static shapes build the engine now, dynamic ones on the first run (the Estimator's warm-up).
            LOG.info("TensorRT session created in %.1f s (fp16 %s, engine cache %s)", time.perf_counter() - started,
                     "on" if fp16 else "off", trt_cache_dir or "off: the engine is rebuilt at every start")
        self.io_binding = self.on_gpu if io_binding is None else bool(io_binding)
        self._captured = None
        if cuda_graph and first == "CUDAExecutionProvider":
            cuda = dict(provider_options(first, fp16, trt_cache_dir), **CUDA_GRAPH_OPTION)
            self._captured = CapturedRuns(path, options, [(first, cuda)], device="cuda")
        elif cuda_graph:
            LOG.warning("cuda_graph is set but the network runs on %s: CUDA graphs need the CUDA provider first "
                        "(TensorRT captures its own); running without", first)

    @property
    def cuda_graph(self) -> bool:
        """Whether runs are replayed as CUDA graphs (False again after a capture failed)."""
        return self._captured is not None

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the graph; `inputs` maps every input name to an array; returns output name -> array."""
        missing = [n for n in self.input_names if n not in inputs]
        if missing:
            raise ValueError(f"missing ONNX inputs {missing}; the graph takes {self.input_names}")
        if self._captured is not None:
            try:
                outputs = self._captured.run(inputs, int(np.shape(inputs[self.input_names[0]])[0]))
            except CaptureUnavailable as exc:
                LOG.warning("CUDA graph capture failed, running without it from now on: %s", exc)
                self._captured = None
                outputs = None
            if outputs is not None:
                return dict(zip(self.output_names, outputs))
        if not self.io_binding:
            outputs = self.session.run(None, {n: inputs[n] for n in self.input_names})
            return dict(zip(self.output_names, outputs))
        binding = self.session.io_binding()
        for name in self.input_names:
            binding.bind_cpu_input(name, np.ascontiguousarray(inputs[name]))
        for name in self.output_names:
            binding.bind_output(name)             # host memory: the adapters read numpy arrays
        self.session.run_with_iobinding(binding)
        return dict(zip(self.output_names, binding.copy_outputs_to_cpu()))


class TorchBackend:
    """A torch module run under `no_grad` on a device.

    `module` must take tensors in the order of `input_names` and return a tuple of tensors in the order
    of `output_names` (the same inference wrapper that is exported to ONNX).
    """

    def __init__(self, module, input_names: Sequence[str], output_names: Sequence[str], device: str = "cpu",
                 fp16: bool = False, threads: int = 0, require_gpu: bool = False):
        import torch

        if threads:
            torch.set_num_threads(int(threads))
        requested_gpu = device.startswith("cuda")
        if requested_gpu and not torch.cuda.is_available():
            check_gpu_use(True, "torch:cpu", False, require_gpu)
            device = "cpu"
            fp16 = False
        self.device = torch.device(device)
        self.dtype = torch.float16 if fp16 else torch.float32
        self.module = module.eval().to(self.device, self.dtype)
        self.input_names = list(input_names)
        self.output_names = list(output_names)
        self.in_use = f"torch:{self.device}"
        self.takes_batches = True   # the inference graphs are batch-first (the exports' dynamic "batch" axis)
        self.on_gpu = self.device.type == "cuda"
        self.precision = "fp16" if fp16 else "fp32"

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        missing = [n for n in self.input_names if n not in inputs]
        if missing:
            raise ValueError(f"missing model inputs {missing}; the model takes {self.input_names}")
        with torch.no_grad():
            tensors = [torch.from_numpy(np.ascontiguousarray(inputs[n])).to(self.device, self.dtype)
                       if np.issubdtype(inputs[n].dtype, np.floating)
                       else torch.from_numpy(np.ascontiguousarray(inputs[n])).to(self.device)
                       for n in self.input_names]
            outputs = self.module(*tensors)
        if not isinstance(outputs, (tuple, list)):
            outputs = (outputs,)
        return {name: out.detach().float().cpu().numpy() if out.is_floating_point() else out.cpu().numpy()
                for name, out in zip(self.output_names, outputs)}


def warm_up(run: Callable[[dict], dict], inputs: dict, runs: int) -> None:
    """Run the network `runs` times so that first-call allocations (and TensorRT engine builds) happen
    at start-up, not on the first camera frame."""
    for _ in range(runs):
        run(inputs)
