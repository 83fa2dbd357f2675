"""Rotation conversions against transforms3d, on edge cases, in numpy and torch, and through ONNX."""
import numpy as np
import pytest
import torch
from transforms3d import axangles, quaternions

from hand_object_pose.geometry import rotations as rot


def random_axis_angles(n, seed=0, max_angle=np.pi):
    rng = np.random.default_rng(seed)
    axes = rng.normal(size=(n, 3))
    axes /= np.linalg.norm(axes, axis=-1, keepdims=True)
    return axes * rng.uniform(0, max_angle, size=(n, 1))


def assert_rotation(matrix, atol=1e-12):
    np.testing.assert_allclose(matrix @ np.swapaxes(matrix, -1, -2), np.broadcast_to(np.eye(3), matrix.shape),
                               atol=atol)
    np.testing.assert_allclose(np.linalg.det(matrix), 1.0, atol=atol)


def test_axis_angle_to_matrix_matches_transforms3d():
    aa = random_axis_angles(50)
    got = rot.axis_angle_to_matrix(aa)
    for a, m in zip(aa, got):
        np.testing.assert_allclose(m, axangles.axangle2mat(a, np.linalg.norm(a)), atol=1e-14)
    # batched over several leading dimensions
    assert rot.axis_angle_to_matrix(aa.reshape(5, 10, 3)).shape == (5, 10, 3, 3)


def test_quaternion_matches_transforms3d_wxyz():
    rng = np.random.default_rng(1)
    q = rng.normal(size=(50, 4))  # not normalised
    got = rot.quaternion_to_matrix(q)
    for qi, m in zip(q, got):
        np.testing.assert_allclose(m, quaternions.quat2mat(qi), atol=1e-14)  # quat2mat normalises too
    back = rot.matrix_to_quaternion(got)
    q_unit = q / np.linalg.norm(q, axis=-1, keepdims=True)
    np.testing.assert_allclose(back, q_unit * np.sign(q_unit[:, :1]), atol=1e-14)
    for m, b in zip(got, back):
        expected = quaternions.mat2quat(m)
        np.testing.assert_allclose(b, expected * np.sign(expected[0]), atol=1e-12)


def test_quaternion_is_scalar_first():
    # 90 degrees about z: (w, x, y, z) = (cos 45, 0, 0, sin 45); maps x to y
    q = np.array([np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)])
    np.testing.assert_allclose(rot.quaternion_to_matrix(q) @ [1, 0, 0], [0, 1, 0], atol=1e-15)
    np.testing.assert_allclose(rot.axis_angle_to_quaternion(np.array([0, 0, np.pi / 2])), q, atol=1e-15)


def test_q_and_minus_q_are_the_same_rotation():
    q = np.random.default_rng(2).normal(size=(20, 4))
    np.testing.assert_allclose(rot.quaternion_to_matrix(q), rot.quaternion_to_matrix(-q), atol=1e-15)
    np.testing.assert_allclose(rot.quaternion_to_axis_angle(q), rot.quaternion_to_axis_angle(-q), atol=1e-14)
    out = rot.matrix_to_quaternion(rot.quaternion_to_matrix(q))
    assert np.all(out[:, 0] >= 0)


def test_identity_everywhere():
    eye = np.eye(3)
    np.testing.assert_array_equal(rot.axis_angle_to_matrix(np.zeros(3)), eye)
    np.testing.assert_array_equal(rot.matrix_to_axis_angle(eye), np.zeros(3))
    np.testing.assert_array_equal(rot.matrix_to_quaternion(eye), [1, 0, 0, 0])
    np.testing.assert_array_equal(rot.quaternion_to_matrix(np.array([3.0, 0, 0, 0])), eye)
    np.testing.assert_array_equal(rot.rotation_6d_to_matrix(np.array([1.0, 0, 0, 0, 1, 0])), eye)
    np.testing.assert_array_equal(rot.matrix_to_rotation_6d(eye), [1, 0, 0, 0, 1, 0])


