"""The pose node as a subprocess (plain entry point) and a camera-like test peer, for the end-to-end tests.

The node runs a real `Estimator`: the Keypoint Transformer ResNet-18 preset with random weights on
the torch CPU backend (no trained weights can be shipped with the tests; the node's job is plumbing,
which random weights exercise just as well) and presence_threshold 0 so that hands are "present"
(plausibility_checks off: random-weight joints are not a possible hand, test_node_hardening checks that).
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import yaml
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, RegionOfInterest
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from hand_object_pose.msg import HandObjectPoses
from hand_object_pose.ros.image_codec import array_to_image_fields
from hand_object_pose.ros.inputs import stamp_ns
from ros_test_helpers import REPO_ROOT, start_python, stop_process, wait_for_publishers, wait_for_subscribers, wait_until

OPTICAL_FRAME = "test_camera_optical_frame"
WIDTH, HEIGHT = 320, 240
K = (300.0, 0.0, 160.0, 0.0, 300.0, 120.0, 0.0, 0.0, 1.0)

NODE_TEST_PARAMETERS = dict(
    backend="torch", model_path="", allow_random_weights=True, providers=["cpu"], threads=1, warmup_runs=0,
    presence_threshold=0.0, object_catalogue=str(REPO_ROOT / "config" / "objects.yaml"), object_id="025_mug",
    crop_source="full", diagnostics_period_s=0.2, mesh_marker_rate_hz=100.0, plausibility_checks=False)


def write_params(directory: Path, **changes) -> Path:
    """config/kpt_ho3d_3d_r18.yaml with the test parameters and `changes` applied."""
    data = yaml.safe_load((REPO_ROOT / "config" / "kpt_ho3d_3d_r18.yaml").read_text())
    data["/**"]["ros__parameters"].update(NODE_TEST_PARAMETERS, **changes)
    path = directory / "pose_node_params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class NodeProcess:
    """`python -m hand_object_pose.ros.pose_node --ros-args --params-file ...`, output collected."""

    def __init__(self, params_file: Path, env: dict, extra_ros_args: tuple = ()):
        self.proc = start_python(["-m", "hand_object_pose.ros.pose_node", "--ros-args", "--params-file",
                                  str(params_file), *extra_ros_args], env)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_ready(self, timeout: float = 120.0) -> None:
        def ready():
            if self.proc.poll() is not None:
                self._reader.join(5.0)
                raise AssertionError(f"the node exited with {self.proc.returncode}:\n{self.output}")
            return any("ready:" in line for line in self.lines)
        wait_until(ready, timeout, "the pose node to start", poll=0.05)

    def count(self, text: str) -> int:
        return sum(text in line for line in self.lines)

    def stop(self) -> int:
        stop_process(self.proc, timeout=15.0)
        self._reader.join(5.0)
        return self.proc.returncode


def failed_starts(tmp_path: Path, starts: dict, env: dict) -> dict:
    """Start one node per entry of `starts` ({name: (params changes, extra ros args)}) together (their imports
    overlap), wait for each to exit and stop them all whatever failed. Returns {name: (exit status, the
    `hand_object_pose: error:` lines, the NodeProcess)}."""
    processes = {}
    for name, (changes, extra_args) in starts.items():
        directory = tmp_path / name
        directory.mkdir()
        processes[name] = NodeProcess(write_params(directory, **changes), env, tuple(extra_args))
    try:
        for proc in processes.values():
            proc.proc.wait(timeout=120)
    finally:   # every process ends, whatever failed
        codes = {name: proc.stop() for name, proc in processes.items()}
    return {name: (codes[name], [line for line in proc.lines if line.startswith("hand_object_pose: error:")], proc)
            for name, proc in processes.items()}


def scene_image(seed: int = 0) -> np.ndarray:
    """A skin-coloured blob on a grey background, (HEIGHT, WIDTH, 3) uint8 RGB."""
    rng = np.random.default_rng(seed)
    image = np.full((HEIGHT, WIDTH, 3), 110, np.uint8)
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    blob = (xx - 160) ** 2 / 50 ** 2 + (yy - 120) ** 2 / 70 ** 2 < 1
    image[blob] = (220, 170, 140)
    return np.clip(image.astype(int) + rng.integers(-5, 6, image.shape), 0, 255).astype(np.uint8)


def header(stamp_ns: int, frame_id: str = OPTICAL_FRAME) -> Header:
    return Header(stamp=Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000), frame_id=frame_id)


def image_msg(stamp_ns: int, rgb: np.ndarray, encoding: str = "rgb8") -> Image:
    return Image(header=header(stamp_ns), **array_to_image_fields(rgb, encoding))


def camera_info_msg(stamp_ns: int, k=K) -> CameraInfo:
    info = CameraInfo(header=header(stamp_ns), width=WIDTH, height=HEIGHT, distortion_model="plumb_bob")
    info.k = list(k)
    info.p = [k[0], 0.0, k[2], 0.0, 0.0, k[4], k[5], 0.0, 0.0, 0.0, 1.0, 0.0]
    info.d = [0.0] * 5
    return info


def depth_msg(stamp_ns: int, depth_mm: np.ndarray) -> Image:
    return Image(header=header(stamp_ns), **array_to_image_fields(depth_mm.astype(np.uint16), "16UC1"))


def now_ns(node) -> int:
    return node.get_clock().now().nanoseconds


def sleep_until(t: float) -> None:
    """Pace a publisher (not a wait for a condition): sleep until monotonic time `t`."""
    delay = t - time.monotonic()
    if delay > 0:
        time.sleep(delay)


DEPTH_MM = 600
TF_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)


class Peer:
    """Camera publishers and output subscriptions in one test node; received messages are kept."""

    def __init__(self, session, with_tf: bool = True):
        node = session.node("camera_peer")
        self.node = node
        self.lock = threading.Lock()
        self.results, self.markers, self.tf, self.diagnostics, self.overlays = [], [], [], [], []
        self.image_pub = node.create_publisher(Image, "image", qos_profile_sensor_data)
        self.info_pub = node.create_publisher(CameraInfo, "camera_info", qos_profile_sensor_data)
        self.depth_pub = node.create_publisher(Image, "depth", qos_profile_sensor_data)
        self.roi_pub = node.create_publisher(RegionOfInterest, "roi", 1)
        keep = lambda store: (lambda msg: store.append(msg))  # noqa: E731
        self.subs = [node.create_subscription(HandObjectPoses, "hand_object_poses", keep(self.results), 50),
                     node.create_subscription(MarkerArray, "markers", keep(self.markers), 50),
                     node.create_subscription(DiagnosticArray, "/diagnostics", keep(self.diagnostics), 50)]
        if with_tf:
            from tf2_msgs.msg import TFMessage
            self.subs.append(node.create_subscription(TFMessage, "/tf", keep(self.tf), TF_QOS))

    def subscribe_overlay(self):
        self.subs.append(self.node.create_subscription(Image, "debug_image", lambda m: self.overlays.append(m), 5))

    def wait_matched(self, use_depth: bool):
        wait_for_subscribers(self.image_pub)
        wait_for_subscribers(self.info_pub)
        if use_depth:
            wait_for_subscribers(self.depth_pub)
        for sub in self.subs:
            wait_for_publishers(sub)

    def send(self, stamp, rgb=None, depth_mm=DEPTH_MM, info=True, info_first=True, image=None, depth=None,
             camera_info=None):
        image = image if image is not None else image_msg(stamp, rgb if rgb is not None else scene_image())
        camera_info = camera_info if camera_info is not None else camera_info_msg(stamp)
        if info and info_first:
            self.info_pub.publish(camera_info)
        self.image_pub.publish(image)
        if info and not info_first:
            self.info_pub.publish(camera_info)
        if depth is not None or depth_mm is not None:
            self.depth_pub.publish(depth if depth is not None else
                                   depth_msg(stamp, np.full((HEIGHT, WIDTH), depth_mm, np.uint16)))

    def result_for(self, stamp):
        return next((r for r in list(self.results) if stamp_ns(r.header.stamp) == stamp), None)

    def wait_result(self, stamp, timeout=30.0):
        wait_until(lambda: self.result_for(stamp) is not None, timeout, f"the result of the frame at {stamp}")
        return self.result_for(stamp)

    def latest_values(self) -> dict:
        if not self.diagnostics:
            return {}
        status = self.diagnostics[-1].status[0]
        return {kv.key: kv.value for kv in status.values}

    def wait_counter(self, key, minimum=1, timeout=20.0) -> dict:
        wait_until(lambda: int(float(self.latest_values().get(key, 0))) >= minimum, timeout, f"diagnostics {key}")
        return self.latest_values()
