"""`make demo`: a synthetic camera stream through the pose node, recorded as overlays, a video and numbers.

    python -m hand_object_pose.tools.demo [--input VIDEO_OR_FOLDER] [--model FILE.onnx --preset NAME]
                                          [--frames N] [--rate HZ] [--size WxH] [--out demo_out]

Steps (settings in config/demo/demo.yaml):
1. the model: `--model` (an .onnx; its preset from `--preset` or the metadata file beside it); with
   `--input` (the user's own footage) and no `--model`, or with `--preset hand_landmarks`, the offline
   hand detector shipped in models/hand_detector (MediaPipe's Apache-2.0 hand models; hands only, the
   launch file's default); else the trained default in models/default/ (an .onnx + metadata.json/.yaml
   naming its preset), else a randomly initialised network exported once to <out>/untrained_model/ --
   with a loud banner: its numbers are meaningless, and summary.json says `"model_trained": false`;
2. the frames: a smooth synthetic sequence rendered once into <out>/frames/ (reused while the settings
   stay the same), or `--input` (a video file or an image folder, default intrinsics, no depth);
3. three real ROS 2 processes, all with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, a free ROS_DOMAIN_ID
   and the large-SHM Fast DDS profile: the pose node (plain entry point, params file
   <out>/pose_node_params.yaml), the recorder, then the camera (which waits for both readers);
4. after the camera's last frame, waits (capped) until the recorder has the last frame's result, stops
   the recorder (it writes overlays/, demo.mp4, summary.json, summary.txt) and the node with SIGINT.
Exits 0 on success; 1 with a message naming the process when one failed (its log is in <out>/logs/).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from hand_object_pose.tools import ros_domain

REPO_ROOT = Path(__file__).resolve().parents[2]
FASTDDS_PROFILE = REPO_ROOT / "config" / "fastdds_large_shm.xml"
TF2_PREFIX = REPO_ROOT / "build" / "test_prefix"
BANNER_WIDTH = 78


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which and where to look."""


def banner(lines: list[str]) -> str:
    bar = "!" * BANNER_WIDTH
    return "\n".join([bar, *(f"!! {line}" for line in lines), bar])


# --- model ---------------------------------------------------------------------------------------

DETECTOR_PRESET = "hand_landmarks"   # the launch file's default: the shipped offline hand detector
DETECTOR_DIR = REPO_ROOT / "models" / "hand_detector"


@dataclasses.dataclass
class ModelChoice:
    path: Path               # the .onnx, or the hand detector's folder for a family that runs on it
    preset: str
    trained: bool
    origin: str
    runs_on_detector: bool = False


def read_metadata(model_path: Path) -> dict:
    """metadata.json / metadata.yaml beside the model, or <model>.json / <model>.yaml; {} when none."""
    candidates = [model_path.with_suffix(".json"), model_path.with_suffix(".yaml"),
                  model_path.parent / "metadata.json", model_path.parent / "metadata.yaml"]
    for candidate in candidates:
        if candidate.is_file():
            data = yaml.safe_load(candidate.read_text())   # JSON is YAML
            if not isinstance(data, dict):
                raise DemoError(f"model metadata {candidate} is not a mapping")
            return data
    return {}


def export_untrained(out_dir: Path, preset: str, overrides: dict) -> Path:
    """A randomly initialised `preset` (with `overrides`) exported to ONNX once; reused afterwards."""
    directory = out_dir / "untrained_model"
    name = preset + "".join(f"_{k}{v}" for k, v in sorted(overrides.items()))
    path = directory / f"{name}_random.onnx"
    metadata = {"preset": preset, "model_overrides": overrides, "trained": False,
                "note": "random weights, exported by hand_object_pose.tools.demo; outputs are meaningless"}
    if path.is_file() and read_metadata(path) == metadata:
        return path
    import torch

    from hand_object_pose.export.preset_export import write_graph
    from hand_object_pose.models.registry import get_preset

    family, config = get_preset(preset)
    if family.uses_object_templates:
        raise DemoError(f"the untrained stand-in model cannot be {preset!r}: a {family.name} network needs the "
                        "object catalogue's templates baked into its export")
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = family.build(dataclasses.replace(config, **overrides)).eval()
    write_graph(family, model, path)
    path.with_suffix(".json").write_text(json.dumps(metadata, indent=2))
    return path


