"""`Estimator`: one code path from an RGB image (+ intrinsics, optional depth) to a `HandObjectEstimate`.

Used by the ROS node, the demo and the evaluation tools alike, so what is measured offline is what
runs on the robot. Per frame:

1. choose the crop (external ROI, fixed ROI, tracking from the previous result, or a coarse pass of
   the network on the whole letterboxed frame when tracking is lost), with intrinsics K' = A K;
2. run the network (torch or ONNX Runtime) on the 256x256 crop;
3. adapt the model's outputs (per family) to root-relative canonical joints, 2D keypoints, presence,
   per-joint confidence and a root-relative object pose;
4. recover each hand's absolute root depth (depth image -> 2D fit -> default) and map everything
   back into the full image and the camera's optical frame;
5. optional One-Euro smoothing; per-stage timings in `result.timings_ms`.

Errors: configuration problems raise ValueError at construction (naming the field); a missing or
corrupt model file raises FileNotFoundError/ValueError naming the path; per-frame input that cannot
be used raises `InvalidInputError`; per-frame input that was worked around (depth of another size,
ROI outside the image, ...) is reported in `result.warnings` and the frame is still processed.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .config import EstimatorConfig
from .result import HandObjectEstimate

__all__ = ["Estimator", "EstimatorConfig", "InvalidInputError"]


class InvalidInputError(ValueError):
    """A frame's input cannot be used (wrong image shape/dtype, unusable intrinsics). The message
    says what was wrong and what was expected; the estimator's state is unchanged."""


class Estimator:
    """Hand (and object) pose estimator for a stream of frames.

    Attributes (read-only after construction):
      config: the validated `EstimatorConfig`.
      model_name: the preset name.
      input_size: side of the square network input in pixels (256).
      backend_in_use: what really runs, e.g. "onnxruntime:CUDAExecutionProvider",
        "onnxruntime:CPUExecutionProvider", "torch:cpu", "torch:cuda:0".
      gpu_in_use: True when the network runs on a GPU.
      catalogue: the loaded `ObjectCatalogue`, or None.
    """

    def __init__(self, config: EstimatorConfig):
        """Validate the config, load the catalogue, build the model and backend, check where it runs
        (loud warning or, with `require_gpu`, RuntimeError when a requested GPU is not used), and do
        `config.warmup_runs` warm-up runs.

        Raises ValueError (bad config field / unknown preset listing the known ones / catalogue
        error), FileNotFoundError (model, catalogue or MANO path missing), RuntimeError (GPU required
        but not in use).
        """
        raise NotImplementedError("Estimator is being implemented (issue #6); the API above is stable")

    def estimate(self, image_rgb: np.ndarray, camera, depth_m: Optional[np.ndarray] = None,
                 roi=None, stamp_s: Optional[float] = None) -> HandObjectEstimate:
        """Estimate hands and object in one frame.

        Args:
          image_rgb: (H, W, 3) uint8, RGB channel order (the ROS layer converts bgr8 etc.).
          camera: the image's intrinsics: a `hand_object_pose.geometry.camera` camera object or a
            (3, 3) K matrix (pixels). Distortion, when the camera object has it, is applied to 2D
            keypoints by the camera object's own methods.
          depth_m: optional (H, W) float32 depth in metres aligned to the image (the ROS layer
            converts 16UC1 millimetres); 0, NaN and inf are invalid pixels. A depth image of another
            size is ignored (warning in the result).
          roi: optional (x, y, width, height) in pixels from an external detector (used by
            crop_source "auto" and "roi"); clipped to the image; entirely outside -> ignored with a
            warning in the result.
          stamp_s: acquisition time in seconds (image header stamp) for smoothing; None = the
            previous stamp + 1/30 s. A stamp earlier than the previous one resets the smoothing.

        Returns a `HandObjectEstimate` in metres, camera optical frame, keypoints in full-image
        pixels, right hand first; `timings_ms` holds the per-stage times (`TIMING_STAGES`).
        Raises InvalidInputError for unusable input.
        """
        raise NotImplementedError

    def reset_tracking(self) -> None:
        """Forget the previous frame (crop tracking and smoothing state): the next frame is processed
        as the first one. Call it when the camera moves abruptly or frames were skipped for long."""
        raise NotImplementedError
