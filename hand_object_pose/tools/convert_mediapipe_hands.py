"""Convert MediaPipe's hand models (Apache-2.0, in the mediapipe==0.10.21 wheel) to ONNX.

    python -m hand_object_pose.tools.convert_mediapipe_hands --out models/hand_detector
    python -m hand_object_pose.tools.convert_mediapipe_hands --wheel mediapipe-0.10.21-...whl --variant full

Needs the `convert-hands` extra (tensorflow-cpu, tf2onnx, ai-edge-litert); install it into a throwaway
venv, never into the run-time one:

    python -m venv /tmp/convert && /tmp/convert/bin/pip install -e '.[convert-hands]'

Without `--wheel` it runs `pip download mediapipe==0.10.21 --no-deps`. It compares ONNX Runtime with the
TFLite interpreter on several images (`--image` adds your own) and refuses the result beyond the stated
tolerance. The library code is `hand_object_pose.export.mediapipe_hands`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from hand_object_pose.export import mediapipe_hands


def _read_image(path: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB from a .npy, or any image file cv2 or PIL can read."""
    if path.endswith(".npy"):
        return np.load(path, allow_pickle=False)
    try:
        import cv2
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"cannot read image {path}")
        return image[:, :, ::-1]
    except ImportError:
        from PIL import Image
        return np.asarray(Image.open(path).convert("RGB"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="models/hand_detector", help="output folder (default: %(default)s)")
    parser.add_argument("--wheel", default=None,
                        help=f"a mediapipe-{mediapipe_hands.MEDIAPIPE_VERSION} wheel; downloaded when omitted")
    parser.add_argument("--variant", default=mediapipe_hands.DEFAULT_VARIANT, choices=mediapipe_hands.VARIANTS,
                        help="model size (default: %(default)s)")
    parser.add_argument("--image", action="append", default=[],
                        help="extra check image (png/jpg/npy, RGB); repeatable")
    args = parser.parse_args(argv)
    try:
        extra = [(Path(p).name, _read_image(p)) for p in args.image]
        mediapipe_hands.convert(args.out, wheel=args.wheel, variant=args.variant, extra_images=extra)
    except (mediapipe_hands.ConversionError, ValueError, OSError) as exc:
        print(f"convert_mediapipe_hands: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
