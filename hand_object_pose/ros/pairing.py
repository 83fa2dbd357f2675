"""Pairing an image with its CameraInfo (exact stamp) and, optionally, a depth image (nearest stamp
within a slop): the project's own replacement for message_filters' synchronisers, without rclpy.

Camera drivers publish the image and its CameraInfo with the same stamp but in either order, and an
aligned depth image arrives from another pipeline a few milliseconds apart. Each input is kept for
a few recent stamps; a frame is complete when its image has a CameraInfo of the same stamp and
(when depth is used) a depth image within `slop_s`. Completing a frame discards older incomplete
images (a newer frame supersedes them: only the newest frame matters).
"""
from __future__ import annotations

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
        self.unpaired_images = 0                   # images discarded without ever being complete

    @staticmethod
    def _remember(store: OrderedDict, stamp_ns: int, msg, keep: int) -> None:
        store[stamp_ns] = msg
        store.move_to_end(stamp_ns)
        while len(store) > keep:
            store.popitem(last=False)

    def add_image(self, stamp_ns: int, image) -> Optional[Frame]:
        self._remember(self._images, stamp_ns, image, self._keep)
        return self._complete()

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
            older = [s for s in self._images if s < stamp]
            for s in older:
                del self._images[s]
            self.unpaired_images += len(older)
            return frame
        return None

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
