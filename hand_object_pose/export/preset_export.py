"""A model preset with its weights -> the ONNX file the pose node loads, with a metadata record beside it.

The library half of `python -m hand_object_pose.tools.export_onnx` and of the node's export cache
(`export.cache`). For any registered family: build the preset (with overrides), load the weights file
(`models.weights_file`: the authors' release, a training checkpoint or a state dict), write the family's
inference graph with a dynamic batch axis (optionally with compact weight storage), compare ONNX Runtime
with torch (`export.check`), and write `<file>.onnx.json`: where the weights came from (path, sha256,
trained or not), the preset and overrides, the graph's inputs/outputs, input size and channel order,
joint order, opset, date and library versions.

`precision="int8"` (`export.quantize`) writes the fp32 graph to a temporary file, checks that one against
torch, and writes its static int8 (QDQ) quantization as the output, calibrated on the request's
`calibration` inputs; the record then says `precision: int8`, what was quantized and the largest drift of
every output from the fp32 graph on other inputs of the same kind.

Usage errors (unknown preset, missing/corrupt weights, weights of another architecture, unusable assets)
raise `ExportError` with one line.
"""
from __future__ import annotations

import datetime
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch

from hand_object_pose.geometry.hand_model_files import hand_model_file, load_hand_model
from hand_object_pose.geometry.object_template import load_template
from hand_object_pose.models.registry import get_preset
from hand_object_pose.models.weights_file import (OFFICIAL, WeightsFile, WeightsFileError, load_weights, one_line,
                                                  read_weights_file, sha256_of)

from .check import CHECK_RTOL, CHECK_RTOL_COMPACT, CheckResult, check_export
from .onnx import DEFAULT_OPSET, export_onnx

LOG = logging.getLogger(__name__)
RECORD_FORMAT = "hand_object_pose.export_onnx/1"


class ExportError(Exception):
    """A usage error, reported as one line (the CLI exits 2, the node stops at start)."""


@dataclass
class ExportRequest:
    """What to export. `weights`: a weights file path, or "" for random weights (tests and timing only).
    `mano_path` / `object_templates`: for families built around templates (Dense Mutual Attention)."""

    preset: str
    output: Path
    weights: str = ""
    overrides: dict = field(default_factory=dict)
    check: bool = False
    weight_storage: str = "fp32"           # "fp32" | "compact" (export.weight_storage)
    opset: int = DEFAULT_OPSET
    mano_path: str = ""
    object_templates: tuple = ()
    command: tuple = ()                    # the command line, for the record
    precision: str = "fp32"                # "fp32" | "int8" (export.quantize)
    # int8 only: calibration(count, seed) -> [graph inputs of one frame], e.g. rendered synthetic hand crops
    # through the family's adapter (tools.export_onnx.calibration_feeds).
    calibration: Optional[Callable[[int, int], list]] = None
    calibration_frames: int = 16
    calibration_seed: int = 9161           # held-out drift: the next seed
    # A coarse network (the whole-frame pass of a family that sees one hand per crop, EstimatorConfig.
    # coarse_model_path): its input size may differ from the preset's (the Estimator reads it from the graph).
    coarse_network: bool = False


@dataclass
class ExportOutcome:
    onnx_path: Path
    record_path: Path
    record: dict
    check: Optional[CheckResult]


def record_path_of(onnx_path: Path) -> Path:
    return onnx_path.with_name(onnx_path.name + ".json")


def read_record(onnx_path: str | Path) -> Optional[dict]:
    """The metadata record beside an export, or None when there is none or it is unreadable."""
    record = record_path_of(Path(onnx_path).expanduser())
    try:
        return json.loads(record.read_text()) if record.is_file() else None
    except (OSError, ValueError):
        return None


COMPANION_NETWORKS = ("object_model_file", "coarse_model_file")
"""The export-record keys that name a model's companion networks (a family that sees one hand per crop): the
object network, which runs the object crops, and the coarse network, which runs the whole-frame pass
(EstimatorConfig.object_model_path / coarse_model_path; `tools.package_default_model`)."""


