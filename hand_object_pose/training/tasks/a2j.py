"""Training task of the A2J-Transformer (models.md §2.3: Adam 1e-4, /5 at epochs 24 and 35 of 42,
batch 12 per GPU; loss = anchor + 3 x regression over all decoder layers; stem and layer1 frozen).
With `presence_head` / `confidence_head` in the model config, their BCE terms join the loss
(see `models/a2j/criterion.py`)."""
from __future__ import annotations

import torch
from torch import nn

from hand_object_pose.geometry.skeleton import canonical_to_interhand, interhand_to_canonical
from hand_object_pose.models.a2j import A2JConfig
from hand_object_pose.models.a2j.checkpoint import OPTIONAL_PREFIXES, load_official
from hand_object_pose.models.a2j.criterion import A2JCriterion

from hand_object_pose.models.weights_file import read_weights_file

from ..augmentation import AugmentationConfig, TrainingCrop
from . import task_for
from .base import TrainingTask
from .common import backproject, image_tensor, root_relative_mpjpe_mm, two_hand_arrays


@task_for("a2j")
class A2JTask(TrainingTask):
    name = "a2j"
    find_unused_parameters = False

    def __init__(self, family, model_config: A2JConfig, augmentation: AugmentationConfig = AugmentationConfig(rotation_deg=45.0),
                 presence_weight: float = 1.0, confidence_weight: float = 1.0, official_checkpoint: str | None = None,
                 heads_only: bool = False, initial_weights: str | None = None):
        """YAML `task:` options:
        presence_weight / confidence_weight: weights of the optional heads' BCE terms in the total
            (used only when the model config enables the heads);
        official_checkpoint: the authors' `snapshot_*.pth.tar` to start from; the optional heads,
            absent from it, start at their random initialisation (`load_official(heads="untrained")`);
        heads_only: train the optional heads alone, everything else frozen (the pose outputs stay
            exactly those of the starting weights);
        initial_weights: any weights file of this model to start from (TrainingTask).
        """
        has_heads = model_config.presence_head or model_config.confidence_head
        if heads_only and not has_heads:
            raise ValueError("heads_only=True needs a model with presence_head and/or confidence_head enabled "
                             "(model_overrides: {presence_head: true, confidence_head: true})")
        super().__init__(family, model_config, augmentation, initial_weights)
        self.criterion = A2JCriterion(presence_weight=presence_weight, confidence_weight=confidence_weight)
        self.official_checkpoint = official_checkpoint
        self.heads_only = heads_only

    def build_model(self) -> nn.Module:
        model = self.start_from(self.family.build(self.model_config))
        if self.official_checkpoint is not None:
            # "untrained": the heads this run is meant to train must survive the load.
            load_official(model, read_weights_file(self.official_checkpoint).state, heads="untrained")
        # The official configuration trains layer2-4 only (the stem and layer1 keep ImageNet weights).
        for module in (model.backbone.conv1, model.backbone.layer1):
            module.requires_grad_(False)
        if self.heads_only:
            for name, param in model.named_parameters():
                param.requires_grad_(name.startswith(OPTIONAL_PREFIXES))
        return model

    def parameter_groups(self, model: nn.Module, lr: float) -> list[dict]:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "lr": lr}]

    def _cube(self, arrays: dict, crops: list[TrainingCrop]) -> tuple[torch.Tensor, torch.Tensor]:
        """Targets in the output cube (IH order) and their validity."""
        c = self.model_config
        scale = c.output_size / c.input_size
        cam, uv, valid = arrays["joints_cam"], arrays["joints_uv"], arrays["valid"].clone()
        depth = cam[..., 2]
        root = torch.stack([depth[:, 0], depth[:, 21]], dim=1).repeat_interleave(21, dim=1)
        z = ((depth - root) * 1000.0 / (c.depth_range_mm / 2) + 1) / 2 * c.output_size
        cube = torch.cat([uv * scale, z[..., None]], dim=-1)
        valid &= ((cube >= 0) & (cube < c.output_size)).all(dim=-1)  # official: outside the cube is invalid
        return canonical_to_interhand(cube), canonical_to_interhand(valid[..., None])[..., 0]

    def collate(self, crops: list[TrainingCrop]) -> dict:
        arrays = two_hand_arrays(crops)
        target, target_valid = self._cube(arrays, crops)
        return {"image": image_tensor(crops), "target": target, "target_valid": target_valid, **arrays}

    def loss(self, model: nn.Module, batch: dict) -> dict:
        out = model(batch["image"], all_layers=True)
        # The optional heads' logits are None without the heads; with them, presence is trained on
        # "some joint of that hand is a valid target" and confidence on each joint's target validity.
        losses = self.criterion(out.joints_per_layer, out.anchor_positions_per_layer, batch["target"],
                                batch["target_valid"], hand_presence_logits=out.hand_presence_logits,
                                joint_confidence_logits=out.joint_confidence_logits)
        return losses.terms()

    def predict_camera(self, model: nn.Module, batch: dict) -> torch.Tensor:
        """Canonical (N, 42, 3) camera-frame joints of the crops, with the ground-truth root depth
        (the official evaluation protocol: root-relative errors do not depend on it)."""
        c = self.model_config
        out = model(batch["image"], all_layers=False)
        joints = interhand_to_canonical(out.joints)
        uv = joints[..., :2] * (c.input_size / c.output_size)
        depth_gt = batch["joints_cam"][..., 2]
        root = torch.stack([depth_gt[:, 0], depth_gt[:, 21]], dim=1).repeat_interleave(21, dim=1)
        depth = (joints[..., 2] / c.output_size * 2 - 1) * (c.depth_range_mm / 2000.0) + root
        return backproject(uv, depth, batch["intrinsics"])

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batches) -> dict:
        preds, gts, valids = [], [], []
        for batch in batches:
            preds.append(self.predict_camera(model, batch))
            gts.append(batch["joints_cam"])
            valids.append(batch["valid"])
        if not preds:
            return {}
        return root_relative_mpjpe_mm(torch.cat(preds), torch.cat(gts), torch.cat(valids))
