"""Keypoint Transformer adapter (all three pose representations: "3D", "2p5D", "angles").

What the network gives (models.md §1.2-1.3, `models.kpt.output.KptOutput`):
* "3D": parent-relative bone vectors (metres) summed into wrist-relative joints per hand; a
  weak-perspective camera [s, tx, ty] mapping metres (relative to the right wrist) to 128-grid
  pixels; the left wrist relative to the right one (`rel_trans`);
* "2p5D": per joint x, y bins on the 128 grid and a depth bin relative to the parent joint,
  (d / 0.15 m + 1) / 2 * 128;
* "angles": MANO axis-angle pose per hand (global orientation + 15 joints) and shared betas, turned
  into joints and a mesh by `inference.hand_mesh` (MANO files from mano_path, else the stand-in
  hand); 2D and the left hand's placement as for "3D";
* hand presence [right, left] (sigmoid of the hand-type head);
* token identities: for every heat-map peak (token), class probabilities over "no joint",
  42 joints (InterHand2.6M order) and "object". A joint's confidence here is the highest
  probability any token gives it; a confident token also gives the joint's 2D position (the
  detected heat-map peak), otherwise the 2D position is the weak-perspective projection of the 3D
  joint ("3D") or the argmax bins ("2p5D");
* for object configs: a 6D rotation and the object translation relative to the right wrist;
  the object segmentation map's peak (in the map's 0-255 training scale) gives the confidence.

Crop pixels = 128-grid pixels x 2 (the grid is the 256 crop at stride 2).
"""
from __future__ import annotations

import numpy as np

from hand_object_pose.geometry.rotations import rotation_6d_to_matrix
from hand_object_pose.geometry.skeleton import (INTERHAND_JOINT_NAMES, INTERHAND_PARENTS, WRIST, bones_to_joints,
                                                interhand_to_canonical)
from hand_object_pose.inference.result import LEFT, RIGHT

from ..hand_mesh import HandMeshModel
from . import adapter_for
from .base import CropPrediction, HandInCrop, ModelAdapter, ObjectInCrop

TOKEN_CONFIDENT = 0.5       # class probability above which a token's position is used as the joint's 2D
DEPTH_BIN_RANGE_M = 0.15    # 2p5D: depth bins cover the parent-relative depth +- 0.15 m
SEG_SCALE = 255.0           # object segmentation map training scale
INTERHAND_WRIST = INTERHAND_JOINT_NAMES.index("wrist")


