"""Object-pose and hand-object metrics: MSSD (with symmetries), ADD-S, mean corner error, mean mesh
error, F-score, penetration depth and contact percentage.

Poses are (R (3, 3), t (3,)) mapping object-frame points to the camera frame, metres. Model points
are (V, 3) in the object frame. A symmetry set is (S, 3, 3) rotations of the object frame under which
the object looks the same (identity included; empty for a ball: `ANY_ROTATION`); `symmetry_rotations` builds
it from a catalogue entry.
"""
from __future__ import annotations

import numpy as np


def _axis_rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = np.asarray(axis, np.float64)
    axis = axis / np.linalg.norm(axis)
    x, y, z = axis
    skew = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) + np.sin(angle) * skew + (1 - np.cos(angle)) * skew @ skew


ANY_ROTATION = np.zeros((0, 3, 3))
"""The symmetry set of an object that looks the same under every rotation (a ball): empty. The rotation
error is then 0 and the point metrics compare the translations alone (exact for points symmetric about the
object's origin, as a ball's are)."""


def symmetry_rotations(kind: str = "none", axis=(0.0, 0.0, 1.0), order: int = 1,
                       continuous_step_deg: float = 5.0, flip_axis=None) -> np.ndarray:
    """Rotations of the object frame that leave the object unchanged, (S, 3, 3), identity first.

    kind: "none"; "discrete" (rotations by 2*pi*k/order about `axis`, e.g. order 2 for the 180-degree
    symmetric YCB objects); "continuous" (any rotation about `axis`, sampled every
    `continuous_step_deg` degrees, as the H2O-3D protocol does for the bowl, mug and pitcher);
    "spherical" (any rotation at all, a ball): the EMPTY set (0, 3, 3), which every metric here reads as
    "the rotation is unobservable" (`ANY_ROTATION`).
    flip_axis: an axis perpendicular to `axis` about which a 180-degree turn also leaves the object
    unchanged (a box or a closed cylinder turned upside down): the set is doubled with it.
    """
    if kind == "spherical":
        return ANY_ROTATION
    if kind == "none":
        base = np.eye(3)[None]
    elif kind == "discrete":
        if order < 1:
            raise ValueError(f"discrete symmetry needs order >= 1; got {order}")
        base = np.stack([_axis_rotation(axis, 2 * np.pi * k / order) for k in range(order)])
    elif kind == "continuous":
        steps = int(round(360.0 / continuous_step_deg))
        base = np.stack([_axis_rotation(axis, 2 * np.pi * k / steps) for k in range(steps)])
    else:
        raise ValueError(f"symmetry kind must be 'none', 'discrete', 'continuous' or 'spherical'; got {kind!r}")
    if flip_axis is None:
        return base
    return np.concatenate([base, base @ _axis_rotation(flip_axis, np.pi)])


def symmetries_of(record: dict | None) -> np.ndarray:
    """`symmetry_rotations` of a symmetry record in the catalogue spelling ({"kind", "axis", "order",
    "flip_axis"}, the object template's and the synthetic labels' `symmetry`); None or {} = no symmetry.
    (S, 3, 3)."""
    if not record:
        return np.eye(3)[None]
    return symmetry_rotations(record.get("kind", "none"), record.get("axis", (0.0, 0.0, 1.0)),
                              int(record.get("order", 1) or 1), flip_axis=record.get("flip_axis"))


def rotation_error_deg(pred_rotation, gt_rotation, symmetries=None) -> float:
    """Geodesic angle in degrees between two rotations (camera <- object), the smallest over the object's
    symmetries: min over S of angle(R_pred^T R_gt S). `symmetries`: (S, 3, 3) from `symmetry_rotations`,
    None = the identity only."""
    symmetries = np.eye(3)[None] if symmetries is None else np.asarray(symmetries, np.float64)
    if len(symmetries) == 0:   # ANY_ROTATION
        return 0.0
    relative = np.einsum("ji,sjk->sik", np.asarray(pred_rotation, np.float64),
                         np.asarray(gt_rotation, np.float64) @ symmetries)
    cosines = np.clip((np.trace(relative, axis1=1, axis2=2) - 1.0) / 2.0, -1.0, 1.0)
    return float(np.degrees(np.arccos(cosines.max())))


