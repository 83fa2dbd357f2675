"""`colcon build` of this repository succeeds, as on a ROS 2 install, and its install tree works.

The venv with the ROS build wheels plays the role of /opt/ros/<distro> (AMENT_PREFIX_PATH and
CMAKE_PREFIX_PATH point at it, as `source /opt/ros/jazzy/setup.bash` would). The repository's files
(tracked and untracked-but-not-ignored, i.e. what a clone would hold) are copied into a fresh
workspace's src/, so neither the working tree's venv nor its build folders take part.

Takes ~30-60 s on 2 cores. Skip it locally with HAND_OBJECT_POSE_SKIP_COLCON=1; `make test` and CI
run it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ros_test_helpers import REPO_ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("HAND_OBJECT_POSE_SKIP_COLCON") == "1",
                       reason="HAND_OBJECT_POSE_SKIP_COLCON=1"),
]

VENV = Path(sys.prefix)
PY_DIR = f"python{sys.version_info.major}.{sys.version_info.minor}"


def copy_sources(dest: Path) -> None:
    """Copy what a clone of the working tree would contain into ``dest``."""
    listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=REPO_ROOT, check=True, capture_output=True).stdout
    for name in filter(None, listing.decode().split("\0")):
        source = REPO_ROOT / name
        if not source.is_file():  # deleted in the working tree but still in the index
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def ros_install_env(**extra: str) -> dict[str, str]:
    """The venv as if it were a sourced ROS 2 install (derived from os.environ: see ros_test_helpers)."""
    env = dict(os.environ)
    env.update(VIRTUAL_ENV=str(VENV), PATH=f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}",
               AMENT_PREFIX_PATH=str(VENV), CMAKE_PREFIX_PATH=str(VENV))
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def colcon_workspace(tmp_path_factory) -> Path:
    workspace = tmp_path_factory.mktemp("colcon_ws")
    copy_sources(workspace / "src" / "hand_object_pose")
    colcon = [str(VENV / "bin" / "colcon"), "--log-base", str(workspace / "log")]
    build = subprocess.run([*colcon, "build", "--base-paths", "src", "--event-handlers", "console_direct+"],
                           cwd=workspace, env=ros_install_env(MAKEFLAGS="-j2"), capture_output=True, text=True,
                           timeout=280)
    assert build.returncode == 0, f"colcon build failed:\n{build.stdout[-6000:]}\n{build.stderr[-3000:]}"
    # Only our package: the tf2_msgs test fixture carries COLCON_IGNORE (on a robot it would shadow
    # the real tf2_msgs).
    assert sorted(p.name for p in (workspace / "install").iterdir() if p.is_dir()) == ["hand_object_pose"]
    return workspace


def test_colcon_build_installs_messages_python_package_scripts_and_share(colcon_workspace):
    prefix = colcon_workspace / "install" / "hand_object_pose"
    package = prefix / "lib" / PY_DIR / "site-packages" / "hand_object_pose"
    assert (package / "msg" / "_hand_object_poses.py").is_file(), "generated messages missing"
    assert (package / "models" / "__init__.py").is_file(), "hand-written Python package missing"
    assert "extend_path" in (package / "__init__.py").read_text(), "our __init__ must replace the generated one"
    pose_node = prefix / "lib" / "hand_object_pose" / "pose_node"
    assert pose_node.is_file() and os.access(pose_node, os.X_OK), "`ros2 run hand_object_pose pose_node` needs it"
    assert (prefix / "share" / "hand_object_pose" / "package.xml").is_file()
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "hand_object_pose").is_file()
    for folder in ("launch", "config", "models"):
        if (colcon_workspace / "src" / "hand_object_pose" / folder).is_dir():
            assert (prefix / "share" / "hand_object_pose" / folder).is_dir(), f"{folder}/ not installed"


def test_installed_package_imports_and_publishes_from_the_install_tree(colcon_workspace):
    """What `source install/setup.bash` provides is enough: the working tree is not on the path."""
    prefix = colcon_workspace / "install" / "hand_object_pose"
    env = ros_install_env(
        PYTHONPATH=str(prefix / "lib" / PY_DIR / "site-packages"),
        LD_LIBRARY_PATH=os.pathsep.join(filter(None, [str(prefix / "lib"), os.environ.get("LD_LIBRARY_PATH")])),
        AMENT_PREFIX_PATH=f"{prefix}{os.pathsep}{VENV}",
    )
    script = (
        "import hand_object_pose, hand_object_pose.models, rclpy\n"
        "from hand_object_pose.msg import HandObjectPoses, HandPose\n"
        "from ament_index_python.packages import get_package_share_directory\n"
        "print(hand_object_pose.models.__file__)\n"
        "print(get_package_share_directory('hand_object_pose'))\n"
        "rclpy.init()\n"
        "node = rclpy.create_node('colcon_check')\n"
        "node.create_publisher(HandObjectPoses, 'poses', 1).publish(HandObjectPoses(hands=[HandPose(side=1)]))\n"
        "node.destroy_node(); rclpy.shutdown()\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=colcon_workspace, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    models_file, share_dir = result.stdout.split()[:2]
    assert Path(models_file).is_relative_to(prefix), f"imported {models_file}, not the installed copy"
    assert Path(share_dir) == prefix / "share" / "hand_object_pose"
