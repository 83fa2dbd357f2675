"""Image/CameraInfo/depth pairing, the newest-frame slot, CameraInfo and ROI checks, stamps."""
import threading

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo, RegionOfInterest

from hand_object_pose.ros.frame_inputs import PublisherGaps
from hand_object_pose.ros.frame_slot import LatestFrameSlot
from hand_object_pose.ros.image_codec import ImageError
from hand_object_pose.ros.inputs import camera_intrinsics, clip_roi, stamp_ns
from hand_object_pose.ros.pairing import FramePairer

MS = 1_000_000


def test_image_waits_for_camera_info_with_the_exact_stamp():
    pairer = FramePairer(use_depth=False, slop_s=0.02)
    assert pairer.add_image(100 * MS, "img100") is None
    assert "camera_info with exactly the same stamp" in pairer.waiting_for()
    assert pairer.add_camera_info(101 * MS, "info101") is None         # 1 ms off: not the same frame
    frame = pairer.add_camera_info(100 * MS, "info100")
    assert (frame.stamp_ns, frame.image, frame.camera_info, frame.depth) == (100 * MS, "img100", "info100", None)
    assert pairer.waiting_for() == ""


def test_camera_info_first_then_image():
    pairer = FramePairer(use_depth=False, slop_s=0.02)
    assert pairer.add_camera_info(5 * MS, "info") is None
    assert pairer.add_image(5 * MS, "img").image == "img"


def test_depth_within_slop_nearest_wins():
    pairer = FramePairer(use_depth=True, slop_s=0.010)
    pairer.add_camera_info(100 * MS, "info")
    assert pairer.add_image(100 * MS, "img") is None
    assert "depth image within 0.01 s" in pairer.waiting_for()
    assert pairer.add_depth(115 * MS, "too_far") is None
    assert pairer.add_depth(104 * MS, "near").depth == "near"


def test_completing_a_frame_drops_older_waiting_images():
    pairer = FramePairer(use_depth=False, slop_s=0.02)
    for t in (1, 2, 3):
        pairer.add_image(t * MS, f"img{t}")
    frame = pairer.add_camera_info(3 * MS, "info3")
    assert frame.image == "img3" and pairer.unpaired_images == 2
    assert pairer.add_camera_info(1 * MS, "info1") is None   # the superseded image is gone


def test_queues_are_bounded():
    pairer = FramePairer(use_depth=False, slop_s=0.02, keep=3)
    for t in range(10):
        pairer.add_image(t * MS, t)
    assert pairer.unpaired_images == 7                        # pushed out: counted, not lost silently
    assert pairer.add_camera_info(0, "old") is None           # evicted
    assert pairer.add_camera_info(9 * MS, "new").image == 9
    assert pairer.unpaired_images == 9 and pairer.waiting_images == 0   # 7 and 8 superseded by 9


def test_images_without_partners_expire_once():
    pairer = FramePairer(use_depth=False, slop_s=0.02)
    pairer.add_image(1 * MS, "img1", now_s=10.0)
    pairer.add_image(2 * MS, "img2", now_s=11.5)
    assert pairer.expire(2.0, now_s=11.9) == 0
    assert pairer.expire(2.0, now_s=12.1) == 1 and pairer.unpaired_images == 1      # img1 waited 2.1 s
    assert pairer.expire(2.0, now_s=14.0) == 1 and pairer.unpaired_images == 2
    assert pairer.expire(2.0, now_s=99.0) == 0 and pairer.waiting_images == 0
    assert pairer.add_camera_info(2 * MS, "info2") is None   # too late: already given up


def test_publisher_sequence_gaps_are_lost_images():
    gaps = PublisherGaps()
    seen = [gaps.lost({"publication_sequence_number": n}) for n in (5, 6, 9, 10, 3, 4, 0)]
    assert seen == [0, 0, 2, 0, 0, 0, 0]    # first sample: no baseline; back to 3: a new publisher; 0: unknown
    assert gaps.lost(None) == 0


def test_slot_keeps_only_the_newest_frame():
    slot = LatestFrameSlot()
    assert slot.put(1) is False
    assert slot.put(2) is True          # 1 was never taken: dropped
    assert slot.take(0.0) == 2 and slot.take(0.0) is None
    taken = []
    consumer = threading.Thread(target=lambda: taken.append(slot.take(5.0)))
    consumer.start()
    slot.put(3)
    consumer.join(5.0)
    assert taken == [3]
    slot.close()
    assert slot.take(5.0) is None       # returns at once after close


def camera_info(k=(500.0, 0, 320, 0, 500.0, 240, 0, 0, 1), width=640, height=480, d=(), model="plumb_bob"):
    info = CameraInfo(width=width, height=height, distortion_model=model)
    info.k = list(k)
    info.p = [k[0], 0.0, k[2], 0.0, 0.0, k[4], k[5], 0.0, 0.0, 0.0, 1.0, 0.0]
    info.d = list(d)
    return info


def test_intrinsics_from_camera_info_raw_and_rectified():
    cam = camera_intrinsics(camera_info(d=(0.1, 0.01, 0, 0, 0)), False, 640, 480)
    np.testing.assert_allclose(cam.matrix, [[500, 0, 320], [0, 500, 240], [0, 0, 1]])
    assert cam.has_distortion
    rect = camera_intrinsics(camera_info(d=(0.1, 0.01, 0, 0, 0)), True, 640, 480)
    assert not rect.has_distortion and rect.fx == 500.0


def test_all_zero_intrinsics_are_rejected():
    with pytest.raises(ImageError, match="all zeros: an uncalibrated camera.*expected finite fx > 0") as err:
        camera_intrinsics(camera_info(k=(0.0,) * 9), False, 640, 480)
    assert err.value.kind == "bad_camera_info"


def test_camera_info_of_another_size_is_rejected():
    with pytest.raises(ImageError, match="camera_info is for 640x480 images but the image is 320x240"):
        camera_intrinsics(camera_info(), False, 320, 240)
    camera_intrinsics(camera_info(width=0, height=0), False, 320, 240)  # size unknown: accepted


def test_unsupported_distortion_model_is_rejected():
    with pytest.raises(ImageError, match="equidistant"):
        camera_intrinsics(camera_info(d=(0.1, 0, 0, 0), model="equidistant"), False, 640, 480)


def roi(x, y, w, h):
    return RegionOfInterest(x_offset=x, y_offset=y, width=w, height=h)


def test_roi_checks():
    assert clip_roi(roi(10, 20, 100, 50), 640, 480) == ((10, 20, 100, 50), "")
    assert clip_roi(roi(0, 0, 0, 0), 640, 480) == (None, "")                   # ROS: full image
    box, problem = clip_roi(roi(600, 400, 100, 100), 640, 480)
    assert box == (600, 400, 40, 80) and "clipped" in problem
    box, problem = clip_roi(roi(700, 10, 50, 50), 640, 480)
    assert box is None and "outside the 640x480 image" in problem
    box, problem = clip_roi(roi(10, 10, 0, 50), 640, 480)
    assert box is None and "empty" in problem


def test_stamp_ns():
    assert stamp_ns(Time(sec=3, nanosec=5)) == 3_000_000_005