def _posed(points: np.ndarray, rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    return np.asarray(points, np.float64) @ np.asarray(rotation, np.float64).T + np.asarray(translation, np.float64)


def mssd(model_points, pred_pose, gt_pose, symmetries=None) -> float:
    """Maximum symmetry-aware surface distance (BOP): min over symmetries S of
    max_v || R_p v + t_p - (R_g S v + t_g) ||. Poses are (R, t) tuples."""
    symmetries = np.eye(3)[None] if symmetries is None else np.asarray(symmetries)
    if len(symmetries) == 0:   # ANY_ROTATION: every point moves with the translation
        return float(np.linalg.norm(np.asarray(pred_pose[1], np.float64) - np.asarray(gt_pose[1], np.float64)))
    pred = _posed(model_points, *pred_pose)
    best = np.inf
    for sym in symmetries:
        gt = _posed(model_points, np.asarray(gt_pose[0]) @ sym, gt_pose[1])
        best = min(best, float(np.linalg.norm(pred - gt, axis=-1).max()))
    return best


def mean_mesh_error(model_points, pred_pose, gt_pose, symmetries=None) -> float:
    """Mean vertex distance between the posed meshes (DMA's MME), minimised over symmetries."""
    symmetries = np.eye(3)[None] if symmetries is None else np.asarray(symmetries)
    if len(symmetries) == 0:   # ANY_ROTATION: every point moves with the translation
        return float(np.linalg.norm(np.asarray(pred_pose[1], np.float64) - np.asarray(gt_pose[1], np.float64)))
    pred = _posed(model_points, *pred_pose)
    return min(float(np.linalg.norm(pred - _posed(model_points, np.asarray(gt_pose[0]) @ s, gt_pose[1]),
                                    axis=-1).mean()) for s in symmetries)


def bounding_box_corners(model_points) -> np.ndarray:
    """The 8 corners (8, 3) of the axis-aligned bounding box of model points, object frame."""
    pts = np.asarray(model_points, np.float64)
    lo, hi = pts.min(0), pts.max(0)
    return np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])


def mean_corner_error(model_points, pred_pose, gt_pose, symmetries=None) -> float:
    """Mean distance of the 8 bounding-box corners, minimised over symmetries (KPT's object metric)."""
    return mean_mesh_error(bounding_box_corners(model_points), pred_pose, gt_pose, symmetries)


