"""int8 on the CPU: static QDQ quantization of an exported graph with ONNX Runtime's own tools.

`quantize_int8(fp32_file, int8_file, feeds)` writes a copy of an fp32 export whose heavy operators run in
int8 on ONNX Runtime's CPU provider (QLinearConv / QLinearMatMul / QLinearAdd ... after its QDQ fusion):

- weights: int8, symmetric, one scale per output channel; activations: uint8 with a zero point, their
  ranges (min / max) calibrated on `feeds` (rendered synthetic hand crops, `synthetic.calibration`);
- 2x-upsampling transposed convolutions (the U-Net decoders) are first rewritten, exactly, as four 2x2
  convolutions and an interleave of their outputs (`split_transposed_convolutions`): ONNX Runtime's CPU
  provider has no int8 ConvTranspose, and they are a fifth of the Keypoint Transformer's fp32 time;
- only the operator types of `INT8_OP_TYPES` are quantized; everything else stays float (softmax,
  layer normalisation, grid sampling, the transformers' activation-by-activation products ...);
- `keep_float_nodes` also keeps in float batched products with a constant of 3+ dimensions (no int8
  kernel with per-channel weights), the operators whose results are graph outputs and every
  operator that feeds a discrete decision (ArgMax, TopK, comparisons: the Keypoint Transformer's keypoint
  selection), back to and including the last weighted layer before it: 256 levels would turn near-ties
  of the heat-map peaks into different keypoints.

The file records `precision = int8` in its metadata_props (the Estimator reports it). `output_drift`
measures what the rounding costs, output by output, against the fp32 file on the same inputs.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from .check import compare_output
from .onnx import ort_session

PRECISIONS = ("fp32", "int8")
PRECISION_KEY = "precision"          # metadata_props key of an export's arithmetic precision
# Operator types run in int8 (ONNX Runtime's CPU provider has QLinear kernels for them). Left in float:
# ConvTranspose (the CPU provider has no int8 kernel for it: it would run in float after dequantizing its
# inputs, slower than plain float; split_transposed_convolutions turns the usual ones into Conv) and Add (the residual streams: measured on kpt_ih26m_2p5d, quantizing
# the adds changed 2.5D joint argmaxes on rendered crops and gained no speed).
INT8_OP_TYPES = ("Conv", "MatMul", "Gemm", "Relu", "MaxPool", "GlobalAveragePool", "AveragePool")
WEIGHTED_OP_TYPES = ("Conv", "ConvTranspose", "MatMul", "Gemm")
# Operators whose result is a discrete decision on their float inputs.
DISCRETE_OP_TYPES = ("ArgMax", "ArgMin", "TopK", "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual",
                     "NonZero", "Round", "Floor", "Ceil", "Sign")
DEFAULT_CALIBRATION_FRAMES = 16
# Name endings of the nodes `split_transposed_convolutions` adds after the phase convolutions: they move int8
# data only, so they stay in int8 between the convolutions and the next layer (other nodes of these types
# stay float).
SPLIT_CONCAT, SPLIT_INTERLEAVE = "/phases_concat", "/phases_interleave"
SPLIT_NODE_ENDINGS = (SPLIT_CONCAT, SPLIT_INTERLEAVE, SPLIT_INTERLEAVE + "_nhwc", SPLIT_INTERLEAVE + "_nchw")
INTERLEAVE_OP_TYPES = ("Concat", "DepthToSpace", "Transpose", "Reshape")


class QuantizationError(RuntimeError):
    """ONNX Runtime's quantization tools failed on this graph (one line)."""


@dataclass
class QuantizationReport:
    op_types: list
    quantized: dict = field(default_factory=dict)    # op type -> count of int8 operators after quantization
    kept_float: list = field(default_factory=list)   # operators of `op_types` kept in float by `keep_float_nodes`
    calibration_frames: int = 0
    calibration_method: str = "minmax"
    split_deconvolutions: int = 0                    # ConvTranspose nodes rewritten as 4 convolutions each

    def as_dict(self) -> dict:
        return {"mode": "int8", "format": "QDQ (ONNX Runtime static quantization)",
                "weights": "int8, symmetric, per output channel", "activations": "uint8, asymmetric, calibrated",
                "op_types": list(self.op_types), "quantized_operators": dict(self.quantized),
                "deconvolutions_split": self.split_deconvolutions,
                "kept_float_by_rule": len(self.kept_float), "kept_float_examples": self.kept_float[:12],
                "calibration": {"frames": self.calibration_frames, "method": self.calibration_method}}


