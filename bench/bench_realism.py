"""Realism of the synthetic generator, judged by a hand detector trained on real photos (issue 14).

    .venv/bin/python bench/bench_realism.py [--scenes 1000] [--seed 14000 [15000 ...]] [--size 640x480] [--threads 2]
        [--grid bench/out/realism_grid.jpg] [--grid-frames 24]

Renders `--scenes` scenes per seed of `synthetic.scene.SceneGenerator` with the default `SceneConfig` (only the
image size set; deterministic in (seed, index)), runs the project's port of MediaPipe's palm detector
+ landmark network (`inference.hand_detection`, re-detecting on every frame, not mirrored, up to two
hands) and prints, against the issue's targets:

- recall over *eligible* hands: 2D size >= 40 px (the larger side of the bounding box of the 21
  projected joints) and occlusion <= 30 %. Occlusion = the larger of (a) the share of the hand's
  pixels, rendered alone with the same camera, that other surfaces (object, other hand, arms, scene)
  hide in the scene and (b) the share of its 21 joints outside the image (truncation). Self-occlusion
  (fingers in front of the palm) does not count;
- 2D landmark error of found hands: mean joint distance (pixels) / hand 2D size, mean and median;
- handedness agreement of found hands (sides corrected for a non-mirrored camera by the detector);
- false detections per frame (detected hands that find no labelled hand), split into those on a
  labelled hand (its landmarks too far off) and those elsewhere;
- recall broken down by hand size, orientation (palm / back / side towards the camera, from the
  angle between the palm normal and the ray to the palm centre), occlusion and whether the hand
  holds the object (pose style "grasp").

A detected hand *finds* a labelled hand when its mean 2D landmark error is < 20 % of the labelled
hand's 2D size (the criterion of test/hand_detection and shared/reference/hand-detector.md); each
detection finds at most one hand (best error first). The grid image shows the first
`--grid-frames` scenes: eligible hands found (green box) or missed (red), ineligible hands (grey),
detected landmarks (cyan) and false detections (magenta box). bench/out/ is gitignored.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hand_object_pose.geometry.rotations import axis_angle_to_matrix  # noqa: E402
from hand_object_pose.inference.hand_detection import HandDetector, HandDetectorConfig  # noqa: E402
from hand_object_pose.synthetic.scene import SceneConfig, SceneGenerator  # noqa: E402

MIN_SIZE_PX = 40.0
MAX_OCCLUSION = 0.30
FOUND_ERROR = 0.20           # mean landmark error / hand size below which a detection finds a hand
TARGET_RECALL = 0.80
TARGET_ERROR = 0.10
SIZE_BINS = ((40, 80), (80, 160), (160, 10_000))
OCCLUSION_BINS = ((0.0, 0.1), (0.1, 0.3))


def hand_size_px(joints_2d: np.ndarray) -> float:
    """Larger side (pixels) of the bounding box of the projected joints."""
    return float(np.ptp(joints_2d, axis=0).max())


def orientation(hand) -> str:
    """"palm", "back" or "side": which face of the hand the camera sees.

    The palm normal is the stand-in model's +z axis turned by the global orientation (camera frame);
    cos = normal . ray to the palm centre: < -0.5 palm, > 0.5 back, else side."""
    normal = np.asarray(axis_angle_to_matrix(hand.mano_pose[:3]), np.float64)[:, 2]
    centre = 0.5 * (hand.joints_cam[0] + hand.joints_cam[9])
    cos = float(normal @ centre / np.linalg.norm(centre))
    return "palm" if cos < -0.5 else "back" if cos > 0.5 else "side"


def occlusion_of(generator: SceneGenerator, scene, side: str) -> float:
    """max(share of the hand's own pixels hidden by other surfaces, share of its joints outside the image)."""
    hand = scene.hands[side]
    alone = generator._render_fn(hand.vertices, generator.faces[side], scene.K).mask.numpy()
    own = int(alone.sum())
    hidden = 1.0 - hand.mask_pixels / own if own else 1.0
    height, width = scene.labels.shape
    uv = hand.joints_2d
    outside = 1.0 - float(np.mean(np.all((uv >= -0.5) & (uv < [width - 0.5, height - 0.5]), axis=1)))
    return max(hidden, outside)


def match(truths: dict, detections: list) -> tuple[dict, set]:
    """({side: (detection index, error / size)}, unmatched detection indices): greedy, best error first."""
    pairs = []
    for side, truth in truths.items():
        size = hand_size_px(truth.joints_2d)
        for k, det in enumerate(detections):
            error = np.linalg.norm(det.landmarks_px - truth.joints_2d, axis=1).mean() / max(size, 1e-6)
            if error < FOUND_ERROR:
                pairs.append((error, side, k))
    found, used = {}, set()
    for error, side, k in sorted(pairs):
        if side not in found and k not in used:
            found[side] = (k, float(error))
            used.add(k)
    return found, set(range(len(detections))) - used


def _size(text: str) -> tuple[int, int]:
    width, height = (int(v) for v in text.lower().split("x"))
    return width, height


def draw_tile(rgb, truths, detections, found, false_ids, eligible) -> np.ndarray:
    image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    thick = max(1, image.shape[1] // 200)
    for side, truth in truths.items():
        x0, y0 = np.floor(truth.joints_2d.min(axis=0)).astype(int) - 6
        x1, y1 = np.ceil(truth.joints_2d.max(axis=0)).astype(int) + 6
        colour = (160, 160, 160) if not eligible[side] else (0, 200, 0) if side in found else (0, 0, 255)
        cv2.rectangle(image, (x0, y0), (x1, y1), colour, 2 * thick)
        cv2.putText(image, side[0].upper(), (x0 + 3, y0 + 18 * thick), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * thick,
                    colour, thick)
    for k, det in enumerate(detections):
        for u, v in det.landmarks_px:
            cv2.circle(image, (int(round(u)), int(round(v))), 2 * thick, (255, 255, 0), -1)
        if k in false_ids:
            x0, y0, x1, y1 = det.box_px().astype(int)
            cv2.rectangle(image, (x0, y0), (x1, y1), (255, 0, 255), 2 * thick)
    return image


def grid_image(tiles: list, columns: int = 6, tile_width: int = 320) -> np.ndarray:
    scaled = [cv2.resize(t, (tile_width, int(round(t.shape[0] * tile_width / t.shape[1]))),
                         interpolation=cv2.INTER_AREA) for t in tiles]
    height = scaled[0].shape[0]
    rows = []
    for start in range(0, len(scaled), columns):
        row = scaled[start:start + columns]
        row += [np.full_like(scaled[0], 255)] * (columns - len(row))
        rows.append(np.hstack([np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=255) for t in row]))
    del height
    return np.vstack(rows)


def ratio(numerator: int, denominator: int) -> str:
    return f"{numerator}/{denominator} ({100.0 * numerator / denominator:.0f} %)" if denominator else "0/0 (-)"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # 1000 scenes (about 1 400 eligible hands, 90 s): 100 scenes put the recall within about +-4 points of it,
    # as wide as the changes being judged (100-scene runs read 79 % where 1000 of the same seed read 78 %).
    parser.add_argument("--scenes", type=int, default=1000, help="scenes per seed")
    parser.add_argument("--seed", type=int, nargs="+", default=[14000], help="one or more seeds (pooled)")
    parser.add_argument("--size", type=_size, default=(640, 480), help="WIDTHxHEIGHT (default 640x480)")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    parser.add_argument("--renderer", default="auto", choices=("auto", "gl", "torch"))
    parser.add_argument("--grid", default=str(Path(__file__).resolve().parent / "out" / "realism_grid.jpg"))
    parser.add_argument("--grid-frames", type=int, default=24)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    generator = SceneGenerator(SceneConfig(image_size=args.size), renderer=args.renderer)
    detector = HandDetector.from_config(HandDetectorConfig(tracking=False, threads=args.threads, max_hands=2))
    rows, false_total, false_on_hand, tiles = [], 0, 0, []
    render_s = detect_s = 0.0
    for seed, index in ((seed, index) for seed in args.seed for index in range(args.scenes)):
        t0 = time.perf_counter()
        scene = generator.sample(seed, index)
        t1 = time.perf_counter()
        detections = detector.process(scene.rgb).hands
        detect_s += time.perf_counter() - t1
        render_s += t1 - t0
        found, false_ids = match(scene.hands, detections)
        false_total += len(false_ids)
        for k in false_ids:  # on a labelled hand (landmarks too far off) or elsewhere (scene, arm, object)
            centre = detections[k].landmarks_px.mean(axis=0)
            false_on_hand += any(np.all((centre >= t.joints_2d.min(axis=0) - 10) & (centre <= t.joints_2d.max(axis=0) + 10))
                                 for t in scene.hands.values())
        eligible = {}
        for side, truth in scene.hands.items():
            size = hand_size_px(truth.joints_2d)
            occlusion = occlusion_of(generator, scene, side)
            eligible[side] = size >= MIN_SIZE_PX and occlusion <= MAX_OCCLUSION
            det = detections[found[side][0]] if side in found else None
            rows.append({"seed": seed, "scene": index, "side": side, "size": size, "occlusion": occlusion,
                         "orientation": orientation(truth), "held": truth.style == "grasp",
                         "eligible": eligible[side], "found": det is not None,
                         "error": found[side][1] if det is not None else float("nan"),
                         "side_ok": det is not None and det.side == side})
        if len(tiles) < args.grid_frames:
            tiles.append(draw_tile(scene.rgb, scene.hands, detections, found, false_ids, eligible))

    el = [r for r in rows if r["eligible"]]
    hits = [r for r in el if r["found"]]
    errors = np.array([r["error"] for r in hits])
    frames = args.scenes * len(args.seed)
    print(f"realism bench: {args.scenes} scenes of SceneGenerator(SceneConfig(image_size={args.size})) for each of "
          f"seed(s) {' '.join(map(str, args.seed))}, renderer {generator.renderer}; detector {detector.in_use}, "
          f"{args.threads} threads; "
          f"cpus {len(os.sched_getaffinity(0))}, load {os.getloadavg()[0]:.1f}")
    print(f"render {1e3 * render_s / frames:.0f} ms/scene, detector {1e3 * detect_s / frames:.0f} ms/frame")
    print(f"labelled hands {len(rows)}, eligible (>= {MIN_SIZE_PX:.0f} px, <= {100 * MAX_OCCLUSION:.0f} % "
          f"occluded) {len(el)}")
    recall = len(hits) / len(el) if el else 0.0
    print(f"recall            {ratio(len(hits), len(el))}   target >= {100 * TARGET_RECALL:.0f} %  "
          f"{'MET' if recall >= TARGET_RECALL else 'NOT MET'}")
    if len(errors):
        print(f"landmark error    mean {100 * errors.mean():.1f} %, median {100 * np.median(errors):.1f} % of hand size"
              f"   target < {100 * TARGET_ERROR:.0f} %  {'MET' if errors.mean() < TARGET_ERROR else 'NOT MET'}")
    else:
        print("landmark error    - (no hand found)")
    print(f"handedness        {ratio(sum(r['side_ok'] for r in hits), len(hits))} of found hands")
    print(f"false detections  {false_total / max(frames, 1):.2f} per frame ({false_total} in all: "
          f"{false_on_hand} on a labelled hand with landmarks >= {100 * FOUND_ERROR:.0f} % off, "
          f"{false_total - false_on_hand} elsewhere)")
    all_found = [r for r in rows if r["found"]]
    print(f"all labelled hands found {ratio(len(all_found), len(rows))}")

    def breakdown(title, key, values, subset=el):
        parts = []
        for label, test in values:
            group = [r for r in subset if test(r[key])]
            parts.append(f"{label} {ratio(sum(r['found'] for r in group), len(group))}")
        print(f"  by {title:10s} " + ", ".join(parts))

    print("recall of eligible hands")
    breakdown("size px", "size", [(f"{lo}-{hi}" if hi < 10_000 else f">={lo}", lambda v, lo=lo, hi=hi: lo <= v < hi)
                                  for lo, hi in SIZE_BINS])
    breakdown("view", "orientation", [(o, lambda v, o=o: v == o) for o in ("palm", "back", "side")])
    breakdown("occlusion", "occlusion", [(f"{100 * lo:.0f}-{100 * hi:.0f} %", lambda v, lo=lo, hi=hi: lo <= v <= hi)
                                         for lo, hi in OCCLUSION_BINS])
    breakdown("object", "held", [("held", lambda v: v), ("not held", lambda v: not v)])
    big = [r for r in rows if r["size"] >= MIN_SIZE_PX and not r["eligible"]]
    print(f"  (>= {MIN_SIZE_PX:.0f} px but > {100 * MAX_OCCLUSION:.0f} % occluded: {ratio(sum(r['found'] for r in big), len(big))})")
    views = {o: sum(r["orientation"] == o for r in el) for o in ("palm", "back", "side")}
    print(f"eligible hands by view: {views}")
    if tiles:
        path = Path(args.grid)
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), grid_image(tiles), [cv2.IMWRITE_JPEG_QUALITY, 85])
        print(f"grid of {len(tiles)} frames: {path} (green found, red missed, grey not eligible, "
              f"cyan detected landmarks, magenta false detections)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
