"""The per-hand 2.5D heat-map network: a square crop -> per-point heat-map logits, relative-depth maps
and two presence logits.

Architecture (SimpleBaseline-style): ResNet-18 (models.backbones.resnet, `base_width` channels) or the body
of MediaPipe's landmark network (models.backbones.landmark_lite; config.backbone) -> C5 at stride 32 ->
`num_deconv` x (ConvTranspose 4x4 stride 2 + BN + ReLU) -> one 1x1 convolution with 2 x 81 channels: heat-map
logits and relative-depth maps of
  - a hand crop (channels 0-20): the 21 joints of the ONE hand the crop is centred on (canonical order;
    left hands are mirrored horizontally before the network, so it only sees right hands);
  - an object crop (21-29): the 8 corners of the object's box and its centre;
  - a whole-frame crop, the coarse pass (30-80): right hand 21, left hand 21, object 9;
and, from the globally pooled C5, presence logits (right hand, left hand, object) of a whole-frame crop
and object class logits (config.object_ids) of an object or whole-frame crop; with
config.object_segmentation, one more 1x1 convolution: per-cell segmentation logits of an object crop
(background, then each class).
All crop kinds share every other weight.
"""
from __future__ import annotations

import torch
from torch import nn

from ..backbones.landmark_lite import LandmarkLiteBackbone
from ..backbones.resnet import ResNet
from .config import NUM_POINTS, HandHeatmapConfig


class HandHeatmapNet(nn.Module):
    """forward(image (N, 3, S, S) float in [0, 1], RGB) -> (heatmap_logits (N, 81, H, H),
    depth (N, 81, H, H) metres, presence_logits (N, 3) [right, left, object], class_logits (N, C),
    segmentation_logits (N, 1 + C, H, H) [background, classes] or None without config.object_segmentation);
    H = config.heatmap_size, C = len(config.object_ids).
    Depth maps hold each point's camera depth minus its group's root depth (the wrist for a hand, the
    centre for the object), metres."""

    num_points = NUM_POINTS

    def __init__(self, config: HandHeatmapConfig):
        super().__init__()
        self.config = config
        if config.backbone == "landmark_lite":
            self.backbone = LandmarkLiteBackbone()
        else:
            self.backbone = ResNet(18, norm="batch", base_width=config.base_width)
        layers = []
        channels = self.backbone.out_channels
        for _ in range(config.num_deconv):
            layers += [nn.ConvTranspose2d(channels, config.deconv_channels, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(config.deconv_channels), nn.ReLU(inplace=True)]
            channels = config.deconv_channels
        self.deconv = nn.Sequential(*layers)
        self.head = nn.Conv2d(channels, 2 * self.num_points, 1)
        nn.init.normal_(self.head.weight, std=0.001)
        nn.init.zeros_(self.head.bias)
        self.presence = nn.Linear(self.backbone.out_channels, 3)
        self.object_class = nn.Linear(self.backbone.out_channels, len(config.object_ids))
        self.segmentation = nn.Conv2d(channels, 1 + len(config.object_ids), 1) if config.object_segmentation else None
        # ImageNet-like input normalisation inside the graph (inputs stay [0, 1], as for every family); the
        # landmark body was trained on [0, 1] images as they are.
        self.normalise = config.backbone == "resnet18"
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def forward(self, image: torch.Tensor):
        x = (image - self.mean) / self.std if self.normalise else image
        features = self.backbone(x)
        c5 = features if isinstance(features, torch.Tensor) else features.c5
        upsampled = self.deconv(c5)
        out = self.head(upsampled)
        logits, depth = out[:, :self.num_points], out[:, self.num_points:]
        pooled = c5.mean(dim=(2, 3))
        segmentation = self.segmentation(upsampled) if self.segmentation is not None else None
        return logits, depth * self.config.depth_scale, self.presence(pooled), self.object_class(pooled), segmentation


class SoftArgmax(nn.Module):
    """Global soft-argmax readout of `points` heat-maps of `cells` x `cells` over an `input_size` crop.

    forward(logits, depth: (N, P, H, H)) -> uv (N, P, 2) crop pixels (pixel centres at integers, so cell i's
    centre is at (i + 0.5) * S / H - 0.5), rel_depth (N, P) metres (the depth map averaged under each point's
    softmax), confidence (N, P) in [0, 1] (the softmax mass in the 3 x 3 cells around its peak).
    The sizes are fixed at construction so that an exported graph's reshapes have constant shapes and u, v are
    one MatMul against a constant (H*H, 2) grid of cell centres, instead of chains of Shape / Gather / Concat and
    four reductions: the read-out runs in float in an int8 file too, where it was a sixth of the time.
    """

    def __init__(self, points: int, cells: int, input_size: int):
        super().__init__()
        self.points, self.cells = points, cells
        centres = (torch.arange(cells, dtype=torch.float32) + 0.5) * (input_size / cells) - 0.5
        v, u = torch.meshgrid(centres, centres, indexing="ij")
        self.register_buffer("grid", torch.stack([u.reshape(-1), v.reshape(-1)], dim=1), persistent=False)

    def forward(self, logits: torch.Tensor, depth: torch.Tensor):
        flat = (-1, self.points, self.cells * self.cells)
        prob = torch.softmax(logits.float().reshape(flat), dim=-1)
        uv = torch.matmul(prob, self.grid)
        rel_depth = (prob * depth.float().reshape(flat)).sum(dim=-1)
        mass = torch.nn.functional.avg_pool2d(prob.reshape(-1, self.points, self.cells, self.cells), 3, 1, 1) * 9.0
        confidence = mass.amax(dim=(2, 3)).clamp(0.0, 1.0)
        return uv, rel_depth, confidence


def soft_argmax(logits: torch.Tensor, depth: torch.Tensor, input_size: int):
    """SoftArgmax for maps of any size: logits, depth (N, P, H, H) -> uv (N, P, 2), rel_depth (N, P),
    confidence (N, P), as SoftArgmax.forward."""
    _, points, cells, width = logits.shape
    if cells != width:
        raise ValueError(f"soft_argmax expects square heat-maps, got {cells} x {width}")
    return SoftArgmax(points, cells, input_size).to(logits.device)(logits, depth)
