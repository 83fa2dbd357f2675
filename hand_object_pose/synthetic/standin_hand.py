"""Generator of the licence-free stand-in hand: NOT MANO, but MANO's arrays, shapes and conventions.

The stand-in lets tests, the demo and the synthetic data run without the licensed MANO files. It is
built procedurally from tubes: a palm tube from a 16-vertex open wrist loop up to the knuckles, four
finger tubes joined to the palm's top ring (with a small web quad between neighbours), and a thumb tube
joined to a hole on the palm's radial-palmar side. The vertex budget is chosen so that the mesh has
exactly MANO's 778 vertices and (as a genus-0 surface with one 16-edge hole) 1538 faces.

Model frame (right hand; the left hand is its mirror x -> -x): metres, wrist-loop centre at the origin,
fingers along +y, palm facing +z (dorsal side -z), thumb on the +x side. Joints are MANO's 16 in MANO
order (wrist, index1-3, middle1-3, pinky1-3, ring1-3, thumb1-3); fingertips are vertices 744 (thumb),
320 (index), 443 (middle), 554 (ring), 671 (pinky), as in smplx's MANO tip ids. Finger flexion
(curling towards the palm) is a positive rotation about each finger's ``flexion_axes`` entry.

Regenerate the committed files (bit-identical):
    python -m hand_object_pose.synthetic.standin_hand models/standin_hand
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

import numpy as np

from hand_object_pose.geometry.hand_model_files import (
    NUM_FACES, NUM_JOINTS, NUM_VERTICES, save_hand_model, standin_hand_dirs, standin_hand_path, validate_hand_model,
)

TIP_VERTEX_IDS = {"thumb": 744, "index": 320, "middle": 443, "ring": 554, "pinky": 671}
MANO_PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)

FINGER_RING = 8      # vertices per finger cross-section
THUMB_RING = 10      # vertices per thumb cross-section (= the palm hole loop)
WRIST_RING = 16      # the open wrist loop, as in MANO
PALM_RING = 4 * FINGER_RING  # the palm's top ring is made of the four finger base rings
FINGER_RINGS = 10    # rings above the base ring, per finger and thumb (4 + 3 + 3, see _ring_stations)
NUM_SHAPES = 10


@dataclass(frozen=True)
class Digit:
    """One finger or the thumb in the rest pose. Lengths in metres, angles in radians."""
    name: str
    joints: tuple[int, int, int]      # MANO joint ids, base -> distal
    base: tuple[float, float, float]  # position of the base joint (MCP; CMC for the thumb)
    lengths: tuple[float, float, float]  # base->middle joint, middle->distal joint, distal joint->tip
    radius_base: float
    radius_tip: float


# Index, middle, ring, pinky from the thumb side (+x) to the little-finger side (-x).
FINGERS = (
    Digit("index", (1, 2, 3), (0.0315, 0.082, 0.0), (0.034, 0.021, 0.019), 0.0092, 0.0074),
    Digit("middle", (4, 5, 6), (0.0105, 0.086, 0.0), (0.038, 0.024, 0.020), 0.0095, 0.0076),
    Digit("ring", (10, 11, 12), (-0.0095, 0.081, 0.0), (0.035, 0.023, 0.020), 0.0090, 0.0072),
    Digit("pinky", (7, 8, 9), (-0.0280, 0.072, 0.0), (0.027, 0.018, 0.017), 0.0080, 0.0064),
)
# Spread of each finger's rest direction from +y towards +x (index leans to the thumb).
FINGER_SPREAD = {"index": np.radians(7.0), "middle": np.radians(1.0), "ring": np.radians(-6.0),
                 "pinky": np.radians(-13.0)}
THUMB = Digit("thumb", (13, 14, 15), (0.0, 0.0, 0.0), (0.036, 0.029, 0.025), 0.0125, 0.0080)
# Opposed thumb: leaves the palm up and out to the +x side and tilts towards the palm side (+z).
THUMB_DIRECTION = np.array([np.sin(np.radians(42.0)) * np.cos(np.radians(32.0)),
                            np.cos(np.radians(42.0)) * np.cos(np.radians(32.0)),
                            np.sin(np.radians(32.0))])
THUMB_PAD_TOWARDS = np.array([-0.55, 0.0, 1.0])  # the thumb pad faces the palm side and the fingers

WRIST_HALF_WIDTH, WRIST_HALF_THICKNESS = 0.028, 0.018
PALM_BULGE = 0.40          # extra palm thickness at mid height, relative
THUMB_HOLE_ROWS = (2, 5)   # palm rows bounding the thumb hole (inclusive)
THUMB_HOLE_COLUMN = 30     # centre column of the thumb hole in the 32-vertex palm rings


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    """0 for x <= -1, 1 for x >= 1, C1-smooth in between."""
    t = np.clip((np.asarray(x, dtype=np.float64) + 1.0) / 2.0, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def finger_frame(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(direction, lateral, palmar normal) of a digit in the rest pose; lateral x direction = normal.

    A positive rotation about ``lateral`` curls the digit towards its palmar side.
    """
    if name == "thumb":
        d = _normalize(THUMB_DIRECTION)
        n = _normalize(THUMB_PAD_TOWARDS - THUMB_PAD_TOWARDS @ d * d)
    else:
        psi = FINGER_SPREAD[name]
        d = np.array([np.sin(psi), np.cos(psi), 0.0])
        n = np.array([0.0, 0.0, 1.0])
    return d, np.cross(d, n), n


