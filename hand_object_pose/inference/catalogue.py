"""The object catalogue: which objects the pipeline may report, their meshes, symmetries and TF names.

YAML schema (see config/objects.yaml and docs/inference.md)::

    objects:
      - id: "006_mustard_bottle"          # required, unique; the id in results and messages
        mesh: "meshes/mustard.ply"        # optional; relative to this YAML file, absolute, or a
                                          #   package://, file:// or http(s):// URI (not checked)
        mesh_scale: 1.0                   # optional; mesh units -> metres (0.001 for millimetre meshes)
        symmetry: none                    # optional; none | {kind: discrete|continuous, axis: [x,y,z], order: N,
                                          #   flip_axis: [x,y,z] (optional)} | {kind: spherical}
        tf_child_frame: "mustard_bottle"  # optional (default: the id); TF child frame name, no leading '/'
        template: "templates/mustard.npz" # optional; object template npz (tools.object_template: the mesh
                                          #   resampled to 1000 vertices, metres, object frame), relative to
                                          #   this YAML file or absolute; required by Dense Mutual Attention

The symmetry spelling matches `hand_object_pose.evaluation.objects.symmetry_rotations`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import yaml

from hand_object_pose.geometry.object_template import SYMMETRY_TYPES, load_template

_FRAME_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")
_URI = re.compile(r"^(package|file|https?)://")


@dataclass(frozen=True)
class ObjectEntry:
    """One catalogue object.

    mesh_uri: "" (no mesh), a file:// URI of an existing local file, or the URI given in the YAML.
    symmetry_kind / symmetry_axis (unit 3-vector, object frame) / symmetry_order / symmetry_flip_axis (None, or
    a unit 3-vector perpendicular to the axis: a 180-degree symmetry about it too): see module doc.
    template_path: "" (none) or the absolute path of an existing object template npz.
    """

    object_id: str
    mesh_uri: str
    mesh_scale: float
    symmetry_kind: str
    symmetry_axis: tuple
    symmetry_order: int
    tf_child_frame: str
    template_path: str = ""
    symmetry_flip_axis: Optional[tuple] = None


class CatalogueError(ValueError):
    """The catalogue file is missing or invalid; the message names the file, the entry and the field."""


class ObjectCatalogue:
    """Validated object catalogue: `catalogue[id]` -> ObjectEntry; `ids` in file order."""

    def __init__(self, entries: list[ObjectEntry], source: str = "<memory>"):
        self.source = source
        self._entries = {e.object_id: e for e in entries}
        self.ids = tuple(e.object_id for e in entries)

    def __contains__(self, object_id: str) -> bool:
        return object_id in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, object_id: str) -> ObjectEntry:
        try:
            return self._entries[object_id]
        except KeyError:
            raise KeyError(f"object id {object_id!r} is not in the object catalogue {self.source}; "
                           f"known ids: {list(self.ids)}") from None

    def get(self, object_id: str) -> Optional[ObjectEntry]:
        return self._entries.get(object_id)

    @property
    def template_ids(self) -> tuple:
        """Ids of the entries that name a template, in file order (the order a DMA model is built with)."""
        return tuple(i for i in self.ids if self._entries[i].template_path)

    def template_paths(self) -> tuple:
        """The template files of `template_ids`, in the same order."""
        return tuple(self._entries[i].template_path for i in self.template_ids)

    @classmethod
    def template_paths_of(cls, path: str | Path) -> tuple:
        """`template_paths()` of the catalogue file at `path`."""
        return cls.load(path).template_paths()

    def load_templates(self) -> dict:
        """{id: geometry.object_template.ObjectTemplate} for the entries with a template, in file order.

        Raises CatalogueError naming the entry and file when a template cannot be read or was made for
        another object (its stored id differs from the entry's).
        """
        templates = {}
        for object_id in self.template_ids:
            path = self._entries[object_id].template_path
            try:
                template = load_template(path)
            except (OSError, ValueError, KeyError) as exc:
                raise CatalogueError(f"object catalogue {self.source}, object {object_id!r}: cannot read template "
                                     f"{path}: {exc}") from exc
            if template.name != object_id:
                raise CatalogueError(f"object catalogue {self.source}, object {object_id!r}: template {path} was made "
                                     f"for object {template.name!r} (its --id); remake it with --id {object_id} or "
                                     "fix the entry")
            templates[object_id] = template
        return templates

    @classmethod
    def load(cls, path: str | Path) -> "ObjectCatalogue":
        """Read and validate a catalogue YAML; CatalogueError names what is wrong."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise CatalogueError(f"object catalogue file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise CatalogueError(f"object catalogue {path} is not valid YAML: {exc}") from exc
        return cls.from_dict(data, base_dir=path.parent, source=str(path))

    @classmethod
    def from_dict(cls, data, base_dir: Path = Path("."), source: str = "<memory>") -> "ObjectCatalogue":
        if not isinstance(data, dict) or not isinstance(data.get("objects"), list):
            raise CatalogueError(f"object catalogue {source}: expected a mapping with an 'objects' list")
        entries, seen_ids, seen_frames = [], set(), set()
        for index, item in enumerate(data["objects"]):
            entry = _parse_entry(item, index, Path(base_dir), source)
            if entry.object_id in seen_ids:
                raise CatalogueError(f"object catalogue {source}: duplicate id {entry.object_id!r}")
            if entry.tf_child_frame in seen_frames:
                raise CatalogueError(f"object catalogue {source}: object {entry.object_id!r} reuses "
                                     f"tf_child_frame {entry.tf_child_frame!r}")
            seen_ids.add(entry.object_id)
            seen_frames.add(entry.tf_child_frame)
            entries.append(entry)
        return cls(entries, source)


def _parse_entry(item, index: int, base_dir: Path, source: str) -> ObjectEntry:
    where = f"object catalogue {source}, objects[{index}]"
    if not isinstance(item, dict):
        raise CatalogueError(f"{where}: expected a mapping with at least 'id'")
    unknown = sorted(set(item) - {"id", "mesh", "mesh_scale", "symmetry", "tf_child_frame", "template"})
    if unknown:
        raise CatalogueError(f"{where}: unknown field(s) {unknown}; allowed: id, mesh, mesh_scale, symmetry, "
                             "tf_child_frame, template")
    object_id = item.get("id")
    if not isinstance(object_id, str) or not object_id.strip():
        raise CatalogueError(f"{where}: 'id' must be a non-empty string, got {object_id!r}")
    where = f"object catalogue {source}, object {object_id!r}"

    mesh = item.get("mesh", "") or ""
    if not isinstance(mesh, str):
        raise CatalogueError(f"{where}: 'mesh' must be a path or URI string, got {mesh!r}")
    if mesh and not _URI.match(mesh):
        mesh_path = (base_dir / mesh).resolve()
        if not mesh_path.is_file():
            raise CatalogueError(f"{where}: mesh file not found: {mesh_path}")
        mesh = mesh_path.as_uri()
    scale = item.get("mesh_scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
        raise CatalogueError(f"{where}: 'mesh_scale' must be a positive number (0.001 for millimetre meshes), "
                             f"got {scale!r}")

    kind, axis, order, flip_axis = _parse_symmetry(item.get("symmetry", "none"), where)

    frame = item.get("tf_child_frame", object_id)
    if not isinstance(frame, str) or not _FRAME_NAME.match(frame):
        raise CatalogueError(f"{where}: 'tf_child_frame' must be a TF frame name of letters, digits, '_' and "
                             f"inner '/' without a leading '/', got {frame!r}")

    template = item.get("template", "") or ""
    if not isinstance(template, str):
        raise CatalogueError(f"{where}: 'template' must be the path of an object template npz, got {template!r}")
    if template:
        template_path = (base_dir / Path(template).expanduser()).resolve()
        if not template_path.is_file():
            raise CatalogueError(f"{where}: template file not found: {template_path} (make one with python -m "
                                 "hand_object_pose.tools.object_template MESH OUT.npz --id " + object_id + ")")
        template = str(template_path)
    return ObjectEntry(object_id, mesh, float(scale), kind, axis, order, frame, template, flip_axis)


def _parse_symmetry(symmetry, where: str):
    """(kind, unit axis, order, unit flip axis or None) of a catalogue `symmetry` entry."""
    if symmetry is None or symmetry == "none":
        return "none", (0.0, 0.0, 1.0), 1, None
    if not isinstance(symmetry, dict):
        raise CatalogueError(f"{where}: 'symmetry' must be 'none' or a mapping {{kind, axis, order, flip_axis}}, "
                             f"got {symmetry!r}")
    unknown = sorted(set(symmetry) - {"kind", "axis", "order", "flip_axis"})
    if unknown:
        raise CatalogueError(f"{where}: unknown symmetry field(s) {unknown}; allowed: kind, axis, order, flip_axis")
    kind = symmetry.get("kind", "none")
    if kind not in SYMMETRY_TYPES:
        raise CatalogueError(f"{where}: symmetry kind must be one of {SYMMETRY_TYPES}, got {kind!r}")
    axis = _parse_axis(symmetry.get("axis", [0.0, 0.0, 1.0]), "symmetry axis", where)
    order = symmetry.get("order", 1)
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise CatalogueError(f"{where}: symmetry order must be an integer >= 1, got {order!r}")
    if kind == "discrete" and order < 2:
        raise CatalogueError(f"{where}: a discrete symmetry needs order >= 2, got {order}")
    flip_axis = symmetry.get("flip_axis")
    if flip_axis is not None:
        if kind not in ("discrete", "continuous"):
            raise CatalogueError(f"{where}: flip_axis needs a discrete or continuous symmetry, not {kind!r}")
        flip_axis = _parse_axis(flip_axis, "symmetry flip_axis", where)
        if abs(sum(a * b for a, b in zip(axis, flip_axis))) > 1e-6:
            raise CatalogueError(f"{where}: symmetry flip_axis {list(flip_axis)} must be perpendicular to the axis "
                                 f"{list(axis)}")
    return kind, axis, order, flip_axis


def _parse_axis(axis, what: str, where: str) -> tuple:
    if not isinstance(axis, (list, tuple)) or len(axis) != 3 or \
            not all(isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a) for a in axis):
        raise CatalogueError(f"{where}: {what} must be 3 numbers, got {axis!r}")
    norm = math.sqrt(sum(a * a for a in axis))
    if norm < 1e-9:
        raise CatalogueError(f"{where}: {what} must not be zero")
    return tuple(a / norm for a in axis)
