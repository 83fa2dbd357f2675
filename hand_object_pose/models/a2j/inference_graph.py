"""The A2J-Transformer inference graph: what the torch backend runs and the ONNX export writes.

Graph: `image` (batch, 3, 256, 256) float32 RGB in [0, 1] -> `joints` (batch, 42, 3) in the 256^3
output cube (IH2.6M order, see `models.a2j.output.A2JOutput`), `joint_confidence` (batch, 42),
`hand_presence` (batch, 2) [right, left]. Only the last decoder layer's heads are in the graph.
"""
from __future__ import annotations

import torch
from torch import nn

from .model import A2JTransformer

INPUT_NAMES = ("image",)
OUTPUT_NAMES = ("joints", "joint_confidence", "hand_presence")


class A2JInferenceGraph(nn.Module):
    """Tensor-only wrapper: image -> (joints, joint_confidence, hand_presence)."""

    def __init__(self, model: A2JTransformer):
        super().__init__()
        self.model = model.eval()

    def forward(self, image: torch.Tensor):
        out = self.model(image, all_layers=False)
        return out.joints, out.joint_confidence, out.hand_presence