def _nearest_distances(a: np.ndarray, b: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """For each point of a (P, 3), the distance to its nearest point of b (Q, 3)."""
    out = np.empty(len(a))
    b_sq = (b ** 2).sum(1)
    for start in range(0, len(a), chunk):
        part = a[start:start + chunk]
        d2 = (part ** 2).sum(1)[:, None] - 2 * part @ b.T + b_sq[None]
        out[start:start + chunk] = np.sqrt(np.maximum(d2.min(1), 0.0))
    return out


def add_s(model_points, pred_pose, gt_pose) -> float:
    """ADD-S: mean over ground-truth-posed points of the distance to the nearest predicted-posed point."""
    gt = _posed(model_points, *gt_pose)
    pred = _posed(model_points, *pred_pose)
    return float(_nearest_distances(gt, pred).mean())


def f_score(pred_points, gt_points, threshold: float) -> tuple[float, float, float]:
    """(F, precision, recall) at a distance threshold (e.g. 5 mm / 15 mm for HO-3D meshes).
    precision: share of predicted points within `threshold` of gt; recall: the converse."""
    pred = np.asarray(pred_points, np.float64)
    gt = np.asarray(gt_points, np.float64)
    precision = float((_nearest_distances(pred, gt) <= threshold).mean())
    recall = float((_nearest_distances(gt, pred) <= threshold).mean())
    f = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return f, precision, recall


def winding_numbers(points, vertices, faces, chunk: int = 256) -> np.ndarray:
    """Generalised winding number of each point (P,) w.r.t. a triangle mesh: ~1 inside a closed,
    outward-oriented mesh, ~0 outside (Jacobson et al. 2013, solid angles by Van Oosterom-Strackee)."""
    points = np.asarray(points, np.float64)
    tri = np.asarray(vertices, np.float64)[np.asarray(faces)]  # (F, 3, 3)
    out = np.empty(len(points))
    for start in range(0, len(points), chunk):
        rel = tri[None] - points[start:start + chunk, None, None]  # (p, F, 3, 3)
        a, b, c = rel[..., 0, :], rel[..., 1, :], rel[..., 2, :]
        la, lb, lc = (np.linalg.norm(v, axis=-1) for v in (a, b, c))
        det = np.einsum("pfi,pfi->pf", a, np.cross(b, c))
        denom = (la * lb * lc + np.einsum("pfi,pfi->pf", a, b) * lc + np.einsum("pfi,pfi->pf", b, c) * la
                 + np.einsum("pfi,pfi->pf", c, a) * lb)
        out[start:start + chunk] = (2 * np.arctan2(det, denom)).sum(1) / (4 * np.pi)
    return out


def point_mesh_distances(points, vertices, faces, chunk: int = 256) -> np.ndarray:
    """Unsigned distance (P,) from each point to the nearest triangle of a mesh (exact closest point
    on each triangle, by the Voronoi-region case analysis of Ericson's Real-Time Collision Detection)."""
    points = np.asarray(points, np.float64)
    tri = np.asarray(vertices, np.float64)[np.asarray(faces)]
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    ab, ac = b - a, c - a
    out = np.empty(len(points))
    for start in range(0, len(points), chunk):
        p = points[start:start + chunk, None, :]  # (p, 1, 3)
        ap, bp, cp = p - a, p - b, p - c
        d1, d2 = (ap * ab).sum(-1), (ap * ac).sum(-1)
        d3, d4 = (bp * ab).sum(-1), (bp * ac).sum(-1)
        d5, d6 = (cp * ab).sum(-1), (cp * ac).sum(-1)
        va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
        with np.errstate(divide="ignore", invalid="ignore"):
            denom = va + vb + vc
            v_face, w_face = vb / denom, vc / denom
            v_ab = d1 / (d1 - d3)
            w_ac = d2 / (d2 - d6)
            w_bc = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        # Barycentric weights (v on b, w on c) of the closest point, region by region. Later
        # assignments win, so regions are visited in the reverse of Ericson's test order
        # (face, edge bc, edge ac, vertex c, edge ab, vertex b, vertex a).
        v = np.where(np.isfinite(v_face), v_face, 0.0)
        w = np.where(np.isfinite(w_face), w_face, 0.0)
        edge_bc = (va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0)
        v, w = np.where(edge_bc, 1 - w_bc, v), np.where(edge_bc, w_bc, w)
        edge_ac = (vb <= 0) & (d2 >= 0) & (d6 <= 0)
        v, w = np.where(edge_ac, 0.0, v), np.where(edge_ac, w_ac, w)
        at_c = (d6 >= 0) & (d5 <= d6)
        v, w = np.where(at_c, 0.0, v), np.where(at_c, 1.0, w)
        edge_ab = (vc <= 0) & (d1 >= 0) & (d3 <= 0)
        v, w = np.where(edge_ab, v_ab, v), np.where(edge_ab, 0.0, w)
        at_b = (d3 >= 0) & (d4 <= d3)
        v, w = np.where(at_b, 1.0, v), np.where(at_b, 0.0, w)
        at_a = (d1 <= 0) & (d2 <= 0)
        v, w = np.where(at_a, 0.0, v), np.where(at_a, 0.0, w)
        closest = a + v[..., None] * ab + w[..., None] * ac
        out[start:start + chunk] = np.linalg.norm(p - closest, axis=-1).min(1)
    return out


def penetration_depth(hand_vertices, object_vertices, object_faces) -> float:
    """Deepest penetration (metres) of hand vertices inside a closed object mesh: the largest
    distance to the object surface among the hand vertices whose winding number exceeds 0.5;
    0 when no vertex is inside. Averaged over frames by `hand_object_contact`."""
    inside = winding_numbers(hand_vertices, object_vertices, object_faces) > 0.5
    if not inside.any():
        return 0.0
    return float(point_mesh_distances(np.asarray(hand_vertices)[inside], object_vertices, object_faces).max())


def hand_object_contact(hand_vertices_seq, object_vertices_seq, object_faces,
                        contact_threshold_m: float = 0.002) -> tuple[float, float]:
    """(mean penetration depth in metres, contact percentage in [0, 100]) over frames.

    A frame is in contact when some hand vertex is inside the object or within
    `contact_threshold_m` of its surface (our choice of threshold: 2 mm; the papers do not fix one).
    """
    depths, contacts = [], []
    for hand, obj in zip(hand_vertices_seq, object_vertices_seq):
        depth = penetration_depth(hand, obj, object_faces)
        gap = point_mesh_distances(hand, obj, object_faces).min()
        depths.append(depth)
        contacts.append(depth > 0 or gap <= contact_threshold_m)
    if not depths:
        return float("nan"), float("nan")
    return float(np.mean(depths)), 100.0 * float(np.mean(contacts))
