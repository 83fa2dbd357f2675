"""DMA losses against hand-computed values."""
from __future__ import annotations

import math

import pytest
import torch

from hand_object_pose.models.dma.config import DMAConfig
from hand_object_pose.models.dma.criterion import (DMACriterion, DMALossWeights, DMATargets, camera_to_grid,
                                                   edge_length_loss, normal_loss, quaternion_distance)
from hand_object_pose.models.dma.output import DMAOutput

TRIANGLE = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
FACE = torch.tensor([[0, 1, 2]])
TETRA = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
TETRA_FACES = torch.tensor([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
LABELS = torch.tensor([0, 1, 2, 3])


def test_edge_length_loss():
    assert edge_length_loss(2 * TRIANGLE, TRIANGLE, FACE).item() == pytest.approx((2 + math.sqrt(2)) / 3)
    assert edge_length_loss(TRIANGLE + 5.0, TRIANGLE, FACE).item() == pytest.approx(0.0, abs=1e-6)


def test_normal_loss():
    lifted = TRIANGLE.clone()
    lifted[0, 2, 2] = 1.0  # edges: (1,0,0) -> cos 0; (-1,1,1)/sqrt3 -> 1/sqrt3; (0,-1,-1)/sqrt2 -> 1/sqrt2
    expected = (0 + 1 / math.sqrt(3) + 1 / math.sqrt(2)) / 3
    assert normal_loss(lifted, TRIANGLE, FACE).item() == pytest.approx(expected, rel=1e-6)
    assert normal_loss(3 * TRIANGLE, TRIANGLE, FACE).item() == pytest.approx(0.0, abs=1e-7)


def test_quaternion_distance_is_scale_and_sign_invariant():
    q = torch.tensor([[0.5, 0.5, 0.5, 0.5]])
    assert quaternion_distance(2 * q, q).item() == pytest.approx(0.0, abs=1e-7)
    assert quaternion_distance(-3 * q, q).item() == pytest.approx(0.0, abs=1e-7)
    assert quaternion_distance(torch.tensor([[1.0, 0, 0, 0]]), torch.tensor([[0.0, 1, 0, 0]])).item() == \
        pytest.approx(math.sqrt(2))


def test_camera_to_grid():
    config = DMAConfig()
    points = torch.tensor([[[0.0, 0.0, 0.5], [0.1, -0.05, 0.65]]])
    grid = camera_to_grid(points, torch.tensor([0.5]), torch.tensor([[256.0, 256.0]]),
                          torch.tensor([[128.0, 128.0]]), config)
    # Principal point -> pixel (128, 128) -> grid 32; root depth -> grid z 32; +0.15 m -> grid z 64.
    u, v = 0.1 / 0.65 * 256 + 128, -0.05 / 0.65 * 256 + 128
    torch.testing.assert_close(grid, torch.tensor([[[32.0, 32.0, 32.0], [u / 4, v / 4, 64.0]]]))


def _outputs_and_targets():
    hand_gt = TETRA[None] * 10.0
    regressor = torch.tensor([[0.25, 0.25, 0.25, 0.25], [0.0, 1.0, 0.0, 0.0]])
    q = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    out = DMAOutput(
        rough_hand_vertices_grid=hand_gt + 0.5, rough_object_vertices_grid=hand_gt.clone(),
        hand_vertices_grid=hand_gt.clone(), hand_joints_grid=regressor @ hand_gt,
        hand_vertices=torch.zeros(1, 4, 3), hand_joints=torch.zeros(1, 2, 3), object_quaternion=2 * q,
        object_rotation=torch.eye(3)[None], object_translation=torch.tensor([[0.3, 0.4, 1.0]]),
        object_vertices=torch.zeros(1, 4, 3), pose_net_joints_grid=regressor @ hand_gt,
        object_silhouette_logits=torch.zeros(1, 2, 4, 4))
    gt = DMATargets(hand_vertices_grid=hand_gt, hand_joints_grid=regressor @ hand_gt, object_vertices_grid=hand_gt,
                    object_quaternion=q, object_translation=torch.tensor([[0.0, 0.0, 1.0]]),
                    object_silhouette=torch.ones(1, 4, 4, dtype=torch.int64), object_index=torch.tensor([0]))
    return out, gt, regressor


def test_criterion_total_with_the_paper_weights():
    out, gt, regressor = _outputs_and_targets()
    criterion = DMACriterion(TETRA_FACES, regressor, [TETRA_FACES], hand_face_labels=LABELS)
    terms = criterion(out, gt)
    # rough hand off by 0.5 everywhere: mesh L1 0.5; edges/normals unchanged by a shift: 0;
    # regressor rows sum to 1, so rough joints are off by 0.5: joint L1 0.5; translation off by 0.5 m;
    # uniform logits: cross-entropy ln 2.
    # The refined hand equals the ground truth: identical renders, finger-rendering loss 0.
    expected = {"mesh": 0.5, "edge": 0.0, "normal": 0.0, "object_pose": 0.5, "joints": 0.5,
                "silhouette": math.log(2), "finger_render": 0.0}
    for name, value in expected.items():
        assert terms[name].item() == pytest.approx(value, abs=1e-6), name
    assert terms["total"].item() == pytest.approx(0.5 + 10 * 0.5 + 0.5 + 100 * math.log(2), rel=1e-6)


def test_criterion_gradients_reach_the_predictions():
    out, gt, regressor = _outputs_and_targets()
    out.hand_vertices_grid = (gt.hand_vertices_grid + 0.1).requires_grad_()
    DMACriterion(TETRA_FACES, regressor, [TETRA_FACES], hand_face_labels=LABELS)(out, gt)["total"].backward()
    assert out.hand_vertices_grid.grad.abs().sum() > 0


def test_finger_rendering_needs_face_labels_unless_switched_off():
    with pytest.raises(ValueError, match="hand_face_labels"):
        DMACriterion(TETRA_FACES, torch.eye(4)[:2], [TETRA_FACES])
    out, gt, regressor = _outputs_and_targets()
    terms = DMACriterion(TETRA_FACES, regressor, [TETRA_FACES], DMALossWeights(finger_render=0.0))(out, gt)
    assert "finger_render" not in terms


def test_finger_rendering_loss_sees_a_moved_hand():
    out, gt, regressor = _outputs_and_targets()
    out.hand_vertices_grid = (gt.hand_vertices_grid + torch.tensor([3.0, 0.0, 0.0])).requires_grad_()
    terms = DMACriterion(TETRA_FACES, regressor, [TETRA_FACES], hand_face_labels=LABELS)(out, gt)
    assert terms["finger_render"].item() > 1e-3
    terms["finger_render"].backward()
    # The x gradient pushes the mesh back towards the target (negative x direction reduces the loss).
    assert out.hand_vertices_grid.grad[..., 0].sum() > 0
