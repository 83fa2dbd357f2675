"""Training task of the Keypoint Transformer (and of OccRobNet, which shares its outputs and losses).

Official recipe (models.md §1.4): AdamW, lr 1e-4, backbone and U-Net decoder 1e-5, default weight
decay, batch 90 per GPU, constant LR (the official StepLR never fires), the losses of `KptCriterion`
with the official weights, and ground-truth joint locations as tokens for the first epochs
(5 on InterHand2.6M, 25 elsewhere) before switching to detected heat-map peaks.

Objects: the segmentation target comes from the sample's object mask when the dataset has one,
else from the convex hull of the projected 3D bounding box (an approximation, documented here).
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import torch
from torch import nn

from hand_object_pose.geometry.camera import project_points
from hand_object_pose.geometry.skeleton import (INTERHAND_JOINT_NAMES, INTERHAND_PARENTS, NUM_JOINTS, bones_to_joints,
                                                interhand_to_canonical)
from hand_object_pose.models.kpt.criterion import KptCriterion, KptLossWeights
from hand_object_pose.models.kpt.targets import DEPTH_HALF_RANGE_M, ground_truth_tokens, kpt_targets

from ..augmentation import AugmentationConfig, TrainingCrop
from . import task_for
from .base import TrainingTask
from .common import SIDES, image_tensor, root_relative_mpjpe_mm


def _object_mask(crop: TrainingCrop, obj, grid: int) -> np.ndarray:
    """(grid, grid) float mask of the object on the heat-map grid."""
    scale = grid / crop.image.shape[0]
    if crop.masks:
        return cv2.resize(crop.masks[0].astype(np.float32), (grid, grid), interpolation=cv2.INTER_AREA)
    mask = np.zeros((grid, grid), np.float32)
    if obj.corners_rest is not None:
        cam = np.asarray(obj.corners_rest) @ obj.rotation.T + obj.translation
        if np.all(cam[:, 2] > 1e-3):
            uv = project_points(cam, crop.intrinsics) * scale
            cv2.fillConvexPoly(mask, cv2.convexHull(np.round(uv).astype(np.int32)), 1.0)
    return mask


@task_for("kpt", "occrobnet")  # OccRobNet shares KPT's outputs and losses
class KptTask(TrainingTask):
    name = "kpt"
    find_unused_parameters = True  # e.g. the official unused LayerNorm `norm1`

    def __init__(self, family, model_config, augmentation: AugmentationConfig = AugmentationConfig(),
                 gt_token_epochs: int = 25, backbone_lr_factor: float = 0.1, mano_layers=None,
                 loss_weights: dict | None = None, initial_weights: str | None = None,
                 joint_2p5d_loss: str = "official"):
        """`loss_weights` replaces official term weights by name (KptLossWeights fields), e.g.
        {hand_type: 1.0} where hands may be absent (the official weight is 0: its datasets always
        show the hands the model is built for)."""
        super().__init__(family, model_config, augmentation, initial_weights)
        self.gt_token_epochs = gt_token_epochs
        self.backbone_lr_factor = backbone_lr_factor
        try:
            weights = KptLossWeights(**(loss_weights or {}))
        except TypeError as exc:
            raise ValueError(f"task.loss_weights: {exc}; allowed: "
                             f"{', '.join(f.name for f in dataclasses.fields(KptLossWeights))}") from None
        self.criterion = KptCriterion(model_config, weights=weights, mano_layers=mano_layers,
                                      joint_2p5d_loss=joint_2p5d_loss)
        self.epoch = 0

    def on_epoch_start(self, epoch: int) -> None:
        self.epoch = epoch

    def build_model(self) -> nn.Module:
        model = self.start_from(self.family.build(self.model_config))
        model.backbone.freeze_norm_affine()  # the official code freezes backbone parameters named *bn*
        self.criterion.to(next(model.parameters()).device)
        return model

    def parameter_groups(self, model: nn.Module, lr: float) -> list[dict]:
        """Backbone (and KPT's U-Net decoder) at lr x backbone_lr_factor, the rest at lr. OccRobNet has
        no U-Net decoder: its FPN and CIET block learn at the full rate, like the other new parts."""
        slow_modules = [m for m in (model.backbone, getattr(model, "decoder", None)) if m is not None]
        slow = [p for m in slow_modules for p in m.parameters() if p.requires_grad]
        slow_ids = {id(p) for p in slow}
        fast = [p for p in model.parameters() if p.requires_grad and id(p) not in slow_ids]
        return [{"params": slow, "lr": lr * self.backbone_lr_factor}, {"params": fast, "lr": lr}]

    def collate(self, crops: list[TrainingCrop]) -> dict:
        n = len(crops)
        cam = np.zeros((n, 2, NUM_JOINTS, 3), np.float32)
        uv = np.zeros((n, 2, NUM_JOINTS, 2), np.float32)
        valid = np.zeros((n, 2, NUM_JOINTS), bool)
        mano_pose = np.zeros((n, 2, 16, 3), np.float32)
        mano_shape = np.zeros((n, 2, 10), np.float32)
        mano_valid = np.zeros((n, 2), bool)
        for i, crop in enumerate(crops):
            for h, side in enumerate(SIDES):
                hand = crop.hands.get(side)
                if hand is None:
                    continue
                cam[i, h], uv[i, h], valid[i, h] = hand.joints_cam, hand.joints_uv, hand.joints_valid
                if hand.mano_pose is not None and hand.mano_shape is not None:
                    mano_pose[i, h] = np.asarray(hand.mano_pose).reshape(16, 3)
                    mano_shape[i, h] = np.asarray(hand.mano_shape)[:10]
                    mano_valid[i, h] = True
        batch = {"image": image_tensor(crops), "joints_cam": torch.from_numpy(cam), "joints_2d": torch.from_numpy(uv),
                 "joint_valid": torch.from_numpy(valid), "mano_pose": torch.from_numpy(mano_pose),
                 "mano_shape": torch.from_numpy(mano_shape), "mano_valid": torch.from_numpy(mano_valid)}
        if self.model_config.has_object:
            grid = self.model_config.heatmap_size
            rot = np.tile(np.eye(3, dtype=np.float32), (n, 1, 1))
            trans = np.zeros((n, 3), np.float32)
            corners = np.zeros((n, 8, 3), np.float32)
            mask = np.zeros((n, grid, grid), np.float32)
            symmetric = np.zeros(n, bool)
            weight = np.zeros(n, np.float32)
            for i, crop in enumerate(crops):
                if not crop.objects or crop.objects[0].corners_rest is None:
                    continue  # no object label: its losses get weight 0
                obj = crop.objects[0]
                rot[i], trans[i], corners[i] = obj.rotation, obj.translation, obj.corners_rest
                mask[i], symmetric[i], weight[i] = _object_mask(crop, obj, grid), obj.symmetric_z180, 1.0
            batch.update(obj_rot=torch.from_numpy(rot), obj_trans=torch.from_numpy(trans),
                         obj_corners_rest=torch.from_numpy(corners), obj_mask=torch.from_numpy(mask),
                         obj_symmetric=torch.from_numpy(symmetric), obj_weight=torch.from_numpy(weight))
        return batch

    def targets(self, batch: dict):
        c = self.model_config
        kwargs = {}
        if c.pose_representation == "angles":
            kwargs.update(mano_pose=batch["mano_pose"], mano_shape=batch["mano_shape"], mano_valid=batch["mano_valid"])
        if c.has_object:
            kwargs.update({k: batch[k] for k in ("obj_mask", "obj_rot", "obj_trans", "obj_corners_rest",
                                                 "obj_symmetric", "obj_weight")})
        return kpt_targets(batch["joints_cam"], batch["joints_2d"], batch["joint_valid"], crop_size=self.input_size,
                           heatmap_size=c.heatmap_size, **kwargs)

    def _lift_2p5d(self, bins: torch.Tensor, batch: dict) -> torch.Tensor:
        """"2p5D" argmax bins (N, 42, 3), InterHand2.6M order (`KptOutput.joint_2p5d`) -> camera joints (N, 2, 21, 3)
        metres, canonical order: x, y grid px -> crop px, depth bins -> parent-relative depth summed from the
        wrist (as the node's adapter, inference/adapters/kpt.py), placed at the ground-truth wrist depth through
        the crop's pinhole intrinsics, recovered exactly from the labels (each joint's crop pixel and camera
        point)."""
        grid = self.model_config.heatmap_size
        n = bins.shape[0]
        hands = bins.double().reshape(n, 2, 21, 3)
        uv = interhand_to_canonical(hands[..., :2] * (self.input_size / grid))
        bones = ((hands[..., 2] / grid * 2.0 - 1.0) * DEPTH_HALF_RANGE_M)[..., None].clone()  # metres, IH order
        bones[..., INTERHAND_JOINT_NAMES.index("wrist"), :] = 0.0                            # the root
        depth = interhand_to_canonical(bones_to_joints(bones, INTERHAND_PARENTS))[..., 0]     # (N, 2, 21)
        gt, gt_uv, valid = batch["joints_cam"].double(), batch["joints_2d"].double(), batch["joint_valid"]
        z = gt[..., :1, 2] + depth - depth[..., :1]
        out = torch.zeros(n, 2, 21, 3, dtype=torch.float64)
        for i in range(n):   # u = fx X/Z + cx, v = fy Y/Z + cy: least squares over the sample's valid joints
            m = valid[i]
            if m.sum() < 3:
                continue
            f, c = [], []
            for axis in (0, 1):
                a = torch.stack([gt[i][m][:, axis] / gt[i][m][:, 2], torch.ones(int(m.sum()), dtype=torch.float64)], 1)
                solution = torch.linalg.lstsq(a, gt_uv[i][m][:, axis:axis + 1]).solution[:, 0]
                f.append(solution[0])
                c.append(solution[1])
            out[i, ..., 0] = (uv[i, ..., 0] - c[0]) / f[0] * z[i]
            out[i, ..., 1] = (uv[i, ..., 1] - c[1]) / f[1] * z[i]
            out[i, ..., 2] = z[i]
        return out.float()

    def loss(self, model: nn.Module, batch: dict) -> dict:
        targets = self.targets(batch)
        tokens = None
        if self.epoch < self.gt_token_epochs:
            tokens = ground_truth_tokens(targets, self.model_config.max_tokens, self.model_config.max_object_tokens,
                                         self.model_config.heatmap_size)
        return self.criterion(model(batch["image"], tokens=tokens), targets)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batches) -> dict:
        """Root-aligned MPJPE per hand ("3D" representation; "2p5D": its bins lifted at the true wrist depth,
        `_lift_2p5d`) and hand-presence accuracy."""
        preds, gts, valids, presence_ok = [], [], [], []
        for batch in batches:
            out = model(batch["image"])
            gt_present = batch["joint_valid"].any(dim=-1)
            presence_ok.append(((out.hand_type > 0.5) == gt_present).float().flatten())
            gt = batch["joints_cam"]
            if out.joint_2p5d_logits is not None:
                preds.append(self._lift_2p5d(out.joint_2p5d, batch).flatten(1, 2))
            elif out.joints_3d is None:
                continue
            else:
                rel = out.joints_3d[-1]                                          # (N, 2, 20, 3) IH order
                rel = torch.cat([rel, torch.zeros_like(rel[..., :1, :])], dim=-2)  # wrist (IH index 20) at 0
                rel = interhand_to_canonical(rel)                                 # (N, 2, 21, 3) canonical
                preds.append((rel + gt[..., :1, :]).flatten(1, 2))                # root-aligned to the GT wrist
            gts.append(gt.flatten(1, 2))
            valids.append(batch["joint_valid"].flatten(1, 2))
        metrics = {"hand_presence_accuracy": float(torch.cat(presence_ok).mean())} if presence_ok else {}
        if preds:
            metrics.update(root_relative_mpjpe_mm(torch.cat(preds), torch.cat(gts), torch.cat(valids)))
        return metrics
