"""Soak test of the pose node: a separate camera process at 30 Hz, 640x480 rgb8, into the node for 10 minutes.

    .venv/bin/python bench/bench_soak.py                          # 10 min, KPT ResNet-18 random weights, torch CPU
    .venv/bin/python bench/bench_soak.py --minutes 1 --period-s 15   # a short smoke run
    .venv/bin/python bench/bench_soak.py --model kpt_h2o3d_3d_r34 --backend onnxruntime \
        --model-path models/kpt_h2o3d_3d_r34.onnx --providers cuda cpu

Three processes, all with config/fastdds_large_shm.xml: the camera (this script with --camera: one
image + CameraInfo per period, stamped at publication), the pose node (plain entry point) and this
process, which consumes the results and /diagnostics. Printed: the node's resident memory (RSS from
/proc) at start, every period and at the end; per period the end-to-end latency percentiles (image
stamp -> result received here) and the output rate; at the end the node's counter identity
(frames_in = frames_out + frames_dropped + frames_rejected once idle; frames_lost = images the
node never got) against the camera's count of images sent. Verdicts against issue 15's targets: RSS growth
under 5 % after the first period, latency p50 flat within 10 % (no backlog), the identity exact.
Exit status 0 when all hold, 1 otherwise.
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WIDTH, HEIGHT = 640, 480
K = (525.0, 0.0, 319.5, 0.0, 525.0, 239.5, 0.0, 0.0, 1.0)
FRAME_ID = "soak_camera_optical_frame"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the camera stream")
    parser.add_argument("--period-s", type=float, default=60.0, help="reporting period (RSS, latency, rate)")
    parser.add_argument("--rate-hz", type=float, default=30.0)
    parser.add_argument("--model", default="kpt_ho3d_3d_r18")
    parser.add_argument("--backend", default="torch", choices=("torch", "onnxruntime"))
    parser.add_argument("--model-path", default="", help="'' with torch = random weights")
    parser.add_argument("--providers", nargs="+", default=["cpu"])
    parser.add_argument("--threads", type=int, default=0, help="backend CPU threads (0 = library default)")
    parser.add_argument("--camera", action="store_true", help=argparse.SUPPRESS)   # the camera process itself
    return parser.parse_args()


# --- the camera process -------------------------------------------------------------------------

def run_camera(rate_hz: float) -> int:
    """Publish image + CameraInfo at rate_hz until SIGINT/SIGTERM; print how many were sent."""
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import CameraInfo, Image

    from hand_object_pose.ros.image_codec import array_to_image_fields

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("soak_camera")
    image_pub = node.create_publisher(Image, "image", qos_profile_sensor_data)
    info_pub = node.create_publisher(CameraInfo, "camera_info", qos_profile_sensor_data)
    fields = array_to_image_fields(np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8),
                                   "rgb8")
    sent, period = 0, 1.0 / rate_hz
    while image_pub.get_subscription_count() == 0 and not stop.is_set():
        time.sleep(0.05)
    print("camera: streaming", flush=True)
    start = time.monotonic()
    while not stop.is_set():
        stamp = node.get_clock().now().to_msg()
        info = CameraInfo(width=WIDTH, height=HEIGHT, k=list(K), distortion_model="plumb_bob")
        info.header.stamp, info.header.frame_id = stamp, FRAME_ID
        image = Image(**fields)
        image.header.stamp, image.header.frame_id = stamp, FRAME_ID
        info_pub.publish(info)
        image_pub.publish(image)
        sent += 1
        stop.wait(max(0.0, start + sent * period - time.monotonic()))
    print(f"camera: sent {sent}", flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


# --- helpers --------------------------------------------------------------------------------------

def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def start_python(args: list, env: dict) -> tuple[subprocess.Popen, list]:
    proc = subprocess.Popen([sys.executable, *args], env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list = []
    threading.Thread(target=lambda: lines.extend(line.rstrip() for line in proc.stdout), daemon=True).start()
    return proc, lines


def stop(proc: subprocess.Popen, sig=signal.SIGINT, timeout: float = 20.0) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_for(condition, timeout: float, what: str, procs=()) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for proc, lines in procs:
            if proc.poll() is not None:
                raise SystemExit(f"a process ended while waiting for {what}:\n" + "\n".join(lines[-20:]))
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def main() -> int:
    args = parse_args()
    if args.camera:
        return run_camera(args.rate_hz)
    os.environ.update(ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_DOMAIN_ID=str(random.randint(102, 200)),
                      FASTRTPS_DEFAULT_PROFILES_FILE=str(REPO / "config" / "fastdds_large_shm.xml"))
    os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="bench_soak_log_"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               PYTHONUNBUFFERED="1")

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor

    from hand_object_pose.msg import HandObjectPoses

    workdir = Path(tempfile.mkdtemp(prefix="bench_soak_"))
    data = yaml.safe_load((REPO / "config" / "kpt_ho3d_3d_r18.yaml").read_text())
    data["/**"]["ros__parameters"].update(
        model=args.model, backend=args.backend, model_path=args.model_path,
        allow_random_weights=args.backend == "torch" and not args.model_path, providers=list(args.providers),
        threads=args.threads, warmup_runs=2, crop_source="full", object_catalogue="", object_id="",
        plausibility_checks=False, publish_tf=False, mesh_marker_rate_hz=0.0, diagnostics_period_s=1.0)
    params = workdir / "params.yaml"
    params.write_text(yaml.safe_dump(data))

    node_proc, node_lines = start_python(["-m", "hand_object_pose.ros.pose_node", "--ros-args", "--params-file",
                                          str(params)], env)
    camera_proc = None
    rclpy.init()
    monitor = rclpy.create_node("soak_monitor")
    lock = threading.Lock()
    results: list = []            # (receive monotonic s, latency ms)
    diagnostics: dict = {}

    def on_result(msg):
        latency_ms = (monitor.get_clock().now().nanoseconds
                      - (msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec)) / 1e6
        with lock:
            results.append((time.monotonic(), latency_ms))

    def on_diagnostics(msg):
        for status in msg.status:
            if status.name.startswith("hand_object_pose"):
                diagnostics.clear()
                diagnostics.update({kv.key: kv.value for kv in status.values})

    monitor.create_subscription(HandObjectPoses, "hand_object_poses", on_result, 50)
    monitor.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    executor = SingleThreadedExecutor()
    executor.add_node(monitor)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    ok = True
    try:
        wait_for(lambda: any("ready:" in line for line in node_lines), 300.0, "the pose node",
                 [(node_proc, node_lines)])
        rss = [("start", rss_mb(node_proc.pid))]
        print(f"pose node ready ({args.model}, {args.backend}); RSS at start {rss[0][1]:.1f} MB", flush=True)
        camera_proc, camera_lines = start_python([str(Path(__file__).resolve()), "--camera", "--rate-hz",
                                                  str(args.rate_hz)], env)
        wait_for(lambda: any("camera: streaming" in line for line in camera_lines), 120.0, "the camera",
                 [(camera_proc, camera_lines)])
        start = time.monotonic()
        end = start + args.minutes * 60.0
        periods = []                                          # (index, p50, p90, p99, rate Hz, n)
        index = 0
        while time.monotonic() < end:
            index += 1
            period_end = min(start + index * args.period_s, end)
            time.sleep(max(0.0, period_end - time.monotonic()))
            with lock:
                window = [lat for t, lat in results if period_end - args.period_s <= t < period_end]
            rss.append((f"{(period_end - start) / 60.0:.2f} min", rss_mb(node_proc.pid)))
            if window:
                p50, p90, p99 = np.percentile(window, [50, 90, 99])
                periods.append((index, p50, p90, p99, len(window) / args.period_s, len(window)))
                print(f"period {index} (to {(period_end - start) / 60.0:.2f} min): RSS {rss[-1][1]:.1f} MB; "
                      f"{len(window)} results ({len(window) / args.period_s:.2f} Hz); latency p50 {p50:.1f} ms, "
                      f"p90 {p90:.1f} ms, p99 {p99:.1f} ms", flush=True)
            else:
                print(f"period {index}: RSS {rss[-1][1]:.1f} MB; NO results", flush=True)
                ok = False
        stop(camera_proc)
        # Idle: every image received is counted (images waiting for partners expire after 2 s).
        wait_for(lambda: diagnostics.get("frames_in_progress") == "0", 30.0, "an idle node")
        time.sleep(1.5)
        values = dict(diagnostics)
        rss.append(("end", rss_mb(node_proc.pid)))
        sent = next((int(line.split()[-1]) for line in camera_lines if line.startswith("camera: sent")), None)
        n_in, n_out, dropped, rejected = (int(values[k]) for k in ("frames_in", "frames_out", "frames_dropped",
                                                                   "frames_rejected"))
        identity = n_in == n_out + dropped + rejected
        print(f"RSS (MB): " + ", ".join(f"{label} {value:.1f}" for label, value in rss))
        print(f"counters: frames_in {n_in} = frames_out {n_out} + frames_dropped {dropped} (replaced "
              f"{values['frames_replaced']}, unpaired {values['frames_unpaired']}, lost before the node "
              f"{values.get('frames_lost', '?')}) + frames_rejected {rejected}: "
              f"{'exact' if identity else 'DOES NOT ADD UP'}; camera sent {sent} (frames_in counts the lost ones "
              f"too: {'?' if sent is None else sent - n_in} unaccounted)")
        after_first = [value for label, value in rss[1:]]
        growth = (max(after_first) - after_first[0]) / after_first[0] * 100.0 if len(after_first) > 1 else 0.0
        p50s = [p[1] for p in periods]
        spread = (max(p50s) - min(p50s)) / min(p50s) * 100.0 if p50s else float("nan")
        verdicts = {"RSS growth after the first period < 5 %": growth < 5.0,
                    "latency p50 flat within 10 % (no backlog)": spread <= 10.0,
                    "counter identity exact": identity}
        print(f"RSS growth after the first period {growth:.1f} %; latency p50 spread over periods {spread:.1f} %")
        for what, holds in verdicts.items():
            print(f"  {'PASS' if holds else 'FAIL'}: {what}")
        ok = ok and all(verdicts.values())
    finally:
        if camera_proc is not None:
            stop(camera_proc)
        executor.shutdown()
        spinner.join(5)
        monitor.destroy_node()
        rclpy.try_shutdown()
        stop(node_proc)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
