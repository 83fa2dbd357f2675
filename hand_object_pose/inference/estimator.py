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

import contextlib
import dataclasses
import logging
import time
from pathlib import Path
from typing import Optional

import numpy as np

from hand_object_pose.geometry.camera import CameraIntrinsics, apply_affine, invert_affine, warp_image
from hand_object_pose.models.weights_file import load_weights, read_weights_file

from . import crops as crop_lib
from .adapters import CropPrediction, make_adapter
from .backends import OnnxRuntimeBackend, TorchBackend, warm_up
from .catalogue import ObjectCatalogue
from .config import CROP_AUTO, CROP_DETECTOR, CROP_FIXED, CROP_FULL, CROP_ROI, COARSE_MODEL_NONE, OBJECT_MODEL_NONE, \
    EstimatorConfig
from .filtering import ResultSmoother
from .lifting import lift_prediction
from .per_hand import SIDE_CUE_PEAKEDNESS, SIDE_CUES, PerHandCrops
from .result import HandObjectEstimate

__all__ = ["Estimator", "EstimatorConfig", "InvalidInputError", "TIMING_STAGES"]

LOG = logging.getLogger(__name__)

TIMING_STAGES = ("detector", "crop", "coarse_pass", "preprocess", "inference", "postprocess", "root_depth",
                 "object_fit", "smoothing", "total")
"""Keys of `HandObjectEstimate.timings_ms` (milliseconds). "coarse_pass" (the whole-frame pass when
tracking was lost, all its sub-stages included) only appears on frames that ran one; "preprocess",
"inference" and "postprocess" are those of the final crop, absent when the coarse pass found no
hand (its answer is the frame's result, the network is not run twice on the same crop);
"object_fit" (an object's pose fitted to the depth image) only on frames with a depth image and an object to fit;
"smoothing" only with smoothing on; "detector" (the hand detector: palm detection when it ran, and its
landmark network) only with crop_source "detector" or a family that runs on the detector."""

DEFAULT_FRAME_PERIOD_S = 1.0 / 30.0

RANDOM_WEIGHTS_SEED = 1
"""Seed of the weights a torch model gets with allow_random_weights (the same network on every start)."""


class InvalidInputError(ValueError):
    """A frame's input cannot be used (wrong image shape/dtype, unusable intrinsics). The message
    says what was wrong and what was expected; the estimator's state is unchanged."""


def _export_record(model_path: str) -> Optional[dict]:
    """The `<model>.onnx.json` record `tools.export_onnx` writes beside an export, or None (the twin of
    export.preset_export.read_record, which this layer does not import)."""
    import json

    record = Path(f"{model_path}.json").expanduser()
    try:
        return json.loads(record.read_text()) if record.is_file() else None
    except (OSError, ValueError):
        return None


class _Stopwatch:
    """Accumulates milliseconds per stage into a dict."""

    def __init__(self, timings: dict):
        self.timings = timings

    @contextlib.contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + (time.perf_counter() - start) * 1e3


