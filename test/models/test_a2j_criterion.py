"""A2J losses against values worked out by hand."""
from __future__ import annotations

import math

import pytest
import torch

from hand_object_pose.models.a2j.criterion import A2JCriterion, smooth_l1


def test_smooth_l1_both_branches():
    got = smooth_l1(torch.tensor([0.5, -2.0, 2.0, 5.0]), 1.0).tolist()
    assert got == pytest.approx([0.125, 1.5, 1.5, 4.5])
    assert smooth_l1(torch.tensor([1.5, -5.0]), 3.0).tolist() == pytest.approx([1.5 ** 2 / 6, 3.5])


def _case():
    # One sample, three joints; joint 2 is invalid and carries absurd values (even NaN) that must not count.
    target = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [float("nan"), 0.0, 0.0]]])
    joints = torch.tensor([[[[0.5, 2.0, 0.0], [0.0, 0.0, 6.0], [1e4, 1e4, 1e4]]]])
    anchors = torch.tensor([[[[1.0, 0.0, 0.5], [0.0, 0.0, -1.0], [1e4, 1e4, 1e4]]]])
    valid = torch.tensor([[True, True, False]])
    return joints, anchors, target, valid


def test_single_layer_by_hand():
    joints, anchors, target, valid = _case()
    losses = A2JCriterion()(joints, anchors, target, valid)
    # Regression: joint 0: 0.5 * (L1(0.5) + L1(2)) = 0.5 * (0.125 + 1.5) = 0.8125; joint 1: L3(5) = 5 - 1.5 = 3.5.
    # Normalised by 3 x 2 valid joints.
    assert losses.regression.item() == pytest.approx((0.8125 + 3.5) / 6)
    # Anchor (beta 1 on x, y, z): joint 0: L1(1) + L1(0) + L1(0.5) = 0.5 + 0.125; joint 1: L1(-2) = 1.5.
    assert losses.anchor.item() == pytest.approx((0.625 + 1.5) / 6)
    assert losses.total.item() == pytest.approx(2.125 / 6 + 3 * 4.3125 / 6)
    assert math.isfinite(losses.total.item())


def test_layers_are_averaged_and_paper_depth_beta_is_selectable():
    joints, anchors, target, valid = _case()
    exact_j = torch.cat([target[None, :, :2], joints[:, :, 2:]], dim=2)       # layer 2: valid joints exact
    exact_a = torch.cat([target[None, :, :2], anchors[:, :, 2:]], dim=2)
    two = A2JCriterion()(torch.cat([joints, exact_j]), torch.cat([anchors, exact_a]), target, valid)
    assert two.regression.item() == pytest.approx(4.3125 / 6 / 2)
    assert two.anchor.item() == pytest.approx(2.125 / 6 / 2)
    paper = A2JCriterion(anchor_depth_beta=3.0)(joints, anchors, target, valid)
    # Depth terms with tau 3: joint 0: 0.5^2 / 6; joint 1: 2^2 / 6.
    assert paper.anchor.item() == pytest.approx((0.5 + 0.25 / 6 + 4 / 6) / 6)


def test_gradients_flow_and_shapes_are_checked():
    joints, anchors, target, valid = _case()
    joints = joints.clone().requires_grad_(True)
    A2JCriterion()(joints, anchors, target, valid).total.backward()
    assert torch.isfinite(joints.grad).all() and joints.grad[..., 2, :].abs().sum() == 0
    with pytest.raises(ValueError, match="valid"):
        A2JCriterion()(joints, anchors, target, valid[:, :2])
