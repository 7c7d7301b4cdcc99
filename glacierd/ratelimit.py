"""A token bucket shared by every part upload: one bandwidth limit in total.

Pure apart from the injected clock and sleep, so it is tested without waiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` bytes a second on average, bursts of at most ``burst`` bytes.

    ``consume(n)`` blocks the calling thread until ``n`` bytes may go. Callers
    consume in small blocks (the transport's send block), so concurrent parts
    interleave fairly and no one waits for a whole part's worth of tokens.
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(rate / 4, 64 * 1024))
        self._tokens = self.burst
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def consume(self, amount: int) -> float:
        """Take ``amount`` tokens, sleeping as needed; returns the seconds waited."""
        if amount <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= amount  # may go negative: the debt is paid by waiting
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait
