"""An object crop's segmentation in the image: which pixels are the object, which the crop calls background, and
which class the object's pixels vote for.

The object network (a hand_heatmap network with `object_segmentation`) gives, per heat-map cell of its crop, the
probabilities of [background, each class]. The fit to a depth image (object_depth_fit) pairs the object's mesh
with the object's own pixels only (not the fingers around it, not the arm behind it) and checks that the pose
covers them; the votes are a second opinion on the class, read from the pixels instead of the pooled features.

Frames: image pixels (u right, v down), the crop affine maps them to crop pixels (pixel centres at integers); the
crop's H x H cells tile its S x S pixels (cell i's centre at crop pixel (i + 0.5) * S / H - 0.5).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

OBJECT_PROBABILITY = 0.5
"""A pixel is the object's where 1 - P(background) reaches this."""

BACKGROUND_PROBABILITY = 0.2
"""A pixel of the crop is background where 1 - P(background) is under this (a cell at the object's edge is
neither: the cells are 2-6 image pixels wide)."""


@dataclass(frozen=True)
class ObjectPixels:
    """object (H, W) bool: the object's pixels; background (H, W) bool: pixels of the crop the network calls
    background (pixels outside the crop are neither); class_votes (C,): each class's share of the class
    probability over the object's cells (zeros when no cell is the object's)."""

    object: np.ndarray
    background: np.ndarray
    class_votes: np.ndarray

    def measured_depths(self, depth_m: np.ndarray) -> np.ndarray:
        """(K,) metres: what the depth image (H, W) measures on the object's pixels (those with a depth)."""
        depths = np.asarray(depth_m)[self.object]
        with np.errstate(invalid="ignore"):
            return depths[np.isfinite(depths) & (depths > 0)]


def grid_affine(affine: np.ndarray, crop_size: int, cells: int) -> np.ndarray:
    """(2, 3) image px -> heat-map cell coordinates (cell i's centre at i) of a crop with image -> crop affine
    `affine` (2, 3), `crop_size` px, `cells` cells a side."""
    stride = crop_size / cells
    to_cells = np.array([[1.0 / stride, 0.0, 0.5 / stride - 0.5], [0.0, 1.0 / stride, 0.5 / stride - 0.5], [0, 0, 1]])
    return (to_cells @ np.vstack([np.asarray(affine, np.float64), [0.0, 0.0, 1.0]]))[:2]


def object_pixels(segmentation: np.ndarray, affine: np.ndarray, crop_size: int, image_shape: tuple) -> ObjectPixels:
    """ObjectPixels of one object crop: segmentation (1 + C, H, H) probabilities [background, classes], affine
    (2, 3) image px -> crop px, crop_size S px, image_shape (height, width, ...) of the image."""
    segmentation = np.asarray(segmentation, np.float32)
    if segmentation.ndim != 3 or segmentation.shape[0] < 2 or segmentation.shape[1] != segmentation.shape[2]:
        raise ValueError(f"object_pixels: expected (1 + C, H, H) probabilities, got shape {segmentation.shape}")
    height, width = int(image_shape[0]), int(image_shape[1])
    objectness = 1.0 - segmentation[0]
    to_cells = grid_affine(affine, crop_size, segmentation.shape[-1])
    # Each image pixel reads the cell grid where it falls; pixels off the crop read -1 (neither).
    in_image = cv2.warpAffine(objectness, to_cells, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=-1.0)
    found = objectness >= OBJECT_PROBABILITY
    votes = (segmentation[1:] * found).sum(axis=(1, 2)).astype(np.float64)
    total = votes.sum()
    return ObjectPixels(in_image >= OBJECT_PROBABILITY, (in_image >= 0.0) & (in_image < BACKGROUND_PROBABILITY),
                        votes / total if total > 0 else votes)
