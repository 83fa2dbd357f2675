"""The one place that maps names to model families, and preset names to (family, config).

Each family package (`models/<name>/`) exposes `FAMILY`, a `models.family.ModelFamily`. Families are
imported lazily so that using one model does not import the others. This is the only module that
knows the families' names; everything else asks a family object.
"""
from __future__ import annotations

import importlib

from .family import ModelFamily

FAMILY_MODULES = {
    "kpt": "hand_object_pose.models.kpt",
    "occrobnet": "hand_object_pose.models.occrobnet",
    "a2j": "hand_object_pose.models.a2j",
    "dma": "hand_object_pose.models.dma",
    "hand_landmarks": "hand_object_pose.models.hand_landmarks",
    "hand_heatmap": "hand_object_pose.models.hand_heatmap",
}


def family_names() -> list[str]:
    return list(FAMILY_MODULES)


def get_family(name: str) -> ModelFamily:
    """The family object registered as `name`; ValueError listing the known names otherwise."""
    if name not in FAMILY_MODULES:
        raise ValueError(f"unknown model family {name!r}; known families: {', '.join(FAMILY_MODULES)}")
    return importlib.import_module(FAMILY_MODULES[name]).FAMILY


def families() -> list[ModelFamily]:
    return [get_family(name) for name in FAMILY_MODULES]


def preset_names() -> list[str]:
    return sorted(p for family in families() for p in family.presets)


def get_preset(name: str):
    """(family object, config) for a preset name; ValueError listing the known presets otherwise."""
    for family in families():
        if name in family.presets:
            return family, family.presets[name]
    raise ValueError(f"unknown model preset {name!r}; known presets: {', '.join(preset_names())}")


def build_model(name: str, **overrides):
    """An untrained model from a preset name; keyword overrides replace config fields."""
    family, config = get_preset(name)
    return family.build(family.with_overrides(config, overrides))
