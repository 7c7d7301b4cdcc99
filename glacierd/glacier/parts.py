"""The one transfer engine for parts: read each part into a buffer of a fixed
pool, hash it once, send it on a thread, release the buffer, acknowledge.

``GlacierClient.multiupload_archive`` and glacierd's resumable uploader both
send their parts through ``PartEngine.run``; they differ only in what sending
a part means (the uploader commits each acknowledged part to its store). Like
s3transfer's ``BoundedExecutor`` and ``TransferCoordinator``:

* memory is bounded by the buffer pool: ``concurrency`` buffers, each the
  part size or the file's size if smaller, allocated once per file (a 1 KiB
  file never costs a zeroed 16 MiB buffer);
* the executor lives as long as the engine (the daemon's uploader keeps one
  for its life), with spare threads so that a part's commit overlaps the
  next sends;
* the first failure stops further reads and is raised once the parts in
  flight have ended; a ``stop`` event (the daemon's SIGTERM) does the same and
  raises ``InterruptedError``; a short read (the file shrank) raises
  ``FileShrankError``.

The bandwidth limit is not here: the caller's ``send`` hands a ``pace`` to the
transport, whose body stream calls it before each block leaves (apart from
the progress counter).
"""

from __future__ import annotations

import concurrent.futures
import os
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from .errors import InvalidInputError
from .limits import PartRange
from .treehash import Digests, digests

MAX_THREADS = 66  # the highest concurrency a config allows (64), plus two for commits


class FileShrankError(InvalidInputError):
    """The file is shorter than when its upload was planned."""


class ReadyPart(Protocol):
    """A part already read (into a buffer the engine may reuse) and hashed."""

    @property
    def part(self) -> PartRange: ...

    @property
    def buffer(self) -> bytearray: ...

    @property
    def digests(self) -> Digests: ...


ReadInto = Callable[[memoryview, int], int]
"""``read(buffer, offset)``: fill the buffer with the bytes at ``offset``; how
many it filled (fewer: the source is shorter than planned)."""

SendPart = Callable[[PartRange, memoryview, Digests, Callable[[], None]], None]
"""``send(part, data, digests, release)``: send the bytes; call ``release()`` as
soon as they are no longer needed (before a slow commit), once."""


class PartEngine:
    """A long-lived executor for parts; ``run`` one file's parts at a time per caller."""

    def __init__(self, max_threads: int = MAX_THREADS) -> None:
        # Threads are started only as parts need them, up to max_threads.
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_threads, thread_name_prefix="glacierd-part")

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def run(self, fd: int, todo: Sequence[PartRange], part_size: int, concurrency: int,
            send: SendPart, *, ready: Sequence[ReadyPart] = (),
            stop: threading.Event | None = None, read: ReadInto | None = None) -> None:
        """Send ``todo`` (parts of the file open as ``fd``, or of what ``read``
        makes of it: an encrypted upload's ciphertext); ``ready`` ones go first
        without being read or hashed again, and their buffers join the pool.
        Parts are read one after another, in order, on the calling thread."""
        if not todo:
            return
        if read is None:
            def read(view: memoryview, offset: int) -> int:
                return os.preadv(fd, [view], offset)
        if len(todo) == 1:  # a small file: no thread hand-off, nothing to overlap
            self._run_one(todo[0], part_size, send, ready, stop, read)
            return
        pool_size = max(1, min(concurrency, len(todo)))
        wanted = {part.index for part in todo}
        prepared = [r for r in ready if r.part.index in wanted][:pool_size]
        buffers: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        spare = [r.buffer for r in ready if r not in prepared]
        longest = max(part.length for part in todo)
        for _ in range(pool_size - len(prepared)):
            buffers.put(spare.pop() if spare else bytearray(min(part_size, longest)))
        failed = threading.Event()

        def one(part: PartRange, buffer: bytearray, known: Digests | None) -> None:
            held = [True]

            def release() -> None:
                if held[0]:
                    held[0] = False
                    buffers.put(buffer)

            try:
                data = memoryview(buffer)[: part.length]
                d = known or digests(data)  # both hashes from one pass over the sent bytes
                send(part, data, d, release)
            except BaseException:
                failed.set()
                raise
            finally:
                release()

        futures: list[concurrent.futures.Future[None]] = []
        done_ahead = {r.part.index for r in prepared}
        shrank = False
        for r in prepared:
            futures.append(self._pool.submit(one, r.part, r.buffer, r.digests))
        for part in (p for p in todo if p.index not in done_ahead):
            buffer = buffers.get()
            if failed.is_set() or (stop is not None and stop.is_set()):
                buffers.put(buffer)
                break
            got = read(memoryview(buffer)[: part.length], part.offset)
            if got != part.length:
                buffers.put(buffer)
                shrank = True
                break
            futures.append(self._pool.submit(one, part, buffer, None))
        concurrent.futures.wait(futures)
        for future in futures:
            future.result()  # the first failure, if any, propagates
        if shrank:
            raise FileShrankError("the file shrank while its parts were being sent")
        if stop is not None and stop.is_set() and len(futures) < len(todo):
            raise InterruptedError("stopping")

    @staticmethod
    def _run_one(part: PartRange, part_size: int, send: SendPart, ready: Sequence[ReadyPart],
                 stop: threading.Event | None, read: ReadInto) -> None:
        """``run`` for a single part, on the calling thread: a thread hand-off (two
        wake-ups) costs about as much CPU as a small file's whole request."""
        if stop is not None and stop.is_set():
            raise InterruptedError("stopping")
        known = next((r for r in ready if r.part.index == part.index), None)
        if known is not None:
            data, d = memoryview(known.buffer)[: part.length], known.digests
        else:
            buffer = bytearray(min(part_size, part.length))
            if read(memoryview(buffer), part.offset) != part.length:
                raise FileShrankError("the file shrank while its parts were being sent")
            data = memoryview(buffer)
            d = digests(data)
        send(part, data, d, lambda: None)
