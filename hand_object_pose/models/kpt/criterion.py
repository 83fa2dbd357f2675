"""Keypoint Transformer training losses with the official weights (models.md section 1.4).

Each term is the mean over all its elements of an element-wise error, as the official `train.py`
reduces every loss (`loss.mean()`): terms predicted per decoder layer (L) are therefore averaged
over the decoder layers, and the identity cross-entropy over every encoder layer's logits and every
real token. Masks multiply the element-wise error (masked entries count as zeros in the mean, as
officially) except for the identity loss, which averages over real tokens only (official masked_select).

Units: joint and translation errors inside the 3D losses are in millimetres where the official code
uses mm (joint vectors, root-relative joints, object corners), metres for translations (relative
hand / object translation), grid pixels for 2D.

Terms (name: weight, what):
- heatmap: 0.01, L2 of the hand heat-map against summed 255-scaled Gaussians; a model with per-joint
  maps (OccRobNet's `joint_heatmaps`) is compared with one Gaussian per joint, the squared errors
  summed over joints (OccRobNet eq. 3) and averaged over samples and pixels;
- obj_seg: 0.001, L2 of the segmentation map against the 0..255 mask;
- identity: 1, cross-entropy of token identities (labels: `targets.token_identity_labels`);
- "3D": joint_vec 1 (parent-relative bone vectors, mm, joint and parent valid), joint_3d 0.1 (wrist-
  relative joints, mm, joint and own wrist valid), joint_2d 0.01 (weak-perspective projection of the
  joints, left hand shifted by the predicted rel_trans, against grid px);
- "2p5D": joint_2p5d 1000, L2 of the raw x / y / depth logits against 1D Gaussians (sigma 1.25 bins);
  x, y masked by joint validity, depth by joint and parent validity; or, with `joint_2p5d_loss=
  "cross_entropy"` (not official: issue 17's spatially supervised variant, weight 1), softmax cross-entropy
  against the Gaussians normalised to sum 1;
- "angles": mano_pose 0.07 (L1, summed over each hand's 16x3 values, / 32), mano_shape 5 (L1 against the
  mean betas of the valid hands), joint_3d 0.1 and joint_2d 0.01 on the MANO layer's joints;
- rel_trans 100 (L1, metres, both wrists valid); cam_scale 0.005 and cam_trans 0.05 (L1 against the
  least-squares weak-perspective fit of the ground truth, not for 2.5D);
- object: obj_trans 100 (L1, metres, + left-hand translation and hand-object triangle terms when the
  model has the left head), obj_corners 0.1 (L1 of the 3D box corners in mm, min over the 180 deg
  z-flip for symmetric objects);
- hand_type: 0 (binary cross-entropy of [right, left] presence; kept for experiments).

Official corner cases kept: a sample without any real token trains no hand pose (its joint, MANO
and hand-type validity are cleared for the pose terms), and a sample without object tokens trains
no object pose. (The official code also clears that sample's heat-map target; not done here, as it
would teach the detector to keep missing.)

The official weight-0 terms (shape regulariser, vertices, 2D corner head, object weak projection)
and the direct 6D-rotation loss (zero with the 6D parameterisation) are not computed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Mapping, Optional

import torch
from torch import nn
from torch.nn import functional as F

from hand_object_pose.geometry import skeleton
from hand_object_pose.geometry.rotations import rotation_6d_to_matrix_kpt

from .config import KptConfig
from .output import KptOutput, joints_from_bone_vectors
from .selection import OBJECT_TOKEN
from .targets import (INTERHAND_PARENTS, JOINTS_PER_HAND, LEFT_WRIST, RIGHT_WRIST, KptTargets, gaussian_1d,
                      gaussian_heatmaps, parent_valid, token_identity_labels)

MM = 1000.0
CAM_FIT_RIDGE = 1e-4  # official regulariser of the weak-perspective least squares


@dataclass(frozen=True)
class KptLossWeights:
    """Multipliers of each term (official `main/config.py` values)."""

    heatmap: float = 0.01
    obj_seg: float = 0.001
    identity: float = 1.0
    joint_vec: float = 1.0
    joint_3d: float = 0.1
    joint_2d: float = 0.01
    joint_2p5d: float = 1000.0
    mano_pose: float = 0.07
    mano_shape: float = 5.0
    rel_trans: float = 100.0
    cam_scale: float = 0.005
    cam_trans: float = 0.05
    obj_trans: float = 100.0
    obj_corners: float = 0.1
    hand_type: float = 0.0


# --- individual terms (each returns a scalar) ---------------------------------------------------------

def heatmap_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Squared error of maps with a per-sample mask valid (N,): (N, H, W) maps -> mean; per-joint
    (N, J, H, W) maps -> summed over joints, then the mean over samples and pixels."""
    err = (pred - target) ** 2
    if err.dim() == 4:
        err = err.sum(dim=1)
    return (err * valid.to(pred.dtype)[:, None, None]).mean()


