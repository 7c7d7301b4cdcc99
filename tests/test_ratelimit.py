"""The shared token bucket, with a frozen clock: no real waiting."""

from __future__ import annotations

import threading

from glacierd.ratelimit import TokenBucket


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_average_rate_is_respected() -> None:
    t = FakeTime()
    bucket = TokenBucket(1000, burst=100, clock=t.clock, sleep=t.sleep)
    for _ in range(100):
        bucket.consume(100)
    # 10,000 bytes at 1,000 B/s, less the initial burst of 100 bytes.
    assert abs(t.now - 9.9) < 1e-6


def test_bucket_is_shared_by_threads() -> None:
    t = FakeTime()
    bucket = TokenBucket(1000, burst=10, clock=t.clock, sleep=t.sleep)
    threads = [threading.Thread(target=lambda: [bucket.consume(50) for _ in range(20)])
               for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    # 4 x 20 x 50 = 4,000 bytes in total: about 4 seconds however they interleave.
    assert t.now >= 3.99


def test_idle_time_refills_only_up_to_the_burst() -> None:
    t = FakeTime()
    bucket = TokenBucket(100, burst=50, clock=t.clock, sleep=t.sleep)
    t.now = 1000.0
    assert bucket.consume(50) == 0.0
    assert bucket.consume(100) == 1.0
