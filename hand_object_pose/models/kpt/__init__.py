"""Keypoint Transformer: presets, builder, official-checkpoint import.

    from hand_object_pose.models.kpt import PRESETS, build
    model = build(PRESETS["kpt_ho3d_3d"]).eval()
"""
from .checkpoint import convert_state_dict, infer_config, load_official, read_official_checkpoint
from .config import KptConfig, PRESETS
from .family import FAMILY
from .model import KeypointTransformer
from .output import KptOutput


def build(config: KptConfig) -> KeypointTransformer:
    """An untrained KeypointTransformer for `config`."""
    return KeypointTransformer(config)


__all__ = ["FAMILY", "PRESETS", "KptConfig", "KeypointTransformer", "KptOutput", "build", "convert_state_dict",
           "infer_config", "load_official", "read_official_checkpoint"]
