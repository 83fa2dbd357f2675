"""Smaller ONNX files: store the weights in fewer bits, compute in fp32 as before.

`compact_weights` rewrites every float32 initializer of a saved model:
- tensors with at least `int8_min_elements` values and 2+ dimensions (the large convolution and matrix
  weights) as int8 with one symmetric scale per output channel (axis 0): w ~= q * scale, |q| <= 127;
- every other float32 initializer of 2+ values as float16.
Each is followed by a `Cast` to float32 (and a `Mul` by its scales for int8), feeding the original
consumers. All their inputs are constants, so ONNX Runtime folds them into float32 initializers when
the session is created: the graph then runs exactly as the fp32 export, on the rounded weights.

The rounding changes the outputs slightly (fp16: about 5e-4 relative per weight; int8: up to
1/254 of each channel's largest weight): measure the model's accuracy on the compacted file, as
`tools/export_onnx --weights compact` records. Used for the committed default model (40 MB budget).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

INT8_MIN_ELEMENTS = 1 << 20


@dataclass
class CompactionReport:
    bytes_before: int
    bytes_after: int
    int8_tensors: int
    fp16_tensors: int
    max_relative_weight_error: float   # max over tensors of max |w' - w| / max |w|

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _int8_per_channel(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int8 values, float32 scales shaped to broadcast against `weight`): symmetric, per axis-0 channel."""
    flat = np.abs(weight.reshape(weight.shape[0], -1)).max(axis=1)
    scales = np.where(flat > 0, flat / 127.0, 1.0).astype(np.float32)
    shape = (weight.shape[0],) + (1,) * (weight.ndim - 1)
    values = np.clip(np.rint(weight / scales.reshape(shape)), -127, 127).astype(np.int8)
    return values, scales.reshape(shape)


def compact_weights(path: str | Path, int8_min_elements: int = INT8_MIN_ELEMENTS) -> CompactionReport:
    """Rewrite the ONNX file at `path` in place (see the module docstring)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    path = Path(path)
    bytes_before = path.stat().st_size
    model = onnx.load(str(path))
    graph = model.graph
    kept, new_nodes = [], []
    int8_count = fp16_count = 0
    worst = 0.0
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT:
            kept.append(init)
            continue
        weight = numpy_helper.to_array(init)
        if weight.size < 2:
            kept.append(init)
            continue
        name = init.name
        if weight.size >= int8_min_elements and weight.ndim >= 2:
            values, scales = _int8_per_channel(weight)
            restored = values.astype(np.float32) * scales
            kept += [numpy_helper.from_array(values, f"{name}__int8"), numpy_helper.from_array(scales, f"{name}__scale")]
            new_nodes += [helper.make_node("Cast", [f"{name}__int8"], [f"{name}__f32"], to=TensorProto.FLOAT),
                          helper.make_node("Mul", [f"{name}__f32", f"{name}__scale"], [name])]
            int8_count += 1
        else:
            half = weight.astype(np.float16)
            restored = half.astype(np.float32)
            kept.append(numpy_helper.from_array(half, f"{name}__fp16"))
            new_nodes.append(helper.make_node("Cast", [f"{name}__fp16"], [name], to=TensorProto.FLOAT))
            fp16_count += 1
        peak = float(np.abs(weight).max())
        if peak > 0:
            worst = max(worst, float(np.abs(restored - weight).max()) / peak)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(new_nodes + nodes)  # the casts first: the graph stays topologically sorted
    onnx.save(model, str(path))
    return CompactionReport(bytes_before, path.stat().st_size, int8_count, fp16_count, worst)
