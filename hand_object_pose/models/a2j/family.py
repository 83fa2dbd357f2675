"""The A2J-Transformer family object (see `models.family.ModelFamily`)."""
from __future__ import annotations

from typing import Mapping

from hand_object_pose.geometry.skeleton import INTERHAND_JOINT_NAMES

from ..family import ModelFamily, OfficialLoadReport
from .checkpoint import load_official
from .config import A2JConfig
from .inference_graph import INPUT_NAMES, OUTPUT_NAMES, A2JInferenceGraph
from .model import A2JTransformer

PRESETS = {
    "a2j_ih26m": A2JConfig(),
}


class A2JFamily(ModelFamily):
    """A2J-Transformer (Jiang et al., CVPR 2023): anchor-to-joint regression of two hands."""

    name = "a2j"
    presets = PRESETS
    channels = "RGB"
    training_tasks = ("a2j",)
    has_official_release = True
    min_opset = 16  # GridSample

    def build(self, config, **assets) -> A2JTransformer:
        return A2JTransformer(config)

    def inference_graph(self, model) -> A2JInferenceGraph:
        return A2JInferenceGraph(model)

    def input_names(self, config) -> tuple:
        return INPUT_NAMES

    def output_names(self, config) -> tuple:
        return OUTPUT_NAMES

    def joint_order(self, config) -> dict:
        return {"name": "InterHand2.6M (per finger tip to base, wrist last), right hand then left",
                "joints": list(INTERHAND_JOINT_NAMES), "note": "joints are (x, y, depth) in the output cube"}

    def load_official(self, model, state: Mapping) -> OfficialLoadReport:
        conversion = load_official(model, state)  # the optional heads are derived (logged)
        return OfficialLoadReport(mapped=dict(conversion.renamed), unused=dict(conversion.unused))


FAMILY = A2JFamily()
