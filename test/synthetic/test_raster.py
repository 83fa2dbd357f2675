"""The torch z-buffer rasteriser on meshes whose images are known exactly."""
import numpy as np
import pytest
import torch

from hand_object_pose.synthetic.raster import rasterize, render_mesh

K = np.array([[100.0, 0.0, 32.0], [0.0, 100.0, 24.0], [0.0, 0.0, 1.0]])
SIZE = (48, 64)  # height, width


def quad(x0, x1, y0, y1, z):
    """Two triangles spanning pixel columns/rows [x0, x1] x [y0, y1] (pixel units) at depth z."""
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    v = np.array([[(u - K[0, 2]) * z / K[0, 0], (w - K[1, 2]) * z / K[1, 1], z] for u, w in corners])
    return v, np.array([[0, 1, 2], [0, 2, 3]])


def cube(center, half):
    signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=float)
    v = np.asarray(center) + half * signs
    faces = []
    for axis in range(3):
        for side in (-1, 1):
            ids = [i for i in range(8) if signs[i, axis] == side]
            a, b, c, d = ids[0], ids[1], ids[3], ids[2]  # a cycle around the face
            faces += [[a, b, c], [a, c, d]]
    return v, np.array(faces)


def test_quad_silhouette_area_and_depth_are_exact():
    v, f = quad(9.5, 29.5, 4.5, 14.5, z=2.0)  # pixel centres 10..29 x 5..14
    frags = rasterize(v, f, K, SIZE)
    mask = frags.face_index >= 0
    assert mask.sum().item() == 20 * 10
    assert mask[5:15, 10:30].all()
    torch.testing.assert_close(frags.depth[mask], torch.full((200,), 2.0))
    assert (frags.depth[~mask] == 0).all()
    # Either winding draws the same silhouette.
    assert (rasterize(v, f[:, ::-1].copy(), K, SIZE).face_index >= 0).eq(mask).all()


def test_tilted_plane_depth_is_perspective_correct():
    # Plane z = 1 + 0.5 x (metres), seen through every pixel: depth = 1 / (1 - 0.5 * (u - cx) / fx).
    xs, ys = np.array([-0.6, 0.6]), np.array([-0.5, 0.5])
    v = np.array([[x, y, 1.0 + 0.5 * x] for y in ys for x in xs])
    f = np.array([[0, 1, 3], [0, 3, 2]])
    frags = rasterize(v, f, K, SIZE)
    u = torch.arange(SIZE[1], dtype=torch.float32)
    expected = 1.0 / (1.0 - 0.5 * (u - K[0, 2]) / K[0, 0])
    mask = frags.face_index >= 0
    assert mask.all()
    torch.testing.assert_close(frags.depth, expected.expand(SIZE[0], -1), atol=1e-5, rtol=0)
    # Perspective-correct barycentrics reproduce the 3D point on the plane.
    tri = torch.as_tensor(f)[frags.face_index]
    points = (torch.as_tensor(v, dtype=torch.float32)[tri] * frags.barycentric[..., None]).sum(dim=2)
    torch.testing.assert_close(points[..., 2], frags.depth, atol=1e-5, rtol=0)


def test_cube_front_face_occludes_the_back():
    v, f = cube(center=(0.0, 0.0, 1.0), half=0.1)
    out = render_mesh(v, f, K, SIZE)
    # Front face at z = 0.9 spans x in +-0.1 -> u = 32 +- 11.1 px; rows 24 +- 11.1 px.
    assert out.mask.sum().item() == 23 * 23
    torch.testing.assert_close(out.depth[out.mask], torch.full((23 * 23,), 0.9), atol=1e-6, rtol=0)
    visible = set(out.face_index[out.mask].tolist())
    front = {i for i, tri in enumerate(f) if np.allclose(v[tri, 2], 0.9)}
    assert visible == front


