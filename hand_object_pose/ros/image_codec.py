"""sensor_msgs/Image <-> numpy without cv_bridge (which is not installable off a ROS install).

Honours `step` (row padding) and `is_bigendian`; decodes the encodings a camera driver or a depth
pipeline publishes (REP 118 for depth: 16UC1 = millimetres, 32FC1 = metres, 0 / NaN = invalid).
Works on any object with the Image fields (header, height, width, encoding, is_bigendian, step,
data), so the functions are testable without rclpy.

Errors are `ImageError` with a `kind` (used as the diagnostics counter name) and a message that
names what was wrong and what was expected.
"""
from __future__ import annotations

import sys

import cv2
import numpy as np

# encoding -> (numpy dtype, channels). Multi-byte dtypes are little-endian here and swapped on read
# when the message says big-endian.
ENCODINGS = {
    "rgb8": (np.uint8, 3), "bgr8": (np.uint8, 3), "rgba8": (np.uint8, 4), "bgra8": (np.uint8, 4),
    "mono8": (np.uint8, 1), "8UC1": (np.uint8, 1), "8UC3": (np.uint8, 3), "8UC4": (np.uint8, 4),
    "mono16": (np.uint16, 1), "16UC1": (np.uint16, 1), "32FC1": (np.float32, 1),
    # Packed 4:2:2, two bytes per pixel: UYVY ("yuv422", the ROS name) and YUYV ("yuv422_yuy2").
    "yuv422": (np.uint8, 2), "uyvy": (np.uint8, 2), "yuv422_yuy2": (np.uint8, 2), "yuyv": (np.uint8, 2),
}
COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "8UC1", "8UC3", "8UC4",
                   "yuv422", "uyvy", "yuv422_yuy2", "yuyv")
DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1")

# How each colour encoding becomes RGB. 8UC3/8UC4 follow OpenCV's BGR(A) convention, like cv_bridge.
_TO_RGB = {
    "bgr8": cv2.COLOR_BGR2RGB, "8UC3": cv2.COLOR_BGR2RGB, "rgba8": cv2.COLOR_RGBA2RGB,
    "bgra8": cv2.COLOR_BGRA2RGB, "8UC4": cv2.COLOR_BGRA2RGB, "mono8": cv2.COLOR_GRAY2RGB,
    "8UC1": cv2.COLOR_GRAY2RGB, "yuv422": cv2.COLOR_YUV2RGB_UYVY, "uyvy": cv2.COLOR_YUV2RGB_UYVY,
    "yuv422_yuy2": cv2.COLOR_YUV2RGB_YUY2, "yuyv": cv2.COLOR_YUV2RGB_YUY2,
}

_SYSTEM_BIG_ENDIAN = sys.byteorder == "big"


class ImageError(ValueError):
    """An image message that cannot be used. `kind` names the diagnostics counter."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def image_to_array(msg) -> np.ndarray:
    """Decode an Image message into its native array: (H, W) or (H, W, C), dtype from the encoding.

    The result never aliases the message buffer (it is safe to keep after the message is gone).
    """
    encoding = msg.encoding
    if encoding not in ENCODINGS:
        hint = " (Bayer images must be debayered first, e.g. by image_proc)" if encoding.startswith("bayer") else ""
        raise ImageError("unsupported_encoding", f"image encoding {encoding!r} is not supported{hint}; "
                         f"expected one of {', '.join(ENCODINGS)}")
    dtype, channels = ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageError("bad_size", f"image size {width}x{height} is empty; expected width > 0 and height > 0")
    if channels == 2 and width % 2:
        raise ImageError("bad_size", f"{encoding} image width {width} is odd; packed 4:2:2 needs an even width")
    itemsize = np.dtype(dtype).itemsize
    row_bytes = width * channels * itemsize
    if step < row_bytes:
        raise ImageError("bad_step", f"image step {step} B is smaller than one row of {width} px x {channels} ch "
                         f"x {itemsize} B = {row_bytes} B; expected step >= {row_bytes}")
    buffer = np.frombuffer(msg.data, np.uint8)  # zero-copy view of array.array / bytes
    needed = step * (height - 1) + row_bytes
    if buffer.size < needed:
        raise ImageError("short_data", f"image data has {buffer.size} B; {width}x{height} {encoding} with step "
                         f"{step} needs at least {needed} B")
    if buffer.size < step * height:  # the last row's padding may be cut: pad to a full grid
        buffer = np.concatenate([buffer, np.zeros(step * height - buffer.size, np.uint8)])
    rows = buffer[: step * height].reshape(height, step)[:, :row_bytes]
    # copy(): the result must not alias the message buffer; then reinterpret with the message's byte order.
    stored = np.dtype(dtype).newbyteorder(">" if msg.is_bigendian else "<")
    array = rows.copy().view(stored).astype(dtype, copy=False)
    return array.reshape(height, width, channels) if channels > 1 else array.reshape(height, width)


def image_to_rgb(msg) -> np.ndarray:
    """Decode a colour (or mono) Image into (H, W, 3) uint8 RGB."""
    if msg.encoding in DEPTH_ENCODINGS:
        raise ImageError("unsupported_encoding", f"image encoding {msg.encoding!r} is a depth/16-bit format; "
                         f"the colour input expects one of {', '.join(COLOR_ENCODINGS)}")
    array = image_to_array(msg)
    if msg.encoding == "rgb8":
        return array
    return np.ascontiguousarray(cv2.cvtColor(array, _TO_RGB[msg.encoding]))


def depth_to_metres(msg) -> np.ndarray:
    """Decode a depth Image into (H, W) float32 metres; invalid pixels (0, NaN, inf, < 0) become NaN.

    16UC1 / mono16 are millimetres and 32FC1 metres (REP 118).
    """
    if msg.encoding not in DEPTH_ENCODINGS:
        raise ImageError("unsupported_encoding", f"depth encoding {msg.encoding!r} is not supported; "
                         "expected 16UC1 / mono16 (millimetres) or 32FC1 (metres)")
    array = image_to_array(msg)
    depth = array.astype(np.float32) * np.float32(0.001) if array.dtype == np.uint16 else array.astype(np.float32)
    depth[~np.isfinite(depth) | (depth <= 0.0)] = np.nan
    return depth


def array_to_image_fields(array: np.ndarray, encoding: str) -> dict:
    """Fields of an Image message (height, width, encoding, is_bigendian, step, data) for an array.

    `data` is `bytes`: assigning a numpy array to `msg.data` costs ~40 ms per VGA frame (element-wise
    copy in the generated setter), bytes ~30 us.
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding {encoding!r} is not supported; expected one of {', '.join(ENCODINGS)}")
    dtype, channels = ENCODINGS[encoding]
    array = np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("="))
    expected_ndim = 2 if channels == 1 else 3
    if array.ndim != expected_ndim or (channels > 1 and array.shape[2] != channels):
        raise ValueError(f"array of shape {array.shape} does not fit encoding {encoding!r} ({channels} channels)")
    height, width = array.shape[:2]
    return dict(height=height, width=width, encoding=encoding, is_bigendian=int(_SYSTEM_BIG_ENDIAN),
                step=width * channels * array.itemsize, data=array.tobytes())
