"""Dense Mutual Attention adapter: one right hand (2.5D from its mesh joints) and the object's pose.

The DMA graph (`models.dma.inference_graph.DMAInferenceGraph`) takes, beside the BGR crop, the hand root in the
crop camera, the crop intrinsics and an object template index, and only uses the first three to
convert its lixel-grid outputs to metres (models.md §4.1-4.2): joints = back-projection of
(grid x, y) x 4 crop pixels at depth (grid z / 64 x 2 - 1) x 0.15 m + root z; object translation =
its predicted offset + root. Feeding a reference root (0, 0, 1 m) and unit intrinsics (focal 1,
principal point 0) makes both conversions invertible: crop pixels = x / z, y / z; depth relative
to the root = z - 1. The model's wrist (regressed from its mesh) need not sit exactly at the root
it was given; the pipeline places the predicted wrist, so depths are taken relative to it, and the
object offset from that wrist is translation - root - (0, 0, wrist depth - 1). The pipeline then
places the hand with its own root-depth sources, as for every other model.

The model is built with (and an ONNX export bakes in) a hand graph + joint regressor and the object
templates; `DMAAdapter.use_catalogue` takes them from the user's MANO file (`mano_path`, right hand;
else the licence-free stand-in hand, with a warning) and from the catalogue entries' `template` files,
in file order, and feeds the network the position of the configured object among them.

DMA predicts neither hand presence nor per-joint confidence: both are reported as 1.0 (the hand is
assumed present in the crop, as in the authors' evaluation), and so is the object confidence.
"""
from __future__ import annotations

import json
import logging
from typing import Mapping, Optional

import numpy as np
from torch import nn

from hand_object_pose.geometry.skeleton import WRIST
from hand_object_pose.inference.result import RIGHT
from hand_object_pose.models.dma.inference_graph import METADATA_OBJECT_IDS

from . import adapter_for
from .base import CropPrediction, HandInCrop, ModelAdapter, ObjectInCrop

LOG = logging.getLogger(__name__)

REFERENCE_ROOT_M = np.array([[0.0, 0.0, 1.0]], np.float32)
HOW_TO_MAKE_A_TEMPLATE = ("make one per object with `python -m hand_object_pose.tools.object_template MESH OUT.npz "
                          "--id OBJECT_ID` and name it in the catalogue entry as `template: OUT.npz`")


