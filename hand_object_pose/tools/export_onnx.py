"""Export a model preset with trained weights to the ONNX file the pose node loads.

    python -m hand_object_pose.tools.export_onnx PRESET OUT.onnx (--checkpoint FILE | --random-weights)
        [--override FIELD=VALUE ...] [--check] [--opset N] [--precision fp32|int8 [--calibration-frames N]]
        [--mano-path DIR_OR_NPZ] [--object-template TEMPLATE.npz ...]      (dma_* presets only)

FILE is the authors' release (`*.pth.tar`, converted by the family's official-checkpoint converter) or
a checkpoint of our training engine (`runs/<name>/latest.pt`, `{"model": state_dict, ...}`, or a bare
state dict of ours), read by `models.weights_file` (`torch.load(weights_only=True)`). The graph is the
family's inference graph (`models/<family>/inference_graph.py`), dynamic batch axis. Beside OUT.onnx, OUT.onnx.json records
where the weights came from (path, sha256, trained or not), the preset and overrides, the graph's
inputs/outputs, input size and channel order, joint order, opset, date and library versions.
`--check` runs ONNX Runtime against torch on a random batch of two and exits 1 beyond tolerance.
`--precision int8` writes the static int8 (QDQ) quantization of the graph instead (export.quantize;
calibrated on hand crops rendered by the synthetic generator and prepared by the family's adapter, as
the Estimator would): about 2x faster on a CPU with int8 instructions, outputs within a few percent of
fp32; the record says `precision: int8` with the measured drift of every output (docs/speed.md).
Usage errors (unknown preset, missing/corrupt checkpoint, checkpoint of another architecture) exit 2
with one line on stderr. The library half is `export.preset_export`. See docs/export.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

import yaml

from hand_object_pose.export.check import CHECK_BATCH, CHECK_RTOL, CHECK_RTOL_COMPACT
from hand_object_pose.export.onnx import DEFAULT_OPSET
from hand_object_pose.export.preset_export import ExportError, ExportRequest, export_preset
from hand_object_pose.models.registry import get_preset
from hand_object_pose.models.weights_file import one_line


def parse_overrides(assignments, preset: str) -> dict:
    """["field=value", ...] -> {field: value}; values are YAML ("18", "true", "maxpool", "[1, 2]")."""
    try:
        _, config = get_preset(preset)
    except ValueError as exc:
        raise ExportError(str(exc)) from None
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


def calibration_feeds(preset: str, overrides: dict | None = None, mano_path: str = ""):
    """calibration(count, seed) -> [graph inputs of one frame]: hand crops rendered by the synthetic generator
    (`synthetic.calibration.hand_crops`) through the family's adapter, as the Estimator prepares a crop."""
    from hand_object_pose.inference.adapters import make_adapter
    from hand_object_pose.synthetic.calibration import hand_crops

    family, config = get_preset(preset)
    adapter = make_adapter(family, family.with_overrides(config, overrides or {}), mano_path)

    def calibration(count: int, seed: int) -> list:
        return [adapter.preprocess(crop) for crop in hand_crops(adapter.input_size, count, seed)]

    return calibration


def warn(message: str) -> None:
    bar = "!" * 100
    print(f"{bar}\nWARNING: {message}\n{bar}", file=sys.stderr)


class _LoudWarnings(logging.Handler):
    """The library's warnings (random weights, stand-in hand, placeholder object) as banners on stderr."""

    def emit(self, record):
        if record.levelno >= logging.WARNING:
            warn(record.getMessage())


def parse_args(argv):
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
    parser.add_argument("--precision", choices=("fp32", "int8"), default="fp32",
                        help="fp32 (default, outputs identical to torch) or int8: static QDQ quantization for ONNX "
                             "Runtime on the CPU, calibrated on rendered synthetic hand crops (about 2x faster, "
                             "outputs within a few percent; the record holds the measured drift; docs/speed.md)")
    parser.add_argument("--coarse-network", action="store_true",
                        help="a coarse network (EstimatorConfig.coarse_model_path): --override input_size=... may "
                             "change its input size")
    parser.add_argument("--calibration-frames", type=int, default=16,
                        help="int8: rendered frames the activation ranges are calibrated on (default 16)")
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
    if args.checkpoint and args.random_weights:
        raise ExportError("give either --checkpoint or --random-weights, not both")
    if not args.checkpoint and not args.random_weights:
        raise ExportError("no --checkpoint given: refusing to export random weights (pass --random-weights for an "
                          "untrained network, for tests and timing only)")
    overrides = parse_overrides(args.override, args.preset)
    calibration = calibration_feeds(args.preset, overrides, args.mano_path) if args.precision == "int8" else None
    request = ExportRequest(preset=args.preset, output=Path(args.output), weights=args.checkpoint,
                            overrides=overrides, check=args.check, precision=args.precision,
                            calibration=calibration, calibration_frames=args.calibration_frames,
                            weight_storage=args.weights, opset=args.opset, mano_path=args.mano_path,
                            object_templates=tuple(args.object_template), coarse_network=args.coarse_network,
                            command=("python", "-m", "hand_object_pose.tools.export_onnx", *args.argv))
    outcome = export_preset(request, say=print)
    status = 0
    if outcome.check is not None:
        check = outcome.check
        print(f"ONNX Runtime vs torch, random batch of {CHECK_BATCH}:")
        for row in check.rows:
            print(row.format())
        if check.note:
            print(f"  note: {check.note}")
        print(f"{'PASS' if check.ok else 'FAIL'}: worst relative error {check.worst_relative:.2e} "
              f"(tolerance {check.rtol:g})")
        status = 0 if check.ok else 1
    int8 = outcome.record.get("int8")
    if int8:
        drift = int8["drift_vs_fp32"]
        print(f"int8 vs fp32, {drift['frames']}:")
        for name, row in drift["outputs"].items():
            print(f"  {name:18s} " + (f"relative drift {row['relative']:.2e}" if "relative" in row
                                      else f"{100 * row['differing']:.1f} % of elements differ"))
    print(f"wrote {outcome.record_path}")
    return status


def main(argv=None) -> int:
    args = parse_args(argv)
    handler = _LoudWarnings()
    library = logging.getLogger("hand_object_pose")
    library.addHandler(handler)
    try:
        return run(args)
    except ExportError as exc:
        print(f"export_onnx: error: {exc}", file=sys.stderr)
        return 2
    finally:
        library.removeHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
