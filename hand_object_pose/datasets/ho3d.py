"""HO-3D (v2, v3) and H2O-3D readers (per-frame pickled meta files, OpenGL camera frame).

Layout under `root`:
  train.txt | evaluation.txt           one "SEQ/FRAME" per line
  <split>/SEQ/rgb/FRAME.jpg|png        (v3 and H2O-3D: jpg; v2: png)
  <split>/SEQ/meta/FRAME.pkl           Python-2 pickle of a dict (read with the restricted unpickler)
  <split>/SEQ/depth/FRAME.png          optional depth aligned to the colour image
                                       (HO-3D's red/green byte encoding, `sample.read_ho3d_depth`)

HO-3D meta keys used: camMat (3x3), handJoints3D (21x3 m; evaluation split: the wrist only, (3,)),
handPose (48), handBeta (10), handTrans (3), objRot (3 axis-angle), objTrans (3), objName,
objCorners3D (8x3), handBoundingBox ([x0, y0, x1, y1], evaluation split).
H2O-3D: rightHandJoints3D / leftHandJoints3D, rightHandPose / leftHandPose, rightHandTrans /
leftHandTrans, handBeta (shared), jointValidRight / jointValidLeft, camMat, obj*.

All 3D quantities are in HO-3D's OpenGL camera frame (y up, z backwards) and are flipped here to the
OpenCV optical frame; joints come in MANO order + tips and are reordered to the canonical order.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hand_object_pose.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from hand_object_pose.geometry.skeleton import NUM_JOINTS, ho3d_to_canonical
from hand_object_pose.safe_pickle import load_restricted

from .sample import OPENGL_TO_OPENCV, HandLabel, ObjectLabel, Sample, read_ho3d_depth

SPLITS = ("train", "evaluation")


def _array(meta: dict, key: str, shape=None):
    value = meta.get(key)
    if value is None:
        return None
    value = np.asarray(value, np.float64)
    return value.reshape(shape) if shape is not None else value


class HO3DDataset:
    """HO-3D v2/v3 (one right hand) or, with `two_hands=True`, H2O-3D.

    Args:
      root: dataset folder (see module docstring).
      split: "train" | "evaluation" (the evaluation split gives only the wrist and a hand box).
      two_hands: read H2O-3D's right/left keys instead of HO-3D's single hand.
    """

    def __init__(self, root, split: str = "train", two_hands: bool = False):
        if split not in SPLITS:
            raise ValueError(f"HO-3D split must be one of {SPLITS}; got {split!r}")
        self.root = Path(root)
        self.split = split
        self.two_hands = two_hands
        self.name = "h2o3d" if two_hands else "ho3d"
        # Both datasets use one camera resolution throughout (width, height).
        self.image_size = (1280, 720) if two_hands else (640, 480)
        list_file = self.root / f"{split}.txt"
        if not list_file.is_file():
            raise FileNotFoundError(f"{self.name} split list missing: {list_file}")
        self._frames = [line.strip() for line in list_file.read_text().splitlines() if line.strip()]

    def __len__(self) -> int:
        return len(self._frames)

    def _image_path(self, seq: str, frame: str) -> str:
        rgb = self.root / self.split / seq / "rgb"
        for ext in (".jpg", ".png"):
            if (rgb / (frame + ext)).is_file():
                return str(rgb / (frame + ext))
        return str(rgb / (frame + ".jpg"))

    def _hand(self, meta: dict, side: str, prefix: str, valid_key: str | None) -> HandLabel | None:
        joints = _array(meta, prefix + "Joints3D")
        if joints is None:
            return None
        root_only = joints.size == 3
        if root_only:
            # Evaluation split: only the wrist is published (canonical index 0 = MANO index 0).
            full = np.zeros((NUM_JOINTS, 3))
            full[0] = joints.reshape(3) @ OPENGL_TO_OPENCV.T
            valid = np.zeros(NUM_JOINTS, bool)
            valid[0] = True
        else:
            full = ho3d_to_canonical(joints.reshape(NUM_JOINTS, 3) @ OPENGL_TO_OPENCV.T)
            valid = np.ones(NUM_JOINTS, bool)
            if valid_key and meta.get(valid_key) is not None:
                valid = ho3d_to_canonical(np.asarray(meta[valid_key], bool).reshape(NUM_JOINTS, 1))[:, 0]
        if not valid.any():
            return None
        pose_key = prefix + "Pose" if self.two_hands else "handPose"
        trans_key = prefix + "Trans" if self.two_hands else "handTrans"
        pose = _array(meta, pose_key)
        if pose is not None:
            # The global orientation rotates the hand into the OpenGL camera; into the OpenCV one it is
            # diag(1,-1,-1) R. The translation stays in the dataset's convention: converting it needs the
            # shape-dependent MANO root joint (MANO rotates about it), i.e. the MANO model itself.
            pose = pose.reshape(-1).copy()
            pose[:3] = matrix_to_axis_angle(OPENGL_TO_OPENCV @ axis_angle_to_matrix(pose[:3]))
        return HandLabel(side=side, joints_cam=full, joints_valid=valid, root_only=root_only,
                         mano_pose=pose, mano_shape=_array(meta, "handBeta"), mano_trans=_array(meta, trans_key))

    def __getitem__(self, index: int) -> Sample:
        seq, frame = self._frames[index].split("/")
        meta_path = self.root / self.split / seq / "meta" / f"{frame}.pkl"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{self.name} meta file missing: {meta_path}")
        meta = load_restricted(meta_path)
        if not isinstance(meta, dict) or meta.get("camMat") is None:
            raise ValueError(f"{meta_path}: expected a dict with 'camMat'; got keys "
                             f"{sorted(meta) if isinstance(meta, dict) else type(meta).__name__}")
        if self.two_hands:
            sides = (("right", "rightHand", "jointValidRight"), ("left", "leftHand", "jointValidLeft"))
        else:
            sides = (("right", "hand", None),)
        hands = {}
        for side, prefix, valid_key in sides:
            label = self._hand(meta, side, prefix, valid_key)
            if label is not None:
                hands[side] = label
        objects = []
        if meta.get("objRot") is not None and meta.get("objTrans") is not None:
            rotation = OPENGL_TO_OPENCV @ axis_angle_to_matrix(_array(meta, "objRot", (3,)))
            translation = OPENGL_TO_OPENCV @ _array(meta, "objTrans", (3,))
            corners = _array(meta, "objCorners3D")
            corners_cam = None if corners is None else corners.reshape(-1, 3) @ OPENGL_TO_OPENCV.T
            rest = _array(meta, "objCorners3DRest")
            if rest is None and corners_cam is not None:  # X_cam = R X_obj + t  =>  X_obj = R^T (X_cam - t)
                rest = (corners_cam - translation) @ rotation
            objects.append(ObjectLabel(
                object_id=str(meta.get("objName", "")), rotation=rotation, translation=translation,
                corners_cam=corners_cam, corners_rest=None if rest is None else rest.reshape(-1, 3)))
        box = _array(meta, "handBoundingBox")
        hand_box = None if box is None else np.array([box[0], box[1], box[2] - box[0], box[3] - box[1]])
        image_path = self._image_path(seq, frame)
        depth = self.root / self.split / seq / "depth" / f"{frame}.png"
        return Sample(dataset=self.name, frame_id=f"{seq}/{frame}", image_path=image_path,
                      intrinsics=_array(meta, "camMat", (3, 3)), image_size=self.image_size, hands=hands,
                      objects=objects, hand_box=hand_box, interacting=len(hands) == 2,
                      depth_path=str(depth) if depth.is_file() else None, load_depth_fn=read_ho3d_depth)


def H2O3DDataset(root, split: str = "train") -> HO3DDataset:
    """H2O-3D: the HO-3D layout with two hands."""
    return HO3DDataset(root, split, two_hands=True)
