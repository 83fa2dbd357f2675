"""The Dense Mutual Attention inference graph: what the torch backend runs and the ONNX export writes.

The graph takes tensors only and returns the camera-frame results:

    inputs : image (N, 3, 256, 256) float32, BGR in [0, 1]; root_joint (N, 3) metres;
             focal (N, 2), principal_point (N, 2) crop intrinsics in pixels; object_index (N,) int64;
             root_depth (N,) metres (normally root_joint z; separate as in the official code)
    outputs: hand_vertices (N, 778, 3), hand_joints (N, 21, 3) metres, camera frame (wrist-first joints);
             object_rotation (N, 3, 3); object_translation (N, 3) metres; object_vertices (N, 1000, 3) metres;
             hand_joints_grid (N, 21, 3) lixel-grid units (x, y times 4 = crop pixels)

The hand and object graphs and the object catalogue are constants of the exported file (fixed
graphs: gather + ScatterElements-add). The three residual GIN blocks per branch whose outputs the
official forward discards are NOT in the graph (`compute_discarded_blocks` is switched off while it
runs): they cannot change any output. The ids of the baked object templates, in index order,
are stored as JSON in the file's metadata_props under METADATA_OBJECT_IDS, so that the inference
pipeline can check them against its object catalogue.
"""
from __future__ import annotations

import torch
from torch import nn

from .model import DenseMutualAttentionNet

INPUT_NAMES = ("image", "root_joint", "focal", "principal_point", "object_index", "root_depth")
METADATA_OBJECT_IDS = "hand_object_pose.dma.object_ids"
OUTPUT_NAMES = ("hand_vertices", "hand_joints", "object_rotation", "object_translation", "object_vertices",
                "hand_joints_grid")


class DMAInferenceGraph(nn.Module):
    """Tensor-in, tuple-out view of a DenseMutualAttentionNet in eval mode (outputs: OUTPUT_NAMES)."""

    def __init__(self, model: DenseMutualAttentionNet):
        super().__init__()
        self.model = model

    def forward(self, image, root_joint, focal, principal_point, object_index, root_depth):
        gcn = self.model.gcn_a
        discarded, gcn.compute_discarded_blocks = gcn.compute_discarded_blocks, False  # dead branches stay out
        try:
            out = self.model(image, root_joint, focal, principal_point, object_index, root_depth)
        finally:
            gcn.compute_discarded_blocks = discarded
        return (out.hand_vertices, out.hand_joints, out.object_rotation, out.object_translation,
                out.object_vertices, out.hand_joints_grid)


def example_inputs(model: DenseMutualAttentionNet, batch: int = 1, generator: torch.Generator | None = None) -> tuple:
    """Plausible inputs of the right shapes and dtypes (tracing, export checks, benchmarks): a random
    crop per item; from the second item on, another root and (with several templates) another object."""
    size = model.config.input_size
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    image = torch.rand(batch, 3, size, size, generator=generator)
    root = torch.tensor([[0.02, -0.01, 0.55]]).repeat(batch, 1)
    root[1:] += torch.tensor([0.03, -0.02, 0.1])
    focal = torch.tensor([[245.0, 245.0]]).repeat(batch, 1)
    centre = torch.full((batch, 2), size / 2)
    index = torch.arange(batch) % len(model.object_names)
    return image, root, focal, centre, index, root[:, 2].clone()
