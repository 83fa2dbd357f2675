"""The demo's recorder node: collects the pose node's results and writes overlays, a video and a summary.

Run: `python -m hand_object_pose.ros.recorder --ros-args -p output_dir:=demo_out -p frames_log:=demo_out/frames.jsonl`

Subscribes to `image` + `camera_info` (the camera's frames, to draw on), `hand_object_poses`, `markers`
(hand meshes, drawn as silhouettes) and `/diagnostics` (the node's own counters). While running it only
stores what arrives (callbacks stay cheap); on shutdown (SIGINT) it writes into `output_dir`:

- `overlays/overlay_<frame>.png`: the frame with each estimated hand's mesh silhouette, skeleton and crop
  box (right blue, left orange; `ros.overlay.draw_overlay`), object axes, the ground-truth skeletons
  thin and white when known, and a caption (frame, latency, untrained warning);
- `demo.mp4`: the overlays as a video;
- `results.jsonl`: every result (stamp, frame index, hands, objects, stage timings), one JSON line each;
- `summary.json` and `summary.txt` (the table printed on stdout): frames in/out/dropped, latency
  percentiles per stage and end to end, backend, accuracy against the ground truth in `frames_log`
  (JSON lines written by the camera: stamp_ns, index, truth), `model_trained`.

Accuracy (only frames with ground truth; the estimate and the truth are paired by exact stamp), scored by
the evaluation package exactly as the evaluation CLI scores a dataset (`evaluation.report.
HandObjectAccumulator.add_frame`): root-relative MPJPE per hand (mm, frames where the hand is in the truth
and estimated present), MRRPE (mm, both hands), hand-presence accuracy (estimated present == in the truth,
per frame and side), object translation error (mm) and rotation error (degrees, the smallest over the
object's symmetries), each truth object compared with the estimated object of the same catalogue id.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from transforms3d.quaternions import quat2mat
from visualization_msgs.msg import Marker, MarkerArray

from hand_object_pose.datasets.sample import HandLabel, ObjectLabel
from hand_object_pose.evaluation.report import HandObjectAccumulator
from hand_object_pose.geometry.camera import project_points
from hand_object_pose.geometry.skeleton import BONES
from hand_object_pose.inference.result import HandEstimate, HandObjectEstimate, ObjectEstimate
from hand_object_pose.msg import HandObjectPoses
from hand_object_pose.ros.image_codec import image_to_rgb
from hand_object_pose.ros.overlay import draw_overlay
from hand_object_pose.ros.shutdown import release_node, shutdown_context

SIDES = ("right", "left")
MESH_COLOURS = {"right": (51, 153, 255), "left": (255, 128, 26)}   # RGB, as the skeletons (ros/overlay.py)
UNTRAINED_NOTE = "UNTRAINED (random) weights: poses are meaningless"


# --- messages -> plain data ------------------------------------------------------------------------

def stamp_ns(header) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def estimate_from_msg(msg) -> HandObjectEstimate:
    """HandObjectPoses -> HandObjectEstimate (what `draw_overlay` and the metrics take)."""
    hands = []
    for hand in msg.hands:
        joints = np.array([[p.x, p.y, p.z] for p in hand.joints], np.float64).reshape(-1, 3)
        uv = np.asarray(hand.keypoints_2d, np.float64).reshape(-1, 2)
        roi = hand.roi
        box = np.array([roi.x_offset, roi.y_offset, roi.width, roi.height], np.float64) if roi.width else None
        hands.append(HandEstimate(side=SIDES[hand.side] if hand.side < 2 else "unknown", present=bool(hand.present),
                                  confidence=float(hand.confidence), joints_xyz=joints, joints_uv=uv,
                                  joint_confidence=np.asarray(hand.joint_confidence, np.float64), crop_box=box))
    objects = []
    for obj in msg.objects:
        q, p = obj.pose.orientation, obj.pose.position
        objects.append(ObjectEstimate(object_id=obj.object_id, confidence=float(obj.confidence),
                                      rotation=quat2mat([q.w, q.x, q.y, q.z]), translation=np.array([p.x, p.y, p.z])))
    return HandObjectEstimate(hands=hands, objects=objects, model=msg.model, backend=msg.backend,
                              timings_ms={t.stage: float(t.milliseconds) for t in msg.timings})


def mesh_triangles(markers) -> dict:
    """{side: (T, 3, 3) triangle corners in metres, camera frame} from the `<side>_hand/mesh` TRIANGLE_LISTs."""
    meshes = {}
    for marker in markers:
        side = marker.ns.split("_hand/")[0]
        if marker.ns.endswith("/mesh") and side in SIDES and marker.type == Marker.TRIANGLE_LIST and marker.points:
            points = np.array([[p.x, p.y, p.z] for p in marker.points], np.float64)
            meshes[side] = points[: len(points) // 3 * 3].reshape(-1, 3, 3)
    return meshes


def estimate_record(stamp: int, index, estimate: HandObjectEstimate) -> dict:
    """One line of results.jsonl: the frame's stamp and index, each hand and object (metres, pixels)."""
    return {"stamp_ns": stamp, "index": index,
            "hands": [{"side": h.side, "present": h.present, "confidence": round(h.confidence, 4),
                       "joints_xyz": np.round(h.joints_xyz, 5).tolist(), "joints_uv": np.round(h.joints_uv, 2).tolist()}
                      for h in estimate.hands],
            "objects": [{"object_id": o.object_id, "rotation": np.round(o.rotation, 6).tolist(),
                         "translation": np.round(o.translation, 5).tolist()} for o in estimate.objects],
            "timings_ms": estimate.timings_ms}


