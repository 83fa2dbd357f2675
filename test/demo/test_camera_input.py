"""The camera's INPUT mode: frames from a video file or an image folder, with given or default intrinsics."""
import cv2
import numpy as np
import pytest

from hand_object_pose.ros.image_codec import depth_to_metres
from hand_object_pose.ros.synthetic_camera import FrameSource, default_intrinsics, depth_fields


def _frames(count=5, width=64, height=48):
    return [np.full((height, width, 3), 40 * i, np.uint8) for i in range(count)]


def test_image_folder_in_name_order_with_default_intrinsics(tmp_path):
    for i, frame in enumerate(_frames()):
        cv2.imwrite(str(tmp_path / f"img_{i:02d}.png"), frame)
    (tmp_path / "notes.txt").write_text("not an image")
    source = FrameSource(str(tmp_path))
    assert source.kind == "images" and source.size == (64, 48)
    assert np.allclose(source.K, [[51.2, 0, 31.5], [0, 51.2, 23.5], [0, 0, 1]])
    frames = list(source.frames())
    assert source.frame_count() == 5
    assert [f[0][0, 0, 0] for f in frames] == [0, 40, 80, 120, 160]
    assert all(depth is None and truth is None for _, depth, truth in frames)


def test_video_file_with_given_intrinsics_and_frame_limit(tmp_path):
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48))
    for frame in _frames():
        writer.write(frame)
    writer.release()
    source = FrameSource(str(path), fx=100.0, fy=110.0, cx=30.0, cy=20.0, max_frames=3)
    assert source.kind == "video" and source.size == (64, 48)
    assert np.allclose(source.K, [[100, 0, 30], [0, 110, 20], [0, 0, 1]])
    frames = list(source.frames())
    assert len(frames) == source.frame_count() == 3
    assert frames[2][0].shape == (48, 64, 3) and abs(int(frames[2][0].mean()) - 80) < 8   # lossy codec
    assert len(list(FrameSource(str(path)).frames())) == 5


def test_default_intrinsics_rule():
    K = default_intrinsics(640, 480)
    assert K[0, 0] == K[1, 1] == 512.0 and (K[0, 2], K[1, 2]) == (319.5, 239.5)
    assert default_intrinsics(640, 480, fx=600.0)[1, 1] == 600.0   # fy follows a given fx


def test_bad_inputs_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        FrameSource(str(tmp_path / "missing.mp4"))
    with pytest.raises(ValueError, match="holds no"):
        FrameSource(str(tmp_path))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video")
    with pytest.raises(ValueError, match="not a video"):
        FrameSource(str(junk))


@pytest.mark.parametrize("encoding", ["16UC1", "32FC1"])
def test_depth_is_published_in_either_encoding_and_decodes_to_metres(encoding):
    class Msg:   # the Image fields the decoder reads
        pass
    depth_mm = np.array([[0, 500], [1234, 65535]], np.uint16)
    msg = Msg()
    for key, value in depth_fields(depth_mm, encoding).items():
        setattr(msg, key, value)
    assert msg.encoding == encoding
    metres = depth_to_metres(msg)
    assert np.isnan(metres[0, 0])                 # 0 = no depth, in both encodings
    assert np.allclose(metres[[0, 1, 1], [1, 0, 1]], [0.5, 1.234, 65.535])
