"""Rotation conversions between axis-angle, quaternion, rotation matrix and the 6D representation.

Every function takes a numpy array or a torch tensor and returns the same type, batched over any
leading dimensions. The torch path is differentiable (no in-place writes; small-angle branches use
``where`` with safe denominators so gradients stay finite at zero rotation) and uses only elementwise
ops, indexing and ``stack``, so it exports to ONNX.

Conventions:
  * axis-angle: (..., 3), the unit axis times the angle in radians (right-hand rule).
  * quaternion: (..., 4) in **(w, x, y, z)** order (scalar first, as transforms3d and MANO tools;
    ROS ``geometry_msgs/Quaternion`` and scipy use (x, y, z, w)). Inputs need not be normalised;
    outputs are unit quaternions with w >= 0 (q and -q are the same rotation).
  * matrix: (..., 3, 3), rotating column vectors: ``x_out = R @ x_in``.
  * 6D (Zhou et al., CVPR 2019): (..., 6) = the first two **columns** of R concatenated,
    ``[R[:, 0], R[:, 1]]``; decoding normalises the first, Gram-Schmidt-orthogonalises the second
    against it, and completes the frame with their cross product. The result's columns are e1, e2, e3
    as in the Keypoint Transformer's ``rot_param_rot_mat`` (see ``rotation_6d_to_matrix_kpt`` for its
    exact, non-orthonormalising arithmetic).

numpy inputs with an invalid value (zero quaternion, zero or parallel 6D columns) raise ValueError;
torch inputs are not checked element-wise (that would break tracing) and clamp denominators instead.
"""
from __future__ import annotations

import numpy as np

_SMALL_ANGLE = 1e-4       # below this angle (rad) the Taylor series are exact to float64 precision
_EPS = 1e-12              # denominator floor for the torch path


class _NumpyOps:
    stack = staticmethod(lambda xs, axis: np.stack(xs, axis=axis))
    where = staticmethod(np.where)
    sqrt = staticmethod(np.sqrt)
    sin = staticmethod(np.sin)
    cos = staticmethod(np.cos)
    atan2 = staticmethod(np.arctan2)
    clip_min = staticmethod(lambda x, lo: np.maximum(x, lo))
    argmax = staticmethod(lambda x, axis: np.argmax(x, axis=axis))


class _TorchOps:
    def __init__(self):
        import torch  # only constructed for torch inputs, so torch is already imported

        self.stack = lambda xs, axis: torch.stack(xs, dim=axis)
        self.where = torch.where
        self.sqrt = torch.sqrt
        self.sin = torch.sin
        self.cos = torch.cos
        self.atan2 = torch.atan2
        self.clip_min = lambda x, lo: torch.clamp(x, min=lo)
        self.argmax = lambda x, axis: torch.argmax(x, dim=axis)


def _ops(x):
    if isinstance(x, np.ndarray):
        return _NumpyOps
    if type(x).__module__.startswith("torch"):
        return _TorchOps()
    raise TypeError(f"expected a numpy array or a torch tensor, got {type(x).__name__}")


def _prepare(x, name: str, trailing: tuple[int, ...]):
    """Validates type and trailing shape; returns (x as floating point, ops for its array type)."""
    ops = _ops(x)
    shape = tuple(x.shape)
    if len(shape) < len(trailing) or shape[len(shape) - len(trailing):] != trailing:
        raise ValueError(f"{name}: expected shape (..., {', '.join(map(str, trailing))}), got {shape}")
    if isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float64)
    elif not x.is_floating_point():
        x = x.float()
    return x, ops


def _dot(a, b):
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1] + a[..., 2] * b[..., 2]


def _cross(a, b, ops):
    # written out (not linalg.cross) so that the ONNX export needs no cross-product op
    return ops.stack([a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
                      a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
                      a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]], -1)


def _matrix(rows, ops):
    """3x3 nested list of (...) arrays -> (..., 3, 3)."""
    return ops.stack([ops.stack(row, -1) for row in rows], -2)


def _require(ok, message: str) -> None:
    if isinstance(ok, np.ndarray | np.bool_ | bool) and not np.all(ok):
        raise ValueError(message)


# --- axis-angle ------------------------------------------------------------------------------------

