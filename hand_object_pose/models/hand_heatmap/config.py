"""Configuration and presets of the per-hand 2.5D heat-map network (`hand_heatmap`)."""
from __future__ import annotations

from dataclasses import dataclass

NUM_HAND_JOINTS = 21
"""Hand heat-maps: the canonical 21 joints (geometry.skeleton), wrist first."""

NUM_OBJECT_POINTS = 9
"""Object heat-maps: the 8 corners of the object's catalogue box (corners_rest order) and its centre."""

NUM_FRAME_POINTS = 2 * NUM_HAND_JOINTS + NUM_OBJECT_POINTS
"""Coarse-pass heat-maps on a whole-frame crop: right hand 21, left hand 21, object 9."""

NUM_POINTS = NUM_HAND_JOINTS + NUM_OBJECT_POINTS + NUM_FRAME_POINTS
"""All heat-map channels: hand crop 0-20, object crop 21-29, frame crop 30-80."""

SYNTHETIC_OBJECT_IDS = ("synthetic_box", "synthetic_cylinder", "synthetic_sphere", "synthetic_mug", "synthetic_bottle")
"""The synthetic generator's objects (synthetic.objects.default_objects), in its order."""

SYNTHETIC_OBJECT_BOXES = {
    "synthetic_box": ((-0.03, -0.045, -0.025), (0.03, 0.045, 0.025)),
    "synthetic_cylinder": ((-0.035, -0.035, -0.06), (0.035, 0.035, 0.06)),
    "synthetic_sphere": ((-0.04, -0.04, -0.04), (0.04, 0.04, 0.04)),
    "synthetic_mug": ((-0.05598, -0.0412, -0.0475), (0.05598, 0.0412, 0.0475)),
    "synthetic_bottle": ((-0.033, -0.033, -0.1), (0.033, 0.033, 0.1)),
}
"""Object id -> (min corner, max corner) of its box in its own frame, metres (the generator's corners_rest;
corner k = (x, y, z) with x from bit 2, y from bit 1, z from bit 0 of k, 0 = min, 1 = max)."""

BACKBONES = ("resnet18", "landmark_lite")
"""The feature extractors a HandHeatmapConfig can name; both end at stride 32."""

HAND_CHANNELS = slice(0, NUM_HAND_JOINTS)
OBJECT_CHANNELS = slice(NUM_HAND_JOINTS, NUM_HAND_JOINTS + NUM_OBJECT_POINTS)
FRAME_CHANNELS = slice(NUM_HAND_JOINTS + NUM_OBJECT_POINTS, NUM_POINTS)

SEGMENTATION_OUTPUT = "object_segmentation"
"""The graph output of a network with an object segmentation head (HandHeatmapConfig.object_segmentation)."""


@dataclass(frozen=True)
class HandHeatmapConfig:
    """input_size: side of the square crop (px). backbone: "resnet18" (ResNet-18, `base_width` stem/first-stage
    channels, 32 = half width) or "landmark_lite" (the body of MediaPipe's hand landmark network,
    models.backbones.landmark_lite, which training can start from its real-photo weights; base_width unused).
    deconv_channels: channels of each of the `num_deconv` stride-2 transposed convolutions that bring stride 32
    back to the heat-map grid. heatmap_size = input_size / 32 * 2 ** num_deconv.
    depth_scale: metres per unit of the relative-depth maps' raw output (targets are divided by it).
    object_ids: the object classes the class head tells apart (the synthetic generator's catalogue ids);
    the Estimator searches the pose of the predicted class's box (SYNTHETIC_OBJECT_BOXES) that its corner
    heat-maps find most likely (inference/object_heatmap_pose.py).
    object_segmentation: a head of 1 + len(object_ids) logits per heat-map cell of an object crop (background,
    then each class): which pixels are the object, and of which class, for the fit to a depth image
    (inference/object_depth_fit.py). The object network's (its own training config turns it on)."""

    input_size: int = 128
    backbone: str = "resnet18"
    base_width: int = 32
    deconv_channels: int = 128
    num_deconv: int = 3
    depth_scale: float = 0.1
    object_ids: tuple = SYNTHETIC_OBJECT_IDS
    object_segmentation: bool = False

    @property
    def heatmap_size(self) -> int:
        return self.input_size // 32 * 2 ** self.num_deconv

    def __post_init__(self):
        if self.input_size % 32:
            raise ValueError(f"input_size must be a multiple of 32, got {self.input_size}")
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")
        if self.base_width < 1 or self.deconv_channels < 1 or not 1 <= self.num_deconv <= 5:
            raise ValueError("base_width, deconv_channels must be >= 1 and num_deconv in 1..5")


PRESETS = {
    # The shipped default network: ResNet-18 at half width, 128 px per-hand crops, 32x32 heat-maps.
    "hand_heatmap_r18h": HandHeatmapConfig(),
    # The same heads on the body of MediaPipe's landmark network (0.9 M parameters, depthwise convolutions),
    # trained from its real-photo weights (task option backbone_init).
    "hand_heatmap_ll": HandHeatmapConfig(backbone="landmark_lite"),
}
