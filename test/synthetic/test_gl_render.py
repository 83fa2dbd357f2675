"""The headless OpenGL renderer gives the torch rasteriser's pixels (skipped where no EGL context starts)."""
import numpy as np
import pytest
import torch

from hand_object_pose.geometry.mano import ManoLayer
from hand_object_pose.synthetic.gl_render import GLRenderer, make_renderer
from hand_object_pose.synthetic.raster import render_mesh
from hand_object_pose.geometry.hand_model_files import standin_hand_path

SIZE = (120, 160)  # height, width


@pytest.fixture(scope="module")
def gl():
    try:
        renderer = GLRenderer(SIZE)
    except Exception as exc:  # moderngl missing or no EGL driver
        pytest.skip(f"no OpenGL context: {exc}")
    yield renderer
    renderer.release()


def test_quad_matches_exactly(gl):
    K = np.array([[100.0, 0.0, 80.0], [0.0, 100.0, 60.0], [0.0, 0.0, 1.0]])
    z = 2.0
    corners = [(9.5, 4.5), (29.5, 4.5), (29.5, 14.5), (9.5, 14.5)]
    v = np.array([[(u - 80.0) * z / 100.0, (w - 60.0) * z / 100.0, z] for u, w in corners])
    f = np.array([[0, 1, 2], [0, 2, 3]])
    out = gl.render(v, f, K, background=np.full((*SIZE, 3), 0.5))
    assert out.mask.sum().item() == 200 and out.mask[5:15, 10:30].all()
    torch.testing.assert_close(out.depth[out.mask], torch.full((200,), 2.0))
    assert set(out.face_index[out.mask].tolist()) == {0, 1} and (out.face_index[~out.mask] == -1).all()
    assert (out.rgb[~out.mask] == 0.5).all()


def test_hand_render_agrees_with_the_torch_rasteriser(gl):
    layer = ManoLayer(standin_hand_path("right"))
    pose = torch.tensor(np.random.default_rng(0).normal(0, 0.3, (1, 45)), dtype=torch.float32)
    vertices = layer(torch.tensor([[2.8, 0.2, 0.1]]), pose).vertices[0].double().numpy()
    vertices = vertices - vertices.mean(axis=0) + [0.0, 0.0, 0.4]
    K = np.array([[300.0, 0.0, 79.3], [0.0, 300.0, 60.2], [0.0, 0.0, 1.0]])
    colors = np.random.default_rng(1).uniform(0, 1, (778, 3))
    faces = layer.faces.numpy()
    a = gl.render(vertices, faces, K, vertex_colors=colors, light_direction=(0.2, -0.3, -1.0), ambient=0.3)
    b = render_mesh(vertices, faces, K, SIZE, vertex_colors=colors, light_direction=(0.2, -0.3, -1.0), ambient=0.3)
    assert b.mask.sum() > 1000
    assert (a.mask == b.mask).float().mean() > 0.998
    same = a.mask & b.mask & (a.face_index == b.face_index)
    assert same.sum() > 0.99 * (a.mask & b.mask).sum()
    assert (a.depth - b.depth)[same].abs().max() < 1e-3
    assert (a.rgb - b.rgb)[same].abs().max() < 5e-3


def test_make_renderer_falls_back_to_torch():
    name, render = make_renderer(SIZE, prefer_gl=False)
    assert name == "torch"
    v = np.array([[0.0, 0.0, 1.0], [0.1, 0.0, 1.0], [0.0, 0.1, 1.0]])
    out = render(v, np.array([[0, 1, 2]]), np.array([[100.0, 0, 80], [0, 100.0, 60], [0, 0, 1]]))
    assert out.mask.sum() > 0 and out.depth.shape == SIZE


def test_two_renderers_in_one_process_keep_their_own_contexts(gl):
    other = GLRenderer((60, 80))  # becomes the current context when created
    K = np.array([[100.0, 0.0, 80.0], [0.0, 100.0, 60.0], [0.0, 0.0, 1.0]])
    v = np.array([[-0.1, -0.1, 1.0], [0.1, -0.1, 1.0], [0.0, 0.1, 1.0]])
    first = gl.render(v, np.array([[0, 1, 2]]), K)
    second = other.render(v, np.array([[0, 1, 2]]), K * [[0.5], [0.5], [1]])
    again = gl.render(v, np.array([[0, 1, 2]]), K)
    assert first.mask.shape == (120, 160) and second.mask.shape == (60, 80)
    assert torch.equal(first.mask, again.mask) and torch.equal(first.face_index, again.face_index)
    assert set(again.face_index.unique().tolist()) == {-1, 0}
    other.release()


def test_attributes_and_given_normals_agree_with_the_torch_rasteriser(gl):
    layer = ManoLayer(standin_hand_path("right"))
    rest = layer.mano.v_template.numpy()
    pose = torch.tensor(np.random.default_rng(2).normal(0, 0.3, (1, 45)), dtype=torch.float32)
    vertices = layer(torch.tensor([[2.8, 0.2, 0.1]]), pose).vertices[0].double().numpy()
    vertices = vertices - vertices.mean(axis=0) + [0.0, 0.0, 0.4]
    K = np.array([[300.0, 0.0, 79.3], [0.0, 300.0, 60.2], [0.0, 0.0, 1.0]])
    faces = layer.faces.numpy()
    normals = np.tile([0.0, 0.6, -0.8], (778, 1))
    a = gl.render(vertices, faces, K, attributes=rest, normals=normals, light_direction=(0.0, 0.6, -0.8), ambient=0.3)
    b = render_mesh(vertices, faces, K, SIZE, attributes=rest, normals=normals, light_direction=(0.0, 0.6, -0.8),
                    ambient=0.3)
    same = a.mask & b.mask & (a.face_index == b.face_index)
    assert same.sum() > 1000
    assert (a.attributes - b.attributes)[same].abs().max() < 1e-4
    assert (a.attributes[~a.mask] == 0).all()
    # The given normals face the light everywhere: full brightness of the default grey.
    torch.testing.assert_close(a.rgb[a.mask], torch.full((int(a.mask.sum()), 3), 0.8))
