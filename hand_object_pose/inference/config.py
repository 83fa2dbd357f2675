"""`EstimatorConfig`: every knob of the inference pipeline, with units, allowed values and validation.

The ROS node maps its parameters 1:1 onto these fields (same names), so `validate()` messages name
the field exactly as the user wrote it in the parameter YAML.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

BACKENDS = ("onnxruntime", "torch")

# crop_source values (see docs/inference.md "Where the hands are").
CROP_AUTO = "auto"      # external roi if given, else tracking from the previous result, else a coarse full-frame pass
CROP_ROI = "roi"        # the roi passed to estimate() (the last one given is reused); whole frame until one arrives
CROP_FIXED = "fixed"    # config.fixed_roi on every frame
CROP_FULL = "full"      # the whole frame, letterboxed to the network input, single pass
CROP_DETECTOR = "detector"  # the offline hand detector (inference.hand_detection): one crop around the hands it finds
CROP_SOURCES = (CROP_AUTO, CROP_ROI, CROP_FIXED, CROP_FULL, CROP_DETECTOR)

# Root-depth sources, tried in the configured order (names match result.DEPTH_FROM_*).
DEPTH_SOURCES = ("depth_image", "fit_2d", "default")

# `precision`: "auto" = whatever the model file holds (docs/speed.md).
PRECISIONS = ("auto", "fp32", "int8")
# `object_model_path` that keeps the model's own object outputs even when its export record names an object network;
# `coarse_model_path` that runs the coarse pass on the model even when its export record names a coarse network.
OBJECT_MODEL_NONE = "none"
COARSE_MODEL_NONE = "none"
# Short aliases accepted in `providers` (ROS parameter files are easier to write with these).
PROVIDER_ALIASES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
GPU_PROVIDERS = ("TensorrtExecutionProvider", "NvTensorRTRTXExecutionProvider", "CUDAExecutionProvider",
                 "MIGraphXExecutionProvider", "ROCMExecutionProvider", "DmlExecutionProvider")


def normalise_providers(providers) -> tuple[str, ...]:
    """Full ONNX Runtime provider names, aliases ("tensorrt", "cuda", "cpu") expanded, order kept."""
    return tuple(PROVIDER_ALIASES.get(str(p).lower(), str(p)) for p in providers)


def _runs_on_hand_detector(model: str) -> bool:
    """Whether the preset's family is run by the hand detector (False for an unknown preset: the
    Estimator reports that one, listing the known presets)."""
    from hand_object_pose.models.registry import get_preset

    try:
        family, _ = get_preset(model)
    except ValueError:
        return False
    return bool(family.runs_on_hand_detector)


@dataclass
class EstimatorConfig:
    """Configuration of an `Estimator`. Units: metres, pixels of the full input image, seconds, hertz.

    Model and backend
      model: preset name from `hand_object_pose.models.registry.preset_names()`, e.g. "kpt_h2o3d_3d".
      backend: "onnxruntime" (an exported .onnx) or "torch" (the PyTorch model).
      model_path: .onnx file for onnxruntime; for torch a state dict (.pt of ours, or the official
        .pth.tar, read with `torch.load(weights_only=True)`). Required unless `allow_random_weights`.
      object_model_path: a second .onnx of the same preset whose object outputs replace the model's on the
        object crops, for a family that sees one hand per crop (hand_heatmap: the shipped default's object
        network); "" = the one the model's export record names (`<model>.onnx.json`: `object_model_file`), if
        any; "none" = the model's own object outputs. ONNX Runtime only.
      coarse_model_path: a .onnx of the same preset, of any input size, that runs the coarse pass (the whole-frame
        crop that finds the hands) for a family that sees one hand per crop (the shipped default's coarse
        network, 192 px); "" = the one the model's export record names (`coarse_model_file`), if any; "none" =
        the model itself. ONNX Runtime only.
      allow_random_weights: torch only: build the preset with random weights when model_path is empty
        (tests, timing). Results are meaningless; a warning is logged.
      device: torch device, "cpu", "cuda" or "cuda:N".
      providers: ONNX Runtime execution providers in priority order; full names or the aliases
        "tensorrt", "cuda", "cpu", e.g. ("tensorrt", "cuda", "cpu").
      require_gpu: raise at start-up when a GPU provider/device was requested but is not in use
        (otherwise a loud warning is logged and the CPU is used).
      fp16: half precision: TensorRT provider option `trt_fp16_enable`; for torch, `.half()` on CUDA.
      trt_cache_dir: TensorRT engine cache directory (created if missing); empty = no engine cache.
      cuda_graph: ONNX Runtime on the CUDA provider: replay each batch size's run as a captured CUDA graph
        (a static-batch session per batch size; about 2x the network's rate at batch 1 on an H200, see
        docs/speed.md), the hand detector's networks too; a network that cannot be captured runs without,
        after a warning (measured on the default network, not yet on the detector's).
      precision: the arithmetic the network must run in: "auto" (whatever the file holds, reported as
        `Estimator.precision_in_use`), "fp32" or "int8" (an export of `tools.export_onnx --precision int8`;
        ONNX Runtime only): start-up fails when the model file is of another precision.
      threads: CPU threads for the backend (ORT intra-op / torch.set_num_threads); 0 = library default.
      warmup_runs: network runs on a blank input at start-up (first-run allocations, TensorRT build).
      model_overrides: preset fields to replace (torch backend), e.g. {"backbone_depth": 18} for a
        variant trained with this project; must match the weights.

    Where the hands are (crops)
      crop_source: "auto" | "roi" | "fixed" | "full" | "detector" (see the CROP_* constants above).
        "detector": the offline hand detector finds the hands on every frame (tracking them between
        frames); the crop is the square around the found hands' landmarks (a model of one side: that
        side's hand when found); a frame without hands gives an empty result without running the
        network. A family that runs on the detector (`hand_landmarks`) uses it with "auto" too.
      fixed_roi: (x, y, width, height) in pixels, used by crop_source="fixed".
      crop_margin: the square box around the hand's keypoints (tracking, coarse pass) or around an
        ROI is enlarged by this factor (1.25 = the official `process_bbox`); >= 1.
      min_crop_size_px: smallest crop side in pixels (a far or partly seen hand still gets context).
      presence_threshold: hand presence probability in [0, 1] at or above which a hand is "present".
      track_lost_after: consecutive frames without a present hand after which tracking is dropped
        and the next frame starts with a coarse pass.
      tracking: carry crops (and smoothing) from one frame to the next; false looks at every frame
        afresh, for images that are not a video (a folder of photos): a crop carried into an
        unrelated image finds the hand only where the whole-frame pass vouches for it, and costs
        accuracy (docs/hand_heatmap.md).
      hand_detector_dir: folder of the hand detector's files (ONNX + metadata.json); empty = the
        shipped models/hand_detector.
      camera_mirrored: the image is mirrored (a selfie view): the detector's handedness is read accordingly.
      detector_min_score: palm detector score in [0, 1] at or above which a palm is taken.
      detector_redetect_interval: while hands are tracked, run the palm detector at least every N
        frames (0 = only when a hand is lost or fewer than two are tracked, every 10 frames).

    How far (root depth of each hand; tried in `depth_sources` order)
      depth_sources: subset/order of ("depth_image", "fit_2d", "default"); "default" must be last.
      depth_joints: canonical joint indices whose neighbourhoods are sampled in the depth image
        (default: wrist and the four finger MCPs, i.e. the palm, which is rarely occluded by itself).
      depth_window_px: half side of the square neighbourhood sampled around each keypoint.
      depth_min_m, depth_max_m: depth values outside this range count as invalid (as do 0, NaN, inf).
      depth_min_valid: fewest valid depth pixels needed to trust the depth image.
      hand_surface_offset_m: added to the measured surface depth: the camera sees the skin, the
        model's joints are inside the hand (about half the palm thickness).
      fit_min_joint_confidence: joints below this confidence are left out of the 2D fit.
      hand_size_m: summed length of the 20 bones of the user's hand, used by the 2D fit of 2.5D
        models (A2J, KPT 2.5D), whose scale the image alone cannot give (adult average 0.75 m).
      default_depth_m: wrist depth used when no other source works.
      plausibility_checks: report a hand as not present when its placed joints cannot be real
        (`inference.plausibility`: a joint at z <= 0, the hand's centre more than an image size
        outside the image, bone lengths outside human ranges), with the reason in
        `HandEstimate.implausible`. Off by default here (the library reports what the network
        says); the ROS node turns it on by default. Random-weight networks fail it: leave it off there.

    Objects
      object_catalogue: YAML file (schema in docs/inference.md); empty = no catalogue (object poses
        are still reported, with `object_id` and no mesh).
      object_id: catalogue id of the manipulated object the model's object output refers to; empty =
        the catalogue's only entry, or "object" without a catalogue.

    Temporal smoothing (One-Euro filter per joint coordinate and per object pose; off by default)
      smoothing: enable it.
      one_euro_min_cutoff_hz: cutoff at rest; lower = smoother and more lag.
      one_euro_beta: cutoff increase per unit of speed (per m/s for joints); higher = less lag on fast moves.
      one_euro_d_cutoff_hz: cutoff of the speed estimate.

    Hand model
      mano_path: directory holding MANO_RIGHT.npz / MANO_LEFT.npz (converted); empty = the licence-free
        stand-in hand (NOT MANO). Used by models that output MANO parameters (kpt_*_angles) for their
        joints and meshes; a missing directory or file logs a warning, it is not fatal.
    """

    model: str
    backend: str = "onnxruntime"
    model_path: str = ""
    object_model_path: str = ""
    coarse_model_path: str = ""
    allow_random_weights: bool = False
    device: str = "cpu"
    providers: tuple = ("CPUExecutionProvider",)
    require_gpu: bool = False
    fp16: bool = False
    trt_cache_dir: str = ""
    cuda_graph: bool = False
    precision: str = "auto"
    threads: int = 0
    warmup_runs: int = 1
    model_overrides: dict = field(default_factory=dict)

    crop_source: str = CROP_AUTO
    fixed_roi: tuple = ()
    crop_margin: float = 1.25
    min_crop_size_px: float = 48.0
    presence_threshold: float = 0.5
    track_lost_after: int = 1
    tracking: bool = True
    hand_detector_dir: str = ""
    camera_mirrored: bool = False
    detector_min_score: float = 0.5
    detector_redetect_interval: int = 0

    depth_sources: tuple = DEPTH_SOURCES
    depth_joints: tuple = (0, 5, 9, 13, 17)
    depth_window_px: int = 4
    depth_min_m: float = 0.1
    depth_max_m: float = 5.0
    depth_min_valid: int = 8
    hand_surface_offset_m: float = 0.01
    fit_min_joint_confidence: float = 0.2
    hand_size_m: float = 0.75
    default_depth_m: float = 0.5

    object_catalogue: str = ""
    object_id: str = ""

    plausibility_checks: bool = False

    smoothing: bool = False
    one_euro_min_cutoff_hz: float = 1.0
    one_euro_beta: float = 1.0
    one_euro_d_cutoff_hz: float = 1.0

    mano_path: str = ""

    def validate(self) -> "EstimatorConfig":
        """Check every field; raise ValueError naming the field, its value and what is allowed.

        Returns self (with `providers` normalised to full names) so that calls can be chained.
        """
        def fail(name, expected):
            raise ValueError(f"EstimatorConfig.{name}={getattr(self, name)!r} is invalid: expected {expected}")

        def finite(name, low=-math.inf, high=math.inf, low_open=False):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < low or value > high or (low_open and value == low):
                bound = f"> {low}" if low_open else f">= {low}"
                fail(name, f"a finite number {bound}" + (f" and <= {high}" if high != math.inf else ""))

        def integer(name, low):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                fail(name, f"an integer >= {low}")

        for name in ("allow_random_weights", "require_gpu", "fp16", "cuda_graph", "smoothing", "camera_mirrored",
                     "tracking"):
            if not isinstance(getattr(self, name), bool):
                fail(name, "true or false")
        for name in ("trt_cache_dir", "object_catalogue", "object_id", "mano_path", "hand_detector_dir"):
            if not isinstance(getattr(self, name), str):
                fail(name, "a string ('' = not set)")
        if not isinstance(self.model, str) or not self.model:
            fail("model", "a preset name such as 'kpt_h2o3d_3d'")
        if self.backend not in BACKENDS:
            fail("backend", f"one of {BACKENDS}")
        if not isinstance(self.model_path, str):
            fail("model_path", "a file path string")
        on_detector = _runs_on_hand_detector(self.model)
        if on_detector:
            if self.backend != "onnxruntime":
                fail("backend", f"'onnxruntime' for {self.model!r} (its network ships as ONNX only)")
            if self.model_path:
                fail("model_path", f"empty for {self.model!r} (its network is the hand detector's, in "
                                   "hand_detector_dir)")
            if self.crop_source not in (CROP_AUTO, CROP_DETECTOR):
                fail("crop_source", f"'detector' (or 'auto') for {self.model!r}: it runs on the hand detector's crops")
        elif not self.model_path and not (self.backend == "torch" and self.allow_random_weights):
            fail("model_path", "the model file (.onnx for onnxruntime, .pt/.pth.tar for torch); "
                               "random weights only with backend='torch' and allow_random_weights=True")
        if self.backend == "onnxruntime" and not on_detector and not self.model_path.endswith(".onnx"):
            fail("model_path", "a .onnx file for backend='onnxruntime'")
        for name, none in (("object_model_path", OBJECT_MODEL_NONE), ("coarse_model_path", COARSE_MODEL_NONE)):
            value = getattr(self, name)
            if not isinstance(value, str) or value not in ("", none) \
                    and (self.backend != "onnxruntime" or not value.endswith(".onnx")):
                fail(name, f"'' (the one the model's export record names), {none!r}, or a .onnx file of the same "
                           "preset (backend 'onnxruntime' only)")
        if not (self.device == "cpu" or self.device == "cuda" or
                (self.device.startswith("cuda:") and self.device[5:].isdigit())):
            fail("device", "'cpu', 'cuda' or 'cuda:N'")
        if isinstance(self.providers, str) or not self.providers or \
                not all(isinstance(p, str) and p for p in self.providers):
            fail("providers", "a non-empty list of provider names, e.g. ['cuda', 'cpu'] or "
                              "['CUDAExecutionProvider', 'CPUExecutionProvider']")
        self.providers = normalise_providers(self.providers)
        unknown = [p for p in self.providers if not p.endswith("ExecutionProvider")]
        if unknown:
            fail("providers", f"ONNX Runtime provider names or the aliases {sorted(PROVIDER_ALIASES)}; "
                              f"not {unknown}")
        if self.fp16 and self.backend == "torch" and not self.device.startswith("cuda"):
            fail("fp16", "False with backend='torch' on the CPU (half precision is for CUDA/TensorRT)")
        if self.precision not in PRECISIONS:
            fail("precision", f"one of {PRECISIONS}")
        if self.precision == "int8" and self.backend != "onnxruntime":
            fail("precision", "'auto' or 'fp32' with backend='torch' (int8 is an ONNX export: tools.export_onnx "
                              "--precision int8)")
        integer("threads", 0)
        integer("warmup_runs", 0)
        if not isinstance(self.model_overrides, dict) or not all(isinstance(k, str) for k in self.model_overrides):
            fail("model_overrides", "a mapping from preset field names to values")
        if self.model_overrides and self.backend != "torch":
            fail("model_overrides", "empty for backend='onnxruntime' (the .onnx file fixes the architecture)")

        if self.crop_source not in CROP_SOURCES:
            fail("crop_source", f"one of {CROP_SOURCES}")
        if self.crop_source == CROP_FIXED or self.fixed_roi:
            roi = tuple(self.fixed_roi)
            if len(roi) != 4 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in roi) \
                    or roi[2] <= 0 or roi[3] <= 0 or roi[0] < 0 or roi[1] < 0:
                fail("fixed_roi", "(x, y, width, height) in pixels with x, y >= 0 and width, height > 0")
            self.fixed_roi = tuple(float(v) for v in roi)
        finite("crop_margin", 1.0, 4.0)
        finite("min_crop_size_px", 8.0)
        finite("presence_threshold", 0.0, 1.0)
        integer("track_lost_after", 1)
        finite("detector_min_score", 0.0, 1.0)
        integer("detector_redetect_interval", 0)

        sources = tuple(self.depth_sources)
        if not sources or any(s not in DEPTH_SOURCES for s in sources) or len(set(sources)) != len(sources) \
                or ("default" in sources and sources[-1] != "default"):
            fail("depth_sources", f"distinct names from {DEPTH_SOURCES}, 'default' (if given) last")
        self.depth_sources = sources
        joints = tuple(self.depth_joints)
        if not joints or not all(isinstance(j, int) and not isinstance(j, bool) and 0 <= j < 21 for j in joints):
            fail("depth_joints", "canonical joint indices in 0..20 (0 = wrist)")
        self.depth_joints = joints
        integer("depth_window_px", 0)
        finite("depth_min_m", 0.0, low_open=True)
        finite("depth_max_m", self.depth_min_m, low_open=True)
        integer("depth_min_valid", 1)
        finite("hand_surface_offset_m", -0.1, 0.1)
        finite("fit_min_joint_confidence", 0.0, 1.0)
        finite("hand_size_m", 0.2, 2.0)
        finite("default_depth_m", 0.0, low_open=True)


        finite("one_euro_min_cutoff_hz", 0.0, low_open=True)
        finite("one_euro_beta", 0.0)
        finite("one_euro_d_cutoff_hz", 0.0, low_open=True)
        return self

    @classmethod
    def from_dict(cls, values: dict) -> "EstimatorConfig":
        """Build from a flat dict (e.g. ROS parameters); unknown keys raise ValueError listing the known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown EstimatorConfig field(s) {unknown}; known fields: {sorted(known)}")
        converted = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**converted)
