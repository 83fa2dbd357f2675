"""Timing shared by the bench scripts."""
from __future__ import annotations

import time


def time_calls(fn, runs: int, warmup: int) -> tuple[list[float], list[float]]:
    """(wall seconds, process CPU seconds) of each of `runs` calls after `warmup` untimed ones.

    CPU time counts the work of all our threads; on a machine shared with other jobs it is far less
    disturbed than the wall time, so the benches print both.
    """
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(runs):
        start_cpu, start = time.process_time(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu
