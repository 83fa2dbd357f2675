"""The test-only tf2_msgs fixture: same type as the real tf2_msgs, and switchable per subprocess."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ros_test_helpers import env_with_tf2_fixture, env_without_tf2_fixture, tf2_fixture_prefix

# Type hash of tf2_msgs/msg/TFMessage in ROS 2 Jazzy: listeners of the real package match only this.
REAL_TFMESSAGE_HASH = "RIHS01_e369d0f05a23ae52508854b66f6aa0437f3449d652e8cbf22d5abe85d020f087"

IMPORT_AND_PUBLISH = (
    "import rclpy\n"
    "from tf2_msgs.msg import TFMessage\n"
    "from geometry_msgs.msg import TransformStamped\n"
    "rclpy.init()\n"
    "node = rclpy.create_node('tf2_fixture_check')\n"
    "node.create_publisher(TFMessage, '/tf', 100).publish(TFMessage(transforms=[TransformStamped()]))\n"
    "node.destroy_node(); rclpy.shutdown()\n"
)


def test_fixture_has_the_real_tfmessage_type_hash():
    description = tf2_fixture_prefix() / "share" / "tf2_msgs" / "msg" / "TFMessage.json"
    hashes = json.loads(description.read_text())["type_hashes"]
    assert {"type_name": "tf2_msgs/msg/TFMessage", "hash_string": REAL_TFMESSAGE_HASH} in hashes


def test_subprocess_with_fixture_can_publish_tfmessage():
    result = subprocess.run([sys.executable, "-c", IMPORT_AND_PUBLISH], env=env_with_tf2_fixture(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_subprocess_without_fixture_cannot_import_tf2_msgs():
    result = subprocess.run([sys.executable, "-c", "import tf2_msgs"], env=env_without_tf2_fixture(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "No module named 'tf2_msgs'" in result.stderr, result.stderr


@pytest.mark.parametrize("make_env", [env_with_tf2_fixture, env_without_tf2_fixture])
def test_subprocess_envs_keep_the_bootstrapped_ros_libraries_and_the_working_tree(make_env):
    """Both envs are derived from os.environ: the bootstrapper's LD_LIBRARY_PATH survives, and the
    working tree plus the installed messages import."""
    result = subprocess.run([sys.executable, "-c", "import rclpy, hand_object_pose.msg, hand_object_pose.models"],
                            env=make_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
