"""Smooth synthetic sequences: one scene of `scene.SceneGenerator` set in slow motion (the demo's camera stream).

The first frame is a random scene with two stand-in hands (NOT MANO) and an object held by the right
hand. Over the sequence the whole hand-object group rotates and sways slowly about the object's
centre (a rigid motion, so the grasp stays intact) while the fingers of both hands open and close
(the MANO-format finger pose scaled towards the flat hand and back). Lighting, background, skin and
object colours stay fixed, so consecutive frames differ only by the motion.

Ground truth per frame, OpenCV camera frame, metres: joints (21, 3) and their projections (21, 2)
pixels per side (canonical wrist-first order), object rotation (camera <- object) and translation.

On disk (`render_sequence`, `load_sequence`): `<dir>/rgb_000000.png`, `<dir>/depth_000000.png`
(uint16 millimetres, 0 = nothing) and `<dir>/sequence.json` (config, K, ground truth per frame).
Rendering is slower than real time, so the demo renders once and the camera node replays the files.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import torch

from hand_object_pose.geometry.camera import project_points
from hand_object_pose.synthetic.look import skin_albedo
from hand_object_pose.synthetic.scene import GENERATOR_VERSION, SceneConfig, SceneGenerator

SEQUENCE_FILE = "sequence.json"


@dataclass
class SequenceConfig:
    num_frames: int = 90
    image_size: tuple = (640, 480)       # (width, height) pixels
    seed: int = 0
    scene_index: int = 0                 # which scene of SceneGenerator(seed) starts the sequence
    focal_ratio: float = 0.9             # focal length / image width
    distance_m: tuple = (0.42, 0.48)     # object distance range of the first frame, metres
    turn_deg: float = 25.0               # largest rotation of the hand-object group, degrees
    sway_m: float = 0.03                 # largest sideways shift of the group, metres
    finger_open: float = 0.5             # fraction of the grasp's finger pose removed at the most open
    cycles: float = 1.0                  # motion periods over the sequence

    def validate(self) -> "SequenceConfig":
        if int(self.num_frames) < 1:
            raise ValueError(f"SequenceConfig.num_frames={self.num_frames!r} is invalid: expected >= 1")
        width, height = self.image_size
        if int(width) < 32 or int(height) < 32:
            raise ValueError(f"SequenceConfig.image_size={self.image_size!r} is invalid: "
                             f"expected (width, height) >= 32")
        if not 0.0 <= self.finger_open <= 1.0:
            raise ValueError(f"SequenceConfig.finger_open={self.finger_open!r} is invalid: expected 0 <= value <= 1")
        return self


@dataclass
class FrameTruth:
    """Ground truth of one frame (camera frame, metres, pixels)."""

    index: int
    hands: dict          # side -> {"joints_cam": (21, 3), "joints_2d": (21, 2)}
    objects: list        # [{"object_id", "rotation" (3, 3), "translation" (3,), "symmetry"}]

    def to_json(self) -> dict:
        return {"index": self.index,
                "hands": {side: {k: np.asarray(v).round(6).tolist() for k, v in hand.items()}
                          for side, hand in self.hands.items()},
                "objects": [{**o, "rotation": np.asarray(o["rotation"]).round(8).tolist(),
                             "translation": np.asarray(o["translation"]).round(6).tolist()} for o in self.objects]}

    @staticmethod
    def from_json(data: dict) -> "FrameTruth":
        hands = {side: {k: np.asarray(v, np.float64) for k, v in hand.items()} for side, hand in data["hands"].items()}
        objects = [{**o, "rotation": np.asarray(o["rotation"], np.float64),
                    "translation": np.asarray(o["translation"], np.float64)} for o in data["objects"]]
        return FrameTruth(int(data["index"]), hands, objects)


@dataclass
class SequenceFrame:
    rgb: np.ndarray       # (H, W, 3) uint8
    depth: np.ndarray     # (H, W) float32 metres, 0 = nothing
    K: np.ndarray         # (3, 3)
    truth: FrameTruth


def _rotation(axis: str, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


class SequenceRenderer:
    """Renders the frames of one `SequenceConfig` (deterministic in the config)."""

    def __init__(self, config: SequenceConfig | None = None, renderer: str = "auto"):
        self.config = config = (config or SequenceConfig()).validate()
        self.scene_config = SceneConfig(
            image_size=tuple(int(v) for v in config.image_size),
            focal_range=(config.focal_ratio, config.focal_ratio), distance_range=tuple(config.distance_m),
            p_object=1.0, p_right=1.0, p_left=1.0, p_both_grasp=0.0)
        self.generator = SceneGenerator(self.scene_config, renderer=renderer)
        start = self.generator.sample(config.seed, config.scene_index)
        self.K = start.K
        self.start = start
        self.pivot = start.objects[0].translation.copy()
        self.object_model = next(o for o in self.generator.objects if o.object_id == start.objects[0].object_id)
        # Fixed appearance: colours per vertex from the first frame, one lighting/background draw.
        rng = np.random.default_rng([config.seed, config.scene_index, 1])
        skin = skin_albedo(rng)
        gen = self.generator
        self.colours = {side: gen.skin_colors(rng, skin, hand.vertices) for side, hand in start.hands.items()}
        self.object_colours = gen.object_colors(rng, self.object_model)
        # The forearms (and sleeves) of the first frame, moved rigidly with the group.
        self.arm_meshes = [mesh for hand in start.hands.values() if hand.arm_direction is not None
                           for mesh in gen.arm_meshes(rng, hand, hand.arm_direction, skin, self.colours[hand.side])]
        # One draw of lighting, background, exposure and noise for every frame (only the motion changes).
        self.look = gen.sample_look(np.random.default_rng([config.seed, config.scene_index, 2]))

    def motion(self, index: int) -> tuple[np.ndarray, np.ndarray, float]:
        """(R (3, 3), shift (3,) metres, finger scale) of frame `index`: x' = R (x - pivot) + pivot + shift."""
        cfg = self.config
        phase = 2 * np.pi * cfg.cycles * index / max(cfg.num_frames, 1)
        turn = np.radians(cfg.turn_deg)
        R = _rotation("y", turn * np.sin(phase)) @ _rotation("x", 0.4 * turn * np.sin(2 * phase))
        shift = cfg.sway_m * np.array([np.sin(phase), 0.5 * np.sin(2 * phase), 0.0])
        finger_scale = 1.0 - cfg.finger_open * (0.5 - 0.5 * np.cos(phase))
        return R, shift, finger_scale

    def frame(self, index: int) -> SequenceFrame:
        if not 0 <= index < self.config.num_frames:
            raise IndexError(f"frame {index} is outside the sequence of {self.config.num_frames} frames")
        R, shift, scale = self.motion(index)

        def moved(points):
            return (np.asarray(points) - self.pivot) @ R.T + self.pivot + shift

        meshes, hands = [], {}
        for side, hand in self.start.hands.items():
            layer = self.generator.layers[side]
            args = (hand.mano_pose[None, :3], hand.mano_pose[None, 3:] * scale, hand.mano_shape[None],
                    hand.mano_trans[None])
            with torch.no_grad():
                out = layer(*(torch.tensor(a, dtype=torch.float32) for a in args))
            joints = moved(out.joints[0].numpy().astype(np.float64))
            vertices = moved(out.vertices[0].numpy().astype(np.float64))
            hands[side] = {"joints_cam": joints, "joints_2d": project_points(joints, self.K)}
            meshes.append((side, vertices, self.generator.faces[side], self.colours[side]))
        start_object = self.start.objects[0]
        rotation = R @ start_object.rotation
        translation = moved(start_object.translation)
        meshes.insert(0, ("object", self.object_model.vertices @ rotation.T + translation, self.object_model.faces,
                          self.object_colours))
        meshes += [(label, moved(vertices), faces, colours) for label, vertices, faces, colours in self.arm_meshes]
        objects = [{"object_id": start_object.object_id, "rotation": rotation, "translation": translation,
                    "symmetry": dict(start_object.symmetry)}]
        rgb, depth, _ = self.generator.render(self.K, meshes, self.look)
        return SequenceFrame(rgb, depth, self.K.copy(), FrameTruth(index, hands, objects))

    def frames(self) -> Iterator[SequenceFrame]:
        for index in range(self.config.num_frames):
            yield self.frame(index)


