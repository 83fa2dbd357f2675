"""Parameter declaration, the shipped per-preset YAMLs, and start-up rejection of invalid values."""
import dataclasses
import json
import re
from pathlib import Path

import pytest
import rclpy
import yaml
from rclpy.context import Context
from rclpy.signals import SignalHandlerOptions

from hand_object_pose.inference.catalogue import ObjectCatalogue
from hand_object_pose.inference.config import EstimatorConfig
from hand_object_pose.models.registry import preset_names
from hand_object_pose.inference.params_file import NODE_ESTIMATOR_DEFAULTS
from hand_object_pose.ros.parameters import ESTIMATOR_PARAMETERS, NODE_PARAMETERS, NodeSettings, ParameterError
from hand_object_pose.ros.pose_node import PoseNode

REPO = Path(__file__).resolve().parents[2]
PRESET_FILES = sorted(p for p in (REPO / "config").glob("*.yaml") if p.name != "objects.yaml")


def read_params(params_file: Path):
    """Construct the node (declares and validates every parameter) with `params_file`, then tear down."""
    context = Context()
    rclpy.init(context=context, args=["--ros-args", "--params-file", str(params_file)],
               signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        node = PoseNode(context=context)
        described = {name: node.describe_parameter(name) for name in (*NODE_PARAMETERS, *ESTIMATOR_PARAMETERS)}
        return node.settings, node.estimator_config, described
    finally:
        if node is not None:
            node.destroy_node()
        context.try_shutdown()


def write_params(tmp_path: Path, base: Path = REPO / "config" / "kpt_ho3d_3d_r18.yaml", **changes) -> Path:
    data = yaml.safe_load(base.read_text())
    data["/**"]["ros__parameters"].update(changes)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_every_estimator_config_field_is_a_parameter():
    fields = {f.name for f in dataclasses.fields(EstimatorConfig)}
    assert set(ESTIMATOR_PARAMETERS) <= fields
    assert fields - set(ESTIMATOR_PARAMETERS) <= {"model_overrides"}   # a mapping: no ROS parameter type


def test_one_yaml_per_preset():
    assert sorted(p.stem for p in PRESET_FILES) == preset_names()


@pytest.mark.parametrize("path", PRESET_FILES, ids=lambda p: p.stem)
def test_shipped_yaml_is_valid(path, monkeypatch):
    monkeypatch.chdir(REPO)   # relative paths in the YAMLs are relative to the working directory
    settings, config, described = read_params(path)
    assert config.model == path.stem and config.backend == "onnxruntime"
    assert config.providers == ("CUDAExecutionProvider", "CPUExecutionProvider")
    assert settings.image_reliability == "best_effort" and settings.image_depth == 1
    if config.object_catalogue:
        assert config.object_id in ObjectCatalogue.load(config.object_catalogue)
    assert all(d.description for d in described.values())
    assert described["crop_margin"].floating_point_range[0].to_value == 4.0
    assert described["image_depth"].integer_range[0].from_value == 1


@pytest.mark.parametrize("changes,message", [
    ({"crop_margin": 10.0}, "parameter 'crop_margin' is out of range: expected 1.0 <= crop_margin <= 4.0"),
    ({"crop_margin": 2}, "parameter 'crop_margin' has the wrong type: expected a floating-point number"),
    ({"image_depth": 0}, "parameter 'image_depth' is out of range: expected 1 <= image_depth <= 100"),
    ({"image_reliability": "sometimes"}, "parameter 'image_reliability'='sometimes' is invalid: expected one of"),
    ({"right_wrist_frame": "/right_wrist"}, "parameter 'right_wrist_frame'='/right_wrist' starts with '/'"),
    ({"left_wrist_frame": "right_hand_wrist"}, "are both 'right_hand_wrist'"),
    ({"object_frame_prefix": "a b/"}, "parameter 'object_frame_prefix'='a b/' contains characters"),
    ({"backend": "tensorflow"}, "parameter backend='tensorflow' is invalid: expected one of"),
    ({"model_path": "model.txt"}, "parameter model_path='model.txt' is invalid: expected a .onnx file"),
    ({"model_path": "model.pt"}, "parameter model_path='model.pt': weights file not found"),
    ({"presence_threshold": 1.5}, "parameter 'presence_threshold' is out of range"),
    ({"model": ""}, "parameter 'model' is not set"),
])
def test_invalid_values_are_rejected_naming_the_parameter(tmp_path, changes, message):
    with pytest.raises(ParameterError) as err:
        read_params(write_params(tmp_path, **changes))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_docs_tables_match_the_declared_parameters():
    """Each row of docs/ros.md's parameter tables gives the code's default, range and description."""
    rows = {m.group(1): m.groups()[1:] for m in re.finditer(r"^\| `(\w+)` \| ([^|]*) \| ([^|]*) \| (.*) \|$",
                                                            (REPO / "docs" / "ros.md").read_text(), re.M)}
    defaults = {f.name: f.default for f in dataclasses.fields(EstimatorConfig) if f.default is not dataclasses.MISSING}
    defaults.update(NODE_ESTIMATOR_DEFAULTS, **dataclasses.asdict(NodeSettings()))
    wrong = []
    for name, (description, value_range) in {**NODE_PARAMETERS, **ESTIMATOR_PARAMETERS}.items():
        if name not in rows:
            continue   # test_every_parameter_is_documented names it
        default, documented_range, documented_description = (cell.strip() for cell in rows[name])
        value = defaults.get(name)
        expected_default = "(required)" if name == "model" else \
            f"`{json.dumps(list(value) if isinstance(value, tuple) else value)}`"
        expected_range = "" if value_range is None else f"{value_range[0]} … {value_range[1]}"
        if (default, documented_range, documented_description.replace("\\|", "|")) != \
                (expected_default, expected_range, description):
            wrong.append(name)
    assert not wrong, f"docs/ros.md rows that differ from the code: {wrong}"


def test_every_parameter_is_documented():
    docs = (REPO / "docs" / "ros.md").read_text()
    missing = [name for name in (*NODE_PARAMETERS, *ESTIMATOR_PARAMETERS) if f"| `{name}` |" not in docs]
    assert not missing, f"parameters missing from docs/ros.md: {missing}"
