"""A one-element mailbox between the executor thread (producer) and the inference worker (consumer).

Only the newest frame matters for a robot: a frame put while another is still pending replaces it
(the replaced one is reported as dropped), so a slow model never builds a backlog (opendr#275).
"""
from __future__ import annotations

import threading
from typing import Any, Optional


class LatestFrameSlot:
    def __init__(self):
        self._condition = threading.Condition()
        self._pending: Optional[Any] = None
        self._closed = False

    def put(self, item) -> bool:
        """Store `item` as the pending frame; True when it replaced one that was never taken."""
        with self._condition:
            replaced = self._pending is not None
            self._pending = item
            self._condition.notify()
            return replaced

    def take(self, timeout_s: float) -> Optional[Any]:
        """The pending frame (removing it), or None after `timeout_s` or once closed."""
        with self._condition:
            if self._pending is None and not self._closed:
                self._condition.wait(timeout_s)
            item, self._pending = self._pending, None
            return item

    def close(self) -> None:
        """Wake the consumer for shutdown; later `take` calls return at once."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()