# --- metrics: the evaluation package's, on the camera's ground truth ---------------------------------

def truth_labels(truth: dict) -> tuple:
    """(hands {side: HandLabel}, objects [ObjectLabel]) of one frame's ground truth in the frames log
    (`synthetic.sequence.FrameTruth.to_json()` layout: metres, camera frame, canonical joint order)."""
    hands = {side: HandLabel(side, hand["joints_cam"], np.ones(21, bool)) for side, hand in truth["hands"].items()}
    objects = [ObjectLabel(o["object_id"], np.asarray(o["rotation"], np.float64),
                           np.asarray(o["translation"], np.float64), symmetry=o.get("symmetry"))
               for o in truth["objects"]]
    return hands, objects


def accuracy_summary(accumulator: HandObjectAccumulator, frames_evaluated: int) -> Optional[dict]:
    """The summary's `accuracy` block from the frames scored into `accumulator`; None without any."""
    if not frames_evaluated:
        return None
    scores = accumulator.summary()
    objects = scores.get("objects", {})
    return {
        "frames_evaluated": frames_evaluated,
        "mpjpe_mm": {side: scores["hands"].get(side, {}).get("mpjpe_mm") for side in SIDES},
        "hands_scored": {side: scores["counts"][f"{side}_hands"] for side in SIDES},
        "mrrpe_mm": scores.get("mrrpe_mm"),
        "hand_presence_accuracy": scores.get("hand_presence_accuracy"),
        "object_translation_error_mm": objects.get("translation_error_mm"),
        "object_rotation_error_deg": objects.get("rotation_error_deg"),
        "objects_scored": scores["counts"].get("objects", 0),
        "objects_missed": scores["counts"].get("objects_missed", 0),
    }


def percentiles(values) -> Optional[dict]:
    values = np.asarray([v for v in values if math.isfinite(v)], np.float64)
    if values.size == 0:
        return None
    return {"p50": float(np.percentile(values, 50)), "p90": float(np.percentile(values, 90)),
            "p99": float(np.percentile(values, 99)), "mean": float(values.mean()), "n": int(values.size)}


# --- drawing ---------------------------------------------------------------------------------------

