"""The OccRobNet family object: a Keypoint Transformer variant with KPT's outputs and inference graph."""
from __future__ import annotations

from ..kpt.family import KptFamily
from .config import PRESETS
from .model import OccRobNet


class OccRobNetFamily(KptFamily):
    """OccRobNet (Garg et al.): KPT's token pipeline on an FPN + CIET backbone. It keeps KPT's outputs,
    inference graph and adapter (docs/occrobnet.md); no official code or weights exist."""

    name = "occrobnet"
    presets = PRESETS
    training_tasks = ("kpt", "occrobnet")
    has_official_release = False

    def build(self, config, **assets) -> OccRobNet:
        return OccRobNet(config)

    def load_official(self, model, state):
        return super(KptFamily, self).load_official(model, state)  # ModelFamily's: no release exists

    def official_mismatch_hint(self, model, state) -> str:
        return ""


FAMILY = OccRobNetFamily()
