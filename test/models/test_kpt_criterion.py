"""Keypoint Transformer losses and targets against values computed by hand on tiny tensors."""
import math

import pytest
import torch

from hand_object_pose.geometry import skeleton
from hand_object_pose.models.kpt.config import KptConfig
from hand_object_pose.models.kpt.criterion import (
    KptCriterion, KptLossWeights, camera_losses, camera_targets, hand_type_loss, heatmap_loss, identity_loss,
    joint_2p5d_cross_entropy, joint_2p5d_loss, joint_vector_losses, mano_pose_loss, mano_shape_loss, object_losses, rel_trans_loss)
from hand_object_pose.models.kpt.output import KptOutput
from hand_object_pose.models.kpt.targets import (
    INTERHAND_PARENTS, KptTargets, gaussian_heatmaps, ground_truth_tokens, kpt_targets, official_object_weights,
    parent_valid, token_identity_labels)

E = math.exp


def make_targets(n=1, **fields) -> KptTargets:
    """KptTargets with zero joints, everything valid, overridden by `fields`."""
    base = dict(joint_xy=torch.zeros(n, 42, 2), joint_rel=torch.zeros(n, 42, 3),
                joint_valid=torch.ones(n, 42, dtype=torch.bool), joint_2p5d=torch.zeros(n, 42, 3),
                heatmap=torch.zeros(n, 8, 8), heatmap_valid=torch.ones(n, dtype=torch.bool),
                rel_trans=torch.zeros(n, 3), rel_trans_valid=torch.ones(n, dtype=torch.bool),
                hand_type=torch.ones(n, 2), hand_type_valid=torch.ones(n, dtype=torch.bool))
    base.update(fields)
    return KptTargets(**base)


# --- targets -------------------------------------------------------------------------------------------

def test_gaussian_heatmap_values_by_hand():
    xy = torch.tensor([[[3.0, 5.0], [6.0, 5.0], [1.0, 1.0]]])
    valid = torch.tensor([[True, True, False]])
    hm = gaussian_heatmaps(xy, valid, size=8)
    s2 = 2 * 1.25 ** 2
    assert hm.shape == (1, 8, 8)
    # (row 5, col 3): joint 0 peak + joint 1 at distance 3; the invalid joint adds nothing.
    assert hm[0, 5, 3].item() == pytest.approx(255 * (1 + E(-9 / s2)), rel=1e-5)
    assert hm[0, 5, 4].item() == pytest.approx(255 * (E(-1 / s2) + E(-4 / s2)), rel=1e-5)
    assert hm[0, 1, 1].item() == pytest.approx(255 * (E(-(4 + 16) / s2) + E(-(25 + 16) / s2)), rel=1e-5)
    per = gaussian_heatmaps(xy, valid, size=8, per_joint=True)
    assert per.shape == (1, 3, 8, 8) and per[0, 2].abs().max() == 0
    assert per[0, 0, 5, 3].item() == pytest.approx(255.0)


def test_token_identity_prefers_front_most_joint_within_3px():
    joint_xy = torch.zeros(1, 42, 2)
    joint_xy[0, 0] = torch.tensor([10.0, 10.0])
    joint_xy[0, 5] = torch.tensor([11.0, 10.0])
    joint_xy[0, 7] = torch.tensor([30.0, 30.0])
    joint_xy[0, 9] = torch.tensor([50.0, 50.0])   # not valid: never a label
    joint_xy[0, 10:] = 100.0
    joint_valid = torch.ones(1, 42, dtype=torch.bool)
    joint_valid[0, 9] = False
    depth = torch.full((1, 42), 1.0)
    depth[0, 0], depth[0, 5] = 0.5, 0.4           # joint 5 is nearer the camera
    tokens = torch.tensor([[[10.0, 10.0], [13.5, 10.0], [30.0, 33.0], [50.0, 50.0], [2.0, 1.0], [4.0, 1.0],
                            [10.0, 10.0], [30.0, 33.1]]])
    kind = torch.tensor([[1, 1, 1, 1, 43, 43, 0, 1]])
    valid = torch.tensor([[True, True, True, True, True, True, False, True]])
    seg = torch.zeros(1, 8, 8)
    seg[0, 1, 2] = 200.0
    seg[0, 1, 4] = 50.0
    labels = token_identity_labels(tokens, kind, valid, joint_xy, joint_valid, depth, seg)
    # both joints 0 and 5 near -> front-most 5 (label 6); only joint 5 within 3 px; exactly 3 px -> joint 7;
    # only an invalid joint near -> 0; object on / off the mask -> 43 / 0; padding -> 0; 3.1 px -> 0.
    assert labels.tolist() == [[6, 6, 8, 0, 43, 0, 0, 0]]
    with pytest.raises(ValueError, match="obj_seg"):
        token_identity_labels(tokens, kind, valid, joint_xy, joint_valid, depth, None)


