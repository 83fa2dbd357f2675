"""An object's pose fitted to the depth image: the heat-map pose (object_heatmap_pose) moved until the object's
mesh lies on the surface the depth camera measures.

Why: the heat-maps place an object to about a centimetre or two and often turn a box or a mug the wrong way (their
corner maps are flat); a depth image measures the visible surface to a millimetre or so. On the synthetic
calibration split (seed 2001, ground-truth hand boxes, the shipped networks, no confidence gate) the fit took the
objects posed within 20 mm and 15 degrees from 43 to about 100 of 266 (docs/hand_heatmap.md).

How (projective point-to-plane ICP, the association of depth-camera fusion):
1. the mesh's surface is sampled once per object (`sample_surface`: points and outward normals, object frame);
2. each iteration poses the samples, keeps those facing the camera and in front of the other samples on their
   pixel (a point z-buffer), and pairs each with the depth pixel it projects to: the measured point on the same
   ray; pairs further apart in depth than a tolerance that shrinks over the iterations are dropped, and so are
   measured points within `HAND_CLEARANCE_M` of a hand's bones or forearm (the hands that hold an object cover
   it, and their surface lies a finger's thickness outside its surface, where an unguarded fit slides to);
3. one Gauss-Newton step of the point-to-plane distances (6 unknowns: a small turn about the object's centre and
   a shift).
Several starts (`start_turns`: the heat-map rotation turned by each of the 24 turns that map a box's axes onto
axes; one for a ball) cover a box seen along the wrong axis and a mug's handle
on the wrong side; the fit that the depth image agrees with most (`DepthAgreement.score`) wins. Samples on a hand's
own surface (`HAND_SURFACE_M`) are never agreement: a pose slid onto the holding fingers would otherwise agree.

With the object's pixels (`object_pixels.ObjectPixels`, from an object network with a segmentation head) the fit
pairs samples with those pixels only, agreement counts only there, a sample where the crop sees background
(nothing nearer hiding it) counts against the pose, and the share of the object's pixels the pose explains
(`coverage`) counts for it: a pose must cover the object the image shows, not just lie on some of it.

Frames: camera optical frame, metres; depth image (H, W) metres, aligned with the colour image (0 or NaN where
nothing was measured); rotations camera <- object.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from hand_object_pose.geometry.camera import CameraIntrinsics
from hand_object_pose.geometry.skeleton import PARENTS
from hand_object_pose.inference.object_pixels import ObjectPixels

SURFACE_SAMPLES = 600
"""Surface samples per object (about one per 6 mm x 6 mm of a 6 x 9 x 5 cm box)."""

SCREEN_ITERATIONS = 6
SCREEN_TOLERANCES_M = (0.03, 0.02, 0.015, 0.01)
FINALISTS = 4
FINAL_ITERATIONS = 10
FINAL_TOLERANCES_M = (0.015, 0.01)
SCREEN_ITERATIONS_ON_OBJECT = 5
SCREEN_TOLERANCES_ON_OBJECT_M = (0.05, 0.03, 0.02)
"""Every start runs SCREEN_ITERATIONS steps, the FINALISTS best of them FINAL_ITERATIONS more. The tolerances are
the depth gaps beyond which a sample and its measured point are not paired, over each stage's equal parts: wide
first (the heat-map pose is about 2 cm off), tight last. On the object's pixels alone (`ObjectPixels`) the screening
pairs from further off (nothing but the object can pair) and in fewer steps: on 150 calibration frames (the object
network of 6 Dec 2026 at minute 12 of its training) 54 objects of 133 well posed against 45 with the tolerances
above, in two thirds of the time of 8 steps."""

HAND_CLEARANCE_M = 0.03
"""Measured points nearer than this to a hand's bone (or its forearm) belong to the hand (the estimated joints are
1-2 cm off and a finger is 1-2 cm thick); 0.02 gave 87 and 0.03 gave 92 well posed objects of 187 (one start)."""

HAND_SURFACE_M = 0.018
"""Measured points nearer than this to a hand's bone are the hand's own surface: a sample there is no agreement
with the pose, even at the sample's depth (a grasping hand's surface lies where the object's would). Tighter than
HAND_CLEARANCE_M, which also takes the object's surface touching the fingers; on the calibration split (own crops)
it cut the poorly posed or wrong-class objects reported from 34 to 25 of 266 and kept the well posed (77); 0.03
kept 76 and cut them to 22, but with ground-truth boxes lost 6 of 74 well posed (1.8 cm: 1)."""

FOREARM_LENGTH_M = 0.15
"""Each hand's forearm: a segment from the wrist away from the middle finger's base."""

AGREEMENT_TOLERANCE_M = 0.01
"""A visible sample agrees with the depth image when the measured point on its ray is within this depth."""

MIN_PAIRS = 12
"""Fewer pairs than this end the fit (too little of the object is visible to constrain 6 unknowns)."""

BEHIND_WEIGHT = 2.0
"""Weight of the samples behind which the depth image sees further (free space the object would fill) against the
agreeing ones in `DepthAgreement.score`: a pose that puts the object where the camera sees through it is wrong,
one that agrees with part of a surface may only be partly occluded."""


OUTSIDE_WEIGHT = 1.0
"""Weight of the visible samples on pixels the crop calls background (with the object's pixels) in the score."""

COVERAGE_WEIGHT = 1.0
"""Weight of `DepthAgreement.coverage` (with the object's pixels) in the score."""

COVERAGE_CELL_SAMPLES = 2.0
"""Coverage is counted on square cells of the image this many sample spacings a side (`SurfaceSamples.spacing_m` at
the object's depth; at least 2 px): about 4 samples a cell, so a pose that lies on all of the object's pixels
leaves few of their cells empty (area-uniform samples fall unevenly: at one sample a cell a third stay empty)."""


@dataclass(frozen=True)
class SurfaceSamples:
    """points (N, 3) on an object's surface and normals (N, 3) (unit, outward), object frame, metres; spacing_m:
    the side of the surface area per sample (0: unknown)."""

    points: np.ndarray
    normals: np.ndarray
    spacing_m: float = 0.0


def sample_surface(vertices: np.ndarray, faces: np.ndarray, count: int = SURFACE_SAMPLES,
                   seed: int = 0) -> SurfaceSamples:
    """Area-uniform samples of a triangle mesh (vertices (V, 3) metres, faces (F, 3) counter-clockwise seen from
    outside), reproducible per seed; each sample takes its triangle's normal."""
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    cross = np.cross(b - a, c - a)
    area = 0.5 * np.linalg.norm(cross, axis=1)
    if not np.isfinite(area.sum()) or area.sum() <= 0:
        raise ValueError(f"sample_surface: the mesh ({len(v)} vertices, {len(f)} faces) has no area")
    rng = np.random.default_rng(seed)
    tri = rng.choice(len(f), size=count, p=area / area.sum())
    r1, r2 = np.sqrt(rng.random(count)), rng.random(count)
    points = ((1 - r1)[:, None] * a[tri] + (r1 * (1 - r2))[:, None] * b[tri] + (r1 * r2)[:, None] * c[tri])
    normals = cross[tri] / np.maximum(np.linalg.norm(cross[tri], axis=1, keepdims=True), 1e-12)
    return SurfaceSamples(points, normals, float(np.sqrt(area.sum() / count)))


def hand_segments(hands_xyz: Sequence[np.ndarray]) -> np.ndarray:
    """(S, 2, 3) segments (metres, camera frame) of the given hands' bones (21 joints each, canonical order) and
    forearms (`FOREARM_LENGTH_M`); hands with a non-finite joint are left out."""
    segments = []
    for joints in hands_xyz:
        joints = np.asarray(joints, np.float64)
        if joints.shape != (21, 3) or not np.all(np.isfinite(joints)):
            continue
        segments.extend((joints[PARENTS[j]], joints[j]) for j in range(1, 21))
        away = joints[0] - joints[9]
        norm = np.linalg.norm(away)
        if norm > 1e-6:
            segments.append((joints[0], joints[0] + FOREARM_LENGTH_M * away / norm))
    return np.asarray(segments, np.float64).reshape(-1, 2, 3)


def distance_to_segments(points: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """(P,) distance of each point (P, 3) to the nearest of the segments (S, 2, 3); inf without segments."""
    if len(segments) == 0:
        return np.full(len(points), np.inf)
    start, direction = segments[:, 0], segments[:, 1] - segments[:, 0]
    rel = points[:, None, :] - start[None]
    along = np.einsum("psk,sk->ps", rel, direction) / np.maximum(np.einsum("sk,sk->s", direction, direction), 1e-12)
    nearest = start[None] + np.clip(along, 0.0, 1.0)[..., None] * direction[None]
    return np.linalg.norm(points[:, None, :] - nearest, axis=-1).min(axis=1)


@dataclass(frozen=True)
class _Pairs:
    """The posed samples of M poses and what the depth image measures on their rays."""

    posed: np.ndarray      # (M, N, 3) samples, camera frame
    normals: np.ndarray    # (M, N, 3) their normals, camera frame
    measured: np.ndarray   # (M, N) depth on each visible sample's pixel (NaN: not visible, off the image, no depth)
    visible: np.ndarray    # (M, N) facing the camera, in the image, in front of the pose's other samples on its pixel
    pixel: np.ndarray      # (M, N) each sample's flat pixel index (v * width + u; 0 where not inside the image)


def _pair_many(rotations: np.ndarray, translations: np.ndarray, surface: SurfaceSamples, depth_m: np.ndarray,
               camera: CameraIntrinsics) -> _Pairs:
    """The samples of M poses (rotations (M, 3, 3), translations (M, 3)) and what the depth image measures on their
    rays (`_Pairs`): the fit's starts move together (one array operation for all of them instead of one small one
    per start: the per-call overhead was most of the fit's time)."""
    to_camera = np.swapaxes(rotations, 1, 2)
    posed = surface.points @ to_camera + translations[:, None, :]
    normals = surface.normals @ to_camera
    height, width = depth_m.shape
    front = posed[..., 2] > 1e-3
    facing = front & ((normals * posed).sum(axis=-1) < 0)
    uv = np.full(posed.shape[:2] + (2,), -1.0)
    if facing.any():
        uv[facing] = camera.project(posed[facing])
    u, v = np.rint(uv[..., 0]).astype(np.int64), np.rint(uv[..., 1]).astype(np.int64)
    inside = facing & (u >= 0) & (u < width) & (v >= 0) & (v < height)
    pixel = np.where(inside, v * width + u, 0)
    # Samples further than 5 mm behind the nearest one on their pixel (of the same pose) are hidden by the object
    # itself (a mug's handle behind its body). The nearest per pixel from the samples sorted by pose and pixel,
    # then depth: a z-buffer of the whole image cost more than the rest of the step on a 640 x 480 frame.
    visible = np.zeros(inside.shape, bool)
    pose_of, sample_of = np.nonzero(inside)
    if len(pose_of):
        depth_of = posed[pose_of, sample_of, 2]
        key = pose_of * (height * width) + pixel[pose_of, sample_of]
        order = np.lexsort((depth_of, key))
        first = np.ones(len(order), bool)
        first[1:] = key[order][1:] != key[order][:-1]
        nearest = np.empty(len(order))
        nearest[order] = depth_of[order][first][np.cumsum(first) - 1]
        visible[pose_of, sample_of] = depth_of <= nearest + 0.005
    measured = np.where(visible, depth_m.reshape(-1)[pixel], np.nan)
    measured = np.where(np.isfinite(measured) & (measured > 0), measured, np.nan)
    return _Pairs(posed, normals, measured, visible, pixel)


class HandCover:
    """How far the measured point of each pixel of one depth image lies from the nearest of the segments (S, 2, 3)
    (`hand_segments`): within HAND_CLEARANCE_M it `covers` (belongs to a hand for the fit), within HAND_SURFACE_M it
    is `on_hand` (a hand's own surface). Computed per pixel when first asked and kept: the fit asks about the same
    few thousand pixels again and again."""

    def __init__(self, depth_m: np.ndarray, camera: CameraIntrinsics, segments: np.ndarray):
        self.depth_m, self.camera, self.segments = depth_m, camera, np.asarray(segments, np.float64).reshape(-1, 2, 3)
        self._distance = np.full(depth_m.size, np.nan, np.float32) if len(self.segments) else None

    def _distances(self, pixels: np.ndarray) -> np.ndarray:
        """(P,) metres for flat pixel indices (P,) with a valid depth (inf without segments)."""
        if self._distance is None:
            return np.full(len(pixels), np.inf, np.float32)
        unknown = np.unique(pixels[np.isnan(self._distance[pixels])])
        if len(unknown):
            width = self.depth_m.shape[1]
            uv = np.stack([unknown % width, unknown // width], axis=1).astype(np.float64)
            points = self.camera.backproject(uv, self.depth_m.reshape(-1)[unknown].astype(np.float64))
            self._distance[unknown] = distance_to_segments(points, self.segments)
        return self._distance[pixels]

    def covers(self, pixels: np.ndarray) -> np.ndarray:
        """(P,) bool for flat pixel indices (P,) with a valid depth: within HAND_CLEARANCE_M of a bone."""
        return self._distances(pixels) < HAND_CLEARANCE_M

    def on_hand(self, pixels: np.ndarray) -> np.ndarray:
        """(P,) bool for flat pixel indices (P,) with a valid depth: within HAND_SURFACE_M of a bone."""
        return self._distances(pixels) < HAND_SURFACE_M


def _step(pairs: _Pairs, centres: np.ndarray, use: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Gauss-Newton steps (turns (M, 3, 3), shifts (M, 3)) of the point-to-plane distances of each pose's
    `use` samples (M, N) to their measured points (`_pair_many`'s arrays); each turn is about its centre (M, 3)."""
    weight = use.astype(np.float64)
    posed, normals = pairs.posed, pairs.normals
    scale = np.where(use, np.nan_to_num(pairs.measured) / np.where(use, posed[..., 2], 1.0), 0.0)
    target = posed * scale[..., None]
    residual = np.where(use, (normals * (posed - target)).sum(axis=-1), 0.0)
    jacobian = np.concatenate([np.cross(posed - centres[:, None, :], normals), normals], axis=-1) * weight[..., None]
    normal_matrix = np.swapaxes(jacobian, 1, 2) @ jacobian + 1e-6 * np.eye(6)
    solution = np.linalg.solve(normal_matrix, -(np.swapaxes(jacobian, 1, 2) @ residual[..., None]))[..., 0]
    return np.stack([_small_turn(s) for s in solution[:, :3]]), solution[:, 3:]


def _small_turn(axis_angle: np.ndarray) -> np.ndarray:
    """(3, 3) rotation of an axis-angle (3,) radians (Rodrigues; geometry.rotations' general converter costs ten
    times as much, and the fit takes a few hundred steps per object)."""
    angle = float(np.linalg.norm(axis_angle))
    if angle < 1e-12:
        return np.eye(3)
    x, y, z = axis_angle / angle
    k = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)


def refine_to_depth(rotation: np.ndarray, translation: np.ndarray, surface: SurfaceSamples, depth_m: np.ndarray,
                    camera: CameraIntrinsics, hands: HandCover, iterations: int,
                    tolerances: Sequence[float], evidence: Optional["ObjectEvidence"] = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """ICP from one start (module doc): (rotation (3, 3), translation (3,)) after `iterations` steps, the pairing
    tolerances (metres) taking turns over equal parts of them, or earlier when fewer than MIN_PAIRS samples pair
    with the depth image (then the pose reached so far). With `evidence`, only the object's pixels pair."""
    rotations, translations = refine_many(np.asarray(rotation, np.float64)[None],
                                          np.asarray(translation, np.float64)[None], surface, depth_m, camera, hands,
                                          iterations, tolerances, evidence)
    return rotations[0], translations[0]


def refine_many(rotations: np.ndarray, translations: np.ndarray, surface: SurfaceSamples, depth_m: np.ndarray,
                camera: CameraIntrinsics, hands: HandCover, iterations: int, tolerances: Sequence[float],
                evidence: Optional["ObjectEvidence"] = None) -> tuple[np.ndarray, np.ndarray]:
    """`refine_to_depth` of M starts at once (rotations (M, 3, 3), translations (M, 3)): each start is moved as it
    would be alone, and one that pairs fewer than MIN_PAIRS samples stops where it is."""
    rotations = np.array(rotations, np.float64)
    translations = np.array(translations, np.float64)
    moving = np.ones(len(rotations), bool)
    for it in range(iterations):
        if not moving.any():
            break
        tolerance = tolerances[min(it * len(tolerances) // iterations, len(tolerances) - 1)]
        which = np.flatnonzero(moving)
        pairs = _pair_many(rotations[which], translations[which], surface, depth_m, camera)
        gap = pairs.measured - pairs.posed[..., 2]
        use = np.abs(np.nan_to_num(gap, nan=np.inf)) < tolerance
        if evidence is not None:
            use &= evidence.object[pairs.pixel]
        if use.any():
            pose_of, sample_of = np.nonzero(use)
            use[pose_of, sample_of] = ~hands.covers(pairs.pixel[pose_of, sample_of])
        enough = use.sum(axis=1) >= MIN_PAIRS
        moving[which[~enough]] = False
        if not enough.any():
            break
        keep = np.flatnonzero(enough)
        pairs = _Pairs(pairs.posed[keep], pairs.normals[keep], pairs.measured[keep], pairs.visible[keep],
                       pairs.pixel[keep])
        turns, shifts = _step(pairs, translations[which[keep]], use[keep])
        rotations[which[keep]] = turns @ rotations[which[keep]]
        translations[which[keep]] = translations[which[keep]] + shifts
    return rotations, translations


@dataclass(frozen=True)
class DepthAgreement:
    """How a pose's visible samples meet the depth image: `agreeing` within AGREEMENT_TOLERANCE_M, but not on a
    hand's own surface (HAND_SURFACE_M), `behind` (the camera sees further: free space the object would fill),
    `covered_by_hands` (a hand nearer, within HAND_CLEARANCE_M of its bones, or a hand's own surface as near) and
    `covered_by_other` (something else nearer), of `visible` samples facing the camera (no depth: in none of the
    four).

    With the object's pixels (`ObjectEvidence`): `agreeing` only on them; `covered_by_other` = the object's own
    surface measured nearer (the pose lies inside it); anything else nearer covers the sample (counted in
    `covered_by_hands`); `outside` = on a pixel the crop calls background with nothing nearer; `coverage` = the
    share of the object's pixel cells (COVERAGE_CELL_SAMPLES, with depth) holding an agreeing sample."""

    agreeing: int
    behind: int
    covered_by_hands: int
    covered_by_other: int
    visible: int
    outside: int = 0
    coverage: float = 0.0

    @property
    def score(self) -> float:
        """(agreeing - BEHIND_WEIGHT x behind - covered_by_other - OUTSIDE_WEIGHT x outside) / visible
        + COVERAGE_WEIGHT x coverage: the starts' ranking (outside and coverage are 0 without the object's
        pixels). A pose with no visible sample scores -inf: the depth image says nothing for it, so it must not win
        over poses it speaks against (an ICP step from a start centimetres off can carry the object metres away,
        out of the image: scored 0, it beat every pose the image had seen, and the fit reported nothing)."""
        if self.visible == 0:
            return float("-inf")
        penalty = BEHIND_WEIGHT * self.behind + self.covered_by_other + OUTSIDE_WEIGHT * self.outside
        return (self.agreeing - penalty) / max(self.visible, 1) + COVERAGE_WEIGHT * self.coverage

    @property
    def agreement(self) -> float:
        """agreeing / (agreeing + behind + covered_by_other + outside) in [0, 1]: how much of what the depth
        image (and the crop's background) says about the visible, not hand-covered surface confirms the pose
        (0 when it says nothing)."""
        return self.agreeing / max(self.agreeing + self.behind + self.covered_by_other + self.outside, 1)


class ObjectEvidence:
    """The object's pixels (`object_pixels.ObjectPixels`) as the fit of one surface reads them: flat `object` and
    `background` masks (H * W,) and the cells (COVERAGE_CELL_SAMPLES) of the object's pixels that have a depth."""

    def __init__(self, pixels: ObjectPixels, depth_m: np.ndarray, surface: SurfaceSamples, camera: CameraIntrinsics):
        height, width = depth_m.shape
        if pixels.object.shape != depth_m.shape:
            raise ValueError(f"object pixels {pixels.object.shape} do not match the depth image {depth_m.shape}")
        self.object = pixels.object.reshape(-1)
        self.background = pixels.background.reshape(-1)
        flat_depth = depth_m.reshape(-1)
        with np.errstate(invalid="ignore"):
            measured = np.flatnonzero(self.object & np.isfinite(flat_depth) & (flat_depth > 0))
        depth = float(np.median(flat_depth[measured])) if len(measured) else 1.0
        spacing_px = camera.fx * surface.spacing_m / depth if surface.spacing_m > 0 else 2.0
        self._cell = max(2, int(round(COVERAGE_CELL_SAMPLES * spacing_px)))
        self._width, self._cells_wide = width, -(-width // self._cell)
        self._cell_count = -(-height // self._cell) * self._cells_wide
        self.object_cells = np.unique(self._cells(measured))

    def _cells(self, pixels: np.ndarray) -> np.ndarray:
        return (pixels // self._width // self._cell) * self._cells_wide + (pixels % self._width) // self._cell

    def coverage(self, agreeing_pixels: np.ndarray) -> float:
        """Share of the object's cells holding one of the flat pixels `agreeing_pixels` (0 without cells)."""
        if not len(self.object_cells):
            return 0.0
        hit = np.zeros(self._cell_count, bool)
        hit[self._cells(agreeing_pixels)] = True
        return float(hit[self.object_cells].mean())


def depth_agreement(rotation: np.ndarray, translation: np.ndarray, surface: SurfaceSamples, depth_m: np.ndarray,
                    camera: CameraIntrinsics, hands: HandCover,
                    evidence: Optional[ObjectEvidence] = None) -> DepthAgreement:
    """`DepthAgreement` of one pose (see there)."""
    return depth_agreements(np.asarray(rotation, np.float64)[None], np.asarray(translation, np.float64)[None],
                            surface, depth_m, camera, hands, evidence)[0]


def depth_agreements(rotations: np.ndarray, translations: np.ndarray, surface: SurfaceSamples, depth_m: np.ndarray,
                     camera: CameraIntrinsics, hands: HandCover,
                     evidence: Optional[ObjectEvidence] = None) -> list:
    """`DepthAgreement` of each of M poses (rotations (M, 3, 3), translations (M, 3)), computed together."""
    pairs = _pair_many(rotations, translations, surface, depth_m, camera)
    gap = np.nan_to_num(pairs.measured - pairs.posed[..., 2], nan=0.0)
    measured = np.isfinite(pairs.measured)
    on_hand, covers = np.zeros_like(measured), np.zeros_like(measured)
    on_hand[measured] = hands.on_hand(pairs.pixel[measured])
    covers[measured] = hands.covers(pairs.pixel[measured])
    close = measured & (np.abs(gap) < AGREEMENT_TOLERANCE_M)
    behind = measured & (gap >= AGREEMENT_TOLERANCE_M)
    nearer = measured & (gap <= -AGREEMENT_TOLERANCE_M)
    visible = pairs.visible.sum(axis=1)
    if evidence is not None:
        return _agreements_on_object(pairs, close, behind, nearer, on_hand, visible, evidence)
    # A sample on a hand's own surface says nothing for the pose, even at the hand's depth: counting it as
    # agreement kept poses slid onto the fingers of the hand that holds the object.
    agreeing = (close & ~on_hand).sum(axis=1)
    by_hands = (nearer & covers).sum(axis=1) + (close & on_hand).sum(axis=1)
    by_other = (nearer & ~covers).sum(axis=1)
    return [DepthAgreement(int(a), int(b), int(h), int(o), int(v))
            for a, b, h, o, v in zip(agreeing, behind.sum(axis=1), by_hands, by_other, visible)]


def _agreements_on_object(pairs: _Pairs, close, behind, nearer, on_hand, visible, evidence: ObjectEvidence) -> list:
    """`depth_agreements` with the object's pixels (DepthAgreement's second paragraph)."""
    on_object = pairs.visible & evidence.object[pairs.pixel]
    agreeing = close & on_object & ~on_hand
    inside = nearer & on_object
    # Background with nothing nearer: no depth there, or a depth that agrees (not a hand's own surface).
    outside = pairs.visible & evidence.background[pairs.pixel] & ~nearer & ~behind & ~(close & on_hand)
    covered = pairs.visible & ~agreeing & ~behind & ~inside & ~outside & (nearer | (close & on_hand))
    return [DepthAgreement(int(agreeing[m].sum()), int(behind[m].sum()), int(covered[m].sum()), int(inside[m].sum()),
                           int(visible[m]), int(outside[m].sum()), evidence.coverage(pairs.pixel[m][agreeing[m]]))
            for m in range(len(visible))]


def _axis_turns() -> np.ndarray:
    """(24, 3, 3): the rotations that map the coordinate axes onto axes (a cube's rotation group), identity first."""
    turns = []
    for order in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            turn = np.zeros((3, 3))
            turn[np.arange(3), order] = signs
            if np.linalg.det(turn) > 0:
                turns.append(turn)
    return np.asarray(turns)


AXIS_TURNS = _axis_turns()


def start_turns(symmetry: dict) -> np.ndarray:
    """(M, 3, 3) object-frame turns to start the fit from (rotation @ turn) for an object of this symmetry (the
    catalogue spelling): all AXIS_TURNS, or the identity alone for a ball ("spherical": every rotation leaves it
    unchanged). Turns equal up to a cylinder's or a box's symmetries are kept: their fits differ by where the samples
    fall, and the best of all 24 was better posed than the best of the distinct ones (100 against 91 of 187
    calibration objects within 20 mm and 15 degrees)."""
    return AXIS_TURNS[:1] if symmetry.get("kind") == "spherical" else AXIS_TURNS


@dataclass(frozen=True)
class DepthFit:
    """The fitted pose: rotation (3, 3) camera <- object, translation (3,) metres, and its `DepthAgreement`."""

    rotation: np.ndarray
    translation: np.ndarray
    agreement: DepthAgreement


def fit_to_depth(starts: Sequence[tuple], surface: SurfaceSamples, depth_m: np.ndarray, camera: CameraIntrinsics,
                 segments: np.ndarray, pixels: Optional[ObjectPixels] = None) -> DepthFit:
    """The best fit from the starts (rotation (3, 3), translation (3,)), ranked by `DepthAgreement.score`: each
    start screened (SCREEN_ITERATIONS), the FINALISTS best refined (FINAL_ITERATIONS); an earlier start wins ties.
    Measured points near the segments (S, 2, 3) (`hand_segments`) are the hands' (`HandCover`); `pixels`: the
    object's pixels (module doc), when known. `starts` must not be empty."""
    hands = HandCover(depth_m, camera, segments)
    evidence = ObjectEvidence(pixels, depth_m, surface, camera) if pixels is not None else None

    def ranked(poses, iterations, tolerances):
        rotations, translations = refine_many(np.asarray([r for r, _ in poses], np.float64),
                                              np.asarray([t for _, t in poses], np.float64), surface, depth_m,
                                              camera, hands, iterations, tolerances, evidence)
        agreements = depth_agreements(rotations, translations, surface, depth_m, camera, hands, evidence)
        fits = [DepthFit(r, t, a) for r, t, a in zip(rotations, translations, agreements)]
        return sorted(fits, key=lambda fit: -fit.agreement.score)   # stable: ties keep the starts' order

    if evidence is None:
        screened = ranked(starts, SCREEN_ITERATIONS, SCREEN_TOLERANCES_M)[:FINALISTS]
    else:
        screened = ranked(starts, SCREEN_ITERATIONS_ON_OBJECT, SCREEN_TOLERANCES_ON_OBJECT_M)[:FINALISTS]
    return ranked([(fit.rotation, fit.translation) for fit in screened], FINAL_ITERATIONS, FINAL_TOLERANCES_M)[0]
