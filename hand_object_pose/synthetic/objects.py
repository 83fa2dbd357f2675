"""The synthetic generator's objects: the procedural meshes of `geometry.procedural_objects` with grasp sizes and
solids, and their catalogue files.

Object frame: metres, origin at the bounding-box centre, z = the height / symmetry axis. Each object
has an id, a mesh (written as ASCII PLY), a symmetry in the object catalogue's spelling
(`inference/catalogue.py`: none | {kind: discrete|continuous, axis, order, flip_axis} | {kind: spherical})
and a grasp size.
``write_catalogue`` writes the meshes and a catalogue YAML that ``ObjectCatalogue.load`` reads.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import yaml

from hand_object_pose.geometry.procedural_objects import PROCEDURAL_OBJECTS, mesh_centre


@dataclass(frozen=True)
class Primitive:
    """A solid for cheap inside tests: "box" (size = half extents), "cylinder" about z (size = radius,
    half height) or "sphere" (size = radius,), centred at ``center`` (object frame, metres)."""
    kind: str
    center: tuple
    size: tuple

    def depth(self, points: np.ndarray) -> np.ndarray:
        """(N,) how deep each point lies inside (metres; <= 0 outside)."""
        p = np.asarray(points, dtype=np.float64) - np.asarray(self.center)
        if self.kind == "box":
            return (np.asarray(self.size) - np.abs(p)).min(axis=1)
        if self.kind == "cylinder":
            radius, half_height = self.size
            return np.minimum(radius - np.linalg.norm(p[:, :2], axis=1), half_height - np.abs(p[:, 2]))
        if self.kind == "sphere":
            return self.size[0] - np.linalg.norm(p, axis=1)
        raise ValueError(f"unknown primitive kind {self.kind!r}")


@dataclass(frozen=True)
class ObjectModel:
    object_id: str
    vertices: np.ndarray                 # (V, 3) metres, object frame
    faces: np.ndarray                    # (F, 3) int64, counter-clockwise seen from outside
    symmetry: dict = field(default_factory=lambda: {"kind": "none"})
    grasp_radius: float = 0.04           # metres: half the width a hand closes around
    solids: tuple = ()                   # Primitives approximating the volume (thin parts left out)

    def penetration(self, points: np.ndarray) -> np.ndarray:
        """(N,) depth of object-frame points inside the object's solids (metres, 0 outside)."""
        if not self.solids:
            return np.zeros(len(points))
        return np.clip(np.max([s.depth(points) for s in self.solids], axis=0), 0.0, None)

    def corners(self) -> np.ndarray:
        """(8, 3) corners of the axis-aligned bounding box (x, y, z bits in that order)."""
        lo, hi = self.vertices.min(axis=0), self.vertices.max(axis=0)
        return np.array([[(lo, hi)[i][0], (lo, hi)[j][1], (lo, hi)[k][2]]
                         for i in (0, 1) for j in (0, 1) for k in (0, 1)])


def default_objects() -> list[ObjectModel]:
    """The synthetic catalogue (`geometry.procedural_objects.PROCEDURAL_OBJECTS`: ids, meshes, symmetries) with
    grasp sizes and solids."""
    box, cyl, sph = "box", "cylinder", "sphere"
    specs = {  # id: grasp radius, solids (in the mesh's frame before centring)
        "synthetic_box": (0.03, [(box, (0, 0, 0), (0.03, 0.045, 0.025))]),
        "synthetic_cylinder": (0.035, [(cyl, (0, 0, 0), (0.035, 0.06))]),
        "synthetic_sphere": (0.04, [(sph, (0, 0, 0), (0.04,))]),
        "synthetic_mug": (0.04, [(cyl, (0, 0, 0), (0.04, 0.0475))]),
        "synthetic_bottle": (0.033, [(cyl, (0, 0, -0.043), (0.033, 0.057)), (cyl, (0, 0, 0.077), (0.012, 0.023))]),
    }
    objects = []
    for oid, (build, symmetry) in PROCEDURAL_OBJECTS.items():
        v, f = build()
        shift = mesh_centre(v)   # meshes are centred on their bounding box; solids move with them
        r, solids = specs[oid]
        objects.append(ObjectModel(oid, v - shift, f, dict(symmetry), r, tuple(
            Primitive(kind, tuple(np.asarray(c) - shift), size) for kind, c, size in solids)))
    return objects


def write_ply(path: str | os.PathLike, vertices: np.ndarray, faces: np.ndarray) -> None:
    """ASCII PLY (metres), readable by assimp/RViz, Open3D and trimesh."""
    lines = ["ply", "format ascii 1.0", f"element vertex {len(vertices)}", "property float x",
             "property float y", "property float z", f"element face {len(faces)}",
             "property list uchar int vertex_indices", "end_header"]
    lines += [f"{x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices]
    lines += [f"3 {a} {b} {c}" for a, b, c in faces]
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")


def read_ply(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read an ASCII triangle PLY written by ``write_ply``."""
    with open(path) as handle:
        lines = handle.read().splitlines()
    if not lines or lines[0] != "ply" or "format ascii 1.0" not in lines[:3]:
        raise ValueError(f"{path}: not an ASCII PLY file")
    header_end = lines.index("end_header")
    counts = {line.split()[1]: int(line.split()[2]) for line in lines[:header_end] if line.startswith("element")}
    body = lines[header_end + 1:]
    n_vertices, n_faces = counts["vertex"], counts["face"]
    vertices = np.array([[float(t) for t in line.split()[:3]] for line in body[:n_vertices]])
    faces = np.array([[int(t) for t in line.split()[1:4]] for line in body[n_vertices:n_vertices + n_faces]],
                     dtype=np.int64)
    return vertices, faces


def write_catalogue(directory: str | os.PathLike, objects: list[ObjectModel] | None = None) -> str:
    """Write ``meshes/<id>.ply`` and ``catalogue.yaml`` (object catalogue schema) under ``directory``."""
    objects = default_objects() if objects is None else objects
    os.makedirs(os.path.join(directory, "meshes"), exist_ok=True)
    entries = []
    for obj in objects:
        write_ply(os.path.join(directory, "meshes", f"{obj.object_id}.ply"), obj.vertices, obj.faces)
        entries.append({"id": obj.object_id, "mesh": f"meshes/{obj.object_id}.ply", "mesh_scale": 1.0,
                        "symmetry": obj.symmetry if obj.symmetry["kind"] != "none" else "none",
                        "tf_child_frame": obj.object_id})
    path = os.path.join(directory, "catalogue.yaml")
    with open(path, "w") as handle:
        handle.write("# Synthetic objects (procedural, licence-free); generated by hand_object_pose.synthetic\n")
        yaml.safe_dump({"objects": entries}, handle, sort_keys=False)
    return path
