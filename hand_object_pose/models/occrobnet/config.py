"""OccRobNet configuration and named presets.

OccRobNet (Garg, Ghosh, Pradhan, arXiv 2503.21723) has no public code, checkpoints or
hyper-parameters. It is built here as a Keypoint Transformer variant: `OccRobNetConfig` extends
`KptConfig` (same token pipeline, query layout, heads, losses and evaluation) with the fields below.
Every value the paper does not give is a choice of this project, marked "choice" and explained.

Paper facts used: ResNet-50 + FPN backbone; per-joint 2D heat-maps (21 per hand) and an object
segmentation; CIET (CoTNet-like) refinement of the features the heat-maps are read from; 20 object
points from the segmentation; sigmoid ⊙ softmax attention in the encoder self-attention and in the
decoder; keypoint identity with γ = 3 px; KPT-style hand / object pose heads and losses.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..kpt.config import KptConfig
from .attention import ATTENTION_WEIGHTS

TOKEN_MAPS = ("max", "sum")


@dataclass(frozen=True)
class OccRobNetConfig(KptConfig):
    """KptConfig fields keep their meaning (see kpt/config.py); `big_decoder` has no role (no U-Net)
    and must stay False. OccRobNet's own fields:

    Attributes:
        fpn_channels: FPN width (choice: 256, the FPN paper's).
        use_ciet: refine P2 with CIET before the heat-map heads and token sampling (the paper's
            Table III ablation "w/o CIET" sets False).
        ciet_layers: CIET blocks in a row on P2 (choice: 1; the paper shows one block).
        ciet_kernel: key-context / attention window size k (the paper: "3 convolution" -> 3).
        ciet_attention_groups: channel groups sharing one k x k attention window (choice: 8, CoTNet's
            share_planes).
        ciet_reduction: width reduction of the θ 1x1 conv, 2C -> 2C / r (choice: 4, CoTNet's factor).
        ciet_key_groups: groups of the k x k key convolution (choice: 4, as CoTNet).
        attention: "gated" = softmax ⊙ sigmoid in every attention of encoder and decoder (paper);
            "softmax" = plain KPT attention (Table III ablation "w/o sigmoid att.").
        token_map: how the 42 per-joint heat-maps become the one map the peak detector reads
            (choice: "max" over joints, so a map peak has the trained Gaussian height 255 and KPT's
            threshold 20 keeps its meaning; "sum" is KPT's summed map).
        max_object_tokens: object samples (paper: 20 object points), of `max_tokens` = 100 (KPT).

    Heat-map resolution (choice): the heads run on the CIET-refined P2 (stride 4, 64 x 64) and are
    bilinearly upsampled to `heatmap_size` = 128, the KPT grid, so token positions, γ = 3 px, the
    weak-perspective camera and 2.5D bins all keep KPT's units (the paper's maps are 32 x 32).
    """

    max_object_tokens: int = 20
    fpn_channels: int = 256
    use_ciet: bool = True
    ciet_layers: int = 1
    ciet_kernel: int = 3
    ciet_attention_groups: int = 8
    ciet_reduction: int = 4
    ciet_key_groups: int = 4
    attention: str = "gated"
    token_map: str = "max"

    def __post_init__(self):
        super().__post_init__()
        if self.big_decoder:
            raise ValueError("OccRobNet has no U-Net decoder: big_decoder must be False")
        if self.attention not in ATTENTION_WEIGHTS:
            raise ValueError(f"attention {self.attention!r}; expected one of {tuple(ATTENTION_WEIGHTS)}")
        if self.token_map not in TOKEN_MAPS:
            raise ValueError(f"token_map {self.token_map!r}; expected one of {TOKEN_MAPS}")
        if self.ciet_layers < 1 or self.ciet_kernel < 1 or self.ciet_kernel % 2 == 0:
            raise ValueError(f"ciet_layers must be >= 1 and ciet_kernel odd, got {self.ciet_layers}, "
                             f"{self.ciet_kernel}")
        for name in ("ciet_attention_groups", "ciet_key_groups"):
            if self.fpn_channels % getattr(self, name):
                raise ValueError(f"fpn_channels {self.fpn_channels} must be divisible by {name} {getattr(self, name)}")


PRESETS: dict[str, OccRobNetConfig] = {
    # InterHand2.6M, 2.5D representation (the paper's Table I setting); 1 decoder layer like the KPT
    # checkpoint it is compared with (choice).
    "occrobnet_ih26m": OccRobNetConfig(pose_representation="2p5D", dec_layers=1),
    # InterHand2.6M with MANO angles and 6 decoder layers (KPT's demo setting; choice).
    "occrobnet_ih26m_angles": OccRobNetConfig(pose_representation="angles", dec_layers=6),
    # HO-3D v3, one hand + object, 3D bone vectors, 6 decoder layers (KPT's HO-3D setting; choice).
    "occrobnet_ho3d": OccRobNetConfig(pose_representation="3D", has_object=True, dec_layers=6),
    # H2O-3D, two hands + object (+ left-relative object translation), 1 decoder layer (as KPT's H2O-3D).
    "occrobnet_h2o3d": OccRobNetConfig(pose_representation="3D", has_object=True, object_left_translation=True,
                                       dec_layers=1),
    # Table III ablations on HO-3D: CIET without the sigmoid gate, and the sigmoid gate without CIET.
    "occrobnet_ho3d_ciet_only": OccRobNetConfig(pose_representation="3D", has_object=True, dec_layers=6,
                                                attention="softmax"),
    "occrobnet_ho3d_sigmoid_only": OccRobNetConfig(pose_representation="3D", has_object=True, dec_layers=6,
                                                   use_ciet=False),
    # A ResNet-34 H2O-3D model for CPU training on synthetic data (like kpt_h2o3d_3d_r34).
    "occrobnet_h2o3d_r34": OccRobNetConfig(pose_representation="3D", has_object=True, object_left_translation=True,
                                           dec_layers=1, backbone_depth=34),
}
