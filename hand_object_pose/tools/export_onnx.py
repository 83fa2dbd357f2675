"""Export a model preset with trained weights to the ONNX file the pose node loads.

    python -m hand_object_pose.tools.export_onnx PRESET OUT.onnx (--checkpoint FILE | --random-weights)
        [--override FIELD=VALUE ...] [--check] [--opset N]
        [--mano-path DIR_OR_NPZ] [--object-template TEMPLATE.npz ...]      (dma_* presets only)

FILE is the authors' release (`*.pth.tar`, converted by the family's official-checkpoint converter) or
a checkpoint of our training engine (`runs/<name>/latest.pt`, `{"model": state_dict, ...}`, or a bare
state dict of ours). Every file is read with `torch.load(weights_only=True)`. The graph is the family's
inference graph (`export/<family>_onnx.py`), dynamic batch axis. Beside OUT.onnx, OUT.onnx.json records
where the weights came from (path, sha256, trained or not), the preset and overrides, the graph's
inputs/outputs, input size and channel order, joint order, opset, date and library versions.
`--check` runs ONNX Runtime against torch on a random batch of two and exits 1 beyond tolerance.
Usage errors (unknown preset, missing/corrupt checkpoint, checkpoint of another architecture) exit 2
with one line on stderr. See docs/export.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

import numpy as np
import torch
import yaml

# Relative tolerance of --check: max |ORT - torch| / max |torch| per output (the families' ONNX tests).
CHECK_RTOL = 1e-4
# With --weights compact, ONNX Runtime runs on rounded weights (int8 / fp16) while torch keeps fp32.
CHECK_RTOL_COMPACT = 5e-2
# Outputs smaller than this overall are compared against it instead (a relative error of float
# noise on an all-but-zero output means nothing).
CHECK_SCALE_FLOOR = 1e-3
CHECK_BATCH = 2  # > 1, so that the dynamic batch axis is exercised
# Outputs bounded in [0, 1] (probabilities): compared in absolute terms, as the A2J export test does
# (near 0 for untrained weights, where a relative error means nothing).
PROBABILITY_OUTPUTS = ("hand_type", "joint_confidence", "hand_presence")
# KPT outputs that do not depend on which heat-map peaks are selected (top-k / greedy NMS ties).
KPT_TOKEN_OUTPUTS = ("token_xy", "token_kind", "token_valid")
KPT_TOKEN_FREE_OUTPUTS = ("heatmap", "seg", "hand_type")
# Training-engine task names that may have produced a family's weights.
TASKS_OF_FAMILY = {"kpt": ("kpt",), "occrobnet": ("kpt", "occrobnet"), "a2j": ("a2j",), "dma": ("dma",)}
MESSAGE_LIMIT = 400  # characters of a library error quoted in a one-line error


class ExportError(Exception):
    """A usage error: reported as one line on stderr, exit status 2."""


@dataclass
class Checkpoint:
    """A checkpoint file read with weights_only=True.

    kind: "official" (the authors' layout: `network` / `module.` keys) or "training" (ours).
    """

    path: Path
    kind: str
    state: Mapping
    sha256: str
    task: Optional[str] = None          # the training engine's task name, when recorded
    info: dict = field(default_factory=dict)  # epoch / step when recorded


def one_line(text, limit: int = MESSAGE_LIMIT) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- preset and overrides ------------------------------------------------------------------------------

def family_name(family_module) -> str:
    return family_module.__name__.rsplit(".", 1)[-1]


def resolve_preset(name: str):
    """(family module, preset config); ExportError listing the known presets."""
    from hand_object_pose.models.registry import get_preset

    try:
        return get_preset(name)
    except ValueError as exc:
        raise ExportError(str(exc)) from None


def parse_overrides(assignments, config) -> dict:
    """["field=value", ...] -> {field: value}; values are YAML ("18", "true", "maxpool", "[1, 2]")."""
    known = [f.name for f in dataclasses.fields(config)]
    overrides = {}
    for assignment in assignments:
        name, sep, raw = assignment.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ExportError(f"--override expects FIELD=VALUE, got {assignment!r}")
        if name not in known:
            raise ExportError(f"--override {name}: not a field of {type(config).__name__}; fields: {', '.join(known)}")
        try:
            overrides[name] = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ExportError(f"--override {assignment!r}: value is not valid YAML ({one_line(exc, 120)})") from None
    return overrides


def apply_overrides(config, overrides: dict):
    try:
        return dataclasses.replace(config, **overrides)
    except (TypeError, ValueError) as exc:  # the config's own validation
        raise ExportError(f"--override {overrides}: {one_line(exc)}") from None


def check_node_can_read(family, preset: str, preset_config, config) -> None:
    """The node reads an ONNX file with the preset's own settings (overrides are not allowed with the
    onnxruntime backend): refuse overrides that change the graph's input size or its outputs."""
    from hand_object_pose.inference.adapters import make_adapter

    ours, node = make_adapter(family, config), make_adapter(family, preset_config)
    if ours.input_size != node.input_size or tuple(ours.output_names) != tuple(node.output_names):
        raise ExportError(f"these overrides change the graph's interface (input {ours.input_size} px, outputs "
                          f"{list(ours.output_names)}) from what the node expects for {preset!r} (input "
                          f"{node.input_size} px, outputs {list(node.output_names)}): export a preset whose "
                          "outputs match, overrides may only change how the network computes them")