def _config_json(config: SequenceConfig) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(config)))


def render_sequence(config: SequenceConfig, directory, renderer: str = "auto", progress=None) -> Path:
    """Render every frame of `config` into `directory` (see module docstring); returns sequence.json's path.

    A directory that already holds the same sequence (same config and `scene.GENERATOR_VERSION`, all
    files present) is reused.
    `progress(index, total)` is called after each frame when given.
    """
    directory = Path(directory)
    index_path = directory / SEQUENCE_FILE
    if index_path.is_file():
        cached = json.loads(index_path.read_text())
        if cached.get("config") == _config_json(config) and cached.get("generator") == GENERATOR_VERSION and all(
                (directory / f"rgb_{i:06d}.png").is_file() for i in range(config.num_frames)):
            return index_path
    directory.mkdir(parents=True, exist_ok=True)
    sequence = SequenceRenderer(config, renderer)
    truths = []
    for frame in sequence.frames():
        i = frame.truth.index
        cv2.imwrite(str(directory / f"rgb_{i:06d}.png"), cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR))
        depth_mm = np.clip(np.round(frame.depth * 1000.0), 0, 65535).astype(np.uint16)
        cv2.imwrite(str(directory / f"depth_{i:06d}.png"), depth_mm)
        truths.append(frame.truth.to_json())
        if progress is not None:
            progress(i + 1, config.num_frames)
    index_path.write_text(json.dumps({"config": _config_json(config), "generator": GENERATOR_VERSION,
                                      "K": sequence.K.tolist(),
                                      "object_corners_rest": sequence.start.objects[0].corners_rest.tolist(),
                                      "frames": truths}))
    return index_path


@dataclass
class LoadedSequence:
    directory: Path
    K: np.ndarray               # (3, 3)
    truths: list                # [FrameTruth]
    config: dict

    def __len__(self) -> int:
        return len(self.truths)

    def rgb(self, index: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB of frame `index`."""
        image = cv2.imread(str(self.directory / f"rgb_{index:06d}.png"), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"{self.directory / f'rgb_{index:06d}.png'} is missing or unreadable")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def depth_mm(self, index: int) -> np.ndarray:
        """(H, W) uint16 millimetres of frame `index` (0 = nothing)."""
        depth = cv2.imread(str(self.directory / f"depth_{index:06d}.png"), cv2.IMREAD_UNCHANGED)
        if depth is None or depth.dtype != np.uint16:
            raise FileNotFoundError(f"{self.directory / f'depth_{index:06d}.png'} is missing or not 16-bit")
        return depth


def load_sequence(directory) -> LoadedSequence:
    """Read a directory written by `render_sequence`."""
    directory = Path(directory)
    path = directory / SEQUENCE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: render the sequence first (render_sequence)")
    data = json.loads(path.read_text())
    return LoadedSequence(directory, np.asarray(data["K"], np.float64),
                          [FrameTruth.from_json(f) for f in data["frames"]], data["config"])


__all__ = ["SequenceConfig", "SequenceRenderer", "SequenceFrame", "FrameTruth", "render_sequence", "load_sequence",
           "LoadedSequence"]
