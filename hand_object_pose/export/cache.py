"""Export cache: a weights file (the authors' `.pth.tar`, a training checkpoint) becomes an ONNX file once.

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
import logging
import os
import tempfile
from pathlib import Path
from typing import Callable, Sequence

from hand_object_pose.models.registry import get_preset
from hand_object_pose.models.weights_file import sha256_of

from .preset_export import ExportError, ExportRequest, export_preset, read_record

LOG = logging.getLogger(__name__)

EXPORTER_VERSION = "1"
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


def resolve_model_path(values: dict, cache_dir: str | os.PathLike = DEFAULT_CACHE_DIR,
                       templates_of_catalogue: Callable[[str], Sequence[str]] = lambda path: (),
                       say: Callable[[str], None] = LOG.info) -> str:
    """The .onnx path an Estimator loads for configuration `values` (`model`, `backend`, `model_path`,
    `mano_path`, `object_catalogue`: the node's parameters): unchanged unless ONNX Runtime is asked to run a
    weights file, which is then exported once into `cache_dir` (`onnx_for_weights`).

    `templates_of_catalogue(catalogue path)`: the template files of the catalogue's templated entries in
    catalogue order (families built around object templates bake them into the export).
    Raises ExportError (one line) for a weights file of another family or preset, or a corrupt one.
    """
    path = values.get("model_path", "")
    if values.get("backend", "onnxruntime") != "onnxruntime" or not path or not is_weights_file(path):
        return path
    try:
        family, _ = get_preset(values["model"])
    except ValueError as exc:
        raise ExportError(str(exc)) from None
    catalogue = values.get("object_catalogue", "")
    templates = tuple(templates_of_catalogue(catalogue)) if family.uses_object_templates and catalogue else ()
    return str(onnx_for_weights(path, values["model"], cache_dir, values.get("mano_path", ""), templates, say))
