"""Per-family model adapters: crop -> network inputs, network outputs -> `CropPrediction`.

Each adapter module registers its class for one or more families with `@adapter_for(...)`; the
modules of this package are imported on first use, so a new family's adapter is one new module here.
"""
from __future__ import annotations

import functools
import importlib
import pkgutil

from .base import CropPrediction, HandInCrop, ModelAdapter, ObjectInCrop, crop_to_input

_ADAPTERS: dict = {}


def adapter_for(*family_names: str):
    """Class decorator: register a `ModelAdapter` subclass for these family names."""
    def register(cls):
        for name in family_names:
            _ADAPTERS[name] = cls
        return cls
    return register


@functools.lru_cache(maxsize=None)  # once: a module imported directly must not hide the others
def _import_adapter_modules() -> None:
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base":
            importlib.import_module(f"{__name__}.{module.name}")


def make_adapter(family, model_config, mano_path: str = "") -> ModelAdapter:
    """The adapter for a `models.family.ModelFamily` and its config. `mano_path`: MANO npz directory for
    models that predict MANO parameters ('' = the stand-in hand)."""
    _import_adapter_modules()
    if family.name not in _ADAPTERS:
        raise ValueError(f"the inference pipeline has no adapter for model family {family.name!r} "
                         f"(adapters exist for: {', '.join(sorted(_ADAPTERS))})")
    return _ADAPTERS[family.name](family, model_config, mano_path)


__all__ = ["CropPrediction", "HandInCrop", "ModelAdapter", "ObjectInCrop", "adapter_for", "crop_to_input",
           "make_adapter"]