def _runs_on_detector(preset: str) -> bool:
    from hand_object_pose.models.registry import get_preset

    try:
        return bool(get_preset(preset)[0].runs_on_hand_detector)
    except ValueError as exc:
        raise DemoError(str(exc)) from None


def choose_model(args, settings: dict, out_dir: Path) -> ModelChoice:
    if not args.model and (args.input and not args.preset or args.preset and _runs_on_detector(args.preset)):
        return ModelChoice(DETECTOR_DIR, args.preset or DETECTOR_PRESET, True, "the shipped hand detector",
                           runs_on_detector=True)
    if args.model:
        path = Path(args.model).resolve()
        if not path.is_file():
            raise DemoError(f"--model {args.model}: file not found (expected an exported .onnx)")
        metadata = read_metadata(path)
        preset = args.preset or metadata.get("preset")
        if not preset:
            raise DemoError(f"--model {args.model}: give --preset NAME (no metadata file beside it names one)")
        return ModelChoice(path, preset, bool(metadata.get("trained", True)), "--model")
    default_dir = REPO_ROOT / settings["default_model"]["directory"]
    trained = sorted(default_dir.glob("*.onnx")) if default_dir.is_dir() else []
    if trained:
        # The metadata names the model file (beside it may lie its object network, `object_model_file`).
        metadata = read_metadata(trained[0])
        if not metadata.get("preset"):
            raise DemoError(f"{trained[0]}: its metadata file (metadata.json) must name the preset")
        model = default_dir / metadata.get("model_file", trained[0].name)
        if not model.is_file():
            raise DemoError(f"{default_dir}/metadata.json names model_file {model.name}, which is missing")
        return ModelChoice(model, metadata["preset"], bool(metadata.get("trained", True)), str(default_dir))
    preset = args.preset or settings["default_model"]["untrained_preset"]
    overrides = dict(settings["default_model"].get("untrained_overrides") or {})
    print(f"demo: no trained model in {default_dir}: exporting a randomly initialised {preset} {overrides} ...",
          flush=True)
    return ModelChoice(export_untrained(out_dir, preset, overrides), preset, False, "untrained stand-in")


# --- processes -----------------------------------------------------------------------------------

def claim_domain_id() -> tuple[int, int]:
    """A ROS domain id no other demo/test process on this machine holds, from a random start;
    returns (id, lock fd)."""
    try:
        return ros_domain.claim_domain_id(random.randrange(100))
    except RuntimeError as exc:
        raise DemoError(str(exc)) from None


def ros_env(domain_id: int, log_dir: Path) -> dict:
    """This process's environment (the ros-wheels bootstrapper's LD_LIBRARY_PATH must survive) with the
    demo's isolation and transport settings, and the working tree first on PYTHONPATH."""
    env = dict(os.environ)
    python_path = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(REPO_ROOT)]
    # Off a ROS install tf2_msgs is not installable; `make msgs` builds a package with the same type
    # (build/test_prefix), which lets the node publish /tf here too. A ROS install has the real one.
    fixture_site = TF2_PREFIX / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    if (fixture_site / "tf2_msgs").is_dir():
        python_path.append(str(fixture_site))
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(TF2_PREFIX / "lib"), env.get("LD_LIBRARY_PATH")) if p)
    env.update(ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_DOMAIN_ID=str(domain_id),
               FASTRTPS_DEFAULT_PROFILES_FILE=str(FASTDDS_PROFILE), ROS_LOG_DIR=str(log_dir),
               PYTHONPATH=os.pathsep.join([str(REPO_ROOT), *python_path]), PYTHONUNBUFFERED="1")
    return env


