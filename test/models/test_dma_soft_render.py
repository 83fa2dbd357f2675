"""Soft rasteriser of the finger-rendering loss: coverage, occlusion, gradients, finger labels."""
from __future__ import annotations

import numpy as np
import torch

from hand_object_pose.models.dma.soft_render import finger_face_labels, soft_rasterize

RED, GREEN = [1.0, 0.0], [0.0, 1.0]


def _two_triangles(red_depth, green_depth):
    # Red: a triangle in the top-left corner; green: a larger one overlapping it and reaching further right.
    verts = torch.tensor([[[2.0, 2.0, red_depth], [14.0, 2.0, red_depth], [2.0, 14.0, red_depth],
                           [4.0, 4.0, green_depth], [22.0, 4.0, green_depth], [4.0, 22.0, green_depth]]])
    return verts, torch.tensor([[0, 1, 2], [3, 4, 5]]), torch.tensor([RED, GREEN])


def test_coverage_inside_and_outside():
    verts, faces, colors = _two_triangles(1.0, 2.0)
    image = soft_rasterize(verts[:, :3], faces[:1], colors[:1], (16, 16))
    assert image.shape == (1, 2, 16, 16)
    assert image[0, 0, 4, 4] > 0.99          # pixel centre (4.5, 4.5), well inside
    assert image[0, 0, 13, 13] < 1e-3        # far outside the hypotenuse
    assert image[0, 1].abs().max() == 0      # no green face


def test_the_nearer_face_wins_where_they_overlap():
    near_red = soft_rasterize(*_two_triangles(1.0, 2.0), (24, 24))
    near_green = soft_rasterize(*_two_triangles(2.0, 1.0), (24, 24))
    row, col = 6, 6                          # covered by both
    assert near_red[0, 0, row, col] > 0.95 and near_red[0, 1, row, col] < 0.05
    assert near_green[0, 1, row, col] > 0.95 and near_green[0, 0, row, col] < 0.05
    assert near_red[0, 1, 12, 3] < 0.05 and near_red[0, 1, 5, 17] > 0.9  # green only where red is absent


def test_gradient_step_moves_a_render_towards_its_target():
    verts, faces, colors = _two_triangles(1.0, 2.0)
    target = soft_rasterize(verts[:, :3], faces[:1], colors[:1], (16, 16))
    moved = (verts[:, :3] + torch.tensor([2.0, 1.0, 0.0])).requires_grad_()
    loss = (soft_rasterize(moved, faces[:1], colors[:1], (16, 16)) - target).abs().mean()
    loss.backward()
    stepped = moved.detach() - 20.0 * moved.grad
    after = (soft_rasterize(stepped, faces[:1], colors[:1], (16, 16)) - target).abs().mean()
    assert after < loss


def test_finger_face_labels_use_the_largest_skinning_weight():
    weights = np.zeros((5, 16))
    weights[0, 0] = weights[1, 13] = weights[2, 13] = weights[3, 1] = weights[4, 7] = 1.0
    # vertex labels: palm 0, thumb 1, thumb 1, index 2, pinky 5
    faces = np.array([[0, 1, 2], [1, 2, 3], [3, 4, 0], [0, 3, 3]])
    assert finger_face_labels(weights, faces).tolist() == [1, 1, 2, 2]
