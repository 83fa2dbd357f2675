"""A camera driver stand-in for the demo: replays a rendered synthetic sequence, a video file or an image
folder as `image` (rgb8) + `camera_info` (+ aligned `depth`) at a steady rate, then exits.

Run: `python -m hand_object_pose.ros.synthetic_camera --ros-args -p source:=demo_out/frames [-p rate_hz:=15.0]`

- `source` a directory written by `synthetic.sequence.render_sequence` (has sequence.json): colour,
  aligned depth (`depth_encoding` 16UC1 millimetres or 32FC1 metres, REP 118) and the sequence's
  intrinsics; each frame's ground truth goes to `frames_log`.
- `source` a video file (anything cv2.VideoCapture reads) or a folder of images (.png/.jpg/.jpeg/.bmp,
  sorted by name): colour only, intrinsics from `fx fy cx cy` or, when those are 0, the documented
  default fx = fy = 0.8 x width, principal point at the image centre ((width - 1) / 2, (height - 1) / 2).

Every message of a frame carries the same header: stamp = the ROS clock when the frame is published
(its acquisition time for everything downstream), frame_id = `frame_id`. Before streaming the node
waits (at most `wait_timeout_s`) until `wait_for_subscribers` readers are matched on `image`, so no
frame is published into the void. `frames_log` (JSON lines, one per published frame: stamp in ns,
frame index, ground truth or null) lets a recorder pair results with the truth by stamp.
The process prints `camera: done frames=N last_stamp_ns=S` and exits 0 after the last frame.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Iterator, Optional

import cv2
import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from hand_object_pose.ros.image_codec import array_to_image_fields
from hand_object_pose.ros.shutdown import release_node, shutdown_context
from hand_object_pose.synthetic.sequence import SEQUENCE_FILE, load_sequence

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
DEFAULT_FOCAL_RATIO = 0.8      # fx = fy = 0.8 x image width when no intrinsics are given


def default_intrinsics(width: int, height: int, fx: float = 0.0, fy: float = 0.0, cx: float = 0.0,
                       cy: float = 0.0) -> np.ndarray:
    """3x3 K from the given values; each value <= 0 takes its documented default."""
    fx = fx if fx > 0 else DEFAULT_FOCAL_RATIO * width
    fy = fy if fy > 0 else fx
    cx = cx if cx > 0 else (width - 1) / 2.0
    cy = cy if cy > 0 else (height - 1) / 2.0
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


class FrameSource:
    """Frames of one source: iterate `frames()` -> (rgb (H, W, 3) uint8, depth_mm (H, W) uint16 or None,
    ground truth dict or None). `K` (3, 3) and `size` (width, height) are known after construction."""

    def __init__(self, path: str, fx: float = 0.0, fy: float = 0.0, cx: float = 0.0, cy: float = 0.0,
                 max_frames: int = 0):
        self.path = Path(path)
        self.max_frames = max_frames
        self.sequence = None
        self.files: list[Path] = []
        if (self.path / SEQUENCE_FILE).is_file():
            self.kind = "synthetic"
            self.sequence = load_sequence(self.path)
            first = self.sequence.rgb(0)
            self.K = self.sequence.K
        elif self.path.is_dir():
            self.kind = "images"
            self.files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self.files:
                raise ValueError(f"image folder {self.path} holds no {'/'.join(IMAGE_SUFFIXES)} files")
            first = self._read_image(self.files[0])
        elif self.path.is_file():
            self.kind = "video"
            capture = cv2.VideoCapture(str(self.path))
            ok, frame = capture.read()
            capture.release()
            if not ok:
                raise ValueError(f"{self.path} is not a video OpenCV can read (and not an image folder or a "
                                 f"synthetic sequence directory)")
            first = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        else:
            raise FileNotFoundError(f"input {self.path} does not exist: expected a video file, an image folder or "
                                    f"a rendered sequence directory")
        self.size = (first.shape[1], first.shape[0])
        if self.sequence is None:
            self.K = default_intrinsics(*self.size, fx, fy, cx, cy)

    @staticmethod
    def _read_image(path: Path) -> np.ndarray:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"cannot read image {path}")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def frame_count(self) -> int:
        """Frames `frames()` will give (for a video, the count its container states)."""
        if self.kind == "synthetic":
            return self._limit(len(self.sequence))
        if self.kind == "images":
            return self._limit(len(self.files))
        capture = cv2.VideoCapture(str(self.path))
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        capture.release()
        return self._limit(max(count, 0))

    def _limit(self, count: int) -> int:
        return min(count, self.max_frames) if self.max_frames > 0 else count

    def frames(self) -> Iterator[tuple[np.ndarray, Optional[np.ndarray], Optional[dict]]]:
        if self.kind == "synthetic":
            for i in range(self._limit(len(self.sequence))):
                yield self.sequence.rgb(i), self.sequence.depth_mm(i), self.sequence.truths[i].to_json()
        elif self.kind == "images":
            for path in self.files[:self._limit(len(self.files))]:
                image = self._read_image(path)
                if (image.shape[1], image.shape[0]) != self.size:   # one camera: one size
                    image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
                yield image, None, None
        else:
            capture = cv2.VideoCapture(str(self.path))
            count = 0
            try:
                while self.max_frames <= 0 or count < self.max_frames:
                    ok, frame = capture.read()
                    if not ok:
                        break
                    count += 1
                    yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), None, None
            finally:
                capture.release()


def depth_fields(depth_mm: np.ndarray, encoding: str) -> dict:
    """Image fields of an aligned depth image: 16UC1 millimetres as rendered, or 32FC1 metres (0 -> NaN)."""
    if encoding == "16UC1":
        return array_to_image_fields(depth_mm, "16UC1")
    metres = depth_mm.astype(np.float32) * np.float32(0.001)
    metres[depth_mm == 0] = np.nan
    return array_to_image_fields(metres, "32FC1")


class SyntheticCamera(Node):
    def __init__(self):
        super().__init__("synthetic_camera")
        self.source_path = self.declare_parameter("source", "").value
        self.rate_hz = float(self.declare_parameter("rate_hz", 15.0).value)
        self.frame_id = self.declare_parameter("frame_id", "camera_color_optical_frame").value
        self.depth_encoding = self.declare_parameter("depth_encoding", "16UC1").value
        self.publish_depth = bool(self.declare_parameter("publish_depth", True).value)
        intrinsics = [float(self.declare_parameter(name, 0.0).value) for name in ("fx", "fy", "cx", "cy")]
        self.max_frames = int(self.declare_parameter("max_frames", 0).value)
        self.frames_log = self.declare_parameter("frames_log", "").value
        self.wait_for_subscribers = int(self.declare_parameter("wait_for_subscribers", 1).value)
        self.wait_timeout_s = float(self.declare_parameter("wait_timeout_s", 60.0).value)
        if not self.source_path:
            raise ValueError("parameter 'source' is empty: expected a rendered sequence directory, a video file "
                             "or an image folder")
        if not 0.1 <= self.rate_hz <= 1000.0:
            raise ValueError(f"parameter 'rate_hz' is out of range: expected 0.1 <= rate_hz <= 1000, "
                             f"got {self.rate_hz}")
        if self.depth_encoding not in ("16UC1", "32FC1"):
            raise ValueError(f"parameter 'depth_encoding' must be '16UC1' (mm) or '32FC1' (m), got "
                             f"{self.depth_encoding!r}")
        self.source = FrameSource(self.source_path, *intrinsics, max_frames=self.max_frames)
        # Reliable, a few deep: a best-effort reader (the pose node) still matches, and a recorder gets every frame.
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.image_pub = self.create_publisher(Image, "image", qos)
        self.info_pub = self.create_publisher(CameraInfo, "camera_info", qos)
        self.depth_pub = self.create_publisher(Image, "depth", qos) if self.publish_depth else None

    def camera_info(self, header: Header) -> CameraInfo:
        width, height = self.source.size
        K = self.source.K
        info = CameraInfo(header=header, width=width, height=height, distortion_model="plumb_bob")
        info.k = [float(v) for v in K.reshape(9)]
        info.p = [K[0, 0], 0.0, K[0, 2], 0.0, 0.0, K[1, 1], K[1, 2], 0.0, 0.0, 0.0, 1.0, 0.0]
        info.d = [0.0] * 5
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        return info

    def wait_for_readers(self) -> bool:
        deadline = time.monotonic() + self.wait_timeout_s
        while self.image_pub.get_subscription_count() < self.wait_for_subscribers:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def stream(self) -> tuple[int, int]:
        """Publish every frame at `rate_hz`; returns (frames published, last stamp in ns)."""
        log = open(self.frames_log, "w") if self.frames_log else None
        count, stamp_ns = 0, 0
        start = time.monotonic()
        try:
            for index, (rgb, depth_mm, truth) in enumerate(self.source.frames()):
                delay = start + index / self.rate_hz - time.monotonic()
                if delay > 0:
                    time.sleep(delay)   # pacing the stream, not waiting for a condition
                now = self.get_clock().now()
                stamp_ns = now.nanoseconds
                header = Header(stamp=now.to_msg(), frame_id=self.frame_id)
                if log is not None:   # written before publishing: the truth is on disk before any result
                    log.write(json.dumps({"stamp_ns": stamp_ns, "index": index, "truth": truth}) + "\n")
                    log.flush()
                self.info_pub.publish(self.camera_info(header))
                if self.depth_pub is not None and depth_mm is not None:
                    self.depth_pub.publish(Image(header=header, **depth_fields(depth_mm, self.depth_encoding)))
                self.image_pub.publish(Image(header=header, **array_to_image_fields(rgb, "rgb8")))
                count += 1
        finally:
            if log is not None:
                log.close()
        return count, stamp_ns


def main(argv=None) -> int:
    rclpy.init(args=argv if argv is not None else sys.argv)
    node, signalled = None, False
    try:
        node = SyntheticCamera()
        source = node.source
        print(f"camera: {source.kind} source {source.path}, {source.size[0]}x{source.size[1]}, "
              f"{node.rate_hz:g} Hz, {source.frame_count()} frames", flush=True)
        if not node.wait_for_readers():
            print(f"camera: error: fewer than {node.wait_for_subscribers} readers on "
                  f"{node.image_pub.topic_name} after {node.wait_timeout_s:g} s", file=sys.stderr, flush=True)
            return 3
        count, last_stamp = node.stream()
        time.sleep(0.5)   # let reliable readers take the last frames before the writers go away
        print(f"camera: done frames={count} last_stamp_ns={last_stamp}", flush=True)
        return 0 if count > 0 else 4
    except (ValueError, FileNotFoundError) as exc:
        print(f"camera: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        signalled = True
        return 130
    finally:
        release_node(node, stopped_by_signal=signalled)
        shutdown_context()


if __name__ == "__main__":
    sys.exit(main())
