"""pip metadata of setup.py: extras as documented, console scripts pointing at real functions, and
no ROS in what `pip install .[train]` needs (training clusters have no ROS)."""
from __future__ import annotations

import importlib
import re
import subprocess
import sys

import pytest

from ros_test_helpers import REPO_ROOT


@pytest.fixture(scope="module")
def metadata(tmp_path_factory) -> dict[str, list[str]]:
    """Requires-Dist and entry points as pip would see them, from a real metadata build."""
    out = tmp_path_factory.mktemp("egg_info")
    subprocess.run([sys.executable, "setup.py", "-q", "egg_info", "--egg-base", str(out)], cwd=REPO_ROOT,
                   check=True, capture_output=True, timeout=120)
    (info,) = out.glob("*.egg-info")
    requires, section = {"": []}, ""
    for line in (info / "requires.txt").read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
            requires[section] = []
        elif line.strip():
            requires[section].append(line.strip())
    requires["console_scripts"] = [line.strip() for line in (info / "entry_points.txt").read_text().splitlines()
                                   if "=" in line]
    return requires


def names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=!~ ;]", r, maxsplit=1)[0].lower() for r in requirements}


def test_extras_exist(metadata):
    assert {"ros", "onnx-cpu", "onnx-gpu", "train", "dev"} <= set(metadata)


def test_onnxruntime_variants_are_separate_extras(metadata):
    # Both install the same `onnxruntime` module and overwrite each other: never both in one install.
    for section, requirements in metadata.items():
        assert not {"onnxruntime", "onnxruntime-gpu"} <= names(requirements), section
    assert names(metadata["onnx-cpu"]) == {"onnxruntime"}
    assert names(metadata["onnx-gpu"]) == {"onnxruntime-gpu"}


def test_no_ros_outside_the_ros_extra(metadata):
    for section in ("", "train", "dev", "onnx-cpu", "onnx-gpu"):
        ros = {n for n in names(metadata[section]) if n.startswith("ros-") or n == "launch"}
        assert not ros, f"[{section}] would need ROS wheels: {ros}"
    assert all(n.startswith("ros-jazzy-") or n == "ros-wheels-bootstrapper" for n in names(metadata["ros"]))


def test_ros_extra_matches_the_pinned_ros_runtime(metadata):
    """setup.py's [ros] extra lists the packages of requirements/ros.txt (what CI installs and tests)."""
    lines = (REPO_ROOT / "requirements" / "ros.txt").read_text().splitlines()
    pinned = [line.split("#")[0].strip() for line in lines]
    assert names(metadata["ros"]) == names([p for p in pinned if p])


def test_console_scripts_point_at_callables(metadata):
    assert metadata["console_scripts"], "no console scripts declared"
    for line in metadata["console_scripts"]:
        name, target = (part.strip() for part in line.split("=", 1))
        module_name, function = target.split(":")
        assert callable(getattr(importlib.import_module(module_name), function)), f"{name} -> {target}"