@adapter_for("kpt", "occrobnet")  # OccRobNet keeps KPT's outputs and inference graph (docs/occrobnet.md)
class KptAdapter(ModelAdapter):
    """Reads the outputs of `models.kpt.inference_graph.KptInferenceGraph` (torch backend and ONNX files alike)."""

    def __init__(self, family, config, mano_path: str = ""):
        super().__init__(family, config, mano_path)
        self.hand_mesh = HandMeshModel(mano_path) if config.pose_representation == "angles" else None
        self.predicts_object = config.has_object
        # HO-3D models see one right hand; H2O-3D and InterHand2.6M models see two.
        self.sides = (RIGHT,) if config.has_object and not config.object_left_translation else (RIGHT, LEFT)

    def _token_evidence(self, outputs) -> tuple[np.ndarray, np.ndarray]:
        """Per joint (42, InterHand2.6M order): best token probability and its 128-grid position."""
        logits = np.asarray(outputs["joint_class"], np.float64)[0]               # (S, C)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = (probs / probs.sum(axis=1, keepdims=True))[:, 1:43]              # (S, 42) joint classes
        valid = np.asarray(outputs["token_valid"])[0].astype(bool)
        probs = np.where(valid[:, None], probs, 0.0)
        best = probs.argmax(axis=0)
        xy = np.asarray(outputs["token_xy"], np.float64)[0][best]                # (42, 2)
        return probs[best, np.arange(42)], xy

    def parse(self, outputs: dict) -> CropPrediction:
        confidence_ih, token_xy_ih = self._token_evidence(outputs)
        confidence = interhand_to_canonical(confidence_ih[:, None])[:, 0]
        token_xy = interhand_to_canonical(token_xy_ih)
        presence = np.asarray(outputs["hand_type"], np.float64)[0]
        if self.config.pose_representation == "2p5D":
            hands = self._hands_2p5d(outputs, presence, confidence, token_xy)
        else:
            hands = self._hands_3d(outputs, presence, confidence, token_xy)
        objects = []
        if self.config.has_object:
            rotation = rotation_6d_to_matrix(np.asarray(outputs["obj_rot6d"], np.float64)[0])
            objects.append(ObjectInCrop(
                rotation=rotation, translation_from_wrist=np.asarray(outputs["obj_trans"], np.float64)[0],
                relative_to=RIGHT,
                confidence=float(np.clip(np.asarray(outputs["seg"])[0].max() / SEG_SCALE, 0.0, 1.0))))
        return CropPrediction(hands=hands, objects=objects)

    def _pick_uv(self, confidence, token_xy, fallback_grid):
        """Crop pixels: detected token where confident, else the model's own 2D estimate."""
        grid = np.where((confidence >= TOKEN_CONFIDENT)[:, None], token_xy, fallback_grid)
        return grid * (self.input_size / self.config.heatmap_size)

    def _hands_3d(self, outputs, presence, confidence, token_xy):
        """"3D" and "angles": wrist-relative 3D joints per hand, 2D from tokens or the weak perspective."""
        meshes = self._meshes(outputs) if self.hand_mesh is not None else None
        if meshes is None:
            ih = np.asarray(outputs["joints_3d"], np.float64)[0]                 # (2, 20, 3) IH2.6M, no wrist
            joints = interhand_to_canonical(np.concatenate([ih, np.zeros((2, 1, 3))], axis=1))  # (2, 21, 3)
        else:
            joints = np.stack([mesh[0] for mesh in meshes])
        s, tx, ty = np.asarray(outputs["cam"], np.float64)[0]
        rel_trans = np.asarray(outputs["rel_trans"], np.float64)[0]
        hands = []
        for k, side in enumerate((RIGHT, LEFT)):
            if side not in self.sides:
                continue
            from_right_wrist = joints[k] + (rel_trans if side == LEFT else 0.0)
            weak = s * from_right_wrist[:, :2] + np.array([tx, ty])
            sl = slice(21 * k, 21 * (k + 1))
            hand = HandInCrop(side=side, presence=float(presence[k]),
                              uv_crop=self._pick_uv(confidence[sl], token_xy[sl], weak),
                              joint_confidence=confidence[sl].copy(), rel_depth=joints[k][:, 2].copy(),
                              joints_rel=joints[k].copy())
            if meshes is not None:
                _, hand.vertices_rel, hand.faces, hand.wrist_rotation, hand.mano_pose, hand.mano_shape = meshes[k]
            hands.append(hand)
        return hands

    def _meshes(self, outputs):
        """"angles": per hand (joints, vertices, faces, wrist rotation, pose (48,), betas (10,))."""
        pose = np.asarray(outputs["mano_pose"], np.float64)[0].reshape(2, 16 * 3)  # right then left, global first
        betas = np.asarray(outputs["mano_shape"], np.float64)[0]
        return [(*self.hand_mesh(side, pose[k], betas), pose[k], betas.copy())
                for k, side in enumerate((RIGHT, LEFT))]

    def _hands_2p5d(self, outputs, presence, confidence, token_xy):
        bins = np.asarray(outputs["joint_2p5d"], np.float64)[0]                  # (42, 3) IH2.6M order
        grid = self.config.heatmap_size
        parent_rel = (bins[:, 2] / grid * 2.0 - 1.0) * DEPTH_BIN_RANGE_M
        hands = []
        for k, side in enumerate((RIGHT, LEFT)):
            if side not in self.sides:
                continue
            bones = parent_rel[21 * k:21 * (k + 1)].copy()
            bones[INTERHAND_WRIST] = 0.0  # the wrist is the root: its depth bin carries nothing
            depth = bones_to_joints(bones[:, None], INTERHAND_PARENTS)[:, 0]  # summed from the wrist out
            sl = slice(21 * k, 21 * (k + 1))
            xy = interhand_to_canonical(bins[sl, :2])
            rel_depth = interhand_to_canonical(depth[:, None])[:, 0]
            hands.append(HandInCrop(side=side, presence=float(presence[k]),
                                    uv_crop=self._pick_uv(confidence[sl], token_xy[sl], xy),
                                    joint_confidence=confidence[sl].copy(), rel_depth=rel_depth - rel_depth[WRIST]))
        return hands

