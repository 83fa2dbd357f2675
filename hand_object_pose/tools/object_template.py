"""Make a DMA object template: resample a CAD mesh to exactly 1000 vertices and store it with its symmetry.

    python -m hand_object_pose.tools.object_template MESH OUT.npz --id 006_mustard_bottle \
        [--scale 0.001] [--vertices 1000] [--symmetry none|discrete|continuous --axis 0 0 1 --order 2]

Dense Mutual Attention represents each object by a 1000-vertex mesh obtained with ACVD clustering
(paper section 3.2); `pyacvd` implements that. The input mesh (Wavefront .obj read here; .ply / .stl /
.vtk through pyvista, which pyacvd depends on) is scaled to metres, uniformly subdivided so that it has
many more vertices than requested, clustered into N Voronoi regions of equal area, and re-meshed with
one vertex per region.

The npz (no pickled objects) holds: `vertices` (N, 3) float32 metres in the mesh's own frame,
`faces` (F, 3) int64, `id`, `symmetry` (JSON text: {"kind": "none" | "discrete" | "continuous",
"axis": [x, y, z] unit vector in the object frame, "order": k for discrete} -- the keyword arguments of
`evaluation.objects.symmetry_rotations` and the spelling of the inference object catalogue), `source`, `scale`.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

from hand_object_pose.models.dma.assets import ObjectTemplate

SYMMETRY_TYPES = ("none", "discrete", "continuous")


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


def symmetry_description(kind: str, axis=None, order: int | None = None) -> dict:
    """Validated symmetry record: none, discrete (order k about axis) or continuous (about axis)."""
    if kind not in SYMMETRY_TYPES:
        raise ValueError(f"symmetry must be one of {SYMMETRY_TYPES}, got {kind!r}")
    if kind == "none":
        return {"kind": "none"}
    if axis is None:
        raise ValueError(f"{kind} symmetry needs an axis")
    axis = np.asarray(axis, dtype=np.float64)
    if axis.shape != (3,) or np.linalg.norm(axis) < 1e-9:
        raise ValueError(f"symmetry axis must be a non-zero 3-vector, got {axis.tolist()}")
    record = {"kind": kind, "axis": (axis / np.linalg.norm(axis)).tolist()}
    if kind == "discrete":
        if order is None or order < 2:
            raise ValueError("discrete symmetry needs an order >= 2")
        record["order"] = int(order)
    return record


def save_template(path: str | Path, template: ObjectTemplate, source: str = "", scale: float = 1.0) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, vertices=template.vertices, faces=template.faces, id=np.str_(template.name),
             symmetry=np.str_(json.dumps(template.symmetry)), source=np.str_(source), scale=np.float64(scale))
    return path


def load_template(path: str | Path) -> ObjectTemplate:
    """Read a template npz written by this tool (no pickle)."""
    with np.load(path, allow_pickle=False) as data:
        missing = {"vertices", "faces", "id", "symmetry"} - set(data.files)
        if missing:
            raise ValueError(f"{path}: not an object template, missing {sorted(missing)}")
        return ObjectTemplate(str(data["id"]), data["vertices"], data["faces"], json.loads(str(data["symmetry"])))


def make_template(mesh_path: str | Path, object_id: str, scale: float = 1.0, num_vertices: int = 1000,
                  symmetry: dict | None = None) -> ObjectTemplate:
    vertices, faces = read_mesh(mesh_path)
    resampled, new_faces = resample_mesh(vertices * scale, faces, num_vertices)
    return ObjectTemplate(object_id, resampled, new_faces, symmetry or {"kind": "none"})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hand_object_pose.tools.object_template",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("mesh", help="input mesh (.obj, or .ply/.stl/.vtk via pyvista)")
    parser.add_argument("out", help="output .npz")
    parser.add_argument("--id", required=True, help="object id in the catalogue, e.g. 006_mustard_bottle")
    parser.add_argument("--scale", type=float, default=1.0, help="factor to metres (0.001 for a mesh in mm)")
    parser.add_argument("--vertices", type=int, default=1000, help="vertex count (DMA: 1000)")
    parser.add_argument("--symmetry", choices=SYMMETRY_TYPES, default="none")
    parser.add_argument("--axis", type=float, nargs=3, default=None, help="symmetry axis in the object frame")
    parser.add_argument("--order", type=int, default=None, help="order of a discrete symmetry")
    args = parser.parse_args(argv)
    try:
        symmetry = symmetry_description(args.symmetry, args.axis, args.order)
        template = make_template(args.mesh, args.id, args.scale, args.vertices, symmetry)
    except (OSError, ValueError) as exc:
        print(f"object_template: {exc}", file=sys.stderr)
        return 2
    save_template(args.out, template, source=str(args.mesh), scale=args.scale)
    extent = template.vertices.max(0) - template.vertices.min(0)
    print(f"{args.out}: {len(template.vertices)} vertices, {len(template.faces)} faces, "
          f"extent {np.round(extent, 4).tolist()} m, symmetry {symmetry}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