@pytest.mark.parametrize("axis", [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, -2, 3], [-1, -1, -1]])
@pytest.mark.parametrize("delta", [0.0, -1e-9, -1e-6, -1e-3])
def test_angles_at_and_near_pi_round_trip(axis, delta):
    axis = np.array(axis, float) / np.linalg.norm(axis)
    aa = axis * (np.pi + delta)
    matrix = rot.axis_angle_to_matrix(aa)
    np.testing.assert_allclose(matrix, axangles.axangle2mat(axis, np.pi + delta), atol=1e-14)
    back = rot.matrix_to_axis_angle(matrix)
    np.testing.assert_allclose(np.linalg.norm(back), np.pi + delta, atol=1e-12)
    if delta == 0.0:  # at exactly pi, axis and -axis are the same rotation
        assert min(np.abs(back - aa).max(), np.abs(back + aa).max()) < 1e-7
    else:
        np.testing.assert_allclose(back, aa, atol=1e-7)
    np.testing.assert_allclose(rot.axis_angle_to_matrix(back), matrix, atol=1e-12)


def test_angles_beyond_pi_wrap_to_the_same_rotation():
    aa = np.array([0.0, 0.0, 1.5 * np.pi])
    back = rot.matrix_to_axis_angle(rot.axis_angle_to_matrix(aa))
    np.testing.assert_allclose(back, [0, 0, -0.5 * np.pi], atol=1e-14)


@pytest.mark.parametrize("angle", [1e-20, 1e-12, 1e-8, 1e-5, 9.9e-5, 1.01e-4, 1e-3])
def test_tiny_angles_are_accurate(angle):
    axis = np.array([0.36, -0.48, 0.8])
    aa = axis * angle
    matrix = rot.axis_angle_to_matrix(aa)
    np.testing.assert_allclose(matrix, axangles.axangle2mat(axis, angle), atol=1e-16)
    np.testing.assert_allclose(rot.matrix_to_axis_angle(matrix), aa, rtol=1e-6, atol=1e-16)
    np.testing.assert_allclose(rot.quaternion_to_axis_angle(rot.axis_angle_to_quaternion(aa)), aa,
                               rtol=1e-12, atol=1e-30)


def test_round_trips_random():
    aa = random_axis_angles(200, seed=3, max_angle=np.pi - 1e-6)
    matrix = rot.axis_angle_to_matrix(aa)
    assert_rotation(matrix)
    np.testing.assert_allclose(rot.matrix_to_axis_angle(matrix), aa, atol=1e-9)
    np.testing.assert_allclose(rot.quaternion_to_matrix(rot.matrix_to_quaternion(matrix)), matrix, atol=1e-14)
    np.testing.assert_allclose(rot.rotation_6d_to_matrix(rot.matrix_to_rotation_6d(matrix)), matrix, atol=1e-14)


def test_6d_is_first_two_columns_and_gram_schmidt():
    matrix = rot.axis_angle_to_matrix(np.array([0.3, -1.2, 0.7]))
    six = rot.matrix_to_rotation_6d(matrix)
    np.testing.assert_array_equal(six[:3], matrix[:, 0])
    np.testing.assert_array_equal(six[3:], matrix[:, 1])
    # scaling the first column and adding some of it to the second leaves the rotation unchanged
    distorted = np.concatenate([2.5 * six[:3], 0.3 * six[3:] + 0.7 * six[:3]])
    np.testing.assert_allclose(rot.rotation_6d_to_matrix(distorted), matrix, atol=1e-14)
    assert_rotation(rot.rotation_6d_to_matrix(np.random.default_rng(4).normal(size=(100, 6))))


def test_kpt_6d_variant_matches_gram_schmidt_only_for_orthogonal_columns():
    rng = np.random.default_rng(5)
    matrix = rot.axis_angle_to_matrix(random_axis_angles(20, seed=5))
    six = rot.matrix_to_rotation_6d(matrix) * rng.uniform(0.5, 2.0, size=(20, 1))
    np.testing.assert_allclose(rot.rotation_6d_to_matrix_kpt(six), matrix, atol=1e-14)
    # non-orthogonal columns: same directions, columns 2 and 3 shortened by sin(angle)
    a = np.array([1.0, 0, 0, 1.0, 1.0, 0])
    kpt = rot.rotation_6d_to_matrix_kpt(a)
    gs = rot.rotation_6d_to_matrix(a)
    np.testing.assert_allclose(kpt[:, 0], gs[:, 0], atol=1e-15)
    np.testing.assert_allclose(kpt[:, 1:], gs[:, 1:] * np.sin(np.pi / 4), atol=1e-15)


