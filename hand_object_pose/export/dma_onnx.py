"""ONNX export of the Dense Mutual Attention inference graph.

The exported graph takes tensors only and returns the camera-frame results:

    inputs : image (N, 3, 256, 256) float32, BGR in [0, 1]; root_joint (N, 3) metres;
             focal (N, 2), principal_point (N, 2) crop intrinsics in pixels; object_index (N,) int64;
             root_depth (N,) metres (normally root_joint z; separate as in the official code)
    outputs: hand_vertices (N, 778, 3), hand_joints (N, 21, 3) metres, camera frame (wrist-first joints);
             object_rotation (N, 3, 3); object_translation (N, 3) metres; object_vertices (N, 1000, 3) metres;
             hand_joints_grid (N, 21, 3) lixel-grid units (x, y times 4 = crop pixels)

The hand and object graphs and the object catalogue are constants of the exported file (fixed
graphs: gather + ScatterElements-add). The three residual GIN blocks per branch whose outputs the
official forward discards are NOT in the exported graph (`compute_discarded_blocks` is switched off
for export): they cannot change any output. The ids of the baked object templates, in index order,
are stored as JSON in the file's metadata_props under METADATA_OBJECT_IDS, so that the inference
pipeline can check them against its object catalogue.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from hand_object_pose.export.onnx import DEFAULT_OPSET, export_onnx
from hand_object_pose.models.dma.model import DenseMutualAttentionNet

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
        out = self.model(image, root_joint, focal, principal_point, object_index, root_depth)
        return (out.hand_vertices, out.hand_joints, out.object_rotation, out.object_translation,
                out.object_vertices, out.hand_joints_grid)


def example_inputs(model: DenseMutualAttentionNet, batch: int = 1) -> tuple:
    """Plausible inputs of the right shapes and dtypes (for tracing and benchmarks)."""
    size = model.config.input_size
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 3, size, size, generator=generator)
    root = torch.tensor([[0.02, -0.01, 0.55]]).repeat(batch, 1)
    focal = torch.tensor([[245.0, 245.0]]).repeat(batch, 1)
    centre = torch.full((batch, 2), size / 2)
    return image, root, focal, centre, torch.zeros(batch, dtype=torch.int64), root[:, 2].clone()


def export_dma_onnx(model: DenseMutualAttentionNet, path: str | Path, opset: int = DEFAULT_OPSET,
                    batch: int = 1) -> Path:
    """Export `model` (its weights, hand topology and object catalogue) to one .onnx file (dynamic batch)."""
    if opset < 16:
        raise ValueError(f"DMA needs opset >= 16 (grid_sample, ScatterElements with add), got {opset}")
    discarded = model.gcn_a.compute_discarded_blocks
    model.gcn_a.compute_discarded_blocks = False  # dead branches stay out of the file
    try:
        graph = DMAInferenceGraph(model.eval())
        path = export_onnx(graph, example_inputs(model, batch), path, INPUT_NAMES, OUTPUT_NAMES, opset=opset)
    finally:
        model.gcn_a.compute_discarded_blocks = discarded
    _store_object_ids(path, model.object_names)
    return path


def _store_object_ids(path: Path, object_ids) -> None:
    """Record the baked templates' ids (index order) in the file's metadata_props."""
    import onnx

    proto = onnx.load(str(path))
    kept = [(m.key, m.value) for m in proto.metadata_props if m.key != METADATA_OBJECT_IDS]
    del proto.metadata_props[:]
    for key, value in kept:
        proto.metadata_props.add(key=key, value=value)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_OBJECT_IDS, json.dumps(list(object_ids))
    onnx.save(proto, str(path))
