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


def _heads_case():
    # Two joints per hand (J = 4, right 0-1, left 2-3): only right joint 0 is valid, so the right hand
    # is labelled and the left one is not.
    target = torch.zeros(1, 4, 3)
    joints = torch.zeros(1, 1, 4, 3)
    valid = torch.tensor([[True, False, False, False]])
    presence_logits = torch.tensor([[0.0, math.log(3.0)]])
    confidence_logits = torch.tensor([[0.0, math.log(3.0), -math.log(3.0), 0.0]])
    return joints, target, valid, presence_logits, confidence_logits


def test_optional_head_losses_by_hand():
    joints, target, valid, presence_logits, confidence_logits = _heads_case()
    plain = A2JCriterion()(joints, joints, target, valid)
    assert plain.presence is None and plain.confidence is None
    assert list(plain.terms()) == ["total", "anchor", "regression"]
    criterion = A2JCriterion(presence_weight=2.0, confidence_weight=0.5)
    losses = criterion(joints, joints, target, valid, hand_presence_logits=presence_logits,
                       joint_confidence_logits=confidence_logits)
    # Presence: right labelled, logit 0 -> -log(1/2) = log 2; left unlabelled, sigmoid(log 3) = 3/4 ->
    # -log(1 - 3/4) = log 4. Mean over the two entries.
    assert losses.presence.item() == pytest.approx((math.log(2) + math.log(4)) / 2)
    # Confidence against validity [1, 0, 0, 0]: log 2, log 4, -log(1 - 1/4) = log(4/3), -log(1/2) = log 2.
    assert losses.confidence.item() == pytest.approx((2 * math.log(2) + math.log(4) + math.log(4 / 3)) / 4)
    assert losses.total.item() == pytest.approx(plain.total.item() + 2.0 * losses.presence.item()
                                                + 0.5 * losses.confidence.item())
    assert list(losses.terms()) == ["total", "anchor", "regression", "presence", "confidence"]


def test_optional_head_gradients_and_shape_checks():
    joints, target, valid, presence_logits, confidence_logits = _heads_case()
    presence_logits.requires_grad_(True)
    confidence_logits.requires_grad_(True)
    A2JCriterion()(joints, joints, target, valid, hand_presence_logits=presence_logits,
                   joint_confidence_logits=confidence_logits).total.backward()
    # d BCE / d logit = (sigmoid - target) / number of entries.
    torch.testing.assert_close(presence_logits.grad, torch.tensor([[(0.5 - 1) / 2, 0.75 / 2]]))
    torch.testing.assert_close(confidence_logits.grad, torch.tensor([[-0.5, 0.75, 0.25, 0.5]]) / 4)
    with pytest.raises(ValueError, match=r"hand_presence_logits must be \(1, 2\)"):
        A2JCriterion()(joints, joints, target, valid, hand_presence_logits=torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"joint_confidence_logits must be \(1, 4\)"):
        A2JCriterion()(joints, joints, target, valid, joint_confidence_logits=torch.zeros(2, 4))


TINY_HEADED = dict(enc_layers=1, dec_layers=2, input_size=64, output_size=64, anchors_per_side=4, dropout=0.0,
                   presence_head=True, confidence_head=True)


def _fixture_trainer(tmp_path, task, steps):
    # A real A2J training run (small architecture) on fixture InterHand frames: one right-hand frame and
    # one interacting frame, so presence has a positive and a negative label.
    from dataset_fixtures import write_interhand
    from hand_object_pose.datasets import InterHandDataset
    from hand_object_pose.training.distributed import init_distributed
    from hand_object_pose.training.engine import TrainConfig, Trainer

    torch.set_num_threads(1)
    write_interhand(tmp_path / "ih")
    reader = InterHandDataset(tmp_path / "ih", "test")
    config = TrainConfig(epochs=steps, batch_size=2, lr=1e-3, out_dir=str(tmp_path / "run"), progress_bar=False,
                         tensorboard=False, log_every_steps=1)
    return Trainer(task, config, init_distributed("cpu"), reader, None)


def test_training_with_the_optional_heads_trains_them(tmp_path):
    from hand_object_pose.training.tasks import build_task

    task = build_task("a2j_ih26m", TINY_HEADED, dict(enabled=False), dict(presence_weight=1.0, confidence_weight=2.0))
    trainer = _fixture_trainer(tmp_path, task, steps=6)
    heads = ("presence_head.layers.1.weight", "joint_confidence_head.weight")
    initial = {key: trainer.model.state_dict()[key].clone() for key in heads}
    result = trainer.fit()
    history = result.history
    assert result.steps == 6 and all({"presence", "confidence"} <= set(h) for h in history)
    for h in history:
        assert h["total"] == pytest.approx(h["anchor"] + 3 * h["regression"] + h["presence"] + 2 * h["confidence"],
                                           rel=1e-5)
    # The head losses go down (from about log 2 at random init) and the heads' weights moved.
    assert history[-1]["presence"] < history[0]["presence"], history
    assert history[-1]["confidence"] < history[0]["confidence"], history
    for key in heads:
        assert not torch.equal(trainer.model.state_dict()[key], initial[key]), key


def test_heads_only_training_leaves_the_pose_network_untouched(tmp_path):
    from hand_object_pose.training.tasks import build_task

    task = build_task("a2j_ih26m", TINY_HEADED, dict(enabled=False), dict(heads_only=True))
    trainer = _fixture_trainer(tmp_path, task, steps=2)
    initial = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    changed = {k for k, v in trainer.model.state_dict().items() if not torch.equal(v, initial[k])}
    assert changed == {k for k in initial if k.startswith(("presence_head.", "joint_confidence_head."))}
    with pytest.raises(ValueError, match="heads_only=True needs a model with presence_head"):
        build_task("a2j_ih26m", dict(TINY_HEADED, presence_head=False, confidence_head=False), None,
                   dict(heads_only=True))
