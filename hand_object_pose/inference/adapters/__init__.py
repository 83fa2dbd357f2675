"""Per-family model adapters: crop -> network inputs, network outputs -> `CropPrediction`.

Each adapter module registers its class for one or more families with `@adapter_for(...)`; the
modules of this package are imported on first use, so a new family's adapter is one new module here.
"""
from __future__ import annotations

from hand_object_pose.models.family import PerFamilyRegistry

from .base import CropPrediction, HandInCrop, ModelAdapter, ObjectInCrop, crop_to_input

_ADAPTERS = PerFamilyRegistry(__name__, __path__, "inference adapter", skip=("base",))
adapter_for = _ADAPTERS.register
"""Class decorator: register a `ModelAdapter` subclass for these family names."""


def make_adapter(family, model_config, mano_path: str = "") -> ModelAdapter:
    """The adapter for a `models.family.ModelFamily` and its config. `mano_path`: MANO npz directory for
    models that predict MANO parameters ('' = the stand-in hand)."""
    return _ADAPTERS.lookup(family.name)(family, model_config, mano_path)


__all__ = ["CropPrediction", "HandInCrop", "ModelAdapter", "ObjectInCrop", "adapter_for", "crop_to_input",
           "make_adapter"]
