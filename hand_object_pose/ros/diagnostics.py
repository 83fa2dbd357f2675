"""Counters, rates and latency percentiles of the pose node, rendered as diagnostic_msgs/DiagnosticStatus.

Thread-safe: the executor thread counts inputs and errors while the worker thread records outputs.
Key names in the status (stable, for tools that parse /diagnostics):
  input_rate_hz, output_rate_hz          over the last `window_s` seconds
  latency_ms_p50/p90/p99                 image stamp -> result published (ROS clock)
  model_ms_p50                           the estimator's own time per frame
  frames_in                              images published to the node: received, plus frames_lost (every
                                         one ends in exactly one of the next three)
  frames_out                             images processed and published
  frames_dropped                         = frames_replaced + frames_unpaired + frames_lost + frames_discarded
  frames_lost                            images the camera sent that never reached the node (gaps in the
                                         publisher's sequence numbers: overwritten in the depth-1 image
                                         queue while the executor was busy, or lost in transport)
  frames_discarded                       complete frames still waiting for the worker when a managed node
                                         was deactivated
  frames_replaced                        complete frames replaced by a newer one while the model was busy
  frames_unpaired                        images that never got their camera_info / depth (superseded by a
                                         newer complete frame, pushed out of the pairing queue, or waited
                                         longer than the pairing timeout); also errors.unpaired_images
  frames_rejected                        images rejected, each counted under its reason in errors.<kind>
  frames_in_progress                     frames_in - frames_out - frames_dropped - frames_rejected: images
                                         waiting for partners, in the slot or in the model (0 when idle)
  backend, tf_path                       what really runs
  errors.<kind>                          bad-input / failure counters (only kinds that occurred); a kind
                                         that rejects the image is also in frames_rejected
So frames_in = frames_out + frames_dropped + frames_rejected once the node is idle.
"""
from __future__ import annotations

import threading
import time
from collections import Counter, deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue


class NodeStats:
    def __init__(self, window_s: float = 5.0, latency_samples: int = 300):
        self._lock = threading.Lock()
        self._window_s = window_s
        self._inputs: deque = deque()
        self._outputs: deque = deque()
        self._latency_ms: deque = deque(maxlen=latency_samples)
        self._model_ms: deque = deque(maxlen=latency_samples)
        self.frames_in = 0
        self.frames_out = 0
        self.frames_replaced = 0
        self.frames_unpaired = 0
        self.frames_lost = 0
        self.frames_discarded = 0
        self.frames_rejected = 0
        self.errors: Counter = Counter()

    def _trim(self, times: deque, now: float) -> None:
        while times and now - times[0] > self._window_s:
            times.popleft()

    def input(self) -> None:
        now = time.monotonic()
        with self._lock:
            self.frames_in += 1
            self._inputs.append(now)
            self._trim(self._inputs, now)

    def replaced(self) -> None:
        """A complete frame was replaced by a newer one before the worker took it."""
        with self._lock:
            self.frames_replaced += 1

    def unpaired(self, count: int = 1) -> None:
        """`count` images will never be a frame (no partners); also errors.unpaired_images."""
        with self._lock:
            self.frames_unpaired += count
            self.errors["unpaired_images"] += count

    def lost(self, count: int) -> None:
        """`count` images were sent to the node but never reached it (counted in and dropped)."""
        with self._lock:
            self.frames_in += count
            self.frames_lost += count

    def discarded(self, count: int = 1) -> None:
        """`count` complete frames were never processed because processing stopped (deactivate)."""
        with self._lock:
            self.frames_discarded += count

    def rejected(self, kind: str) -> None:
        """One image rejected for reason `kind` (also counted in errors.<kind>)."""
        with self._lock:
            self.frames_rejected += 1
            self.errors[kind] += 1

    def error(self, kind: str) -> None:
        """A problem that did not cost the image (it is still processed): errors.<kind> only."""
        with self._lock:
            self.errors[kind] += 1

    def output(self, latency_ms: float, model_ms: float) -> None:
        now = time.monotonic()
        with self._lock:
            self.frames_out += 1
            self._outputs.append(now)
            self._trim(self._outputs, now)
            self._latency_ms.append(latency_ms)
            self._model_ms.append(model_ms)

    def _rate(self, times: deque, now: float) -> float:
        self._trim(times, now)
        if len(times) < 2:
            return 0.0
        return (len(times) - 1) / max(times[-1] - times[0], 1e-9)

    def snapshot(self) -> dict:
        """Current values as a flat dict (numbers and strings)."""
        now = time.monotonic()
        with self._lock:
            dropped = self.frames_replaced + self.frames_unpaired + self.frames_lost + self.frames_discarded
            values = dict(input_rate_hz=self._rate(self._inputs, now), output_rate_hz=self._rate(self._outputs, now),
                          frames_in=self.frames_in, frames_out=self.frames_out, frames_dropped=dropped,
                          frames_replaced=self.frames_replaced, frames_unpaired=self.frames_unpaired,
                          frames_lost=self.frames_lost, frames_discarded=self.frames_discarded,
                          frames_rejected=self.frames_rejected,
                          frames_in_progress=self.frames_in - self.frames_out - dropped - self.frames_rejected)
            latency = np.asarray(self._latency_ms, np.float64)
            model = np.asarray(self._model_ms, np.float64)
            errors = dict(self.errors)
        if latency.size:
            p50, p90, p99 = np.percentile(latency, [50, 90, 99])
            values.update(latency_ms_p50=p50, latency_ms_p90=p90, latency_ms_p99=p99,
                          model_ms_p50=float(np.median(model)))
        values.update({f"errors.{kind}": count for kind, count in sorted(errors.items())})
        return values

    def status(self, name: str, hardware_id: str, extra: dict) -> DiagnosticStatus:
        """DiagnosticStatus: OK, WARN when frames arrive but none come out or errors occurred in total."""
        values = self.snapshot()
        values.update(extra)
        level, message = DiagnosticStatus.OK, "running"
        if values["frames_in"] == 0:
            level, message = DiagnosticStatus.WARN, "no images received yet"
        elif values["output_rate_hz"] == 0.0 and values["input_rate_hz"] > 0.0:
            level, message = DiagnosticStatus.WARN, "images arrive but no results are published"
        elif any(k.startswith("errors.") for k in values):
            level, message = DiagnosticStatus.WARN, "running; some inputs were rejected (see errors.*)"
        return DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                                values=[KeyValue(key=k, value=f"{v:.3f}" if isinstance(v, float) else str(v))
                                        for k, v in values.items()])
