"""OccRobNet (Garg, Ghosh, Pradhan, arXiv 2503.21723) as a Keypoint Transformer variant.

    from hand_object_pose.models.occrobnet import PRESETS, build
    model = build(PRESETS["occrobnet_h2o3d"]).eval()

No official code or weights exist; every open choice is a named `OccRobNetConfig` field (config.py,
docs/occrobnet.md). Train it with `hand_object_pose.models.kpt.criterion.KptCriterion`, which
compares the per-joint heat-maps with per-joint Gaussians.
"""
from .attention import gated_attention
from .ciet import CIET, CIETBlock
from .config import PRESETS, OccRobNetConfig
from .family import FAMILY
from .fpn import FPN
from .model import OccRobNet, OccRobNetOutput


def build(config: OccRobNetConfig) -> OccRobNet:
    """An untrained OccRobNet for `config`."""
    return OccRobNet(config)


__all__ = ["FAMILY", "PRESETS", "OccRobNetConfig", "OccRobNet", "OccRobNetOutput", "CIET", "CIETBlock", "FPN",
           "gated_attention", "build"]
