"""Training losses of Dense Mutual Attention (paper section 3.4, eqs. 18-25).

The authors released no training code (models.md section 4.3), so the terms and weights are taken
from the paper: lambda_m = lambda_e = lambda_n = lambda_j = 1, lambda_o = 10, lambda_s = lambda_f = 100.
Choices the paper leaves open, made here:

* Mesh, edge, normal and joint terms are computed in the lixel grid where the model predicts
  (x, y = crop px / 4, z = depth bins); use `camera_to_grid` to bring ground truth there. Each norm is
  averaged over its elements (I2L-MeshNet's convention) instead of summed, so the paper's weights keep
  the terms on a similar scale.
* Object pose (eq. 21): Euclidean norm of the quaternion error + Euclidean norm of the translation
  error (metres), batch-averaged. The predicted (un-normalised, vertex-mean) quaternion is normalised
  first and compared with the closer of +q and -q, since both are the same rotation.
* Silhouette (eq. 23): pixel-averaged 2-class cross-entropy on the (N, 2, 128, 128) logits.
* Finger rendering (eq. 24): refined and ground-truth hand meshes are rendered with our soft rasteriser
  (`soft_render.py`, not the paper's Neural Renderer) into the 64x64 lixel grid image (x, y in grid
  units are its pixels, z the depth), each face coloured one-hot by its finger (label from the largest
  MANO skinning weight), and compared with a pixel- and channel-averaged L1.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from hand_object_pose.models.dma.config import DMAConfig
from hand_object_pose.models.dma.output import DMAOutput
from hand_object_pose.models.dma.soft_render import NUM_FINGER_LABELS, soft_rasterize


@dataclass(frozen=True)
class DMALossWeights:
    """Paper eq. 25."""

    mesh: float = 1.0
    edge: float = 1.0
    normal: float = 1.0
    object_pose: float = 10.0
    joints: float = 1.0
    silhouette: float = 100.0
    finger_render: float = 100.0


@dataclass
class DMATargets:
    """Ground truth for one batch. Grid quantities in lixel-grid units (see `camera_to_grid`)."""

    hand_vertices_grid: torch.Tensor     # (N, 778, 3)
    hand_joints_grid: torch.Tensor       # (N, 21, 3), wrist-first
    object_vertices_grid: torch.Tensor   # (N, 1000, 3)
    object_quaternion: torch.Tensor      # (N, 4) w, x, y, z, unit
    object_translation: torch.Tensor     # (N, 3) metres, camera frame
    object_silhouette: torch.Tensor      # (N, 128, 128) int64 in {0, 1}
    object_index: torch.Tensor           # (N,) int64 catalogue index (selects the object faces)


def camera_to_grid(points: torch.Tensor, root_depth: torch.Tensor, focal: torch.Tensor,
                   principal_point: torch.Tensor, config: DMAConfig) -> torch.Tensor:
    """Camera-frame metres (N, P, 3) -> lixel grid (inverse of the model's output conversion)."""
    z = points[..., 2]
    pixels = points[..., :2] / z[..., None] * focal[:, None] + principal_point[:, None]
    grid_xy = pixels * (config.lixel_bins / config.input_size)
    grid_z = ((z - root_depth[:, None]) / config.depth_radius_m + 1) / 2 * config.lixel_bins
    return torch.cat([grid_xy, grid_z[..., None]], dim=-1)


def edge_length_loss(pred: torch.Tensor, target: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Mean | |pred edge| - |target edge| | over the 3 edges of every face (eq. 19). pred, target (N, V, 3)."""
    def lengths(v):
        a, b, c = v[:, faces[:, 0]], v[:, faces[:, 1]], v[:, faces[:, 2]]
        return torch.stack([(a - b).norm(dim=-1), (b - c).norm(dim=-1), (c - a).norm(dim=-1)], dim=-1)
    return (lengths(pred) - lengths(target)).abs().mean()


def normal_loss(pred: torch.Tensor, target: torch.Tensor, faces: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Mean |cos| between each predicted face edge and the target face normal (eq. 20)."""
    a, b, c = target[:, faces[:, 0]], target[:, faces[:, 1]], target[:, faces[:, 2]]
    normal = F.normalize(torch.cross(b - a, c - a, dim=-1), dim=-1, eps=eps)
    pa, pb, pc = pred[:, faces[:, 0]], pred[:, faces[:, 1]], pred[:, faces[:, 2]]
    edges = torch.stack([pb - pa, pc - pb, pa - pc], dim=2)           # (N, F, 3 edges, 3)
    cosines = (F.normalize(edges, dim=-1, eps=eps) * normal[:, :, None]).sum(-1)
    return cosines.abs().mean()


def quaternion_distance(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(N,) Euclidean distance of the normalised prediction to the closer of +target / -target."""
    pred = F.normalize(pred, dim=-1)
    return torch.minimum((pred - target).norm(dim=-1), (pred + target).norm(dim=-1))


class DMACriterion(nn.Module):
    """Weighted sum of the paper's losses. Returns a dict of the terms and `total`.

    Args:
        hand_faces: (F_h, 3) hand mesh faces.
        joint_regressor: (21, 778) wrist-first regressor G of eq. 22.
        object_faces: faces (F_k, 3) of each catalogue object, indexed like the model's catalogue.
        hand_face_labels: (F_h,) finger label per hand face (`soft_render.finger_face_labels`); required
            when `weights.finger_render` > 0.
        render_size: side of the finger-rendering image in pixels (the lixel grid is mapped onto it).
    """

    def __init__(self, hand_faces: torch.Tensor, joint_regressor: torch.Tensor,
                 object_faces: Sequence[torch.Tensor], weights: DMALossWeights = DMALossWeights(),
                 hand_face_labels=None, render_size: int = 64, grid_size: int = 64):
        super().__init__()
        if weights.finger_render and hand_face_labels is None:
            raise ValueError("the finger-rendering loss needs hand_face_labels (soft_render.finger_face_labels "
                             "from the MANO skinning weights), or set DMALossWeights(finger_render=0)")
        self.weights = weights
        self.render_size = render_size
        self.render_scale = render_size / grid_size
        colors = (F.one_hot(torch.as_tensor(hand_face_labels, dtype=torch.int64), NUM_FINGER_LABELS).float()
                  if hand_face_labels is not None else torch.zeros(0, NUM_FINGER_LABELS))
        self.register_buffer("hand_face_colors", colors, persistent=False)
        self.register_buffer("hand_faces", torch.as_tensor(hand_faces, dtype=torch.int64), persistent=False)
        self.register_buffer("joint_regressor", torch.as_tensor(joint_regressor, dtype=torch.float32),
                             persistent=False)
        self.object_faces = [torch.as_tensor(f, dtype=torch.int64) for f in object_faces]

    def _object_mesh_terms(self, pred: torch.Tensor, target: torch.Tensor, index: torch.Tensor):
        edge, normal = [], []
        for k in range(pred.shape[0]):  # objects differ in face count, so loop over the (small) batch
            faces = self.object_faces[int(index[k])].to(pred.device)
            edge.append(edge_length_loss(pred[k:k + 1], target[k:k + 1], faces))
            normal.append(normal_loss(pred[k:k + 1], target[k:k + 1], faces))
        return torch.stack(edge).mean(), torch.stack(normal).mean()

    def forward(self, out: DMAOutput, gt: DMATargets) -> dict:
        hand_gt, faces = gt.hand_vertices_grid, self.hand_faces
        rough_h, refined_h, rough_o = out.rough_hand_vertices_grid, out.hand_vertices_grid, out.rough_object_vertices_grid
        obj_edge, obj_normal = self._object_mesh_terms(rough_o, gt.object_vertices_grid, gt.object_index)
        terms = {
            "mesh": (F.l1_loss(rough_h, hand_gt) + F.l1_loss(refined_h, hand_gt)
                     + F.l1_loss(rough_o, gt.object_vertices_grid)),
            "edge": edge_length_loss(rough_h, hand_gt, faces) + edge_length_loss(refined_h, hand_gt, faces) + obj_edge,
            "normal": normal_loss(rough_h, hand_gt, faces) + normal_loss(refined_h, hand_gt, faces) + obj_normal,
            "object_pose": (quaternion_distance(out.object_quaternion, gt.object_quaternion).mean()
                            + (out.object_translation - gt.object_translation).norm(dim=-1).mean()),
            "joints": (F.l1_loss(torch.matmul(self.joint_regressor, rough_h), gt.hand_joints_grid)
                       + F.l1_loss(torch.matmul(self.joint_regressor, refined_h), gt.hand_joints_grid)),
        }
        if out.pose_net_joints_grid is not None:
            terms["joints"] = terms["joints"] + F.l1_loss(out.pose_net_joints_grid, gt.hand_joints_grid)
        if self.weights.finger_render:
            scale = torch.tensor([self.render_scale, self.render_scale, 1.0], device=refined_h.device)
            size = (self.render_size, self.render_size)
            rendered = soft_rasterize(refined_h * scale, faces, self.hand_face_colors, size)
            with torch.no_grad():
                target = soft_rasterize(hand_gt * scale, faces, self.hand_face_colors, size)
            terms["finger_render"] = F.l1_loss(rendered, target)
        if out.object_silhouette_logits is not None:
            terms["silhouette"] = F.cross_entropy(out.object_silhouette_logits, gt.object_silhouette)
        weights = {"mesh": self.weights.mesh, "edge": self.weights.edge, "normal": self.weights.normal,
                   "object_pose": self.weights.object_pose, "joints": self.weights.joints,
                   "silhouette": self.weights.silhouette, "finger_render": self.weights.finger_render}
        terms["total"] = sum(weights[name] * value for name, value in terms.items())
        return terms