def test_torch_matches_numpy_float64():
    aa = random_axis_angles(64, seed=6)
    q = np.random.default_rng(6).normal(size=(64, 4))
    six = np.random.default_rng(7).normal(size=(64, 6))
    matrix = rot.axis_angle_to_matrix(aa)
    cases = [
        (rot.axis_angle_to_matrix, aa), (rot.axis_angle_to_quaternion, aa),
        (rot.quaternion_to_matrix, q), (rot.quaternion_to_axis_angle, q),
        (rot.matrix_to_quaternion, matrix), (rot.matrix_to_axis_angle, matrix),
        (rot.rotation_6d_to_matrix, six), (rot.rotation_6d_to_matrix_kpt, six),
        (rot.matrix_to_rotation_6d, matrix),
    ]
    for fn, x in cases:
        out = fn(torch.from_numpy(x))
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float64, fn.__name__
        np.testing.assert_allclose(out.numpy(), fn(x), atol=1e-13, err_msg=fn.__name__)


def test_torch_float32_and_gradients_finite_at_zero_and_pi():
    aa = torch.tensor([[0.0, 0.0, 0.0], [1e-9, 0, 0], [0.0, np.pi, 0.0], [0.4, -0.2, 0.1]],
                      dtype=torch.float32, requires_grad=True)
    matrix = rot.axis_angle_to_matrix(aa)
    assert matrix.dtype == torch.float32
    matrix.sum().backward()
    assert torch.isfinite(aa.grad).all()
    # d R / d r at r = 0 is the skew-symmetric generator: R ~ I + [r]x
    r = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    jac = torch.autograd.functional.jacobian(rot.axis_angle_to_matrix, r)
    np.testing.assert_allclose(jac[2, 1, 0].item(), 1.0)   # R[2,1] = +r_x
    np.testing.assert_allclose(jac[1, 2, 0].item(), -1.0)  # R[1,2] = -r_x
    six = torch.randn(8, 6, requires_grad=True)
    rot.rotation_6d_to_matrix(six).square().sum().backward()
    assert torch.isfinite(six.grad).all()
    m = rot.axis_angle_to_matrix(torch.tensor([[0.0, 0.0, 0.0], [0.5, 0.1, -0.3]], dtype=torch.float64))
    m.requires_grad_(True)
    rot.matrix_to_axis_angle(m).sum().backward()
    assert torch.isfinite(m.grad).all()


def test_gradcheck_6d_and_quaternion():
    six = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(rot.rotation_6d_to_matrix, (six,))
    q = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(rot.quaternion_to_matrix, (q,))
    aa = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(rot.axis_angle_to_matrix, (aa,))


class _ToMatrix(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


@pytest.mark.parametrize("fn, dim", [(rot.rotation_6d_to_matrix, 6), (rot.quaternion_to_matrix, 4),
                                     (rot.axis_angle_to_matrix, 3)])
def test_onnx_export_matches_torch(tmp_path, fn, dim):
    from hand_object_pose.export.onnx import compare_with_torch, export_onnx, ort_session

    module = _ToMatrix(fn)
    example = torch.randn(5, dim)
    path = export_onnx(module, [example], tmp_path / "rot.onnx", ["x"], ["matrix"])
    session = ort_session(path, threads=1)
    other_batch = torch.randn(11, dim)
    (diff,) = compare_with_torch(module, session, [other_batch], ["x"])
    assert diff < 1e-5


@pytest.mark.parametrize("fn, shape", [
    (rot.axis_angle_to_matrix, (4,)), (rot.quaternion_to_matrix, (3,)), (rot.rotation_6d_to_matrix, (2, 3)),
    (rot.matrix_to_quaternion, (3, 4)), (rot.matrix_to_axis_angle, (9,)), (rot.matrix_to_rotation_6d, (3,)),
])
def test_wrong_shapes_raise(fn, shape):
    with pytest.raises(ValueError, match="expected shape"):
        fn(np.zeros(shape))


def test_invalid_values_raise_for_numpy():
    with pytest.raises(ValueError, match="zero quaternion"):
        rot.quaternion_to_matrix(np.array([[1.0, 0, 0, 0], [0, 0, 0, 0]]))
    with pytest.raises(ValueError, match="parallel"):
        rot.rotation_6d_to_matrix(np.array([1.0, 0, 0, 2.0, 0, 0]))
    with pytest.raises(ValueError, match="first column is zero"):
        rot.rotation_6d_to_matrix(np.zeros(6))
    with pytest.raises(TypeError, match="numpy array or a torch tensor"):
        rot.quaternion_to_matrix([1.0, 0, 0, 0])


def test_integer_input_is_accepted():
    np.testing.assert_array_equal(rot.quaternion_to_matrix(np.array([1, 0, 0, 0])), np.eye(3))