def keep_float_nodes(model) -> list[str]:
    """Names of the operators of an ONNX ModelProto kept in float (see the module docstring)."""
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    outputs = {o.name for o in graph.output}
    keep: dict[str, None] = {}

    def weighted(node) -> bool:
        return node.op_type in WEIGHTED_OP_TYPES and any(i in initializers for i in node.input[1:])

    stack = []
    shapes = {init.name: len(init.dims) for init in graph.initializer}
    for node in graph.node:
        if any(o in outputs for o in node.output):
            keep[node.name] = None
        if node.op_type == "MatMul" and any(shapes.get(i, 2) != 2 for i in node.input if i in initializers):
            # A batched product with a constant of 3+ dimensions: ONNX Runtime's QLinearMatMul takes one
            # weight scale per output column of a 2-D weight only (A2J's attention fails at run time otherwise).
            keep[node.name] = None
        if node.op_type in DISCRETE_OP_TYPES:
            stack.append(node)
    seen = set()
    while stack:
        node = stack.pop()
        if node.name in seen:
            continue
        seen.add(node.name)
        keep[node.name] = None
        if weighted(node) and node.op_type not in DISCRETE_OP_TYPES:
            continue  # the last weighted layer before the decision: kept, and nothing before it
        stack.extend(producer[i] for i in node.input if i in producer)
    return list(keep)


