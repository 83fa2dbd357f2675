"""Launch the hand/object pose node (and optionally RViz) on a ROS 2 install.

    ros2 launch hand_object_pose pose.launch.py \
        image:=/camera/color/image_raw camera_info:=/camera/color/camera_info use_rviz:=true

Without model:= it runs the offline hand detector and its landmark network (`hand_landmarks`: MediaPipe's
Apache-2.0 models shipped in models/hand_detector; hands only, nothing to download). Object poses need
one of the pose networks: model:=<preset> (kpt_*, occrobnet_*, a2j_*, dma_*) with its exported model_path,
or straight from the authors' release (exported to ONNX once on the first start, then cached):

    ros2 launch hand_object_pose pose.launch.py model:=kpt_ih26m_2p5d model_path:=/data/snapshot_kpt_ih26m.pth.tar

Parameters come from config/<model>.yaml (or params_file:=...), the same files the plain entry point
uses (python -m hand_object_pose.ros.pose_node --ros-args --params-file config/<model>.yaml);
relative paths in them are resolved against this package's share directory. docs/ros.md lists
every parameter.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from hand_object_pose.inference.params_file import load_node_parameters, resolve_paths

PACKAGE = "hand_object_pose"

ARGUMENTS = (
    ("model", "hand_landmarks", "model preset; selects config/<model>.yaml unless params_file is given (one "
                                "YAML per preset: hand_landmarks, kpt_*, occrobnet_*, a2j_*, dma_*; see docs/ros.md); "
                                "the default runs the shipped offline hand detector (models/hand_detector): "
                                "hands only; object poses need a pose network preset"),
    ("params_file", "", "parameter YAML for the node; '' = <share>/config/<model>.yaml"),
    ("model_path", "", "'' keeps the YAML's model_path; else an exported .onnx, or a weights file (the authors' "
                       ".pth.tar, a training checkpoint .pt) that the node exports to ONNX once and caches"),
    ("namespace", "", "namespace of the node and its relative topics"),
    ("image", "image", "input colour image topic (sensor_msgs/Image)"),
    ("camera_info", "camera_info", "CameraInfo topic of the colour image (same stamps as the image)"),
    ("depth", "depth", "aligned depth image topic (16UC1 mm or 32FC1 m), used when use_depth is true"),
    ("roi", "roi", "optional sensor_msgs/RegionOfInterest hand box topic (crop_source auto/roi)"),
    ("use_depth", "", "true/false overrides the YAML's use_depth; '' keeps it"),
    ("use_large_shm", "false", "load config/fastdds_large_shm.xml (16 MB shared memory) for the node; the "
                               "camera process needs the same profile (docs/ros.md)"),
    ("use_sim_time", "false", "use /clock (bag replay)"),
    ("log_level", "info", "node log level: debug, info, warn, error"),
    ("use_rviz", "false", "start RViz with rviz_config"),
    ("rviz_config", "", "RViz config; '' = <share>/config/pose.rviz"),
    ("lifecycle", "unmanaged", "'unmanaged' (default): the node processes at once; 'managed': a lifecycle node "
                               "(configure loads the model, activate subscribes and publishes, deactivate stops "
                               "and releases the model, cleanup frees it all)"),
    ("autostart", "true", "with lifecycle:=managed: configure and activate at start-up; false: wait for a "
                          "lifecycle manager or `ros2 lifecycle set /hand_object_pose configure`"),
)
LIFECYCLES = ("unmanaged", "managed")


def _nodes(context):
    share = get_package_share_directory(PACKAGE)
    arg = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    params_file = arg["params_file"] or os.path.join(share, "config", f"{arg['model']}.yaml")
    overrides = resolve_paths(load_node_parameters(params_file), share)
    overrides["use_sim_time"] = arg["use_sim_time"].lower() == "true"
    if arg["model_path"]:
        overrides["model_path"] = os.path.abspath(os.path.expanduser(arg["model_path"]))
    if arg["use_depth"]:
        overrides["use_depth"] = arg["use_depth"].lower() == "true"
    if arg["lifecycle"] not in LIFECYCLES:
        raise ValueError(f"lifecycle:={arg['lifecycle']!r} is invalid: expected one of {LIFECYCLES}")
    # The entry point's own options (before --ros-args): --managed [--autostart] (hand_object_pose.ros.managed_node).
    lifecycle_flags = [] if arg["lifecycle"] == "unmanaged" else \
        ["--managed"] + (["--autostart"] if arg["autostart"].lower() == "true" else [])
    env = {}
    if arg["use_large_shm"].lower() == "true":
        env["FASTRTPS_DEFAULT_PROFILES_FILE"] = os.path.join(share, "config", "fastdds_large_shm.xml")
    pose_node = Node(
        package=PACKAGE, executable="pose_node", name="hand_object_pose", namespace=arg["namespace"],
        parameters=[params_file, overrides],
        remappings=[(topic, arg[topic]) for topic in ("image", "camera_info", "depth", "roi")],
        arguments=[*lifecycle_flags, "--ros-args", "--log-level", arg["log_level"]],
        additional_env=env, output="screen", emulate_tty=True)
    rviz = Node(
        package="rviz2", executable="rviz2", name="rviz2", namespace=arg["namespace"],
        arguments=["-d", arg["rviz_config"] or os.path.join(share, "config", "pose.rviz")],
        parameters=[{"use_sim_time": overrides["use_sim_time"]}],
        condition=IfCondition(LaunchConfiguration("use_rviz")), output="screen")
    return [pose_node, rviz]


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=description)
         for name, default, description in ARGUMENTS]
        + [OpaqueFunction(function=_nodes)])
