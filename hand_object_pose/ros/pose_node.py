"""The pose node: camera images in; hands, objects, markers, TF and diagnostics out.

A short adapter around `inference.Estimator`. Threads:
* the executor thread receives messages, pairs each image with its CameraInfo (and depth), and puts
  complete frames into a one-element slot (a newer frame replaces a pending one: counted as dropped);
* one worker thread takes the newest frame, decodes it, runs the estimator and publishes.
Every received image ends in exactly one counter (`ros.diagnostics`): out, dropped (replaced or
unpaired) or rejected (under its reason).

Topics (relative, remappable): in `image`, `camera_info`, `depth` (when use_depth), `roi`; out
`hand_object_poses`, `markers`, `debug_image` (only computed while subscribed), `/tf`, `/diagnostics`.
Every output carries the input image's header. Parameters: `ros.parameters`; docs: docs/ros.md.

Run: `python -m hand_object_pose.ros.pose_node --ros-args --params-file config/<preset>.yaml`.
Start-up errors (bad parameter, unknown preset, missing/corrupt model file) exit with status 2 and
one line on stderr. `--managed` runs it as a lifecycle node (`ros.managed_node`: the model loads on
configure, topics exist while active), `--managed --autostart` configures and activates it at once.
"""
from __future__ import annotations

import atexit
import faulthandler
import os
import sys
import threading
import time
import weakref

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.utilities import remove_ros_args
from sensor_msgs.msg import Image, RegionOfInterest
from visualization_msgs.msg import MarkerArray

from hand_object_pose.export.cache import resolve_model_path
from hand_object_pose.export.preset_export import ExportError
from hand_object_pose.geometry.hand_model_files import hand_model_file
from hand_object_pose.inference.catalogue import ObjectCatalogue
from hand_object_pose.inference.estimator import Estimator, InvalidInputError
from hand_object_pose.msg import HandObjectPoses, StageTiming
from hand_object_pose.ros.conversions import ObjectInfo, estimate_to_msg, known_objects, object_infos
from hand_object_pose.ros.diagnostics import NodeStats
from hand_object_pose.ros.frame_inputs import make_frame_inputs
from hand_object_pose.ros.frame_slot import LatestFrameSlot
from hand_object_pose.ros.image_codec import ImageError, array_to_image_fields, depth_to_metres, image_to_rgb
from hand_object_pose.ros.inputs import camera_intrinsics, clip_roi, stamp_ns
from hand_object_pose.ros.markers import MarkerBuilder
from hand_object_pose.ros.overlay import draw_overlay
from hand_object_pose.ros.parameters import ParameterError, check_command_line_overrides, declare_and_read
from hand_object_pose.ros.shutdown import release_node, shutdown_context
from hand_object_pose.ros.tf_output import TfOutput, estimate_transforms, frame_id_problem

NODE_NAME = "hand_object_pose"
LOG_PERIOD_S = 5.0          # each kind of input problem is logged at most once per period
PAIRING_TIMEOUT_S = 2.0     # warn when images arrive but no complete frame formed for this long
TIME_RESET_S = 1.0          # an image this much older than the previous one means the clock restarted (bag loop)
NO_HAND_HINT_FRAMES = 30    # results without any present hand after which the node says once why nothing shows


