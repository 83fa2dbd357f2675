"""Export cache: a weights file (the authors' `.pth.tar`, a training checkpoint) becomes an ONNX file once, and an
fp32 export asked to run in int8 (`precision: int8`) becomes its int8 quantization once (`int8_for_onnx`).

The node's `model_path` may name a weights file instead of an export. On start it asks
`onnx_for_weights`, which returns the cached export when one exists for the same key, else exports (with
the ONNX-vs-torch check) into the cache and returns that. The key is a hash of the weights file's bytes,
the preset, the export assets (hand model and object templates, for templated families) and
`EXPORTER_VERSION` (bumped whenever what the exporter writes changes), the pattern of TensorRT engine
caches: a changed input is a new entry, never a stale hit. Entries are written atomically (a `.partial`
file renamed into place), so an interrupted start leaves no entry that a later start would trust.

An unwritable cache directory falls back to a temporary one (with a warning): the node still starts,
but the export is redone on the next start.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Callable, Optional, Sequence

import cv2
import numpy as np

from hand_object_pose.models.registry import get_preset
from hand_object_pose.models.weights_file import sha256_of

from .preset_export import COMPANION_NETWORKS, ExportError, ExportRequest, companion_network_of, export_preset, \
    read_record, record_path_of

LOG = logging.getLogger(__name__)

EXPORTER_VERSION = "1"
QUANTIZER_VERSION = "2"            # bumped whenever what `export.quantize` writes changes (2: channels-last interleave)
INT8_CALIBRATION_FRAMES, INT8_CALIBRATION_SEED = 16, 9161   # as `tools.export_onnx --precision int8`
WEIGHTS_SUFFIXES = (".pth.tar", ".pth", ".pt", ".tar", ".ckpt")
DEFAULT_CACHE_DIR = "~/.cache/hand_object_pose/onnx"


def is_weights_file(path: str | os.PathLike) -> bool:
    """Whether a model path names a torch weights file (to export) rather than an ONNX export."""
    return str(path).lower().endswith(WEIGHTS_SUFFIXES)


def cache_key(weights_path: str | Path, preset: str, mano_path: str = "", object_templates: Sequence[str] = ()) -> str:
    """Hex key of an export: weights bytes, preset, assets and exporter version."""
    digest = hashlib.sha256()
    parts = [f"exporter={EXPORTER_VERSION}", f"preset={preset}", f"weights={sha256_of(weights_path)}"]
    if mano_path:
        parts.append(f"mano={mano_path}")
    parts += [f"template={sha256_of(t)}" for t in object_templates]
    digest.update("\n".join(parts).encode())
    return digest.hexdigest()[:32]


def usable_cache_dir(cache_dir: str | os.PathLike) -> Path:
    """`cache_dir` created if needed; a fresh temporary directory (warning logged) when it cannot be written."""
    directory = Path(os.path.expanduser(os.fspath(cache_dir or DEFAULT_CACHE_DIR)))
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=directory, prefix=".write_test_", delete=True)
        probe.close()
        return directory
    except OSError as exc:
        fallback = Path(tempfile.mkdtemp(prefix="hand_object_pose_onnx_"))
        LOG.warning("export cache directory %s is not writable (%s): using %s for this run; the export will be "
                    "redone on the next start (set model_cache_dir to a writable directory)",
                    directory, exc.strerror or exc, fallback)
        return fallback


def onnx_for_weights(weights_path: str | Path, preset: str, cache_dir: str | os.PathLike = DEFAULT_CACHE_DIR,
                     mano_path: str = "", object_templates: Sequence[str] = (),
                     say: Callable[[str], None] = LOG.info) -> Path:
    """The ONNX export of `weights_path` for `preset`, from the cache or exported into it now.

    Raises ExportError (one line) when the weights file is missing, corrupt, or of another family or preset
    (naming the first missing and unexpected tensors), or when the export check fails.
    """
    weights = Path(weights_path).expanduser()
    if not weights.is_file():
        raise ExportError(f"weights file not found: {weights}")
    key = cache_key(weights, preset, mano_path, object_templates)
    entry = usable_cache_dir(cache_dir) / f"{preset}-{key}.onnx"
    record = read_record(entry) if entry.is_file() else None
    if record is not None and record.get("preset") == preset:
        say(f"export cache hit: {weights.name} ({preset}) -> {entry}")
        return entry
    say(f"export cache miss: exporting {weights} ({preset}) to ONNX once, into {entry} (this can take a minute)")
    outcome = export_preset(ExportRequest(preset=preset, output=entry, weights=str(weights), check=True,
                                          mano_path=mano_path, object_templates=tuple(object_templates),
                                          command=("export cache", f"exporter {EXPORTER_VERSION}")), say=say)
    if not outcome.check.ok:
        for path in (outcome.onnx_path, outcome.record_path):
            path.unlink(missing_ok=True)
        raise ExportError(f"the ONNX export of {weights} differs from torch beyond {outcome.check.rtol:g} "
                          f"(worst relative error {outcome.check.worst_relative:.2e}); not cached")
    say(f"export cached: {entry} (ONNX Runtime matches torch, worst relative error "
        f"{outcome.check.worst_relative:.1e})")
    return entry


def file_precision(onnx_path: str | Path) -> str:
    """The arithmetic an ONNX export records in its metadata_props ("fp32" when it records none)."""
    import onnx

    from .quantize import precision_of

    model = onnx.load(str(Path(onnx_path).expanduser()), load_external_data=False)
    return precision_of({m.key: m.value for m in model.metadata_props})


def int8_for_onnx(fp32_path: str | Path, preset: str, calibration: Callable[[int, int], list],
                  cache_dir: str | os.PathLike = DEFAULT_CACHE_DIR, say: Callable[[str], None] = LOG.info) -> Path:
    """The int8 quantization (`export.quantize`) of the fp32 export `fp32_path`, from the cache or made into it
    now: calibrated on `calibration(INT8_CALIBRATION_FRAMES, INT8_CALIBRATION_SEED)` (rendered hand crops through
    the family's adapter), with a record of what was quantized and each output's drift on 4 other crops.

    The companion networks named in the fp32 file's record (COMPANION_NETWORKS: the shipped default's object
    network, and its coarse network, calibrated on the same crops resized to its own input size) are quantized the
    same way and named, by their cached paths, in the int8 file's record.

    The key: the fp32 file's bytes (and its companions'), the preset, the calibration and `QUANTIZER_VERSION`.
    Raises ExportError (one line) when the quantization fails."""
    from .quantize import QuantizationError, output_drift, quantize_int8

    source = Path(fp32_path).expanduser()
    if not source.is_file():
        raise ExportError(f"ONNX model file not found: {source}")
    companions = {key: companion_network_of(source, key) for key in COMPANION_NETWORKS}
    companions = {key: path for key, path in companions.items() if path is not None}
    for key, path in companions.items():
        if not path.is_file():
            raise ExportError(f"{source}'s record names the companion network {path} ({key}), which is missing")
    side_cue = (read_record(source) or {}).get("hand_side_cue", "")   # how the network tells a hand's side
    digest = hashlib.sha256("\n".join([f"quantizer={QUANTIZER_VERSION}", f"preset={preset}", f"onnx={sha256_of(source)}",
                                       f"calibration={INT8_CALIBRATION_FRAMES}x{INT8_CALIBRATION_SEED}"]
                                      + [f"{key}={sha256_of(path)}" for key, path in companions.items()]
                                      + [f"side_cue={side_cue}"]).encode())
    entry = usable_cache_dir(cache_dir) / f"{preset}-int8-{digest.hexdigest()[:32]}.onnx"
    record = read_record(entry) if entry.is_file() else None
    if record is not None and record.get("preset") == preset and record.get("precision") == "int8" \
            and all(Path(record.get(key, "")).is_file() for key in companions):
        say(f"export cache hit: int8 of {source.name} ({preset}) -> {entry}")
        return entry
    companion_entries = {key: int8_for_onnx(path, preset, _at_input_size(calibration, path), cache_dir, say)
                         for key, path in companions.items()}
    say(f"export cache miss: quantizing {source} ({preset}) to int8 once, into {entry} (rendering "
        f"{INT8_CALIBRATION_FRAMES} calibration crops first)")
    try:
        report = quantize_int8(source, entry, calibration(INT8_CALIBRATION_FRAMES, INT8_CALIBRATION_SEED))
    except QuantizationError as exc:
        raise ExportError(f"int8 quantization of {source} failed: {exc}") from None
    drift = output_drift(source, entry, calibration(4, INT8_CALIBRATION_SEED + 1))
    record = {"preset": preset, "precision": "int8", "quantized_from": {"file": str(source), "sha256": sha256_of(source)},
              "int8": {**report.as_dict(), "drift_vs_fp32": {
                  "frames": f"4 rendered frames, seed {INT8_CALIBRATION_SEED + 1} (not calibrated on)", "outputs": drift}}}
    record.update({key: str(path) for key, path in companion_entries.items()})
    if side_cue:   # it does not change with the arithmetic
        record["hand_side_cue"] = side_cue
    partial = record_path_of(entry).with_name(record_path_of(entry).name + ".partial")
    partial.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(partial, record_path_of(entry))
    say(f"export cached: {entry} (int8; largest output drift vs fp32 "
        + ", ".join(f"{name} {value.get('relative', value.get('differing', 0.0)):.1e}" for name, value in drift.items())
        + ")")
    return entry


def _at_input_size(calibration: Callable[[int, int], list], onnx_path: Path) -> Callable[[int, int], list]:
    """`calibration` with its images (N, 3, S, S) resized to the image input side of `onnx_path` when that differs
    (a coarse network runs at its own size)."""
    import onnx

    dims = onnx.load(str(onnx_path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    side = dims[-1].dim_value if len(dims) == 4 else 0

    def resized(count: int, seed: int) -> list:
        feeds = calibration(count, seed)
        if not side or not feeds or feeds[0]["image"].shape[-1] == side:
            return feeds
        return [{**feed, "image": np.stack([cv2.resize(image.transpose(1, 2, 0), (side, side),
                                                       interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)
                                            for image in feed["image"]])} for feed in feeds]

    return resized


def resolve_model_path(values: dict, cache_dir: str | os.PathLike = DEFAULT_CACHE_DIR,
                       templates_of_catalogue: Callable[[str], Sequence[str]] = lambda path: (),
                       say: Callable[[str], None] = LOG.info,
                       calibration_of: Optional[Callable[[str], Callable[[int, int], list]]] = None) -> str:
    """The .onnx path an Estimator loads for configuration `values` (`model`, `backend`, `model_path`,
    `mano_path`, `object_catalogue`, `precision`: the node's parameters): unchanged unless ONNX Runtime is asked
    to run a weights file, which is then exported once into `cache_dir` (`onnx_for_weights`), or to run an fp32
    export in int8 (`precision` "int8"), which is then quantized once into `cache_dir` (`int8_for_onnx`, with the
    calibration inputs `calibration_of(preset)`; without it the path is unchanged and the Estimator refuses the
    fp32 file).

    `templates_of_catalogue(catalogue path)`: the template files of the catalogue's templated entries in
    catalogue order (families built around object templates bake them into the export).
    Raises ExportError (one line) for a weights file of another family or preset, or a corrupt one.
    """
    path = values.get("model_path", "")
    if values.get("backend", "onnxruntime") != "onnxruntime" or not path:
        return path
    if is_weights_file(path):
        try:
            family, _ = get_preset(values["model"])
        except ValueError as exc:
            raise ExportError(str(exc)) from None
        catalogue = values.get("object_catalogue", "")
        templates = tuple(templates_of_catalogue(catalogue)) if family.uses_object_templates and catalogue else ()
        path = str(onnx_for_weights(path, values["model"], cache_dir, values.get("mano_path", ""), templates, say))
    if values.get("precision") == "int8" and calibration_of is not None and Path(path).expanduser().is_file() \
            and file_precision(path) == "fp32":
        path = str(int8_for_onnx(path, values["model"], calibration_of(values["model"]), cache_dir, say))
    return path
