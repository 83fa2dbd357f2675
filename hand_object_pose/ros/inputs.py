"""Checks of the non-image inputs: CameraInfo intrinsics, external ROIs, stamps. Pure functions.

Each raises / returns an `ImageError`-style (kind, message) pair so the node can count the kind in
/diagnostics and log what was wrong and what was expected.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from hand_object_pose.geometry.camera import CameraIntrinsics, intrinsics_from_camera_info
from hand_object_pose.ros.image_codec import ImageError


def stamp_ns(stamp) -> int:
    """builtin_interfaces/Time -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def camera_intrinsics(info, use_rectified: bool, image_width: int, image_height: int) -> CameraIntrinsics:
    """The image's intrinsics (pixels): K + D for raw images, P without distortion for rectified ones.

    Raises ImageError("bad_camera_info") for all-zero / non-finite / non-positive focal lengths, an
    unsupported distortion model, and a CameraInfo whose (non-zero) size differs from the image's.
    """
    source = "P" if use_rectified else "K"
    values = np.asarray(info.p if use_rectified else info.k, np.float64)
    matrix = values.reshape(3, 4)[:, :3] if use_rectified else values.reshape(3, 3)
    fx, fy = matrix[0, 0], matrix[1, 1]
    if not np.all(np.isfinite(matrix)) or fx <= 0 or fy <= 0:
        raise ImageError("bad_camera_info", f"camera_info {source} has focal lengths fx={fx:g}, fy={fy:g} "
                         f"({'all zeros: an uncalibrated camera' if not np.any(matrix) else 'not usable'}); "
                         f"expected finite fx > 0 and fy > 0 in pixels (calibrate the camera)")
    if info.width and info.height and (info.width, info.height) != (image_width, image_height):
        raise ImageError("bad_camera_info", f"camera_info is for {info.width}x{info.height} images but the image "
                         f"is {image_width}x{image_height}; expected the CameraInfo of this image stream")
    try:
        return intrinsics_from_camera_info(np.asarray(info.k), np.asarray(info.d), np.asarray(info.p),
                                           info.distortion_model or "plumb_bob", image_width, image_height,
                                           rectified=use_rectified)
    except ValueError as exc:
        raise ImageError("bad_camera_info", f"{exc}; expected a calibrated CameraInfo") from None


def clip_roi(roi, image_width: int, image_height: int) -> tuple[Optional[tuple], str]:
    """sensor_msgs/RegionOfInterest -> ((x, y, w, h) clipped to the image or None, problem or '').

    width = height = 0 means the full image (ROS convention) and returns (None, ''): no crop hint.
    An ROI entirely outside the image returns None with the problem; one partly outside is clipped.
    """
    x, y, w, h = int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height)
    if w == 0 and h == 0:
        return None, ""
    box = f"ROI x={x} y={y} w={w} h={h}"
    if w <= 0 or h <= 0:
        return None, f"{box} is empty; expected width > 0 and height > 0 (or both 0 for the full image)"
    x1, y1 = min(x + w, image_width), min(y + h, image_height)
    if x >= image_width or y >= image_height or x1 <= x or y1 <= y:
        return None, f"{box} lies outside the {image_width}x{image_height} image; ignored"
    if x + w > image_width or y + h > image_height:
        return (x, y, x1 - x, y1 - y), (f"{box} extends past the {image_width}x{image_height} image; "
                                        f"clipped to w={x1 - x} h={y1 - y}")
    return (x, y, w, h), ""
