"""The hand_heatmap family object (see `models.family.ModelFamily`).

A per-hand 2.5D heat-map network (ResNet-18 at half width + deconvolutions, softmax heat-maps with a
soft-argmax readout and relative-depth maps), trained here on the synthetic set; it is run once per
hand crop (and once on an object crop), so the Estimator asks for `per_hand_crops`. No official
release: its weights come from the training engine (training/tasks/hand_heatmap.py).
"""
from __future__ import annotations

from hand_object_pose.geometry.skeleton import JOINT_NAMES

from ..family import ModelFamily
from .config import PRESETS
from .inference_graph import HandHeatmapInferenceGraph, output_names
from .model import HandHeatmapNet


class HandHeatmapFamily(ModelFamily):
    """Per-hand 2.5D heat-map network: one right-hand-oriented crop per hand (left hands mirrored)."""

    name = "hand_heatmap"
    presets = PRESETS
    channels = "RGB"
    training_tasks = ("hand_heatmap",)
    per_hand_crops = True

    def build(self, config, **assets) -> HandHeatmapNet:
        return HandHeatmapNet(config)

    def inference_graph(self, model) -> HandHeatmapInferenceGraph:
        return HandHeatmapInferenceGraph(model)

    def output_names(self, config) -> tuple:
        return output_names(config)

    def joint_order(self, config) -> dict:
        return {"name": "canonical (wrist; thumb, index, middle, ring, pinky, base to tip), one hand per crop",
                "joints": list(JOINT_NAMES),
                "object_points": "8 corners of the catalogue box (corners_rest order), then its centre"}

    def metadata(self, config) -> dict:
        return {"heatmap_size": config.heatmap_size, "base_width": config.base_width,
                "per_hand_crops": True, "left_hands": "mirrored horizontally before the network"}


FAMILY = HandHeatmapFamily()