def split_transposed_convolutions(model) -> int:
    """Rewrite every 2x-upsampling ConvTranspose (kernel 4, stride 2, padding 1, group 1, constant weights: the
    U-Net decoders' deconvolutions) as four 2x2 convolutions, one per output phase, and an interleave of the
    phases: the same sums in another order (exact up to float rounding), with the same multiply-adds, but in
    operators that have int8 kernels. The interleave is channels-last concatenations and reshapes
    (`_interleave_channels_last`) where shape inference knows the input's width, else Concat + DepthToSpace.
    Returns the number of nodes rewritten.

    Per axis, output 2q + a of the transposed convolution with kernel w is x[q-1] w[3] + x[q] w[1] for a = 0
    and x[q] w[2] + x[q+1] w[0] for a = 1: a 2-tap correlation padded before (a = 0) or after (a = 1).
    A ReLU that alone reads the transposed convolution moves onto each phase (an element-wise op commutes with
    the interleave): then the phases' convolutions carry it, and the interleave only moves int8 data
    (with the ReLU after DepthToSpace, ONNX Runtime dequantized every phase, interleaved floats, and quantized
    again: 0.51 of the default network's 2.48 ms of int8 kernel time, 0.31 of 2.36 ms after the move)."""
    from onnx import helper, numpy_helper

    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    widths = _static_widths(model)
    taps = {0: [3, 1], 1: [2, 0]}
    readers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    graph_outputs = {o.name for o in graph.output}
    moved_relus = set()
    rewritten, nodes = 0, []
    for node in graph.node:
        if node.op_type == "Relu" and node.output[0] in moved_relus:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        ok = (node.op_type == "ConvTranspose" and len(node.input) >= 2 and node.input[1] in initializers
              and list(attrs.get("kernel_shape", [4, 4])) == [4, 4] and list(attrs.get("strides", [1, 1])) == [2, 2]
              and list(attrs.get("pads", [0, 0, 0, 0])) == [1, 1, 1, 1] and attrs.get("group", 1) == 1
              and list(attrs.get("dilations", [1, 1])) == [1, 1] and not attrs.get("output_padding")
              and not attrs.get("output_shape") and attrs.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET"))
        if ok:
            weight = numpy_helper.to_array(initializers[node.input[1]])       # (Cin, Cout, 4, 4)
            ok = weight.ndim == 4 and weight.shape[2:] == (4, 4)
        if not ok:
            nodes.append(node)
            continue
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else ""
        after = readers.get(node.output[0], [])
        relu = after[0] if (len(after) == 1 and after[0].op_type == "Relu"
                            and node.output[0] not in graph_outputs) else None
        phases = []
        for a in (0, 1):
            for b in (0, 1):
                kernel = weight[:, :, taps[a]][:, :, :, taps[b]].transpose(1, 0, 2, 3).copy()  # (Cout, Cin, 2, 2)
                name = f"{node.name}/phase{a}{b}"
                graph.initializer.append(numpy_helper.from_array(kernel.astype(weight.dtype), f"{name}/weight"))
                pads = [1 - a, 1 - b, a, b]                                   # top, left, bottom, right
                nodes.append(helper.make_node("Conv", [node.input[0], f"{name}/weight"] + ([bias] if bias else []),
                                              [f"{name}/out"], name=name, kernel_shape=[2, 2], pads=pads))
                if relu is not None:
                    nodes.append(helper.make_node("Relu", [f"{name}/out"], [f"{name}/relu"], name=f"{name}/relu"))
                phases.append(f"{name}/relu" if relu is not None else f"{name}/out")
        output = relu.output[0] if relu is not None else node.output[0]
        width = widths.get(node.input[0])
        if width:
            nodes.extend(_interleave_channels_last(graph, node.name, phases, output, weight.shape[1], width))
        else:
            nodes.append(helper.make_node("Concat", phases, [f"{node.name}/phases"],
                                          name=f"{node.name}{SPLIT_CONCAT}", axis=1))
            nodes.append(helper.make_node("DepthToSpace", [f"{node.name}/phases"], [output],
                                          name=f"{node.name}{SPLIT_INTERLEAVE}", blocksize=2, mode="DCR"))
        if relu is not None:
            moved_relus.add(relu.output[0])
        rewritten += 1
    if rewritten:
        del graph.node[:]
        graph.node.extend(nodes)
        used = {i for n in graph.node for i in n.input}
        kept = [init for init in graph.initializer if init.name in used]
        del graph.initializer[:]
        graph.initializer.extend(kept)
    return rewritten


def _static_widths(model) -> dict:
    """{tensor name: its last axis} for 4-D tensors whose width shape inference can tell."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - no widths: the interleave falls back to DepthToSpace
        return {}
    widths = {}
    for info in [*inferred.graph.value_info, *inferred.graph.input]:
        dims = info.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[3].HasField("dim_value"):
            widths[info.name] = dims[3].dim_value
    return widths


def _interleave_channels_last(graph, name: str, phases: Sequence[str], output: str, channels: int, width: int) -> list:
    """Nodes that interleave four (N, C, H, W) phases [00, 01, 10, 11] into `output` (N, C, 2H, 2W) through
    channels-last data (their two shape constants are added to `graph`): each phase to (N, H, W, C); the two of
    a row side by side on the channel axis are (N, H, 2W, C) once reshaped; the two rows one after the other on
    the width axis are (N, 2H, 2W, C) once reshaped; then back to channels-first. The same result as Concat +
    DepthToSpace, but ONNX Runtime runs int8 convolutions channels-last, so the leading and trailing transposes
    cancel against the ones it inserts around them and the interleave is two concatenations of uint8 data
    (around DepthToSpace it inserted a transpose pair: the data moved three times)."""
    from onnx import helper, numpy_helper

    nodes, rows = [], []
    for a in (0, 1):
        pair = []
        for b in (0, 1):
            pair.append(f"{name}/phase{a}{b}/nhwc")
            nodes.append(helper.make_node("Transpose", [phases[2 * a + b]], [pair[-1]],
                                          name=f"{name}/phase{a}{b}{SPLIT_INTERLEAVE}_nhwc", perm=[0, 2, 3, 1]))
        nodes.append(helper.make_node("Concat", pair, [f"{name}/row{a}"], name=f"{name}/row{a}{SPLIT_CONCAT}", axis=3))
        rows.append(f"{name}/row{a}/wide")
        nodes.append(helper.make_node("Reshape", [f"{name}/row{a}", f"{name}/row_shape"], [rows[-1]],
                                      name=f"{name}/row{a}{SPLIT_INTERLEAVE}"))
    nodes.append(helper.make_node("Concat", rows, [f"{name}/rows"], name=f"{name}/rows{SPLIT_CONCAT}", axis=2))
    nodes.append(helper.make_node("Reshape", [f"{name}/rows", f"{name}/out_shape"], [f"{name}/out_nhwc"],
                                  name=f"{name}{SPLIT_INTERLEAVE}"))
    nodes.append(helper.make_node("Transpose", [f"{name}/out_nhwc"], [output], name=f"{name}{SPLIT_INTERLEAVE}_nchw",
                                  perm=[0, 3, 1, 2]))
    graph.initializer.extend([
        numpy_helper.from_array(np.array([0, 0, 2 * width, channels], np.int64), f"{name}/row_shape"),
        numpy_helper.from_array(np.array([0, -1, 2 * width, channels], np.int64), f"{name}/out_shape")])
    return nodes


def _name_nodes(model) -> None:
    for index, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{index}"


def quantize_int8(fp32_path: str | Path, int8_path: str | Path, feeds: Sequence[Mapping[str, np.ndarray]],
                  op_types: Sequence[str] = INT8_OP_TYPES, extra_keep_float: Iterable[str] = ()) -> QuantizationReport:
    """Write the int8 (QDQ) version of the fp32 ONNX file `fp32_path` to `int8_path`, atomically, with
    activation ranges calibrated on `feeds` (input name -> array, batch 1 each)."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not feeds:
        raise QuantizationError("int8 quantization needs calibration inputs, got none")
    int8_path = Path(int8_path)
    partial = int8_path.with_name(int8_path.name + ".partial")

    graph_inputs = [i.name for i in onnx.load(str(fp32_path), load_external_data=False).graph.input]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._items = iter([{n: np.asarray(feed[n]) for n in graph_inputs} for feed in feeds])

        def get_next(self):
            return next(self._items, None)

    with tempfile.TemporaryDirectory(prefix="hop_int8_") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        try:  # symbolic shape inference, then ORT's basic optimisations (folds constants, e.g. compact weights)
            quant_pre_process(str(fp32_path), str(prepared))
        except Exception:  # noqa: BLE001 - some graphs defeat symbolic shape inference: ONNX's own then
            quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        model = onnx.load(str(prepared))
        split = split_transposed_convolutions(model)
        _name_nodes(model)
        kept = keep_float_nodes(model) + [n for n in extra_keep_float]
        # Data moves (Concat, DepthToSpace, Transpose, Reshape) run in int8 only where the deconvolution split
        # made them.
        kept += [n.name for n in model.graph.node if n.op_type in INTERLEAVE_OP_TYPES
                 and not n.name.endswith(SPLIT_NODE_ENDINGS)]
        op_type = {node.name: node.op_type for node in model.graph.node}
        kept_quantizable = [n for n in kept if op_type.get(n) in op_types]
        onnx.save(model, str(prepared))
        metadata = {m.key: m.value for m in onnx.load(str(fp32_path), load_external_data=False).metadata_props}
        from onnxruntime.quantization import registry
        direct = registry.QDQRegistry.get("Transpose")
        added = "DepthToSpace" not in registry.QDQRegistry and direct is not None
        if added:  # a pure data move, like Transpose: ORT drops its Q/DQ pair and moves uint8 data
            registry.QDQRegistry["DepthToSpace"] = direct
        try:
            quantize_static(str(prepared), str(partial), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            op_types_to_quantize=[*op_types, *INTERLEAVE_OP_TYPES], nodes_to_exclude=kept,
                            calibrate_method=CalibrationMethod.MinMax,
                            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True,
                                           "CalibTensorRangeSymmetric": False})
        except Exception as exc:  # noqa: BLE001 - report ORT's failure in one line
            partial.unlink(missing_ok=True)
            raise QuantizationError(f"ONNX Runtime's static quantization failed: {type(exc).__name__}: "
                                    f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
        finally:
            if added:
                registry.QDQRegistry.pop("DepthToSpace", None)
    quantized_model = onnx.load(str(partial))
    metadata[PRECISION_KEY] = "int8"
    del quantized_model.metadata_props[:]
    for key, value in metadata.items():
        quantized_model.metadata_props.add(key=key, value=value)
    onnx.save(quantized_model, str(partial))
    os.replace(partial, int8_path)
    counts: dict[str, int] = {}
    nodes = quantized_model.graph.node
    from_dq = {o for n in nodes if n.op_type == "DequantizeLinear" for o in n.output}
    to_q = {i for n in nodes if n.op_type == "QuantizeLinear" for i in n.input[:1]}
    for node in nodes:
        if node.op_type not in op_types:
            continue
        if (node.input[1] in from_dq if node.op_type in WEIGHTED_OP_TYPES and len(node.input) > 1
                else any(i in from_dq for i in node.input) and any(o in to_q for o in node.output)):
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return QuantizationReport(list(op_types), counts, kept_quantizable, len(feeds), split_deconvolutions=split)


def precision_of(metadata: Mapping[str, str]) -> str:
    """The precision an export's metadata_props record ("fp32" when none: every export before int8)."""
    return metadata.get(PRECISION_KEY, "fp32")


def output_drift(reference_path: str | Path, other_path: str | Path, feeds: Sequence[Mapping[str, np.ndarray]],
                 threads: int = 2) -> dict:
    """Per output: the largest relative difference of `other` vs `reference` over `feeds` (floats:
    max |other - ref| / max(max |ref|, floor), probabilities against 1, as `export.check`); integer /
    boolean outputs: the fraction of differing elements. {name: {"relative": x} | {"differing": f}}."""
    ref_session, other_session = ort_session(reference_path, threads), ort_session(other_path, threads)
    names = [o.name for o in ref_session.get_outputs()]
    inputs = [i.name for i in ref_session.get_inputs()]
    drift: dict[str, dict] = {}
    for feed in feeds:
        feed = {n: feed[n] for n in inputs}
        for name, ref, got in zip(names, ref_session.run(None, feed), other_session.run(None, feed)):
            ref, got = np.asarray(ref), np.asarray(got)
            if ref.dtype.kind in "biu":
                frac = float(np.count_nonzero(ref != got)) / max(ref.size, 1)
                drift[name] = {"differing": max(frac, drift.get(name, {}).get("differing", 0.0))}
            else:
                row = compare_output(name, got, ref, True)
                drift[name] = {"relative": max(float(row.relative), drift.get(name, {}).get("relative", 0.0))}
    return drift