def test_nearer_mesh_wins_and_lambert_shading():
    far_v, far_f = quad(9.5, 29.5, 4.5, 14.5, z=2.0)
    near_v, near_f = quad(19.5, 39.5, 9.5, 19.5, z=1.0)
    v = np.vstack([far_v, near_v])
    f = np.vstack([far_f, near_f + 4])
    colors = np.vstack([np.tile([1.0, 0.0, 0.0], (4, 1)), np.tile([0.0, 0.5, 1.0], (4, 1))])
    background = torch.full((*SIZE, 3), 0.25)
    out = render_mesh(v, f, K, SIZE, vertex_colors=colors, light_direction=(0.0, 0.0, -1.0), ambient=0.2,
                      background=background)
    assert out.depth[15, 25] == pytest.approx(1.0) and out.face_index[15, 25] >= 2
    assert out.depth[6, 12] == pytest.approx(2.0)
    # Light straight from the camera onto fronto-parallel faces: full intensity.
    torch.testing.assert_close(out.rgb[15, 25], torch.tensor([0.0, 0.5, 1.0]))
    torch.testing.assert_close(out.rgb[6, 12], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(out.rgb[40, 60], torch.tensor([0.25, 0.25, 0.25]))
    # Light grazing the surface: ambient only.
    side = render_mesh(v, f, K, SIZE, vertex_colors=colors, light_direction=(1.0, 0.0, 0.0), ambient=0.2)
    torch.testing.assert_close(side.rgb[15, 25], 0.2 * torch.tensor([0.0, 0.5, 1.0]))


def test_triangles_behind_the_near_plane_are_dropped_and_big_triangles_are_chunked(monkeypatch):
    v, f = quad(-100.5, 200.5, -100.5, 200.5, z=1.0)
    behind = np.array([[0.0, 0.0, -1.0], [0.1, 0.0, -1.0], [0.0, 0.1, -1.0]])
    from hand_object_pose.synthetic import raster
    monkeypatch.setattr(raster, "_PAIR_CHUNK", 1000)  # force many chunks
    frags = rasterize(np.vstack([v, behind]), np.vstack([f, [[4, 5, 6]]]), K, SIZE)
    assert (frags.face_index >= 0).all() and (frags.face_index <= 1).all()


def test_bad_inputs_are_named():
    v, f = quad(9.5, 29.5, 4.5, 14.5, z=2.0)
    with pytest.raises(ValueError, match="vertices"):
        rasterize(v[:, :2], f, K, SIZE)
    with pytest.raises(ValueError, match="faces index"):
        rasterize(v, f + 10, K, SIZE)
    with pytest.raises(ValueError, match="K must be 3x3"):
        rasterize(v, f, K[:2], SIZE)
    with pytest.raises(ValueError, match="vertex_colors"):
        render_mesh(v, f, K, SIZE, vertex_colors=np.ones((3, 3)))


def test_attributes_are_interpolated_perspective_correctly_and_normals_can_be_given():
    # A tilted plane whose attribute is each vertex's 3D position: every pixel gets its own point.
    xs, ys = np.array([-0.6, 0.6]), np.array([-0.5, 0.5])
    v = np.array([[x, y, 1.0 + 0.5 * x] for y in ys for x in xs])
    f = np.array([[0, 1, 3], [0, 3, 2]])
    out = render_mesh(v, f, K, SIZE, attributes=v)
    assert out.attributes.shape == (*SIZE, 3)
    torch.testing.assert_close(out.attributes[..., 2], out.depth, atol=1e-5, rtol=0)
    assert render_mesh(v, f, K, SIZE).attributes is None
    # Normals given facing the light shade at full brightness, facing away at the ambient share.
    lit = render_mesh(v, f, K, SIZE, vertex_colors=np.ones((4, 3)), light_direction=(0, 0, -1), ambient=0.2,
                      normals=np.tile([0.0, 0.0, -1.0], (4, 1)))
    side = render_mesh(v, f, K, SIZE, vertex_colors=np.ones((4, 3)), light_direction=(0, 0, -1), ambient=0.2,
                       normals=np.tile([1.0, 0.0, 0.0], (4, 1)))
    torch.testing.assert_close(lit.rgb, torch.ones(*SIZE, 3))
    torch.testing.assert_close(side.rgb, torch.full((*SIZE, 3), 0.2))
    with pytest.raises(ValueError):
        render_mesh(v, f, K, SIZE, attributes=np.ones((4, 5)))
