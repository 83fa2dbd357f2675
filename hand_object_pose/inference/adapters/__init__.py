"""Per-family model adapters: crop -> network inputs, network outputs -> `CropPrediction`."""
from __future__ import annotations

from .base import CropPrediction, HandInCrop, ObjectInCrop, crop_to_input


def make_adapter(family_module, model_config, mano_path: str = ""):
    """The adapter for a model family (by its `hand_object_pose.models.<family>` module). `mano_path`:
    MANO npz directory for models that predict MANO parameters ('' = the stand-in hand)."""
    family = family_module.__name__.rsplit(".", 1)[-1]
    if family == "a2j":
        from .a2j import A2JAdapter
        return A2JAdapter(model_config)
    if family in ("kpt", "occrobnet"):  # OccRobNet keeps KPT's outputs and export graph (docs/occrobnet.md)
        from .kpt import KptAdapter
        return KptAdapter(model_config, mano_path)
    if family == "dma":
        from .dma import DMAAdapter
        return DMAAdapter(model_config)
    raise ValueError(f"the inference pipeline has no adapter for model family {family!r} "
                     "(supported: kpt, occrobnet, a2j, dma)")


__all__ = ["CropPrediction", "HandInCrop", "ObjectInCrop", "crop_to_input", "make_adapter"]
