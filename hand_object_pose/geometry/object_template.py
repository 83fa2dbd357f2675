"""Object templates: a catalogue object's mesh in metres with its symmetry, and their npz file format.

Dense Mutual Attention represents each object by a 1000-vertex mesh obtained with ACVD clustering
(paper section 3.2); `resample_mesh` makes one with pyacvd. The mesh readers take Wavefront .obj
(read here) and .ply / .stl / .vtk (through pyvista, which pyacvd depends on).

The npz (no pickled objects) holds: `vertices` (N, 3) float32 metres in the object's own frame,
`faces` (F, 3) int64, `id`, `symmetry` (JSON text: {"kind": "none" | "discrete" | "continuous" | "spherical",
"axis": [x, y, z] unit vector in the object frame, "order": k for discrete, optional "flip_axis": [x, y, z]} -- the keyword arguments of
`evaluation.objects.symmetry_rotations` and the spelling of the inference object catalogue), `source`
(the mesh it was made from) and `scale` (that mesh's factor to metres).

Made by `python -m hand_object_pose.tools.object_template`; read by the inference object catalogue, the
DMA export and the DMA training task.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class ObjectTemplate:
    """One catalogue object: vertices (V, 3) float32 in metres, object frame (DMA: V = 1000); faces (F, 3) int64.

    `symmetry` is the record of `symmetry_description` ({} or {"kind": "none"} for none), used by the
    symmetry-aware evaluation and losses.
    """

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    symmetry: dict = field(default_factory=dict)

    def __post_init__(self):
        self.vertices = np.asarray(self.vertices, dtype=np.float32)
        self.faces = np.asarray(self.faces, dtype=np.int64)
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3:
            raise ValueError(f"object {self.name!r}: vertices must be (V, 3), got {self.vertices.shape}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise ValueError(f"object {self.name!r}: faces must be (F, 3), got {self.faces.shape}")


SYMMETRY_TYPES = ("none", "discrete", "continuous", "spherical")


def read_obj(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) float64 and triangles (F, 3) int64 of a Wavefront OBJ (polygons fan-triangulated)."""
    vertices, faces = [], []
    for number, line in enumerate(Path(path).read_text(errors="replace").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "v":
            vertices.append([float(value) for value in parts[1:4]])
        elif parts[0] == "f":
            # "f 1 2 3", "f 1/1 2/2 3/3", "f 1//1 ..."; negative indices count from the end.
            ids = [int(token.split("/")[0]) for token in parts[1:]]
            ids = [i - 1 if i > 0 else len(vertices) + i for i in ids]
            if len(ids) < 3:
                raise ValueError(f"{path}:{number}: a face needs at least 3 vertices")
            faces += [[ids[0], ids[k], ids[k + 1]] for k in range(1, len(ids) - 1)]
    if not vertices or not faces:
        raise ValueError(f"{path}: no vertices or no faces found (is it a Wavefront OBJ mesh?)")
    faces = np.asarray(faces, dtype=np.int64)
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise ValueError(f"{path}: face index out of range for {len(vertices)} vertices")
    return np.asarray(vertices, dtype=np.float64), faces


def read_mesh(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read .obj with `read_obj`, other formats with pyvista; returns triangles."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mesh file not found: {path}")
    if path.suffix.lower() == ".obj":
        return read_obj(path)
    import pyvista

    mesh = pyvista.read(str(path)).extract_surface().triangulate()
    return np.asarray(mesh.points, dtype=np.float64), np.asarray(mesh.faces).reshape(-1, 4)[:, 1:].astype(np.int64)


def weld_vertices(vertices: np.ndarray, faces: np.ndarray, tolerance: float = 1e-7):
    """Merge coincident vertices (within `tolerance` metres) and drop the faces that collapse.

    CAD and lathe meshes often repeat rim points as zero-area strips; ACVD's mesh cleaning turns those
    into lines and then refuses the mesh ("must be composed of all triangles"), so they go first.
    Returns (vertices (V', 3), faces (F', 3) int64).
    """
    keys = np.round(np.asarray(vertices, np.float64) / tolerance).astype(np.int64)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    welded = inverse.reshape(-1)[np.asarray(faces, dtype=np.int64)]
    keep = (welded[:, 0] != welded[:, 1]) & (welded[:, 1] != welded[:, 2]) & (welded[:, 0] != welded[:, 2])
    return np.asarray(vertices)[first], welded[keep]


def resample_mesh(vertices: np.ndarray, faces: np.ndarray, num_vertices: int = 1000,
                  max_subdivisions: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """ACVD resampling to exactly `num_vertices` vertices; returns (num_vertices, 3) float32, (F, 3) int64.

    The mesh is subdivided (each step splits every triangle into 4) until it has at least 20 vertices
    per cluster, so the clusters tile the surface finely.
    """
    import pyacvd
    import pyvista

    vertices, faces = weld_vertices(vertices, faces)
    cells = np.column_stack([np.full(len(faces), 3), faces]).ravel()
    mesh = pyvista.PolyData(np.asarray(vertices, dtype=np.float64), cells).clean()
    subdivisions = 0
    while mesh.n_points * 4 ** subdivisions < 20 * num_vertices and subdivisions < max_subdivisions:
        subdivisions += 1
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*_connectivity_array")  # pyacvd 0.4 vs newer pyvista
        clustering = pyacvd.Clustering(mesh)
        if subdivisions:
            clustering.subdivide(subdivisions)
        clustering.cluster(num_vertices)
        remeshed = clustering.create_mesh()
    if remeshed.n_points != num_vertices:
        raise ValueError(f"ACVD produced {remeshed.n_points} vertices instead of {num_vertices}; the mesh may be "
                         f"too small or have disconnected pieces ({mesh.n_points} input vertices)")
    out_faces = np.asarray(remeshed.faces).reshape(-1, 4)[:, 1:].astype(np.int64)
    return np.asarray(remeshed.points, dtype=np.float32), out_faces


def symmetry_description(kind: str, axis=None, order: int | None = None, flip_axis=None) -> dict:
    """Validated symmetry record: none, discrete (order k about axis), continuous (about axis), each optionally
    with `flip_axis` (a 180-degree symmetry about an axis perpendicular to `axis`: a box, a closed cylinder),
    or spherical (every rotation: a ball)."""
    if kind not in SYMMETRY_TYPES:
        raise ValueError(f"symmetry must be one of {SYMMETRY_TYPES}, got {kind!r}")
    if kind in ("none", "spherical"):
        if flip_axis is not None:
            raise ValueError(f"a flip axis needs a discrete or continuous symmetry, not {kind!r}")
        return {"kind": kind}
    if axis is None:
        raise ValueError(f"{kind} symmetry needs an axis")
    axis = _unit_axis(axis, "symmetry axis")
    record = {"kind": kind, "axis": axis.tolist()}
    if kind == "discrete":
        if order is None or order < 2:
            raise ValueError("discrete symmetry needs an order >= 2")
        record["order"] = int(order)
    if flip_axis is not None:
        flip = _unit_axis(flip_axis, "flip axis")
        if abs(float(flip @ axis)) > 1e-6:
            raise ValueError(f"the flip axis must be perpendicular to the symmetry axis; got {flip.tolist()} and "
                             f"{axis.tolist()}")
        record["flip_axis"] = flip.tolist()
    return record


def _unit_axis(axis, what: str) -> np.ndarray:
    axis = np.asarray(axis, dtype=np.float64)
    if axis.shape != (3,) or not np.all(np.isfinite(axis)) or np.linalg.norm(axis) < 1e-9:
        raise ValueError(f"{what} must be a non-zero 3-vector, got {axis.tolist()}")
    return axis / np.linalg.norm(axis)


def save_template(path: str | Path, template: ObjectTemplate, source: str = "", scale: float = 1.0) -> Path:
    """Write `template` as an npz (no pickled objects; layout in the module docstring); returns the path.

    `source` (the mesh it was made from) and `scale` (the factor that took that mesh to metres) are
    provenance only; `load_template` does not need them.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, vertices=template.vertices, faces=template.faces, id=np.str_(template.name),
             symmetry=np.str_(json.dumps(template.symmetry)), source=np.str_(source), scale=np.float64(scale))
    return path


def load_template(path: str | Path) -> ObjectTemplate:
    """Read a template npz written by `save_template` (no pickle); ValueError when a key is missing."""
    with np.load(path, allow_pickle=False) as data:
        missing = {"vertices", "faces", "id", "symmetry"} - set(data.files)
        if missing:
            raise ValueError(f"{path}: not an object template, missing {sorted(missing)}")
        return ObjectTemplate(str(data["id"]), data["vertices"], data["faces"], json.loads(str(data["symmetry"])))