# --- checkpoints ---------------------------------------------------------------------------------------

def read_checkpoint(path: str) -> Checkpoint:
    """Read an official or training checkpoint (tensors and plain containers only)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ExportError(f"checkpoint not found: {file}")
    try:
        data = torch.load(str(file), map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt zip, truncated pickle, non-tensor objects, ...
        raise ExportError(f"cannot read checkpoint {file} (corrupt, or not a weights-only torch file): "
                          f"{type(exc).__name__}: {one_line(exc, 200)}") from None
    if not isinstance(data, Mapping):
        raise ExportError(f"checkpoint {file} holds a {type(data).__name__}; expected a dict "
                          "(the authors' {'network': ...}, our {'model': ...}, or a state dict)")
    digest = sha256_of(file)
    if isinstance(data.get("network"), Mapping):
        return Checkpoint(file, "official", data["network"], digest, info=_counters(data))
    for key in ("model", "state_dict"):
        if isinstance(data.get(key), Mapping):
            task = data.get("task") if isinstance(data.get("task"), str) else None
            return Checkpoint(file, "training", data[key], digest, task, _counters(data))
    if data and all(isinstance(v, torch.Tensor) for v in data.values()):
        official = all(str(k).startswith("module.") for k in data)  # DataParallel: the authors' saving
        return Checkpoint(file, "official" if official else "training", data, digest)
    raise ExportError(f"checkpoint {file} is a dict with keys {sorted(map(str, data))[:8]}, not a state dict "
                      "(expected 'network' (the authors' release), 'model' (our training engine) or tensors)")


def _counters(data: Mapping) -> dict:
    return {k: int(data[k]) for k in ("epoch", "step") if isinstance(data.get(k), int)}


def load_weights(family: str, preset: str, model, checkpoint: Checkpoint) -> None:
    """Load `checkpoint` into `model` strictly; ExportError naming what does not fit."""
    try:
        if checkpoint.kind == "official":
            _load_official(family, model, checkpoint)
        else:
            _load_training(family, model, checkpoint)
    except ExportError:
        raise
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        reason = one_line(exc.args[0] if exc.args else exc)
        raise ExportError(f"checkpoint {checkpoint.path} does not fit preset {preset!r} ({family}): "
                          f"{reason}{_kpt_hint(family, model, checkpoint)}") from None


def _load_official(family: str, model, checkpoint: Checkpoint) -> None:
    if family == "kpt":
        from hand_object_pose.models.kpt.checkpoint import load_official
        load_official(model, checkpoint.state)
    elif family == "a2j":
        from hand_object_pose.models.a2j.checkpoint import load_official
        load_official(model, checkpoint.state)
    elif family == "dma":
        from hand_object_pose.models.dma.checkpoint import load_official_weights
        load_official_weights(model, checkpoint.state)
    else:
        raise ExportError(f"{checkpoint.path} is in the authors' checkpoint layout, but {family} has no official "
                          "release: pass a checkpoint of our training engine (runs/<name>/latest.pt)")


def _load_training(family: str, model, checkpoint: Checkpoint) -> None:
    allowed = TASKS_OF_FAMILY[family]
    if checkpoint.task is not None and checkpoint.task not in allowed:
        raise ExportError(f"checkpoint {checkpoint.path} was trained by the {checkpoint.task!r} task, "
                          f"this preset is a {family} model (task {' or '.join(map(repr, allowed))})")
    expected = model.state_dict()
    state = checkpoint.state
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mis_shaped = [f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}" for k in expected
                  if k in state and isinstance(state[k], torch.Tensor) and state[k].shape != expected[k].shape]
    if missing or unexpected or mis_shaped:
        raise ExportError(
            f"checkpoint {checkpoint.path} does not fit this model: {len(missing)} missing {missing[:3]}, "
            f"{len(unexpected)} unexpected {unexpected[:3]}, {len(mis_shaped)} of another shape {mis_shaped[:2]} "
            "(another preset, or --override fields that differ from the training run's model_overrides?)")
    model.load_state_dict(state, strict=True)


def _kpt_hint(family: str, model, checkpoint: Checkpoint) -> str:
    """For an official KPT checkpoint: the config fields its tensors imply that differ from ours."""
    if family != "kpt" or checkpoint.kind != "official":
        return ""
    from hand_object_pose.models.kpt.checkpoint import infer_config
    try:
        implied = infer_config(checkpoint.state)
    except (KeyError, TypeError, ValueError):
        return " (no Keypoint Transformer pose head in it: a checkpoint of another model?)"
    differ = {f.name: getattr(implied, f.name) for f in dataclasses.fields(implied)
              if f.name in ("pose_representation", "has_object", "object_left_translation", "backbone_depth",
                            "big_decoder", "enc_layers", "dec_layers")
              and getattr(implied, f.name) != getattr(model.config, f.name)}
    if not differ:
        return ""
    return " (the checkpoint looks like " + ", ".join(f"{k}={v}" for k, v in differ.items()) + \
        ": another preset, or pass these with --override)"


# --- models --------------------------------------------------------------------------------------------

def dma_assets(mano_path: str, template_paths, trained: bool) -> tuple:
    """(HandTopology, [ObjectTemplate], metadata) for a DMA export; loud warnings for the placeholders."""
    from hand_object_pose.geometry.hand_model_files import load_hand_model
    from hand_object_pose.models.dma.assets import hand_topology_from_model, placeholder_object
    from hand_object_pose.synthetic.standin_hand import standin_hand_path
    from hand_object_pose.geometry.object_template import load_template

    if mano_path:
        path = Path(mano_path).expanduser()
        path = path / "MANO_RIGHT.npz" if path.is_dir() else path
        hand_source = "MANO (user file)"
    else:
        path = Path(standin_hand_path("right"))
        hand_source = "licence-free stand-in hand (NOT MANO)"
        if trained:
            warn("no --mano-path: the hand graph and joint regressor come from the licence-free stand-in hand, "
                 "NOT MANO; the official DMA weights were trained on MANO's mesh")
    try:
        hand = hand_topology_from_model(load_hand_model(path))
    except (OSError, ValueError, KeyError) as exc:
        raise ExportError(f"--mano-path: cannot use {path}: {one_line(exc)}") from None
    meta = {"hand_topology": {"source": hand_source, "file": str(path.resolve()), "sha256": sha256_of(path)},
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
                                         "sha256": sha256_of(Path(template_path))})
    if not templates:
        templates = [placeholder_object()]
        meta["object_templates"].append({"index": 0, "id": templates[0].name,
                                         "file": "(built-in placeholder tube, NOT a real object)"})
        if trained:
            warn("no --object-template: the graph's only object is a placeholder tube, NOT a real object (no "
                 "object catalogue matches it); object poses (and, through the mutual attention, hands) will be wrong")
    return hand, templates, meta


def build_model(family_module, family: str, config, args, trained: bool) -> tuple:
    """(model in eval mode, extra metadata)."""
    if family == "dma":
        hand, templates, meta = dma_assets(args.mano_path, args.object_template, trained)
        try:
            return family_module.build(config, hand=hand, objects=templates).eval(), meta
        except ValueError as exc:  # a template with the wrong vertex count, a regressor of another size
            raise ExportError(f"cannot build {family} with these assets: {one_line(exc)}") from None
    if args.mano_path or args.object_template:
        raise ExportError(f"--mano-path / --object-template are for dma_* presets only (a {family} graph holds no "
                          "mesh; kpt_*_angles presets read MANO at run time from the node's mano_path parameter)")
    return family_module.build(config).eval(), {}


# --- export and check ----------------------------------------------------------------------------------

def export_graph(family: str, model, path: Path, opset: int) -> tuple[tuple, tuple]:
    """Write the family's inference graph to `path`; returns (input names, output names)."""
    if family in ("kpt", "occrobnet"):  # OccRobNet shares KPT's outputs and export graph
        from hand_object_pose.export import kpt_onnx
        kpt_onnx.export_kpt_onnx(model, path, opset=opset)
        return kpt_onnx.INPUT_NAMES, kpt_onnx.output_names(model.config)
    if family == "a2j":
        from hand_object_pose.export import a2j_onnx
        from hand_object_pose.export.onnx import export_onnx
        size = model.config.input_size
        export_onnx(a2j_onnx.A2JInferenceGraph(model), (torch.rand(1, 3, size, size),), path,
                    a2j_onnx.INPUT_NAMES, a2j_onnx.OUTPUT_NAMES, opset=opset)
        return a2j_onnx.INPUT_NAMES, a2j_onnx.OUTPUT_NAMES
    from hand_object_pose.export import dma_onnx
    dma_onnx.export_dma_onnx(model, path, opset=opset)
    return dma_onnx.INPUT_NAMES, dma_onnx.OUTPUT_NAMES