def test_kpt_targets_native_order_units_and_references():
    n = 2
    cam = torch.zeros(n, 2, 21, 3)
    cam[:, :, :, 2] = 0.5
    cam[:, 0, 1, 2] = 0.575          # right thumb1 (canonical 1) 75 mm behind the right wrist
    cam[:, 1, 0] = torch.tensor([0.1, 0.0, 0.6])   # left wrist
    uv = torch.arange(n * 2 * 21 * 2, dtype=torch.float32).reshape(n, 2, 21, 2)
    valid = torch.ones(n, 2, 21, dtype=torch.bool)
    valid[1, 1] = False                              # sample 1: no left hand
    t = kpt_targets(cam, uv, valid)
    # canonical wrist -> native 20; 2D halves (256 crop -> 128 grid).
    assert torch.equal(t.joint_xy[:, 20], uv[:, 0, 0] / 2)
    native = skeleton.canonical_to_interhand(uv.reshape(n, 42, 2)) / 2
    assert torch.equal(t.joint_xy[0], native[0]) and torch.equal(t.joint_xy[1, :21], native[1, :21])
    assert t.joint_xy[1, 21:].abs().max() == 0      # the absent left hand is zeroed
    assert torch.allclose(t.joint_rel[:, 20], torch.zeros(2, 3))
    assert t.joint_rel[0, 41].tolist() == pytest.approx([0.1, 0.0, 0.1])
    # native 3 = right thumb1, parent = wrist: depth +0.075 m -> bin (0.5 + 1) / 2 * 128 = 96.
    assert t.joint_2p5d[0, 3, 2].item() == pytest.approx(96.0)
    assert t.rel_trans_valid.tolist() == [True, False]
    assert t.rel_trans[0].tolist() == pytest.approx([0.1, 0.0, 0.1])
    assert t.hand_type.tolist() == [[1.0, 1.0], [1.0, 0.0]]
    assert t.heatmap.shape == (n, 128, 128)
    assert t.heatmap[1].sum() < t.heatmap[0].sum()   # sample 1 has half the joints
    with pytest.raises(ValueError, match="canonical"):
        kpt_targets(cam[:, :, :20], uv, valid)


def test_invalid_joints_with_nan_give_finite_targets_and_losses():
    cam = torch.full((1, 2, 21, 3), 0.5)
    uv = torch.full((1, 2, 21, 2), 100.0)
    valid = torch.ones(1, 2, 21, dtype=torch.bool)
    valid[0, 1] = False
    cam[0, 1] = float("nan")
    uv[0, 1] = float("nan")
    t = kpt_targets(cam, uv, valid)
    for name in ("joint_xy", "joint_rel", "joint_2p5d", "heatmap", "rel_trans"):
        assert torch.isfinite(getattr(t, name)).all(), name
    loss = joint_vector_losses(torch.zeros(1, 1, 40, 3), torch.ones(1, 1, 3), torch.zeros(1, 1, 3), t)
    assert all(torch.isfinite(v) for v in loss)


def test_kpt_targets_object_fields_and_gt_tokens():
    n = 1
    cam = torch.zeros(n, 2, 21, 3)
    cam[..., 2] = 0.5
    uv = torch.rand(n, 2, 21, 2) * 200 + 20
    valid = torch.ones(n, 2, 21, dtype=torch.bool)
    valid[0, 1, 5:] = False
    mask = torch.zeros(n, 128, 128)
    mask[0, 60:70, 60:70] = 1.0
    t = kpt_targets(cam, uv, valid, obj_mask=mask, obj_rot=torch.eye(3)[None],
                    obj_trans=torch.tensor([[0.0, 0.1, 0.6]]),
                    obj_corners_rest=torch.zeros(n, 8, 3))
    assert t.obj_trans.tolist()[0] == pytest.approx([0.0, 0.1, 0.1])
    assert t.obj_seg.max().item() == 255.0
    assert t.obj_weight.tolist() == [1.0] and t.obj_symmetric.tolist() == [False]
    tokens = ground_truth_tokens(t, max_tokens=100, max_object_tokens=50)
    n_joints = int(t.joint_valid.sum())
    assert n_joints == 26
    assert (tokens.kind[0, :n_joints] == 1).all()
    # Sub-pixel joint positions are kept and the native order is preserved.
    assert torch.allclose(tokens.xy[0, :n_joints], t.joint_xy[0][t.joint_valid[0]])
    n_obj = int((tokens.kind[0] == 43).sum())
    assert n_obj >= 4 and (tokens.kind[0, n_joints:n_joints + n_obj] == 43).all()
    obj_xy = tokens.xy[0, n_joints:n_joints + n_obj]
    assert ((obj_xy >= 60) & (obj_xy <= 69)).all()
    assert not tokens.valid[0, n_joints + n_obj:].any()
    w = official_object_weights(torch.tensor([24, 6, 10]), torch.tensor([True, False, False]))
    assert w.tolist() == [4.0, 0.0, 4.0]


