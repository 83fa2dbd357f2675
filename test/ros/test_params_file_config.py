"""`inference.params_file.load_estimator_config` (no ROS: the evaluation CLI) gives exactly the
EstimatorConfig the pose node builds from the same params file through rclpy."""
from pathlib import Path

import pytest
import rclpy
import yaml
from rclpy.context import Context
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from hand_object_pose.inference.params_file import NODE_NAME, load_estimator_config
from hand_object_pose.ros.parameters import declare_and_read

REPO = Path(__file__).resolve().parents[2]
PRESET_FILES = sorted(p for p in (REPO / "config").glob("*.yaml") if p.name != "objects.yaml")


def node_estimator_config(params_file: Path):
    """The EstimatorConfig the node's parameter code reads from `params_file` (declared on a plain node)."""
    context = Context()
    rclpy.init(context=context, args=["--ros-args", "--params-file", str(params_file)],
               signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        node = Node(NODE_NAME, context=context)
        return declare_and_read(node)[1]
    finally:
        if node is not None:
            node.destroy_node()
        context.try_shutdown()


@pytest.mark.parametrize("path", PRESET_FILES, ids=lambda p: p.stem)
def test_shipped_params_files_give_the_nodes_config(path):
    assert load_estimator_config(path) == node_estimator_config(path)


def test_node_section_overrides_and_non_default_values(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({
        "/**": {"ros__parameters": {"model": "kpt_ho3d_3d", "model_path": "a.onnx", "threads": 3,
                                    "use_depth": True, "depth_sources": ["depth_image", "default"]}},
        NODE_NAME: {"ros__parameters": {"model_path": "b.onnx", "fixed_roi": [1.0, 2.0, 30.0, 40.0],
                                        "providers": ["cpu"]}}}))
    config = load_estimator_config(path)
    assert config == node_estimator_config(path)
    assert (config.model_path, config.threads, config.depth_sources) == ("b.onnx", 3, ("depth_image", "default"))
    assert config.providers == ("CPUExecutionProvider",) and config.fixed_roi == (1.0, 2.0, 30.0, 40.0)
    assert load_estimator_config(path, model_path="c.onnx", crop_source="roi").model_path == "c.onnx"


def test_unusable_files_fail_with_the_file_and_parameter_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="params file not found"):
        load_estimator_config(tmp_path / "missing.yaml")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"model_path": "a.onnx"}}}))
    with pytest.raises(ValueError, match=r"bad.yaml: parameter 'model' is not set"):
        load_estimator_config(path)
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"model": "kpt_ho3d_3d", "model_path": "a.onnx",
                                                                "crop_margin": 9.0}}}))
    with pytest.raises(ValueError, match=r"bad.yaml: parameter crop_margin=9.0 is invalid"):
        load_estimator_config(path)
