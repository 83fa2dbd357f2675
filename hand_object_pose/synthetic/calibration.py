"""Network-input crops rendered by the synthetic generator: the calibration frames of int8 quantization.

Static int8 quantization (`export.quantize`) needs the range of every activation on inputs like the ones
the network will see. `hand_crops` renders synthetic scenes (`SceneGenerator`, stand-in hands and
procedural objects on random backgrounds; deterministic in seed and index) and cuts the square crop the
official pipelines use around the visible hands' joints (x1.25, `geometry.camera.box_around_points`),
resized to the network's input size. The caller turns the crops into the graph's inputs with the
family's adapter (`tools.export_onnx.calibration_feeds`).
"""
from __future__ import annotations

import numpy as np

from hand_object_pose.geometry.camera import box_around_points, crop_affine, warp_image

# Rendered frame size: a camera-like frame around the hands, larger than any network input (cropped from).
FRAME_SIZE = (320, 240)
# A seed never used by the training or test splits of the default model's recipe (which use small seeds).
CALIBRATION_SEED = 9161


def hand_crops(size: int, count: int, seed: int = CALIBRATION_SEED, frame_size=FRAME_SIZE) -> list[np.ndarray]:
    """`count` (size, size, 3) uint8 RGB crops around the hands of rendered scenes with `seed` (scenes with
    no visible hand are skipped, so indices may be skipped too)."""
    from .scene import SceneConfig, SceneGenerator

    if count < 1:
        raise ValueError(f"hand_crops: count must be >= 1, got {count}")
    generator = SceneGenerator(SceneConfig(image_size=tuple(frame_size)))
    crops, index = [], 0
    while len(crops) < count:
        if index >= 20 * count:
            raise RuntimeError(f"hand_crops: only {len(crops)} of {count} rendered scenes had a visible hand")
        scene = generator.sample(seed, index)
        index += 1
        points = [hand.joints_2d[hand.joints_visible] for hand in scene.hands.values()]
        points = [p for p in points if len(p)]
        if not points:
            continue
        box = box_around_points(np.concatenate(points), enlarge=1.25)
        if box[2] < 8:
            continue
        crops.append(warp_image(scene.rgb, crop_affine(box, size), size))
    return crops
