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

    @property
    def busy(self) -> int:
        """Calls in flight."""
        return len(self._running)

    def submit(self, call: Callable[[], T], width: int) -> list[concurrent.futures.Future[T]]:
        """Start ``call`` once fewer than ``width`` calls are in flight; the futures
        that ended meanwhile."""
        width = max(1, min(width, self.max_threads))
        ended = self._collect(None)
        while len(self._running) >= width:
            ended += self._collect(concurrent.futures.FIRST_COMPLETED)
        self._running.add(self._pool.submit(call))
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
        return self._collect(concurrent.futures.ALL_COMPLETED)

    def _collect(self, until: str | None) -> list[concurrent.futures.Future[T]]:
        """The calls that ended: those already done (``until`` None), or after
        waiting for the first (FIRST_COMPLETED) or all (ALL_COMPLETED) of them."""
        if until is None:
            done = {f for f in self._running if f.done()}
        else:
            done, _ = concurrent.futures.wait(self._running, return_when=until)
        self._running -= done
        return list(done)

    def close(self) -> None:
        """End the threads, after the calls in flight."""
        self._pool.shutdown(wait=True)
