"""The cv_bridge path of the colour decoder. ROS 2's cv_bridge is not installable here, so a minimal
module with its API (CvBridge.imgmsg_to_cv2, CvBridgeError; debayering done by OpenCV as cv_bridge
does) stands in for it: the test checks which encodings go to cv_bridge and which stay with the
project's decoder, not cv_bridge itself."""
import sys
import types

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import Image

from hand_object_pose.ros.image_codec import ImageError, array_to_image_fields
from hand_object_pose.ros.pose_node import _make_rgb_decoder


class CvBridgeError(Exception):
    pass


class CvBridge:
    calls = []

    def imgmsg_to_cv2(self, msg, desired_encoding):
        CvBridge.calls.append((msg.encoding, desired_encoding))
        if msg.encoding != "bayer_rggb8":
            raise CvBridgeError(f"cannot convert {msg.encoding}")
        raw = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)[:, :msg.width]
        return cv2.cvtColor(raw, cv2.COLOR_BayerRG2RGB)


@pytest.fixture
def with_cv_bridge(monkeypatch):
    module = types.ModuleType("cv_bridge")
    module.CvBridge, module.CvBridgeError = CvBridge, CvBridgeError
    monkeypatch.setitem(sys.modules, "cv_bridge", module)
    CvBridge.calls = []


def test_without_cv_bridge_bayer_is_rejected(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv_bridge", None)   # import fails, as on this machine
    decode = _make_rgb_decoder()
    with pytest.raises(ImageError, match="debayer"):
        decode(Image(height=2, width=2, encoding="bayer_rggb8", step=2, data=bytes(4)))


def test_with_cv_bridge_only_unsupported_encodings_go_to_it(with_cv_bridge):
    decode = _make_rgb_decoder()
    rgb = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    np.testing.assert_array_equal(decode(Image(**array_to_image_fields(rgb, "rgb8"))), rgb)
    assert CvBridge.calls == []                            # the project's decoder handled it
    bayer = Image(height=4, width=6, encoding="bayer_rggb8", step=6, data=bytes(range(24)))
    assert decode(bayer).shape == (4, 6, 3)
    assert CvBridge.calls == [("bayer_rggb8", "rgb8")]
    with pytest.raises(ImageError, match="jpeg"):          # cv_bridge cannot either: our error, not its
        decode(Image(height=4, width=6, encoding="jpeg", step=6, data=bytes(24)))
    with pytest.raises(ImageError, match="step"):          # malformed data never reaches cv_bridge
        decode(Image(height=4, width=6, encoding="rgb8", step=5, data=bytes(72)))
