"""Keypoint Transformer configuration and the named presets.

The four released configurations of the official code (shreyashampali/kypt_transformer) differ in
dataset (which heads exist), pose representation, U-Net decoder size and number of decoder layers;
those are part of a checkpoint's identity (the official loader is strict), so each has a preset
here. Table 5 of the paper varies the backbone depth of the InterHand2.6M model:
`kpt_ih26m_2p5d_r18`/`_r34` are those variants; the other `_r18`/`_r34` presets are backbone variants of
the HO-3D / H2O-3D models.
"""
from __future__ import annotations

from dataclasses import dataclass

POSE_REPRESENTATIONS = ("3D", "2p5D", "angles")
SELECTION_MODES = ("greedy", "maxpool")


@dataclass(frozen=True)
class KptConfig:
    """Everything that shapes a Keypoint Transformer.

    Attributes:
        pose_representation: "3D" (parent-relative bone vectors, metres), "2p5D" (per-axis 1D
            heat-maps on the 128 grid + parent-relative depth bins) or "angles" (MANO axis-angle + betas).
        has_object: object segmentation head, object tokens and object queries (HO-3D / H2O-3D).
        object_left_translation: extra head for the object translation relative to the left hand
            root (H2O-3D, two hands).
        backbone_depth: ResNet depth (18, 34, 50).
        big_decoder: full-width U-Net skips (official `--use_big_decoder`) instead of 1x1-reduced ones.
        enc_layers, dec_layers: transformer depth (decoder: 1 or 6 in the released checkpoints).
        d_model, nhead, dim_feedforward, dropout: transformer width (official 256, 8, 2048, 0.1).
        token_dim: width of the token feature MLP output; the remaining `d_model - token_dim`
            channels are the concatenated sine position code (official 224 + 32).
        max_tokens: token sequence length (official `max_num_peaks` = 100).
        max_object_tokens: object samples (of `max_tokens`) for object configs (official 50).
        hand_threshold, object_threshold: heat-map / segmentation values a peak must exceed
            (units of the maps, which are trained against 255-scaled Gaussians).
        nms_radius: suppression radius of the peak detector, 128-grid pixels (Euclidean).
        selection: peak detector used by `forward`: "greedy" (the official algorithm, exact) or
            "maxpool" (max-pool NMS + top-k; see selection.py for how it differs).
        heatmap_size: side of the heat-map grid (input 256 / 2).
        num_shape_params: MANO betas (angles representation).
    """

    pose_representation: str = "3D"
    has_object: bool = False
    object_left_translation: bool = False
    backbone_depth: int = 50
    big_decoder: bool = False
    enc_layers: int = 6
    dec_layers: int = 6
    d_model: int = 256
    nhead: int = 8
    dim_feedforward: int = 2048
    dropout: float = 0.1
    token_dim: int = 224
    max_tokens: int = 100
    max_object_tokens: int = 50
    hand_threshold: float = 20.0
    object_threshold: float = 15.0
    nms_radius: float = 5.0
    selection: str = "greedy"
    heatmap_size: int = 128
    num_shape_params: int = 10

    def __post_init__(self):
        if self.pose_representation not in POSE_REPRESENTATIONS:
            raise ValueError(f"pose_representation {self.pose_representation!r}; "
                             f"expected one of {POSE_REPRESENTATIONS}")
        if self.selection not in SELECTION_MODES:
            raise ValueError(f"selection {self.selection!r}; expected one of {SELECTION_MODES}")
        if self.backbone_depth not in (18, 34, 50):
            raise ValueError(f"backbone_depth {self.backbone_depth}; expected 18, 34 or 50")
        if self.object_left_translation and not self.has_object:
            raise ValueError("object_left_translation needs has_object=True")
        if not 0 < self.token_dim < self.d_model or (self.d_model - self.token_dim) % 4:
            raise ValueError(f"token_dim {self.token_dim} must leave a multiple of 4 position channels in d_model "
                             f"{self.d_model}")
        if self.has_object and not 0 < self.max_object_tokens < self.max_tokens:
            raise ValueError("max_object_tokens must be in (0, max_tokens) for object configs")

    @property
    def max_hand_tokens(self) -> int:
        return self.max_tokens - self.max_object_tokens if self.has_object else self.max_tokens

    @property
    def pos_dim(self) -> int:
        return self.d_model - self.token_dim

    @property
    def num_classes(self) -> int:
        """Token identity classes: 0 = no joint, 1..42 = joint id + 1, 43 = object (object configs)."""
        return 44 if self.has_object else 43


PRESETS: dict[str, KptConfig] = {
    # InterHand2.6M, 2.5D, small decoder, 1 decoder layer (paper Table 1 checkpoint).
    "kpt_ih26m_2p5d": KptConfig(pose_representation="2p5D", big_decoder=False, dec_layers=1),
    # InterHand2.6M, MANO angles, big decoder, 6 decoder layers (official demo checkpoint).
    "kpt_ih26m_angles": KptConfig(pose_representation="angles", big_decoder=True, dec_layers=6),
    # HO-3D v2, 3D joint vectors + object, big decoder, 6 decoder layers (paper Table 2 checkpoint).
    "kpt_ho3d_3d": KptConfig(pose_representation="3D", has_object=True, big_decoder=True, dec_layers=6),
    # H2O-3D, two hands + object (+ left-relative object translation), small decoder, 1 decoder layer.
    "kpt_h2o3d_3d": KptConfig(pose_representation="3D", has_object=True, object_left_translation=True,
                              big_decoder=False, dec_layers=1),
    # Paper Table 5 (InterHand2.6M; 28M / 38M / 48M parameters): the `kpt_ih26m_2p5d` model with a
    # ResNet-18 / ResNet-34 backbone (no released weights).
    "kpt_ih26m_2p5d_r18": KptConfig(pose_representation="2p5D", big_decoder=False, dec_layers=1,
                                    backbone_depth=18),
    "kpt_ih26m_2p5d_r34": KptConfig(pose_representation="2p5D", big_decoder=False, dec_layers=1,
                                    backbone_depth=34),
    # The HO-3D model (big decoder) with a ResNet-18 / ResNet-34 backbone (no released weights; 37.4M /
    # 47.5M parameters, so not the Table 5 models).
    "kpt_ho3d_3d_r18": KptConfig(pose_representation="3D", has_object=True, big_decoder=True, dec_layers=6,
                                 backbone_depth=18),
    "kpt_ho3d_3d_r34": KptConfig(pose_representation="3D", has_object=True, big_decoder=True, dec_layers=6,
                                 backbone_depth=34),
    # The H2O-3D heads with a ResNet-34 backbone and the small decoder (the first candidate for the
    # synthetic-data default; at 256x256 its export is too large for the 40 MB budget even compact).
    "kpt_h2o3d_3d_r34": KptConfig(pose_representation="3D", has_object=True, object_left_translation=True,
                                  big_decoder=False, dec_layers=1, backbone_depth=34),
    # The planned shipped default (docs/demo.md), small enough to commit (32 MiB with compact weights)
    # and to run in ~30 ms on 2 CPU threads: the H2O-3D heads with ResNet-18, a 128x128 input (64 grid),
    # 3 encoder layers, 512-wide feed-forward and a 3-grid-pixel NMS radius (5 on the 128 grid would merge
    # neighbouring fingertips at half scale).
    "kpt_h2o3d_3d_lite": KptConfig(pose_representation="3D", has_object=True, object_left_translation=True,
                                   big_decoder=False, dec_layers=1, backbone_depth=18, heatmap_size=64,
                                   enc_layers=3, dim_feedforward=512, nms_radius=3.0),
}