def draw_frame(rgb: np.ndarray, estimate: HandObjectEstimate, K: np.ndarray, meshes: dict, truth: Optional[dict],
               caption: list) -> np.ndarray:
    """Overlay of one result: mesh silhouettes (alpha 0.35), ground-truth skeletons (thin white), then the
    estimate (`ros.overlay.draw_overlay`) and a caption, one text line per entry."""
    canvas = rgb.copy()
    for side, triangles in meshes.items():
        if not np.all(triangles[..., 2] > 1e-3):
            continue
        uv = np.round(project_points(triangles, K)).astype(np.int32)
        mask = np.zeros(canvas.shape[:2], np.uint8)
        cv2.fillPoly(mask, list(uv), 255)
        tint = np.array(MESH_COLOURS[side], np.float32)
        canvas[mask > 0] = (0.65 * canvas[mask > 0] + 0.35 * tint).astype(np.uint8)
    if truth is not None:
        for hand in truth["hands"].values():
            uv = np.asarray(hand["joints_2d"], np.float64)
            for a, b in BONES:
                cv2.line(canvas, tuple(int(v) for v in uv[a]), tuple(int(v) for v in uv[b]), (255, 255, 255), 1,
                         cv2.LINE_AA)
        for obj in truth["objects"]:   # thin white object axes, 5 cm (the estimate's are coloured)
            R, t = np.asarray(obj["rotation"], np.float64), np.asarray(obj["translation"], np.float64)
            ends = np.vstack([t, t + 0.05 * R.T])
            if np.all(ends[:, 2] > 1e-3):
                uv = np.round(project_points(ends, K)).astype(int)
                for end in uv[1:]:
                    cv2.line(canvas, tuple(uv[0]), tuple(end), (255, 255, 255), 1, cv2.LINE_AA)
    canvas = draw_overlay(canvas, estimate, K)
    for row, text in enumerate(caption):
        (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        top = 4 + 20 * row
        cv2.rectangle(canvas, (4, top), (12 + width, top + height + baseline + 6), (0, 0, 0), -1)
        cv2.putText(canvas, text, (8, top + height + 3), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return canvas


def write_video(path: Path, frames: list, fps: float) -> int:
    """mp4 (mp4v) of RGB frames; returns the number of frames written."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"cannot open a video writer for {path}")
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return len(frames)


# --- summary ---------------------------------------------------------------------------------------

def _fmt(value, unit="", digits=1) -> str:
    return "n/a" if value is None or (isinstance(value, float) and not math.isfinite(value)) \
        else f"{value:.{digits}f}{unit}"


def summary_table(summary: dict) -> str:
    """A readable text table of `summary`."""
    lines = ["", "=" * 66, "hand_object_pose demo summary", "=" * 66]
    if not summary["model_trained"]:
        lines += ["!! " + UNTRAINED_NOTE, "!! the accuracy numbers below measure an untrained network", "-" * 66]
    lines += [f"model            {summary['model']} ({summary['model_path'] or 'n/a'})",
              f"backend          {summary['backend']}",
              f"input            {summary['input']}",
              f"frames           in {summary['frames_in']}, out {summary['frames_out']}, "
              f"dropped {summary['dropped']} (newest-frame policy)",
              f"output rate      {_fmt(summary['output_rate_hz'], ' Hz')}"]
    tf = summary.get("tf_frames")
    lines.append("TF frames        " + ("n/a (tf2_msgs not importable here)" if tf is None else
                                        ", ".join(f"{k} x{v}" for k, v in sorted(tf.items())) or "none received"))
    markers = summary.get("marker_namespaces") or {}
    lines.append("markers          " + (", ".join(f"{k} x{v}" for k, v in sorted(markers.items())) or "none received"))
    lat = summary["latency_ms"]
    lines.append(f"{'latency (ms)':<17}{'p50':>9}{'p90':>9}{'p99':>9}")
    for name, stats in [("end to end", lat["end_to_end"]), ("in node", lat["node"])] + \
            [(f"stage {k}", v) for k, v in lat["stages"].items()]:
        if stats:
            lines.append(f"  {name:<15}{stats['p50']:>9.1f}{stats['p90']:>9.1f}{stats['p99']:>9.1f}")
    acc = summary["accuracy"]
    if acc is None:
        lines.append("accuracy         n/a (no ground truth for this input)")
    else:
        presence = acc["hand_presence_accuracy"]
        lines += [f"accuracy over {acc['frames_evaluated']} frames with ground truth:",
                  f"  MPJPE right     {_fmt(acc['mpjpe_mm']['right'], ' mm')} ({acc['hands_scored']['right']} frames)",
                  f"  MPJPE left      {_fmt(acc['mpjpe_mm']['left'], ' mm')} ({acc['hands_scored']['left']} frames)",
                  f"  MRRPE           {_fmt(acc['mrrpe_mm'], ' mm')}",
                  f"  hand presence   {_fmt(None if presence is None else 100 * presence, ' %')}",
                  f"  object transl.  {_fmt(acc['object_translation_error_mm'], ' mm')}",
                  f"  object rotation {_fmt(acc['object_rotation_error_deg'], ' deg')}"]
    lines += [f"outputs          {summary['output_dir']}: {summary['overlays_written']} overlays, "
              f"{summary['video'] or 'no video'} ({summary['video_frames']} frames)", "=" * 66, ""]
    return "\n".join(lines)


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


# --- the node --------------------------------------------------------------------------------------

class Recorder(Node):
    def __init__(self):
        super().__init__("demo_recorder")
        self.output_dir = Path(self.declare_parameter("output_dir", "demo_out").value)
        self.frames_log = self.declare_parameter("frames_log", "").value
        self.model_trained = bool(self.declare_parameter("model_trained", False).value)
        self.model_path = self.declare_parameter("model_path", "").value
        self.input_name = self.declare_parameter("input", "").value
        self.video_fps = float(self.declare_parameter("video_fps", 5.0).value)
        self.max_images = int(self.declare_parameter("max_images", 60).value)
        reliable = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50, reliability=ReliabilityPolicy.RELIABLE)
        # Frames waiting for a result (bounded), and the frames that got one, PNG-encoded (a long INPUT video
        # must not fill the memory with raw frames).
        self.images: dict[int, np.ndarray] = {}
        self.kept_images: dict[int, bytes] = {}
        # Results whose frame has not arrived yet: the topics are delivered independently, and on a loaded
        # machine a result can overtake its (much larger) image.
        self.awaiting_image: set[int] = set()
        self.images_received = 0
        self.tf_frames: dict[str, int] = {}
        self.marker_namespaces: dict[str, int] = {}
        self.camera_k: dict[int, np.ndarray] = {}
        self.results: list[tuple[int, float, object]] = []      # (stamp ns, receive time ns, message)
        self.meshes: dict[int, dict] = {}
        self.diagnostics: dict[str, str] = {}
        self.create_subscription(Image, "image", self._on_image, reliable)
        self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, reliable)
        self.create_subscription(HandObjectPoses, "hand_object_poses", self._on_result, reliable)
        self.create_subscription(MarkerArray, "markers", self._on_markers, reliable)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, reliable)
        try:   # tf2_msgs: a ROS install, or the fixture `make msgs` builds; without it TF is not counted
            from tf2_msgs.msg import TFMessage
        except ImportError:
            self.tf_frames = None
        else:
            self.create_subscription(TFMessage, "/tf", self._on_tf,
                                     QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                                                reliability=ReliabilityPolicy.RELIABLE))

    def _on_image(self, msg) -> None:
        self.images_received += 1
        stamp = stamp_ns(msg.header)
        if stamp in self.awaiting_image:   # its result came first
            self.awaiting_image.discard(stamp)
            self._store_png(stamp, image_to_rgb(msg))
            return
        self.images[stamp] = image_to_rgb(msg)
        while len(self.images) > self.max_images:   # oldest first (dicts keep insertion order)
            self.images.pop(next(iter(self.images)))

    def _keep_image(self, stamp: int) -> None:
        """Keep the result's frame (PNG, fast compression), or wait for it if the result overtook it; forget
        older frames: results come in stamp order, so those will never get one."""
        image = self.images.pop(stamp, None)
        for old in [s for s in self.images if s < stamp]:
            del self.images[old]
        if image is None:
            self.awaiting_image.add(stamp)
        else:
            self._store_png(stamp, image)

    def _store_png(self, stamp: int, image: np.ndarray) -> None:
        ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if ok:
            self.kept_images[stamp] = png.tobytes()

    def _on_tf(self, msg) -> None:
        for transform in msg.transforms:
            self.tf_frames[transform.child_frame_id] = self.tf_frames.get(transform.child_frame_id, 0) + 1

    def _on_camera_info(self, msg) -> None:
        self.camera_k[stamp_ns(msg.header)] = np.asarray(msg.k, np.float64).reshape(3, 3)

    def _on_result(self, msg) -> None:
        received = self.get_clock().now().nanoseconds
        stamp = stamp_ns(msg.header)
        self.results.append((stamp, received, msg))
        self._keep_image(stamp)
        print(f"recorder: result stamp_ns={stamp} hands={sum(h.present for h in msg.hands)} "
              f"objects={len(msg.objects)}", flush=True)

    def _on_markers(self, msg) -> None:
        for marker in msg.markers:
            if marker.action == Marker.ADD:
                self.marker_namespaces[marker.ns] = self.marker_namespaces.get(marker.ns, 0) + 1
        meshes = mesh_triangles(msg.markers)
        if meshes and msg.markers:
            self.meshes.setdefault(stamp_ns(msg.markers[0].header), {}).update(meshes)

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status.name.startswith("hand_object_pose"):
                self.diagnostics = {kv.key: kv.value for kv in status.values}

    # --- outputs -----------------------------------------------------------------------------------

    def _read_frames_log(self) -> dict:
        if not self.frames_log or not Path(self.frames_log).is_file():
            return {}
        entries = [json.loads(line) for line in Path(self.frames_log).read_text().splitlines() if line.strip()]
        return {e["stamp_ns"]: e for e in entries}

    def finish(self) -> dict:
        """Write overlays, video, summary.json and summary.txt; returns the summary."""
        frames = self._read_frames_log()
        overlay_dir = self.output_dir / "overlays"
        overlay_dir.mkdir(parents=True, exist_ok=True)
        end_to_end, node_latency, stages, rendered, estimates = [], [], {}, [], []
        accuracy, frames_scored = HandObjectAccumulator(), 0
        backend, model = "", ""
        for stamp, received, msg in self.results:
            estimate = estimate_from_msg(msg)
            backend, model = msg.backend, msg.model
            end_to_end.append((received - stamp) / 1e6)
            node_latency.append(float(msg.latency_ms))
            for stage, ms in estimate.timings_ms.items():
                stages.setdefault(stage, []).append(ms)
            entry = frames.get(stamp, {})
            truth = entry.get("truth")
            estimates.append(estimate_record(stamp, entry.get("index"), estimate))
            if truth is not None:
                accuracy.add_frame(estimate, *truth_labels(truth))
                frames_scored += 1
            png, K = self.kept_images.get(stamp), self.camera_k.get(stamp)
            if png is None or K is None:
                continue
            image = cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            caption = [f"frame {entry.get('index', '?')}  latency {(received - stamp) / 1e6:.0f} ms  "
                       f"{model} on {backend}"]
            if truth is not None:
                caption.append("estimate: right blue, left orange; ground truth: white")
            if not self.model_trained:
                caption.append(UNTRAINED_NOTE)
            overlay = draw_frame(image, estimate, K, self.meshes.get(stamp, {}), truth, caption)
            cv2.imwrite(str(overlay_dir / f"overlay_{entry.get('index', len(rendered)):06d}.png"),
                        cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))
            rendered.append(overlay)
        (self.output_dir / "results.jsonl").write_text("".join(json.dumps(e) + "\n" for e in estimates))
        video = self.output_dir / "demo.mp4"
        video_frames = write_video(video, rendered, self.video_fps) if rendered else 0
        span_s = (self.results[-1][1] - self.results[0][1]) / 1e9 if len(self.results) > 1 else 0.0
        frames_in = len(frames) if frames else self.images_received
        summary = {
            "model": model, "model_path": self.model_path, "model_trained": self.model_trained,
            "backend": backend, "input": self.input_name,
            "frames_in": frames_in, "frames_out": len(self.results), "dropped": frames_in - len(self.results),
            "node_diagnostics": self.diagnostics,
            "tf_frames": self.tf_frames, "marker_namespaces": self.marker_namespaces,
            "output_rate_hz": (len(self.results) - 1) / span_s if span_s > 0 else None,
            "latency_ms": {"end_to_end": percentiles(end_to_end), "node": percentiles(node_latency),
                           "stages": {k: percentiles(v) for k, v in stages.items()}},
            "accuracy": accuracy_summary(accuracy, frames_scored),
            "output_dir": str(self.output_dir), "overlays_written": len(rendered),
            "video": str(video) if video_frames else None, "video_frames": video_frames,
        }
        summary = _json_safe(summary)
        (self.output_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        table = summary_table(summary)
        (self.output_dir / "summary.txt").write_text(table)
        print(table, flush=True)
        return summary


def main(argv=None) -> int:
    rclpy.init(args=argv if argv is not None else sys.argv)
    node = Recorder()
    print("recorder: ready", flush=True)
    signalled = False
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        signalled = True
    try:
        started = time.monotonic()
        node.finish()
        print(f"recorder: wrote outputs in {time.monotonic() - started:.1f} s", flush=True)
        return 0
    finally:
        release_node(node, stopped_by_signal=signalled)
        shutdown_context()


if __name__ == "__main__":
    sys.exit(main())