def segmentation_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of (N, H, W) maps."""
    return ((pred - target) ** 2).mean()


def identity_loss(logits: torch.Tensor, labels: torch.Tensor, token_valid: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of logits (L_enc, N, S, C) against labels (N, S), averaged over all encoder layers
    and real tokens; zero (with a gradient path) when the batch has no real token."""
    layers = logits.shape[0]
    mask = token_valid[None].expand(layers, -1, -1)
    if not bool(mask.any()):
        return logits.sum() * 0.0
    picked = logits[mask]                                   # (M, C)
    return F.cross_entropy(picked, labels[None].expand(layers, -1, -1)[mask])


def _own_wrist_relative(joint_rel: torch.Tensor) -> torch.Tensor:
    """(N, 42, 3) -> each hand relative to its own wrist."""
    right = joint_rel[:, :JOINTS_PER_HAND] - joint_rel[:, RIGHT_WRIST:RIGHT_WRIST + 1]
    left = joint_rel[:, JOINTS_PER_HAND:] - joint_rel[:, LEFT_WRIST:LEFT_WRIST + 1]
    return torch.cat((right, left), dim=1)


NON_WRIST = tuple(j for j in range(42) if j not in (RIGHT_WRIST, LEFT_WRIST))  # 40 bone-vector joints


