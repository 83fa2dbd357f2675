"""Dense Mutual Attention (Wang, Mao, Li, WACV 2023): hand and object meshes refined by a GCN with
dense hand<->object attention. See docs/dma.md."""
from __future__ import annotations

from typing import Optional, Sequence

from hand_object_pose.models.dma.assets import (HandTopology, ObjectTemplate, placeholder_hand_topology,
                                                placeholder_object)
from hand_object_pose.models.dma.config import DMAConfig
from hand_object_pose.models.dma.model import DenseMutualAttentionNet
from hand_object_pose.models.dma.output import DMAOutput

PRESETS = {"dma_ho3d": DMAConfig(name="dma_ho3d")}


def build(config: DMAConfig, hand: Optional[HandTopology] = None,
          objects: Optional[Sequence[ObjectTemplate]] = None) -> DenseMutualAttentionNet:
    """Untrained model. Without `hand` / `objects` a procedural placeholder topology (a tube, not a hand) and a
    one-object placeholder catalogue are used, enough to run and export; pass MANO / stand-in hand topology
    and the object catalogue for real use."""
    return DenseMutualAttentionNet(config, hand if hand is not None else placeholder_hand_topology(),
                                   objects if objects else [placeholder_object()])


__all__ = ["PRESETS", "build", "DMAConfig", "DMAOutput", "DenseMutualAttentionNet", "HandTopology", "ObjectTemplate"]
