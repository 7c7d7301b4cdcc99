"""Retry policy: capped exponential back-off with full jitter.

Pure: the random source and the sleep are injected, so tests run without
waiting and with a known sequence of delays.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class RetryPolicy:
    """How often and how patiently a transient failure is retried.

    ``max_attempts`` counts the first try: 1 means never retry. The delay
    before retry ``n`` (0-based) is uniform in ``[0, min(cap, base * 2**n)]``
    ("full jitter"), which spreads a burst of clients that failed together.
    """

    max_attempts: int = 8
    base: float = 0.25
    cap: float = 20.0
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def delay(self, retry_number: int) -> float:
        ceiling = min(self.cap, self.base * (2 ** min(retry_number, 62)))
        return self.rng.uniform(0.0, ceiling)

    def wait(self, retry_number: int) -> float:
        seconds = self.delay(retry_number)
        self.sleep(seconds)
        return seconds
