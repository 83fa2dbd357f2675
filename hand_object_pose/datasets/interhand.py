"""InterHand2.6M reader (the released per-split JSON annotations).

Layout under `root`:
  images/<split>/<file_name from the data json>     e.g. Capture0/ROM03_RT_No_Occlusion/cam400262/image4964.jpg
  annotations/<split>/InterHand2.6M_<split>_data.json       COCO-style: images[], annotations[]
  annotations/<split>/InterHand2.6M_<split>_camera.json     {capture: {campos, camrot, focal, princpt: {cam: ...}}}
  annotations/<split>/InterHand2.6M_<split>_joint_3d.json   {capture: {frame: {world_coord (42x3 mm), ...}}}
  annotations/<split>/InterHand2.6M_<split>_MANO_NeuralAnnot.json (optional) {capture: {frame: {right|left: {pose, shape, trans}}}}

Joints: 42 in InterHand order (right 0-20 then left 21-41, each tip->base per finger, wrist last),
world millimetres; camera coordinates are camrot @ (world - campos). Converted here to metres, the
canonical wrist-first order, and per-side labels. `annotations[].joint_valid` (42) and
`hand_type` ("right" | "left" | "interacting") decide which hands are labelled.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hand_object_pose.geometry.skeleton import interhand_to_canonical

from .sample import HandLabel, Sample, intrinsics_matrix

SPLITS = ("train", "val", "test")


def _read_json(path: Path):
    if not path.is_file():
        raise FileNotFoundError(f"InterHand2.6M annotation file missing: {path}")
    with open(path) as handle:
        return json.load(handle)


class InterHandDataset:
    """Sequence of `Sample`s, one per annotation entry of the split.

    Args:
      root: dataset folder (see module docstring).
      split: "train" | "val" | "test".
      hand_types: keep only annotations whose hand_type is in this set.
    """

    name = "interhand26m"

    def __init__(self, root, split: str = "test", hand_types=("right", "left", "interacting")):
        if split not in SPLITS:
            raise ValueError(f"InterHand2.6M split must be one of {SPLITS}; got {split!r}")
        self.root = Path(root)
        self.split = split
        ann_dir = self.root / "annotations" / split
        prefix = f"InterHand2.6M_{split}"
        data = _read_json(ann_dir / f"{prefix}_data.json")
        self._cameras = _read_json(ann_dir / f"{prefix}_camera.json")
        self._joints = _read_json(ann_dir / f"{prefix}_joint_3d.json")
        mano_path = ann_dir / f"{prefix}_MANO_NeuralAnnot.json"
        self._mano = _read_json(mano_path) if mano_path.is_file() else {}
        images = {img["id"]: img for img in data["images"]}
        self._entries = [(images[ann["image_id"]], ann) for ann in data["annotations"]
                         if ann["hand_type"] in hand_types]

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, index: int) -> Sample:
        image, ann = self._entries[index]
        capture, cam, frame = str(image["capture"]), str(image["camera"]), str(image["frame_idx"])
        cams = self._cameras[capture]
        rotation = np.asarray(cams["camrot"][cam], np.float64).reshape(3, 3)
        position = np.asarray(cams["campos"][cam], np.float64).reshape(3)
        world_mm = np.asarray(self._joints[capture][frame]["world_coord"], np.float64).reshape(42, 3)
        cam_m = (world_mm - position) @ rotation.T / 1000.0
        valid = np.asarray(ann["joint_valid"], bool).reshape(42)
        joints = interhand_to_canonical(cam_m)
        joint_valid = interhand_to_canonical(valid[:, None])[:, 0]
        sides = {"right": ("right",), "left": ("left",), "interacting": ("right", "left")}[ann["hand_type"]]
        mano = self._mano.get(capture, {}).get(frame, {}) or {}
        hands = {}
        for side in ("right", "left"):
            if side not in sides:
                continue
            part = slice(0, 21) if side == "right" else slice(21, 42)
            params = mano.get(side) or {}
            hands[side] = HandLabel(
                side=side, joints_cam=joints[part], joints_valid=joint_valid[part],
                mano_pose=np.asarray(params["pose"], np.float32) if "pose" in params else None,
                mano_shape=np.asarray(params["shape"], np.float32) if "shape" in params else None,
                mano_trans=np.asarray(params["trans"], np.float32) if "trans" in params else None)
        fx, fy = cams["focal"][cam]
        cx, cy = cams["princpt"][cam]
        return Sample(
            dataset=self.name, frame_id=f"{capture}/{cam}/{frame}",
            image_path=str(self.root / "images" / self.split / image["file_name"]),
            intrinsics=intrinsics_matrix(fx, fy, cx, cy), image_size=(image["width"], image["height"]),
            hands=hands, hand_box=np.asarray(ann["bbox"], np.float64) if "bbox" in ann else None,
            interacting=ann["hand_type"] == "interacting")
