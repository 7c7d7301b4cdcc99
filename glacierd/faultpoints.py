"""Named crash points for tests: ``GLACIERD_FAULT_POINT=name[:N][@SIGNAL]`` makes
the process send itself SIGKILL (or the signal named, e.g. ``@TERM``) the N-th
time (default first) it reaches ``hit(name)``.

This is how the crash tests kill glacierd *exactly* between a part's 2xx and
the store's commit, or between Complete and its commit — moments a random
kill would rarely hit. Unset (always, outside tests) it costs a dict lookup.
"""

from __future__ import annotations

import os
import signal
import threading

_lock = threading.Lock()
_counts: dict[str, int] = {}


def hit(name: str) -> None:
    spec = os.environ.get("GLACIERD_FAULT_POINT")
    if not spec:
        return
    spec, _, signame = spec.partition("@")
    target, _, nth = spec.partition(":")
    if target != name:
        return
    with _lock:
        _counts[name] = _counts.get(name, 0) + 1
        reached = _counts[name] >= int(nth or 1)
    if reached:
        os.kill(os.getpid(), signal.Signals["SIG" + signame] if signame else signal.SIGKILL)
