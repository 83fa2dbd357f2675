"""The synthetic hands-and-objects dataset on disk, written from `synthetic.scene.SceneSample`s and
read back as `Sample`s like every real dataset.

Layout under `root`:
  meta.json                 {"format": "hand_object_pose-synthetic-v1", "seed", "count", "image_size",
                             "stand_in_hand": true, "objects": {id: {"corners_rest", "symmetry"}},
                             "generator": `synthetic.scene.GENERATOR_VERSION` (absent in folders written before it)}
  rgb/NNNNNN.jpg            colour image (JPEG quality 95, 4:4:4 chroma)
  depth/NNNNNN.png          uint16 depth in millimetres (0 = nothing)
  object_mask/NNNNNN.png    uint8, 255 where the object is visible
  instance/NNNNNN.png       uint8 instance labels: 0 background, 1 right hand, 2 left hand, 3 object
  labels/NNNNNN.json        K (3x3); hands: {side: joints_cam (21x3 m, camera frame, canonical order),
                            joints_2d (21x2 px), joints_visible (21), mano_pose (48), mano_shape (10),
                            mano_trans (3)}; objects: [{object_id, rotation (3x3), translation (3)}]

All hand parameters are for the licence-free stand-in hand (NOT MANO): they reproduce the rendered
hands with `geometry.mano.ManoLayer` loaded from models/standin_hand, not with real MANO files.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from .sample import HandLabel, ObjectLabel, Sample

FORMAT = "hand_object_pose-synthetic-v1"


def _name(index: int) -> str:
    return f"{index:06d}"


def write_meta(root: str | Path, seed: int, count: int, image_size, objects, generator: int | None = None) -> None:
    """Write meta.json; `objects` are the `synthetic.objects.ObjectModel`s the scenes draw from; `generator`: the
    generator version that renders them (the same seed renders differently across versions)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "meta.json").write_text(json.dumps({
        "format": FORMAT, "seed": seed, "count": count, "image_size": list(image_size), "stand_in_hand": True,
        "objects": {o.object_id: {"corners_rest": o.corners().tolist(), "symmetry": dict(o.symmetry)}
                    for o in objects}, **({"generator": generator} if generator is not None else {})}, indent=1))


def write_sample(root: str | Path, index: int, scene) -> None:
    """Write one `SceneSample` (rgb, depth, object mask, labels) under `root`."""
    root = Path(root)
    name = _name(index)
    for folder in ("rgb", "depth", "object_mask", "instance", "labels"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    # Full-resolution chroma (4:4:4): the default 4:2:0 smears thin synthetic edges by tens of levels.
    cv2.imwrite(str(root / "rgb" / f"{name}.jpg"), cv2.cvtColor(scene.rgb, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 95, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444])
    depth_mm = np.clip(np.round(np.nan_to_num(scene.depth) * 1000.0), 0, 65535).astype(np.uint16)
    cv2.imwrite(str(root / "depth" / f"{name}.png"), depth_mm)
    from hand_object_pose.synthetic.scene import LABEL_IDS

    cv2.imwrite(str(root / "object_mask" / f"{name}.png"),
                np.where(scene.labels == LABEL_IDS["object"], 255, 0).astype(np.uint8))
    cv2.imwrite(str(root / "instance" / f"{name}.png"), scene.labels.astype(np.uint8))
    labels = {
        "K": np.asarray(scene.K).tolist(),
        "hands": {side: {"joints_cam": h.joints_cam.tolist(), "joints_2d": h.joints_2d.tolist(),
                         "joints_visible": np.asarray(h.joints_visible, bool).tolist(),
                         "mano_pose": np.asarray(h.mano_pose).tolist(), "mano_shape": np.asarray(h.mano_shape).tolist(),
                         "mano_trans": np.asarray(h.mano_trans).tolist()} for side, h in scene.hands.items()},
        "objects": [{"object_id": o.object_id, "rotation": np.asarray(o.rotation).tolist(),
                     "translation": np.asarray(o.translation).tolist()} for o in scene.objects],
    }
    (root / "labels" / f"{name}.json").write_text(json.dumps(labels))


class SyntheticDataset:
    """Reader of a folder written by `write_meta` + `write_sample` (see module docstring)."""

    name = "synthetic"

    def __init__(self, root, split: str | None = None):
        self.root = Path(root) / split if split else Path(root)
        meta_path = self.root / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"synthetic dataset meta file missing: {meta_path}")
        self.meta = json.loads(meta_path.read_text())
        if self.meta.get("format") != FORMAT:
            raise ValueError(f"{meta_path}: format {self.meta.get('format')!r}, expected {FORMAT!r}")
        names = sorted(p.stem for p in (self.root / "labels").glob("*.json"))
        if not names:
            raise FileNotFoundError(f"no samples under {self.root / 'labels'}")
        self._names = names
        self._objects = self.meta.get("objects", {})

    def __len__(self) -> int:
        return len(self._names)

    def __getitem__(self, index: int) -> Sample:
        name = self._names[index]
        labels = json.loads((self.root / "labels" / f"{name}.json").read_text())
        width, height = self.meta["image_size"]
        hands = {}
        for side, h in labels["hands"].items():
            uv = np.asarray(h["joints_2d"], np.float64)
            inside = np.all((uv >= 0) & (uv <= [width - 1, height - 1]), axis=-1)
            hands[side] = HandLabel(side, h["joints_cam"], inside, mano_pose=np.asarray(h["mano_pose"], np.float32),
                                    mano_shape=np.asarray(h["mano_shape"], np.float32),
                                    mano_trans=np.asarray(h["mano_trans"], np.float32))
        objects = []
        for o in labels["objects"]:
            info = self._objects.get(o["object_id"], {})
            symmetry = info.get("symmetry", {})
            objects.append(ObjectLabel(
                o["object_id"], np.asarray(o["rotation"]), np.asarray(o["translation"]),
                corners_rest=np.asarray(info["corners_rest"]) if "corners_rest" in info else None,
                symmetric_z180=symmetry.get("kind") == "spherical" or symmetry.get("kind") in ("continuous", "discrete")
                and tuple(symmetry.get("axis", (0, 0, 1))) == (0, 0, 1) and int(symmetry.get("order", 2)) % 2 == 0,
                symmetry=dict(symmetry) if symmetry else None))
        ordered = {s: hands[s] for s in ("right", "left") if s in hands}
        return Sample(self.name, name, str(self.root / "rgb" / f"{name}.jpg"), np.asarray(labels["K"]),
                      (width, height), ordered, objects, interacting=len(ordered) == 2,
                      depth_path=str(self.root / "depth" / f"{name}.png"),
                      object_mask_path=str(self.root / "object_mask" / f"{name}.png") if objects else None)