@dataclass
class CheckRow:
    """One output of --check. Floats: `error` = max |ORT - torch|, `relative` = error / max(max |torch|,
    CHECK_SCALE_FLOOR). Integers / booleans: `error` = number of differing elements, `relative` None."""

    name: str
    error: float
    relative: Optional[float]
    checked: bool             # False: the output depends on a top-k / argmax tie that differed
    ok: bool

    def format(self) -> str:
        status = ("ok" if self.ok else "FAIL") if self.checked else "tie-dependent, not checked"
        if self.relative is None:
            return f"  {self.name:18s} {int(self.error)} elements differ  {status}"
        return f"  {self.name:18s} max abs diff {self.error:.3e}  relative {self.relative:.2e}  {status}"


def compare_output(name: str, got: np.ndarray, ref: np.ndarray, checked: bool, rtol: Optional[float] = None) -> CheckRow:
    """Compare one output; probabilities are measured against 1 (absolute), others against max |ref|."""
    if got.shape != ref.shape:
        return CheckRow(name, float("inf"), float("inf"), True, False)
    if ref.dtype.kind in "biu":
        differ = int(np.count_nonzero(got != ref))
        return CheckRow(name, float(differ), None, checked, differ == 0 or not checked)
    err = float(np.abs(got.astype(np.float64) - ref.astype(np.float64)).max()) if ref.size else 0.0
    floor = 1.0 if name in PROBABILITY_OUTPUTS else CHECK_SCALE_FLOOR
    relative = err / max(float(np.abs(ref).max()) if ref.size else 0.0, floor)
    ok = bool(np.isfinite(relative)) and relative <= (CHECK_RTOL if rtol is None else rtol)
    return CheckRow(name, err, relative, checked, ok or not checked)