def _project(points: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
    """Weak perspective: points (L, N, J, 3) metres, cam (L, N, 3) [s, tx, ty] -> (L, N, J, 2) px."""
    return points[..., :2] * cam[:, :, None, :1] + cam[:, :, None, 1:]


def joint_vector_losses(joint_vecs: torch.Tensor, cam: torch.Tensor, rel_trans: torch.Tensor,
                        targets: KptTargets) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """"3D" representation. joint_vecs (L, N, 40, 3) metres, cam (L, N, 3), rel_trans (L, N, 3).
    Returns (bone-vector L1 mm, wrist-relative joint L1 mm, 2D L1 px)."""
    idx = torch.tensor(NON_WRIST, device=joint_vecs.device)
    parents = torch.tensor(INTERHAND_PARENTS, device=joint_vecs.device)
    gt = _own_wrist_relative(targets.joint_rel)                                   # (N, 42, 3)
    vec_gt = (gt - gt[:, parents])[:, idx] * MM                                   # (N, 40, 3)
    vec_valid = parent_valid(targets.joint_valid)[:, idx]
    loss_vec = ((joint_vecs * MM - vec_gt).abs() * vec_valid[None, ..., None]).mean()

    joints = joints_from_bone_vectors(joint_vecs).flatten(-3, -2)                 # (L, N, 40, 3)
    valid = targets.joint_valid[:, idx]
    wrist_ok = torch.cat((targets.joint_valid[:, RIGHT_WRIST:RIGHT_WRIST + 1].expand(-1, 20),
                          targets.joint_valid[:, LEFT_WRIST:LEFT_WRIST + 1].expand(-1, 20)), dim=1)
    loss_3d = ((joints * MM - gt[:, idx] * MM).abs() * (valid & wrist_ok)[None, ..., None]).mean()

    shift = torch.cat((torch.zeros_like(rel_trans)[:, :, None].expand(-1, -1, 20, -1),
                       rel_trans[:, :, None].expand(-1, -1, 20, -1)), dim=2)    # left hand placed by rel_trans
    xy = _project(joints + shift, cam)
    loss_2d = ((xy - targets.joint_xy[:, idx]).abs() * valid[None, ..., None]).mean()
    return loss_vec, loss_3d, loss_2d


def joint_2p5d_loss(logits: torch.Tensor, targets: KptTargets) -> torch.Tensor:
    """"2p5D": logits (L, N, 42, 3, B) raw 1D heat-maps (x, y, depth) -> L2 against 1D Gaussians."""
    gt = gaussian_1d(targets.joint_2p5d, logits.shape[-1])                       # (N, 42, 3, B)
    xy_w = targets.joint_valid[..., None].expand(-1, -1, 2)
    dep_w = parent_valid(targets.joint_valid)[..., None]
    w = torch.cat((xy_w, dep_w), dim=-1).to(logits.dtype)                        # (N, 42, 3)
    return ((logits - gt) ** 2 * w[None, ..., None]).mean()


def joint_2p5d_cross_entropy(logits: torch.Tensor, targets: KptTargets) -> torch.Tensor:
    """"2p5D", spatially supervised (issue 17's comparison, not the official loss): softmax cross-entropy of each
    raw 1D heat-map (x, y, depth) against its 1D Gaussian normalised to sum 1; logits (L, N, 42, 3, B); x, y
    masked by joint validity, depth by joint and parent validity; mean over the valid ones and the layers."""
    gt = gaussian_1d(targets.joint_2p5d, logits.shape[-1])                       # (N, 42, 3, B)
    gt = gt / gt.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    xy_w = targets.joint_valid[..., None].expand(-1, -1, 2)
    dep_w = parent_valid(targets.joint_valid)[..., None]
    w = torch.cat((xy_w, dep_w), dim=-1).to(logits.dtype)                        # (N, 42, 3)
    ce = -(gt[None] * F.log_softmax(logits.float(), dim=-1)).sum(dim=-1)           # (L, N, 42, 3)
    return (ce * w[None]).sum() / (w.sum() * logits.shape[0]).clamp_min(1.0)


def mano_pose_loss(pose: torch.Tensor, targets: KptTargets) -> torch.Tensor:
    """"angles": pose (L, N, 32, 3) -> per sample sum of |error| over each valid hand's 16x3 values / 32."""
    w = targets.mano_valid.to(pose.dtype).repeat_interleave(16, dim=1)            # (N, 32)
    per_sample = ((pose - targets.mano_pose).abs().sum(-1) * w).sum(-1) / 32.0    # (L, N)
    return per_sample.mean()


def mano_shape_loss(shape: torch.Tensor, targets: KptTargets) -> torch.Tensor:
    """"angles": shape (L, N, 10) against the mean betas of the valid hands (N, 2, 10)."""
    w = targets.mano_valid.to(shape.dtype)                                        # (N, 2)
    count = w.sum(1, keepdim=True)
    gt = (targets.mano_shape * w[..., None]).sum(1) / (count + 1e-8)
    return ((shape - gt).abs() * (count > 0).to(shape.dtype)).mean()


def mano_joint_losses(joints: torch.Tensor, cam: torch.Tensor, rel_trans: torch.Tensor,
                      targets: KptTargets) -> tuple[torch.Tensor, torch.Tensor]:
    """"angles": joints (L, N, 42, 3) from the MANO layer in native order, any origin, metres.
    Returns (wrist-relative joint L1 mm, 2D L1 px); the 2D projection uses each hand wrist-relative,
    the left one shifted by the predicted rel_trans (zero where the ground truth has no pair)."""
    rel = _own_wrist_relative(joints.flatten(0, 1)).reshape(joints.shape)
    w = targets.joint_valid[None, ..., None].to(joints.dtype)
    loss_3d = ((rel * MM - _own_wrist_relative(targets.joint_rel) * MM).abs() * w).mean()
    shift = rel_trans * targets.rel_trans_valid[None, :, None].to(rel_trans.dtype)
    placed = torch.cat((rel[:, :, :JOINTS_PER_HAND], rel[:, :, JOINTS_PER_HAND:] + shift[:, :, None]), dim=2)
    loss_2d = ((_project(placed, cam) - targets.joint_xy).abs() * w).mean()
    return loss_3d, loss_2d


def camera_targets(targets: KptTargets) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares weak-perspective camera [s, tx, ty] (N, 3) mapping the reference-wrist-relative
    joints (x, y, metres) to their grid px, and its validity (N,). The left hand takes part only when
    both wrists are valid (its placement needs the relative translation)."""
    valid = targets.joint_valid.clone()
    valid[:, JOINTS_PER_HAND:] &= targets.rel_trans_valid[:, None]
    w = valid.to(targets.joint_rel.dtype)                                        # (N, 42)
    n = w.shape[0]
    pts = targets.joint_rel[..., :2]                                             # (N, 42, 2)
    # Rows: x_j = s X_j + tx, y_j = s Y_j + ty; invalid joints give zero rows.
    a = torch.zeros(n, 42, 2, 3, dtype=pts.dtype, device=pts.device)
    a[..., 0] = pts
    a[..., 0, 1] = 1.0
    a[..., 1, 2] = 1.0
    a = (a * w[..., None, None]).reshape(n, 84, 3)
    b = (targets.joint_xy * w[..., None]).reshape(n, 84, 1)
    ata = a.transpose(1, 2) @ a + CAM_FIT_RIDGE * torch.eye(3, dtype=pts.dtype, device=pts.device)
    cam = torch.linalg.solve(ata, a.transpose(1, 2) @ b)[..., 0]
    return cam, valid.any(dim=1)


def camera_losses(cam: torch.Tensor, targets: KptTargets) -> tuple[torch.Tensor, torch.Tensor]:
    """cam (L, N, 3) -> (scale L1, translation L1) against `camera_targets`."""
    with torch.no_grad():
        gt, ok = camera_targets(targets)
    w = ok[None, :, None].to(cam.dtype)
    return ((cam[..., :1] - gt[:, :1]).abs() * w).mean(), ((cam[..., 1:] - gt[:, 1:]).abs() * w).mean()


def rel_trans_loss(pred: torch.Tensor, targets: KptTargets) -> torch.Tensor:
    """pred (L, N, 3) metres: L1 against left wrist - right wrist where both are valid."""
    return ((pred - targets.rel_trans).abs() * targets.rel_trans_valid[None, :, None].to(pred.dtype)).mean()


Z_FLIP = torch.diag(torch.tensor([-1.0, -1.0, 1.0]))  # 180 deg about the object z axis (object frame)


def object_losses(rot6d: torch.Tensor, trans: torch.Tensor, left_trans: Optional[torch.Tensor],
                  rel_trans: torch.Tensor, targets: KptTargets) -> tuple[torch.Tensor, torch.Tensor]:
    """rot6d (L, N, 6), trans / left_trans / rel_trans (L, N, 3) metres -> (corner L1 mm, translation L1 m).

    Corners: mean |error| over the 8 corners x 3 axes of `rest @ R^T + t`, in mm, minimum over the
    ground-truth pose and (symmetric objects) its z-flipped twin, times the object weight.
    Translation: |t - t_gt|, plus with the left head |t_left - (t_gt - rel_trans_gt)| and the
    triangle |rel_trans + t_left - t|, times the object weight.
    """
    w = targets.obj_weight.to(trans.dtype)                                       # (N,)
    rest = targets.obj_corners_rest                                              # (N, 8, 3)
    rot = rotation_6d_to_matrix_kpt(rot6d)                                       # (L, N, 3, 3)
    pred = rest @ rot.transpose(-1, -2) + trans[..., None, :]                   # (L, N, 8, 3)
    flip = Z_FLIP.to(rest)
    gt = rest @ targets.obj_rot.transpose(-1, -2) + targets.obj_trans[:, None]
    flipped_rot = targets.obj_rot @ flip
    gt_flip = rest @ flipped_rot.transpose(-1, -2) + targets.obj_trans[:, None]
    gt_flip = torch.where(targets.obj_symmetric[:, None, None], gt_flip, gt)
    err = ((pred - gt) * MM).abs().mean(dim=(-1, -2))                            # (L, N)
    err_flip = ((pred - gt_flip) * MM).abs().mean(dim=(-1, -2))
    loss_corners = (torch.minimum(err, err_flip) * w).mean()
    terms = (trans - targets.obj_trans).abs()
    if left_trans is not None:
        terms = (terms + (left_trans - (targets.obj_trans - targets.rel_trans)).abs()
                 + (rel_trans + left_trans - trans).abs())
    loss_trans = (terms * w[None, :, None]).mean()
    return loss_corners, loss_trans


def hand_type_loss(logits: torch.Tensor, targets: KptTargets) -> torch.Tensor:
    """logits (N, 2) -> binary cross-entropy averaged over [right, left], masked per sample."""
    per = F.binary_cross_entropy_with_logits(logits, targets.hand_type, reduction="none").mean(1)
    return (per * targets.hand_type_valid.to(per.dtype)).mean()


# --- the criterion -----------------------------------------------------------------------------------

def mask_samples_without_tokens(output: KptOutput, targets: KptTargets) -> KptTargets:
    """The official corner cases: no real token -> no hand-pose supervision for the sample (joint,
    MANO and hand-type validity cleared); no object token -> object weight 0."""
    has_token = output.token_valid.any(dim=1)
    changes = dict(joint_valid=targets.joint_valid & has_token[:, None],
                   hand_type_valid=targets.hand_type_valid & has_token)
    if targets.mano_valid is not None:
        changes["mano_valid"] = targets.mano_valid & has_token[:, None]
    if targets.obj_weight is not None:
        has_obj = (output.token_valid & (output.token_kind == OBJECT_TOKEN)).any(dim=1)
        changes["obj_weight"] = targets.obj_weight * has_obj.to(targets.obj_weight.dtype)
    return replace(targets, **changes)


class KptCriterion(nn.Module):
    """All training losses of one Keypoint Transformer (or OccRobNet) configuration.

    Args:
        config: the model's KptConfig (pose representation, object heads).
        weights: term multipliers (official by default).
        mano_layers: {"right": ManoLayer, "left": ManoLayer} for the "angles" representation
            (`hand_object_pose.geometry.mano`; the stand-in hand works for tests).
        joint_2p5d_loss: "official" (L2 of the raw 1D heat-maps) or "cross_entropy"
            (`joint_2p5d_cross_entropy`; give it the weight 1 instead of the official 1000).

    `forward(output, targets)` returns a dict of weighted scalar terms plus "total";
    `raw(output, targets)` the unweighted terms.
    """

    def __init__(self, config: KptConfig, weights: KptLossWeights = KptLossWeights(),
                 mano_layers: Optional[Mapping[str, nn.Module]] = None, joint_2p5d_loss: str = "official"):
        super().__init__()
        if joint_2p5d_loss not in ("official", "cross_entropy"):
            raise ValueError(f"joint_2p5d_loss must be 'official' (L2) or 'cross_entropy', got {joint_2p5d_loss!r}")
        self.config = config
        self.weights = weights
        self.joint_2p5d_loss = joint_2p5d_loss
        if config.pose_representation == "angles":
            if mano_layers is None or set(mano_layers) != {"right", "left"}:
                raise ValueError("the 'angles' representation needs mano_layers={'right': ..., 'left': ...}")
            self.mano = nn.ModuleDict(dict(mano_layers))
        else:
            self.mano = None

    def mano_joints(self, pose: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        """pose (L, N, 32, 3), shape (L, N, 10) -> joints (L, N, 42, 3) native order, metres (MANO frame)."""
        lead = pose.shape[:2]
        flat_pose, flat_shape = pose.flatten(0, 1), shape.flatten(0, 1)
        hands = []
        for h, side in enumerate(("right", "left")):
            p = flat_pose[:, 16 * h:16 * (h + 1)]
            out = self.mano[side](p[:, 0], p[:, 1:].flatten(1), flat_shape)
            hands.append(skeleton.canonical_to_interhand(out.joints))
        return torch.cat(hands, dim=1).reshape(*lead, 42, 3)

    def raw(self, output: KptOutput, targets: KptTargets) -> dict[str, torch.Tensor]:
        cfg = self.config
        terms: dict[str, torch.Tensor] = {}
        joint_maps = getattr(output, "joint_heatmaps", None)
        if joint_maps is not None:  # per-joint maps (OccRobNet)
            target_maps = gaussian_heatmaps(targets.joint_xy, targets.joint_valid, joint_maps.shape[-1],
                                            per_joint=True)
            terms["heatmap"] = heatmap_loss(joint_maps, target_maps, targets.heatmap_valid)
        else:
            terms["heatmap"] = heatmap_loss(output.heatmap, targets.heatmap, targets.heatmap_valid)
        if cfg.has_object:
            if not targets.has_object:
                raise ValueError("this configuration has object heads: targets need the object fields")
            terms["obj_seg"] = segmentation_loss(output.seg, targets.obj_seg)
        targets = mask_samples_without_tokens(output, targets)
        depth = targets.joint_rel[..., 2]
        labels = token_identity_labels(output.token_xy, output.token_kind, output.token_valid, targets.joint_xy,
                                       targets.joint_valid, depth, targets.obj_seg)
        terms["identity"] = identity_loss(output.class_logits, labels, output.token_valid)
        rep = cfg.pose_representation
        if rep == "3D":
            terms["joint_vec"], terms["joint_3d"], terms["joint_2d"] = joint_vector_losses(
                output.joint_vecs, output.cam, output.rel_trans, targets)
        elif rep == "2p5D":
            loss = joint_2p5d_cross_entropy if self.joint_2p5d_loss == "cross_entropy" else joint_2p5d_loss
            terms["joint_2p5d"] = loss(output.joint_2p5d_logits, targets)
        else:
            if targets.mano_pose is None:
                raise ValueError("the 'angles' representation needs MANO targets (mano_pose, mano_shape)")
            terms["mano_pose"] = mano_pose_loss(output.mano_pose, targets)
            terms["mano_shape"] = mano_shape_loss(output.mano_shape, targets)
            joints = self.mano_joints(output.mano_pose, output.mano_shape)
            terms["joint_3d"], terms["joint_2d"] = mano_joint_losses(joints, output.cam, output.rel_trans, targets)
        terms["rel_trans"] = rel_trans_loss(output.rel_trans, targets)
        if rep != "2p5D":  # the official 2.5D model does not train its camera head
            terms["cam_scale"], terms["cam_trans"] = camera_losses(output.cam, targets)
        if cfg.has_object:
            terms["obj_corners"], terms["obj_trans"] = object_losses(
                output.obj_rot6d, output.obj_trans, output.obj_left_trans, output.rel_trans, targets)
        terms["hand_type"] = hand_type_loss(output.hand_type_logits, targets)
        return terms

    def forward(self, output: KptOutput, targets: KptTargets) -> dict[str, torch.Tensor]:
        weights = asdict(self.weights)
        weighted = {name: value * weights[name] for name, value in self.raw(output, targets).items()}
        weighted["total"] = torch.stack(list(weighted.values())).sum()
        return weighted
