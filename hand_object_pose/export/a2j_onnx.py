"""ONNX export of the A2J-Transformer inference graph.

    python -m hand_object_pose.export.a2j_onnx OUT.onnx [--checkpoint snapshot.pth.tar] [--check]

Graph: `image` (batch, 3, 256, 256) float32 RGB in [0, 1] -> `joints` (batch, 42, 3) in the 256^3
output cube (IH2.6M order, see `models.a2j.output.A2JOutput`), `joint_confidence` (batch, 42),
`hand_presence` (batch, 2) [right, left]. Only the last decoder layer's heads are in the graph.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hand_object_pose.export.onnx import compare_with_torch, export_onnx, ort_session
from hand_object_pose.models.a2j import PRESETS, A2JTransformer, build
from hand_object_pose.models.a2j.checkpoint import load_official

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


def export_a2j(model: A2JTransformer, path: str | Path, batch: int = 1) -> Path:
    """Export `model` with a dynamic batch axis; returns the written path."""
    size = model.config.input_size
    example = torch.rand(batch, 3, size, size)
    return export_onnx(A2JInferenceGraph(model), (example,), path, INPUT_NAMES, OUTPUT_NAMES)


def onnx_errors(model: A2JTransformer, session, image: torch.Tensor) -> dict[str, float]:
    """ORT vs torch: joints as max |diff| / max |joints|; confidence and presence (bounded in
    [0, 1], and near 0 for untrained weights) as max |diff|."""
    graph = A2JInferenceGraph(model)
    abs_err = dict(zip(OUTPUT_NAMES, compare_with_torch(graph, session, (image,), INPUT_NAMES)))
    with torch.no_grad():
        joints = graph(image)[0]
    abs_err["joints"] /= max(float(joints.abs().max()), 1e-12)
    return abs_err


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hand_object_pose.export.a2j_onnx", description=__doc__.split("\n\n")[0])
    parser.add_argument("output", help="path of the .onnx file to write")
    parser.add_argument("--preset", default="a2j_ih26m", choices=sorted(PRESETS))
    parser.add_argument("--checkpoint", help="official snapshot_*.pth.tar (default: random weights)")
    parser.add_argument("--check", action="store_true", help="compare ONNX Runtime with torch at batch 1 and 2")
    args = parser.parse_args(argv)
    model = build(PRESETS[args.preset]).eval()
    if args.checkpoint:
        load_official(model, args.checkpoint)
    path = export_a2j(model, args.output)
    print(f"wrote {path}")
    if args.check:
        session = ort_session(path)
        size = model.config.input_size
        for batch in (1, 2):
            errors = onnx_errors(model, session, torch.rand(batch, 3, size, size))
            print(f"batch {batch}: joints max relative error {errors['joints']:.2e}, "
                  f"joint_confidence max abs error {errors['joint_confidence']:.2e}, "
                  f"hand_presence max abs error {errors['hand_presence']:.2e}")
            if not all(np.isfinite(e) and e <= 1e-4 for e in errors.values()):
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
