"""Upright stand-in hands with a forearm, as a webcam sees a raised hand (detector test images).

A hand detector trained on real photos (MediaPipe's palm detector, `inference.hand_detection`)
believes few of the scene generator's free-floating hands, but finds most stand-in hands that are
upright, seen from the front or the back, at webcam distance, with a skin-coloured forearm below
the wrist (shared/reference/hand-detector.md: 35/40 with, 24/40 without). This module renders
exactly such frames with the scene generator's hands, skin, lighting and renderer; it adds only the
forearm (a tapered tube from the wrist away from the fingers) and the placement.

All positions are in metres in the OpenCV camera frame; the hand's labels are the generator's
(`HandSample`: joints in canonical order, pixels in the full image).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from hand_object_pose.geometry.procedural_objects import lathe
from hand_object_pose.synthetic.poses import sample_hand_pose
from hand_object_pose.synthetic.scene import SKIN_TONES, SceneConfig, SceneGenerator


@dataclass(frozen=True)
class UprightConfig:
    image_size: tuple[int, int] = (640, 480)       # (width, height) pixels
    focal_range: tuple[float, float] = (0.8, 1.0)  # focal length / image width (a webcam's ~60-70 deg)
    distance_range: tuple[float, float] = (0.4, 0.6)  # palm distance, metres
    tilt_deg: float = 20.0        # in-plane roll of the fingers away from straight up, uniform +-
    turn_deg: float = 25.0        # out-of-plane turn (about the vertical and horizontal axes), uniform +-
    p_back: float = 0.3           # probability of showing the back of the hand instead of the palm
    styles: tuple[str, ...] = ("open", "relaxed")
    forearm: bool = True
    forearm_length_m: float = 0.28
    wrist_radius_m: float = 0.028
    elbow_radius_m: float = 0.036


@dataclass
class UprightFrame:
    rgb: np.ndarray          # (H, W, 3) uint8
    K: np.ndarray            # (3, 3)
    hands: dict              # side -> HandSample (canonical joints, 2D pixels)


def hand_rotation(palm_normal: np.ndarray, fingers: np.ndarray) -> np.ndarray:
    """(3, 3) camera <- stand-in hand model rotation: model +z (the palm normal) along `palm_normal`,
    model +y (the fingers) along `fingers` made perpendicular to it (camera frame, any lengths)."""
    z = np.asarray(palm_normal, np.float64) / np.linalg.norm(palm_normal)
    y = np.asarray(fingers, np.float64) - np.dot(fingers, z) * z
    y /= np.linalg.norm(y)
    return np.stack([np.cross(y, z), y, z], axis=1)


def forearm_mesh(wrist: np.ndarray, direction: np.ndarray, length_m: float, wrist_radius_m: float,
                 elbow_radius_m: float, segments: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """A closed, slightly flattened tube from `wrist` (3,) along unit `direction` (3,), metres.

    Returns (vertices (V, 3), faces (F, 3)). Its width is across the palm's plane; the caller orients it.
    """
    z = np.linspace(0.0, length_m, 8)
    r = wrist_radius_m + (elbow_radius_m - wrist_radius_m) * np.sqrt(z / length_m)
    profile = np.concatenate([[(0.0, 0.0)], np.stack([r, z], axis=1), [(0.0, length_m)]])
    vertices, faces = lathe(profile, segments)
    direction = np.asarray(direction, np.float64) / np.linalg.norm(direction)
    helper = np.array([1.0, 0.0, 0.0]) if abs(direction[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, direction)
    x /= np.linalg.norm(x)
    y = np.cross(direction, x)
    vertices = vertices * [1.0, 0.75, 1.0]  # flatter than round, as a wrist is
    return wrist + vertices @ np.stack([x, y, direction]), faces


def render_upright_hand(generator: SceneGenerator, rng: np.random.Generator, config: UprightConfig,
                        sides: Sequence[str] = ("right",)) -> UprightFrame:
    """One frame with one or two upright hands (side by side), each with its forearm when configured.

    `generator` must have been made with `SceneConfig(image_size=config.image_size)`."""
    width, height = config.image_size
    f = rng.uniform(*config.focal_range) * width
    K = np.array([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])
    skin = np.clip(SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.9, 1.1, 3), 0, 1)
    distance = rng.uniform(*config.distance_range)
    meshes, hands = [], {}
    for k, side in enumerate(sides):
        roll = np.radians(rng.uniform(-config.tilt_deg, config.tilt_deg))
        yaw, pitch = np.radians(rng.uniform(-config.turn_deg, config.turn_deg, 2))
        fingers = np.array([np.sin(roll), -np.cos(roll), 0.0])
        facing = -1.0 if rng.random() >= config.p_back else 1.0  # palm normal towards (-z) or away from the camera
        normal = np.array([np.sin(yaw), np.sin(pitch), facing])
        rotation = hand_rotation(normal, fingers)
        hand_pose, betas = sample_hand_pose(rng, style=config.styles[rng.integers(len(config.styles))], side=side)
        offset_x = 0.0 if len(sides) == 1 else (0.11 if side == "left" else -0.11)  # camera x; right hand on the image's left
        target = np.array([offset_x + rng.normal(0.0, 0.03), rng.normal(0.0, 0.02) + 0.01, distance])
        hand, vertices = generator._pose_hand(side, rotation, hand_pose, betas, target)
        hand.style = "upright"
        hands[side] = hand
        meshes.append((side, vertices, generator.faces[side], generator.skin_colors(rng, skin, vertices)))
        if config.forearm:
            along = -rotation[:, 1]  # away from the fingers
            wrist = hand.joints_cam[0] - 0.01 * along
            arm_v, arm_f = forearm_mesh(wrist, along, config.forearm_length_m, config.wrist_radius_m,
                                        config.elbow_radius_m)
            shade = 1.0 + 0.05 * np.sin(arm_v @ rng.normal(0.0, 40.0, 3))  # low-frequency tone variation
            arm_colors = np.clip(skin[None, :] * shade[:, None], 0, 1)
            meshes.append((side, arm_v, arm_f, arm_colors))
    look = generator.sample_look(rng)
    rgb, depth, labels = generator.render(K, meshes, look)
    for hand in hands.values():
        generator._annotate_joints(hand, K, depth, labels)
    return UprightFrame(rgb=rgb, K=K, hands={s: hands[s] for s in ("right", "left") if s in hands})


def upright_frames(count: int, seed: int = 0, config: Optional[UprightConfig] = None,
                   sides: Sequence[str] | None = None, renderer: str = "auto") -> list[UprightFrame]:
    """`count` frames; `sides` None alternates one right and one left hand per frame."""
    config = config or UprightConfig()
    generator = SceneGenerator(SceneConfig(image_size=config.image_size), renderer=renderer)
    frames = []
    for index in range(count):
        rng = np.random.default_rng([seed, index])
        frame_sides = sides if sides is not None else (("right",) if index % 2 == 0 else ("left",))
        frames.append(render_upright_hand(generator, rng, config, frame_sides))
    return frames
