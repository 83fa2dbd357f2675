"""Procedural object meshes for synthetic data: box, cylinder, sphere, mug- and bottle-like shapes.

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


def lathe(profile: np.ndarray, segments: int) -> tuple[np.ndarray, np.ndarray]:
    """Surface of revolution about z of a profile (r, z) from the bottom pole to the top pole.

    The first and last profile points must have r = 0 (poles become single vertices). Repeat a profile
    point to get a sharp rim (its zero-area strip keeps the mesh closed).
    """
    profile = np.asarray(profile, dtype=np.float64)
    if profile[0, 0] != 0 or profile[-1, 0] != 0 or len(profile) < 3:
        raise ValueError("a lathe profile starts and ends on the axis (r = 0) and has >= 3 points")
    angles = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    rings = [np.stack([r * np.cos(angles), r * np.sin(angles), np.full(segments, z)], axis=1)
             for r, z in profile[1:-1]]
    vertices = np.vstack([[[0.0, 0.0, profile[0, 1]]], *rings, [[0.0, 0.0, profile[-1, 1]]]])
    top = len(vertices) - 1
    faces = []
    s = np.arange(segments)
    nxt = (s + 1) % segments
    faces += [(0, 1 + b, 1 + a) for a, b in zip(s, nxt)]             # bottom fan, normals -z
    for ring in range(len(rings) - 1):
        lo, hi = 1 + ring * segments, 1 + (ring + 1) * segments
        for a, b in zip(s, nxt):
            faces += [(lo + a, lo + b, hi + b), (lo + a, hi + b, hi + a)]
    last = 1 + (len(rings) - 1) * segments
    faces += [(last + a, last + b, top) for a, b in zip(s, nxt)]     # top fan, normals +z
    return vertices, np.asarray(faces, dtype=np.int64)


def make_box(size=(0.06, 0.09, 0.05)) -> tuple[np.ndarray, np.ndarray]:
    """Box with 4 vertices per side (sharp edges under smooth shading)."""
    half = np.asarray(size, dtype=np.float64) / 2.0
    vertices, faces = [], []
    for axis in range(3):
        u, v = [a for a in range(3) if a != axis]
        for sign in (-1.0, 1.0):
            quad = []
            for du, dv in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                p = np.zeros(3)
                p[axis], p[u], p[v] = sign * half[axis], du * half[u], dv * half[v]
                quad.append(p)
            base = len(vertices)
            vertices += quad
            # Counter-clockwise seen from outside: (u, v, axis) right-handed for sign +1.
            flip = (sign > 0) == (np.cross(np.eye(3)[u], np.eye(3)[v]) @ np.eye(3)[axis] > 0)
            tri = [(0, 1, 2), (0, 2, 3)] if flip else [(0, 2, 1), (0, 3, 2)]
            faces += [(base + a, base + b, base + c) for a, b, c in tri]
    return np.asarray(vertices), np.asarray(faces, dtype=np.int64)


def make_cylinder(radius=0.035, height=0.12, segments=32):
    h = height / 2.0
    return lathe([(0, -h), (radius, -h), (radius, -h), (radius, h), (radius, h), (0, h)], segments)


def make_sphere(radius=0.04, segments=32, stacks=16):
    theta = np.linspace(-np.pi / 2, np.pi / 2, stacks + 1)
    profile = np.stack([radius * np.cos(theta), radius * np.sin(theta)], axis=1)
    profile[[0, -1], 0] = 0.0  # exact poles
    return lathe(profile, segments)


def make_bottle(radius=0.033, height=0.2, neck_radius=0.012, segments=32):
    h = height / 2.0
    shoulder, neck = 0.25 * height, 0.38 * height
    profile = [(0, -h), (radius * 0.92, -h), (radius, -h + 0.01), (radius, h - neck - shoulder * 0.2)]
    for t in np.linspace(0.2, 1.0, 5):  # rounded shoulder
        profile.append((neck_radius + (radius - neck_radius) * np.cos(t * np.pi / 2) ** 2,
                        h - neck - shoulder * 0.2 + shoulder * t))
    profile += [(neck_radius, h - 0.012), (neck_radius * 1.15, h - 0.01), (neck_radius * 1.15, h), (0, h)]
    return lathe(np.asarray(profile), segments)


def make_mug(radius=0.04, height=0.095, handle_radius=0.028, handle_thickness=0.007, segments=32):
    """A closed cup body plus a handle (a half torus on the +x side, capped)."""
    h = height / 2.0
    body_v, body_f = lathe([(0, -h), (radius * 0.95, -h), (radius, -h + 0.006), (radius * 1.03, h),
                            (radius * 1.03, h), (0, h)], segments)
    # Handle: circle (radius handle_thickness) swept along an arc in the xz plane, ends inside the body.
    sweep = np.linspace(-np.pi / 2 - 0.25, np.pi / 2 + 0.25, 14)
    ring = np.linspace(0.0, 2.0 * np.pi, 10, endpoint=False)
    centre = np.array([radius * 0.9, 0.0, 0.0])
    rings = []
    for a in sweep:
        c = centre + handle_radius * np.array([np.cos(a), 0.0, np.sin(a)])
        radial = np.array([np.cos(a), 0.0, np.sin(a)])
        rings.append(c + handle_thickness * (np.cos(ring)[:, None] * radial + np.sin(ring)[:, None] * [0, 1, 0]))
    handle_v = np.vstack([*rings, centre + handle_radius * np.array([[np.cos(sweep[0]), 0, np.sin(sweep[0])],
                                                                      [np.cos(sweep[-1]), 0, np.sin(sweep[-1])]])])
    n, m = len(ring), len(sweep)
    faces = []
    for i in range(m - 1):
        for a in range(n):
            b = (a + 1) % n
            faces += [(i * n + a, (i + 1) * n + a, (i + 1) * n + b), (i * n + a, (i + 1) * n + b, i * n + b)]
    start_cap, end_cap = m * n, m * n + 1
    faces += [(start_cap, (a + 1) % n, a) for a in range(n)]
    faces += [(end_cap, (m - 1) * n + a, (m - 1) * n + (a + 1) % n) for a in range(n)]
    vertices = np.vstack([body_v, handle_v])
    handle_f = np.asarray(faces, dtype=np.int64)[:, ::-1]  # the sweep above winds inwards: flip
    return vertices, np.vstack([body_f, handle_f + len(body_v)])


def default_objects() -> list[ObjectModel]:
    """The synthetic catalogue: ids, meshes, symmetries (catalogue spelling), grasp sizes, solids."""
    z, x = [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]
    box, cyl, sph = "box", "cylinder", "sphere"
    # Each symmetry is the shape's whole rotation group (a box or a closed cylinder also looks the same upside
    # down, a ball under every rotation): a scene's printed band or stripes are random, so they do not tell
    # which end is up, and pose labels that told it would be ambiguous.
    specs = [  # id, mesh, symmetry, grasp radius, solids (in the mesh's frame before centring)
        ("synthetic_box", make_box(), {"kind": "discrete", "axis": z, "order": 2, "flip_axis": x}, 0.03,
         [(box, (0, 0, 0), (0.03, 0.045, 0.025))]),
        ("synthetic_cylinder", make_cylinder(), {"kind": "continuous", "axis": z, "flip_axis": x}, 0.035,
         [(cyl, (0, 0, 0), (0.035, 0.06))]),
        ("synthetic_sphere", make_sphere(), {"kind": "spherical"}, 0.04, [(sph, (0, 0, 0), (0.04,))]),
        ("synthetic_mug", make_mug(), {"kind": "none"}, 0.04, [(cyl, (0, 0, 0), (0.04, 0.0475))]),
        ("synthetic_bottle", make_bottle(), {"kind": "continuous", "axis": z}, 0.033,
         [(cyl, (0, 0, -0.043), (0.033, 0.057)), (cyl, (0, 0, 0.077), (0.012, 0.023))]),  # body, neck
    ]
    objects = []
    for oid, (v, f), sym, r, solids in specs:
        lo, hi = v.min(axis=0), v.max(axis=0)
        shift = (lo + hi) / 2.0  # meshes are centred on their bounding box; solids move with them
        objects.append(ObjectModel(oid, v - shift, f, sym, r, tuple(
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