# --- individual terms by hand ----------------------------------------------------------------------------

def test_heatmap_loss_respects_sample_mask():
    pred = torch.zeros(2, 2, 2)
    target = torch.tensor([[[1.0, 2.0], [0.0, 0.0]], [[5.0, 5.0], [5.0, 5.0]]])
    assert heatmap_loss(pred, target, torch.tensor([True, False])).item() == pytest.approx((1 + 4) / 8)


def test_per_joint_heatmap_loss_sums_joints_then_averages_pixels():
    pred = torch.zeros(2, 3, 2, 2)
    target = torch.zeros(2, 3, 2, 2)
    target[0, 0, 0, 0], target[0, 2, 0, 0], target[0, 1, 1, 1] = 1.0, 2.0, 3.0
    target[1] = 9.0                                   # masked sample
    assert heatmap_loss(pred, target, torch.tensor([True, False])).item() == pytest.approx((1 + 4 + 9) / 8)


def test_identity_loss_is_mean_cross_entropy_over_layers_and_real_tokens():
    logits = torch.tensor([[[[1.0, 2.0, 3.0], [9.0, 9.0, 9.0]]], [[[0.0, 0.0, 0.0], [7.0, 0.0, 0.0]]]])  # (2, 1, 2, 3)
    labels = torch.tensor([[2, 0]])
    valid = torch.tensor([[True, False]])
    ce0 = math.log(E(1) + E(2) + E(3)) - 3
    ce1 = math.log(3.0)
    assert identity_loss(logits, labels, valid).item() == pytest.approx((ce0 + ce1) / 2, rel=1e-6)
    assert identity_loss(logits, labels, torch.zeros(1, 2, dtype=torch.bool)).item() == 0.0


def test_joint_vector_losses_by_hand():
    rel = torch.zeros(1, 42, 3)
    rel[0, 3] = torch.tensor([0.01, 0.0, 0.0])     # right thumb base 10 mm from the wrist
    xy = torch.tensor([5.0, 6.0]).repeat(1, 42, 1)
    xy[0, 21:] = torch.tensor([6.0, 8.0])
    xy[0, 3] = torch.tensor([7.0, 6.0])
    t = make_targets(joint_rel=rel, joint_xy=xy)
    vecs = torch.zeros(1, 1, 40, 3)
    cam = torch.tensor([[[100.0, 5.0, 6.0]]])
    rel_trans = torch.tensor([[[0.01, 0.02, 0.0]]])  # left hand at (5 + 1, 6 + 2) px
    loss_vec, loss_3d, loss_2d = joint_vector_losses(vecs, cam, rel_trans, t)
    # vectors: thumb base +10 mm, thumb2 (child of the base) -10 mm -> 20 / (40 * 3)
    assert loss_vec.item() == pytest.approx(20 / 120)
    assert loss_3d.item() == pytest.approx(10 / 120)
    assert loss_2d.item() == pytest.approx(2 / 80)
    # An absent left hand: whatever the left predictions, the left terms vanish.
    valid = torch.ones(1, 42, dtype=torch.bool)
    valid[0, 21:] = False
    t_right = make_targets(joint_rel=rel, joint_xy=xy, joint_valid=valid)
    vecs_left = vecs.clone()
    vecs_left[..., 20:, :] = 0.3
    assert [v.item() for v in joint_vector_losses(vecs_left, cam, rel_trans * 7, t_right)] == pytest.approx(
        [20 / 120, 10 / 120, 2 / 80])
    # A missing right wrist masks the right hand's wrist-relative joints (not its bone vectors).
    valid = torch.ones(1, 42, dtype=torch.bool)
    valid[0, 20] = False
    assert joint_vector_losses(vecs, cam, rel_trans, make_targets(joint_rel=rel, joint_xy=xy,
                                                                  joint_valid=valid))[1].item() == 0.0


