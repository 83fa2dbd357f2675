"""Dense Mutual Attention (Wang, Mao, Li, WACV 2023): hand and object meshes refined by a GCN with
dense hand<->object attention. See docs/dma.md."""
from __future__ import annotations

from hand_object_pose.models.dma.assets import HandTopology, ObjectTemplate
from hand_object_pose.models.dma.config import DMAConfig
from hand_object_pose.models.dma.family import FAMILY, PRESETS
from hand_object_pose.models.dma.model import DenseMutualAttentionNet
from hand_object_pose.models.dma.output import DMAOutput

build = FAMILY.build

__all__ = ["FAMILY", "PRESETS", "build", "DMAConfig", "DMAOutput", "DenseMutualAttentionNet", "HandTopology",
           "ObjectTemplate"]