def companion_network_of(onnx_path: str | Path, key: str) -> Optional[Path]:
    """The companion network an export's record names under `key` (COMPANION_NETWORKS; relative to the record unless
    absolute; `tools.package_default_model`, the int8 cache), or None when it names none."""
    named = (read_record(onnx_path) or {}).get(key)
    if not named:
        return None
    path = Path(named).expanduser()
    return path if path.is_absolute() else Path(onnx_path).expanduser().parent / path


def export_preset(request: ExportRequest, say: Callable[[str], None] = LOG.info) -> ExportOutcome:
    """Export `request.preset` as described in the module docstring; `say` receives progress lines."""
    output = Path(request.output).expanduser()
    if output.suffix != ".onnx":
        raise ExportError(f"the output must be a .onnx file (the node's model_path), got {output}")
    try:
        family, preset_config = get_preset(request.preset)
        config = family.with_overrides(preset_config, request.overrides)
    except (TypeError, ValueError) as exc:
        raise ExportError(one_line(exc)) from None
    _check_node_can_read(family, request.preset, preset_config, config, request.coarse_network)
    _check_precision(request)
    weights = _read_weights(request.weights) if request.weights else None

    torch.manual_seed(0)  # random weights, and the example input, are reproducible
    model, extra = _build(family, config, request, trained=weights is not None)
    if weights is None:
        LOG.warning("exporting %s with RANDOM, UNTRAINED weights: its outputs are meaningless (tests and timing "
                    "only)", request.preset)
    else:
        try:
            report = load_weights(family, model, weights, request.preset)
        except WeightsFileError as exc:
            raise ExportError(str(exc)) from None
        say(f"loaded {weights.kind} weights {weights.path} (sha256 {weights.sha256[:16]}...)"
            + (f": {len(report.mapped)} tensors mapped, {len(report.unused)} unused" if report else ""))

    if request.precision == "int8":
        return _export_int8(request, family, config, model, weights, output, extra, say)
    write_graph(family, model, output, request.opset)
    storage = None
    if request.weight_storage == "compact":
        from .weight_storage import compact_weights
        storage = compact_weights(output).as_dict()
        say(f"compact weights: {storage['int8_tensors']} tensors as per-channel int8, {storage['fp16_tensors']} as "
            f"fp16 ({storage['bytes_before'] / 2**20:.1f} -> {storage['bytes_after'] / 2**20:.1f} MiB; largest "
            f"weight change {storage['max_relative_weight_error']:.1e} of its tensor's range)")
        extra["weight_storage"] = {"mode": "compact", "note": "int8 per output channel for tensors of >= 2^20 "
                                   "values, fp16 otherwise; computed in fp32", **storage}
    say(f"wrote {output} ({output.stat().st_size / 2**20:.1f} MiB, opset {request.opset}, dynamic batch)")

    check = None
    if request.check:
        check = check_export(family, model, output, CHECK_RTOL if storage is None else CHECK_RTOL_COMPACT)
        extra["check"] = check.as_dict()
    record = _record(request, family, config, weights, output, extra)
    record_path = record_path_of(output)
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    return ExportOutcome(output, record_path, record, check)


def _check_precision(request: ExportRequest) -> None:
    from .quantize import PRECISIONS

    if request.precision not in PRECISIONS:
        raise ExportError(f"precision must be one of {', '.join(PRECISIONS)}, got {request.precision!r}")
    if request.precision == "int8":
        if request.weight_storage != "fp32":
            raise ExportError("int8 stores its weights in int8 already: --weights compact is for fp32 exports")
        if request.calibration is None:
            raise ExportError("int8 needs calibration inputs (ExportRequest.calibration)")
        if request.calibration_frames < 1:
            raise ExportError(f"calibration_frames must be >= 1, got {request.calibration_frames}")


