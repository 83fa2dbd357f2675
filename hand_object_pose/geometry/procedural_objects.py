"""Procedural object meshes: box, cylinder, sphere, mug- and bottle-like shapes, and the five objects the
synthetic generator draws (and the default network knows) with their symmetries.

Object frame: metres, origin at the bounding-box centre, z = the height / symmetry axis. Symmetries in the object
catalogue's spelling (`inference/catalogue.py`: none | {kind: discrete|continuous, axis, order, flip_axis} |
{kind: spherical}). The generator's objects (`synthetic.objects.default_objects`) add grasp sizes and solids.
"""
from __future__ import annotations

import numpy as np


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


def make_mug(radius=0.04, height=0.095, handle_radius=0.028, handle_thickness=0.007, wall=0.005, floor=0.008,
             segments=32):
    """An open cup (a wall `wall` thick, an inner floor `floor` above its foot) plus a handle (a half torus on the
    +x side, capped, its ends sunk into the wall).

    Why open: a closed cup with a centred handle looks the same upside down about the handle's axis (its vertices
    within 6 mm of its own, its taper), so pose labels that say "no symmetry" asked the networks for a flip they could
    not see. The opening, like a real mug's, tells which end is up whenever the camera sees into it or onto its foot."""
    h = height / 2.0
    rim, foot = radius * 1.03, radius * 0.95
    body_v, body_f = lathe([(0, -h), (foot, -h), (radius, -h + 0.006), (rim, h), (rim, h), (rim - wall, h),
                            (rim - wall, h), (radius - wall, -h + floor), (radius - wall, -h + floor),
                            (0, -h + floor)], segments)
    # Handle: circle (radius handle_thickness) swept along an arc in the xz plane, ends inside the body.
    # The ends stop inside the wall (x about 37.4 mm, the wall 35.5-40.5 mm there), not in the opening.
    sweep = np.linspace(-np.pi / 2 + 0.05, np.pi / 2 - 0.05, 14)
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


_Z, _X = [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]

# Each symmetry is the shape's whole rotation group (a box or a closed cylinder also looks the same upside down, a
# ball under every rotation): a scene's printed band or stripes are random, so they do not tell which end is up,
# and pose labels that told it would be ambiguous.
PROCEDURAL_OBJECTS = {
    "synthetic_box": (make_box, {"kind": "discrete", "axis": _Z, "order": 2, "flip_axis": _X}),
    "synthetic_cylinder": (make_cylinder, {"kind": "continuous", "axis": _Z, "flip_axis": _X}),
    "synthetic_sphere": (make_sphere, {"kind": "spherical"}),
    "synthetic_mug": (make_mug, {"kind": "none"}),
    "synthetic_bottle": (make_bottle, {"kind": "continuous", "axis": _Z}),
}
"""id -> (mesh builder, symmetry) of the generator's objects, in the generator's order."""


def mesh_centre(vertices: np.ndarray) -> np.ndarray:
    """(3,) the centre of a mesh's axis-aligned bounding box: the object frame's origin."""
    return (vertices.min(axis=0) + vertices.max(axis=0)) / 2.0


def procedural_object(object_id: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """(vertices (V, 3) metres, centred on their bounding box; faces (F, 3) int64, counter-clockwise seen from
    outside; symmetry) of one of PROCEDURAL_OBJECTS; KeyError naming the known ids for any other id."""
    if object_id not in PROCEDURAL_OBJECTS:
        raise KeyError(f"no procedural object {object_id!r}; known: {list(PROCEDURAL_OBJECTS)}")
    build, symmetry = PROCEDURAL_OBJECTS[object_id]
    vertices, faces = build()
    return vertices - mesh_centre(vertices), faces, dict(symmetry)
