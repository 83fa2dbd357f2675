"""The demo recorder pairs each result with its frame whichever of the two topics delivers first."""
import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from hand_object_pose.msg import HandObjectPoses
from hand_object_pose.ros.recorder import Recorder


def _messages(second: int):
    header = Header(stamp=Time(sec=second, nanosec=0), frame_id="camera")
    pixels = np.full((48, 64, 3), 40 * second, np.uint8)
    image = Image(header=header, height=48, width=64, encoding="rgb8", is_bigendian=0, step=64 * 3,
                  data=pixels.tobytes())
    info = CameraInfo(header=header, height=48, width=64, k=[50.0, 0.0, 32.0, 0.0, 50.0, 24.0, 0.0, 0.0, 1.0])
    result = HandObjectPoses(header=header, hands=[], objects=[], model="m", backend="b", timings=[], latency_ms=1.0)
    return image, info, result


def test_a_result_that_overtakes_its_image_still_gets_an_overlay(tmp_path):
    """On a loaded machine a result can arrive before its (much larger) image; the frame is kept when it comes
    (CI once wrote 2 overlays for 3 results)."""
    rclpy.init(args=["--ros-args", "-p", f"output_dir:={tmp_path}"])
    try:
        recorder = Recorder()
        try:
            image, info, result = _messages(1)        # in order
            recorder._on_image(image)
            recorder._on_camera_info(info)
            recorder._on_result(result)
            image, info, result = _messages(2)        # the result first
            recorder._on_result(result)
            recorder._on_camera_info(info)
            recorder._on_image(image)
            summary = recorder.finish()
        finally:
            recorder.destroy_node()
    finally:
        rclpy.try_shutdown()
    assert summary["frames_out"] == 2 and summary["overlays_written"] == 2
    assert len(list((tmp_path / "overlays").glob("overlay_*.png"))) == 2