class Process:
    """A child `python -m MODULE --ros-args ...`, its merged output teed to a log file and kept in memory."""

    def __init__(self, name: str, module: str, ros_args: list[str], env: dict, log_dir: Path):
        self.name = name
        self.lines: list[str] = []
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", module, "--ros-args", *ros_args], env=env, cwd=REPO_ROOT,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self._reader = threading.Thread(target=self._read, name=f"{name}_output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            self._log.write(line + "\n")
            self._log.flush()
        self._log.close()   # end of output: the process has exited

    def find(self, pattern: str):
        regex = re.compile(pattern)
        return next((m for m in map(regex.search, list(self.lines)) if m), None)

    def tail(self, count: int = 15) -> str:
        return "\n".join(f"    {line}" for line in self.lines[-count:])

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float) -> int:
        """SIGINT (like Ctrl-C), SIGKILL after `timeout` s; returns the exit status."""
        if self.running():
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5.0)
        return self.proc.returncode

    def failure(self, what: str) -> DemoError:
        if not self.running():
            self._reader.join(5.0)   # its last lines (the reason) may still be in the pipe
        return DemoError(f"{self.name} {what} (exit status {self.proc.poll()}); last lines of {self.log_path}:\n"
                         f"{self.tail()}")


def wait_for(condition, timeout: float, watched: list[Process], what: str) -> None:
    """Poll `condition` (capped); fail early, naming it, when a watched process exits."""
    deadline = time.monotonic() + timeout
    while not condition():
        for process in watched:
            if not process.running():
                raise process.failure(f"exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


# --- configuration files -------------------------------------------------------------------------

def write_node_params(out_dir: Path, model: ModelChoice, settings: dict, has_depth: bool, object_catalogue,
                      object_id, synthetic: bool = False, tracking: bool = True) -> Path:
    """<out>/pose_node_params.yaml: config/<preset>.yaml with the demo's changes; object_catalogue None keeps
    the preset's catalogue and object; tracking False: every frame looked at afresh (unrelated photos)."""
    preset_file = REPO_ROOT / "config" / f"{model.preset}.yaml"
    if not preset_file.is_file():
        raise DemoError(f"no parameter file {preset_file} for preset {model.preset!r}")
    data = yaml.safe_load(preset_file.read_text())
    params = data["/**"]["ros__parameters"]
    params.update(settings.get("pose_node") or {})
    if synthetic and not model.runs_on_detector:
        params.update(settings.get("synthetic_pose_node") or {})
    if not model.trained:
        params.update(settings.get("untrained_pose_node") or {})
    params.update(model=model.preset, backend="onnxruntime", model_path="" if model.runs_on_detector else
                  str(model.path), use_depth=has_depth)
    if not tracking:
        params["tracking"] = False
    if object_catalogue is not None:
        params.update(object_catalogue=object_catalogue, object_id=object_id)
    elif params.get("object_catalogue") and not os.path.isabs(params["object_catalogue"]):
        params["object_catalogue"] = str(REPO_ROOT / params["object_catalogue"])
    path = out_dir / "pose_node_params.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def prepare_frames(args, settings: dict, out_dir: Path) -> tuple[str, bool, str, str]:
    """(camera source, has depth, object catalogue path or None, object id or None): renders the synthetic
    sequence if needed; for --input the preset's catalogue is kept (None)."""
    if args.input:
        source = Path(args.input).resolve()
        return str(source), False, None, None   # the preset's own catalogue and object
    from hand_object_pose.synthetic.objects import write_catalogue
    from hand_object_pose.synthetic.sequence import SequenceConfig, load_sequence, render_sequence

    seq = dict(settings["sequence"])
    if args.frames:
        seq["num_frames"] = args.frames
    if args.size:
        seq["image_size"] = list(args.size)
    config = SequenceConfig(**{**seq, "image_size": tuple(seq["image_size"])})
    started = time.monotonic()

    def progress(done, total):
        if done == total or done % 15 == 0:
            print(f"demo: rendered {done}/{total} frames", flush=True)

    frames_dir = out_dir / "frames"
    render_sequence(config, frames_dir, progress=progress)
    print(f"demo: synthetic sequence ready in {frames_dir} ({time.monotonic() - started:.1f} s)", flush=True)
    object_id = load_sequence(frames_dir).truths[0].objects[0]["object_id"]
    catalogue = write_catalogue(out_dir / "objects")
    return str(frames_dir), True, catalogue, object_id


# --- main ----------------------------------------------------------------------------------------

def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 640x480; got {text!r}") from None
    return width, height


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m hand_object_pose.tools.demo",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--input", default="", help="video file or image folder instead of the synthetic sequence")
    parser.add_argument("--independent-frames", action="store_true",
                        help="the frames are unrelated photos, not a video: the node looks at each afresh (tracking "
                             "off)")
    parser.add_argument("--model", default="", help="exported .onnx (default: with --input the shipped hand "
                                                     "detector, else models/default/, else untrained)")
    parser.add_argument("--preset", default="", help="model preset of --model (else from its metadata file)")
    parser.add_argument("--frames", type=int, default=0, help="frames to stream (synthetic: sequence length)")
    parser.add_argument("--rate", type=float, default=0.0, help="camera rate in Hz (default config/demo/demo.yaml)")
    parser.add_argument("--size", type=parse_size, default=None, help="synthetic image size WxH (default 640x480)")
    parser.add_argument("--out", default="demo_out", help="output directory")
    parser.add_argument("--config", default=str(REPO_ROOT / "config" / "demo" / "demo.yaml"), help="demo settings")
    return parser.parse_args(argv)


