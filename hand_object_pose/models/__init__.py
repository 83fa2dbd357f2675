"""Pure-torch networks: backbones, attention layers, the four models and their presets.

No ROS, no datasets, no file I/O beyond `load_state_dict`.
"""
from .registry import build_model, get_preset, preset_names

__all__ = ["build_model", "get_preset", "preset_names"]
