"""The pose node's ROS parameters: declaration (descriptions, ranges), reading and validation.

Two groups, all flat lower_snake_case names:
* estimator parameters: the fields of `inference.EstimatorConfig` (same names, same meaning; see its
  docstring), so a parameter YAML reads like the config. Not exposed: `model_overrides` (a mapping,
  which ROS parameters cannot hold; a development option of the torch backend);
* node parameters (`NODE_PARAMETERS`): topics/QoS, pairing, TF, markers, diagnostics.

`declare_and_read(node)` returns (NodeSettings, EstimatorConfig) or raises `ParameterError` with a
one-line message naming the parameter, its value and what is allowed.

`check_command_line_overrides(node, args)` checks the `-p name:=value` overrides of the command line
against the declared types: rcl silently drops a wrong-typed `-p` value when a params file sets the
same parameter (the file's value is used), so the node must check them itself.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import yaml

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.parameter import Parameter

from hand_object_pose.inference.config import EstimatorConfig
from hand_object_pose.inference.params_file import NODE_ESTIMATOR_DEFAULTS
from hand_object_pose.ros.tf_output import frame_id_problem

RELIABILITIES = ("best_effort", "reliable")
CAMERA_INFO_FRAME_POLICIES = ("use", "reject")


class ParameterError(ValueError):
    """A parameter value that cannot be used; the message is one line."""


@dataclass(frozen=True)
class NodeSettings:
    image_reliability: str = "best_effort"
    image_depth: int = 1
    use_depth: bool = False
    sync_slop_s: float = 0.02
    pairing_queue: int = 5
    use_rectified_intrinsics: bool = False
    camera_info_frame_policy: str = "use"
    publish_tf: bool = True
    right_wrist_frame: str = "right_hand_wrist"
    left_wrist_frame: str = "left_hand_wrist"
    object_frame_prefix: str = ""
    publish_markers: bool = True
    mesh_marker_rate_hz: float = 2.0
    diagnostics_period_s: float = 1.0
    model_cache_dir: str = "~/.cache/hand_object_pose/onnx"


# name -> (description, (low, high) or None). Defaults come from NodeSettings.
NODE_PARAMETERS = {
    "image_reliability": ("QoS reliability of the image/depth subscriptions: 'best_effort' (sensor data, "
                          "default; also receives from reliable publishers) or 'reliable'", None),
    "image_depth": ("QoS history depth of the image/depth subscriptions; 1 = only the newest frame", (1, 100)),
    "use_depth": ("subscribe to 'depth' (aligned 16UC1 mm or 32FC1 m) and pair it with each image", None),
    "sync_slop_s": ("largest stamp difference in seconds between an image and its depth image", (0.0, 1.0)),
    "pairing_queue": ("images / camera_infos / depth images kept per topic while waiting for partners", (1, 100)),
    "use_rectified_intrinsics": ("use CameraInfo.P (rectified images) instead of K (raw images)", None),
    "camera_info_frame_policy": ("when a CameraInfo's frame_id differs from its image's: 'use' its intrinsics "
                                 "anyway (default) or 'reject' the frame; either way counted and warned about",
                                 None),
    "publish_tf": ("publish TF frames for each wrist and each catalogue object (child of the image frame)", None),
    "right_wrist_frame": ("TF child frame of the right wrist (no leading slash)", None),
    "left_wrist_frame": ("TF child frame of the left wrist (no leading slash)", None),
    "object_frame_prefix": ("prefix of each object's TF child frame (the catalogue's tf_child_frame), "
                            "e.g. 'hop/'; '' = none", None),
    "publish_markers": ("publish the 'markers' MarkerArray (skeletons, joints, meshes)", None),
    "mesh_marker_rate_hz": ("largest refresh rate of the heavy mesh markers in Hz; 0 = no mesh markers",
                            (0.0, 100.0)),
    "diagnostics_period_s": ("period of the /diagnostics status in seconds", (0.1, 60.0)),
    "model_cache_dir": ("where a weights-file model_path is exported to ONNX once and reused (keyed by the "
                        "weights' hash, preset and exporter version), and an fp32 .onnx run with precision int8 is "
                        "quantized once; unwritable = a temporary directory", None),
}

# EstimatorConfig field -> (description, (low, high) or None). The ranges repeat the config's own
# validation so that ROS tools (rqt_reconfigure, `ros2 param describe`) can show them.
ESTIMATOR_PARAMETERS = {
    "model": ("model preset, e.g. 'kpt_h2o3d_3d' (see docs/models.md)", None),
    "backend": ("'onnxruntime' (an exported .onnx) or 'torch'", None),
    "model_path": (".onnx file for onnxruntime, or a weights file (the authors' .pth.tar, a training checkpoint "
                   ".pt) exported once into model_cache_dir; for torch any weights file", None),
    "object_model_path": ("hand_heatmap: a second .onnx of the preset that runs the object crops; '' = the one "
                          "model_path's export record names (the shipped default's object network), 'none' = the "
                          "model's own object outputs; precision int8 quantizes the record's one with model_path (an "
                          "explicit file must then be an int8 export itself)", None),
    "coarse_model_path": ("hand_heatmap: a .onnx of the preset, of its own input size, that runs the coarse pass "
                          "(the whole-frame crop that finds the hands); '' = the one model_path's export record names "
                          "(the shipped default's coarse network), 'none' = the model itself; precision int8 "
                          "quantizes the record's one with model_path", None),
    "allow_random_weights": ("torch only: random weights when model_path is empty (tests/timing only)", None),
    "device": ("torch device: 'cpu', 'cuda' or 'cuda:N'", None),
    "providers": ("ONNX Runtime providers in priority order, e.g. ['tensorrt', 'cuda', 'cpu']", None),
    "require_gpu": ("exit at start-up when a requested GPU provider/device is not in use", None),
    "fp16": ("half precision (TensorRT fp16 / torch .half() on CUDA)", None),
    "trt_cache_dir": ("TensorRT engine cache directory; '' = no cache", None),
    "cuda_graph": ("ONNX Runtime on CUDA: replay the network as a captured CUDA graph (one static-batch session per "
                   "batch size; about 2x at batch 1 on an H200); a network that cannot be captured runs without", None),
    "precision": ("'auto' (what the model file holds, reported in the start-up log and diagnostics), 'fp32' or "
                  "'int8' (an export_onnx --precision int8 file, or an fp32 .onnx quantized once into model_cache_dir "
                  "at start-up): start-up fails on a file of another precision",
                  None),
    "threads": ("CPU threads of the backend; 0 = library default", (0, 256)),
    "warmup_runs": ("network runs at start-up", (0, 100)),
    "crop_source": ("'auto' | 'roi' | 'fixed' | 'full' | 'detector': where the network's hand crop comes from "
                    "('detector': the offline hand detector, models/hand_detector)", None),
    "fixed_roi": ("[x, y, width, height] in pixels for crop_source 'fixed'", None),
    "crop_margin": ("enlargement of the box around the hand", (1.0, 4.0)),
    "min_crop_size_px": ("smallest crop side in pixels", (8.0, 10000.0)),
    "presence_threshold": ("hand presence probability at or above which a hand is present", (0.0, 1.0)),
    "track_lost_after": ("frames without a hand after which tracking restarts with a coarse pass", (1, 1000)),
    "tracking": ("carry crops and smoothing from frame to frame; false for images that are not a video (a folder "
                 "of photos): every frame looked at afresh", None),
    "hand_detector_dir": ("folder of the offline hand detector's files; '' = the shipped models/hand_detector",
                          None),
    "camera_mirrored": ("the image is mirrored (selfie view): the hand detector's handedness is read so", None),
    "detector_min_score": ("palm detector score at or above which a palm is taken", (0.0, 1.0)),
    "detector_redetect_interval": ("while tracking, run the palm detector at least every N frames (0 = only "
                                   "when a hand is lost or missing)", (0, 100000)),
    "depth_sources": ("root depth sources in order, from ['depth_image', 'fit_2d', 'default']", None),
    "depth_joints": ("canonical joint indices sampled in the depth image (0 = wrist)", None),
    "depth_window_px": ("half side of the depth window around each keypoint, pixels", (0, 100)),
    "depth_min_m": ("smallest valid depth, metres", (0.0, 100.0)),
    "depth_max_m": ("largest valid depth, metres", (0.0, 100.0)),
    "depth_min_valid": ("fewest valid depth pixels needed to use the depth image", (1, 100000)),
    "hand_surface_offset_m": ("added to the measured skin depth (joints lie inside the hand), metres",
                              (-0.1, 0.1)),
    "fit_min_joint_confidence": ("joints below this confidence are left out of the 2D fit", (0.0, 1.0)),
    "hand_size_m": ("summed length of the 20 bones of the user's hand, metres (2D fit of 2.5D models)",
                    (0.2, 2.0)),
    "default_depth_m": ("wrist depth when no other source works, metres", (0.0, 100.0)),
    "plausibility_checks": ("report a hand as not present when its joints cannot be real (a joint at z <= 0, "
                            "centre over an image size outside the image, bone lengths outside human ranges); "
                            "counted in errors.implausible_hand_<reason>; off only for random-weight tests",
                            None),
    "object_catalogue": ("object catalogue YAML (config/objects.yaml); '' = none", None),
    "object_id": ("catalogue id of the manipulated object; '' = the catalogue's only entry", None),
    "smoothing": ("One-Euro smoothing of joints and object pose", None),
    "one_euro_min_cutoff_hz": ("One-Euro cutoff at rest, Hz", (0.0, 1000.0)),
    "one_euro_beta": ("One-Euro speed coefficient", (0.0, 1000.0)),
    "one_euro_d_cutoff_hz": ("One-Euro cutoff of the speed estimate, Hz", (0.0, 1000.0)),
    "mano_path": ("directory with MANO_RIGHT.npz / MANO_LEFT.npz; '' = licence-free stand-in hand", None),
}

_ARRAY_TYPES = {"providers": Parameter.Type.STRING_ARRAY, "depth_sources": Parameter.Type.STRING_ARRAY,
                "fixed_roi": Parameter.Type.DOUBLE_ARRAY, "depth_joints": Parameter.Type.INTEGER_ARRAY}
_TYPE_WORDS = {bool: "a boolean (true/false)", int: "an integer", float: "a floating-point number (write 1.0, not 1)",
               str: "a string"}


def _descriptor(description: str, value_range, kind) -> ParameterDescriptor:
    descriptor = ParameterDescriptor(description=description)
    if value_range is not None and kind is float:
        descriptor.floating_point_range = [FloatingPointRange(from_value=float(value_range[0]),
                                                              to_value=float(value_range[1]))]
    elif value_range is not None and kind is int:
        descriptor.integer_range = [IntegerRange(from_value=int(value_range[0]), to_value=int(value_range[1]), step=1)]
    return descriptor


def _declare(node, name: str, default, description: str, value_range) -> object:
    """Declare one parameter and return its value; ParameterError naming it when the given value is unusable."""
    kind = type(default)
    descriptor = _descriptor(description, value_range, kind)
    try:
        if name in _ARRAY_TYPES:
            # Arrays are declared by type: an empty default list has no inferable ROS type.
            value = node.declare_parameter(name, _ARRAY_TYPES[name], descriptor).value
            return tuple(default) if value is None else tuple(value)
        return node.declare_parameter(name, default, descriptor).value
    except InvalidParameterTypeException as exc:
        raise ParameterError(f"parameter '{name}' has the wrong type: expected {_TYPE_WORDS.get(kind, kind.__name__)} "
                             f"({exc.args[0]})") from None
    except InvalidParameterValueException as exc:
        raise ParameterError(f"parameter '{name}' is out of range: expected {value_range[0]} <= {name} <= "
                             f"{value_range[1]} ({exc.args[0]})") from None


def declare_and_read(node, resolve_model_path=None) -> tuple:
    """Declare every parameter on `node` and return (NodeSettings, EstimatorConfig), both validated.

    `resolve_model_path(estimator values, settings) -> path`, when given, replaces `model_path` before the
    config is validated (the node exports a weights file to ONNX there)."""
    estimator_defaults = {f.name: f.default for f in dataclasses.fields(EstimatorConfig)
                          if f.default is not dataclasses.MISSING}
    estimator_defaults["model"] = ""
    estimator_defaults.update(NODE_ESTIMATOR_DEFAULTS)   # the library reports raw outputs; the node checks them
    estimator_values = {name: _declare(node, name, estimator_defaults[name], description, value_range)
                        for name, (description, value_range) in ESTIMATOR_PARAMETERS.items()}
    node_defaults = NodeSettings()
    node_values = {name: _declare(node, name, getattr(node_defaults, name), description, value_range)
                   for name, (description, value_range) in NODE_PARAMETERS.items()}
    settings = validate_node_settings(NodeSettings(**node_values))
    if not estimator_values["model"]:
        raise ParameterError("parameter 'model' is not set: expected a model preset name; start the node with "
                             "--ros-args --params-file config/<preset>.yaml (config/hand_landmarks.yaml: the "
                             "launch default, the shipped offline hand detector)")
    if resolve_model_path is not None:
        estimator_values["model_path"] = resolve_model_path(estimator_values, settings)
    try:
        config = EstimatorConfig.from_dict(estimator_values).validate()
    except ValueError as exc:
        raise ParameterError(str(exc).replace("EstimatorConfig.", "parameter ")) from None
    return settings, config


def validate_node_settings(settings: NodeSettings) -> NodeSettings:
    if settings.image_reliability not in RELIABILITIES:
        raise ParameterError(f"parameter 'image_reliability'={settings.image_reliability!r} is invalid: "
                             f"expected one of {RELIABILITIES}")
    if settings.camera_info_frame_policy not in CAMERA_INFO_FRAME_POLICIES:
        raise ParameterError(f"parameter 'camera_info_frame_policy'={settings.camera_info_frame_policy!r} is "
                             f"invalid: expected one of {CAMERA_INFO_FRAME_POLICIES}")
    if not math.isfinite(settings.sync_slop_s):
        raise ParameterError("parameter 'sync_slop_s' must be finite")
    for name in ("right_wrist_frame", "left_wrist_frame"):
        problem = frame_id_problem(getattr(settings, name))
        if problem:
            raise ParameterError(f"parameter '{name}'={getattr(settings, name)!r} {problem}; expected a TF frame "
                                 "name such as 'right_hand_wrist'")
    if settings.object_frame_prefix and frame_id_problem(settings.object_frame_prefix + "x"):
        raise ParameterError(f"parameter 'object_frame_prefix'={settings.object_frame_prefix!r} "
                             f"{frame_id_problem(settings.object_frame_prefix + 'x')}; expected e.g. 'hop/' or ''")
    if settings.right_wrist_frame == settings.left_wrist_frame:
        raise ParameterError(f"parameters 'right_wrist_frame' and 'left_wrist_frame' are both "
                             f"{settings.right_wrist_frame!r}; expected two different TF frame names")
    return settings


# --- `-p name:=value` on the command line -----------------------------------------------------------

_PARAMETER_TYPE_WORDS = {
    ParameterType.PARAMETER_BOOL: "a boolean (true/false)", ParameterType.PARAMETER_INTEGER: "an integer",
    ParameterType.PARAMETER_DOUBLE: "a floating-point number (write 1.0, not 1)",
    ParameterType.PARAMETER_STRING: "a string", ParameterType.PARAMETER_BOOL_ARRAY: "a list of booleans",
    ParameterType.PARAMETER_INTEGER_ARRAY: "a list of integers",
    ParameterType.PARAMETER_DOUBLE_ARRAY: "a list of floating-point numbers",
    ParameterType.PARAMETER_STRING_ARRAY: "a list of strings"}
_ARRAY_OF = {bool: ParameterType.PARAMETER_BOOL_ARRAY, int: ParameterType.PARAMETER_INTEGER_ARRAY,
             float: ParameterType.PARAMETER_DOUBLE_ARRAY, str: ParameterType.PARAMETER_STRING_ARRAY}
_SCALAR_OF = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
              float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}


def command_line_overrides(args, node_name: str) -> list:
    """[(name, value text)] of each `-p name:=value` / `--param name:=value` inside the `--ros-args`
    sections of `args` (a rule `other_node:name:=value` for another node is left out)."""
    overrides, in_ros_args, i = [], False, 0
    while i < len(args):
        arg = args[i]
        if arg == "--ros-args":
            in_ros_args = True
        elif arg == "--":
            in_ros_args = False
        elif in_ros_args and arg in ("-p", "--param") and i + 1 < len(args):
            i += 1
            name, separator, value = args[i].partition(":=")
            if separator:
                target, _, name = name.rpartition(":")
                if not target or target.lstrip("/").split("/")[-1] == node_name:
                    overrides.append((name, value))
        i += 1
    return overrides


def _value_type(text: str):
    """The ROS parameter type rcl gives a `-p` value (it reads it as YAML: 1 integer, 1.0 double,
    true boolean, [..] list, anything else a string); None for a list mixing types."""
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    if isinstance(value, list):
        kinds = {type(v) for v in value}
        if len(kinds) > 1:
            return None
        return _ARRAY_OF.get(kinds.pop(), None) if kinds else "empty_array"
    if isinstance(value, str) and not (text.strip().startswith(("'", '"'))):
        try:
            float(text)            # rcl reads e.g. 1e3 or inf as a double, YAML 1.1 as a string
            return ParameterType.PARAMETER_DOUBLE
        except ValueError:
            pass
    return _SCALAR_OF.get(type(value), ParameterType.PARAMETER_STRING)


def check_command_line_overrides(node, args) -> None:
    """ParameterError naming the first `-p name:=value` of `args` whose type differs from the declared
    type of `name` (parameters the node does not have are left to rclpy, which ignores them)."""
    for name, text in command_line_overrides(args, node.get_name()):
        if not node.has_parameter(name):
            continue
        expected = node.describe_parameter(name).type
        given = _value_type(text)
        arrays = set(_ARRAY_OF.values())
        if given == expected or (given == "empty_array" and expected in arrays):
            continue
        given_words = ("a list mixing types" if given is None else "an empty list" if given == "empty_array"
                       else _PARAMETER_TYPE_WORDS.get(given, "a value").split(" (")[0])
        hint = " (quote it: -p name:=\"'text'\")" if expected == ParameterType.PARAMETER_STRING else ""
        raise ParameterError(f"parameter '{name}' has the wrong type on the command line: -p {name}:={text} is "
                             f"{given_words}, expected {_PARAMETER_TYPE_WORDS.get(expected, 'another type')}{hint}")
