"""`make venv` reuses the venv while its inputs are unchanged and redoes it when they change.

Runs make in dry-run mode (-n) on a copy of the Makefile and requirements/, so nothing is installed.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from ros_test_helpers import REPO_ROOT


def dry_run_venv(tree: Path) -> str:
    result = subprocess.run(["make", "-n", "venv", f"PYTHON={sys.executable}"], cwd=tree,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_stamp_names_the_inputs_and_gates_the_install(tmp_path):
    shutil.copy(REPO_ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copytree(REPO_ROOT / "requirements", tmp_path / "requirements")

    first = dry_run_venv(tmp_path)
    assert "pip install" in first and "-c requirements/constraints.txt" in first
    stamp = re.search(r"touch (\.venv/\.stamp-[0-9a-f]{16}-py[0-9.]+)", first).group(1)

    (tmp_path / stamp).parent.mkdir(parents=True)
    (tmp_path / stamp).touch()
    assert "pip install" not in dry_run_venv(tmp_path), "unchanged inputs must reuse the venv"

    with open(tmp_path / "requirements" / "dev.txt", "a") as requirements:
        requirements.write("example-package==1.0\n")
    changed = dry_run_venv(tmp_path)
    assert "pip install" in changed, "a changed requirement file must re-run pip"
    assert re.search(r"touch (\.venv/\.stamp-[0-9a-f]{16}-py[0-9.]+)", changed).group(1) != stamp
