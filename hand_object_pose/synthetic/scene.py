"""Random hands-and-object scenes rendered with ground truth (the synthetic data of issue #8).

One scene: a procedural object (or none) at 0.3-0.7 m in front of a pinhole camera with random
intrinsics, a right and/or a left stand-in hand (NOT MANO) holding it or posed near it, random skin
tone, object colour, background, lighting and sensor noise. Everything is in the OpenCV camera frame
(metres); hand parameters are MANO-format for ``ManoLayer(..., flat_hand_mean=True)`` with the global
orientation and translation given in the camera frame, so the layer reproduces the rendered hand.

Rendering uses headless OpenGL (moderngl + EGL) when it starts, else the project's torch rasteriser;
both give the same pixels up to ties on triangle edges. Each call is deterministic in (seed, index)
for a given renderer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import cv2
import numpy as np
import torch

from hand_object_pose.geometry.camera import project_points
from hand_object_pose.geometry.hand_model_files import standin_hand_path
from hand_object_pose.geometry.mano import ManoLayer
from hand_object_pose.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from hand_object_pose.synthetic import arms, look as looks
from hand_object_pose.synthetic.look import SKIN_TONES
from hand_object_pose.synthetic.objects import ObjectModel, default_objects
from hand_object_pose.synthetic.poses import MANO_JOINTS, sample_hand_pose
from hand_object_pose.synthetic.gl_render import make_renderer
from hand_object_pose.synthetic.raster import vertex_normals

GENERATOR_VERSION = 12
"""Bumped when the same (seed, index) renders differently (2: issue 14's realism: arms, views, looks; 3: skin
relief, screen-space occlusion between fingers, forearm shaded like the wrist; 4: a second holding hand
that would pass through the first lets go; 5: the back of the hand shaded as a smooth surface;
6: weaker occlusion beside nearer surfaces; 7: weaker skin relief; 8: weaker ambient occlusion on the hands;
9: the forearm rounds out above the wrist; 10: wall paints without strong colour casts; 11: the palmar side
of the palm shaded smooth too, the three palm creases half as strong, skin tones a little redder; 12: the mug is
open at the top, so it no longer looks the same upside down)."""

LABEL_IDS = {"background": 0, "right": 1, "left": 2, "object": 3, "right_arm": 4, "left_arm": 5}
"""Values of the instance label image: the hands (labelled, with joints), the object, and each hand's
forearm/sleeve (drawn for realism, not part of the hand's mask)."""


@dataclass
class SceneConfig:
    image_size: tuple[int, int] = (256, 256)     # (width, height) pixels
    focal_range: tuple[float, float] = (0.75, 1.25)  # focal length / image width (webcam-like 50-70 deg)
    distance_range: tuple[float, float] = (0.4, 0.8)  # object (or hands) distance, metres
    p_object: float = 0.85
    p_right: float = 0.85
    p_left: float = 0.6                          # a scene always has at least one hand
    p_both_grasp: float = 0.35                   # with two hands and an object: both hold it
    noise_std: float = 2.0 / 255.0
    # A hand showing fewer pixels or fewer joints inside the image is left out of the scene (and of
    # its labels): "present" means visible. A scene may so end up with no hand.
    p_hands_facing: float = 0.6                  # two hands, no object: palms towards each other
    min_hand_pixels: int = 150
    min_joints_in_image: int = 6
    # Realism (issue 14). Hands are shown as people hold them in front of a camera: the forearm
    # leaves the image (or ends in a sleeve), fingers point away from it, palm, back or side towards
    # the camera; a share `p_hard_view` keeps a uniformly random orientation (hard cases).
    p_hard_view: float = 0.08
    view_prior: tuple[float, float, float] = (0.45, 0.4, 0.15)   # palm / back / side towards the camera
    forearm: bool = True
    p_sleeve: float = 0.55
    arm_from: tuple[float, float, float] = (0.75, 0.22, 0.03)    # forearm enters from the bottom / a side / the top
    arm_tilt_max: float = 0.45                  # radians the forearm leans towards the camera, at most
    p_object_upright: float = 0.7               # a held object's axis along the palm's width (power grasp)
    held_back_share: float = 0.5                # a holding hand shows the camera its back, else its side
    held_thumb_side: float = 0.8                # ... and of its sides mostly the thumb's
    grasp_curl: tuple[float, float] = (0.7, 1.0)  # finger curl a holding hand aims for (radians, before contact)

    def __post_init__(self):
        width, height = self.image_size
        if width < 16 or height < 16:
            raise ValueError(f"SceneConfig.image_size must be at least (16, 16), got {self.image_size}")
        for name in ("p_object", "p_right", "p_left", "p_both_grasp", "p_hands_facing", "p_hard_view", "p_sleeve",
                     "p_object_upright"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"SceneConfig.{name} must be a probability in [0, 1], got {getattr(self, name)}")
        for name in ("focal_range", "distance_range"):
            lo, hi = getattr(self, name)
            if not 0.0 < lo <= hi:
                raise ValueError(f"SceneConfig.{name} must be (low, high) with 0 < low <= high, got {(lo, hi)}")


@dataclass
class HandSample:
    side: str
    joints_cam: np.ndarray       # (21, 3) metres, camera frame, canonical order
    joints_2d: np.ndarray        # (21, 2) pixels
    joints_visible: np.ndarray   # (21,) bool: in the image and not hidden behind another surface
    mano_pose: np.ndarray        # (48,) axis-angle: camera-frame global orientation + 15 joints
    mano_shape: np.ndarray       # (10,)
    mano_trans: np.ndarray       # (3,) metres, camera frame
    vertices: np.ndarray         # (778, 3) metres, camera frame
    style: str
    mask_pixels: int = 0
    arm_direction: Optional[np.ndarray] = None  # (3,) unit, camera frame: the drawn forearm, wrist -> elbow


@dataclass
class ObjectSample:
    object_id: str
    rotation: np.ndarray         # (3, 3) camera <- object
    translation: np.ndarray      # (3,) metres, camera frame
    corners_rest: np.ndarray     # (8, 3) metres, object frame
    symmetry: dict = field(default_factory=dict)
    mask_pixels: int = 0


@dataclass
class SceneSample:
    rgb: np.ndarray              # (H, W, 3) uint8
    depth: np.ndarray            # (H, W) float32 metres, 0 = nothing
    labels: np.ndarray           # (H, W) uint8, LABEL_IDS
    K: np.ndarray                # (3, 3)
    hands: dict                  # side -> HandSample
    objects: list                # [ObjectSample]


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def _hand_rotation(palm_towards: np.ndarray, rng: np.random.Generator,
                   fingers_towards: Optional[np.ndarray] = None) -> np.ndarray:
    """Camera <- model rotation with the palm normal (model +z) along ``palm_towards`` and the fingers
    (model +y) towards ``fingers_towards`` (made perpendicular), or a random perpendicular direction."""
    z = palm_towards / np.linalg.norm(palm_towards)
    helper = rng.normal(size=3) if fingers_towards is None else np.asarray(fingers_towards, dtype=np.float64)
    y = helper - helper @ z * z
    y /= np.linalg.norm(y)
    return np.stack([np.cross(y, z), y, z], axis=1)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _arm_direction(rng: np.random.Generator, fingers: np.ndarray) -> np.ndarray:
    """Forearm direction (unit, camera frame) of a hand whose fingers point along `fingers`: away
    from the fingers, bent a little at the wrist, and leaning towards the camera (arms reach in from
    the viewer's side)."""
    arm = -_unit(fingers) + rng.normal(0, 0.2, 3) + [0.0, 0.0, -rng.uniform(0.0, 0.3)]
    return _unit(arm)


def _presented_hand(rng: np.random.Generator, cfg: "SceneConfig", grasp: bool = False, lateral: float = 0.0
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fingers, palm normal, forearm direction): unit vectors in the camera frame for a hand shown to
    the camera the way people hold one up or use one.

    The forearm reaches in from the bottom of the image, a side or the top (`arm_from`), leaning
    towards the camera by up to `arm_tilt_max`; the fingers point away from it, the wrist taking back
    most of the lean and adding a small bend; the palm (p = view_prior[0]),
    back or side faces the camera. A share `p_hard_view` is a uniformly random orientation instead.
    With `grasp` the palm must face away from the camera or sideways (the held object sits in front of
    the palm, and the hand may not hide behind it). `lateral` (-1 left, +1 right, 0 either): the side
    of the image the hand is on; its forearm then comes from below towards that side or from that side."""
    for _ in range(20):
        if rng.random() < cfg.p_hard_view:
            R = _random_rotation(rng)
            fingers, normal = R[:, 1], R[:, 2]
            arm = _arm_direction(rng, fingers)
        else:
            u = rng.random()
            side = lateral if lateral and rng.random() < 0.85 else rng.choice([-1, 1])
            # phi: angle of the arm (wrist -> elbow) in the image from straight down, towards +x.
            bottom, from_side, _ = cfg.arm_from
            phi = (rng.normal(0.45 * lateral, 0.45) if u < bottom else
                   side * rng.uniform(1.0, 1.9) if u < bottom + from_side else np.pi + rng.normal(0, 0.5))
            tilt = rng.uniform(0.0, cfg.arm_tilt_max)  # radians towards the camera
            arm = np.array([np.sin(phi) * np.cos(tilt), np.cos(phi) * np.cos(tilt), -np.sin(tilt)])
            # The wrist bends back most of the arm's lean, so the hand faces the camera more squarely
            # than the forearm does (as when one holds a hand up to a camera).
            fingers = _unit(-arm * [1.0, 1.0, rng.uniform(0.0, 0.5)] + rng.normal(0, [0.2, 0.2, 0.1]))
            towards = np.array([0.0, 0.0, -1.0])
            n0 = _unit(towards - towards @ fingers * fingers)
            palm, back, _ = cfg.view_prior
            if grasp:  # held: mostly the back of the hand towards the camera, else its side
                palm, back = 0.0, cfg.held_back_share
            v = rng.random()
            psi = (rng.normal(0, 0.35) if v < palm else np.pi + rng.normal(0, 0.35) if v < palm + back
                   else rng.choice([-1, 1]) * rng.uniform(1.0, 1.7))
            normal = n0 * np.cos(psi) + np.cross(fingers, n0) * np.sin(psi)
        # Held: not from behind the object, and (with `lateral`) from the hand's own side of it.
        if not grasp or (normal[2] >= -0.3 and normal[0] * lateral <= 0.1):
            return fingers, _unit(normal), arm
    return fingers, np.array([0.0, 0.0, 1.0]) - fingers[2] * fingers, arm


def _held_object_rotation(rng: np.random.Generator, hand_rotation: np.ndarray, p_upright: float) -> np.ndarray:
    """Camera <- object rotation of a held object: with p_upright its axis (object z) lies along the
    palm's width (a power grasp around a bottle, can or mug), turned about it at random; else uniform."""
    if rng.random() >= p_upright:
        return _random_rotation(rng)
    z = _unit(hand_rotation[:, 0] * rng.choice([-1, 1]) + rng.normal(0, 0.2, 3))
    x = rng.normal(size=3)
    x = _unit(x - x @ z * z)
    return np.stack([x, np.cross(z, x), z], axis=1)


def _skin_regions(layer: ManoLayer) -> tuple[np.ndarray, np.ndarray]:
    """Per-vertex (palmar side, nail) weights in [0, 1] from the rest pose (the same for both sides).

    Palmar: the rest-pose normal faces the digit's pad side. Nail: back of the outer part of each
    distal segment (within 60 % of its length from the tip).
    """
    from hand_object_pose.synthetic.raster import vertex_normals
    from hand_object_pose.synthetic.standin_hand import TIP_VERTEX_IDS, finger_frame

    template = layer.mano.v_template
    normals = vertex_normals(template, layer.faces).numpy()
    template = template.numpy().astype(np.float64)
    weights = layer.mano.lbs_weights.numpy()
    dominant = weights.argmax(axis=1)
    pad = np.tile([0.0, 0.0, 1.0], (len(template), 1))
    nail = np.zeros(len(template))
    joints = layer.mano.J_regressor.numpy() @ template
    for name, digit_joints in MANO_JOINTS.items():
        on_digit = np.isin(dominant, digit_joints)
        pad[on_digit] = finger_frame(name)[2]
        distal = dominant == digit_joints[2]
        tip = template[TIP_VERTEX_IDS[name]]
        length = np.linalg.norm(tip - joints[digit_joints[2]])
        near_tip = np.linalg.norm(template - tip, axis=1) < 0.6 * length
        back = -np.einsum("ij,ij->i", normals, pad)
        nail += distal * near_tip * np.clip((back - 0.3) / 0.4, 0.0, 1.0)
    palmar = np.clip((np.einsum("ij,ij->i", normals, pad) + 0.2) / 0.6, 0.0, 1.0)
    return palmar, np.clip(nail, 0.0, 1.0)


def _crease_weights(layer: ManoLayer) -> np.ndarray:
    """Per-vertex crease darkness in [0, 1] from the rest pose: a band around each finger joint
    (across the bone, ~2.5 mm wide), strongest on the palmar side (flexion creases), weaker on the
    back (knuckle wrinkles)."""
    from hand_object_pose.synthetic.standin_hand import finger_frame

    template = layer.mano.v_template.numpy().astype(np.float64)
    joints = layer.mano.J_regressor.numpy() @ template
    weights = layer.mano.lbs_weights.numpy()
    crease = np.zeros(len(template))
    for name, digit_joints in MANO_JOINTS.items():
        pad = finger_frame(name)[2]
        for k, joint in enumerate(digit_joints):
            child = digit_joints[k + 1] if k + 1 < len(digit_joints) else None
            parent = digit_joints[k - 1] if k > 0 else 0
            if name == "thumb" and k == 0:
                continue
            bone = _unit(joints[child] - joints[joint]) if child is not None else _unit(joints[joint] - joints[parent])
            rel = template - joints[joint]
            near = np.isin(weights.argmax(axis=1), [joint, parent]) & (np.linalg.norm(rel, axis=1) < 0.02)
            band = np.exp(-((rel @ bone) / 0.0025) ** 2)
            palmar = np.clip(0.5 + 0.5 * (rel @ pad) / (np.linalg.norm(rel, axis=1) + 1e-9), 0, 1)
            crease = np.maximum(crease, near * band * (0.15 + 0.85 * palmar ** 2))
    return crease


def _palm_smoothers(layer: ManoLayer) -> tuple:
    """((ids (B,), averaging (B, 778)) of the back of the stand-in's palm, the same of its palmar side): each
    face's vertices and a row-normalised averaging over each one's mesh neighbours and itself; the same for
    both sides (the left hand's faces are the right's, reversed). The palm: vertices the wrist joint moves
    most; its back: those whose rest-pose normal faces the dorsal side (model -z), the palmar side the others."""
    faces = layer.faces.numpy()
    count = len(layer.mano.v_template)
    adjacency = np.eye(count, dtype=np.float32)
    for a, b in ((0, 1), (1, 2), (2, 0)):
        adjacency[faces[:, a], faces[:, b]] = 1.0
        adjacency[faces[:, b], faces[:, a]] = 1.0
    rest_normals = vertex_normals(layer.mano.v_template, layer.faces).numpy()
    on_palm = layer.mano.lbs_weights.numpy().argmax(axis=1) == 0
    smoothers = []
    for face in (on_palm & (rest_normals[:, 2] < 0), on_palm & (rest_normals[:, 2] >= 0)):
        ids = np.flatnonzero(face)
        rows = adjacency[ids]
        smoothers.append((ids, rows / rows.sum(axis=1, keepdims=True)))
    return tuple(smoothers)


def smooth_palm_normals(normals: np.ndarray, smoothers: tuple, iterations: int = 12) -> np.ndarray:
    """(778, 3) vertex normals of one stand-in hand with those of each face of the palm (`_palm_smoothers`: the
    back, then the palmar side) replaced by repeated neighbour averages, renormalised: the shading of a
    smooth palm.

    The stand-in's palm is lofted from the wrist ellipse to the four finger base rings, so both its faces
    carry four lengthwise lobes that, shaded, look like fingers running down the hand to the wrist (a hand
    detector trained on real photos then takes the wrist for the palm); a real hand's back is smooth up to
    the knuckles and its palm a soft pad, which the skin relief and the palm creases draw. Shading only:
    the mesh, its masks and depth do not change. Each face is averaged on its own, so the palm's edges keep
    their turn from one face to the other."""
    out = normals.copy()
    for ids, average in smoothers:
        for _ in range(iterations):
            mixed = average @ out
            out[ids] = mixed / np.maximum(np.linalg.norm(mixed, axis=1, keepdims=True), 1e-9)
    return out


def _join_arms(meshes: list, offsets: np.ndarray, normals: np.ndarray, colours: np.ndarray,
               blend_m: float = 0.025) -> None:
    """Shade each forearm's start like the hand it leaves (in place; `meshes` as in `render`, vertex
    `normals` and `colours` stacked in their order from `offsets`): arm vertices within `blend_m` of
    the hand take the nearest hand vertex's normal and colour, fading to their own with distance, so
    the wrist shows no step in brightness where the two meshes meet."""
    hands = {m[0]: (m[1], slice(start, start + len(m[1]))) for m, start in zip(meshes, offsets)
             if m[0] in ("right", "left")}
    for m, start in zip(meshes, offsets):
        side = m[0][:-len("_arm")] if m[0].endswith("_arm") else None
        if side not in hands:
            continue
        hand_vertices, hand = hands[side]
        # Only arm vertices within `blend_m` of the hand's bounding box, against the hand's vertices
        # within `blend_m` of theirs (the wrist end: a few dozen of each).
        lo, hi = hand_vertices.min(axis=0) - blend_m, hand_vertices.max(axis=0) + blend_m
        near = start + np.flatnonzero(np.all((m[1] > lo) & (m[1] < hi), axis=1))
        if not len(near):
            continue
        arm_points = m[1][near - start]
        lo, hi = arm_points.min(axis=0) - blend_m, arm_points.max(axis=0) + blend_m
        candidates = np.flatnonzero(np.all((hand_vertices > lo) & (hand_vertices < hi), axis=1))
        if not len(candidates):
            continue
        dist2 = ((arm_points[:, None, :] - hand_vertices[None, candidates, :]) ** 2).sum(axis=2)
        nearest = hand.start + candidates[dist2.argmin(axis=1)]
        weight = np.clip(1.0 - np.sqrt(dist2.min(axis=1)) / blend_m, 0.0, 1.0)[:, None]
        mixed = weight * normals[nearest] + (1 - weight) * normals[near]
        normals[near] = mixed / np.maximum(np.linalg.norm(mixed, axis=1, keepdims=True), 1e-9)
        colours[near] = weight * colours[nearest] + (1 - weight) * colours[near]


# Bones of the 21-joint skeleton (canonical order: wrist, then thumb, index, middle, ring, pinky from
# base to tip) and the palm's spokes and knuckle line, with the radius of flesh around each (metres).
_FINGER_BONES = [(4 * d + k, 4 * d + k + 1) for d in range(5) for k in range(1, 4)] + [(0, 1)]
_PALM_BONES = [(0, 5), (0, 9), (0, 13), (0, 17), (5, 9), (9, 13), (13, 17)]


def _hands_overlap(first: "HandSample", second: "HandSample", min_vertices: int = 15) -> bool:
    """Whether two placed hands pass through each other: at least `min_vertices` of either hand's
    vertices lie inside the other's flesh, taken as capsules around its finger bones (7 mm) and palm
    spokes (12 mm)."""
    def inside(joints, vertices):
        hit = np.zeros(len(vertices), bool)
        for bones, radius in ((_FINGER_BONES, 0.007), (_PALM_BONES, 0.012)):
            a = joints[[i for i, _ in bones]]
            b = joints[[j for _, j in bones]]
            ab = b - a
            t = np.clip(np.einsum("vbk,bk->vb", vertices[:, None, :] - a[None], ab) / np.einsum("bk,bk->b", ab, ab),
                        0.0, 1.0)
            closest = a[None] + t[..., None] * ab[None]
            hit |= (np.linalg.norm(vertices[:, None, :] - closest, axis=2) < radius).any(axis=1)
        return int(hit.sum())

    return (inside(first.joints_cam, second.vertices) >= min_vertices
            or inside(second.joints_cam, first.vertices) >= min_vertices)


def _hand_rotation_of(hand: "HandSample") -> np.ndarray:
    """Camera <- model rotation of a placed hand, from its MANO global orientation."""
    return np.asarray(axis_angle_to_matrix(hand.mano_pose[:3]), dtype=np.float64)


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """(H, W, 3) float: gradient, stripes or clutter rectangles, plus low-frequency noise."""
    yy, xx = np.mgrid[0:height, 0:width] / max(width, height)
    c0, c1 = rng.uniform(0.05, 0.95, 3), rng.uniform(0.05, 0.95, 3)
    kind = rng.integers(3)
    if kind == 0:
        angle = rng.uniform(0, np.pi)
        t = np.clip((np.cos(angle) * xx + np.sin(angle) * yy), 0, 1)[..., None]
        image = c0 * (1 - t) + c1 * t
    elif kind == 1:
        freq, angle = rng.uniform(4, 20), rng.uniform(0, np.pi)
        t = (np.sin(2 * np.pi * freq * (np.cos(angle) * xx + np.sin(angle) * yy)) > 0)[..., None]
        image = np.where(t, c0, c1)
    else:
        image = np.broadcast_to(c0, (height, width, 3)).copy()
        for _ in range(rng.integers(5, 15)):
            x0, y0 = rng.integers(0, width), rng.integers(0, height)
            w, h = rng.integers(width // 10, width // 2), rng.integers(height // 10, height // 2)
            image[y0:y0 + h, x0:x0 + w] = rng.uniform(0.05, 0.95, 3)
    # Low-frequency shading blobs, computed on a coarse grid and upsampled (cheap).
    coarse_y, coarse_x = np.mgrid[0:17, 0:17] / 16.0
    blobs = sum(np.sin(2 * np.pi * (rng.uniform(1, 4) * coarse_x + rng.uniform(1, 4) * coarse_y) + rng.uniform(0, 6))
                for _ in range(3))
    blobs = cv2.resize(blobs, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(image * (1 + 0.08 * blobs[..., None]), 0, 1)


class SceneGenerator:
    """Renders random scenes; holds the two stand-in hand layers and the object set."""

    def __init__(self, config: SceneConfig | None = None, objects: Optional[list[ObjectModel]] = None,
                 hand_model_dir: Optional[str] = None, renderer: str = "auto"):
        """renderer: "gl" (moderngl/EGL), "torch" (the rasteriser) or "auto" (GL when it starts)."""
        self.config = config or SceneConfig()
        if renderer not in ("auto", "gl", "torch"):
            raise ValueError(f"renderer must be 'auto', 'gl' or 'torch', got {renderer!r}")
        width, height = self.config.image_size
        self.renderer, self._render_fn = make_renderer((height, width), prefer_gl=renderer != "torch")
        if renderer == "gl" and self.renderer != "gl":
            raise RuntimeError("renderer='gl' requested but no OpenGL (moderngl + EGL) context could be created")
        self.objects = objects if objects is not None else default_objects()
        self.layers = {side: ManoLayer(standin_hand_path(side, hand_model_dir), flat_hand_mean=True)
                       for side in ("right", "left")}
        self.faces = {side: layer.faces.numpy() for side, layer in self.layers.items()}
        # Vertices by the joint that moves them most: each digit's.
        dominant = self.layers["right"].mano.lbs_weights.argmax(dim=1).numpy()
        self.digit_vertices = {name: np.flatnonzero(np.isin(dominant, joints)) for name, joints in MANO_JOINTS.items()}
        self.palmar, self.nail = _skin_regions(self.layers["right"])
        self.crease = _crease_weights(self.layers["right"])
        self.palm_smoothers = _palm_smoothers(self.layers["right"])
        # Rest-frame point of every vertex (the left hand's vertices mirror the right's, same ids):
        # the renderer interpolates them per pixel for the skin relief (`look.skin_relief`).
        self.rest_points = self.layers["right"].mano.v_template.numpy().astype(np.float32)
        # Unit direction from the middle finger's base to the thumb's, model frame, per side.
        self.thumb_direction = {}
        for side, layer in self.layers.items():
            with torch.no_grad():
                rest = layer(torch.zeros(1, 3), torch.zeros(1, 45), torch.zeros(1, 10)).joints[0].numpy()
            self.thumb_direction[side] = _unit((rest[2] - rest[9]).astype(np.float64))

    def _pose_hand(self, side, rotation, hand_pose, betas, palm_target) -> tuple[HandSample, np.ndarray]:
        """Place the hand so that its palm point (mid wrist-middle knuckle) lands on ``palm_target``."""
        layer = self.layers[side]
        orient = matrix_to_axis_angle(rotation)
        args = (torch.tensor(orient[None], dtype=torch.float32), torch.tensor(hand_pose[None], dtype=torch.float32),
                torch.tensor(betas[None], dtype=torch.float32))
        with torch.no_grad():
            out = layer(*args)
        # The layer adds the translation after skinning: shifting the outputs is exact.
        palm = 0.5 * (out.joints[0, 0] + out.joints[0, 9]).numpy().astype(np.float64)
        transl = palm_target - palm
        joints = out.joints[0].numpy().astype(np.float64) + transl
        vertices = out.vertices[0].numpy().astype(np.float64) + transl
        hand = HandSample(side=side, joints_cam=joints,
                          joints_2d=np.zeros((21, 2)), joints_visible=np.zeros(21, bool),
                          mano_pose=np.concatenate([orient, hand_pose]), mano_shape=betas, mano_trans=transl,
                          vertices=vertices, style="")
        return hand, vertices

    def sample(self, seed: int, index: int) -> SceneSample:
        cfg = self.config
        rng = np.random.default_rng([seed, index])
        width, height = cfg.image_size
        f = rng.uniform(*cfg.focal_range) * width
        K = np.array([[f * rng.uniform(0.98, 1.02), 0, (width - 1) / 2 + rng.normal(0, 0.02 * width)],
                      [0, f, (height - 1) / 2 + rng.normal(0, 0.02 * height)], [0, 0, 1]])

        def point_in_view(distance, spread=0.2):
            u = width * rng.uniform(0.5 - spread, 0.5 + spread)
            v = height * rng.uniform(0.5 - spread, 0.5 + spread)
            return np.array([(u - K[0, 2]) * distance / K[0, 0], (v - K[1, 2]) * distance / K[1, 1], distance])

        centre = point_in_view(rng.uniform(*cfg.distance_range))
        obj = self.objects[rng.integers(len(self.objects))] if rng.random() < cfg.p_object else None
        sides = [s for s, p in (("right", cfg.p_right), ("left", cfg.p_left)) if rng.random() < p]
        if not sides:
            sides = [("right", "left")[rng.integers(2)]]

        meshes, objects, hands, arm_meshes = [], [], {}, []
        R_obj = None
        skin = looks.skin_albedo(rng)
        approach = None
        # Which side of the image each hand is on: a camera facing the person sees the right hand on
        # its left; a camera looking over the person's shoulder (or worn) sees it on its right.
        facing = rng.random() < 0.6
        lateral = {"right": -1.0 if facing else 1.0, "left": 1.0 if facing else -1.0}
        for k, side in enumerate(sides):
            grasping = obj is not None and (k == 0 or rng.random() < cfg.p_both_grasp)
            for _ in range(2):  # a second holding hand that would pass through the first lets go
                if grasping:
                    if k == 0:
                        # Shown to the camera while held: back or side of the hand towards the camera,
                        # never from behind the object (the hand would be hidden).
                        fingers, normal, arm = _presented_hand(rng, cfg, grasp=True, lateral=lateral[side])
                        rotation = _hand_rotation(normal, rng, fingers)
                        # Seen from its side, a holding hand mostly shows the thumb wrapped around the
                        # object (turn the hand the other way about its fingers if the thumb faces away).
                        thumb = rotation @ self.thumb_direction[side]
                        if abs(normal[2]) < 0.6 and thumb[2] > 0 and rng.random() < cfg.held_thumb_side:
                            towards = np.array([0.0, 0.0, -1.0])
                            n0 = _unit(towards - towards @ fingers * fingers)
                            flipped = _unit(2 * (normal @ n0) * n0 - normal)
                            if flipped[2] >= -0.3:
                                normal = flipped
                                rotation = _hand_rotation(normal, rng, fingers)
                        approach = -normal
                        R_obj = _held_object_rotation(rng, rotation, cfg.p_object_upright)
                        direction = approach
                    else:  # the second hand holds the object from its own side, mirroring the first
                        direction = np.array([lateral[side] * max(abs(approach[0]), 0.5), approach[1], approach[2]])
                        direction = _unit(_unit(direction) + rng.normal(0, 0.15, 3))
                        first_fingers = _hand_rotation_of(hands[sides[0]])[:, 1] * [-1.0, 1.0, 1.0]
                        rotation = _hand_rotation(-direction, rng, first_fingers + rng.normal(0, 0.2, 3))
                        arm = _arm_direction(rng, rotation[:, 1])
                    target = centre + direction * (obj.grasp_radius + 0.02)
                    # Aim for a firm grasp: each digit then stops where it meets the object.
                    style, curl = "grasp", rng.uniform(*cfg.grasp_curl)
                elif obj is None and k == 1 and rng.random() < cfg.p_hands_facing:
                    # Two hands interacting: palms towards each other, fingers roughly alike, close enough
                    # to overlap in the image.
                    first = hands[sides[0]]
                    first_rotation = _hand_rotation_of(first)
                    normal = first_rotation[:, 2]
                    rotation = _hand_rotation(-normal, rng, first_rotation[:, 1] + rng.normal(0, 0.4, 3))
                    arm = _arm_direction(rng, rotation[:, 1])
                    palm = 0.5 * (first.joints_cam[0] + first.joints_cam[9])
                    target = palm + normal * rng.uniform(0.04, 0.09) + rng.normal(0, 0.02, 3)
                    style, curl = None, 0.7
                else:
                    fingers, normal, arm = _presented_hand(rng, cfg, lateral=lateral[side] if len(sides) > 1 else 0.0)
                    rotation = _hand_rotation(normal, rng, fingers)
                    # Beside the object on the hand's own side, or apart from the other free hand.
                    if obj is not None:
                        beside = lateral[side] * rng.uniform(0.1, 0.2)
                    elif len(sides) > 1:
                        beside = lateral[side] * rng.uniform(0.05, 0.13)
                    else:
                        beside = 0.0
                    target = centre + rng.normal(0, 0.03, 3) * [1, 1, 0.5] + [beside, 0, 0]
                    style, curl = None, 0.7
                if obj is not None and R_obj is None:
                    R_obj = _random_rotation(rng)
                hand_pose, betas = sample_hand_pose(rng, style=style, grasp_curl=curl, side=side)
                hand, vertices = self._pose_hand(side, rotation, hand_pose, betas, target)
                if obj is not None:
                    away = direction if grasping else hand.joints_cam[9] - centre
                    vertices = self._close_on_object(hand, obj, R_obj, centre, away / np.linalg.norm(away),
                                                     close=grasping)
                if grasping and k == 1 and _hands_overlap(hands[sides[0]], hand):
                    # Two hands holding a small object would pass through each other: this one lets go
                    # and is placed free beside the object instead.
                    grasping = False
                    continue
                break
            hand.style = style or "random"
            hands[side] = hand
            hand_colours = self.skin_colors(rng, skin, vertices)
            meshes.append((side, vertices, self.faces[side], hand_colours))
            if cfg.forearm:
                hand.arm_direction = arm
                arm_meshes += self.arm_meshes(rng, hand, arm, skin, hand_colours)
        if obj is not None:
            if R_obj is None:
                R_obj = _random_rotation(rng)
            meshes.insert(0, ("object", obj.vertices @ R_obj.T + centre, obj.faces, self.object_colors(rng, obj)))
            objects.append(ObjectSample(obj.object_id, R_obj, centre.copy(), obj.corners(), dict(obj.symmetry)))
        meshes += arm_meshes

        look = self.sample_look(rng)
        rgb, depth, labels = self.render(K, meshes, look)
        for hand in hands.values():
            self._annotate_joints(hand, K, depth, labels)
            hand.mask_pixels = int((labels == LABEL_IDS[hand.side]).sum())
        hidden = [side for side, hand in hands.items()
                  if hand.mask_pixels < cfg.min_hand_pixels
                  or np.all((hand.joints_2d >= 0) & (hand.joints_2d < [width, height]), axis=1).sum()
                  < cfg.min_joints_in_image]
        if hidden:  # render again without them (and their arms), in the same light
            hands = {side: hand for side, hand in hands.items() if side not in hidden}
            meshes = [m for m in meshes if m[0] not in hidden and m[0] not in [f"{s}_arm" for s in hidden]]
            rgb, depth, labels = self.render(K, meshes, look)
            for hand in hands.values():
                self._annotate_joints(hand, K, depth, labels)
                hand.mask_pixels = int((labels == LABEL_IDS[hand.side]).sum())
        for o in objects:
            o.mask_pixels = int((labels == LABEL_IDS["object"]).sum())
        ordered = {s: hands[s] for s in ("right", "left") if s in hands}
        return SceneSample(rgb, depth, labels, K, ordered, objects)

    def arm_meshes(self, rng, hand: HandSample, direction: np.ndarray, skin: np.ndarray,
                   hand_colours: Optional[np.ndarray] = None) -> list:
        """[(label, vertices, faces, colours)]: the forearm of a placed hand along `direction` (unit,
        camera frame, from the wrist away from the fingers), and a sleeve over it (p_sleeve).

        The forearm starts inside the hand's wrist opening with its width, thickness and (given the
        hand's vertex colours (778, 3)) its back/palm-side skin colours, so the two join without a step."""
        rotation = _hand_rotation_of(hand)
        width_axis, fingers, normal = rotation[:, 0], rotation[:, 1], rotation[:, 2]
        # The hand's wrist opening: its vertices within 6 mm of the wrist joint along the fingers.
        near = np.abs((hand.vertices - hand.joints_cam[0]) @ fingers) < 0.006
        if near.sum() < 8:
            near = np.abs((hand.vertices - hand.joints_cam[0]) @ fingers) < 0.015
        centre = hand.vertices[near].mean(axis=0)
        rel = hand.vertices[near] - centre
        half_width = float(np.clip(np.percentile(np.abs(rel @ width_axis), 97), 0.02, 0.038))
        flatten = float(np.clip(np.percentile(np.abs(rel @ normal), 97) / half_width, 0.5, 0.95))
        start = centre + 0.008 * fingers  # inside the hand: no gap at the wrist
        vertices, faces, along = arms.forearm(start, direction, width_axis, half_width, flatten=flatten)
        label = f"{hand.side}_arm"
        if hand_colours is not None:
            palmar_side = rel @ normal > 0
            back = hand_colours[near][~palmar_side].mean(axis=0) if (~palmar_side).any() else skin
            front = hand_colours[near][palmar_side].mean(axis=0) if palmar_side.any() else skin
        else:
            back, front = skin, skin
        side = np.clip(0.5 + 0.5 * ((vertices - start) @ normal) / (half_width * flatten), 0, 1)[:, None]
        tone = back + side * (front - back)
        wave = np.sin(vertices @ rng.normal(0, 50, 3) + rng.uniform(0, 6))
        farther = np.clip((along[:, None] - 0.04) / 0.1, 0, 1)  # forearm skin a little darker than the wrist
        colours = np.clip(tone * (1 + 0.04 * wave[:, None]) * (1 - 0.06 * farther), 0, 1)
        out = [(label, vertices, faces, colours)]
        if rng.random() < self.config.p_sleeve:
            sv, sf = arms.sleeve(start, direction, width_axis, half_width, rng.uniform(0.04, 0.16))
            cloth = looks._jitter(rng, looks._THINGS[rng.integers(len(looks._THINGS))], 0.15)
            stripes = np.sin((sv @ rng.normal(0, 1, 3)) * rng.uniform(150, 400)) > 0.4 if rng.random() < 0.3 else None
            colours = np.tile(cloth, (len(sv), 1))
            if stripes is not None:
                colours[stripes] = cloth * rng.uniform(0.3, 0.7)
            out.append((label, sv, sf, colours))
        return out

    def _close_on_object(self, hand: HandSample, obj: ObjectModel, rotation: np.ndarray, centre: np.ndarray,
                         direction: np.ndarray, close: bool, tolerance: float = 0.002) -> np.ndarray:
        """Make the hand touch the object instead of cutting into it (judged on the object's solids).

        The hand slides out along ``direction`` until its open pose clears the object; with ``close``
        each digit then bends along its sampled pose only as far as it stays out (within
        ``tolerance``), else the hand keeps its pose and only slides out. Updates the hand in place
        (translation is exact) and returns its vertices.
        """
        layer = self.layers[hand.side]
        fractions = np.linspace(0.0, 1.0, 13) if close else np.ones(1)
        pose = hand.mano_pose[3:].reshape(15, 3)

        def forward(hand_pose, transl):
            batch = len(hand_pose)
            args = [np.repeat(hand.mano_pose[None, :3], batch, 0), hand_pose.reshape(batch, 45),
                    np.repeat(hand.mano_shape[None], batch, 0), np.repeat(transl[None], batch, 0)]
            with torch.no_grad():
                out = layer(*(torch.tensor(a, dtype=torch.float32) for a in args))
            return out.vertices.numpy().astype(np.float64), out.joints.numpy().astype(np.float64)

        def depth(vertices):
            return obj.penetration(((vertices - centre) @ rotation).reshape(-1, 3)).reshape(vertices.shape[:-1])

        def slide_out(vertices, transl):
            for _ in range(20):
                deepest = depth(vertices).max()
                if deepest <= tolerance:
                    break
                shift = direction * (deepest + 0.5 * tolerance)
                transl, vertices = transl + shift, vertices + shift
            return vertices, transl

        vertices, _ = forward(pose[None] * fractions[:, None, None], hand.mano_trans)
        _, transl = slide_out(vertices[0], hand.mano_trans)
        vertices = vertices + (transl - hand.mano_trans)
        if close:
            scale = np.ones(15)
            all_depth = depth(vertices)
            for name, joints in MANO_JOINTS.items():
                cuts = all_depth[:, self.digit_vertices[name]].max(axis=1) > tolerance
                first_cut = int(np.argmax(cuts)) if cuts.any() else len(fractions)
                scale[np.asarray(joints) - 1] = fractions[max(first_cut - 1, 0)]
            pose = pose * scale[:, None]
        vertices, joints = forward(pose[None], transl)
        # Digits interact a little through the palm's blended skinning: a last check on the whole hand.
        vertices, new_transl = slide_out(vertices[0], transl)
        hand.mano_pose = np.concatenate([hand.mano_pose[:3], pose.reshape(45)])
        hand.mano_trans, hand.vertices, hand.joints_cam = new_transl, vertices, joints[0] + (new_transl - transl)
        return hand.vertices

    def skin_colors(self, rng, skin, vertices) -> np.ndarray:
        """(778, 3) vertex albedos of one hand: `skin` (3,) on the back, lighter and pinker palms,
        pale nails, darker creases at the finger joints, redder knuckles and fingertips, and
        low-frequency blotches (cheap texture)."""
        palm_tone = skin + rng.uniform(0.25, 0.4) * (np.array([0.9, 0.68, 0.6]) - skin)
        nail_tone = skin + rng.uniform(0.6, 0.8) * (np.array([1.0, 0.88, 0.86]) - skin)
        colors = skin + self.palmar[:, None] * (palm_tone - skin)
        colors = colors + self.nail[:, None] * (nail_tone - colors)
        colors = colors * (1 - rng.uniform(0.06, 0.14) * self.crease[:, None] * np.array([1.0, 1.1, 1.1]))
        redness = rng.uniform(0.0, 0.06)
        colors = colors * (1 + redness * self.crease[:, None] * np.array([1.0, -0.5, -0.5]))
        phase = rng.uniform(0, 2 * np.pi, 3)
        wave = np.sin(vertices @ rng.normal(0, 60, (3, 3)) + phase).mean(axis=1, keepdims=True)
        return np.clip(colors * (1 + 0.07 * wave), 0, 1)

    @staticmethod
    def object_colors(rng, obj: ObjectModel) -> np.ndarray:
        """(V, 3) vertex colours of an everyday-looking object: a body colour from everyday
        materials (paper, plastic, glass, ceramic) with a printed label band (bottles, cans) or
        stripes, by height along the object's axis (object frame z)."""
        palette = looks._THINGS
        base = looks._jitter(rng, palette[rng.integers(len(palette))], 0.12)
        second = looks._jitter(rng, palette[rng.integers(len(palette))], 0.12)
        z = obj.vertices[:, 2]
        lo, hi = z.min(), z.max()
        t = (z - lo) / max(hi - lo, 1e-9)
        if rng.random() < 0.6:  # a label band
            a = rng.uniform(0.15, 0.45)
            bands = ((t > a) & (t < a + rng.uniform(0.2, 0.45)))[:, None]
        else:
            bands = (np.sin(z * rng.uniform(30, 120) + rng.uniform(0, 6)) > rng.uniform(-0.3, 0.8))[:, None]
        return np.where(bands, second, base)

    def sample_look(self, rng) -> dict:
        """Lighting, background, shadow, camera effects and sensor noise of one scene.

        light: camera-frame direction from the surface to the key light; ambient: share of light
        that does not depend on it; sky/ground: RGB environment light from above/below (camera y
        down); shadow: the key light's shadow of the hands, arms and object on the background
        (offset and blur in pixels, strength in [0, 1]); camera: `look.sample_camera`."""
        width, height = self.config.image_size
        light = np.array([rng.uniform(-1, 1), rng.uniform(-1.2, 0.6), -rng.uniform(0.3, 1.5)])
        warmth = rng.uniform(-0.08, 0.08)
        return {
            "light": light,
            "ambient": rng.uniform(0.3, 0.65),
            # Darkening where ambient occlusion is full: weak, as skin scatters light into its folds.
            "occlusion": rng.uniform(0.08, 0.18),
            "sky": np.array([1 + warmth, 1.0, 1 - warmth]) * rng.uniform(0.95, 1.15),
            "ground": looks._jitter(rng, [0.8, 0.72, 0.62], 0.1) * rng.uniform(0.65, 0.9),
            "background": looks.background_image(rng, width, height),
            "shadow": {"offset_px": -light[:2] / np.linalg.norm(light[:2]) * rng.uniform(0.01, 0.06) * width,
                       "blur_px": rng.uniform(0.006, 0.03) * width, "strength": rng.uniform(0.15, 0.45)},
            "camera": looks.sample_camera(rng),
            "exposure": np.float32(rng.uniform(0.8, 1.2)),
            "noise": rng.standard_normal((height, width, 3), dtype=np.float32) * np.float32(self.config.noise_std),
            # Drawn last, so that the rest of a scene's look stays as before they existed.
            "relief": rng.uniform(0.6, 1.4),        # skin relief (knuckles, tendons) lit by the key light
            "crease": rng.uniform(0.25, 0.5),       # darkening in the creases
            # Darkening beside a nearer surface: weak, as the per-vertex ambient occlusion already darkens
            # between fingers and at contacts (and skin scatters light into its folds).
            "edge_occlusion": rng.uniform(0.1, 0.18),
        }

    def render(self, K, meshes, look):
        """Render `meshes` [(label name, vertices (V, 3) metres in the camera frame, faces (F, 3), vertex
        colours (V, 3) in [0, 1])] with intrinsics K (3, 3) and a `sample_look` dict. Returns
        (rgb (H, W, 3) uint8, depth (H, W) float32 metres with 0 for nothing, labels (H, W) uint8 LABEL_IDS).
        Public so that other scene builders (`synthetic.sequence`) render exactly like the generator.

        The palms of the stand-in hands are shaded with smoothed normals (`smooth_palm_normals`); vertex
        colours are lit by the environment (sky/ground by each vertex normal) before the
        renderer adds the key light; each forearm's start is shaded like the wrist it leaves; the
        hands get their skin relief (knuckles, tendons, creases: `look.skin_relief`, from the rest-frame
        points the renderer interpolates) and every surface darkens beside a nearer one
        (`look.edge_occlusion`); the hands', arms' and object's shadow falls on the background; the
        camera effects come last (colours only: depth and labels are exact)."""
        width, height = self.config.image_size
        if meshes:
            offsets = np.cumsum([0] + [len(m[1]) for m in meshes])
            faces = np.vstack([m[2] + o for m, o in zip(meshes, offsets)])
            vertices = np.vstack([m[1] for m in meshes])
            colours = np.vstack([m[3] for m in meshes])
            normals = vertex_normals(torch.as_tensor(vertices, dtype=torch.float32), torch.as_tensor(faces)).numpy()
            for m, start in zip(meshes, offsets):  # the palms of the stand-in hands shaded smooth
                if m[0] in ("right", "left") and len(m[1]) == len(self.rest_points):
                    span = slice(start, start + len(m[1]))
                    normals[span] = smooth_palm_normals(normals[span], self.palm_smoothers)
            if "sky" in look:
                _join_arms(meshes, offsets, normals, colours)
                colours = colours * looks.hemisphere_tint(normals, look["sky"], look["ground"])
                # Ambient occlusion on the hands (between fingers, under curled fingers, at contacts
                # with the object), against the hands' and object's vertices (every 3rd; the forearm
                # joined to the wrist would darken it).
                occluders = np.vstack([m[1][::3] for m in meshes if not m[0].endswith("_arm")])
                for m, start in zip(meshes, offsets):
                    if m[0] in ("right", "left"):
                        span = slice(start, start + len(m[1]))
                        ao = looks.ambient_occlusion(vertices[span], normals[span], occluders)
                        colours[span] = colours[span] * (1 - look.get("occlusion", 0.6) * ao)[:, None]
            face_label = np.concatenate([np.full(len(m[2]), LABEL_IDS[m[0]], np.uint8) for m in meshes])
            relief = "relief" in look
            # Per vertex: its rest-frame point and 1 on a stand-in hand mesh, 0 elsewhere (arms, object;
            # other scene builders may label a forearm with its hand's side).
            rest = (np.vstack([np.hstack([self.rest_points, np.ones((len(m[1]), 1), np.float32)])
                               if m[0] in ("right", "left") and len(m[1]) == len(self.rest_points)
                               else np.zeros((len(m[1]), 4), np.float32) for m in meshes]) if relief else None)
            out = self._render_fn(vertices, faces, K, vertex_colors=colours.astype(np.float32),
                                  light_direction=look["light"], ambient=look["ambient"],
                                  background=look["background"], normals=normals, attributes=rest)
            face_index = out.face_index.numpy()
            labels = np.where(face_index >= 0, face_label[np.maximum(face_index, 0)], 0).astype(np.uint8)
            image, depth = out.rgb.numpy(), out.depth.numpy().astype(np.float32)
            if relief:
                attributes = out.attributes.numpy()
                on_hand = attributes[..., 3] > 0.5
                image = looks.skin_relief(image, on_hand, attributes[..., :3], depth, K[1, 1], look["light"],
                                          look["ambient"], look["relief"], look["crease"])
                image = looks.edge_occlusion(image, depth, labels > 0, K[1, 1], look["edge_occlusion"])
        else:  # every hand hidden and no object: background only
            image, depth = look["background"], np.zeros((height, width), np.float32)
            labels = np.zeros((height, width), np.uint8)
        if "camera" not in look:  # a look from before issue 14: plain exposure and noise
            rgb = image * look["exposure"] + look["noise"]
            return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8), depth, labels
        shadow = look["shadow"]
        image = looks.cast_shadow(image, labels > 0, labels == 0, shadow["offset_px"], shadow["blur_px"],
                                  shadow["strength"])
        return looks.apply_camera(image, look["camera"], look["exposure"], look["noise"]), depth, labels

    @staticmethod
    def _annotate_joints(hand: HandSample, K, depth, labels):
        p = hand.joints_cam
        uv = project_points(p, K)
        hand.joints_2d = uv
        height, width = depth.shape
        col, row = np.round(uv[:, 0]).astype(int), np.round(uv[:, 1]).astype(int)
        inside = (p[:, 2] > 0) & (col >= 0) & (col < width) & (row >= 0) & (row < height)
        col, row = np.clip(col, 0, width - 1), np.clip(row, 0, height - 1)
        # Visible: the surface seen at the joint's pixel is this hand's, and not far in front of the
        # joint (joints lie ~1 cm under the skin).
        own = labels[row, col] == LABEL_IDS[hand.side]
        near = depth[row, col] > p[:, 2] - 0.025
        hand.joints_visible = inside & own & near
