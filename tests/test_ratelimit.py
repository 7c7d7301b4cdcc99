"""The shared token bucket, with a frozen clock: no real waiting."""

from __future__ import annotations

import threading
from pathlib import Path

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


def test_the_uploader_paces_the_body_stream_block_by_block(tmp_path: Path) -> None:
    """The limit is on the bytes as they leave (the transport's body reader asks the
    bucket before each block), not in the progress callback."""
    from glacierd.emulator import Emulator
    from glacierd.uploader import Uploader, UploadSettings
    from tests.conftest import MIB, random_file, vault_uploader

    class Recording:
        def __init__(self) -> None:
            self.asked: list[int] = []

        def consume(self, amount: int) -> float:
            self.asked.append(amount)
            return 0.0

    random_file(tmp_path / "f.bin", 3 * MIB + 5, seed=1)
    with Emulator(tmp_path / "emu") as emu:
        plain = vault_uploader(tmp_path, emu)
        recording = Recording()
        uploader = Uploader(plain.store, plain.backend, UploadSettings(part_size=MIB),
                            limiter=recording)  # type: ignore[arg-type]
        progress: list[int] = []
        uploader.on_progress = lambda _path, done, _total: progress.append(done)
        assert uploader.upload_path(tmp_path / "f.bin").status == "archived"
        sent = emu.stats()["part_bytes_received"]
    assert sum(recording.asked) == sent == 3 * MIB + 5
    assert max(recording.asked) <= 256 * 1024, "asked before each block, not each part"
    assert progress[-1] == 3 * MIB + 5


def test_the_backend_gets_the_pace_apart_from_the_progress_counter(tmp_path: Path) -> None:
    from glacierd.backends.memory import MemoryBackend
    from glacierd.uploader import Uploader, UploadSettings
    from tests.conftest import MIB, random_file, store_at_head

    bucket = TokenBucket(10**12)
    paces: list[object] = []

    class Recording(MemoryBackend):
        def send_part(self, ref, offset, data, d, counter, pace=None):  # type: ignore[no-untyped-def]
            paces.append(pace)
            super().send_part(ref, offset, data, d, counter, pace)

    random_file(tmp_path / "f.bin", 2 * MIB, seed=2)
    uploader = Uploader(store_at_head(tmp_path), Recording(), UploadSettings(part_size=MIB),
                        limiter=bucket)
    assert uploader.upload_path(tmp_path / "f.bin").status == "archived"
    assert paces == [bucket.consume, bucket.consume]