def check_inputs(family: str, model) -> tuple:
    """A seeded random batch of CHECK_BATCH for the family's graph (DMA: two different crops and, with
    several templates, two different objects)."""
    generator = torch.Generator().manual_seed(0)
    if family == "dma":
        from hand_object_pose.export.dma_onnx import example_inputs
        image, root, focal, centre, _, _ = example_inputs(model, CHECK_BATCH)
        image = torch.rand(image.shape, generator=generator)
        root = root + torch.tensor([[0.0, 0.0, 0.0], [0.03, -0.02, 0.1]])
        index = torch.arange(CHECK_BATCH) % len(model.object_names)
        return image, root, focal, centre, index, root[:, 2].clone()
    size = model.config.input_size if family == "a2j" else 2 * model.config.heatmap_size
    return (torch.rand(CHECK_BATCH, 3, size, size, generator=generator),)


def check_export(family: str, model, path: Path, input_names, output_names,
                 rtol: Optional[float] = None) -> tuple[list, bool, str]:
    """ONNX Runtime vs torch on a random batch: (rows, all ok, note)."""
    from hand_object_pose.export.onnx import ort_session

    inputs = check_inputs(family, model)
    session = ort_session(path)
    got = dict(zip(output_names, session.run(None, {n: t.numpy() for n, t in zip(input_names, inputs)})))
    graph = _inference_graph(family, model)
    with torch.no_grad():
        expected = {n: t.numpy() for n, t in zip(output_names, graph(*inputs))}
    note, tie_free = "", set(output_names)
    if family in ("kpt", "occrobnet"):
        tie_free -= {"joint_2p5d"}  # argmax bins: a near-tie of two logits may flip, the logits are compared
        if not all(np.array_equal(got[n], expected[n]) for n in KPT_TOKEN_OUTPUTS):
            tie_free = set(KPT_TOKEN_FREE_OUTPUTS)
            note = ("the heat-map peak selection differs between ONNX Runtime and torch (a near-tie among "
                    "peaks): only the token-independent outputs " + ", ".join(KPT_TOKEN_FREE_OUTPUTS) + " are checked")
    rows = [compare_output(n, np.asarray(got[n]), expected[n], n in tie_free, rtol) for n in output_names]
    return rows, all(r.ok for r in rows), note


