"""Object and hand-object metrics against values worked out by hand."""
import numpy as np
import pytest

from hand_object_pose.evaluation import objects as om


def _cube(half=1.0):
    """Closed cube mesh (8 vertices, 12 outward-facing triangles)."""
    verts = np.array([[x, y, z] for x in (-half, half) for y in (-half, half) for z in (-half, half)], float)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = []
    for a, b, c, d in quads:
        for tri in ((a, b, c), (a, c, d)):
            n = np.cross(verts[tri[1]] - verts[tri[0]], verts[tri[2]] - verts[tri[0]])
            faces.append(tri if n @ verts[list(tri)].mean(0) > 0 else tri[::-1])
    return verts, np.array(faces)


def _rot_z(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


BOX = np.array([[0.1, 0.05, 0.02], [-0.1, -0.05, -0.02], [0.1, -0.05, 0.02], [-0.1, 0.05, -0.02]])


def test_mssd_respects_discrete_symmetry():
    gt = (_rot_z(np.pi), np.zeros(3))
    pred = (np.eye(3), np.zeros(3))
    # Without symmetry: every point maps to its negation in x,y: max distance 2*|(0.1, 0.05)|.
    assert om.mssd(BOX, pred, gt) == pytest.approx(2 * np.hypot(0.1, 0.05))
    assert om.mssd(BOX, pred, gt, om.symmetry_rotations("discrete", (0, 0, 1), 2)) == pytest.approx(0.0, abs=1e-12)


def test_flip_axis_adds_the_upside_down_poses():
    syms = om.symmetry_rotations("discrete", (0, 0, 1), 2, flip_axis=(1, 0, 0))
    assert syms.shape == (4, 3, 3)
    upside_down = np.diag([1.0, -1.0, -1.0])
    gt = (upside_down, np.array([0.0, 0.0, 0.5]))
    pred = (np.eye(3), np.array([0.0, 0.0, 0.5]))
    assert om.rotation_error_deg(pred[0], gt[0], om.symmetry_rotations("discrete", (0, 0, 1), 2)) == \
        pytest.approx(180.0)
    assert om.rotation_error_deg(pred[0], gt[0], syms) == pytest.approx(0.0, abs=1e-6)
    assert om.mssd(BOX, pred, gt, syms) == pytest.approx(0.0, abs=1e-12)
    assert om.symmetries_of({"kind": "continuous", "axis": [0, 0, 1], "flip_axis": [0, 1, 0]}).shape == (144, 3, 3)


def test_a_spherical_object_is_scored_by_its_position_alone():
    syms = om.symmetries_of({"kind": "spherical"})
    assert syms.shape == (0, 3, 3)
    gt = (_rot_z(1.0), np.array([0.0, 0.0, 0.5]))
    pred = (np.eye(3), np.array([0.003, 0.0, 0.504]))
    assert om.rotation_error_deg(pred[0], gt[0], syms) == 0.0
    assert om.mssd(BOX, pred, gt, syms) == pytest.approx(0.005)
    assert om.mean_corner_error(BOX, pred, gt, syms) == pytest.approx(0.005)


def test_continuous_symmetry_sampling_and_errors():
    syms = om.symmetry_rotations("continuous", (0, 0, 1), continuous_step_deg=5)
    assert syms.shape == (72, 3, 3)
    np.testing.assert_allclose(syms[0], np.eye(3))
    gt = (_rot_z(np.deg2rad(10)), np.zeros(3))
    assert om.mssd(BOX, (np.eye(3), np.zeros(3)), gt, syms) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="symmetry kind"):
        om.symmetry_rotations("spiral")


def test_translation_errors_add_s_corners_and_mesh_error():
    gt = (np.eye(3), np.zeros(3))
    pred = (np.eye(3), np.array([0.0, 0.0, 0.01]))
    assert om.mean_corner_error(BOX, pred, gt) == pytest.approx(0.01)
    assert om.mean_mesh_error(BOX, pred, gt) == pytest.approx(0.01)
    assert om.mssd(BOX, pred, gt) == pytest.approx(0.01)
    # ADD-S: each gt point's nearest predicted point is its own image 1 cm away (others are farther).
    assert om.add_s(BOX, pred, gt) == pytest.approx(0.01)
    assert om.add_s(BOX, gt, gt) == 0.0


def test_f_score_by_hand():
    gt = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0]], float)
    pred = np.array([[0, 0, 0.001], [1, 0, 0.001], [10, 0, 0]], float)
    f, precision, recall = om.f_score(pred, gt, threshold=0.005)
    assert precision == pytest.approx(2 / 3)
    assert recall == pytest.approx(2 / 4)
    assert f == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))


def test_winding_numbers_and_point_distances_on_a_cube():
    verts, faces = _cube()
    w = om.winding_numbers(np.array([[0, 0, 0], [0.9, -0.9, 0.5], [2, 0, 0], [0, 0, -3]]), verts, faces)
    np.testing.assert_allclose(w, [1, 1, 0, 0], atol=1e-9)
    points = np.array([[0, 0, 0.5], [2, 0, 0], [2, 2, 0], [2, 2, 2], [0.3, -0.2, 1.0]])
    np.testing.assert_allclose(om.point_mesh_distances(points, verts, faces),
                               [0.5, 1.0, np.sqrt(2), np.sqrt(3), 0.0], atol=1e-12)


def test_penetration_depth_and_contact():
    verts, faces = _cube(0.05)
    outside_hand = np.array([[0.2, 0, 0], [0.3, 0, 0]])
    touching_hand = np.array([[0.051, 0, 0], [0.3, 0, 0]])
    penetrating_hand = np.array([[0.02, 0, 0], [0.04, 0, 0], [0.3, 0, 0]])
    assert om.penetration_depth(outside_hand, verts, faces) == 0.0
    assert om.penetration_depth(penetrating_hand, verts, faces) == pytest.approx(0.03)
    depth, contact = om.hand_object_contact([outside_hand, touching_hand, penetrating_hand], [verts] * 3, faces)
    assert depth == pytest.approx(0.03 / 3)
    assert contact == pytest.approx(100 * 2 / 3)
