"""Write N synthetic hands-and-object samples to disk (format: docs/synthetic.md).

    python -m hand_object_pose.synthetic.generate OUT_DIR --count 1000 [--seed 0] [--size 256 256]

Layout of OUT_DIR: ``meta.json``, ``catalogue.yaml`` + ``meshes/*.ply`` (the objects), and per sample
``rgb/NNNNNN.png`` (RGB), ``depth/NNNNNN.png`` (uint16 millimetres, 0 = nothing), ``labels/NNNNNN.png``
(uint8 instance labels, see ``scene.LABEL_IDS``) and ``annotations/NNNNNN.json``. Sample i depends
only on (seed, i): ``--start`` lets several processes fill one folder in parallel.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import cv2
import numpy as np
import torch

from hand_object_pose.geometry.skeleton import JOINT_NAMES
from hand_object_pose.synthetic.objects import write_catalogue
from hand_object_pose.synthetic.scene import LABEL_IDS, SceneConfig, SceneGenerator, SceneSample

FORMAT = "hand_object_pose.synthetic/1"
SUBDIRS = ("rgb", "depth", "labels", "annotations")


def _box(mask: np.ndarray, fallback_points: np.ndarray | None = None) -> list | None:
    """[x, y, width, height] (pixels) of a mask, else of the given points, else None."""
    rows, cols = np.nonzero(mask)
    if len(rows):
        return [int(cols.min()), int(rows.min()), int(cols.max() - cols.min() + 1), int(rows.max() - rows.min() + 1)]
    if fallback_points is not None:
        lo, hi = fallback_points.min(axis=0), fallback_points.max(axis=0)
        return [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])]
    return None


def _round(a, digits=6):
    return np.round(np.asarray(a, dtype=np.float64), digits).tolist()


def annotation(sample: SceneSample, frame_id: str) -> dict:
    """The JSON-serialisable ground truth of one sample (paths relative to the dataset folder)."""
    height, width = sample.labels.shape
    hands = {}
    for side, hand in sample.hands.items():
        hands[side] = {
            "joints_cam": _round(hand.joints_cam), "joints_2d": _round(hand.joints_2d, 3),
            "joints_visible": hand.joints_visible.astype(bool).tolist(),
            "mano_pose": _round(hand.mano_pose), "mano_shape": _round(hand.mano_shape),
            "mano_trans": _round(hand.mano_trans),
            "box": _box(sample.labels == LABEL_IDS[side], hand.joints_2d),
            "mask_pixels": hand.mask_pixels, "style": hand.style,
        }
    objects = [{
        "id": o.object_id, "rotation": _round(o.rotation), "translation": _round(o.translation),
        "corners_rest": _round(o.corners_rest), "symmetry": o.symmetry, "mask_pixels": o.mask_pixels,
        "box": _box(sample.labels == LABEL_IDS["object"]),
    } for o in sample.objects]
    return {
        "frame_id": frame_id, "image": f"rgb/{frame_id}.png", "depth": f"depth/{frame_id}.png",
        "labels": f"labels/{frame_id}.png", "image_size": [width, height], "K": _round(sample.K),
        "hands": hands, "objects": objects, "interacting": len(hands) == 2,
    }


def write_sample(out_dir: str, frame_id: str, sample: SceneSample) -> None:
    cv2.imwrite(os.path.join(out_dir, "rgb", f"{frame_id}.png"), cv2.cvtColor(sample.rgb, cv2.COLOR_RGB2BGR))
    depth_mm = np.clip(np.round(sample.depth * 1000.0), 0, 65535).astype(np.uint16)
    cv2.imwrite(os.path.join(out_dir, "depth", f"{frame_id}.png"), depth_mm)
    cv2.imwrite(os.path.join(out_dir, "labels", f"{frame_id}.png"), sample.labels)
    with open(os.path.join(out_dir, "annotations", f"{frame_id}.json"), "w") as handle:
        json.dump(annotation(sample, frame_id), handle, separators=(",", ":"))


def generate(out_dir: str, count: int, seed: int = 0, start: int = 0, config: SceneConfig | None = None,
             progress: bool = True, renderer: str = "auto") -> dict:
    """Render samples start..start+count-1 into ``out_dir``; returns (and writes) the meta dict."""
    from tqdm import tqdm

    config = config or SceneConfig()
    for sub in SUBDIRS:
        os.makedirs(os.path.join(out_dir, sub), exist_ok=True)
    write_catalogue(out_dir)
    generator = SceneGenerator(config, renderer=renderer)
    began = time.perf_counter()
    for index in tqdm(range(start, start + count), desc="synthetic", unit="sample", disable=not progress):
        write_sample(out_dir, f"{index:06d}", generator.sample(seed, index))
    seconds = time.perf_counter() - began
    meta = {
        "format": FORMAT, "seed": seed, "start": start, "count": count,
        "image_size": list(config.image_size), "label_ids": LABEL_IDS, "joint_names": list(JOINT_NAMES),
        "depth_png": "uint16 millimetres, 0 = no surface", "catalogue": "catalogue.yaml",
        "hand_model": "licence-free stand-in hand (NOT MANO), models/standin_hand; "
                      "ManoLayer(flat_hand_mean=True) with camera-frame global orientation and translation",
        "renderer": generator.renderer, "seconds": round(seconds, 3),
        "samples_per_second": round(count / seconds, 3) if seconds > 0 else None,
    }
    with open(os.path.join(out_dir, "meta.json" if start == 0 else f"meta_{start:06d}.json"), "w") as handle:
        json.dump(meta, handle, indent=2)
    return meta


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Render synthetic two-hand + object samples with ground truth.")
    parser.add_argument("out_dir")
    parser.add_argument("--count", type=int, required=True, help="number of samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=int, default=0, help="index of the first sample (parallel runs)")
    parser.add_argument("--size", type=int, nargs=2, default=(256, 256), metavar=("WIDTH", "HEIGHT"))
    parser.add_argument("--renderer", choices=("auto", "gl", "torch"), default="auto",
                        help="gl: moderngl/EGL (fast); torch: the pure-torch rasteriser; auto: gl if it starts")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is fastest for these small tensors; run processes in parallel)")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    if args.count <= 0 or min(args.size) <= 0:
        parser.error("--count and --size must be positive")
    meta = generate(args.out_dir, args.count, seed=args.seed, start=args.start,
                    config=SceneConfig(image_size=tuple(args.size)), renderer=args.renderer)
    print(f"wrote {args.count} samples to {args.out_dir} in {meta['seconds']:.1f} s "
          f"({meta['samples_per_second']:.2f} samples/s, {meta['renderer']} renderer)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
