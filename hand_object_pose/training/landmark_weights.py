"""MediaPipe's real-photo landmark weights into the landmark_lite backbone (the hand_heatmap task's `backbone_init`).

Reads our committed ONNX conversion of MediaPipe's hand landmark network (models/hand_detector/, Apache-2.0): its
batch norms are folded into the convolutions, so every convolution's weight and bias is all there is to copy.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hand_object_pose.models.backbones.landmark_lite import LandmarkLiteBackbone


def load_landmark_lite_weights(backbone: LandmarkLiteBackbone, onnx_path: str | Path) -> None:
    """Copy the convolution weights and biases of MediaPipe's landmark network (our ONNX conversion,
    models/hand_detector/hand_landmark_lite.onnx) into `backbone`, in graph order; raises ValueError naming the
    first convolution whose shape does not match (a different variant or a changed file)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    initialisers = {t.name: t for t in model.graph.initializer}
    graph_convs = [node for node in model.graph.node if node.op_type == "Conv"]
    ours = backbone.convolutions()
    if len(graph_convs) != len(ours):
        raise ValueError(f"{onnx_path}: {len(graph_convs)} convolutions, expected {len(ours)} (the lite variant)")
    with torch.no_grad():
        for index, (node, conv) in enumerate(zip(graph_convs, ours)):
            weight = numpy_helper.to_array(initialisers[node.input[1]])
            bias = numpy_helper.to_array(initialisers[node.input[2]])
            if tuple(weight.shape) != tuple(conv.weight.shape):
                raise ValueError(f"{onnx_path}: convolution {index} ({node.name or node.output[0]}) has weights "
                                 f"{tuple(weight.shape)}, expected {tuple(conv.weight.shape)}")
            conv.weight.copy_(torch.from_numpy(np.array(weight)))
            conv.bias.copy_(torch.from_numpy(np.array(bias)))
