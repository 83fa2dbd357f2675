"""DexYCB reader (per-frame npz labels, the toolkit's S0 split).

Layout under `root`:
  calibration/intrinsics/<serial>_640x480.yml   color: {fx, fy, ppx, ppy}
  <subject>/<sequence>/meta.yml                 serials, num_frames, ycb_ids, ycb_grasp_ind, mano_sides
  <subject>/<sequence>/<serial>/color_NNNNNN.jpg
  <subject>/<sequence>/<serial>/aligned_depth_to_color_NNNNNN.png   optional depth, 16-bit millimetres
  <subject>/<sequence>/<serial>/labels_NNNNNN.npz   joint_3d (1,21,3) m (OpenCV camera frame), joint_2d,
                                                   pose_y (num_obj,3,4) [R|t] per object, pose_m (1,51)
                                                   (48 PCA-space MANO pose + 3 translation), seg

Joints are already in the canonical wrist-first order (DexYCB = manopth = MediaPipe numbering);
a frame without a visible hand stores -1 in joint_3d and gets no hand label. `pose_m[:, :48]` is
MANO's PCA-space pose (45 PCA coefficients with the DexYCB toolkit's `ncomps=45`) plus the global
orientation; it is passed through as `mano_pose` unchanged, with `mano_shape` from meta.yml's
calibration when available. Objects: every YCB id in `ycb_ids` with its [R|t].

S0 split (the toolkit's default): all subjects and cameras; sequences whose index within the subject
(sorted) satisfies i % 5 != 4 are train, the others are val (subjects 0-1) and test (subjects 2-9).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from .sample import HandLabel, ObjectLabel, Sample, intrinsics_matrix

SPLITS = ("train", "val", "test")
YCB_CLASSES = {
    1: "002_master_chef_can", 2: "003_cracker_box", 3: "004_sugar_box", 4: "005_tomato_soup_can",
    5: "006_mustard_bottle", 6: "007_tuna_fish_can", 7: "008_pudding_box", 8: "009_gelatin_box",
    9: "010_potted_meat_can", 10: "011_banana", 11: "019_pitcher_base", 12: "021_bleach_cleanser",
    13: "024_bowl", 14: "025_mug", 15: "035_power_drill", 16: "036_wood_block", 17: "037_scissors",
    18: "040_large_marker", 19: "051_large_clamp", 20: "052_extra_large_clamp", 21: "061_foam_brick",
}


def _s0_sequences(subject_index: int, sequence_count: int, split: str) -> list[int]:
    if split == "train":
        return [i for i in range(sequence_count) if i % 5 != 4]
    keep_subject = subject_index < 2 if split == "val" else subject_index >= 2
    return [i for i in range(sequence_count) if i % 5 == 4] if keep_subject else []


class DexYCBDataset:
    """Sequence of `Sample`s for one split of setup S0."""

    name = "dexycb"

    def __init__(self, root, split: str = "test"):
        if split not in SPLITS:
            raise ValueError(f"DexYCB split must be one of {SPLITS}; got {split!r}")
        self.root = Path(root)
        self.split = split
        subjects = sorted(p for p in self.root.iterdir() if p.is_dir() and "subject" in p.name)
        if not subjects:
            raise FileNotFoundError(f"no DexYCB subject folders (*subject*) under {self.root}")
        self._intrinsics = {}
        self._frames = []  # (sequence dir, serial, frame index, meta)
        for subject_index, subject in enumerate(subjects):
            sequences = sorted(p for p in subject.iterdir() if (p / "meta.yml").is_file())
            for seq_index in _s0_sequences(subject_index, len(sequences), split):
                seq = sequences[seq_index]
                meta = yaml.safe_load((seq / "meta.yml").read_text())
                for serial in meta["serials"]:
                    for frame in range(int(meta["num_frames"])):
                        self._frames.append((seq, str(serial), frame, meta))

    def __len__(self) -> int:
        return len(self._frames)

    def _camera(self, serial: str) -> np.ndarray:
        if serial not in self._intrinsics:
            path = self.root / "calibration" / "intrinsics" / f"{serial}_640x480.yml"
            if not path.is_file():
                raise FileNotFoundError(f"DexYCB intrinsics missing: {path}")
            color = yaml.safe_load(path.read_text())["color"]
            self._intrinsics[serial] = intrinsics_matrix(color["fx"], color["fy"], color["ppx"], color["ppy"])
        return self._intrinsics[serial]

    def _betas(self, meta: dict):
        """The subject's MANO betas from calibration/mano_<calib>/mano.yml, None when absent."""
        calib = (meta.get("mano_calib") or [None])[0]
        path = self.root / "calibration" / f"mano_{calib}" / "mano.yml"
        if calib is None or not path.is_file():
            return None
        return np.asarray(yaml.safe_load(path.read_text())["betas"], np.float32)

    def __getitem__(self, index: int) -> Sample:
        seq, serial, frame, meta = self._frames[index]
        label_path = seq / serial / f"labels_{frame:06d}.npz"
        if not label_path.is_file():
            raise FileNotFoundError(f"DexYCB label file missing: {label_path}")
        with np.load(label_path, allow_pickle=False) as labels:
            joint_3d = np.asarray(labels["joint_3d"], np.float64).reshape(-1, 21, 3)
            pose_y = np.asarray(labels["pose_y"], np.float64).reshape(-1, 3, 4)
            pose_m = np.asarray(labels["pose_m"], np.float64).reshape(-1, 51)
        hands = {}
        side = str(meta["mano_sides"][0])
        if side not in ("right", "left"):
            raise ValueError(f"{seq / 'meta.yml'}: mano_sides[0] must be 'right' or 'left'; got {side!r}")
        if joint_3d.size and not np.all(joint_3d[0] == -1):
            hands[side] = HandLabel(side=side, joints_cam=joint_3d[0], joints_valid=np.ones(21, bool),
                                    mano_pose=pose_m[0, :48].astype(np.float32),
                                    mano_shape=self._betas(meta), mano_trans=pose_m[0, 48:].astype(np.float32))
        objects = [ObjectLabel(object_id=YCB_CLASSES.get(int(ycb_id), str(ycb_id)), rotation=pose[:, :3],
                               translation=pose[:, 3])
                   for ycb_id, pose in zip(meta["ycb_ids"], pose_y) if np.any(pose)]
        depth = seq / serial / f"aligned_depth_to_color_{frame:06d}.png"  # 16-bit millimetres
        return Sample(dataset=self.name, frame_id=f"{seq.parent.name}/{seq.name}/{serial}/{frame:06d}",
                      image_path=str(seq / serial / f"color_{frame:06d}.jpg"), intrinsics=self._camera(serial),
                      image_size=(640, 480), hands=hands, objects=objects,
                      depth_path=str(depth) if depth.is_file() else None)
