"""A2J-Transformer configuration (defaults = the official InterHand2.6M config)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class A2JConfig:
    """Hyper-parameters of `A2JTransformer`.

    Output space: joints are predicted in a cube of `output_size`^3: x, y in pixels of the square
    input crop (`input_size` = `output_size` = 256 in the official config), z the root-relative
    depth mapped as z = (d_mm / (depth_range_mm / 2) + 1) / 2 * output_size.
    """

    num_joints: int = 42                 # IH2.6M: right 0-20 (wrist 20), left 21-41 (wrist 41)
    input_size: int = 256                # square RGB crop, values in [0, 1] (uint8 / 255, no mean/std)
    output_size: int = 256               # side of the output cube (x, y in crop pixels)
    depth_range_mm: float = 400.0        # z covers root depth +- depth_range_mm / 2
    # Anchors: a grid of anchors_per_side^2 in-plane positions (stride output_size/anchors_per_side,
    # at cell centres - 0.5) times anchor_depths depth levels.
    anchors_per_side: int = 16
    anchor_depths: int = 3
    train_anchors: bool = True           # the official code effectively trains them (models.md 2.1)
    # Backbone: ResNet-50, frozen BN, dilated last stage (DC5).
    backbone_depth: int = 50
    # Transformer.
    d_model: int = 256
    n_heads: int = 8
    n_levels: int = 4
    n_points: int = 4
    enc_layers: int = 6
    dec_layers: int = 6
    ffn_dim: int = 1024
    dropout: float = 0.1
    # Optional heads absent from the official checkpoint (see models/a2j/README in docs/a2j.md).
    presence_head: bool = False
    confidence_head: bool = False

    @property
    def num_anchors(self) -> int:
        return self.anchors_per_side ** 2 * self.anchor_depths

    def __post_init__(self):
        if self.num_joints % 2:
            raise ValueError(f"num_joints must be even (two hands), got {self.num_joints}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} must be divisible by n_heads {self.n_heads}")
        if self.n_levels != 4:
            raise ValueError(f"A2J uses 4 feature levels (C3, C4, C5, extra); got n_levels={self.n_levels}")