@adapter_for("dma")
class DMAAdapter(ModelAdapter):
    """Reads the outputs of `models.dma.inference_graph.DMAInferenceGraph` (torch backend and ONNX files alike).

    After `use_catalogue`: `object_ids` = the model's template list (the catalogue's templated entries in
    file order), `object_index` = the tracked object's position in it (fed as the graph's
    `object_index`), `templates` / `hand_topology` = what `build_model` builds the torch model with.
    Before it (a bare adapter, as in unit tests) the object index is 0.
    """

    predicts_object = True
    sides = (RIGHT,)

    def __init__(self, family, config, mano_path: str = ""):
        super().__init__(family, config, mano_path)
        self.object_ids: tuple = ()
        self.object_index = 0
        self.templates: list = []
        self.hand_topology = None
        self.hand_is_mano = False

    def use_catalogue(self, catalogue, object_id: str, mano_path: str = "") -> None:
        """Take the object templates from `catalogue` (an `inference.catalogue.ObjectCatalogue`) and the hand
        from `mano_path`; `object_id` is the object the network is told to track.

        Raises ValueError naming what is missing (no catalogue, no templates, none for `object_id`) and how
        to make a template; CatalogueError for unreadable templates.
        """
        from hand_object_pose.geometry.hand_model_files import MANO_FILES, hand_model_file, load_hand_model
        from hand_object_pose.models.dma.assets import hand_topology_from_model

        if catalogue is None:
            raise ValueError(f"model {self.config.name!r} (Dense Mutual Attention) needs an object catalogue "
                             "(EstimatorConfig.object_catalogue) whose entries name object templates: "
                             + HOW_TO_MAKE_A_TEMPLATE)
        if not catalogue.template_ids:
            raise ValueError(f"model {self.config.name!r} (Dense Mutual Attention) needs object templates, but no "
                             f"entry of the object catalogue {catalogue.source} has a `template:`: "
                             + HOW_TO_MAKE_A_TEMPLATE)
        if object_id not in catalogue.template_ids:
            raise ValueError(f"object {object_id!r} of the object catalogue {catalogue.source} has no `template:`; "
                             f"model {self.config.name!r} can only track {list(catalogue.template_ids)}; "
                             + HOW_TO_MAKE_A_TEMPLATE)
        self.templates = list(catalogue.load_templates().values())
        self.object_ids = tuple(t.name for t in self.templates)
        self.object_index = self.object_ids.index(object_id)
        path, self.hand_is_mano = hand_model_file("right", mano_path)
        if not self.hand_is_mano:
            LOG.warning("no %s in mano_path %r: the Dense Mutual Attention hand graph and joint regressor come from "
                        "the licence-free stand-in hand, NOT MANO (the official weights were trained on MANO's "
                        "mesh; see docs/mano.md)", MANO_FILES["right"], mano_path)
        self.hand_topology = hand_topology_from_model(load_hand_model(path))

    def build_model(self) -> nn.Module:
        """The torch model with the hand and templates of `use_catalogue` (untrained weights)."""
        if self.hand_topology is None:
            raise RuntimeError("DMAAdapter.build_model needs use_catalogue() first")
        return self.family.build(self.config, hand=self.hand_topology, objects=self.templates)

    def check_onnx_metadata(self, metadata: Mapping[str, str], path: str, sidecar: Optional[dict] = None) -> None:
        """Refuse an ONNX file whose baked object templates are not the catalogue's.

        metadata: the file's metadata_props (the export stores the ids under METADATA_OBJECT_IDS);
        sidecar: the `<file>.json` record of `tools.export_onnx` (its `object_templates`), read when the
        metadata lacks the ids. ValueError when neither records them or they differ from `object_ids`.
        """
        baked = None
        if METADATA_OBJECT_IDS in metadata:
            baked = tuple(json.loads(metadata[METADATA_OBJECT_IDS]))
        elif sidecar and isinstance(sidecar.get("object_templates"), list):
            baked = tuple(str(t.get("id")) for t in sorted(sidecar["object_templates"], key=lambda t: t.get("index")))
        if baked is None:
            raise ValueError(f"ONNX model {path} does not record which object templates it was exported with "
                             f"(metadata {METADATA_OBJECT_IDS!r} or {path}.json); re-export it with python -m "
                             "hand_object_pose.tools.export_onnx ... " +
                             " ".join(f"--object-template <{i}.npz>" for i in self.object_ids))
        if baked != self.object_ids:
            raise ValueError(f"ONNX model {path} was exported with object templates {list(baked)}, but the object "
                             f"catalogue's templated entries are {list(self.object_ids)} (the network's object "
                             "index is the position in this list): re-export with one --object-template per "
                             "catalogue entry, in catalogue order, or fix the catalogue")

    def preprocess(self, crop_rgb: np.ndarray) -> dict:
        return {**super().preprocess(crop_rgb),  # BGR: the family's channel order
                "root_joint": REFERENCE_ROOT_M.copy(),
                "focal": np.ones((1, 2), np.float32),
                "principal_point": np.zeros((1, 2), np.float32),
                "object_index": np.full((1,), self.object_index, np.int64),
                # Graphs with a separate root-depth input (the official code passes it beside the root):
                # the same reference depth. Backends feed only the inputs their graph has.
                "root_depth": REFERENCE_ROOT_M[:, 2].copy()}

    def parse(self, outputs: dict) -> CropPrediction:
        joints = np.asarray(outputs["hand_joints"], np.float64)[0]              # (21, 3) canonical order
        depth = joints[:, 2]
        hand = HandInCrop(side=RIGHT, presence=1.0, uv_crop=joints[:, :2] / depth[:, None],
                          joint_confidence=np.ones(21), rel_depth=depth - depth[WRIST])
        wrist_offset = np.array([0.0, 0.0, depth[WRIST] - REFERENCE_ROOT_M[0, 2]])  # wrist - given root, z only
        obj = ObjectInCrop(rotation=np.asarray(outputs["object_rotation"], np.float64)[0],
                           translation_from_wrist=np.asarray(outputs["object_translation"], np.float64)[0]
                           - REFERENCE_ROOT_M[0] - wrist_offset,
                           relative_to=RIGHT, confidence=1.0)
        return CropPrediction(hands=[hand], objects=[obj])
