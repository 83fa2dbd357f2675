"""Pinhole camera with optional lens distortion, and the crop/resize affines that go with it.

Frames and units: 3D points in metres in the OpenCV optical frame (x right, y down, z forward);
pixel coordinates (u, v) with the centre of the top-left pixel at (0, 0), as OpenCV calibration,
``cv2.warpAffine`` and ROS ``CameraInfo`` use. Depth is the z coordinate (along the optical axis),
not the length of the ray.

Crops and resizes are 2x3 affines ``A`` mapping image pixels to crop pixels, ``[u', v'] = A @ [u, v, 1]``.
``warp_image`` applies one to an image with ``cv2.warpAffine`` under the same pixel convention, so the
intrinsics of the crop are exactly ``K' = [A; 0 0 1] @ K`` (``CameraIntrinsics.transformed``). Use it
for resizes too: ``cv2.resize`` samples with a half-pixel offset that ``K' = A K`` does not describe.

Distortion follows OpenCV / ROS ``CameraInfo``: coefficients (k1, k2, p1, p2[, k3[, k4, k5, k6]]),
i.e. ``plumb_bob`` (4-5) or ``rational_polynomial`` (8). Raw images use K + D; rectified images
(``image_rect*`` topics) use P and no distortion (``intrinsics_from_camera_info``).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import cv2
import numpy as np

SUPPORTED_DISTORTION_MODELS = ("plumb_bob", "rational_polynomial")
"""ROS ``CameraInfo.distortion_model`` values handled here (others only with all-zero coefficients)."""

_UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)


# --- pure pinhole (numpy or torch) -----------------------------------------------------------------

def pinhole_project(points, fx, fy, cx, cy):
    """Points (..., 3) in the camera frame -> pixels (..., 2), no distortion, no checks.

    Arithmetic only, so it works on numpy arrays and (differentiably) on torch tensors; the
    intrinsics may be floats or arrays broadcastable to (...).
    """
    z = points[..., 2]
    u = fx * points[..., 0] / z + cx
    v = fy * points[..., 1] / z + cy
    return _stack_last([u, v], points)


def project_points(points, K) -> np.ndarray:
    """Points (..., 3) in the camera frame (metres) -> pixels (..., 2) through the (3, 3) pinhole matrix K
    (skew included), no distortion; float64 numpy.

    The one numpy projection with a K matrix: ``p = K X``, pixels ``p[:2] / p[2]`` (= z). Points at
    z = 0 give inf/nan without a warning and points behind the camera (z < 0) mirrored pixels: callers
    that can meet them check z first. With distortion use ``CameraIntrinsics.project``.
    """
    homogeneous = np.asarray(points, np.float64) @ np.asarray(K, np.float64).T
    with np.errstate(divide="ignore", invalid="ignore"):
        return homogeneous[..., :2] / homogeneous[..., 2:3]


def pinhole_backproject(pixels, depth, fx, fy, cx, cy):
    """Pixels (..., 2) and depth (...) (z, metres) -> points (..., 3); no distortion, no checks.

    numpy or torch, like ``pinhole_project``.
    """
    x = (pixels[..., 0] - cx) / fx * depth
    y = (pixels[..., 1] - cy) / fy * depth
    return _stack_last([x, y, depth + 0 * x], pixels)


def _stack_last(items, like):
    if isinstance(like, np.ndarray):
        return np.stack(items, axis=-1)
    import torch  # only reached with torch tensors, so torch is already imported

    return torch.stack(items, dim=-1)


OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0])
"""Rotation between the OpenGL camera frame (x right, y up, looking along -z; HO-3D's annotations and
submission format) and the OpenCV optical frame (x right, y down, z forward). It is its own inverse:
``p_cv = OPENGL_TO_OPENCV @ p_gl``, ``R_cv = OPENGL_TO_OPENCV @ R_gl`` for an object-to-camera rotation."""


def swap_opengl_opencv(points):
    """Points (..., 3) between the OpenGL and OpenCV camera frames (negates y and z; either direction).

    numpy or torch; returns a new array.
    """
    if points.shape[-1] != 3:
        raise ValueError(f"swap_opengl_opencv: expected points of shape (..., 3), got {tuple(points.shape)}")
    return _stack_last([points[..., 0], -points[..., 1], -points[..., 2]], points)


# --- intrinsics ------------------------------------------------------------------------------------

def _as_array(x, name: str, last: int | None = None) -> np.ndarray:
    array = np.asarray(x, dtype=np.float64)
    if last is not None and (array.ndim == 0 or array.shape[-1] != last):
        raise ValueError(f"{name}: expected shape (..., {last}), got {array.shape}")
    return array


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics (pixels) with optional OpenCV distortion coefficients.

    fx, fy: focal lengths in pixels (> 0); cx, cy: principal point in pixels.
    distortion: () for none, else OpenCV order (k1, k2, p1, p2[, k3[, k4, k5, k6]]).
    width, height: image size in pixels, 0 when unknown (informational; not used in the maths).
    """

    fx: float
    fy: float
    cx: float
    cy: float
    distortion: tuple[float, ...] = field(default=())
    width: int = 0
    height: int = 0

    def __post_init__(self):
        for name in ("fx", "fy", "cx", "cy"):
            value = getattr(self, name)
            if not np.isfinite(value):
                raise ValueError(f"camera intrinsics: {name} must be finite, got {value}")
            object.__setattr__(self, name, float(value))
        if self.fx <= 0 or self.fy <= 0:
            raise ValueError(f"camera intrinsics: focal lengths must be > 0 pixels, got fx={self.fx}, fy={self.fy}")
        distortion = tuple(float(d) for d in np.asarray(self.distortion, dtype=np.float64).ravel())
        if len(distortion) not in (0, 4, 5, 8):
            raise ValueError(
                f"camera intrinsics: expected 0, 4, 5 (plumb_bob) or 8 (rational_polynomial) distortion "
                f"coefficients, got {len(distortion)}")
        if not all(np.isfinite(distortion)):
            raise ValueError(f"camera intrinsics: distortion coefficients must be finite, got {distortion}")
        object.__setattr__(self, "distortion", distortion)
        if self.width < 0 or self.height < 0:
            raise ValueError(f"camera intrinsics: image size must be >= 0, got {self.width}x{self.height}")

    @classmethod
    def from_matrix(cls, matrix, distortion: Sequence[float] = (), width: int = 0, height: int = 0):
        """From a 3x3 K (or the 9 row-major values of ``CameraInfo.k``); zero skew required."""
        k = np.asarray(matrix, dtype=np.float64)
        if k.size != 9:
            raise ValueError(f"camera matrix: expected 3x3 (or 9 values), got shape {k.shape}")
        k = k.reshape(3, 3)
        if k[0, 1] != 0 or k[1, 0] != 0 or not np.allclose(k[2], [0, 0, 1]):
            raise ValueError(f"camera matrix: expected [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], got {k.tolist()}")
        return cls(k[0, 0], k[1, 1], k[0, 2], k[1, 2], tuple(distortion), width, height)

    @property
    def matrix(self) -> np.ndarray:
        """K, (3, 3) float64."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def has_distortion(self) -> bool:
        return any(d != 0.0 for d in self.distortion)

    # projection ------------------------------------------------------------------------------------

    def project(self, points) -> np.ndarray:
        """Points (..., 3), metres, camera frame, z > 0 -> pixels (..., 2) in the (raw) image.

        Applies the lens distortion when there is one, as the real camera does.
        """
        points = _as_array(points, "points", 3)
        if np.any(~(points[..., 2] > 0)):
            bad = int(np.sum(~(points[..., 2] > 0)))
            raise ValueError(f"project: {bad} point(s) have z <= 0 (or NaN); only points in front of the "
                             f"camera (z > 0, metres) can be projected")
        return self.distort_pixels(pinhole_project(points, self.fx, self.fy, self.cx, self.cy))

    def backproject(self, pixels, depth) -> np.ndarray:
        """Pixels (..., 2) in the (raw) image and depth (...) (z, metres) -> points (..., 3), camera frame.

        Undistorts the pixels first when there is distortion. ``depth`` broadcasts against (...).
        """
        pixels = _as_array(pixels, "pixels", 2)
        depth = np.broadcast_to(_as_array(depth, "depth"), pixels.shape[:-1])
        ideal = self.undistort_pixels(pixels)
        return pinhole_backproject(ideal, depth, self.fx, self.fy, self.cx, self.cy)

    def undistort_pixels(self, pixels) -> np.ndarray:
        """Raw (distorted) pixels (..., 2) -> ideal pinhole pixels (..., 2) with the same K.

        ``cv2.undistortPoints`` (iterative, to 1e-12); returns a copy unchanged when there is no distortion.
        """
        pixels = _as_array(pixels, "pixels", 2)
        if not self.has_distortion or pixels.size == 0:
            return pixels.copy()
        flat = np.ascontiguousarray(pixels.reshape(-1, 1, 2))
        ideal = cv2.undistortPoints(flat, self.matrix, np.asarray(self.distortion), P=self.matrix,
                                    criteria=_UNDISTORT_CRITERIA)
        return ideal.reshape(pixels.shape)

    def distort_pixels(self, pixels) -> np.ndarray:
        """Ideal pinhole pixels (..., 2) -> raw (distorted) pixels (..., 2) with the same K.

        ``cv2.projectPoints`` of the normalised rays; returns a copy unchanged when there is no distortion.
        """
        pixels = _as_array(pixels, "pixels", 2)
        if not self.has_distortion or pixels.size == 0:
            return pixels.copy()
        rays = np.ones(pixels.shape[:-1] + (3,))
        rays[..., 0] = (pixels[..., 0] - self.cx) / self.fx
        rays[..., 1] = (pixels[..., 1] - self.cy) / self.fy
        raw, _ = cv2.projectPoints(rays.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), self.matrix,
                                   np.asarray(self.distortion))
        return raw.reshape(pixels.shape)

    def depth_image_to_points(self, depth_image) -> np.ndarray:
        """Depth image (H, W) of z in metres -> points (H, W, 3) in the camera frame.

        Pixels with depth 0 (no measurement) give (0, 0, 0); NaN stays NaN. Convert a 16-bit depth
        image in millimetres with ``depth_mm * 1e-3`` first.
        """
        depth = _as_array(depth_image, "depth_image")
        if depth.ndim != 2:
            raise ValueError(f"depth_image: expected shape (H, W), got {depth.shape}")
        v, u = np.mgrid[0:depth.shape[0], 0:depth.shape[1]]
        return self.backproject(np.stack([u, v], axis=-1), depth)

    # crops and resizes -----------------------------------------------------------------------------

    def transformed(self, affine, width: int = 0, height: int = 0) -> "CameraIntrinsics":
        """Intrinsics of an image warped by ``affine`` (2x3, image -> new pixels): ``K' = [A; 0 0 1] K``.

        The affine must be a scale + translation (crops and resizes); rotation or shear would make K'
        a non-pinhole matrix. Distortion coefficients act on normalised coordinates and carry over.
        """
        a = _check_affine(affine)
        if a[0, 1] != 0 or a[1, 0] != 0 or a[0, 0] <= 0 or a[1, 1] <= 0:
            raise ValueError(f"transformed: expected a positive scale + translation affine "
                             f"[[sx, 0, tx], [0, sy, ty]], got {a.tolist()}")
        return replace(self, fx=a[0, 0] * self.fx, fy=a[1, 1] * self.fy,
                       cx=a[0, 0] * self.cx + a[0, 2], cy=a[1, 1] * self.cy + a[1, 2],
                       width=width, height=height)


def intrinsics_from_camera_info(k, d=(), p=None, distortion_model: str = "plumb_bob", width: int = 0,
                                height: int = 0, rectified: bool = False) -> CameraIntrinsics:
    """Intrinsics for a ROS ``CameraInfo``-like set of arrays (no ROS import).

    k: 9 values (3x3 K, row-major), d: distortion coefficients, p: 12 values (3x4 P, row-major).
    ``rectified=False`` (raw ``image`` / ``image_raw``): K + D. ``rectified=True`` (``image_rect*``):
    the left 3x3 of P with no distortion; P's fourth column must be zero (a monocular or left camera;
    a stereo right camera's baseline term is not a pinhole intrinsic). Note that a rectified image's
    frame is the raw camera frame rotated by ``CameraInfo.r``.
    """
    if rectified:
        if p is None:
            raise ValueError("camera info: rectified=True needs the 3x4 projection matrix p")
        p = np.asarray(p, dtype=np.float64)
        if p.size != 12:
            raise ValueError(f"camera info: expected p with 12 values (3x4), got shape {p.shape}")
        p = p.reshape(3, 4)
        if np.any(p[:, 3] != 0):
            raise ValueError(f"camera info: P has a non-zero fourth column {p[:, 3].tolist()} "
                             f"(stereo baseline); only monocular/left rectified cameras are supported")
        return CameraIntrinsics.from_matrix(p[:, :3], (), width, height)
    d = tuple(np.asarray(d, dtype=np.float64).ravel())
    if any(d) and distortion_model not in SUPPORTED_DISTORTION_MODELS:
        raise ValueError(f"camera info: distortion model {distortion_model!r} is not supported "
                         f"(supported: {', '.join(SUPPORTED_DISTORTION_MODELS)}); use the rectified image and P")
    return CameraIntrinsics.from_matrix(k, d if any(d) else (), width, height)


# --- boxes -----------------------------------------------------------------------------------------

def bounding_box(points, margin: float = 0.0) -> np.ndarray:
    """Tight box (x0, y0, width, height) around 2D points (..., 2), grown by ``margin`` pixels per side.

    Non-finite points are ignored; at least one finite point is required.
    """
    points = _as_array(points, "points", 2).reshape(-1, 2)
    points = points[np.all(np.isfinite(points), axis=-1)]
    if len(points) == 0:
        raise ValueError("bounding_box: no finite 2D point to enclose")
    lo, hi = points.min(axis=0) - margin, points.max(axis=0) + margin
    return np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]])


def square_box(box, enlarge: float = 1.25) -> np.ndarray:
    """Square box around ``box`` (x0, y0, w, h): same centre, side = max(w, h) * enlarge.

    This is the official InterHand2.6M / Keypoint Transformer ``process_bbox`` for a square input
    (aspect ratio 1, x1.25 by default).
    """
    x0, y0, w, h = _as_array(box, "box", 4)
    if not (w >= 0 and h >= 0) or enlarge <= 0:
        raise ValueError(f"square_box: expected width, height >= 0 and enlarge > 0, got box {[x0, y0, w, h]}, "
                         f"enlarge {enlarge}")
    side = max(w, h) * enlarge
    return np.array([x0 + w / 2 - side / 2, y0 + h / 2 - side / 2, side, side])


def box_around_points(points, enlarge: float = 1.25, margin: float = 0.0) -> np.ndarray:
    """``square_box(bounding_box(points, margin), enlarge)``: the crop box of the official pipelines."""
    return square_box(bounding_box(points, margin), enlarge)


# --- affines ---------------------------------------------------------------------------------------

def _check_affine(affine) -> np.ndarray:
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (2, 3):
        raise ValueError(f"affine: expected a 2x3 matrix, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"affine: expected finite values, got {a.tolist()}")
    return a


def _size_pair(size, name: str) -> tuple[int, int]:
    w, h = (size, size) if np.isscalar(size) else tuple(size)
    if w <= 0 or h <= 0:
        raise ValueError(f"{name}: expected a positive size (width, height) or S, got {size}")
    return w, h


def crop_affine(box, out_size) -> np.ndarray:
    """2x3 affine mapping the box (x0, y0, w, h) in image pixels onto an output of ``out_size``.

    out_size: S or (width, height). The box's edges map to the output's edges (x0 -> 0, x0 + w -> width),
    its centre to the output's centre, as the official ``gen_trans_from_patch_cv`` without rotation.
    """
    x0, y0, w, h = _as_array(box, "box", 4)
    out_w, out_h = _size_pair(out_size, "crop_affine")
    if not (w > 0 and h > 0):
        raise ValueError(f"crop_affine: the box must have positive width and height, got {[x0, y0, w, h]}")
    sx, sy = out_w / w, out_h / h
    return np.array([[sx, 0.0, -sx * x0], [0.0, sy, -sy * y0]])


def resize_affine(in_size, out_size) -> np.ndarray:
    """2x3 affine of resizing a whole image of ``in_size`` (W, H) to ``out_size`` (W', H'): u' = u W'/W."""
    in_w, in_h = _size_pair(in_size, "resize_affine")
    return crop_affine((0.0, 0.0, in_w, in_h), out_size)


def invert_affine(affine) -> np.ndarray:
    """Inverse of an invertible 2x3 affine (e.g. crop pixels -> image pixels)."""
    a = _check_affine(affine)
    linear = a[:, :2]
    det = np.linalg.det(linear)
    if abs(det) < 1e-12:
        raise ValueError(f"invert_affine: the affine is singular (det {det:g}): {a.tolist()}")
    inv = np.linalg.inv(linear)
    return np.concatenate([inv, -inv @ a[:, 2:]], axis=1)


def compose_affines(second, first) -> np.ndarray:
    """The 2x3 affine applying ``first`` and then ``second`` (e.g. a resize, then a crop)."""
    a2, a1 = _check_affine(second), _check_affine(first)
    return np.concatenate([a2[:, :2] @ a1[:, :2], a2[:, :2] @ a1[:, 2:] + a2[:, 2:]], axis=1)


def apply_affine(points, affine) -> np.ndarray:
    """Maps 2D points (..., 2) through a 2x3 affine (image -> crop, or crop -> image with the inverse)."""
    points = _as_array(points, "points", 2)
    a = _check_affine(affine)
    return points @ a[:, :2].T + a[:, 2]


def warp_image(image: np.ndarray, affine, out_size, interpolation: int = cv2.INTER_LINEAR,
               border_value: float = 0.0) -> np.ndarray:
    """The crop/resize of ``image`` (H, W[, C]) by a 2x3 affine, shape (out_h, out_w[, C]).

    ``cv2.warpAffine`` with constant border: output pixel p takes the input at ``A^-1 p`` (bilinear by
    default), i.e. output pixel coordinates are exactly ``apply_affine(image pixel, A)``.
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3) or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"warp_image: expected an image of shape (H, W) or (H, W, C), got {image.shape}")
    out_w, out_h = _size_pair(out_size, "warp_image")
    return cv2.warpAffine(image, _check_affine(affine), (int(out_w), int(out_h)), flags=interpolation,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(border_value,) * 4)