def flexion_axes() -> dict[str, np.ndarray]:
    """Per digit name, the rest-frame axis about which a positive rotation curls it (right hand)."""
    return {name: finger_frame(name)[1] for name in ("thumb", "index", "middle", "ring", "pinky")}


def _ring_angles(count: int) -> np.ndarray:
    """Cross-section angles: radial-dorsal corner, across the dorsal side, back across the palmar side.

    Angle 0 points along the digit's lateral axis, -pi/2 to its dorsal side.
    """
    delta = np.radians(20.0)
    half = count // 2
    dorsal = np.linspace(-delta, -(np.pi - delta), half)
    palmar = np.linspace(np.pi - delta, delta, count - half)
    return np.concatenate([dorsal, palmar])


def _ring_stations(digit: Digit) -> tuple[np.ndarray, np.ndarray]:
    """Axial positions s (m from the base joint) and radii of the 10 rings above the base ring.

    Rings 4 and 7 sit exactly on the middle and distal joints (their averages are those joints); the
    last two round off the tip, whose apex vertex lies at s = total length.
    """
    l1, l2, l3 = digit.lengths
    total = l1 + l2 + l3
    cap_start = total - digit.radius_tip
    s = list(np.linspace(0.0, l1, 5)[1:]) + list(np.linspace(l1, l1 + l2, 4)[1:])
    s.append(0.5 * (l1 + l2 + cap_start))
    cap = np.radians([35.0, 68.0])
    s += list(cap_start + digit.radius_tip * np.sin(cap))
    s = np.array(s)
    taper = np.interp(s, [0.0, cap_start], [digit.radius_base, digit.radius_tip])
    radii = np.where(s > cap_start, digit.radius_tip * np.cos(np.arcsin(np.clip(
        (s - cap_start) / digit.radius_tip, 0.0, 1.0))), taper)
    return s, radii


def _digit_ring(center, frame, radius, s, count) -> np.ndarray:
    d, lateral, normal = frame
    phi = _ring_angles(count)
    # Flatter than round, and thicker (palm-to-back) near the knuckle.
    rz = radius * (0.82 + 0.32 * np.exp(-s / 0.010))
    return center + radius * np.cos(phi)[:, None] * lateral + rz * np.sin(phi)[:, None] * normal


