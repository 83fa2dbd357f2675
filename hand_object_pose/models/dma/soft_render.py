"""A small differentiable soft rasteriser for DMA's finger-rendering loss (paper eq. 24).

The paper renders the refined and the ground-truth hand meshes with a differentiable renderer, each
vertex coloured by its finger, and compares the images with L1. This module renders in the same spirit
as SoftRas (Liu et al. 2019), written for this project in plain torch:

* per face and pixel, a soft coverage D = sigmoid(d / sigma), with d the signed distance (pixels) of
  the pixel centre to the triangle approximated by the smallest signed distance to its three edge
  lines (positive inside);
* the colour is a per-pixel softmax over faces of log D + D s / gamma, s = normalised closeness
  (1 nearest, 0 farthest depth of the mesh; scaled by D so that only covering faces compete on depth), times the soft silhouette alpha = 1 - prod(1 - D)
  (background 0);
* a face's colour is the one-hot of its finger label.

Memory is O(pixels x faces) per image; the loss uses a coarse image (default 64x64, the lixel grid).
"""
from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

NUM_FINGER_LABELS = 6  # palm, thumb, index, middle, ring, pinky
# MANO joint -> finger label (0 wrist/palm; MANO joints 1-3 index, 4-6 middle, 7-9 pinky, 10-12 ring, 13-15 thumb).
_MANO_JOINT_FINGER = (0, 2, 2, 2, 3, 3, 3, 5, 5, 5, 4, 4, 4, 1, 1, 1)


def finger_face_labels(skinning_weights: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Per-face finger label (F,) from MANO-layout skinning weights (778, 16): each vertex takes the finger
    of its largest blend weight (paper), each face the label of its first vertex's majority among its three."""
    weights = np.asarray(skinning_weights)
    if weights.ndim != 2 or weights.shape[1] != len(_MANO_JOINT_FINGER):
        raise ValueError(f"skinning weights must be (V, 16) in MANO joint order, got {weights.shape}")
    vertex_labels = np.asarray(_MANO_JOINT_FINGER)[weights.argmax(1)]
    corner = vertex_labels[np.asarray(faces)]                                  # (F, 3)
    # majority of the three corners; ties (all different) take the first corner
    agree = (corner[:, 1] == corner[:, 2])
    return np.where(agree & (corner[:, 0] != corner[:, 1]), corner[:, 1], corner[:, 0]).astype(np.int64)


def soft_rasterize(vertices: torch.Tensor, faces: torch.Tensor, face_colors: torch.Tensor, size: tuple[int, int],
                   sigma: float = 0.5, gamma: float = 0.05) -> torch.Tensor:
    """Soft-render meshes.

    Args:
        vertices: (N, V, 3): x, y in pixels of the output image (pixel (i, j) has centre (j + 0.5, i + 0.5)),
            z = depth (any unit, larger = farther).
        faces: (F, 3) int64. face_colors: (F, C).
        size: (H, W).
        sigma: edge softness in pixels; gamma: depth-blend temperature.
    Returns:
        (N, C, H, W) image, background 0.
    """
    height, width = size
    ys, xs = torch.meshgrid(torch.arange(height, dtype=vertices.dtype, device=vertices.device) + 0.5,
                            torch.arange(width, dtype=vertices.dtype, device=vertices.device) + 0.5, indexing="ij")
    pixels = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)                  # (P, 2)
    images = []
    for verts in vertices:                                                          # loop: memory is P x F each
        tri = verts[faces]                                                          # (F, 3, 3)
        corners = tri[..., :2]
        area = ((corners[:, 1, 0] - corners[:, 0, 0]) * (corners[:, 2, 1] - corners[:, 0, 1])
                - (corners[:, 1, 1] - corners[:, 0, 1]) * (corners[:, 2, 0] - corners[:, 0, 0]))
        orientation = torch.where(area >= 0, 1.0, -1.0).to(verts.dtype)            # inside = positive
        distances = []
        for k in range(3):
            start, end = corners[:, k], corners[:, (k + 1) % 3]
            edge = end - start
            length = edge.norm(dim=1).clamp_min(1e-8)
            rel = pixels[:, None, :] - start[None]                                 # (P, F, 2)
            cross = edge[None, :, 0] * rel[..., 1] - edge[None, :, 1] * rel[..., 0]
            distances.append(orientation * cross / length)
        signed = torch.stack(distances).amin(0)                                     # (P, F)
        # Depth at the pixel: barycentric interpolation (barycentrics clamped to the triangle).
        opposite = torch.stack(distances[1:] + distances[:1])                       # distance to edge opposite k
        heights = area.abs() / torch.stack([(corners[:, (k + 2) % 3] - corners[:, (k + 1) % 3]).norm(dim=1)
                                            for k in range(3)]).clamp_min(1e-8)     # (3, F)
        bary = (opposite / heights[:, None, :].clamp_min(1e-8)).clamp_min(0)
        bary = bary / bary.sum(0, keepdim=True).clamp_min(1e-8)
        depth = (bary * tri[..., 2].T[:, None, :]).sum(0)                           # (P, F)
        near, far = tri[..., 2].min().detach(), tri[..., 2].max().detach()
        closeness = (far - depth) / (far - near).clamp_min(1e-8)
        # Colour: depth-weighted soft z-buffer among the faces covering the pixel (the depth bonus is scaled
        # by the coverage, so a near face does not bleed over pixels it does not cover) ...
        blend = torch.softmax(F.logsigmoid(signed / sigma) + torch.sigmoid(signed / sigma) * closeness / gamma, dim=1)
        # ... times the soft silhouette alpha = 1 - prod_j (1 - D_j), so empty pixels stay background.
        alpha = -torch.expm1(F.logsigmoid(-signed / sigma).sum(1, keepdim=True))
        images.append((alpha * (blend @ face_colors)).T.reshape(-1, height, width))
    return torch.stack(images)
