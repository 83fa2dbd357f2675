"""sensor_msgs/Image decoding without cv_bridge: encodings, padding, byte order and bad input."""
import array

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import Image

from hand_object_pose.ros.image_codec import (ImageError, array_to_image_fields, depth_to_metres, image_to_array,
                                              image_to_rgb)

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (5, 6, 3), dtype=np.uint8)


def message(array_bytes: bytes, height: int, width: int, encoding: str, step: int, big_endian: bool = False) -> Image:
    msg = Image(height=height, width=width, encoding=encoding, step=step, is_bigendian=int(big_endian))
    msg.data = array.array("B", array_bytes)  # what rclpy hands a subscriber
    return msg


def padded(rows: np.ndarray, pad: int) -> bytes:
    """Row-major bytes of `rows` (H, row_bytes) with `pad` junk bytes after each row."""
    junk = np.full((rows.shape[0], pad), 0xAB, np.uint8)
    return np.hstack([rows, junk]).tobytes()


@pytest.mark.parametrize("encoding,convert", [
    ("rgb8", None), ("bgr8", cv2.COLOR_RGB2BGR), ("8UC3", cv2.COLOR_RGB2BGR),
    ("rgba8", cv2.COLOR_RGB2RGBA), ("bgra8", cv2.COLOR_RGB2BGRA)])
def test_colour_encodings_decode_to_rgb(encoding, convert):
    native = RGB if convert is None else cv2.cvtColor(RGB, convert)
    msg = Image(**array_to_image_fields(native, encoding))
    np.testing.assert_array_equal(image_to_rgb(msg), RGB)


@pytest.mark.parametrize("encoding", ["mono8", "8UC1"])
def test_mono_is_replicated_to_three_channels(encoding):
    grey = RGB[..., 0]
    rgb = image_to_rgb(Image(**array_to_image_fields(grey, encoding)))
    assert rgb.shape == (5, 6, 3)
    np.testing.assert_array_equal(rgb, np.repeat(grey[..., None], 3, axis=2))


@pytest.mark.parametrize("encoding,byte_order", [("yuv422", "UYVY"), ("yuv422_yuy2", "YUYV")])
def test_packed_yuv422_decodes_with_the_right_byte_order(encoding, byte_order):
    # A flat colour has the same Y in both pixels of a pair, so the expected RGB follows from one conversion.
    y, u, v = 120, 90, 200
    pair = bytes([u, y, v, y]) if byte_order == "UYVY" else bytes([y, u, y, v])
    msg = message(pair * 3 * 2, 2, 6, encoding, 12)
    # BT.601 limited range (what cameras send as 4:2:2)
    c, d, e = 1.164 * (y - 16), u - 128, v - 128
    expected = np.array([c + 1.596 * e, c - 0.813 * e - 0.391 * d, c + 2.018 * d])
    rgb = image_to_rgb(msg)
    assert rgb.shape == (2, 6, 3)
    assert np.abs(rgb.astype(int) - expected.astype(int)).max() <= 2


def test_padded_rows_decode_correctly():
    rows = RGB.reshape(5, -1)
    msg = message(padded(rows, 14), 5, 6, "rgb8", 18 + 14)
    np.testing.assert_array_equal(image_to_rgb(msg), RGB)


def test_padded_last_row_may_be_cut():
    rows = RGB.reshape(5, -1)
    data = padded(rows, 6)[:-6]
    np.testing.assert_array_equal(image_to_rgb(message(data, 5, 6, "rgb8", 24)), RGB)


def test_depth_16uc1_big_and_little_endian_padded():
    depth_mm = np.array([[0, 500, 1000], [65535, 1234, 2]], np.uint16)
    for big_endian in (False, True):
        rows = depth_mm.astype(">u2" if big_endian else "<u2").view(np.uint8).reshape(2, -1)
        msg = message(padded(rows, 2), 2, 3, "16UC1", 8, big_endian)
        np.testing.assert_array_equal(image_to_array(msg), depth_mm)
        metres = depth_to_metres(msg)
        assert np.isnan(metres[0, 0])  # 0 = invalid (REP 118)
        np.testing.assert_allclose(metres[0, 1:], [0.5, 1.0], rtol=1e-6)
        np.testing.assert_allclose(metres[1], [65.535, 1.234, 0.002], rtol=1e-6)


def test_depth_32fc1_invalid_values_become_nan():
    depth = np.array([[0.5, np.nan, np.inf], [0.0, -1.0, 2.25]], np.float32)
    for big_endian in (False, True):
        rows = depth.astype(">f4" if big_endian else "<f4").view(np.uint8).reshape(2, -1)
        metres = depth_to_metres(message(rows.tobytes(), 2, 3, "32FC1", 12, big_endian))
        np.testing.assert_array_equal(np.isnan(metres), [[False, True, True], [True, True, False]])
        np.testing.assert_allclose(metres[~np.isnan(metres)], [0.5, 2.25])


def test_mono16_is_depth_in_millimetres():
    msg = Image(**array_to_image_fields(np.array([[1500]], np.uint16), "mono16"))
    np.testing.assert_allclose(depth_to_metres(msg), [[1.5]])


def test_decoded_array_does_not_alias_the_message():
    msg = Image(**array_to_image_fields(RGB, "rgb8"))
    decoded = image_to_rgb(msg)
    msg.data[0] = (int(msg.data[0]) + 1) % 256
    np.testing.assert_array_equal(decoded, RGB)


@pytest.mark.parametrize("encoding", ["bayer_rggb8", "bayer_bggr16", "jpeg", ""])
def test_unsupported_encoding_is_named(encoding):
    with pytest.raises(ImageError) as err:
        image_to_rgb(message(bytes(36), 6, 6, encoding, 6))
    assert err.value.kind == "unsupported_encoding"
    assert repr(encoding) in str(err.value) and "rgb8" in str(err.value)
    if encoding.startswith("bayer"):
        assert "debayer" in str(err.value)


def test_depth_encoding_on_the_colour_input_is_rejected():
    with pytest.raises(ImageError, match="depth"):
        image_to_rgb(Image(**array_to_image_fields(np.zeros((2, 2), np.uint16), "16UC1")))
    with pytest.raises(ImageError, match="16UC1"):
        depth_to_metres(Image(**array_to_image_fields(RGB, "rgb8")))


@pytest.mark.parametrize("height,width", [(0, 6), (5, 0), (0, 0)])
def test_zero_size_is_rejected(height, width):
    with pytest.raises(ImageError, match="expected width > 0 and height > 0") as err:
        image_to_rgb(message(b"", height, width, "rgb8", width * 3))
    assert err.value.kind == "bad_size"


def test_step_smaller_than_a_row_is_rejected():
    with pytest.raises(ImageError, match=r"step 17 B is smaller than one row .* expected step >= 18") as err:
        image_to_rgb(message(RGB.tobytes(), 5, 6, "rgb8", 17))
    assert err.value.kind == "bad_step"


def test_short_data_is_rejected():
    with pytest.raises(ImageError, match="needs at least 90 B") as err:
        image_to_rgb(message(RGB.tobytes()[:80], 5, 6, "rgb8", 18))
    assert err.value.kind == "short_data"


def test_odd_width_yuv422_is_rejected():
    with pytest.raises(ImageError, match="even width"):
        image_to_rgb(message(bytes(10), 1, 5, "yuv422", 10))


def test_array_to_image_fields_round_trip_and_type():
    fields = array_to_image_fields(RGB, "rgb8")
    assert isinstance(fields["data"], bytes) and fields["step"] == 18
    with pytest.raises(ValueError, match="does not fit"):
        array_to_image_fields(RGB, "mono8")