def _resample_closed(points: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Points at arc-length fractions u in [0, 1) along the closed polyline ``points``."""
    closed = np.vstack([points, points[:1]])
    seg = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)]) / seg.sum()
    return np.stack([np.interp(u, cum, closed[:, k]) for k in range(3)], axis=1)


def _arc_fractions(points: np.ndarray) -> np.ndarray:
    seg = np.linalg.norm(np.diff(np.vstack([points, points[:1]]), axis=0), axis=1)
    return np.concatenate([[0.0], np.cumsum(seg)[:-1]]) / seg.sum()


class _Mesh:
    """Vertices with per-vertex labels, and triangles (orientation fixed afterwards)."""

    def __init__(self):
        self.points: list[np.ndarray] = []
        self.part: list[int] = []    # -1 palm, else MANO id of the digit's base joint
        self.axial: list[float] = []  # s along the digit axis (0 for palm vertices)
        self.faces: list[tuple[int, int, int]] = []

    def add(self, points: np.ndarray, part: int, axial) -> np.ndarray:
        start = len(self.points)
        points = np.atleast_2d(points)
        self.points.extend(points)
        self.part.extend([part] * len(points))
        self.axial.extend(np.broadcast_to(np.asarray(axial, dtype=np.float64), (len(points),)).tolist())
        return np.arange(start, start + len(points))

    def strip(self, lower: np.ndarray, upper: np.ndarray) -> None:
        """Triangulate between two aligned loops of any sizes (merge by arc-length fraction)."""
        pts = np.asarray(self.points)
        ua, ub = _arc_fractions(pts[lower]), _arc_fractions(pts[upper])
        na, nb = len(lower), len(upper)
        i = j = 0
        while i < na or j < nb:
            next_a = ua[i + 1] if i + 1 < na else 1.0
            next_b = ub[j + 1] if j + 1 < nb else 1.0
            if j >= nb or (i < na and next_a <= next_b):
                self.faces.append((lower[i % na], lower[(i + 1) % na], upper[j % nb]))
                i += 1
            else:
                self.faces.append((lower[i % na], upper[(j + 1) % nb], upper[j % nb]))
                j += 1

    def fan(self, loop: np.ndarray, apex: int) -> None:
        for k in range(len(loop)):
            self.faces.append((loop[k], loop[(k + 1) % len(loop)], apex))


def _orient(faces: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Make all triangles consistently oriented, normals pointing outwards (positive volume)."""
    faces = faces.copy()
    edge_faces: dict[tuple[int, int], list[int]] = {}
    for fi, (a, b, c) in enumerate(faces):
        for e in ((a, b), (b, c), (c, a)):
            edge_faces.setdefault((min(e), max(e)), []).append(fi)
    done = np.zeros(len(faces), dtype=bool)
    done[0] = True
    stack = [0]
    while stack:
        fi = stack.pop()
        a, b, c = faces[fi]
        for u, v in ((a, b), (b, c), (c, a)):
            for fj in edge_faces[(min(u, v), max(u, v))]:
                if done[fj]:
                    continue
                x, y, z = faces[fj]
                # A consistent neighbour traverses the shared edge as v -> u.
                if (u, v) in ((x, y), (y, z), (z, x)):
                    faces[fj] = (x, z, y)
                done[fj] = True
                stack.append(fj)
    if not done.all():
        raise RuntimeError("stand-in hand mesh is not connected")
    v0, v1, v2 = (vertices[faces[:, k]] for k in range(3))
    if np.einsum("ij,ij->", v0, np.cross(v1, v2)) < 0:
        faces = faces[:, ::-1].copy()
    return faces


def _palm_ring_sizes(budget: int) -> list[int]:
    """Sizes of the palm rings above the wrist: one or two transition rings, then 32-rings."""
    for full in range(budget // PALM_RING, 0, -1):
        rest = budget - full * PALM_RING
        if rest == 0:
            return [PALM_RING] * full
        if WRIST_RING < rest < PALM_RING:
            return [rest] + [PALM_RING] * full
    raise ValueError(f"cannot split {budget} palm vertices into rings")


def _build_mesh():
    """Geometry and topology of the right stand-in hand, in construction order (tips not yet placed)."""
    mesh = _Mesh()
    frames = {d.name: finger_frame(d.name) for d in FINGERS}

    # Finger base rings = the palm's top ring: dorsal halves from index to pinky, then palmar halves back.
    base_rings = {d.name: _digit_ring(np.array(d.base), frames[d.name], d.radius_base, 0.0, FINGER_RING)
                  for d in FINGERS}
    half = FINGER_RING // 2
    top_points = np.vstack([base_rings[d.name][:half] for d in FINGERS]
                           + [base_rings[d.name][half:] for d in reversed(FINGERS)])
    top_column_digit = [d for d in FINGERS for _ in range(half)] + [d for d in reversed(FINGERS)
                                                                     for _ in range(half)]

    digit_vertices = FINGER_RING * FINGER_RINGS + 1
    thumb_vertices = THUMB_RING * FINGER_RINGS + 1
    hole_removed = THUMB_HOLE_ROWS[1] - THUMB_HOLE_ROWS[0] - 1
    palm_budget = (NUM_VERTICES - 4 * digit_vertices - thumb_vertices - WRIST_RING + hole_removed)
    sizes = _palm_ring_sizes(palm_budget)
    rows = len(sizes)  # rings above the wrist; the last one is the top ring

    # Wrist ellipse, starting on the thumb side and going over the back of the hand first.
    theta = np.linspace(0.0, 2.0 * np.pi, 720, endpoint=False)
    wrist_curve = np.stack([WRIST_HALF_WIDTH * np.cos(theta), np.zeros_like(theta),
                            -WRIST_HALF_THICKNESS * np.sin(theta)], axis=1)
    top_u = _arc_fractions(top_points)

    def palm_ring(t: float, count: int) -> np.ndarray:
        # Evenly spaced columns low in the palm, converging to the finger-base spacing at the top
        # (uneven spacing all the way down shows as creases under smooth shading).
        u = np.arange(count) / count
        if count == PALM_RING:
            u = (1.0 - t ** 2) * u + t ** 2 * top_u
        ring = (1.0 - t) * _resample_closed(wrist_curve, u) + t * _resample_closed(top_points, u)
        ring[:, 2] *= 1.0 + PALM_BULGE * np.sin(np.pi * t)
        return ring

    wrist = mesh.add(wrist_curve[:: 720 // WRIST_RING], -1, 0.0)
    palm_rows: list[np.ndarray] = [wrist]
    hole_cells = {(r, THUMB_HOLE_COLUMN) for r in range(THUMB_HOLE_ROWS[0] + 1, THUMB_HOLE_ROWS[1])}
    for r, count in enumerate(sizes[:-1], start=1):
        ring = palm_ring(r / rows, count)
        ids = np.full(count, -1)
        for c in range(count):
            if (r, c) not in hole_cells:
                ids[c] = mesh.add(ring[c], -1, 0.0)[0]
        palm_rows.append(ids)
    # Top ring vertices belong to the fingers (s = 0 on their base ring).
    top_ids = np.array([mesh.add(top_points[c], top_column_digit[c].joints[0], 0.0)[0]
                        for c in range(PALM_RING)])
    palm_rows.append(top_ids)

    # Palm strips; the 32-rings form a grid in which the thumb hole's quads are left out.
    for r in range(rows):
        lower, upper = palm_rows[r], palm_rows[r + 1]
        if len(lower) != len(upper):
            mesh.strip(lower, upper)
            continue
        n = len(lower)
        for c in range(n):
            quad = (lower[c], lower[(c + 1) % n], upper[(c + 1) % n], upper[c])
            in_hole = (THUMB_HOLE_ROWS[0] <= r < THUMB_HOLE_ROWS[1]
                       and THUMB_HOLE_COLUMN - 1 <= c <= THUMB_HOLE_COLUMN)
            if not in_hole:
                mesh.faces += [(quad[0], quad[1], quad[2]), (quad[0], quad[2], quad[3])]

    # Finger tubes from their base rings (slices of the top ring) to an apex tip vertex.
    tips: dict[str, int] = {}
    for f, digit in enumerate(FINGERS):
        dorsal = top_ids[f * half:(f + 1) * half]
        palmar = top_ids[PALM_RING - (f + 1) * half:PALM_RING - f * half]
        lower = np.concatenate([dorsal, palmar])
        stations, radii = _ring_stations(digit)
        d = frames[digit.name][0]
        for s, radius in zip(stations, radii):
            ring = _digit_ring(np.array(digit.base) + s * d, frames[digit.name], radius, s, FINGER_RING)
            upper = mesh.add(ring, digit.joints[0], s)
            mesh.strip(lower, upper)
            lower = upper
        tips[digit.name] = mesh.add(np.array(digit.base) + sum(digit.lengths) * d, digit.joints[0],
                                    sum(digit.lengths))[0]
        mesh.fan(lower, tips[digit.name])
        if f > 0:  # web quad between this finger's radial side and the previous finger's ulnar side
            prev_d, prev_p = top_ids[f * half - 1], top_ids[PALM_RING - f * half]
            this_d, this_p = dorsal[0], palmar[-1]
            mesh.faces += [(prev_d, this_d, this_p), (prev_d, this_p, prev_p)]

    # Thumb: the hole loop (10 palm vertices) is its base ring; rings blend from the palm outwards.
    r0, r1, c = THUMB_HOLE_ROWS[0], THUMB_HOLE_ROWS[1], THUMB_HOLE_COLUMN
    loop_cells = ([(r, c - 1) for r in range(r0, r1 + 1)] + [(r1, c)]
                  + [(r, c + 1) for r in range(r1, r0 - 1, -1)] + [(r0, c)])
    hole = np.array([palm_rows[r][col] for r, col in loop_cells])
    pts = np.asarray(mesh.points)
    cmc = pts[hole].mean(axis=0)
    frame = finger_frame("thumb")
    stations, radii = _ring_stations(THUMB)
    ideal_first = _digit_ring(cmc, frame, THUMB.radius_base, 0.0, THUMB_RING)
    # Align the hole loop with the ring's vertex order (best cyclic shift and direction).
    candidates = [np.roll(h, k) for h in (hole, hole[::-1]) for k in range(THUMB_RING)]
    hole = min(candidates, key=lambda h: np.sum((pts[h] - ideal_first) ** 2))
    lower = hole
    blend = {0: 0.45, 1: 0.8}
    for k, (s, radius) in enumerate(zip(stations, radii)):
        ideal = _digit_ring(cmc + s * frame[0], frame, radius, s, THUMB_RING)
        beta = blend.get(k, 1.0)
        ring = beta * ideal + (1.0 - beta) * (pts[hole] + s * frame[0])
        upper = mesh.add(ring, THUMB.joints[0], s)
        mesh.strip(lower, upper)
        lower = upper
    tips["thumb"] = mesh.add(cmc + sum(THUMB.lengths) * frame[0], THUMB.joints[0], sum(THUMB.lengths))[0]
    mesh.fan(lower, tips["thumb"])

    points = np.asarray(mesh.points)
    if len(points) != NUM_VERTICES or len(mesh.faces) != NUM_FACES:
        raise RuntimeError(f"stand-in hand has {len(points)} vertices / {len(mesh.faces)} faces, "
                           f"expected {NUM_VERTICES} / {NUM_FACES}")
    faces = _orient(np.asarray(mesh.faces, dtype=np.int64), points)
    labels = dict(part=np.asarray(mesh.part), axial=np.asarray(mesh.axial), wrist=wrist, hole=hole,
                  cmc=cmc, top_ids=top_ids, top_column_digit=top_column_digit, tips=tips)
    return points, faces, labels


def _digit_by_joint() -> dict[int, Digit]:
    return {d.joints[0]: d for d in FINGERS + (THUMB,)}


def _joint_rings(labels) -> dict[int, np.ndarray]:
    """Vertex ids whose average is each MANO joint."""
    rings = {0: labels["wrist"], THUMB.joints[0]: labels["hole"]}
    part, axial = labels["part"], labels["axial"]
    for base, digit in _digit_by_joint().items():
        l1, l2, _ = digit.lengths
        on_digit = part == base
        if digit is not THUMB:
            rings[base] = np.flatnonzero(on_digit & (axial == 0.0))
        rings[digit.joints[1]] = np.flatnonzero(on_digit & np.isclose(axial, l1))
        rings[digit.joints[2]] = np.flatnonzero(on_digit & np.isclose(axial, l1 + l2))
    return rings


def _skinning_weights(points, labels) -> np.ndarray:
    """(V, 16) weights: rigid per segment, blended over a few mm around each joint."""
    part, axial = labels["part"], labels["axial"]
    weights = np.zeros((len(points), NUM_JOINTS))
    digits = _digit_by_joint()
    for base, digit in digits.items():
        on = part == base
        s = axial[on]
        l1, l2, _ = digit.lengths
        base_width = 0.010 if digit is THUMB else 0.012
        a1 = _smoothstep(s / base_width)
        a2 = _smoothstep((s - l1) / 0.005)
        a3 = _smoothstep((s - l1 - l2) / 0.005)
        j1, j2, j3 = digit.joints
        weights[np.ix_(on, [0, j1, j2, j3])] = np.stack([1 - a1, a1 - a2, a2 - a3, a3], axis=1)
    # Palm vertices below the knuckles follow the finger of the nearest top-ring column a little
    # (s < 0 there) ...
    palm = np.flatnonzero(part == -1)
    top = points[labels["top_ids"]]
    column = np.argmin(np.linalg.norm(points[palm][:, None, [0, 2]] - top[None, :, [0, 2]], axis=2), axis=1)
    digits = [labels["top_column_digit"][c] for c in column]
    directions = np.array([finger_frame(d.name)[0] for d in digits])
    a1 = _smoothstep(np.einsum("ij,ij->i", points[palm] - top[column], directions) / 0.012)
    weights[palm, 0] = 1.0 - a1
    weights[palm, [d.joints[0] for d in digits]] = a1
    # ... and those around the thumb hole follow the thumb's base joint.
    hole_points = points[labels["hole"]]
    hole_radius = np.linalg.norm(hole_points - labels["cmc"], axis=1).mean()
    dist = np.linalg.norm(points[palm] - labels["cmc"], axis=1) - hole_radius
    w13 = 0.5 * (1.0 - _smoothstep(2.0 * np.clip(dist, 0.0, None) / 0.012 - 1.0))
    weights[palm, THUMB.joints[0]] += w13
    weights[palm, 0] -= w13
    weights = np.clip(weights, 0.0, None)
    return weights / weights.sum(axis=1, keepdims=True)


def _vertex_normals(points, faces) -> np.ndarray:
    n = np.cross(points[faces[:, 1]] - points[faces[:, 0]], points[faces[:, 2]] - points[faces[:, 0]])
    normals = np.zeros_like(points)
    for k in range(3):
        np.add.at(normals, faces[:, k], n)
    return _normalize(normals)


def _pose_correctives(points, faces, weights) -> np.ndarray:
    """(V, 3, 135): knuckle bulge along the normal, c * (1 - cos(angle)) near each bending joint.

    Uses only the diagonal of (R - I), whose sum is 2 (cos(angle) - 1) whatever the axis, so the
    correctives mirror cleanly to the left hand.
    """
    normals = _vertex_normals(points, faces)
    posedirs = np.zeros((len(points), 3, 9 * (NUM_JOINTS - 1)))
    bulge = 0.003  # metres at 90 degrees
    for j in range(1, NUM_JOINTS):
        bump = 4.0 * weights[:, j] * weights[:, MANO_PARENTS[j]]
        for k in (0, 4, 8):
            posedirs[:, :, 9 * (j - 1) + k] = -0.5 * bulge * bump[:, None] * normals
    return posedirs


def _shape_blendshapes(points, labels) -> np.ndarray:
    """(V, 3, 10): smooth, roughly one-standard-deviation variations of hand size and proportions."""
    part, axial = labels["part"], labels["axial"]
    digits = _digit_by_joint()
    along = np.zeros_like(points)   # s * direction for digit vertices
    radial = np.zeros_like(points)  # offset from the digit axis
    rel_len = np.zeros(len(points))  # s / total length
    base_y = points[:, 1].copy()     # y of the digit's base (palm vertices: their own y)
    for base, digit in digits.items():
        on = part == base
        d = finger_frame(digit.name)[0]
        origin = labels["cmc"] if digit is THUMB else np.array(digit.base)
        s = axial[on]
        along[on] = s[:, None] * d
        radial[on] = points[on] - origin - s[:, None] * d
        rel_len[on] = s / sum(digit.lengths)
        base_y[on] = origin[1]
    is_thumb = part == THUMB.joints[0]
    is_finger = (part >= 0) & ~is_thumb
    dirs = np.zeros((len(points), 3, NUM_SHAPES))
    dirs[:, :, 0] = 0.04 * points                                    # overall size
    dirs[:, 0, 1] = 0.05 * points[:, 0]                              # hand width
    dirs[:, 1, 2] = 0.05 * points[:, 1]                              # hand length
    dirs[:, 2, 3] = 0.08 * points[:, 2]                              # thickness
    dirs[:, :, 4] = 0.06 * along * is_finger[:, None]                # finger length
    dirs[:, :, 5] = 0.07 * along * is_thumb[:, None]                 # thumb length
    dirs[:, :, 6] = 0.08 * radial                                    # digit girth
    ratio = np.where(part == 1, 1.0, np.where(part == 7, -1.0, 0.0))  # index longer, pinky shorter
    dirs[:, :, 7] = 0.05 * along * ratio[:, None]
    dirs[:, 1, 8] = 0.06 * base_y                                    # palm length (digits ride along)
    dirs[:, :, 9] = -0.15 * rel_len[:, None] ** 2 * radial           # tip taper
    return dirs


def _pose_samples(rng: np.random.Generator, count: int) -> np.ndarray:
    """(count, 45) plausible finger poses (axis-angle per joint, MANO order 1..15) for the pose PCA."""
    axes = flexion_axes()
    palm_normal = np.array([0.0, 0.0, 1.0])
    grasp = rng.uniform(-0.1, 1.0, size=count)
    poses = np.zeros((count, NUM_JOINTS - 1, 3))
    for digit in FINGERS + (THUMB,):
        direction, lateral, _ = finger_frame(digit.name)
        curl = np.clip(grasp + rng.normal(0.0, 0.25, count), -0.15, 1.2)
        spread = rng.normal(0.0, 0.12, count)
        gains = (0.9, 1.2, 0.8) if digit is THUMB else (1.3, 1.6, 1.0)
        spread_axis = direction if digit is THUMB else palm_normal
        for k, joint in enumerate(digit.joints):
            angle = gains[k] * curl + rng.normal(0.0, 0.05 + 0.01 * k, count)
            rot = angle[:, None] * axes[digit.name]
            if k == 0:
                rot = rot + spread[:, None] * spread_axis
            # Small independent noise on every axis keeps the PCA spectrum free of ties.
            rot = rot + rng.normal(0.0, 0.02 + 0.002 * joint, (count, 3))
            poses[:, joint - 1] = rot
    return poses.reshape(count, -1)


def _pose_pca(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    samples = _pose_samples(np.random.default_rng(seed), 20000)
    mean = samples.mean(axis=0)
    cov = np.cov(samples - mean, rowvar=False)
    eigval, eigvec = np.linalg.eigh(cov)
    order = np.argsort(eigval)[::-1]
    components = eigvec[:, order].T
    # Fix each component's sign (largest-magnitude entry positive) for reproducibility.
    signs = np.sign(components[np.arange(45), np.argmax(np.abs(components), axis=1)])
    return components * signs[:, None], mean


def _place_tips(points, labels):
    """Permute vertices so that the fingertip apexes sit at MANO's tip vertex ids."""
    order = np.arange(len(points))
    for name, target in TIP_VERTEX_IDS.items():
        here = int(np.flatnonzero(order == labels["tips"][name])[0])
        order[[here, target]] = order[[target, here]]
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return order, inverse


def build_right_hand() -> dict[str, np.ndarray]:
    """The right stand-in hand as MANO-layout arrays (see ``geometry.hand_model_files``)."""
    points, faces, labels = _build_mesh()
    weights = _skinning_weights(points, labels)
    regressor = np.zeros((NUM_JOINTS, len(points)))
    for joint, ring in _joint_rings(labels).items():
        regressor[joint, ring] = 1.0 / len(ring)
    posedirs = _pose_correctives(points, faces, weights)
    shapedirs = _shape_blendshapes(points, labels)
    components, mean = _pose_pca()
    order, inverse = _place_tips(points, labels)
    return validate_hand_model({
        "v_template": points[order],
        "shapedirs": shapedirs[order],
        "posedirs": posedirs[order],
        "J_regressor": regressor[:, order],
        "weights": weights[order],
        "kintree_table": np.array([MANO_PARENTS, range(NUM_JOINTS)]),
        "f": inverse[faces],
        "hands_components": components,
        "hands_mean": mean,
        "side": np.array("right"),
    }, source="stand-in right hand")


def mirror_to_left(right: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Mirror a right-hand model (x -> -x) into its left hand, all arrays consistently.

    Rotations mirror as R -> M R M with M = diag(-1, 1, 1), i.e. axis-angle (x, y, z) -> (x, -y, -z),
    and entry (a, b) of (R - I) picks up the sign m_a * m_b; offsets mirror their x component.
    """
    m = np.array([-1.0, 1.0, 1.0])
    feature_sign = np.tile(np.outer(m, m).ravel(), NUM_JOINTS - 1)
    aa_sign = np.tile(np.array([1.0, -1.0, -1.0]), NUM_JOINTS - 1)
    left = dict(right)
    left["v_template"] = right["v_template"] * m
    left["shapedirs"] = right["shapedirs"] * m[None, :, None]
    left["posedirs"] = right["posedirs"] * m[None, :, None] * feature_sign[None, None, :]
    left["f"] = right["f"][:, ::-1].copy()
    left["hands_components"] = right["hands_components"] * aa_sign[None, :]
    left["hands_mean"] = right["hands_mean"] * aa_sign
    left["side"] = np.array("left")
    left["left_shapedirs_fixed"] = np.array(True)
    return validate_hand_model(left, source="stand-in left hand")


def build_standin_hands() -> dict[str, dict[str, np.ndarray]]:
    right = build_right_hand()
    return {"right": right, "left": mirror_to_left(right)}


def write_standin_hands(directory: str | os.PathLike) -> list[str]:
    os.makedirs(directory, exist_ok=True)
    paths = []
    for side, arrays in build_standin_hands().items():
        path = standin_hand_path(side, directory)
        save_hand_model(path, arrays)
        paths.append(path)
    return paths


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Regenerate the licence-free stand-in hand npz files "
                                                 "(NOT MANO; MANO's array layout).")
    parser.add_argument("directory", nargs="?", default=standin_hand_dirs()[0])
    args = parser.parse_args(argv)
    for path in write_standin_hands(args.directory):
        print(path)


if __name__ == "__main__":
    main()
