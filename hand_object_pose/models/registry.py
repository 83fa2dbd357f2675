"""Preset lookup across model families, so callers build any model from one name.

Each family package (`models/kpt`, `models/a2j`, `models/dma`) exposes `PRESETS`: a dict from
preset name to a config object, and `build(config) -> nn.Module`. Families are imported lazily so
that using one model does not import the others.
"""
from __future__ import annotations

import importlib

FAMILY_MODULES = ("hand_object_pose.models.kpt", "hand_object_pose.models.a2j", "hand_object_pose.models.dma",
                  "hand_object_pose.models.occrobnet")


def _families():
    for name in FAMILY_MODULES:
        try:
            yield importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real import error inside an existing family
                raise


def preset_names() -> list[str]:
    return sorted(p for family in _families() for p in family.PRESETS)


def get_preset(name: str):
    """Return (family_module, config) for a preset name; ValueError listing the known names otherwise."""
    for family in _families():
        if name in family.PRESETS:
            return family, family.PRESETS[name]
    raise ValueError(f"unknown model preset {name!r}; known presets: {', '.join(preset_names())}")


def build_model(name: str, **overrides):
    """Build an untrained model from a preset name; keyword overrides replace config fields."""
    family, config = get_preset(name)
    if overrides:
        import dataclasses
        config = dataclasses.replace(config, **overrides)
    return family.build(config)
