"""The offline hand detector's time per frame: tracking vs re-detection, and MediaPipe's own runtime.

    .venv/bin/python bench/bench_hand_detector.py [--frames 60] [--threads 2]
        [--mediapipe-python /tmp/mp/bin/python]

Frames: a short "video" of rendered upright stand-in hands with a forearm (640 x 480), each rendered
hand shown for 10 frames while it slides sideways by 3 px a frame. Our pipeline
(`inference.hand_detection`, ONNX Runtime, `--threads` intra-op threads for the palm detector, 1 for
the landmark network, the pipeline's defaults) runs twice on the same
frames: with tracking (the palm detector only when a hand is lost or missing) and re-detecting on
every frame. It prints the median palm-detector and landmark time per frame and the total.

MediaPipe's own runtime (`mediapipe==0.10.21`, `mp.solutions.hands`, model_complexity=0 = the same
lite models, video mode) runs on the same frames in the same run when `--mediapipe-python` (or the
MEDIAPIPE_PYTHON variable) names the Python of a throwaway venv that has it, e.g.

    python3.11 -m venv /tmp/mp && /tmp/mp/bin/pip install mediapipe==0.10.21

(never in the project's venv: it pins numpy<2 and protobuf<5). The child inherits this process's CPU
affinity (`taskset -c 0,1 ...` limits both to 2 cores). The bench then prints the ratio ours / MediaPipe with
tracking; otherwise it prints why the comparison did not run.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hand_object_pose.inference.hand_detection import HandDetector, HandDetectorConfig  # noqa: E402
from hand_object_pose.synthetic.upright_hands import upright_frames  # noqa: E402

HOLD_FRAMES = 10
SLIDE_PX = 3

MEDIAPIPE_CHILD = r"""
import json, sys, time
import numpy as np
import mediapipe as mp
frames = np.load(sys.argv[1])
times, found, landmarks = [], 0, []
with mp.solutions.hands.Hands(static_image_mode=False, max_num_hands=2, model_complexity=0,
                              min_detection_confidence=0.5, min_tracking_confidence=0.5) as hands:
    for warm in frames[:3]:
        hands.process(np.ascontiguousarray(warm))
    hands.reset() if hasattr(hands, "reset") else None
    for frame in frames:
        start = time.perf_counter()
        result = hands.process(np.ascontiguousarray(frame))
        times.append(time.perf_counter() - start)
        found += bool(result.multi_hand_landmarks)
        h, w = frame.shape[:2]
        landmarks.append([[[p.x * w, p.y * h] for p in hand.landmark] for hand in (result.multi_hand_landmarks or [])])
print(json.dumps({"ms": [1e3 * t for t in times], "frames_with_hands": found, "version": mp.__version__,
                  "landmarks_px": landmarks}))
"""


def video(frames: int) -> np.ndarray:
    """(N, 480, 640, 3) uint8 RGB."""
    bases = upright_frames((frames + HOLD_FRAMES - 1) // HOLD_FRAMES, seed=7)
    out = [np.roll(base.rgb, SLIDE_PX * k, axis=1) for base in bases for k in range(HOLD_FRAMES)]
    return np.stack(out[:frames])


def run_ours(images: np.ndarray, tracking: bool, threads: int) -> dict:
    detector = HandDetector.from_config(HandDetectorConfig(tracking=tracking, threads=threads))
    for warm in images[:3]:
        detector.process(warm)
    detector.reset()
    rows = [detector.process(image) for image in images]
    return {"landmarks_px": [[h.landmarks_px for h in r.hands] for r in rows],
            "total": [r.total_ms for r in rows], "detector": [r.detector_ms for r in rows],
            "landmark": [r.landmark_ms for r in rows], "detector_runs": sum(r.detector_ran for r in rows),
            "frames_with_hands": sum(bool(r.hands) for r in rows), "in_use": detector.in_use}


def run_mediapipe(images: np.ndarray, python: str) -> dict | str:
    """MediaPipe's timings, or the reason it could not run (a string)."""
    if not python:
        return ("no MediaPipe runtime given (--mediapipe-python or MEDIAPIPE_PYTHON: the Python of a throwaway "
                "venv with mediapipe==0.10.21; it cannot share the project's venv)")
    if not Path(python).exists():
        return f"{python} does not exist"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frames.npy"
        np.save(path, images)
        env = dict(os.environ, GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="2")
        result = subprocess.run([python, "-c", MEDIAPIPE_CHILD, str(path)], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        tail = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        return f"MediaPipe failed to run: {tail}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def median(values) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3,
                        help="each round runs ours (tracking, re-detection) and MediaPipe once, back to back, so "
                             "that load from other processes hits all alike; medians over the rounds")
    parser.add_argument("--mediapipe-python", default=os.environ.get("MEDIAPIPE_PYTHON", ""))
    args = parser.parse_args(argv)

    images = video(args.frames)
    print(f"{len(images)} frames 640x480 (rendered upright stand-in hands with a forearm), "
          f"{args.threads} ONNX Runtime threads for the palm detector, 1 for the landmarks, "
          f"cpus {len(os.sched_getaffinity(0))}, load {os.getloadavg()[0]:.2f}, {args.rounds} rounds")
    rounds = {"tracking": [], "re-detect every frame": [], "mediapipe": []}
    why_not = ""
    for _ in range(args.rounds):
        for name, tracking in (("tracking", True), ("re-detect every frame", False)):
            rounds[name].append(run_ours(images, tracking, args.threads))
        if not why_not:
            mediapipe = run_mediapipe(images, args.mediapipe_python)
            if isinstance(mediapipe, str):
                why_not = mediapipe
            else:
                rounds["mediapipe"].append(mediapipe)
    for name in ("tracking", "re-detect every frame"):
        runs = rounds[name]
        print(f"ours, {name:22s}: {median([median(r['total']) for r in runs]):6.1f} ms/frame median (palm detector "
              f"{median([median([d for d in r['detector'] if d > 0]) for r in runs]):.1f} ms when it runs, "
              f"{runs[0]['detector_runs']} runs; landmarks {median([median(r['landmark']) for r in runs]):.1f} ms); "
              f"frames with hands {runs[0]['frames_with_hands']}/{len(images)}; {runs[0]['in_use']}")
    if why_not:
        print(f"MediaPipe's own runtime: not run: {why_not}")
        return 0
    ours = [median(r["total"]) for r in rounds["tracking"]]
    theirs = [median(m["ms"]) for m in rounds["mediapipe"]]
    first = rounds["mediapipe"][0]
    print(f"MediaPipe {first['version']} (mp.solutions.hands, lite, video mode): {median(theirs):6.1f} ms/frame "
          f"median; frames with hands {first['frames_with_hands']}/{len(images)}")
    distances = [float(np.linalg.norm(np.asarray(t[0]) - o[0], axis=1).mean())
                 for o, t in zip(rounds["tracking"][0]["landmarks_px"], first["landmarks_px"]) if len(o) == len(t) == 1]
    print(f"landmarks, ours (tracking) vs MediaPipe's on frames where both found one hand: mean distance "
          f"{median(distances):.2f} px median, {max(distances, default=float('nan')):.2f} px worst "
          f"({len(distances)} frames)")
    ratios = [o / t for o, t in zip(ours, theirs)]
    print(f"ratio ours (tracking) / MediaPipe: {median(ratios):.2f} (per round: "
          f"{', '.join(f'{r:.2f}' for r in ratios)}; target <= 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
