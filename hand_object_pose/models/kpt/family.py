"""The Keypoint Transformer family object (see `models.family.ModelFamily`)."""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from hand_object_pose.geometry.skeleton import INTERHAND_JOINT_NAMES

from ..family import ModelFamily, OfficialLoadReport
from ..weights_file import check_state_fits
from .checkpoint import convert_state_dict, infer_config
from .config import PRESETS
from .inference_graph import KptInferenceGraph, output_names
from .model import KeypointTransformer

# Outputs that follow from which heat-map peaks are selected, and those that do not.
TOKEN_OUTPUTS = ("token_xy", "token_kind", "token_valid")
TOKEN_FREE_OUTPUTS = ("heatmap", "seg", "hand_type")
# Config fields an official state dict reveals (`infer_config`), named in a mismatch hint.
REVEALED_FIELDS = ("pose_representation", "has_object", "object_left_translation", "backbone_depth", "big_decoder",
                   "enc_layers", "dec_layers")


class KptFamily(ModelFamily):
    """Keypoint Transformer (Hampali et al., CVPR 2022): crop -> heat-map tokens -> transformer -> pose."""

    name = "kpt"
    presets = PRESETS
    channels = "RGB"
    training_tasks = ("kpt",)
    has_official_release = True

    def build(self, config, **assets) -> KeypointTransformer:
        return KeypointTransformer(config)

    def inference_graph(self, model) -> KptInferenceGraph:
        return KptInferenceGraph(model)

    def output_names(self, config) -> tuple:
        return output_names(config)

    def input_size(self, config) -> int:
        return 2 * config.heatmap_size  # the heat-map grid is the input at stride 2

    def tie_free_outputs(self, config, got: Mapping, expected: Mapping) -> tuple[set, str]:
        names = set(self.output_names(config)) - {"joint_2p5d"}  # argmax bins: the logits are compared
        if all(np.array_equal(got[n], expected[n]) for n in TOKEN_OUTPUTS):
            return names, ""
        return set(TOKEN_FREE_OUTPUTS) & names, (
            "the heat-map peak selection differs between ONNX Runtime and torch (a near-tie among peaks): only the "
            "token-independent outputs " + ", ".join(TOKEN_FREE_OUTPUTS) + " are checked")

    def joint_order(self, config) -> dict:
        return {"name": "InterHand2.6M (per finger tip to base, wrist last), right hand then left",
                "joints": list(INTERHAND_JOINT_NAMES),
                "note": "joints_3d leaves the wrist out (20 per hand; wrist-relative)"}

    def metadata(self, config) -> dict:
        return {"token_selection": config.selection}

    def load_official(self, model, state: Mapping) -> OfficialLoadReport:
        converted, report = convert_state_dict(state, model.config)  # KeyError naming unmapped tensors
        check_state_fits(model, converted, "its converted tensors", "the model")
        model.load_state_dict(converted, strict=True)
        return OfficialLoadReport(mapped=dict(report.mapped), unused=dict(report.unused))

    def official_mismatch_hint(self, model, state: Mapping) -> str:
        try:
            implied = infer_config(state)
        except (KeyError, TypeError, ValueError):
            return " (no Keypoint Transformer pose head in it: a checkpoint of another model?)"
        differ = {f.name: getattr(implied, f.name) for f in dataclasses.fields(implied)
                  if f.name in REVEALED_FIELDS and getattr(implied, f.name) != getattr(model.config, f.name)}
        if not differ:
            return ""
        return " (the checkpoint looks like " + ", ".join(f"{k}={v}" for k, v in differ.items()) + \
            ": another preset, or pass these as overrides)"


FAMILY = KptFamily()
