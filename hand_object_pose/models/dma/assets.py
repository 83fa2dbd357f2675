"""Mesh assets the DMA model is built with: hand topology (faces + joint regressor) and object templates.

The model never reads files: callers pass these arrays, taken from the user's MANO files (via the
MANO layer), the stand-in hand, the parity kit, or object templates (`geometry.object_template`, made by
`python -m hand_object_pose.tools.object_template`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hand_object_pose.geometry.object_template import ObjectTemplate
from hand_object_pose.geometry.skeleton import MANO_TO_CANONICAL

# Vertex ids of the five finger tips (thumb, index, middle, ring, pinky) that the official MANO wrapper
# appends to MANO's 16 regressed joints.
FINGERTIP_VERTICES = (745, 317, 445, 556, 673)


def joint_regressor_21(mano_j_regressor: np.ndarray) -> np.ndarray:
    """MANO J_regressor (16, 778) -> the official 21x778 regressor (wrist-first, tips as one-hots)."""
    mano_j_regressor = np.asarray(mano_j_regressor, dtype=np.float32)
    if mano_j_regressor.shape != (16, 778):
        raise ValueError(f"MANO J_regressor must be (16, 778), got {mano_j_regressor.shape}")
    tips = np.zeros((5, 778), dtype=np.float32)
    tips[np.arange(5), FINGERTIP_VERTICES] = 1.0
    # [16 MANO joints, 5 tips] rows -> the canonical wrist-first order.
    return np.concatenate([mano_j_regressor, tips])[list(MANO_TO_CANONICAL)]


@dataclass
class HandTopology:
    """faces (F, 3) int64 of the 778-vertex hand mesh; joint_regressor (21, 778) float32, wrist-first."""

    faces: np.ndarray
    joint_regressor: np.ndarray

    def __post_init__(self):
        self.faces = np.asarray(self.faces, dtype=np.int64)
        self.joint_regressor = np.asarray(self.joint_regressor, dtype=np.float32)
        if self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise ValueError(f"hand faces must be (F, 3), got {self.faces.shape}")
        if self.joint_regressor.ndim != 2 or self.joint_regressor.shape[0] != 21:
            raise ValueError(f"hand joint regressor must be (21, V), got {self.joint_regressor.shape}")


def tube_mesh(rings: int, ring_size: int, length: float, radius: float,
              caps: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Tube along z: `rings` x `ring_size` vertices (+ two cap centres if `caps`); (V, 3) float32, (F, 3).

    A procedural placeholder mesh (not a hand, not a real object) for untrained builds and tests.
    """
    angles = np.arange(ring_size) * (2 * np.pi / ring_size)
    z = np.linspace(-length / 2, length / 2, rings)
    ring = np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)
    side = np.concatenate([np.column_stack([ring, np.full(ring_size, zi)]) for zi in z])
    centres = [[0, 0, -length / 2], [0, 0, length / 2]] if caps else np.zeros((0, 3))
    vertices = np.concatenate([side, centres]).astype(np.float32)
    faces = []
    for r in range(rings - 1):
        for k in range(ring_size):
            a, b = r * ring_size + k, r * ring_size + (k + 1) % ring_size
            faces += [(a, b, a + ring_size), (b, b + ring_size, a + ring_size)]
    bottom, top, last = rings * ring_size, rings * ring_size + 1, (rings - 1) * ring_size
    for k in range(ring_size if caps else 0):
        faces += [(bottom, (k + 1) % ring_size, k), (top, last + k, last + (k + 1) % ring_size)]
    return vertices, np.asarray(faces, dtype=np.int64)


def placeholder_hand_topology() -> HandTopology:
    """A 778-vertex tube with a smooth 21-joint regressor: lets an untrained model be built and tested
    without MANO files. Not a hand; use the MANO layer or the stand-in hand for anything real."""
    vertices, faces = tube_mesh(rings=97, ring_size=8, length=0.18, radius=0.02)
    centres = np.linspace(-0.09, 0.09, 16)
    weights = np.exp(-((vertices[None, :, 2] - centres[:, None]) / 0.01) ** 2)
    return HandTopology(faces, joint_regressor_21(weights / weights.sum(1, keepdims=True)))


def placeholder_object() -> ObjectTemplate:
    """A 1000-vertex open tube of 12 cm x 4 cm (not a real object), for untrained builds and tests."""
    vertices, faces = tube_mesh(rings=40, ring_size=25, length=0.12, radius=0.02, caps=False)
    return ObjectTemplate("placeholder_tube", vertices, faces)


def hand_topology_from_model(arrays) -> HandTopology:
    """HandTopology from MANO-layout arrays (`geometry.hand_model_files.load_hand_model`: the user's converted
    MANO file or the stand-in hand): faces `f` and the 21x778 regressor built from `J_regressor` with the
    official DMA fingertip vertices (745, 317, 445, 556, 673; smplx uses slightly different ids)."""
    return HandTopology(arrays["f"], joint_regressor_21(arrays["J_regressor"]))
