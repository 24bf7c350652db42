"""A one-item hand-over between two threads where the newest item wins.

Used between the live stages (capture -> track -> render) and between the render stage and each
output's thread. A producer never waits for a slow consumer (unless it asks to, `wait=True`, as
offline file rendering does): an item still unread is replaced by the newer one and counted in
`drops`, so a stage that falls behind skips frames instead of building up latency.
"""

from __future__ import annotations

import threading
import time
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Holds at most one item for one consumer thread.

    The consumer counts as busy from `take()` until its next `take()`, so `idle()` is true only
    once the last item has been taken and dealt with.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._busy = False
        self.closed = False
        self.drops = 0

    def put(self, item: T, wait: bool = False) -> bool:
        """Store `item`; True if it replaced an unread one (a drop). wait=True first waits until
        the consumer has taken and finished the previous item."""
        with self._cond:
            if wait:
                while (self._item is not None or self._busy) and not self.closed:
                    self._cond.wait(0.5)
            replaced = self._item is not None
            if replaced:
                self.drops += 1
            self._item = item
            self._cond.notify_all()
            return replaced

    def take(self, timeout: float | None = None) -> T | None:
        """The item, waiting up to `timeout` seconds (None: until one comes or the slot closes);
        None on time-out or once closed and empty."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._busy = False
            self._cond.notify_all()
            while self._item is None and not self.closed:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            item, self._item = self._item, None
            self._busy = item is not None
            return item

    def idle(self) -> bool:
        with self._cond:
            return self._item is None and not self._busy

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()
