"""Pure-torch networks: backbones, attention layers, the model families and their presets.

No ROS, no datasets; files only through `weights_file` (torch.load with weights_only=True).
"""
from .family import ModelFamily
from .registry import build_model, family_names, get_family, get_preset, preset_names

__all__ = ["ModelFamily", "build_model", "family_names", "get_family", "get_preset", "preset_names"]