def _half_angle_terms(axis_angle, ops):
    """For r = axis * angle: (cos(angle/2), sin(angle/2)/angle), both smooth at angle = 0."""
    sq = _dot(axis_angle, axis_angle)
    small = sq < _SMALL_ANGLE ** 2
    angle = ops.sqrt(ops.where(small, 1.0, sq))  # 1.0: a safe placeholder, discarded below
    cos_half = ops.where(small, 1.0 - sq / 8.0, ops.cos(angle / 2))
    sinc_half = ops.where(small, 0.5 - sq / 48.0, ops.sin(angle / 2) / angle)
    return cos_half, sinc_half


def axis_angle_to_quaternion(axis_angle):
    """(..., 3) axis-angle (rad) -> (..., 4) unit quaternion (w, x, y, z), w >= 0 for angles <= pi."""
    axis_angle, ops = _prepare(axis_angle, "axis_angle", (3,))
    w, s = _half_angle_terms(axis_angle, ops)
    return ops.stack([w, axis_angle[..., 0] * s, axis_angle[..., 1] * s, axis_angle[..., 2] * s], -1)


def axis_angle_to_matrix(axis_angle):
    """(..., 3) axis-angle (rad) -> (..., 3, 3) rotation matrix (Rodrigues, via the quaternion)."""
    return quaternion_to_matrix(axis_angle_to_quaternion(axis_angle))


def quaternion_to_axis_angle(quaternion):
    """(..., 4) quaternion (w, x, y, z), any non-zero norm -> (..., 3) axis-angle with angle in [0, pi].

    At exactly pi the axis sign is arbitrary (both signs are the same rotation).
    """
    quaternion, ops = _prepare(quaternion, "quaternion", (4,))
    q = _normalized_quaternion(quaternion, ops)
    # use the w >= 0 representative so the angle is in [0, pi]
    sign = ops.where(q[..., 0] < 0, -1.0, 1.0)
    w = q[..., 0] * sign
    v = q[..., 1:] * sign[..., None]
    sq = _dot(v, v)
    small = sq < (_SMALL_ANGLE / 2) ** 2
    norm_v = ops.sqrt(ops.where(small, 1.0, sq))
    # angle / sin(angle / 2) = 2 atan2(|v|, w) / |v|; its series in |v| (w ~ 1) near zero
    factor = ops.where(small, 2.0 / w * (1.0 - sq / (3.0 * w * w)), 2.0 * ops.atan2(norm_v, w) / norm_v)
    return v * factor[..., None]


def matrix_to_axis_angle(matrix):
    """(..., 3, 3) rotation matrix -> (..., 3) axis-angle, angle in [0, pi] (robust near pi)."""
    return quaternion_to_axis_angle(matrix_to_quaternion(matrix))


# --- quaternion ------------------------------------------------------------------------------------

def _normalized_quaternion(q, ops):
    sq = q[..., 0] ** 2 + q[..., 1] ** 2 + q[..., 2] ** 2 + q[..., 3] ** 2
    _require(sq > 0, "quaternion: zero quaternion has no rotation")
    return q / ops.sqrt(ops.clip_min(sq, _EPS))[..., None]


def quaternion_to_matrix(quaternion):
    """(..., 4) quaternion (w, x, y, z), any non-zero norm (normalised here) -> (..., 3, 3) matrix."""
    quaternion, ops = _prepare(quaternion, "quaternion", (4,))
    q = _normalized_quaternion(quaternion, ops)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return _matrix([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ], ops)