def test_joint_2p5d_loss_by_hand():
    bins = 4
    logits = torch.zeros(1, 1, 42, 3, bins)
    valid = torch.ones(1, 42, dtype=torch.bool)
    valid[0, 0] = False                              # a tip: no joint has it as parent
    t = make_targets(joint_valid=valid)             # all coordinates at bin 0
    g2 = sum(E(-(b ** 2) / (2 * 1.25 ** 2)) ** 2 for b in range(bins))
    # x, y: 41 valid joints; depth: 40 non-wrists minus the invalid one
    expected = (2 * 41 + 39) * g2 / (42 * 3 * bins)
    assert joint_2p5d_loss(logits, t).item() == pytest.approx(expected, rel=1e-6)


def test_joint_2p5d_cross_entropy_by_hand():
    """Uniform logits over 4 bins: each valid 1D map costs log 4 (the target is a distribution); the mean is over
    the valid maps (2 x 41 x, y + 39 depth) and the decoder layers. Logits equal to the target's log are the
    minimum: the target's entropy."""
    bins = 4
    valid = torch.ones(1, 42, dtype=torch.bool)
    valid[0, 0] = False
    t = make_targets(joint_valid=valid)
    assert joint_2p5d_cross_entropy(torch.zeros(2, 1, 42, 3, bins), t).item() == pytest.approx(math.log(bins))
    g = torch.tensor([E(-(b ** 2) / (2 * 1.25 ** 2)) for b in range(bins)])
    p = g / g.sum()
    best = torch.log(p).expand(1, 1, 42, 3, bins).clone()
    assert joint_2p5d_cross_entropy(best, t).item() == pytest.approx(float(-(p * p.log()).sum()), rel=1e-6)
    best[0, 0, 5, 0] = torch.tensor([0.0, 0.0, 0.0, 9.0])          # a wrong peak costs more
    assert joint_2p5d_cross_entropy(best, t).item() > float(-(p * p.log()).sum())
    with pytest.raises(ValueError, match="joint_2p5d_loss must be"):
        KptCriterion(KptConfig(pose_representation="2p5D"), joint_2p5d_loss="l1")


def test_mano_pose_and_shape_losses_by_hand():
    pose_gt = torch.zeros(1, 32, 3)
    pose_gt[0, 4, 1] = 0.32
    pose_gt[0, 20, 0] = 0.64                         # left hand, not valid below
    shape_gt = torch.stack((torch.ones(10), torch.full((10,), 3.0)))[None]
    t = make_targets(mano_pose=pose_gt, mano_shape=shape_gt, mano_valid=torch.tensor([[True, False]]))
    assert mano_pose_loss(torch.zeros(2, 1, 32, 3), t).item() == pytest.approx(0.32 / 32)
    assert mano_shape_loss(torch.zeros(2, 1, 10), t).item() == pytest.approx(1.0)
    t.mano_valid = torch.tensor([[True, True]])
    assert mano_pose_loss(torch.zeros(1, 1, 32, 3), t).item() == pytest.approx(0.96 / 32)
    assert mano_shape_loss(torch.zeros(1, 1, 10), t).item() == pytest.approx(2.0, rel=1e-6)
    t.mano_valid = torch.tensor([[False, False]])
    assert mano_shape_loss(torch.zeros(1, 1, 10), t).item() == 0.0


def test_camera_fit_and_losses_by_hand():
    g = torch.Generator().manual_seed(0)
    rel = torch.randn(1, 42, 3, generator=g) * 0.3
    s, tx, ty = 200.0, 64.0, 60.0
    xy = rel[..., :2] * s + torch.tensor([tx, ty])
    xy[0, 21:] += 17.0                               # left hand inconsistent, but its pair is invalid
    t = make_targets(joint_rel=rel, joint_xy=xy, rel_trans_valid=torch.tensor([False]))
    cam, ok = camera_targets(t)
    assert ok.tolist() == [True]
    assert cam[0].tolist() == pytest.approx([s, tx, ty], rel=1e-3)
    pred = torch.tensor([[[s + 1.0, tx, ty + 2.0]]])
    scale, trans = camera_losses(pred, t)
    assert scale.item() == pytest.approx(1.0, abs=0.05)
    assert trans.item() == pytest.approx(1.0, abs=0.05)
    none = make_targets(joint_valid=torch.zeros(1, 42, dtype=torch.bool))
    assert [v.item() for v in camera_losses(pred, none)] == [0.0, 0.0]