def _make_rgb_decoder():
    """The project's decoder, with cv_bridge (real ROS installs) for encodings it does not handle (Bayer)."""
    try:
        from cv_bridge import CvBridge, CvBridgeError
    except ImportError:
        return image_to_rgb
    bridge = CvBridge()

    def decode(msg):
        try:
            return image_to_rgb(msg)
        except ImageError as exc:
            if exc.kind != "unsupported_encoding":
                raise
            try:
                return np.ascontiguousarray(bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8"))
            except CvBridgeError:
                raise exc from None
    return decode


def int8_calibration(preset: str, mano_path: str = ""):
    """calibration(count, seed) -> [graph inputs of one crop]: hand crops rendered by the synthetic generator
    through the family's adapter, as the Estimator prepares a crop (as `tools.export_onnx --precision int8`)."""
    from hand_object_pose.inference.adapters import make_adapter
    from hand_object_pose.models.registry import get_preset
    from hand_object_pose.synthetic.calibration import hand_crops

    adapter = make_adapter(*get_preset(preset), mano_path)
    return lambda count, seed: [adapter.preprocess(crop) for crop in hand_crops(adapter.input_size, count, seed)]


class PoseNode(Node):
    """Declares and validates its parameters at construction; `start(estimator)` wires the topics."""

    def __init__(self, **node_kwargs):
        super().__init__(NODE_NAME, **node_kwargs)
        self.settings, self.estimator_config = declare_and_read(self, self._model_path_for)
        self.stats = NodeStats()
        self._last_log: dict = {}
        self._log_lock = threading.Lock()

    # ----- start-up -------------------------------------------------------------------------------
    def _model_path_for(self, values: dict, settings) -> str:
        """A weights-file model_path becomes its cached ONNX export (exported now on the first start); an fp32
        export with precision int8 becomes its cached int8 quantization (quantized now on the first start)."""
        try:
            return resolve_model_path(values, settings.model_cache_dir, ObjectCatalogue.template_paths_of,
                                      self.get_logger().info,
                                      lambda preset: int8_calibration(preset, values.get("mano_path", "")))
        except (ExportError, ValueError) as exc:
            raise ParameterError(f"parameter model_path={values.get('model_path')!r}: {exc}") from None

    def start(self, estimator) -> None:
        s = self.settings
        self._estimator = estimator
        self._detector_report: dict = {}   # the hand detector's report of the latest frame (crop_source detector)
        self._objects = object_infos(estimator.catalogue, s.object_frame_prefix)
        if estimator.catalogue is None and estimator.object_id:
            # No catalogue: the model's object is still reported and on TF under its id, without a mesh.
            self._objects = {estimator.object_id: ObjectInfo(estimator.object_id,
                                                             s.object_frame_prefix + estimator.object_id)}
        for info in self._objects.values():
            problem = frame_id_problem(info.tf_frame)
            if problem:
                raise ParameterError(f"object {info.object_id!r}: TF frame {info.tf_frame!r} {problem}")
        self._wrist_frames = {"right": s.right_wrist_frame, "left": s.left_wrist_frame}
        self._decode_rgb = _make_rgb_decoder()
        self._markers = MarkerBuilder(list(self._objects), s.mesh_marker_rate_hz)
        self._slot = LatestFrameSlot()
        self._last_image_ns = None
        self._last_frame_s = time.monotonic()
        self._last_image_s = None
        self._pending_roi = None
        self._roi_lock = threading.Lock()
        self._reset_tracking = threading.Event()
        self._stop = threading.Event()
        self._frames_without_hand = 0     # until the first present hand; then None (the hint is not needed)

        self._result_pub = self.create_publisher(HandObjectPoses, "hand_object_poses", 10)
        self._marker_pub = self.create_publisher(MarkerArray, "markers", 10) if s.publish_markers else None
        self._debug_pub = self.create_publisher(Image, "debug_image", 1)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._tf = TfOutput(self, s.publish_tf)

        image_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=s.image_depth,
                               reliability=ReliabilityPolicy.BEST_EFFORT if s.image_reliability == "best_effort"
                               else ReliabilityPolicy.RELIABLE)
        # CameraInfo follows the camera's QoS convention (sensor data); best effort also matches reliable publishers.
        info_qos = QoSProfile(depth=max(s.pairing_queue, qos_profile_sensor_data.depth),
                              reliability=qos_profile_sensor_data.reliability)
        self._inputs = make_frame_inputs(self, s.use_depth, s.sync_slop_s, s.pairing_queue, image_qos, info_qos,
                                         accept_image=self._accept_image, on_frame=self._offer,
                                         on_unpaired=self.stats.unpaired, on_lost=self.stats.lost)
        self.create_subscription(RegionOfInterest, "roi", self._on_roi, 1)
        self.create_timer(s.diagnostics_period_s, self._on_timer)

        self._worker = threading.Thread(target=self._work, name="pose_inference", daemon=True)
        self._worker.start()
        if estimator.hands_only:
            self.get_logger().info(
                f"model {estimator.model_name} estimates hands only"
                + (" (the offline hand detector, models/hand_detector)" if estimator.runs_on_hand_detector else "")
                + ": object poses need a pose network; choose one with model:=<preset> (kpt_*, occrobnet_*, "
                  "dma_*; ros2 launch) or --params-file config/<preset>.yaml, and its model_path (README.md, The networks)")
        self.get_logger().info(
            f"ready: model {estimator.model_name} on {estimator.backend_in_use} ({estimator.precision_in_use}); "
            + (f"object crops on {estimator.object_model_in_use}; " if estimator.object_model_in_use else "")
            + (f"coarse pass on {estimator.coarse_model_in_use}; " if estimator.coarse_model_in_use else "")
            + f"TF via {self._tf.path}; "
            f"pairing via {self._inputs.path}; "
            f"objects {list(self._objects) or 'none'}; depth {'on' if s.use_depth else 'off'}")

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Stop the worker (call before destroying the node). Returns False when it is still inside a frame
        after `timeout_s` (the node's publishers must then not be destroyed under it)."""
        if getattr(self, "_worker", None) is None:
            return True
        self._stop.set()
        self._slot.close()
        self._worker.join(timeout=timeout_s)
        if self._worker.is_alive():
            self.get_logger().warning(f"the inference thread did not finish its frame within {timeout_s:.0f} s "
                                      "of the stop; exiting without waiting for it")
            return False
        return True

    # ----- logging of input problems: one line per kind per LOG_PERIOD_S, every occurrence counted -------
    def _problem(self, kind: str, message: str, error: bool = False) -> None:
        """A problem worked around (the image is still processed): counted in errors.<kind>, logged."""
        self.stats.error(kind)
        self._log(kind, message, error)

    def _reject(self, kind: str, message: str, error: bool = False) -> None:
        """The image is not processed: counted in frames_rejected and errors.<kind>, logged."""
        self.stats.rejected(kind)
        self._log(kind, message, error)

    def _log(self, kind: str, message: str, error: bool = False) -> None:
        """One line per kind per LOG_PERIOD_S."""
        now = time.monotonic()
        with self._log_lock:
            if now - self._last_log.get(kind, -LOG_PERIOD_S) < LOG_PERIOD_S:
                return
            self._last_log[kind] = now
        log = self.get_logger().error if error else self.get_logger().warning
        log(f"[{kind}] {message}")

    # ----- executor thread ------------------------------------------------------------------------
    def _accept_image(self, msg: Image) -> bool:
        """Count every image; reject one not newer than the previous (a big jump back restarts tracking)."""
        stamp = stamp_ns(msg.header.stamp)
        self.stats.input()
        self._last_image_s = time.monotonic()
        if self._last_image_ns is not None and stamp <= self._last_image_ns:
            back_s = (self._last_image_ns - stamp) / 1e9
            if back_s > TIME_RESET_S:
                self._problem("time_jumped_back", f"image stamp jumped back by {back_s:.3f} s (bag loop or clock "
                              "reset?); tracking restarted")
                self._reset_tracking.set()
            else:
                self._reject("out_of_order", f"image stamp {stamp / 1e9:.6f} s is not newer than the previous "
                              f"image's {self._last_image_ns / 1e9:.6f} s; dropped (expected increasing stamps)")
                return False
        self._last_image_ns = stamp
        return True

    def _on_roi(self, msg: RegionOfInterest) -> None:
        with self._roi_lock:
            self._pending_roi = msg

    def _offer(self, frame) -> None:
        self._last_frame_s = time.monotonic()
        if self._slot.put(frame):
            self.stats.replaced()

    def _on_timer(self) -> None:
        now = time.monotonic()
        if self._last_image_s is not None and now - self._last_image_s < PAIRING_TIMEOUT_S \
                and now - self._last_frame_s > PAIRING_TIMEOUT_S:
            lacking = self._inputs.waiting_for() or "partners"
            topics = "'camera_info'" + (" / 'depth'" if self.settings.use_depth else "")
            # Logged only: the images themselves are counted (errors.unpaired_images) when given up.
            self._log("unpaired_images", f"images arrive but none formed a frame for {PAIRING_TIMEOUT_S:g} s: "
                          f"waiting for {lacking} (check that {topics} are published next to 'image', with the "
                          f"image's stamp)")
        self._inputs.expire(PAIRING_TIMEOUT_S)   # images whose partners never came: counted as unpaired
        status = self.stats.status(f"{self.get_name()}: hand/object pose", self.get_fully_qualified_name(),
                                   {"backend": self._estimator.backend_in_use, "model": self._estimator.model_name,
                                    "precision": self._estimator.precision_in_use,
                                    "cuda_graph": "on" if self._estimator.cuda_graph_in_use else "off",
                                    "object_model": self._estimator.object_model_in_use or "the model's own",
                                    "coarse_model": self._estimator.coarse_model_in_use or "the model",
                                    "tf_path": self._tf.path, "pairing": self._inputs.path,
                                    **self._detector_values()})
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(array)

    def _detector_values(self) -> dict:
        """The hand detector's diagnostics (empty without one): palm detector runs per second, frames
        without hands, and the latest frame's palm and per-hand detection scores."""
        report = self._detector_report
        if not report:
            return {}
        return {"detector.runs_per_s": float(report["detector_runs_per_s"]),
                "detector.frames_without_hands": int(report["frames_without_hands"]),
                "detector.palm_scores": ", ".join(f"{v:.2f}" for v in report["palm_scores"]) or "-",
                "detector.hand_scores": ", ".join(f"{side} {v:.2f}" for side, v in
                                                  report["detection_scores"].items()) or "-"}

    # ----- worker thread --------------------------------------------------------------------------
    def _work(self) -> None:
        while not self._stop.is_set():
            frame = self._slot.take(timeout_s=0.2)
            if frame is None:
                continue
            try:
                self._process(frame)
            except Exception as exc:  # keep serving later frames; the failure is counted and logged
                if self._stop.is_set() or not self.context.ok():
                    return   # stopping (a SIGINT shuts the context down first): the frame's results are dropped
                self._reject("processing_failure", f"{type(exc).__name__}: {exc}", error=True)

    def _take_roi(self, width: int, height: int):
        with self._roi_lock:
            msg, self._pending_roi = self._pending_roi, None
        if msg is None:
            return None
        roi, problem = clip_roi(msg, width, height)
        if problem:
            self._problem("roi_outside_image", problem)
        return roi

    def _decode_depth(self, msg, width: int, height: int):
        try:
            depth = depth_to_metres(msg)
        except ImageError as exc:
            self._problem(f"depth_{exc.kind}", f"depth image: {exc}; frame processed without depth")
            return None
        if depth.shape != (height, width):
            self._problem("depth_size_mismatch", f"depth image is {depth.shape[1]}x{depth.shape[0]} but the colour "
                          f"image is {width}x{height}; expected a depth image aligned to the colour image "
                          "(e.g. aligned_depth_to_color); frame processed without depth")
            return None
        if not np.isfinite(depth).any():
            self._problem("depth_no_valid_pixels", "depth image has no valid pixel (all 0, NaN or inf); the root "
                          "depth falls back to the 2D fit")
        return depth

    def _camera_info_frame_ok(self, image_frame: str, info_frame: str) -> bool:
        """A CameraInfo of another frame_id may hold another camera's intrinsics: counted and warned
        about; used or the frame rejected, as `camera_info_frame_policy` says."""
        if image_frame.lstrip("/") == info_frame.lstrip("/"):
            return True
        what = (f"camera_info frame_id {info_frame!r} differs from the image's {image_frame!r} (same stamp); "
                "expected the CameraInfo of this image's camera")
        if self.settings.camera_info_frame_policy == "reject":
            self._reject("camera_info_frame_mismatch", f"{what}; frame rejected (camera_info_frame_policy 'reject')")
            return False
        self._problem("camera_info_frame_mismatch", f"{what}; its intrinsics are used and the outputs carry the "
                      "image's frame_id (camera_info_frame_policy 'use'; 'reject' drops such frames)")
        return True

    def _process(self, frame) -> None:
        started = time.perf_counter()
        image, header = frame.image, frame.image.header
        try:
            rgb = self._decode_rgb(image)
            camera = camera_intrinsics(frame.camera_info, self.settings.use_rectified_intrinsics, rgb.shape[1],
                                       rgb.shape[0])
        except ImageError as exc:
            self._reject(exc.kind, str(exc))
            return
        if not self._camera_info_frame_ok(image.header.frame_id, frame.camera_info.header.frame_id):
            return
        height, width = rgb.shape[:2]
        depth = self._decode_depth(frame.depth, width, height) if frame.depth is not None else None
        roi = self._take_roi(width, height)
        decode_ms = (time.perf_counter() - started) * 1e3
        if self._reset_tracking.is_set():
            self._reset_tracking.clear()
            self._estimator.reset_tracking()
        try:
            estimate = self._estimator.estimate(rgb, camera, depth_m=depth, roi=roi, stamp_s=frame.stamp_ns * 1e-9)
        except InvalidInputError as exc:
            self._reject("invalid_input", str(exc))
            return
        model_ms = (time.perf_counter() - started) * 1e3 - decode_ms
        self._detector_report = estimate.detector
        for warning in estimate.warnings:
            self._problem("estimator_warning", warning)
        self._hint_if_no_hand_yet(estimate)
        for hand in estimate.hands:
            if hand.implausible:
                self._problem(f"implausible_hand_{hand.implausible}",
                              f"{hand.side} hand reported as not present: its joints are implausible "
                              f"({hand.implausible.replace('_', ' ')}; wrist at {np.round(hand.joints_xyz[0], 3).tolist()} m)")
        estimate.objects, unknown = known_objects(estimate, self._objects)
        for object_id in unknown:
            self._problem("unknown_object", f"object id {object_id!r} is not in the object catalogue "
                          f"(known: {list(self._objects)}); not published")
        latency_ms = self._publish(estimate, header, rgb, camera.matrix, decode_ms, started)
        self.stats.output(latency_ms, model_ms)

    def _hint_if_no_hand_yet(self, estimate) -> None:
        """Say once why nothing reaches TF and the markers when no hand has been present so far."""
        if self._frames_without_hand is None:
            return
        if any(hand.present for hand in estimate.hands):
            self._frames_without_hand = None
            return
        self._frames_without_hand += 1
        if self._frames_without_hand == NO_HAND_HINT_FRAMES:
            c = self._estimator.config
            weights = "RANDOM weights" if c.backend == "torch" and not c.model_path else repr(c.model_path)
            self.get_logger().warning(
                f"no hand has been present in the first {NO_HAND_HINT_FRAMES} frames, so nothing goes to TF or "
                f"the markers ('hand_object_poses' still comes with present=false). If hands are in view: the "
                f"model ({c.model}, {weights}) reports a presence below presence_threshold={c.presence_threshold:g} "
                "or implausible joints (errors.implausible_hand_* in /diagnostics); an untrained or random-weight "
                "network does that (no trained pose network is shipped yet, docs/demo.md); the shipped offline "
                "hand detector finds hands: --params-file config/hand_landmarks.yaml")

    def _publish(self, estimate, header, rgb, K, decode_ms: float, started: float) -> float:
        """Publish every output of one frame, the result first (consumers wait for it; markers, TF and the
        overlay are for people and tools); returns the latency (image stamp -> result publication), ms."""
        result = estimate_to_msg(estimate, header, self._objects, 0.0, {"decode": decode_ms})
        # node_total: decode + checks + estimator + message building, i.e. everything before publishing.
        result.timings.append(StageTiming(stage="node_total", milliseconds=(time.perf_counter() - started) * 1e3))
        latency_ms = (self.get_clock().now().nanoseconds - stamp_ns(header.stamp)) * 1e-6
        result.latency_ms = latency_ms
        self._result_pub.publish(result)
        if self._marker_pub is not None:
            self._marker_pub.publish(self._markers.build(estimate, header, self._objects, time.monotonic()))
        self._tf.send(estimate_transforms(estimate, header, self._wrist_frames, self._objects))
        if self._debug_pub.get_subscription_count() > 0:
            overlay = Image(header=header, **array_to_image_fields(draw_overlay(rgb, estimate, K), "rgb8"))
            self._debug_pub.publish(overlay)
        return latency_ms


def _stand_in_if_mano_missing(node: PoseNode) -> None:
    """MANO files are licensed and may be absent: fall back to the licence-free stand-in with a warning."""
    config = node.estimator_config
    path = config.mano_path
    if path and not all(hand_model_file(side, path).is_mano for side in ("right", "left")):
        node.get_logger().warning(
            f"mano_path {path!r} does not hold MANO_RIGHT.npz and MANO_LEFT.npz; using the licence-free stand-in "
            "hand (NOT MANO: meshes are approximate). Convert the official MANO pkl files to get MANO meshes.")
        config.mano_path = ""


def check_model_file(node: PoseNode) -> None:
    """A missing model file stops the node naming what is and is not there and how to get a working model;
    random weights with a presence threshold get a warning that no hand may ever be reported."""
    config = node.estimator_config
    if config.backend == "onnxruntime" and config.model_path and not os.path.isfile(config.model_path):
        default = os.path.normpath(config.model_path).split(os.sep)[:2] == ["models", "default"]
        raise ParameterError(
            f"parameter 'model_path': {config.model_path} does not exist"
            + (f"; no trained {config.model} network is shipped (models/default/ stays empty until one is "
               "trained, docs/demo.md)" if default else "")
            + ". Working options: the shipped offline hand detector (hands only): --params-file "
            "config/hand_landmarks.yaml; an official checkpoint (.pth.tar) as model_path, exported on the first "
            "start (docs/ros.md); or your own export (docs/export.md)")
    if config.backend == "torch" and not config.model_path and config.presence_threshold > 0.0:
        node.get_logger().warning(
            f"RANDOM weights (allow_random_weights): presence is meaningless and may never reach "
            f"presence_threshold={config.presence_threshold:g}, so no hand may ever be reported (set "
            "presence_threshold:=0.0 to see the pipeline's meaningless hands)")


def main(argv=None) -> int:
    """Plain entry point (`ros2 run hand_object_pose pose_node` calls it too). Returns the exit status."""
    args = argv if argv is not None else sys.argv
    try:
        rclpy.init(args=args)
    except Exception as exc:  # rcl's RCLError, e.g. a params file that is missing or not YAML
        print(f"{NODE_NAME}: error: cannot initialise ROS: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    node, executor, signalled = None, None, False
    try:
        options = remove_ros_args(args)[1:]
        if "--autostart" in options and "--managed" not in options:
            raise ParameterError("--autostart needs --managed (an unmanaged node always starts at once)")
        if "--managed" in options:
            from hand_object_pose.ros.managed_node import ManagedPoseNode
            node = ManagedPoseNode()
        else:
            node = PoseNode()
        check_command_line_overrides(node, args)
        _stand_in_if_mano_missing(node)
        if "--managed" not in options:
            check_model_file(node)
            node.start(Estimator(node.estimator_config))
        elif "--autostart" in options:
            problem = node.autostart()
            if problem:
                raise RuntimeError(problem)
        else:
            node.get_logger().info("managed node: unconfigured, waiting for the lifecycle transitions configure "
                                   "(loads the model) and activate (subscribes and publishes)")
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (ParameterError, ValueError, FileNotFoundError, RuntimeError) as exc:
        if node is not None and not rclpy.ok():
            # rclpy's SIGINT handler shuts the context down at once, so a callback that was publishing then
            # raises "publisher's context is invalid": part of a clean stop, not a failure.
            signalled = True
            return 0
        reason = " ".join(str(exc).split())
        print(f"{NODE_NAME}: error: {reason}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        signalled = True
    finally:
        if executor is not None:
            executor.shutdown()
        # The worker is stopped either way; a node it may still be publishing from is not destroyed under it.
        if node is not None and node.stop():
            release_node(node, stopped_by_signal=signalled)
        shutdown_context()
    return 0


def run() -> None:
    """The process entry point (`python -m`, scripts/pose_node, the console script): `main`, then an exit
    that skips the interpreter's teardown of native modules.

    Tearing down ONNX Runtime, torch and rcl objects in whatever order the interpreter's final garbage
    collection picks can crash a process whose work ended cleanly (a test saw exit -11 after a clean SIGINT
    stop); the exit handlers (log flushing) still run. faulthandler prints every thread's Python stack
    to stderr should a native library crash anyway."""
    faulthandler.enable()
    code = main()
    # Weakref finalizers tear down native state the process exit frees anyway; one crashed a cleanly stopped node
    # (exit -11 inside torch.library._del_library, seen once in CI). Skipped; the other exit handlers still run.
    atexit.unregister(weakref.finalize._exitfunc)
    atexit._run_exitfuncs()   # logging's flush among them
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
