"""The shipped hand detector files (models/hand_detector): where they are and whether they are intact.

The folder is written by `python -m hand_object_pose.tools.convert_mediapipe_hands`: two ONNX files,
LICENSE, README.md and metadata.json (each file's sha256). Nothing is ever downloaded at run time.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from hand_object_pose.file_digest import sha256_of

METADATA_FILE = "metadata.json"
FOLDER = "hand_detector"


class HandDetectorFilesError(FileNotFoundError):
    """The detector's files are missing, incomplete or corrupt (the message is one line). A
    FileNotFoundError, as for a missing network file, so that callers stop the same way."""


def default_dirs(package_dir: str | os.PathLike | None = None) -> list[Path]:
    """Search order: `<repo>/models/hand_detector` beside the package (source checkout), then
    `<prefix>/share/hand_object_pose/models/hand_detector` (colcon or pip install, the package at
    `<prefix>/lib/pythonX.Y/site-packages/hand_object_pose`). `package_dir`: the `hand_object_pose`
    package folder (default: this one)."""
    package_dir = Path(package_dir).resolve() if package_dir else Path(__file__).resolve().parents[2]
    prefix = package_dir.parents[3] if len(package_dir.parents) > 3 else package_dir
    return [package_dir.parent / "models" / FOLDER, prefix / "share" / "hand_object_pose" / "models" / FOLDER]


def default_dir() -> Path:
    """The first of `default_dirs()` holding a metadata.json (HandDetectorFilesError when none does)."""
    candidates = default_dirs()
    for candidate in candidates:
        if (candidate / METADATA_FILE).is_file():
            return candidate
    raise HandDetectorFilesError("hand detector files not found; searched " + ", ".join(map(str, candidates))
                                 + " (regenerate with python -m hand_object_pose.tools.convert_mediapipe_hands)")


@dataclass(frozen=True)
class HandDetectorFiles:
    directory: Path
    palm_detection: Path
    hand_landmark: Path
    metadata: dict


def locate(directory: str | os.PathLike = "", verify: bool = True) -> HandDetectorFiles:
    """The detector files in `directory` ("" = `default_dir()`), checked against metadata.json.

    verify: compare each ONNX file's sha256 with the metadata (catches truncated or replaced files,
    e.g. a Git LFS pointer). Raises HandDetectorFilesError with a one-line message."""
    directory = Path(directory).expanduser() if directory else default_dir()
    meta_path = directory / METADATA_FILE
    if not meta_path.is_file():
        raise HandDetectorFilesError(f"hand detector metadata not found: {meta_path}")
    try:
        metadata = json.loads(meta_path.read_text())
        networks = metadata["networks"]
        paths = {key: directory / networks[key]["file"] for key in ("palm_detection", "hand_landmark")}
    except (ValueError, KeyError, TypeError) as exc:
        raise HandDetectorFilesError(f"unreadable hand detector metadata {meta_path}: {type(exc).__name__}: {exc}") \
            from exc
    for key, path in paths.items():
        if not path.is_file():
            raise HandDetectorFilesError(f"hand detector file missing: {path}")
        if verify and sha256_of(path) != networks[key].get("sha256"):
            raise HandDetectorFilesError(f"hand detector file {path} does not match the sha256 in {meta_path} "
                                         "(corrupt or replaced; regenerate or restore it)")
    return HandDetectorFiles(directory=directory, metadata=metadata, **paths)
