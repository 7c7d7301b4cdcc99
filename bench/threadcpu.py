"""Run the glacierd command line and, at exit, write each thread's CPU-seconds.

    THREAD_CPU_OUT=FILE python bench/threadcpu.py --config CFG run

For ``bench/smallfiles.py --by-thread``: where a daemon's CPU goes, by the kind
of thread (the upload threads, the scheduler's jobs such as the drain, the
watcher's inotify threads, the main thread's start-up). Each thread's CPU
clock is read when its ``run`` returns, so threads that ended before exit (the
watcher's, stopped at shutdown) count too. FILE gets a JSON list of [thread
name, its class's name, CPU-seconds], the main thread's (to exit) among them
(watchdog's threads are known by their class: InotifyEmitter, ...).
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

_spent: list[tuple[str, str, float]] = []
_lock = threading.Lock()
_start = threading.Thread.start


def _start_counted(self: threading.Thread) -> None:
    run: Callable[[], Any] = self.run  # the bound method, a subclass's own run too

    def counted() -> None:
        try:
            run()
        finally:
            with _lock:
                _spent.append((self.name, type(self).__name__, time.thread_time()))

    self.run = counted  # type: ignore[method-assign]
    _start(self)


def _write() -> None:
    with _lock:
        rows = [*_spent, ("MainThread", "_MainThread", time.thread_time())]
    with open(os.environ["THREAD_CPU_OUT"], "w", encoding="utf-8") as fh:
        json.dump(rows, fh)


def main() -> None:
    threading.Thread.start = _start_counted  # type: ignore[method-assign]
    atexit.register(_write)
    from glacierd.cli import entry

    sys.argv[0] = "glacierd"
    entry()  # as the console script: it exits


if __name__ == "__main__":
    main()