def run(args) -> dict:
    settings = yaml.safe_load(Path(args.config).read_text())
    if args.input and not Path(args.input).exists():   # before the slow steps
        raise DemoError(f"--input {args.input}: no such file or folder (expected a video file or an image folder)")
    out_dir = Path(args.out).resolve()
    logs = out_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for stale in ("summary.json", "summary.txt", "demo.mp4", "frames.jsonl"):
        (out_dir / stale).unlink(missing_ok=True)
    for stale in (out_dir / "overlays").glob("overlay_*.png"):
        stale.unlink()

    model = choose_model(args, settings, out_dir)
    if not model.trained:
        print(banner(["THE MODEL IS UNTRAINED: random weights (no trained default model in models/default/ yet).",
                      "The pipeline runs for real (camera -> pose node -> results, TF, markers, overlays),",
                      "but the poses are meaningless and so are the accuracy numbers below.",
                      "Train and export a model (docs/training.md), then: make demo MODEL=path/to/model.onnx"]),
              flush=True)
    if model.runs_on_detector:
        print(f"demo: model {model.preset}: the offline hand detector in {model.path} (hands only; object "
              "poses need a pose network: make demo MODEL=path/to/model.onnx)", flush=True)
    source, has_depth, catalogue, object_id = prepare_frames(args, settings, out_dir)
    if model.runs_on_detector:
        catalogue, object_id = "", ""   # hands only: no object catalogue
    params = write_node_params(out_dir, model, settings, has_depth, catalogue, object_id, synthetic=not args.input,
                               tracking=not args.independent_frames)
    camera_settings = dict(settings["camera"])
    rate = args.rate or float(camera_settings["rate_hz"])
    frames_log = out_dir / "frames.jsonl"
    timeouts = settings["timeouts"]

    domain_id, lock_fd = claim_domain_id()
    env = ros_env(domain_id, logs / "ros")
    processes: list[Process] = []
    try:
        node = Process("pose_node", "hand_object_pose.ros.pose_node", ["--params-file", str(params)], env, logs)
        processes.append(node)
        recorder = Process("recorder", "hand_object_pose.ros.recorder", [
            "-p", f"output_dir:={out_dir}", "-p", f"frames_log:={frames_log}",
            "-p", f"model_trained:={str(model.trained).lower()}", "-p", f"model_path:={model.path}",
            "-p", f"input:={source if args.input else 'synthetic sequence ' + source}",
            "-p", f"video_fps:={float(settings['recorder']['video_fps'])}"], env, logs)
        processes.append(recorder)
        print(f"demo: ROS_DOMAIN_ID={domain_id}; starting the pose node ({model.preset}, {model.path} from "
              f"{model.origin})", flush=True)
        wait_for(lambda: node.find(r"ready:"), timeouts["node_ready_s"], [node, recorder], "the pose node")
        wait_for(lambda: recorder.find(r"recorder: ready"), timeouts["node_ready_s"], [node, recorder],
                 "the recorder")
        print(f"demo: {node.find(r'ready:.*').group(0)}", flush=True)
        camera_args = ["-p", f"source:={source}", "-p", f"rate_hz:={rate}",
                       "-p", f"frame_id:={camera_settings['frame_id']}",
                       "-p", f"depth_encoding:={camera_settings['depth_encoding']}",
                       "-p", f"frames_log:={frames_log}", "-p", "wait_for_subscribers:=2",
                       "-p", f"max_frames:={args.frames if args.input else 0}"]
        camera = Process("camera", "hand_object_pose.ros.synthetic_camera", camera_args, env, logs)
        processes.append(camera)
        print(f"demo: streaming at {rate:g} Hz ...", flush=True)
        wait_for(lambda: camera.find(r"camera: .* (\d+) frames") or not camera.running(), timeouts["camera_s"],
                 [node, recorder], "the camera to start")
        started = camera.find(r"camera: .* (\d+) frames")
        frame_count = int(started.group(1)) if started else 0
        wait_for(lambda: not camera.running(), timeouts["camera_s"] + frame_count / rate, [node, recorder],
                 "the camera to finish")
        if camera.proc.returncode != 0:
            raise camera.failure("failed")
        done = camera.find(r"camera: done frames=(\d+) last_stamp_ns=(\d+)")
        if done is None:
            raise camera.failure("ended without reporting its frames")
        frames, last_stamp = int(done.group(1)), done.group(2)
        print(f"demo: camera published {frames} frames; waiting for the last result ...", flush=True)
        try:
            wait_for(lambda: recorder.find(rf"result stamp_ns={last_stamp}\b"), timeouts["last_result_s"],
                     [node, recorder], "the result of the last frame")
        except DemoError as exc:
            if not all(p.running() for p in (node, recorder)):
                raise
            print(f"demo: warning: {exc}; summarising what arrived", flush=True)
        recorder_status = recorder.stop(timeouts["shutdown_s"])
        if recorder_status != 0:
            raise recorder.failure("failed while writing the outputs")
        print("\n".join(line for line in recorder.lines
                        if not line.startswith(("recorder: result", "recorder: ready"))), flush=True)
        node_status = node.stop(timeouts["shutdown_s"])
        if node_status not in (0, -signal.SIGINT):
            raise node.failure("did not stop cleanly")
    finally:
        for process in processes:
            if process.running():
                process.stop(10.0)
        os.close(lock_fd)
    summary_path = out_dir / "summary.json"
    if not summary_path.is_file():
        raise DemoError(f"the recorder wrote no {summary_path}")
    summary = json.loads(summary_path.read_text())
    if not model.trained:
        print(banner(["Reminder: UNTRAINED weights. The numbers above show the pipeline works end to end,",
                      "not how accurate a trained model is."]), flush=True)
    print(f"demo: done; outputs in {out_dir}", flush=True)
    return summary


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except DemoError as exc:
        print(f"demo: error: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("demo: interrupted", file=sys.stderr, flush=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
