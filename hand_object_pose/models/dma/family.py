"""The Dense Mutual Attention family object (see `models.family.ModelFamily`)."""
from __future__ import annotations

import json
from typing import Mapping

from hand_object_pose.geometry.skeleton import JOINT_NAMES

from ..family import ModelFamily, OfficialLoadReport
from .assets import placeholder_hand_topology, placeholder_object
from .checkpoint import load_official_weights
from .config import DMAConfig
from .inference_graph import INPUT_NAMES, METADATA_OBJECT_IDS, OUTPUT_NAMES, DMAInferenceGraph, example_inputs
from .model import DenseMutualAttentionNet

PRESETS = {"dma_ho3d": DMAConfig(name="dma_ho3d")}


class DMAFamily(ModelFamily):
    """Dense Mutual Attention (Wang et al., WACV 2023): one right hand and the object as meshes, refined by
    a GCN with hand<->object attention; built around a hand topology and object templates."""

    name = "dma"
    presets = PRESETS
    channels = "BGR"  # the authors' test path keeps cv2's BGR
    training_tasks = ("dma",)
    has_official_release = True
    uses_object_templates = True
    min_opset = 16  # GridSample, ScatterElements with reduction "add"

    def build(self, config, hand=None, objects=None, **assets) -> DenseMutualAttentionNet:
        """Without `hand` / `objects` a procedural placeholder topology (a tube, not a hand) and a one-object
        placeholder catalogue are used, enough to run and export; pass MANO / stand-in hand topology and the
        object catalogue's templates for real use."""
        return DenseMutualAttentionNet(config, hand if hand is not None else placeholder_hand_topology(),
                                       objects if objects else [placeholder_object()])

    def inference_graph(self, model) -> DMAInferenceGraph:
        return DMAInferenceGraph(model.eval())

    def input_names(self, config) -> tuple:
        return INPUT_NAMES

    def output_names(self, config) -> tuple:
        return OUTPUT_NAMES

    def example_inputs(self, model, batch, generator) -> tuple:
        return example_inputs(model, batch, generator)

    def onnx_metadata(self, model) -> dict:
        """The baked templates' ids in index order, checked against the catalogue at load."""
        return {METADATA_OBJECT_IDS: json.dumps(list(model.object_names))}

    def joint_order(self, config) -> dict:
        return {"name": "canonical (wrist first, then thumb, index, middle, ring, pinky, base to tip)",
                "outputs": ["hand_joints"], "joints": list(JOINT_NAMES)}

    def load_official(self, model, state: Mapping) -> OfficialLoadReport:
        report = load_official_weights(model, state)
        return OfficialLoadReport(mapped={k: k for k in report.loaded}, unused=dict(report.unused))


FAMILY = DMAFamily()
