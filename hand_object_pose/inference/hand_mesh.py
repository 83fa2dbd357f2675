"""MANO parameters -> root-relative joints and mesh, for models that predict MANO pose and shape.

Loads `<mano_path>/MANO_RIGHT.npz` / `MANO_LEFT.npz` (the official files converted once with
`python -m hand_object_pose.tools.convert_mano`); without them, the licence-free stand-in hand
(`models/standin_hand/`, NOT MANO: same array layout, different shape), with a warning. Which file is
decided by `geometry.hand_model_files.hand_model_file`.

Convention (an assumption, see docs/inference.md): the pose is axis-angle, 3 global-orientation
values (about the wrist, camera axes) + 15 x 3 finger-joint values relative to MANO's mean hand
pose (`flat_hand_mean=False`, smplx's default, as InterHand2.6M's MANO annotations use).
"""
from __future__ import annotations

import logging
import numpy as np
import torch

from hand_object_pose.geometry.hand_model_files import MANO_FILES, hand_model_file
from hand_object_pose.geometry.mano import ManoLayer
from hand_object_pose.geometry.rotations import axis_angle_to_matrix
from hand_object_pose.geometry.skeleton import WRIST

LOG = logging.getLogger(__name__)


class HandMeshModel:
    """Per-side MANO layers, built on first use."""

    def __init__(self, mano_path: str = ""):
        self.mano_path = mano_path
        self._layers: dict = {}

    def _layer(self, side: str) -> ManoLayer:
        if side not in self._layers:
            path, real = hand_model_file(side, self.mano_path)
            if not real:
                LOG.warning("no %s in mano_path %r: %s hand meshes use the licence-free stand-in hand, NOT MANO",
                            MANO_FILES[side], self.mano_path, side)
            self._layers[side] = ManoLayer(path, side=side, flat_hand_mean=False).eval()
        return self._layers[side]

    def __call__(self, side: str, pose: np.ndarray, betas: np.ndarray):
        """pose (48,) axis-angle (global first), betas (10,) ->
        (joints (21, 3) wrist-relative canonical order, vertices (778, 3) wrist-relative, faces (1538, 3) int,
        wrist rotation (3, 3) camera <- wrist frame). Metres."""
        layer = self._layer(side)
        pose_t = torch.as_tensor(np.asarray(pose, np.float32).reshape(1, 48))
        with torch.no_grad():
            out = layer(pose_t[:, :3], pose_t[:, 3:], torch.as_tensor(np.asarray(betas, np.float32).reshape(1, -1)))
        joints = out.joints[0].double().numpy()
        wrist = joints[WRIST].copy()
        rotation = axis_angle_to_matrix(np.asarray(pose, np.float64)[:3])
        return joints - wrist, out.vertices[0].double().numpy() - wrist, layer.faces.numpy().copy(), rotation
