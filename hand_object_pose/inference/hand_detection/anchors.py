"""SSD anchors of the palm detector (MediaPipe's palm_detection_lite/full, 192 x 192 input).

The detector predicts one box per anchor: 4 feature maps of strides 8, 16, 16, 16, two anchors per
map position ("fixed anchor size": every anchor is a unit square, only its centre matters). Maps of
the same stride are merged, position by position, so the order is: the 24 x 24 stride-8 grid with
2 anchors per cell, then the 12 x 12 stride-16 grid with 6 anchors per cell = 1152 + 864 = 2016.
"""
from __future__ import annotations

import numpy as np

PALM_INPUT_SIZE = 192
PALM_STRIDES = (8, 16, 16, 16)
ANCHORS_PER_MAP_POSITION = 2
ANCHOR_OFFSET = 0.5


def palm_anchors(input_size: int = PALM_INPUT_SIZE, strides: tuple[int, ...] = PALM_STRIDES,
                 per_position: int = ANCHORS_PER_MAP_POSITION) -> np.ndarray:
    """(N, 2) anchor centres (x, y) in [0, 1] of the input, in the network's output order."""
    centres = []
    layer = 0
    while layer < len(strides):
        stride = strides[layer]
        same = 0
        while layer + same < len(strides) and strides[layer + same] == stride:
            same += 1
        grid = int(np.ceil(input_size / stride))
        ys, xs = np.mgrid[0:grid, 0:grid]
        cell = np.stack([(xs + ANCHOR_OFFSET) / grid, (ys + ANCHOR_OFFSET) / grid], axis=-1).reshape(-1, 2)
        centres.append(np.repeat(cell, same * per_position, axis=0))
        layer += same
    return np.concatenate(centres).astype(np.float32)
