"""The assembled DMA model on placeholder assets: shapes, units, frames, object catalogue, training heads."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hand_object_pose.models.dma import PRESETS, DMAConfig, ObjectTemplate, build
from hand_object_pose.models.dma.assets import placeholder_hand_topology, placeholder_object
from hand_object_pose.models.registry import build_model


def _second_object() -> ObjectTemplate:
    base = placeholder_object()
    # Different geometry and a different (smaller) face set, hence a different graph.
    return ObjectTemplate("box_like", base.vertices * np.array([2.0, 1.0, 0.5], dtype=np.float32), base.faces[:1500])


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    net = build(PRESETS["dma_ho3d"], objects=[placeholder_object(), _second_object()]).eval()
    # Sharpen the lixel heads so rough vertices spread over the grid (default init puts them at the centre).
    with torch.no_grad():
        for mesh_net in (net.mesh_net, net.obj_mesh_net):
            for head in (mesh_net.conv_x[0], mesh_net.conv_y[0], mesh_net.conv_z[3]):
                head.weight.mul_(300.0)
    return net


def _inputs(batch=2):
    generator = torch.Generator().manual_seed(3)
    image = torch.rand(batch, 3, 256, 256, generator=generator)
    root = torch.tensor([[0.02, -0.01, 0.55], [-0.05, 0.03, 0.70]])[:batch]
    focal = torch.tensor([[250.0, 260.0], [300.0, 310.0]])[:batch]
    centre = torch.tensor([[128.0, 120.0], [130.0, 126.0]])[:batch]
    return image, root, focal, centre, torch.tensor([0, 1])[:batch]


@pytest.fixture(scope="module")
def outputs(model):
    with torch.no_grad():
        return model(*_inputs())


def test_registry_builds_the_preset():
    assert isinstance(PRESETS["dma_ho3d"], DMAConfig)
    net = build_model("dma_ho3d")
    assert sum(p.numel() for p in net.parameters()) == 98_555_941  # official: 98.56 M (models.md section 0)
    del net


def test_output_shapes(outputs):
    shapes = {"rough_hand_vertices_grid": (2, 778, 3), "rough_object_vertices_grid": (2, 1000, 3),
              "hand_vertices_grid": (2, 778, 3), "hand_joints_grid": (2, 21, 3), "hand_vertices": (2, 778, 3),
              "hand_joints": (2, 21, 3), "object_quaternion": (2, 4), "object_rotation": (2, 3, 3),
              "object_translation": (2, 3), "object_vertices": (2, 1000, 3)}
    for name, shape in shapes.items():
        assert tuple(getattr(outputs, name).shape) == shape, name
    assert outputs.pose_net_joints_grid is None and outputs.object_silhouette_logits is None


def test_hand_vertices_are_grid_points_back_projected_with_the_crop_intrinsics(outputs):
    image, root, focal, centre, _ = _inputs()
    grid = outputs.hand_vertices_grid
    depth = (grid[..., 2] / 64 * 2 - 1) * 0.15 + root[:, None, 2]
    u = grid[..., 0] * 4
    torch.testing.assert_close(outputs.hand_vertices[..., 2], depth)
    torch.testing.assert_close(outputs.hand_vertices[..., 0], (u - centre[:, None, 0]) / focal[:, None, 0] * depth)
    # Re-projection lands on the crop pixel 4 * (x, y).
    projected = outputs.hand_vertices[..., :2] / outputs.hand_vertices[..., 2:] * focal[:, None] + centre[:, None]
    torch.testing.assert_close(projected, grid[..., :2] * 4, atol=1e-3, rtol=1e-5)
    regressor = torch.from_numpy(placeholder_hand_topology().joint_regressor)
    torch.testing.assert_close(outputs.hand_joints_grid, torch.matmul(regressor, grid))


def test_object_pose_uses_each_elements_catalogue_template(model, outputs):
    r, t = outputs.object_rotation, outputs.object_translation
    torch.testing.assert_close(r @ r.transpose(1, 2), torch.eye(3).expand(2, 3, 3), atol=1e-5, rtol=0)
    for k, template in enumerate((placeholder_object(), _second_object())):
        expected = torch.from_numpy(template.vertices) @ r[k].T + t[k]
        torch.testing.assert_close(outputs.object_vertices[k], expected, atol=1e-5, rtol=1e-5)


def test_a_mixed_batch_equals_single_runs(model, outputs):
    inputs = _inputs()
    with torch.no_grad():
        single = model(*(x[1:] for x in inputs))
    torch.testing.assert_close(single.hand_joints[0], outputs.hand_joints[1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(single.object_translation[0], outputs.object_translation[1], atol=1e-5, rtol=1e-5)


def test_the_object_graph_depends_on_the_object(model):
    first, second = model.object_edge_index(0), model.object_edge_index(1)
    assert first.shape[1] != second.shape[1]
    assert (first[:, 0] == 0).all()  # the official zero-padding self-loop (0, 0) comes first


def test_discarded_blocks_do_not_change_outputs(model, outputs):
    model.gcn_a.compute_discarded_blocks = True
    try:
        with torch.no_grad():
            again = model(*_inputs())
    finally:
        model.gcn_a.compute_discarded_blocks = False
    torch.testing.assert_close(again.hand_vertices, outputs.hand_vertices, atol=0, rtol=0)


def test_training_mode_adds_the_joint_and_silhouette_heads(model):
    # momentum 0 keeps the BN running statistics, so the shared model stays as the other tests expect.
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0
    model.train()
    try:
        out = model(*_inputs(1))
    finally:
        model.eval()
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
    assert out.pose_net_joints_grid.shape == (1, 21, 3)
    assert out.object_silhouette_logits.shape == (1, 2, 128, 128)
    (out.object_silhouette_logits.mean() + out.pose_net_joints_grid.mean() + out.hand_vertices.mean()).backward()
    assert model.segmentation_net.conv1.weight.grad is not None
    assert model.gcn_a.a1.qh1[0].weight.grad is not None  # hand queries feed the hand output
    model.zero_grad(set_to_none=True)


def test_bad_inputs_are_rejected_clearly(model):
    image, root, focal, centre, index = _inputs(1)
    with pytest.raises(ValueError, match=r"\(N, 3, 256, 256\)"):
        model(image[:, :, :128], root, focal, centre, index)
    with pytest.raises(ValueError, match="1000 vertices"):
        build(PRESETS["dma_ho3d"], objects=[ObjectTemplate("small", np.zeros((10, 3)), np.zeros((1, 3)))])


def test_separate_root_depth_moves_only_the_hand(model, outputs):
    image, root, focal, centre, index = _inputs()
    with torch.no_grad():
        shifted = model(image, root, focal, centre, index, root_depth=root[:, 2] + 0.1)
    torch.testing.assert_close(shifted.hand_vertices[..., 2], outputs.hand_vertices[..., 2] + 0.1)
    torch.testing.assert_close(shifted.object_translation, outputs.object_translation)
