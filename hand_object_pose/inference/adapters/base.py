"""What every model adapter produces: the network's answer for one crop, in crop terms.

An adapter knows one model family: how to turn a crop into the network's input arrays, which
tensor-only module the torch backend runs (the same graph the family exports to ONNX), and how to
read the network's named outputs. Everything after that (back to the full image, absolute depth,
smoothing) is family-independent and lives in the pipeline.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

import numpy as np
from torch import nn


@dataclass
class HandInCrop:
    """One hand as the network sees it in the crop.

    side: "right" | "left". presence: probability in [0, 1].
    uv_crop: (21, 2) keypoints in crop pixels, canonical order.
    joint_confidence: (21,) in [0, 1].
    rel_depth: (21,) each joint's depth (z) minus the wrist's, metres.
    joints_rel: (21, 3) joints minus the wrist, metres, camera axes; None for 2.5D models, whose 3D
      shape follows from uv + rel_depth once the absolute depth is known.
    mano_pose: (48,) / mano_shape: (10,) when the model predicts MANO parameters, with
      vertices_rel (778, 3) the mesh minus the wrist (metres, camera axes), faces (1538, 3) and
      wrist_rotation (3, 3) camera <- wrist frame.
    """

    side: str
    presence: float
    uv_crop: np.ndarray
    joint_confidence: np.ndarray
    rel_depth: np.ndarray
    joints_rel: Optional[np.ndarray] = None
    mano_pose: Optional[np.ndarray] = None
    mano_shape: Optional[np.ndarray] = None
    vertices_rel: Optional[np.ndarray] = None
    faces: Optional[np.ndarray] = None
    wrist_rotation: Optional[np.ndarray] = None


@dataclass
class ObjectInCrop:
    """The object pose relative to a hand's wrist: camera <- object rotation (3, 3), translation (3,)
    metres from the `relative_to` hand's wrist to the object frame origin, camera axes."""

    rotation: np.ndarray
    translation_from_wrist: np.ndarray
    relative_to: str
    confidence: float


@dataclass
class CropPrediction:
    hands: list = field(default_factory=list)     # list[HandInCrop], right first
    objects: list = field(default_factory=list)   # list[ObjectInCrop]


def crop_to_input(crop_rgb: np.ndarray, bgr: bool = False) -> np.ndarray:
    """(S, S, 3) uint8 crop -> (1, 3, S, S) float32 in [0, 1]: the only normalisation all four
    official pipelines use (no mean/std). `bgr` swaps to BGR for models trained on cv2 BGR images."""
    image = crop_rgb[..., ::-1] if bgr else crop_rgb
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32) * np.float32(1.0 / 255.0)


class ModelAdapter:
    """Base class of the per-family adapters; one subclass per family, registered with `adapter_for`.

    Attributes set by every adapter: `family` (the `models.family.ModelFamily`), `config`, `input_size`
    (px), `input_names` / `output_names` (the graph's tensors), `predicts_object`, `sides` (the hand
    sides the network reports, right first).
    """

    predicts_object = False

    def __init__(self, family, config, mano_path: str = ""):
        self.family = family
        self.config = config
        self.input_size = family.input_size(config)
        self.input_names = tuple(family.input_names(config))
        self.output_names = tuple(family.output_names(config))

    # --- optional steps (no-ops unless a family needs them) ---------------------------------------

    def use_catalogue(self, catalogue, object_id: str, mano_path: str = "") -> None:
        """Take what the network is built around from the object catalogue (templated families)."""

    def object_surface(self, object_id: str) -> Optional[tuple]:
        """(object_depth_fit.SurfaceSamples, start turns (M, 3, 3)) of an object whose pose the pipeline may fit
        to a depth image; None (the default) for no fit."""
        return None

    def build_model(self) -> nn.Module:
        """The torch model (untrained weights) this adapter reads."""
        return self.family.build(self.config)

    def check_onnx_metadata(self, metadata: Mapping[str, str], path: str, sidecar: Optional[dict] = None) -> None:
        """Refuse an ONNX file whose baked-in constants do not match this configuration (ValueError)."""

    # --- per frame --------------------------------------------------------------------------------

    def inference_module(self, model) -> nn.Module:
        return self.family.inference_graph(model)

    def preprocess(self, crop_rgb: np.ndarray) -> dict:
        """(S, S, 3) uint8 RGB crop -> the graph's named input arrays (batch 1)."""
        return {"image": crop_to_input(crop_rgb, bgr=self.family.channels == "BGR")}

    def parse(self, outputs: dict) -> CropPrediction:
        """The graph's named outputs (batch 1) -> the prediction in crop terms."""
        raise NotImplementedError
