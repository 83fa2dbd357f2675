"""Pairing an image with its CameraInfo (exact stamp) and, optionally, a depth image (nearest stamp
within a slop): the project's own replacement for message_filters' synchronisers, without rclpy.

Camera drivers publish the image and its CameraInfo with the same stamp but in either order, and an
aligned depth image arrives from another pipeline a few milliseconds apart. Each input is kept for
a few recent stamps; a frame is complete when its image has a CameraInfo of the same stamp and
(when depth is used) a depth image within `slop_s`. Completing a frame discards older incomplete
images (a newer frame supersedes them: only the newest frame matters). An image leaves the pairer
exactly once: in a frame, or counted in `unpaired_images` (superseded by a newer complete frame,
pushed out of the `keep` most recent, or waiting longer than `expire`'s age).
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Optional


@dataclass
class Frame:
    stamp_ns: int
    image: Any
    camera_info: Any
    depth: Optional[Any] = None


class FramePairer:
    """Stamp-based pairing. Stamps are integer nanoseconds. Not thread-safe: call from one thread."""

    def __init__(self, use_depth: bool, slop_s: float, keep: int = 5):
        self.use_depth = use_depth
        self._slop_ns = int(round(slop_s * 1e9))
        self._keep = keep
        self._images: OrderedDict = OrderedDict()  # stamp -> image, waiting for a partner
        self._infos: OrderedDict = OrderedDict()
        self._depths: OrderedDict = OrderedDict()
        self._arrived_s: dict = {}                 # image stamp -> monotonic arrival time, for `expire`
        self.unpaired_images = 0                   # images discarded without ever being complete

    @staticmethod
    def _remember(store: OrderedDict, stamp_ns: int, msg, keep: int) -> list:
        """Store msg under its stamp; returns the stamps pushed out (oldest first) to stay within `keep`."""
        store[stamp_ns] = msg
        store.move_to_end(stamp_ns)
        evicted = []
        while len(store) > keep:
            evicted.append(store.popitem(last=False)[0])
        return evicted

    def _discard_images(self, stamps) -> None:
        for stamp in stamps:
            self._images.pop(stamp, None)
            self._arrived_s.pop(stamp, None)
            self.unpaired_images += 1

    def add_image(self, stamp_ns: int, image, now_s: Optional[float] = None) -> Optional[Frame]:
        if stamp_ns in self._images:   # the same stamp again: the earlier copy never pairs now
            self._discard_images([stamp_ns])
        self._arrived_s[stamp_ns] = time.monotonic() if now_s is None else now_s
        evicted = self._remember(self._images, stamp_ns, image, self._keep)
        self._discard_images(evicted)
        return self._complete()

    def expire(self, max_age_s: float, now_s: Optional[float] = None) -> int:
        """Discard images that have waited longer than `max_age_s` for their partners (counted in
        `unpaired_images`); returns how many."""
        now_s = time.monotonic() if now_s is None else now_s
        old = [stamp for stamp, arrived in self._arrived_s.items() if now_s - arrived > max_age_s]
        self._discard_images(old)
        return len(old)

    def add_camera_info(self, stamp_ns: int, info) -> Optional[Frame]:
        self._remember(self._infos, stamp_ns, info, self._keep)
        return self._complete()

    def add_depth(self, stamp_ns: int, depth) -> Optional[Frame]:
        self._remember(self._depths, stamp_ns, depth, self._keep)
        return self._complete()

    def _nearest_depth(self, stamp_ns: int):
        best = min(self._depths, key=lambda s: abs(s - stamp_ns), default=None)
        if best is None or abs(best - stamp_ns) > self._slop_ns:
            return None
        return self._depths[best]

    def _complete(self) -> Optional[Frame]:
        """The newest image that now has all its partners, as a Frame (older waiting images dropped)."""
        for stamp in sorted(self._images, reverse=True):
            info = self._infos.get(stamp)
            if info is None:
                continue
            depth = self._nearest_depth(stamp) if self.use_depth else None
            if self.use_depth and depth is None:
                continue
            frame = Frame(stamp, self._images.pop(stamp), info, depth)
            self._arrived_s.pop(stamp, None)
            self._discard_images([s for s in self._images if s < stamp])
            return frame
        return None

    @property
    def waiting_images(self) -> int:
        return len(self._images)

    def waiting_for(self) -> str:
        """What the oldest waiting image lacks ("" when nothing waits), for the 'not pairing' warning."""
        if not self._images:
            return ""
        stamp = next(iter(self._images))
        missing = []
        if stamp not in self._infos:
            missing.append("a camera_info with exactly the same stamp")
        if self.use_depth and self._nearest_depth(stamp) is None:
            missing.append(f"a depth image within {self._slop_ns / 1e9:g} s")
        return " and ".join(missing)