def _inference_graph(family: str, model):
    if family == "a2j":
        from hand_object_pose.export.a2j_onnx import A2JInferenceGraph
        return A2JInferenceGraph(model)
    if family in ("kpt", "occrobnet"):
        from hand_object_pose.export.kpt_onnx import KptInferenceGraph
        return KptInferenceGraph(model)
    from hand_object_pose.export.dma_onnx import DMAInferenceGraph
    return DMAInferenceGraph(model.eval())


# --- metadata ------------------------------------------------------------------------------------------

def joint_order(family: str) -> dict:
    from hand_object_pose.geometry.skeleton import INTERHAND_JOINT_NAMES, JOINT_NAMES

    if family == "dma":
        return {"name": "canonical (wrist first, then thumb, index, middle, ring, pinky, base to tip)",
                "outputs": ["hand_joints"], "joints": list(JOINT_NAMES)}
    note = {"kpt": "joints_3d leaves the wrist out (20 per hand; wrist-relative)",
            "occrobnet": "joints_3d leaves the wrist out (20 per hand; wrist-relative)",
            "a2j": "joints are (x, y, depth) in the output cube"}[family]
    return {"name": "InterHand2.6M (per finger tip to base, wrist last), right hand then left",
            "joints": list(INTERHAND_JOINT_NAMES), "note": note}


def metadata(args, family: str, config, overrides: dict, checkpoint: Optional[Checkpoint], onnx_path: Path,
             input_names, output_names, extra: dict, check: Optional[dict]) -> dict:
    import onnx

    weights = {"trained": checkpoint is not None, "source": "random (NOT TRAINED)" if checkpoint is None else
               ("official release" if checkpoint.kind == "official" else "training engine")}
    if checkpoint is not None:
        weights.update(checkpoint=str(checkpoint.path.resolve()), sha256=checkpoint.sha256, **checkpoint.info)
        if checkpoint.task:
            weights["task"] = checkpoint.task
    input_size = config.input_size if family in ("a2j", "dma") else 2 * config.heatmap_size
    record = {
        "format": "hand_object_pose.export_onnx/1",
        "preset": args.preset, "family": family, "overrides": overrides,
        "weights": weights,
        "onnx": {"file": onnx_path.name, "sha256": sha256_of(onnx_path), "opset": args.opset,
                 "inputs": list(input_names), "outputs": list(output_names), "dynamic_axes": {"batch": 0}},
        "input": {"size": input_size, "layout": "NCHW float32 in [0, 1], no mean/std",
                  "channels": "BGR" if family == "dma" else "RGB"},
        "joint_order": joint_order(family),
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__},
        "command": ["python", "-m", "hand_object_pose.tools.export_onnx", *args.argv],
    }
    if family in ("kpt", "occrobnet"):
        record["token_selection"] = config.selection
    record.update(extra)
    if check is not None:
        record["check"] = check
    return record


def warn(message: str) -> None:
    bar = "!" * 100
    print(f"{bar}\nWARNING: {message}\n{bar}", file=sys.stderr)


# --- command line --------------------------------------------------------------------------------------