class Estimator:
    """Hand (and object) pose estimator for a stream of frames.

    Attributes (read-only after construction):
      config: the validated `EstimatorConfig`.
      model_name: the preset name.
      input_size: side of the square network input in pixels (256).
      backend_in_use: what really runs, e.g. "onnxruntime:CUDAExecutionProvider",
        "onnxruntime:CPUExecutionProvider", "torch:cpu", "torch:cuda:0".
      gpu_in_use: True when the network runs on a GPU.
      precision_in_use: the network's arithmetic: "fp32", "int8" (a quantized export) or "fp16"
        (TensorRT fp16, torch .half()); `config.precision` other than "auto" must match it.
      catalogue: the loaded `ObjectCatalogue`, or None.
      hands_only: the network reports no object pose.
      runs_on_hand_detector: the preset's network is the offline hand detector's (hand_landmarks).
      object_model_in_use: the object network's .onnx path (`EstimatorConfig.object_model_path`), or "".
      coarse_model_in_use: the coarse network's .onnx path (`EstimatorConfig.coarse_model_path`), or "".
      cuda_graph_in_use: (property) whether runs are replayed as CUDA graphs now (`EstimatorConfig.cuda_graph`).
    """

    def __init__(self, config: EstimatorConfig):
        """Validate the config, load the catalogue, build the model and backend, check where it runs
        (loud warning or, with `require_gpu`, RuntimeError when a requested GPU is not used), and do
        `config.warmup_runs` warm-up runs.

        Raises ValueError (bad config field / unknown preset listing the known ones / catalogue
        error / corrupt model file naming the path), FileNotFoundError (model file missing),
        RuntimeError (GPU required but not in use). A missing MANO directory only logs a warning.
        Dense Mutual Attention also needs a catalogue whose entries name object templates (ValueError
        naming what is missing otherwise) and, with ONNX Runtime, a file exported with those templates.
        """
        from hand_object_pose.models.registry import get_preset

        self.config = config = dataclasses.replace(config).validate()
        self.model_name = config.model
        family, model_config = get_preset(config.model)
        try:
            model_config = family.with_overrides(model_config, config.model_overrides)
        except (TypeError, ValueError) as exc:  # an unknown field, or the config's own validation
            raise ValueError(f"EstimatorConfig.model_overrides={config.model_overrides!r} is invalid: {exc}") from None
        for name, none in (("object_model_path", OBJECT_MODEL_NONE), ("coarse_model_path", COARSE_MODEL_NONE)):
            if getattr(config, name) not in ("", none) and not getattr(family, "per_hand_crops", False):
                raise ValueError(f"EstimatorConfig.{name}={getattr(config, name)!r}: {config.model!r} sees both "
                                 "hands and the object in one crop; object and coarse networks are for a family "
                                 "that sees one hand per crop (hand_heatmap)")
        self._adapter = make_adapter(family, model_config, config.mano_path)
        self.input_size = self._adapter.input_size
        self.catalogue = ObjectCatalogue.load(config.object_catalogue) if config.object_catalogue else None
        self.object_id = self._resolve_object_id()
        # Models built around object templates (Dense Mutual Attention) take them, and their hand mesh, from
        # the catalogue and mano_path; the templates also give the reported objects their meshes.
        self._adapter.use_catalogue(self.catalogue, self.object_id, config.mano_path)
        # The offline hand detector: the crop source "detector", and the whole network of a family that
        # runs on it (hand_landmarks), which then needs no backend of its own.
        self._runs_on_detector = bool(family.runs_on_hand_detector)
        self._hand_detector = (self._make_hand_detector()
                               if self._runs_on_detector or config.crop_source == CROP_DETECTOR else None)
        self._object_meshes = self.catalogue.load_templates() if self.catalogue is not None else {}
        if config.mano_path and not Path(config.mano_path).expanduser().is_dir():
            # Not fatal: meshes fall back to the licence-free stand-in hand, loudly.
            LOG.warning("mano_path %s is not a directory: hand meshes fall back to the licence-free stand-in "
                        "hand, NOT MANO (convert the official files first, see docs/mano.md)", config.mano_path)

        if self._runs_on_detector:
            self._backend = None
        elif config.backend == "onnxruntime":
            self._backend = self._onnx_backend(config.model_path)
        else:
            # Random weights are drawn from a fixed seed (the caller's random state untouched): a test or
            # timing run on them sees the same network every time, not one draw in many whose outputs by
            # chance look like a hand.
            import torch   # only the torch backend needs it here

            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(RANDOM_WEIGHTS_SEED)
                model = self._adapter.build_model()
            if config.model_path:
                self._load_torch_weights(family, model, config.model_path)
            else:
                LOG.warning("model %s runs with RANDOM weights (allow_random_weights): its outputs are "
                            "meaningless", config.model)
            self._backend = TorchBackend(self._adapter.inference_module(model), self._adapter.input_names,
                                         self._adapter.output_names, config.device, config.fp16, config.threads,
                                         config.require_gpu)
        runner = self._backend if self._backend is not None else self._hand_detector
        self.hands_only = not self._adapter.predicts_object
        self.runs_on_hand_detector = self._runs_on_detector
        self.backend_in_use = runner.in_use
        self.gpu_in_use = runner.on_gpu
        self.precision_in_use = getattr(runner, "precision", "fp32")
        if config.precision != "auto" and self.precision_in_use != config.precision:
            raise ValueError(f"EstimatorConfig.precision={config.precision!r} but the network runs in "
                             f"{self.precision_in_use} ({config.model_path or config.model}): export the model with "
                             f"`python -m hand_object_pose.tools.export_onnx ... --precision {config.precision}`, or "
                             "set precision 'auto'")
        blank = np.zeros((self.input_size, self.input_size, 3), np.uint8)
        if self._backend is not None:
            started = time.perf_counter()
            warm_up(self._backend.run, self._adapter.preprocess(blank), config.warmup_runs)
            if self.backend_in_use.endswith("TensorrtExecutionProvider") and config.warmup_runs:
                LOG.info("TensorRT warm-up (%d runs, the engine build when not cached) took %.1f s",
                         config.warmup_runs, time.perf_counter() - started)
        if self._hand_detector is not None:
            self._hand_detector.warm_up(config.warmup_runs)

        # A family that sees one hand per crop (hand_heatmap) runs once per hand (and object) crop; its object
        # crops may go to an object network of their own (`object_model_path`), its coarse pass to a coarse
        # network (`coarse_model_path`, of its own input size).
        self.per_hand_crops = bool(getattr(family, "per_hand_crops", False))
        object_path = self._companion_file("object_model_path", OBJECT_MODEL_NONE, "object_model_file")
        self._object_backend = self._companion_backend(object_path, "object")
        if self._object_backend is not None:
            warm_up(self._object_backend.run, self._adapter.preprocess(blank), config.warmup_runs)
        self.object_model_in_use = str(object_path or "")
        coarse_path = self._companion_file("coarse_model_path", COARSE_MODEL_NONE, "coarse_model_file")
        coarse = None
        if coarse_path:
            backend = self._companion_backend(coarse_path, "coarse")
            if backend.input_side is None:
                raise ValueError(f"coarse network {coarse_path}: its image input has no fixed square size "
                                 f"(inputs {[i.shape for i in backend.session.get_inputs()]})")
            # Its input size is its own: the adapter that reads it is the preset's at that size.
            coarse_config = family.with_overrides(model_config, {"input_size": backend.input_side})
            coarse_adapter = make_adapter(family, coarse_config, config.mano_path)
            side = coarse_adapter.input_size
            warm_up(backend.run, coarse_adapter.preprocess(np.zeros((side, side, 3), np.uint8)), config.warmup_runs)
            coarse = (coarse_adapter, backend.run)
        self.coarse_model_in_use = str(coarse_path or "")
        self._per_hand = (PerHandCrops(self._adapter, self._backend.run, config, self._backend.takes_batches,
                                       self._object_backend.run if self._object_backend is not None else None,
                                       self._hand_side_cue(), coarse)
                          if self.per_hand_crops else None)
        self._tracker = crop_lib.CropTracker(config.track_lost_after)
        self._last_roi: Optional[np.ndarray] = None
        self._last_stamp: Optional[float] = None
        self._smoother = ResultSmoother(config.one_euro_min_cutoff_hz, config.one_euro_beta,
                                        config.one_euro_d_cutoff_hz)
        LOG.info("estimator ready: model %s on %s, %s", config.model, self.backend_in_use, self.precision_in_use)

    @property
    def cuda_graph_in_use(self) -> bool:
        """Whether the network's runs are replayed as CUDA graphs now (`config.cuda_graph` on the CUDA provider;
        False again once a capture failed and the plain session took over)."""
        return bool(getattr(self._backend, "cuda_graph", False))

    # --- construction helpers ---------------------------------------------------------------------

    def _onnx_backend(self, path: str) -> OnnxRuntimeBackend:
        """An ONNX Runtime session over `path` with the config's provider settings, checked to be an export of the
        preset (its tensors, its metadata). ValueError (one line) otherwise; FileNotFoundError when missing."""
        c = self.config
        backend = OnnxRuntimeBackend(path, c.providers, c.fp16, c.trt_cache_dir, c.threads, c.require_gpu,
                                     cuda_graph=c.cuda_graph)
        expected = set(self._adapter.input_names) | set(self._adapter.output_names)
        missing = sorted(expected - set(backend.input_names) - set(backend.output_names))
        if missing:
            raise ValueError(f"ONNX model {path} does not look like a {c.model!r} export: missing tensors {missing} "
                             f"(it has inputs {backend.input_names}, outputs {backend.output_names})")
        self._adapter.check_onnx_metadata(backend.session.get_modelmeta().custom_metadata_map, path,
                                          _export_record(path))
        return backend

    def _companion_file(self, field: str, none: str, record_key: str) -> str:
        """A companion network's .onnx path (the object or the coarse network of a family that sees one hand per
        crop): the config's `field`, else the one the model's export record names under `record_key` (relative to
        the record), else "" (none; also for `none`, the torch backend and other families)."""
        c = self.config
        value = getattr(c, field)
        if not self.per_hand_crops or value == none or c.backend != "onnxruntime" or self._runs_on_detector:
            return ""
        if value:
            return value
        # As export.preset_export.companion_network_of, which the int8 cache uses (inference and export sit side by
        # side and do not import each other: docs/architecture.md).
        named = (_export_record(c.model_path) or {}).get(record_key)
        if not named:
            return ""
        path = Path(named).expanduser()
        return str(path if path.is_absolute() else Path(c.model_path).expanduser().parent / path)

    def _companion_backend(self, path: str, role: str) -> Optional[OnnxRuntimeBackend]:
        """The session of a companion (`role`) network at `path` ("" -> None), checked to be the preset's and in
        the model's precision (ValueError otherwise)."""
        if not path:
            return None
        backend = self._onnx_backend(path)
        if backend.precision != self.precision_in_use:
            raise ValueError(f"{role} network {path} runs in {backend.precision} but the model "
                             f"{self.config.model_path} in {self.precision_in_use}: give both in one precision")
        return backend

    def _hand_side_cue(self) -> str:
        """What tells a new hand's side (per_hand.SIDE_CUES): the export record's `hand_side_cue` (a network trained
        for handedness says "presence"), else the heat-maps' peakedness."""
        if self.config.backend != "onnxruntime":
            return SIDE_CUE_PEAKEDNESS
        cue = (_export_record(self.config.model_path) or {}).get("hand_side_cue", SIDE_CUE_PEAKEDNESS)
        if cue not in SIDE_CUES:
            raise ValueError(f"{self.config.model_path}: its export record's hand_side_cue {cue!r} is not one of "
                             f"{SIDE_CUES}")
        return cue

    def _make_hand_detector(self):
        """The offline hand detector with the network's provider settings; HandDetectorFilesError (a
        FileNotFoundError, one line) when its files are missing or corrupt."""
        from .hand_detection import HandDetector, HandDetectorConfig

        c = self.config
        return HandDetector.from_config(HandDetectorConfig(
            model_dir=c.hand_detector_dir, mirrored=c.camera_mirrored, min_detection_score=c.detector_min_score,
            redetect_interval=c.detector_redetect_interval,
            providers=tuple(c.providers), fp16=c.fp16, trt_cache_dir=c.trt_cache_dir, threads=c.threads,
            require_gpu=c.require_gpu, cuda_graph=c.cuda_graph))

    def _resolve_object_id(self) -> str:
        wanted = self.config.object_id
        if self.catalogue is None:
            return wanted or ("object" if self._adapter.predicts_object else "")
        if wanted:
            if wanted not in self.catalogue:
                raise ValueError(f"EstimatorConfig.object_id={wanted!r} is not in the object catalogue "
                                 f"{self.catalogue.source}; known ids: {list(self.catalogue.ids)}")
            return wanted
        if len(self.catalogue) == 1:
            return self.catalogue.ids[0]
        if self._adapter.predicts_object:
            raise ValueError(f"EstimatorConfig.object_id is empty but the catalogue {self.catalogue.source} "
                             f"holds {len(self.catalogue)} objects: name the one this model tracks "
                             f"(one of {list(self.catalogue.ids)})")
        return ""

    def _attach_object_meshes(self, objects: list) -> None:
        """Give each reported object its catalogue template posed in the camera frame (metres)."""
        for obj in objects:
            template = self._object_meshes.get(obj.object_id)
            if template is not None:
                obj.vertices = template.vertices.astype(np.float64) @ obj.rotation.T + obj.translation
                obj.faces = template.faces

    def _load_torch_weights(self, family, model, path: str) -> None:
        """Any weights file `models.weights_file` reads (the authors' release, a training checkpoint, a state
        dict). FileNotFoundError when missing; ValueError (one line) when corrupt or of another model."""
        file = Path(path).expanduser()
        if not file.is_file():
            raise FileNotFoundError(f"model file not found: {file}")
        load_weights(family, model, read_weights_file(file), self.model_name)

    # --- per frame ----------------------------------------------------------------------------------

    def run_network(self, crop_rgb: np.ndarray) -> dict:
        """The network alone on one (S, S, 3) uint8 crop (pre-processing + backend): the model-only
        time of the benchmark. Returns the raw named outputs. (Not for a family that runs on the hand
        detector: its network only runs inside the detector.)"""
        if self._backend is None:
            raise ValueError(f"{self.model_name} runs inside the hand detector; it has no network of its own to run")
        return self._backend.run(self._adapter.preprocess(crop_rgb))

    def estimate(self, image_rgb: np.ndarray, camera, depth_m: Optional[np.ndarray] = None,
                 roi=None, stamp_s: Optional[float] = None, hand_rois: Optional[dict] = None) -> HandObjectEstimate:
        """Estimate hands and object in one frame.

        Args:
          image_rgb: (H, W, 3) uint8, RGB channel order (the ROS layer converts bgr8 etc.).
          camera: the image's intrinsics: a `geometry.camera.CameraIntrinsics` (distortion
            included: keypoints are undistorted before the metric fit) or a (3, 3) K matrix (pixels).
          depth_m: optional (H, W) float32 depth in metres aligned to the image (the ROS layer
            converts 16UC1 millimetres); 0, NaN and inf are invalid pixels. A depth image of another
            size is ignored (warning in the result).
          roi: optional (x, y, width, height) in pixels from an external detector (used by
            crop_source "auto" and "roi"); clipped to the image; entirely outside -> ignored with a
            warning in the result.
          stamp_s: acquisition time in seconds (image header stamp) for smoothing; None = the
            previous stamp + 1/30 s. A stamp earlier than the previous one resets the smoothing.
          hand_rois: optional {side: (x, y, width, height)} pixels, one box per hand (e.g. ground-truth
            boxes in evaluation); used only by a family that sees one hand per crop (`per_hand_crops`),
            which then skips its coarse pass. Other families ignore it.

        Returns a `HandObjectEstimate` in metres, camera optical frame, keypoints in full-image
        pixels, right hand first; `timings_ms` holds the per-stage times (`TIMING_STAGES`).
        Raises InvalidInputError for unusable input.
        """
        start = time.perf_counter()
        image_rgb, camera = self._check_inputs(image_rgb, camera)
        if not self.config.tracking:
            self.reset_tracking()   # unrelated images: nothing carries over from the previous one
        height, width = image_rgb.shape[:2]
        result = HandObjectEstimate(model=self.model_name, backend=self.backend_in_use)
        watch = _Stopwatch(result.timings_ms)
        if depth_m is not None:
            depth_m = np.asarray(depth_m)
            if depth_m.shape != (height, width):
                result.warnings.append(f"depth image of shape {depth_m.shape} does not match the colour image "
                                       f"({height}, {width}); depth ignored for this frame")
                depth_m = None
        stamp_s = self._next_stamp(stamp_s, result)

        prediction = None
        if self._hand_detector is not None:
            with watch.stage("detector"):
                detections = self._hand_detector.process(image_rgb)
            result.detector = self._detector_report(detections)
            if self._per_hand is not None:
                hand_rois = hand_rois if hand_rois is not None else {
                    h.side: (crop_lib.box_around_keypoints([h.landmarks_px], self.config.crop_margin,
                                                           self.config.min_crop_size_px), 1.0)
                    for h in detections.hands}
            elif self._runs_on_detector:
                crop = crop_lib.Crop(np.array([0.0, 0.0, float(width), float(height)]),
                                     np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), camera, max(width, height),
                                     crop_lib.FROM_DETECTOR)
                prediction = self._adapter.from_detections(detections.hands)
            else:
                with watch.stage("crop"):
                    box = self._box_of_detected_hands(detections.hands)
                if box is None:  # no hands: an empty result, the network is not run
                    result.crop_source = crop_lib.FROM_DETECTOR
                    return self._finish(result, stamp_s, start)
                crop = crop_lib.make_crop(box, camera, self.input_size, crop_lib.FROM_DETECTOR)
        if self._per_hand is not None:
            return self._finish(self._estimate_per_hand(image_rgb, camera, depth_m, roi, hand_rois, result, watch),
                                stamp_s, start)
        if self._hand_detector is None:
            with watch.stage("crop"):
                crop = self._choose_crop(width, height, camera, roi, result)
        if crop is None:  # tracking lost: coarse pass on the letterboxed frame, then the hands' crop
            with watch.stage("coarse_pass"):
                crop = crop_lib.make_crop(crop_lib.full_frame_box(width, height), camera, self.input_size,
                                          crop_lib.FROM_FULL_FRAME)
                prediction = self._adapter.parse(self.run_network(warp_image(image_rgb, crop.affine,
                                                                             self.input_size)))
                box = self._box_of_present_hands(prediction, crop)
            if box is not None:  # hands found: run again on their box (else the coarse pass is the answer)
                crop = crop_lib.make_crop(box, camera, self.input_size, crop_lib.FROM_TRACKING)
                prediction = None
        if prediction is None:
            with watch.stage("preprocess"):
                inputs = self._adapter.preprocess(warp_image(image_rgb, crop.affine, self.input_size))
            with watch.stage("inference"):
                outputs = self._backend.run(inputs)
            with watch.stage("postprocess"):
                prediction = self._adapter.parse(outputs)
        result.crop_source = crop.origin
        with watch.stage("root_depth"):
            result.hands, result.objects = lift_prediction(prediction, crop, camera, depth_m, self.config,
                                                           self.object_id, (width, height))

        if self._runs_on_detector:
            self._report_detected_hands(result, detections.hands, camera)
        return self._finish(result, stamp_s, start)

    def _estimate_per_hand(self, image_rgb, camera, depth_m, roi, hand_rois, result, watch) -> HandObjectEstimate:
        """One crop per hand (and the object) for a `per_hand_crops` family (inference/per_hand.py)."""
        width, height = image_rgb.shape[1], image_rgb.shape[0]
        boxes = roi_box = None
        origin = crop_lib.FROM_DETECTOR if self._hand_detector is not None else crop_lib.FROM_ROI
        if hand_rois is not None:
            boxes = {side: (value if isinstance(value, tuple) else
                            (crop_lib.enlarge_box(value, self.config.crop_margin, self.config.min_crop_size_px), 1.0))
                     for side, value in hand_rois.items()}
        elif roi is not None and self.config.crop_source in (CROP_AUTO, CROP_ROI):
            clipped = crop_lib.clip_roi(roi, width, height)
            if clipped is None:
                result.warnings.append(f"roi {roi!r} is empty, malformed or entirely outside the {width}x{height} "
                                       "image (expected x, y, width, height in pixels); ignored")
            else:
                roi_box = crop_lib.enlarge_box(clipped, self.config.crop_margin, self.config.min_crop_size_px)
        result.hands, result.objects, result.crop_source = self._per_hand.estimate(
            image_rgb, camera, depth_m, watch, boxes, roi_box, origin)
        return result

    def _finish(self, result: HandObjectEstimate, stamp_s: float, start: float) -> HandObjectEstimate:
        """Crop tracking, smoothing, object meshes and the total time of a frame's result."""
        present = [h.joints_uv for h in result.hands if h.present]
        box = crop_lib.box_around_keypoints(present, self.config.crop_margin, self.config.min_crop_size_px) \
            if present else None
        if box is None:
            self._tracker.miss()
        else:
            self._tracker.update(box)
        if self.config.smoothing:
            with _Stopwatch(result.timings_ms).stage("smoothing"):
                self._smoother(result, stamp_s)
        self._attach_object_meshes(result.objects)  # after smoothing: the mesh follows the reported pose
        result.timings_ms["total"] = (time.perf_counter() - start) * 1e3
        return result

    def reset_tracking(self) -> None:
        """Forget the previous frame (crop tracking and smoothing state): the next frame is processed
        as the first one. Call it when the camera moves abruptly or frames were skipped for long."""
        self._tracker.reset()
        if self._per_hand is not None:
            self._per_hand.reset()
        if self._hand_detector is not None:
            self._hand_detector.reset()
        self._last_roi = None
        self._last_stamp = None
        self._smoother.reset()

    # --- steps ----------------------------------------------------------------------------------------

    @staticmethod
    def _check_inputs(image_rgb, camera):
        image = np.asarray(image_rgb)
        if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
            raise InvalidInputError(f"image must be (H, W, 3) RGB with H, W > 0, got shape {image.shape}")
        if image.dtype != np.uint8:
            raise InvalidInputError(f"image must be uint8 (0-255), got {image.dtype}")
        if not isinstance(camera, CameraIntrinsics):
            try:
                camera = CameraIntrinsics.from_matrix(camera)
            except (ValueError, TypeError) as exc:
                raise InvalidInputError(f"camera must be a CameraIntrinsics or a 3x3 K with fx, fy > 0: {exc}") \
                    from None
        return image, camera

    def _next_stamp(self, stamp_s, result) -> float:
        if stamp_s is None:
            stamp_s = 0.0 if self._last_stamp is None else self._last_stamp + DEFAULT_FRAME_PERIOD_S
        elif self._last_stamp is not None and stamp_s <= self._last_stamp:
            result.warnings.append(f"frame stamp {stamp_s:.6f} s is not after the previous one "
                                   f"({self._last_stamp:.6f} s): smoothing restarted")
            self._smoother.reset()
        self._last_stamp = float(stamp_s)
        return float(stamp_s)

    def _choose_crop(self, width, height, camera, roi, result) -> Optional[crop_lib.Crop]:
        """The crop for this frame, or None when a coarse whole-frame pass must find the hands."""
        c = self.config
        if roi is not None and c.crop_source in (CROP_AUTO, CROP_ROI):
            clipped = crop_lib.clip_roi(roi, width, height)
            if clipped is None:
                result.warnings.append(f"roi {roi!r} is empty, malformed or entirely outside the {width}x{height} "
                                       "image (expected x, y, width, height in pixels); ignored")
            else:
                self._last_roi = clipped
                box = crop_lib.enlarge_box(clipped, c.crop_margin, c.min_crop_size_px)
                return crop_lib.make_crop(box, camera, self.input_size, crop_lib.FROM_ROI)
        if c.crop_source == CROP_ROI and self._last_roi is not None:
            box = crop_lib.enlarge_box(self._last_roi, c.crop_margin, c.min_crop_size_px)
            return crop_lib.make_crop(box, camera, self.input_size, crop_lib.FROM_ROI)
        if c.crop_source == CROP_FIXED:
            box = crop_lib.enlarge_box(c.fixed_roi, c.crop_margin, c.min_crop_size_px)
            return crop_lib.make_crop(box, camera, self.input_size, crop_lib.FROM_FIXED)
        if c.crop_source in (CROP_FULL, CROP_ROI):
            return crop_lib.make_crop(crop_lib.full_frame_box(width, height), camera, self.input_size,
                                      crop_lib.FROM_FULL_FRAME)
        tracked = self._tracker.box_inside(width, height)   # None once the hands' box left the image: re-detect
        if tracked is not None:
            return crop_lib.make_crop(tracked, camera, self.input_size, crop_lib.FROM_TRACKING)
        return None

    def _box_of_detected_hands(self, hands) -> Optional[np.ndarray]:
        """Square box around the detected hands a network of this preset reports: all of them for a
        two-hand network (one crop with both hands and the space between them, where a held object
        is); for a one-side network that side's hand, else the most present one (handedness can be
        wrong). None without hands."""
        if not hands:
            return None
        sides = tuple(self._adapter.sides)
        chosen = list(hands) if len(sides) > 1 else \
            ([h for h in hands if h.side in sides] or [max(hands, key=lambda h: h.presence)])
        return crop_lib.box_around_keypoints([h.landmarks_px for h in chosen], self.config.crop_margin,
                                             self.config.min_crop_size_px)

    def _detector_report(self, detections) -> dict:
        stats = self._hand_detector.stats
        return {"ran": detections.detector_ran, "palm_scores": [round(s, 4) for s in detections.palm_scores],
                "hands": len(detections.hands),
                "detection_scores": {h.side: h.detection_score for h in detections.hands},
                "presence": {h.side: h.presence for h in detections.hands},
                "detector_ms": detections.detector_ms, "landmark_ms": detections.landmark_ms,
                "detector_runs_per_s": stats.detector_runs_per_s(),
                "frames_without_hands": stats.frames_without_hands}

    @staticmethod
    def _report_detected_hands(result: HandObjectEstimate, detected, camera) -> None:
        """Each placed hand's crop box (its detector ROI bounds, x0, y0, width, height) and the mean
        reprojection error in pixels of its placed joints against its landmarks."""
        rois = {h.side: h.roi for h in detected}
        errors = {}
        for hand in result.hands:
            roi = rois.get(hand.side)
            if roi is not None:
                x0, y0, x1, y1 = roi.bounds_px()
                hand.crop_box = np.array([x0, y0, x1 - x0, y1 - y0])
            if np.all(hand.joints_xyz[:, 2] > 0):
                errors[hand.side] = float(np.linalg.norm(camera.project(hand.joints_xyz) - hand.joints_uv,
                                                         axis=1).mean())
        result.detector["reprojection_error_px"] = errors

    def _box_of_present_hands(self, prediction: CropPrediction, crop: crop_lib.Crop):
        to_image = invert_affine(crop.affine)
        present = [apply_affine(h.uv_crop, to_image) for h in prediction.hands
                   if h.presence >= self.config.presence_threshold]
        if not present:
            return None
        return crop_lib.box_around_keypoints(present, self.config.crop_margin, self.config.min_crop_size_px)