def _export_int8(request: ExportRequest, family, config, model, weights, output: Path, extra: dict,
                 say: Callable[[str], None]) -> ExportOutcome:
    """The fp32 graph (checked against torch when asked) into a temporary file, its int8 quantization to
    `output`, and the drift of every output from fp32 on other calibration-like inputs in the record."""
    import tempfile

    from .quantize import QuantizationError, output_drift, quantize_int8

    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hop_export_", dir=output.parent) as tmp:
        fp32 = write_graph(family, model, Path(tmp) / "fp32.onnx", request.opset)
        check = None
        if request.check:
            check = check_export(family, model, fp32, CHECK_RTOL)
            extra["check"] = {**check.as_dict(), "of": "the fp32 graph before quantization"}
        seed = request.calibration_seed
        feeds = request.calibration(request.calibration_frames, seed)
        say(f"int8: calibrating on {len(feeds)} rendered frames (seed {seed}) ...")
        try:
            report = quantize_int8(fp32, output, feeds)
        except QuantizationError as exc:
            raise ExportError(str(exc)) from None
        held_out = request.calibration(4, seed + 1)
        drift = output_drift(fp32, output, held_out)
    extra["int8"] = {**report.as_dict(), "drift_vs_fp32": {
        "frames": f"{len(held_out)} rendered frames, seed {seed + 1} (not calibrated on)",
        "measure": "max |int8 - fp32| / max |fp32| per output (probabilities: absolute); integer outputs: fraction "
                   "of differing elements",
        "outputs": drift}}
    say(f"wrote {output} ({output.stat().st_size / 2**20:.1f} MiB, int8 QDQ: "
        + ", ".join(f"{n} {k}" for k, n in report.quantized.items()) + f"; {len(report.kept_float)} operators kept in "
        "float by rule)")
    record = _record(request, family, config, weights, output, extra)
    record_path = record_path_of(output)
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    return ExportOutcome(output, record_path, record, check)


def write_graph(family, model, path: Path, opset: int = DEFAULT_OPSET) -> Path:
    """Write `model`'s inference graph (dynamic batch) and the family's metadata_props to `path`, atomically
    (a `.partial` file renamed into place: a crash never leaves a half-written model)."""
    config = model.config
    if opset < family.min_opset:
        raise ExportError(f"{family.name} needs opset >= {family.min_opset}, got {opset}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        graph = family.inference_graph(model.eval())
        example = family.example_inputs(model, 1, torch.Generator().manual_seed(0))
        export_onnx(graph, example, partial, family.input_names(config), family.output_names(config), opset=opset)
        metadata = family.onnx_metadata(model)
        if metadata:
            store_metadata(partial, metadata)
    except ValueError as exc:  # e.g. an opset the graph cannot use
        partial.unlink(missing_ok=True)
        raise ExportError(f"export failed: {one_line(exc)}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)
    return path


def store_metadata(path: Path, entries: dict) -> None:
    """Set `entries` (key -> string) in an ONNX file's metadata_props, replacing same-named ones."""
    import onnx

    proto = onnx.load(str(path))
    kept = [(m.key, m.value) for m in proto.metadata_props if m.key not in entries]
    del proto.metadata_props[:]
    for key, value in [*kept, *entries.items()]:
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))


def _read_weights(path: str) -> WeightsFile:
    try:
        return read_weights_file(path)
    except WeightsFileError as exc:
        raise ExportError(str(exc)) from None


def _check_node_can_read(family, preset: str, preset_config, config, any_input_size: bool = False) -> None:
    """The node reads an ONNX file with the preset's own settings (overrides are not allowed with the
    onnxruntime backend): refuse overrides that change the graph's input size (unless `any_input_size`: a coarse
    network, whose size the Estimator reads from the graph) or drop or rename an output the preset has. Outputs
    added after the preset's (an object network's segmentation) are allowed: the node reads the outputs by name
    and checks for its own, and the reader of the new one asks for it."""
    ours = (family.input_size(config), tuple(family.output_names(config)))
    node = (family.input_size(preset_config), tuple(family.output_names(preset_config)))
    if (ours[0] != node[0] and not any_input_size) or ours[1][:len(node[1])] != node[1]:
        raise ExportError(f"these overrides change the graph's interface (input {ours[0]} px, outputs {list(ours[1])}) "
                          f"from what the node expects for {preset!r} (input {node[0]} px, outputs {list(node[1])}): "
                          "export a preset whose outputs match, overrides may only change how the network computes them")