def matrix_to_quaternion(matrix):
    """(..., 3, 3) rotation matrix -> (..., 4) unit quaternion (w, x, y, z) with w >= 0.

    Shepperd's method: the quaternion is computed from whichever of |w|, |x|, |y|, |z| is largest,
    so it stays accurate for rotations near pi (where w -> 0).
    """
    matrix, ops = _prepare(matrix, "matrix", (3, 3))
    m = [[matrix[..., i, j] for j in range(3)] for i in range(3)]
    trace = m[0][0] + m[1][1] + m[2][2]
    # 4 * component**2 for w, x, y, z
    four_sq = ops.stack([1 + trace,
                         1 + m[0][0] - m[1][1] - m[2][2],
                         1 - m[0][0] + m[1][1] - m[2][2],
                         1 - m[0][0] - m[1][1] + m[2][2]], -1)
    # 2|w|, 2|x|, 2|y|, 2|z|, floored at 0.1 (before the sqrt, so its gradient stays finite): the
    # largest component has 4 q_k^2 >= 1, the floor only keeps the unused candidates finite
    two_abs = ops.sqrt(ops.clip_min(four_sq, 0.01))
    d21, d02, d10 = m[2][1] - m[1][2], m[0][2] - m[2][0], m[1][0] - m[0][1]    # 4w*(x, y, z)
    s10, s02, s21 = m[1][0] + m[0][1], m[0][2] + m[2][0], m[2][1] + m[1][2]    # 4xy, 4xz, 4yz
    # candidate k = (4 q_k q) / (4 |q_k|), exact when q_k is the largest component
    candidates = [ops.stack(row, -1) / (2.0 * two_abs[..., k])[..., None]
                  for k, row in enumerate([[four_sq[..., 0], d21, d02, d10],
                                           [d21, four_sq[..., 1], s10, s02],
                                           [d02, s10, four_sq[..., 2], s21],
                                           [d10, s02, s21, four_sq[..., 3]]])]
    best = ops.argmax(four_sq, -1)[..., None]
    q = ops.where(best == 0, candidates[0], ops.where(best == 1, candidates[1],
                                                      ops.where(best == 2, candidates[2], candidates[3])))
    sign = ops.where(q[..., 0] < 0, -1.0, 1.0)
    return q * sign[..., None]


# --- 6D --------------------------------------------------------------------------------------------

def _check_6d(x, ops):
    a1, a2 = x[..., 0:3], x[..., 3:6]
    n1 = _dot(a1, a1)
    _require(n1 > 0, "rotation_6d: first column is zero")
    b1 = a1 / ops.sqrt(ops.clip_min(n1, _EPS))[..., None]
    return a1, a2, b1


def rotation_6d_to_matrix(rotation_6d):
    """(..., 6) = [first column, second column] (unnormalised) -> (..., 3, 3) rotation matrix.

    Gram-Schmidt: e1 = a1/|a1|, e2 = normalise(a2 - (e1.a2) e1), e3 = e1 x e2; R = [e1 e2 e3] as
    columns. Always returns a proper rotation (det +1).
    """
    rotation_6d, ops = _prepare(rotation_6d, "rotation_6d", (6,))
    _, a2, e1 = _check_6d(rotation_6d, ops)
    u2 = a2 - _dot(e1, a2)[..., None] * e1
    n2 = _dot(u2, u2)
    _require(n2 > 1e-24, "rotation_6d: second column is zero or parallel to the first")
    e2 = u2 / ops.sqrt(ops.clip_min(n2, _EPS))[..., None]
    e3 = _cross(e1, e2, ops)
    return ops.stack([e1, e2, e3], -1)


def rotation_6d_to_matrix_kpt(rotation_6d):
    """The Keypoint Transformer's own ``rot_param_rot_mat`` arithmetic, for parity with its checkpoints.

    (..., 6) -> (..., 3, 3) with columns e1 = a1/|a1|, e3 = (e1 x a2)/|a2|, e2 = e3 x e1. This equals
    ``rotation_6d_to_matrix`` when a1 is orthogonal to a2; otherwise columns 2 and 3 are shortened by
    sin(angle(a1, a2)) and the result is not a rotation. Use it only to reproduce that model's outputs.
    """
    rotation_6d, ops = _prepare(rotation_6d, "rotation_6d", (6,))
    _, a2, e1 = _check_6d(rotation_6d, ops)
    n2 = _dot(a2, a2)
    _require(n2 > 0, "rotation_6d: second column is zero")
    e3 = _cross(e1, a2, ops) / ops.sqrt(ops.clip_min(n2, _EPS))[..., None]
    e2 = _cross(e3, e1, ops)
    return ops.stack([e1, e2, e3], -1)


def matrix_to_rotation_6d(matrix):
    """(..., 3, 3) rotation matrix -> (..., 6) = [R[..., :, 0], R[..., :, 1]] (its first two columns)."""
    matrix, ops = _prepare(matrix, "matrix", (3, 3))
    return ops.stack([matrix[..., 0, 0], matrix[..., 1, 0], matrix[..., 2, 0],
                      matrix[..., 0, 1], matrix[..., 1, 1], matrix[..., 2, 1]], -1)
