"""One-Euro temporal smoothing (Casiez et al., CHI 2012) of joints and object poses.

The One-Euro filter is a first-order low-pass whose cutoff rises with the signal's speed: still
hands are smoothed hard (no jitter), fast moves pass with little lag. Each array element is
filtered independently (vectorised). Rotations are filtered as unit quaternions (sign aligned with
the previous output, renormalised), which is accurate for the small frame-to-frame changes a
smoother sees.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import transforms3d.quaternions as tq


def _alpha(cutoff_hz: np.ndarray | float, dt_s: float) -> np.ndarray | float:
    """Smoothing factor of an exponential filter with this cutoff and sampling period."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff_hz))
    return 1.0 / (1.0 + tau / dt_s)


class OneEuroFilter:
    """One-Euro filter over arrays of a fixed shape.

    Args:
      min_cutoff_hz: cutoff at zero speed.
      beta: cutoff increase per unit of speed (units of the signal per second).
      d_cutoff_hz: cutoff of the low-pass on the speed estimate.
    """

    def __init__(self, min_cutoff_hz: float = 1.0, beta: float = 0.0, d_cutoff_hz: float = 1.0):
        if min_cutoff_hz <= 0 or d_cutoff_hz <= 0 or beta < 0:
            raise ValueError("OneEuroFilter needs min_cutoff_hz > 0, d_cutoff_hz > 0 and beta >= 0, got "
                             f"{min_cutoff_hz}, {d_cutoff_hz}, {beta}")
        self.min_cutoff_hz, self.beta, self.d_cutoff_hz = min_cutoff_hz, beta, d_cutoff_hz
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next sample passes unchanged."""
        self._value: Optional[np.ndarray] = None
        self._speed: Optional[np.ndarray] = None
        self._stamp: Optional[float] = None

    def __call__(self, value: np.ndarray, stamp_s: float) -> np.ndarray:
        """Filtered version of `value` observed at time `stamp_s` (seconds).

        A first sample, a shape change or a non-increasing stamp restarts the filter (returns `value`).
        """
        value = np.asarray(value, dtype=np.float64)
        if self._value is None or value.shape != self._value.shape or stamp_s <= self._stamp:
            self._value, self._speed, self._stamp = value.copy(), np.zeros_like(value), stamp_s
            return value.copy()
        dt = stamp_s - self._stamp
        speed = (value - self._value) / dt
        a_d = _alpha(self.d_cutoff_hz, dt)
        self._speed = a_d * speed + (1 - a_d) * self._speed
        cutoff = self.min_cutoff_hz + self.beta * np.abs(self._speed)
        a = _alpha(cutoff, dt)
        self._value = a * value + (1 - a) * self._value
        self._stamp = stamp_s
        return self._value.copy()


class PoseFilter:
    """One-Euro filtering of a rigid pose (3x3 rotation, 3-vector translation)."""

    def __init__(self, min_cutoff_hz: float, beta: float, d_cutoff_hz: float):
        self.translation = OneEuroFilter(min_cutoff_hz, beta, d_cutoff_hz)
        self.rotation = OneEuroFilter(min_cutoff_hz, beta, d_cutoff_hz)
        self._last_q: Optional[np.ndarray] = None

    def reset(self) -> None:
        self.translation.reset()
        self.rotation.reset()
        self._last_q = None

    def __call__(self, rotation: np.ndarray, translation: np.ndarray, stamp_s: float):
        """Filtered (rotation (3, 3), translation (3,))."""
        q = tq.mat2quat(np.asarray(rotation, np.float64))
        if self._last_q is not None and np.dot(q, self._last_q) < 0:
            q = -q  # q and -q are the same rotation: stay on the previous output's hemisphere
        q = self.rotation(q, stamp_s)
        q /= np.linalg.norm(q)
        self._last_q = q
        return tq.quat2mat(q), self.translation(translation, stamp_s)


class ResultSmoother:
    """One-Euro smoothing of a whole `HandObjectEstimate`, in place, frame after frame.

    Per hand side: the 21 joints of a present hand (its mesh, if any, follows the smoothed wrist); a
    hand that is not present resets its filter, so the next detection is not dragged towards a stale
    pose. Per object id: the pose; an object not seen in a frame resets its filter.
    """

    def __init__(self, min_cutoff_hz: float, beta: float, d_cutoff_hz: float):
        self._params = (min_cutoff_hz, beta, d_cutoff_hz)
        self._hands: dict = {}
        self._objects: dict = {}

    def reset(self) -> None:
        for f in (*self._hands.values(), *self._objects.values()):
            f.reset()

    def __call__(self, result, stamp_s: float) -> None:
        for hand in result.hands:
            f = self._hands.setdefault(hand.side, OneEuroFilter(*self._params))
            if not hand.present:
                f.reset()
                continue
            raw_wrist = hand.joints_xyz[0].copy()
            hand.joints_xyz = f(hand.joints_xyz, stamp_s)
            if hand.vertices is not None:
                hand.vertices = hand.vertices + (hand.joints_xyz[0] - raw_wrist)
        seen = set()
        for obj in result.objects:
            seen.add(obj.object_id)
            f = self._objects.setdefault(obj.object_id, PoseFilter(*self._params))
            obj.rotation, obj.translation = f(obj.rotation, obj.translation, stamp_s)
        for object_id, f in self._objects.items():
            if object_id not in seen:
                f.reset()