def parse_args(argv):
    from hand_object_pose.export.onnx import DEFAULT_OPSET

    parser = argparse.ArgumentParser(prog="python -m hand_object_pose.tools.export_onnx",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("preset", help="model preset, e.g. kpt_h2o3d_3d, a2j_ih26m, dma_ho3d")
    parser.add_argument("output", help="the .onnx file to write (the node's model_path, e.g. models/PRESET.onnx)")
    parser.add_argument("--checkpoint", default="",
                        help="the authors' *.pth.tar, or our training checkpoint (runs/NAME/latest.pt)")
    parser.add_argument("--random-weights", action="store_true",
                        help="export untrained weights (tests, timing only; the results are meaningless)")
    parser.add_argument("--override", action="append", default=[], metavar="FIELD=VALUE",
                        help="replace a preset config field (value as YAML), as in the training run's "
                             "model_overrides, e.g. backbone_depth=18; repeatable")
    parser.add_argument("--check", action="store_true",
                        help=f"compare ONNX Runtime with torch on a random batch; exit 1 beyond {CHECK_RTOL:g} "
                             f"relative ({CHECK_RTOL_COMPACT:g} with --weights compact)")
    parser.add_argument("--weights", choices=("fp32", "compact"), default="fp32",
                        help="how the file stores the weights: fp32 (default, outputs identical to torch) or compact "
                             "(per-channel int8 for the largest tensors, fp16 for the rest: ~3.5x smaller, slightly "
                             "different outputs; computed in fp32; export/weight_storage.py)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    parser.add_argument("--mano-path", default="",
                        help="dma_*: directory with MANO_RIGHT.npz (converted, docs/mano.md) or that npz file; "
                             "default: the licence-free stand-in hand (NOT MANO)")
    parser.add_argument("--object-template", action="append", default=[], metavar="NPZ",
                        help="dma_*: object template from tools.object_template, repeatable: one per `template:` "
                             "entry of the node's object catalogue, in catalogue order; default: a placeholder tube")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def run(args) -> int:
    output = Path(args.output).expanduser()
    if output.suffix != ".onnx":
        raise ExportError(f"the output must be a .onnx file (the node's model_path), got {output}")
    if args.checkpoint and args.random_weights:
        raise ExportError("give either --checkpoint or --random-weights, not both")
    if not args.checkpoint and not args.random_weights:
        raise ExportError("no --checkpoint given: refusing to export random weights (pass --random-weights for an "
                          "untrained network, for tests and timing only)")
    family_module, preset_config = resolve_preset(args.preset)
    family = family_name(family_module)
    overrides = parse_overrides(args.override, preset_config)
    config = apply_overrides(preset_config, overrides)
    check_node_can_read(family_module, args.preset, preset_config, config)
    checkpoint = read_checkpoint(args.checkpoint) if args.checkpoint else None

    torch.manual_seed(0)  # random weights, and the example input, are reproducible
    model, extra = build_model(family_module, family, config, args, trained=checkpoint is not None)
    if checkpoint is None:
        warn(f"exporting {args.preset} with RANDOM, UNTRAINED weights: its outputs are meaningless "
             "(tests and timing only)")
    else:
        load_weights(family, args.preset, model, checkpoint)
        print(f"loaded {checkpoint.kind} checkpoint {checkpoint.path} (sha256 {checkpoint.sha256[:16]}...)")

    partial = output.with_name(output.name + ".partial")
    try:
        input_names, output_names = export_graph(family, model, partial, args.opset)
    except ValueError as exc:  # e.g. an opset the graph cannot use
        partial.unlink(missing_ok=True)
        raise ExportError(f"export failed: {one_line(exc)}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, output)
    storage = None
    if args.weights == "compact":
        from hand_object_pose.export.weight_storage import compact_weights
        storage = compact_weights(output).as_dict()
        print(f"compact weights: {storage['int8_tensors']} tensors as per-channel int8, {storage['fp16_tensors']} as "
              f"fp16 ({storage['bytes_before'] / 2**20:.1f} -> {storage['bytes_after'] / 2**20:.1f} MiB; largest "
              f"weight change {storage['max_relative_weight_error']:.1e} of its tensor's range)")
    print(f"wrote {output} ({output.stat().st_size / 2**20:.1f} MiB, opset {args.opset}, dynamic batch)")

    status, check = 0, None
    if args.check:
        rtol = CHECK_RTOL if storage is None else CHECK_RTOL_COMPACT
        rows, ok, note = check_export(family, model, output, input_names, output_names, rtol)
        print(f"ONNX Runtime vs torch, random batch of {CHECK_BATCH}:")
        for row in rows:
            print(row.format())
        if note:
            print(f"  note: {note}")
        worst = max((r.relative for r in rows if r.checked and r.relative is not None), default=0.0)
        print(f"{'PASS' if ok else 'FAIL'}: worst relative error {worst:.2e} (tolerance {rtol:g})")
        check = {"passed": ok, "worst_relative_error": worst, "rtol": rtol, "note": note,
                 "outputs": {r.name: {"error": r.error, "relative": r.relative, "checked": r.checked}
                             for r in rows}}
        status = 0 if ok else 1
    meta_path = output.with_name(output.name + ".json")
    if storage is not None:
        extra = {**extra, "weight_storage": {"mode": "compact", "note": "int8 per output channel for tensors of "
                                             ">= 2^20 values, fp16 otherwise; computed in fp32", **storage}}
    record = metadata(args, family, config, overrides, checkpoint, output, input_names, output_names, extra, check)
    meta_path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {meta_path}")
    return status


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except ExportError as exc:
        print(f"export_onnx: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
