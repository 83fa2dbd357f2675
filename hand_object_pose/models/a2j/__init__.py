"""A2J-Transformer (Jiang et al., CVPR 2023): anchor-to-joint regression of two hands from an RGB crop.

`PRESETS` maps preset names to `A2JConfig`; `build(config)` returns an untrained `A2JTransformer`.
Official checkpoints load through `checkpoint.load_official`; `FAMILY` is the registry's family object.
"""
from .config import A2JConfig
from .family import FAMILY, PRESETS
from .model import A2JTransformer
from .output import A2JOutput, output_to_camera


def build(config: A2JConfig) -> A2JTransformer:
    return A2JTransformer(config)


__all__ = ["FAMILY", "PRESETS", "build", "A2JConfig", "A2JTransformer", "A2JOutput", "output_to_camera"]
