"""A2J-Transformer adapter: 2.5D joints of two hands (crop pixels + root-relative depth).

The network predicts, per hand, x and y in crop pixels and z = (d / (R / 2) + 1) / 2 * S in its
output cube (R = depth_range_mm, S = output_size), with d the depth relative to that hand's wrist
(models.md §2.2). It has no handedness output: presence and joint confidence are the model's own
estimates (`A2JOutput.hand_presence` / `joint_confidence`: trained heads when the checkpoint has
them, else the anchor-weight peakedness heuristic).
"""
from __future__ import annotations

import numpy as np

from hand_object_pose.geometry.skeleton import WRIST, interhand_to_canonical
from hand_object_pose.inference.result import HAND_SIDES

from . import adapter_for
from .base import CropPrediction, HandInCrop, ModelAdapter


@adapter_for("a2j")
class A2JAdapter(ModelAdapter):
    """Reads the outputs of `models.a2j.inference_graph.A2JInferenceGraph` (torch backend and ONNX files alike)."""

    sides = HAND_SIDES

    def parse(self, outputs: dict) -> CropPrediction:
        c = self.config
        joints = interhand_to_canonical(np.asarray(outputs["joints"], np.float64)[0])          # (42, 3)
        confidence = interhand_to_canonical(np.asarray(outputs["joint_confidence"], np.float64)[0][:, None])[:, 0]
        presence = np.asarray(outputs["hand_presence"], np.float64)[0]
        half_range_m = c.depth_range_mm / 2000.0
        hands = []
        for k, side in enumerate(HAND_SIDES):
            hand = joints[21 * k:21 * (k + 1)]
            depth = (hand[:, 2] / c.output_size * 2.0 - 1.0) * half_range_m
            hands.append(HandInCrop(
                side=side, presence=float(presence[k]),
                uv_crop=hand[:, :2] * (c.input_size / c.output_size),
                joint_confidence=np.clip(confidence[21 * k:21 * (k + 1)], 0.0, 1.0),
                rel_depth=depth - depth[WRIST]))
        return CropPrediction(hands=hands)
