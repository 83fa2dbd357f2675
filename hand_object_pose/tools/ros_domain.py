"""One ROS 2 domain id per process on this machine, for processes that must not hear each other
(parallel test workers, a demo run beside them), without importing rclpy.

Ids 1..100: Fast DDS maps a domain to UDP ports, and ids above 101 collide with Linux's ephemeral
port range. A process holds its id through an flock on a lock file; the kernel drops the lock when
the process dies, so crashed runs never leak ids.
"""
from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

DOMAIN_IDS = range(1, 101)
DOMAIN_LOCK_DIR = Path(tempfile.gettempdir()) / "hand_object_pose_ros_domains"


def claim_domain_id(start: int | None = None) -> tuple[int, int]:
    """Return (domain id, fd of its held lock file), probing from position `start` (default: the pid,
    so that processes rarely probe the same ids). Keep the fd open as long as the id is in use.
    RuntimeError when every id is held."""
    DOMAIN_LOCK_DIR.mkdir(exist_ok=True)
    start = os.getpid() if start is None else start
    for offset in range(len(DOMAIN_IDS)):
        domain_id = DOMAIN_IDS[(start + offset) % len(DOMAIN_IDS)]
        fd = os.open(DOMAIN_LOCK_DIR / f"{domain_id}.lock", os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return domain_id, fd
    raise RuntimeError(f"all ROS domain ids {DOMAIN_IDS.start}..{DOMAIN_IDS.stop - 1} are in use on this machine")
