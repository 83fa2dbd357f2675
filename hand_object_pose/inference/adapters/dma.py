"""Dense Mutual Attention adapter: one right hand (2.5D from its mesh joints) and the object's pose.

The DMA graph (`export.dma_onnx.DMAInferenceGraph`) takes, beside the BGR crop, the hand root in the
crop camera, the crop intrinsics and an object template index, and only uses the first three to
convert its lixel-grid outputs to metres (models.md §4.1-4.2): joints = back-projection of
(grid x, y) x 4 crop pixels at depth (grid z / 64 x 2 - 1) x 0.15 m + root z; object translation =
its predicted offset + root. Feeding a reference root (0, 0, 1 m) and unit intrinsics (focal 1,
principal point 0) makes both conversions invertible: crop pixels = x / z, y / z; depth relative
to the root = z - 1. The model's wrist (regressed from its mesh) need not sit exactly at the root
it was given; the pipeline places the predicted wrist, so depths are taken relative to it, and the
object offset from that wrist is translation - root - (0, 0, wrist depth - 1). The pipeline then
places the hand with its own root-depth sources, as for every other model.

DMA predicts neither hand presence nor per-joint confidence: both are reported as 1.0 (the hand is
assumed present in the crop, as in the authors' evaluation), and so is the object confidence.
"""
from __future__ import annotations

import numpy as np
from torch import nn

from hand_object_pose.export.dma_onnx import INPUT_NAMES, OUTPUT_NAMES, DMAInferenceGraph
from hand_object_pose.geometry.skeleton import WRIST
from hand_object_pose.inference.result import RIGHT

from .base import CropPrediction, HandInCrop, ObjectInCrop, crop_to_input

REFERENCE_ROOT_M = np.array([[0.0, 0.0, 1.0]], np.float32)


class DMAAdapter:
    """Reads the outputs of `export.dma_onnx.DMAInferenceGraph` (torch backend and ONNX files alike).

    The object template is the graph's first (index 0): an ONNX file carries the templates it was
    exported with, in the order of the object catalogue it was built from.
    """

    family = "dma"
    input_names = INPUT_NAMES
    output_names = OUTPUT_NAMES
    predicts_object = True
    sides = (RIGHT,)

    def __init__(self, config):
        self.config = config
        self.input_size = config.input_size

    def inference_module(self, model) -> nn.Module:
        return DMAInferenceGraph(model)

    def load_official(self, model, path: str) -> None:
        from hand_object_pose.models.dma.checkpoint import load_official_weights, read_official_checkpoint
        load_official_weights(model, read_official_checkpoint(path))

    def preprocess(self, crop_rgb: np.ndarray) -> dict:
        return {"image": crop_to_input(crop_rgb, bgr=True),  # the authors' test path keeps cv2's BGR
                "root_joint": REFERENCE_ROOT_M.copy(),
                "focal": np.ones((1, 2), np.float32),
                "principal_point": np.zeros((1, 2), np.float32),
                "object_index": np.zeros((1,), np.int64),
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