def _build(family, config, request: ExportRequest, trained: bool) -> tuple:
    """(model in eval mode, extra metadata)."""
    if not family.uses_object_templates:
        if request.mano_path or request.object_templates:
            raise ExportError(f"--mano-path / --object-template are for families built around object templates "
                              f"(a {family.name} graph holds no mesh; kpt_*_angles presets read MANO at run time "
                              "from the node's mano_path parameter)")
        return family.build(config).eval(), {}
    hand, templates, meta = template_assets(request.mano_path, request.object_templates, trained)
    try:
        return family.build(config, hand=hand, objects=templates).eval(), meta
    except ValueError as exc:  # a template with the wrong vertex count, a regressor of another size
        raise ExportError(f"cannot build {family.name} with these assets: {one_line(exc)}") from None


def template_assets(mano_path: str, template_paths, trained: bool) -> tuple:
    """(HandTopology, [ObjectTemplate], metadata) for a templated family's export; loud warnings for the
    stand-ins (the licence-free hand, NOT MANO; a placeholder tube instead of a real object)."""
    from hand_object_pose.models.dma.assets import hand_topology_from_model, placeholder_object

    try:
        hand_file = hand_model_file("right", mano_path, required=bool(mano_path))
        hand = hand_topology_from_model(load_hand_model(hand_file.path))
    except (OSError, ValueError, KeyError) as exc:
        raise ExportError(f"--mano-path: cannot use {mano_path or 'the stand-in hand'}: {one_line(exc)}") from None
    if not hand_file.is_mano and trained:
        LOG.warning("no --mano-path: the hand graph and joint regressor come from the licence-free stand-in hand, "
                    "NOT MANO; the official DMA weights were trained on MANO's mesh")
    meta = {"hand_topology": {"source": "MANO (user file)" if hand_file.is_mano else
                              "licence-free stand-in hand (NOT MANO)",
                              "file": str(Path(hand_file.path).resolve()), "sha256": sha256_of(hand_file.path)},
            "object_templates": []}
    templates = []
    for template_path in template_paths:
        try:
            template = load_template(template_path)
        except (OSError, ValueError, KeyError) as exc:
            raise ExportError(f"--object-template {template_path}: {one_line(exc)}") from None
        if any(t.name == template.name for t in templates):
            raise ExportError(f"--object-template {template_path}: object id {template.name!r} given twice "
                              "(one template per catalogue object)")
        templates.append(template)
        meta["object_templates"].append({"index": len(templates) - 1, "id": template.name,
                                         "file": str(Path(template_path).resolve()),
                                         "sha256": sha256_of(template_path)})
    if not templates:
        templates = [placeholder_object()]
        meta["object_templates"].append({"index": 0, "id": templates[0].name,
                                         "file": "(built-in placeholder tube, NOT a real object)"})
        if trained:
            LOG.warning("no --object-template: the graph's only object is a placeholder tube, NOT a real object (no "
                        "object catalogue matches it); object poses (and, through the mutual attention, hands) will "
                        "be wrong")
    return hand, templates, meta


def _record(request: ExportRequest, family, config, weights: Optional[WeightsFile], onnx_path: Path,
            extra: dict) -> dict:
    import onnx

    source = "random (NOT TRAINED)" if weights is None else \
        ("official release" if weights.kind == OFFICIAL else "training engine")
    described = {"trained": weights is not None, "source": source}
    if weights is not None:
        described.update(checkpoint=str(weights.path.resolve()), sha256=weights.sha256, **weights.info)
        if weights.task:
            described["task"] = weights.task
    record = {
        "format": RECORD_FORMAT,
        "preset": request.preset, "family": family.name, "overrides": dict(request.overrides),
        "weights": described,
        "onnx": {"file": onnx_path.name, "sha256": sha256_of(onnx_path), "opset": request.opset,
                 "inputs": list(family.input_names(config)), "outputs": list(family.output_names(config)),
                 "dynamic_axes": {"batch": 0}},
        "input": {"size": family.input_size(config), "layout": "NCHW float32 in [0, 1], no mean/std",
                  "channels": family.channels},
        "joint_order": family.joint_order(config),
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__},
        "command": list(request.command),
    }
    record["precision"] = request.precision
    record.update(family.metadata(config))
    record.update(extra)
    return record
