"""Process-wide test set-up: keep ROS 2 traffic on this machine and away from other test runs.

Runs at import, before any test can initialise rclpy, and only through os.environ, so that every
subprocess a test starts with ``env=dict(os.environ, ...)`` (see ros_test_helpers) inherits it:

- ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``: without it Fast DDS multicasts discovery out of the
  machine's network interface.
- ``ROS_DOMAIN_ID``: one domain per test process (each pytest-xdist worker is a process), claimed
  with a lock file so that concurrent test runs on the same machine never share a domain.
- ``ROS_LOG_DIR``: a temporary directory, not ~/.ros/log.
- ``FASTRTPS_DEFAULT_PROFILES_FILE``: the profile the package ships for users
  (config/fastdds_large_shm.xml: 16 MB shared-memory segment so camera frames go through shared
  memory, 250 ms lease announcement so late joiners are found fast), unless the caller chose one.
- ``OMP_NUM_THREADS`` under pytest-xdist: the cores shared out between the workers (torch reads it
  at import), so that two workers do not each start one thread per core.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from hand_object_pose.tools.ros_domain import claim_domain_id

REPO_ROOT = Path(__file__).resolve().parents[1]
FASTDDS_PROFILE = REPO_ROOT / "config" / "fastdds_large_shm.xml"


def _configure_ros_environment() -> None:
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    domain_id, lock_fd = claim_domain_id()  # shared with the demo's processes
    os.environ["ROS_DOMAIN_ID"] = str(domain_id)
    atexit.register(os.close, lock_fd)

    log_dir = tempfile.mkdtemp(prefix="hand_object_pose_ros_log_")
    os.environ["ROS_LOG_DIR"] = log_dir
    atexit.register(shutil.rmtree, log_dir, ignore_errors=True)

    if not FASTDDS_PROFILE.is_file():
        raise FileNotFoundError(f"{FASTDDS_PROFILE} is missing: the tests use the Fast DDS profile shipped in config/")
    os.environ.setdefault("FASTRTPS_DEFAULT_PROFILES_FILE", str(FASTDDS_PROFILE))

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1:
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))


_configure_ros_environment()
