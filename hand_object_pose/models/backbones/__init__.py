"""Backbones shared by the four models (written here: no torchvision for the pinned CPU torch)."""
from .resnet import FrozenBatchNorm2d, ResNet, ResNetFeatures

__all__ = ["FrozenBatchNorm2d", "ResNet", "ResNetFeatures"]
