"""Progress reporting shared by the threads that move one transfer's bytes.

A ``ProgressCallback`` is ``progress(done_bytes, total_bytes)``. It is called
from whichever thread moved the bytes, possibly several at once (the tracker
serialises the calls), and ``done_bytes`` goes *down* when a retry rewinds the
bytes an attempt had already reported: a caller's rate and ETA stay honest.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

ProgressCallback = Callable[[int, int], None]
ByteCounter = Callable[[int], None]
Pace = Callable[[int], object]
"""Called with a block's size before the block is sent; returns when it may go
(``ratelimit.TokenBucket.consume``): the bandwidth limit, on the body's stream."""


class ProgressTracker:
    """Aggregates byte deltas from many requests into ``(done, total)`` calls."""

    def __init__(self, total: int, callback: ProgressCallback | None) -> None:
        self.total = total
        self._done = 0
        self._callback = callback
        self._lock = threading.Lock()

    @property
    def done(self) -> int:
        return self._done

    def __call__(self, delta: int) -> None:
        """Record ``delta`` bytes (negative on a rewind) and tell the callback."""
        if delta == 0:
            return
        with self._lock:
            self._done += delta
            if self._callback is not None:
                self._callback(self._done, self.total)


def null_counter(_delta: int) -> None:
    """A byte counter for callers who asked for no progress."""
