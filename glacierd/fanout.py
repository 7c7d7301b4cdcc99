"""Several small jobs at once on a long-lived pool, their results handed back to
the caller's thread.

The daemon's queue is mostly small files: one part each, three requests and a
few commits, each waiting on a round trip. Uploading them one after the other
leaves both the link and the cores idle between round trips; ``FanOut`` keeps
up to ``width`` of them in flight (like s3transfer's ``BoundedExecutor``: a
submit past the bound waits for a slot, so memory stays bounded by ``width``
jobs). The pool lives as long as its owner; ``width`` is given at each submit,
so a reloaded setting applies to the next file. What follows a job (keeping,
moving or deleting the file) runs where it always did: on the caller's thread,
from the futures it gets back.
"""

from __future__ import annotations

import concurrent.futures
import queue
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class FanOut(Generic[T]):
    """Calls on a pool of up to ``max_threads`` threads (started as needed).
    ``submit`` and ``finish`` return the futures that ended: the caller takes
    each one's ``result()``, which raises what the call raised. One caller
    thread at a time."""

    def __init__(self, max_threads: int = 64, name: str = "glacierd-file") -> None:
        self.max_threads = max_threads
        self._pool = concurrent.futures.ThreadPoolExecutor(max_threads,
                                                           thread_name_prefix=name)
        self._running: set[concurrent.futures.Future[T]] = set()
        # Each call's future, put here by the pool's thread as it ends: waiting for
        # the first to end is one get, not ``concurrent.futures.wait``'s waiter set
        # up on every future in flight (the drain waits once a small file).
        self._ended: queue.SimpleQueue[concurrent.futures.Future[T]] = queue.SimpleQueue()

    @property
    def busy(self) -> int:
        """Calls in flight."""
        return len(self._running)

    def submit(self, call: Callable[[], T], width: int) -> list[concurrent.futures.Future[T]]:
        """Start ``call`` once fewer than ``width`` calls are in flight; the futures
        that ended meanwhile."""
        width = max(1, min(width, self.max_threads))
        ended = self._collect(block=False)
        while len(self._running) >= width:
            ended += self._collect(block=True)
        future = self._pool.submit(call)
        self._running.add(future)
        future.add_done_callback(self._ended.put)
        return ended

    @staticmethod
    def now(call: Callable[[], T]) -> concurrent.futures.Future[T]:
        """``call`` on the caller's thread, as an ended future: handled like the rest."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        try:
            future.set_result(call())
        except Exception as exc:
            future.set_exception(exc)
        return future

    def finish(self) -> list[concurrent.futures.Future[T]]:
        """Wait for every call in flight; their futures."""
        ended: list[concurrent.futures.Future[T]] = []
        while self._running:
            ended += self._collect(block=True)
        return ended

    def _collect(self, block: bool) -> list[concurrent.futures.Future[T]]:
        """The calls that ended: those already done, after waiting for one to end
        if ``block`` (and one is in flight)."""
        ended: list[concurrent.futures.Future[T]] = []
        if block and self._running:
            ended.append(self._ended.get())
        while True:
            try:
                ended.append(self._ended.get_nowait())
            except queue.Empty:
                break
        self._running.difference_update(ended)
        return ended

    def close(self) -> None:
        """End the threads, after the calls in flight."""
        self._pool.shutdown(wait=True)
