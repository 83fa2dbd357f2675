"""The per-hand 2.5D heat-map network (`hand_heatmap`): see model.py and docs/hand_heatmap.md."""
from .config import PRESETS, HandHeatmapConfig
from .family import FAMILY
from .model import HandHeatmapNet, soft_argmax

__all__ = ["FAMILY", "PRESETS", "HandHeatmapConfig", "HandHeatmapNet", "soft_argmax"]
