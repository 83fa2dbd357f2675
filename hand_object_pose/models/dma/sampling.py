"""Per-vertex features: bilinear samples of image-aligned feature maps at the rough vertex positions."""
from __future__ import annotations

import torch
from torch.nn import functional as F


def grid_to_sampling_coords(coords: torch.Tensor, bins: int = 64) -> torch.Tensor:
    """Lixel-grid x, y (N, V, 3 or 2) -> grid_sample coordinates (N, V, 1, 2) in [-1, 1].

    The official code uses x / (bins/2) - 1 with align_corners=False, i.e. grid x = 0 is the left
    edge of the image and x = bins its right edge.
    """
    half = bins / 2
    return (coords[..., :2] / half - 1).unsqueeze(2)


def sample_vertex_features(feature: torch.Tensor, sampling_coords: torch.Tensor) -> torch.Tensor:
    """Bilinear samples (zero outside) of feature (N, C, H, W) at (N, V, 1, 2) coords -> (N, V, C)."""
    sampled = F.grid_sample(feature, sampling_coords, mode="bilinear", padding_mode="zeros", align_corners=False)
    return sampled.squeeze(3).transpose(1, 2)
