"""launch/pose.launch.py (cannot run here: no launch_ros on PyPI) is checked statically; the shipped
RViz/Fast DDS configs parse; the params-file helpers the launch file uses work."""
import ast
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

from hand_object_pose.inference.params_file import load_node_parameters, resolve_paths

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / "launch" / "pose.launch.py"


def launch_arguments() -> dict:
    tree = ast.parse(LAUNCH.read_text(), str(LAUNCH))
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "ARGUMENTS":
            return {name: (default, description) for name, default, description in ast.literal_eval(node.value)}
    raise AssertionError("ARGUMENTS not found in the launch file")


def test_launch_file_compiles_and_declares_every_knob_with_a_description():
    compile(LAUNCH.read_text(), str(LAUNCH), "exec")
    arguments = launch_arguments()
    assert {"model", "model_path", "params_file", "namespace", "image", "camera_info", "depth", "roi", "use_rviz",
            "rviz_config", "use_large_shm", "use_sim_time"} <= set(arguments)
    assert all(len(description) > 15 for _, description in arguments.values())
    assert (REPO / "config" / f"{arguments['model'][0]}.yaml").is_file()
    source = LAUNCH.read_text()
    assert "generate_launch_description" in source and "DeclareLaunchArgument(" in source
    for shipped in ("pose.rviz", "fastdds_large_shm.xml"):
        assert f'"{shipped}"' in source and (REPO / "config" / shipped).is_file()


def test_params_file_helpers(tmp_path):
    params = load_node_parameters(REPO / "config" / "kpt_ho3d_3d.yaml")
    assert params["model"] == "kpt_ho3d_3d"
    resolved = resolve_paths(params, "/opt/ros/jazzy/share/hand_object_pose")
    assert resolved == {"model_path": "/opt/ros/jazzy/share/hand_object_pose/models/kpt_ho3d_3d.onnx",
                        "object_catalogue": "/opt/ros/jazzy/share/hand_object_pose/config/objects.yaml"}
    assert resolve_paths({"model_path": "/abs/m.onnx", "object_catalogue": "package://x/y.yaml",
                          "mano_path": ""}, "/share") == {}
    own = tmp_path / "p.yaml"
    own.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"model": "a", "threads": 1}},
                                   "hand_object_pose": {"ros__parameters": {"model": "b"}}}))
    assert load_node_parameters(own) == {"model": "b", "threads": 1}


def test_rviz_config_shows_image_markers_and_tf():
    config = yaml.safe_load((REPO / "config" / "pose.rviz").read_text())
    displays = {d["Class"]: d for d in config["Visualization Manager"]["Displays"]}
    assert {"rviz_default_plugins/TF", "rviz_default_plugins/MarkerArray",
            "rviz_default_plugins/Image"} <= set(displays)
    assert displays["rviz_default_plugins/MarkerArray"]["Topic"]["Value"] == "/markers"
    assert displays["rviz_default_plugins/Image"]["Topic"]["Value"] == "/debug_image"


def test_fastdds_profile_has_a_16_mb_shm_segment():
    root = ET.parse(REPO / "config" / "fastdds_large_shm.xml").getroot()
    ns = {"f": "http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"}
    sizes = [int(e.text) for e in root.iterfind(".//f:transport_descriptor/f:segment_size", ns)]
    assert sizes == [16 * 1024 * 1024]
    assert root.find(".//f:participant[@is_default_profile='true']", ns) is not None