def test_rel_trans_and_hand_type_losses_by_hand():
    t = make_targets(n=2, rel_trans=torch.tensor([[0.1, 0.0, 0.0], [0.0, 0.0, 0.0]]),
                     rel_trans_valid=torch.tensor([True, False]))
    pred = torch.zeros(3, 2, 3)
    assert rel_trans_loss(pred, t).item() == pytest.approx(0.1 / 6)
    t.hand_type_valid = torch.tensor([True, False])
    assert hand_type_loss(torch.zeros(2, 2), t).item() == pytest.approx(math.log(2) / 2)


def _object_targets(symmetric: bool, weight: float = 1.0) -> KptTargets:
    signs = torch.tensor([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=torch.float32)
    return make_targets(obj_seg=torch.zeros(1, 8, 8), obj_rot=torch.eye(3)[None],
                        obj_trans=torch.tensor([[0.0, 0.0, 0.5]]), obj_corners_rest=(0.05 * signs)[None],
                        obj_symmetric=torch.tensor([symmetric]), obj_weight=torch.tensor([weight]),
                        rel_trans=torch.tensor([[0.2, 0.0, 0.0]]))


def test_object_corner_loss_by_hand_with_symmetry():
    identity6d = torch.tensor([[[1.0, 0, 0, 0, 1, 0]]])
    turned6d = torch.tensor([[[-1.0, 0, 0, 0, -1, 0]]])   # 180 deg about z
    trans = torch.tensor([[[0.001, 0.0, 0.5]]])
    rel = torch.tensor([[[0.2, 0.0, 0.0]]])
    corners, _ = object_losses(identity6d, trans, None, rel, _object_targets(False))
    assert corners.item() == pytest.approx(1 / 3, rel=1e-4)   # x off by 1 mm on 8 corners -> 8 / 24
    exact = torch.tensor([[[0.0, 0.0, 0.5]]])
    corners, _ = object_losses(turned6d, exact, None, rel, _object_targets(False))
    assert corners.item() == pytest.approx(200 / 3, rel=1e-4)  # x and y flipped: 100 mm each
    corners, _ = object_losses(turned6d, exact, None, rel, _object_targets(True))
    assert corners.item() == pytest.approx(0.0, abs=1e-4)
    corners, trans_loss = object_losses(turned6d, trans, None, rel, _object_targets(False, weight=0.0))
    assert corners.item() == 0.0 and trans_loss.item() == 0.0


def test_object_translation_loss_with_left_head_by_hand():
    t = _object_targets(False, weight=4.0)
    trans = torch.tensor([[[0.0, 0.0, 0.5]]])
    left = torch.tensor([[[-0.2, 0.0, 0.503]]])      # ground truth (-0.2, 0, 0.5) + 3 mm in z
    rel = torch.tensor([[[0.2, 0.0, 0.0]]])
    _, loss = object_losses(torch.tensor([[[1.0, 0, 0, 0, 1, 0]]]), trans, left, rel, t)
    # left term 0.003 + triangle |rel + left - trans| = 0.003, both in z; mean over 3, times weight 4
    assert loss.item() == pytest.approx(4 * 0.006 / 3, rel=1e-4)


# --- the criterion -----------------------------------------------------------------------------------------

CFG_3D_OBJ = KptConfig(pose_representation="3D", has_object=True, object_left_translation=True, backbone_depth=18,
                       dec_layers=2, enc_layers=2)


def _weak_perspective_batch(n=2):
    """Ground truth consistent with a weak-perspective camera, plus the KptOutput that matches it."""
    g = torch.Generator().manual_seed(1)
    cam3d = torch.randn(n, 2, 21, 3, generator=g) * 0.04
    cam3d[..., 2] += 0.6
    cam3d[:, 1, :, 0] += 0.15
    s, tx, ty = 150.0, 64.0, 64.0
    ref = cam3d[:, 0, 0]
    uv = ((cam3d[..., :2] - ref[:, None, None, :2]) * s + torch.tensor([tx, ty])) * 2  # crop px
    valid = torch.ones(n, 2, 21, dtype=torch.bool)
    valid[1, 1] = False                                  # sample 1 has no left hand
    valid[0, 0, 7] = False
    mask = torch.zeros(n, 128, 128)
    mask[:, 50:70, 40:80] = 1.0
    rot = torch.eye(3).expand(n, 3, 3).clone()
    t = kpt_targets(cam3d, uv, valid, obj_mask=mask, obj_rot=rot, obj_trans=ref + torch.tensor([0.05, 0.0, 0.02]),
                    obj_corners_rest=torch.randn(n, 8, 3, generator=g) * 0.05,
                    obj_symmetric=torch.tensor([True, False]))
    return t


def _perfect_output(t: KptTargets, layers=2) -> KptOutput:
    n = t.joint_xy.shape[0]
    tokens = ground_truth_tokens(t, 100, 50)
    labels = token_identity_labels(tokens.xy, tokens.kind, tokens.valid, t.joint_xy, t.joint_valid,
                                   t.joint_rel[..., 2], t.obj_seg)
    logits = torch.nn.functional.one_hot(labels, 44).float() * 100.0
    own = t.joint_rel.clone()
    own[:, :21] -= t.joint_rel[:, 20:21]
    own[:, 21:] -= t.joint_rel[:, 41:42]
    parents = torch.tensor(INTERHAND_PARENTS)
    vecs = (own - own[:, parents])[:, [j for j in range(42) if j not in (20, 41)]]
    cam, _ = camera_targets(t)

    def rep(x):
        return x[None].expand(layers, *x.shape).clone()

    rot6d = torch.cat((t.obj_rot[..., 0], t.obj_rot[..., 1]), dim=-1)
    return KptOutput(heatmap=t.heatmap.clone(), seg=t.obj_seg.clone(), token_xy=tokens.xy, token_kind=tokens.kind,
                     token_valid=tokens.valid, class_logits=rep(logits),
                     hand_type_logits=(t.hand_type * 2 - 1) * 100.0, rel_trans=rep(t.rel_trans), cam=rep(cam),
                     cross_attn_weights=torch.zeros(layers, n, 43, 100), joint_vecs=rep(vecs), obj_rot6d=rep(rot6d),
                     obj_trans=rep(t.obj_trans), obj_corner_proj=torch.zeros(layers, n, 16),
                     obj_left_trans=rep(t.obj_trans - t.rel_trans))


def test_criterion_is_zero_at_ground_truth_and_positive_elsewhere():
    t = _weak_perspective_batch()
    crit = KptCriterion(CFG_3D_OBJ, KptLossWeights(hand_type=1.0))
    perfect = _perfect_output(t)
    losses = crit(perfect, t)
    expected = {"heatmap", "obj_seg", "identity", "joint_vec", "joint_3d", "joint_2d", "rel_trans", "cam_scale",
                "cam_trans", "obj_corners", "obj_trans", "hand_type", "total"}
    assert set(losses) == expected
    for name, value in losses.items():
        assert value.item() == pytest.approx(0.0, abs=1e-3), name
    # The right-hand weak-perspective fit is exact up to the ridge term; its 2D residual is below 0.05 px.
    perturbations = {
        "heatmap": lambda o: o.heatmap.add_(1.0), "obj_seg": lambda o: o.seg.add_(1.0),
        "identity": lambda o: o.class_logits.mul_(0.0), "joint_vec": lambda o: o.joint_vecs[..., 3, :].add_(0.01),
        "rel_trans": lambda o: o.rel_trans.add_(0.01), "cam_scale": lambda o: o.cam[..., 0].add_(5.0),
        "cam_trans": lambda o: o.cam[..., 1].add_(5.0), "obj_corners": lambda o: o.obj_rot6d[..., 1].add_(0.5),
        "obj_trans": lambda o: o.obj_trans.add_(0.01), "hand_type": lambda o: o.hand_type_logits.neg_(),
    }
    for name, perturb in perturbations.items():
        out = _perfect_output(t)
        perturb(out)
        assert crit(out, t)[name].item() > 1e-3, name
    out = _perfect_output(t)
    out.joint_vecs[..., 3, :] += 0.01
    raw = crit.raw(out, t)
    assert raw["joint_3d"] > 0 and raw["joint_2d"] > 0


def test_criterion_weights_and_gradients():
    t = _weak_perspective_batch()
    crit = KptCriterion(CFG_3D_OBJ)
    out = _perfect_output(t)
    g = torch.Generator().manual_seed(3)
    for name in ("heatmap", "seg", "class_logits", "rel_trans", "cam", "joint_vecs", "obj_rot6d", "obj_trans",
                 "obj_left_trans"):
        value = getattr(out, name) * (0.01 if name == "class_logits" else 1.0)  # unsaturated softmax
        setattr(out, name, (value + 0.01 * torch.randn(value.shape, generator=g)).requires_grad_(True))
    raw = crit.raw(out, t)
    weighted = crit(out, t)
    w = KptLossWeights()
    for name, value in raw.items():
        assert weighted[name].item() == pytest.approx(value.item() * getattr(w, name), rel=1e-6)
    assert weighted["total"].item() == pytest.approx(sum(v.item() for k, v in weighted.items() if k != "total"),
                                                     rel=1e-5)
    weighted["total"].backward()
    for name in ("heatmap", "seg", "class_logits", "rel_trans", "cam", "joint_vecs", "obj_rot6d", "obj_trans",
                 "obj_left_trans"):
        grad = getattr(out, name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
    # Sample 1 has no left hand: no gradient reaches its left bone vectors; padding tokens get none either.
    assert out.joint_vecs.grad[:, 1, 20:].abs().max() == 0
    assert out.class_logits.grad[:, ~out.token_valid].abs().max() == 0


def test_criterion_2p5d_has_no_camera_terms_and_checks_object_targets():
    cfg = KptConfig(pose_representation="2p5D", backbone_depth=18, dec_layers=1, enc_layers=1)
    t = _weak_perspective_batch()
    n = t.joint_xy.shape[0]
    tokens = ground_truth_tokens(t, 100, 50)
    logits = torch.zeros(1, n, 42, 3, 128)
    out = KptOutput(heatmap=t.heatmap, seg=None, token_xy=tokens.xy, token_kind=torch.where(tokens.valid, 1, 0),
                    token_valid=tokens.valid, class_logits=torch.zeros(1, n, 100, 43),
                    hand_type_logits=torch.zeros(n, 2), rel_trans=torch.zeros(1, n, 3), cam=torch.zeros(1, n, 3),
                    cross_attn_weights=torch.zeros(1, n, 43, 100), joint_2p5d_logits=logits)
    losses = KptCriterion(cfg)(out, t)
    assert "cam_scale" not in losses and "joint_2p5d" in losses and losses["joint_2p5d"] > 0
    t.obj_rot = None
    with pytest.raises(ValueError, match="object"):
        KptCriterion(CFG_3D_OBJ).raw(_perfect_output(_weak_perspective_batch()), t)
    with pytest.raises(ValueError, match="mano_layers"):
        KptCriterion(KptConfig(pose_representation="angles"))


def test_criterion_angles_with_standin_hand_zero_at_truth():
    from hand_object_pose.geometry.mano import ManoLayer

    layers = {side: ManoLayer(f"models/standin_hand/standin_hand_{side}.npz") for side in ("right", "left")}
    cfg = KptConfig(pose_representation="angles", backbone_depth=18, dec_layers=1, enc_layers=1)
    crit = KptCriterion(cfg, mano_layers=layers)
    g = torch.Generator().manual_seed(5)
    pose = torch.randn(1, 2, 16, 3, generator=g) * 0.2
    betas = torch.zeros(1, 2, 10)
    joints = torch.stack([layers[s](pose[:, h, 0], pose[:, h, 1:].flatten(1)).joints
                          for h, s in enumerate(("right", "left"))], dim=1)                      # canonical, metres
    joints[:, 1] += torch.tensor([0.12, 0.0, 0.0])   # left hand 12 cm to the side
    joints[..., 2] += 0.6
    s, c = 150.0, 64.0
    uv = ((joints[..., :2] - joints[:, :1, :1, :2]) * s + c) * 2
    t = kpt_targets(joints, uv, torch.ones(1, 2, 21, dtype=torch.bool), mano_pose=pose, mano_shape=betas)
    cam, _ = camera_targets(t)
    out = KptOutput(heatmap=t.heatmap, seg=None, token_xy=torch.zeros(1, 4, 2),
                    token_kind=torch.ones(1, 4, dtype=torch.long),
                    token_valid=torch.ones(1, 4, dtype=torch.bool), class_logits=torch.zeros(1, 1, 4, 43),
                    hand_type_logits=torch.full((1, 2), 50.0), rel_trans=t.rel_trans[None], cam=cam[None],
                    cross_attn_weights=torch.zeros(1, 1, 34, 4), mano_pose=pose.reshape(1, 1, 32, 3).clone(),
                    mano_shape=torch.zeros(1, 1, 10))
    raw = crit.raw(out, t)
    for name in ("mano_pose", "mano_shape", "joint_3d", "rel_trans", "cam_scale", "cam_trans"):
        assert raw[name].item() == pytest.approx(0.0, abs=1e-4), name
    assert raw["joint_2d"].item() < 0.05
    out.mano_pose = (out.mano_pose + 0.1).requires_grad_(True)
    raw = crit.raw(out, t)
    assert raw["mano_pose"].item() == pytest.approx(0.1 * 3 * 32 / 32, rel=1e-5)
    assert raw["joint_3d"].item() > 1.0               # mm
    raw["joint_3d"].backward()
    assert out.mano_pose.grad.abs().sum() > 0


def test_criterion_trains_a_tiny_model_end_to_end():
    torch.manual_seed(0)
    from hand_object_pose.models.kpt import build

    cfg = KptConfig(pose_representation="3D", has_object=True, object_left_translation=True, backbone_depth=18,
                    dec_layers=1, enc_layers=1)
    model = build(cfg).train()
    t = _weak_perspective_batch()
    out = model(torch.rand(2, 3, 256, 256), tokens=ground_truth_tokens(t, cfg.max_tokens, cfg.max_object_tokens))
    losses = KptCriterion(cfg)(out, t)
    assert torch.isfinite(losses["total"])
    losses["total"].backward()
    for name in ("backbone.conv1.weight", "tokens.linear1.layers.0.weight", "tokens.linear1_obj.layers.0.weight",
                 "transformer.encoder.layers.0.self_attn.in_proj_weight", "heads.linear_class.layers.0.weight",
                 "heads.linear_joint_vecs.layers.2.weight", "heads.linear_obj_rot.layers.2.weight",
                 "heads.linear_obj_left_rel_trans.layers.2.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_samples_without_tokens_train_no_pose_and_without_object_tokens_no_object():
    t = _weak_perspective_batch()
    crit = KptCriterion(CFG_3D_OBJ)
    out = _perfect_output(t)
    out.joint_vecs = out.joint_vecs.clone()
    out.joint_vecs[:, 0] += 0.02                      # sample 0 badly wrong ...
    out.obj_trans = out.obj_trans.clone()
    out.obj_trans[:, 1] += 0.05                       # ... and sample 1's object
    before = crit.raw(out, t)
    assert before["joint_vec"] > 1 and before["obj_trans"] > 1e-3
    out.token_valid = out.token_valid.clone()
    out.token_valid[0] = False                        # sample 0: no token at all
    out.token_kind = torch.where(out.token_kind == 43, torch.ones_like(out.token_kind), out.token_kind)
    out.token_kind[0] = 0
    after = crit.raw(out, t)                          # ... and no sample has object tokens any more
    for name in ("joint_vec", "joint_3d", "obj_trans", "obj_corners"):
        assert after[name].item() == pytest.approx(0.0, abs=1e-4), name
    assert after["joint_2d"].item() < 0.01          # sample 1's weak-perspective residual only
    assert after["heatmap"].item() == pytest.approx(before["heatmap"].item())


def test_minimising_the_pose_terms_recovers_the_ground_truth():
    """Free predictions (no network) driven only by the weighted pose terms converge to the ground truth."""
    t = _weak_perspective_batch()
    w = KptLossWeights()
    target = _perfect_output(t, layers=1)
    vecs = torch.zeros_like(target.joint_vecs, requires_grad=True)
    cam = torch.tensor([[[100.0, 60.0, 60.0]] * 2], requires_grad=True)
    rel = torch.zeros(1, 2, 3, requires_grad=True)
    opt = torch.optim.Adam([{"params": [vecs, rel], "lr": 2e-3}, {"params": [cam], "lr": 1.0}])
    for _ in range(200):
        l_vec, l_3d, l_2d = joint_vector_losses(vecs, cam, rel, t)
        l_scale, l_trans = camera_losses(cam, t)
        loss = (w.joint_vec * l_vec + w.joint_3d * l_3d + w.joint_2d * l_2d + w.rel_trans * rel_trans_loss(rel, t)
                + w.cam_scale * l_scale + w.cam_trans * l_trans)
        opt.zero_grad()
        loss.backward()
        opt.step()
    valid = parent_valid(t.joint_valid)[:, [j for j in range(42) if j not in (20, 41)]]
    err_mm = ((vecs - target.joint_vecs).norm(dim=-1)[0] * 1000)[valid]
    assert err_mm.max() < 1.0
    assert (rel - target.rel_trans)[0, t.rel_trans_valid].abs().max() < 1e-3
