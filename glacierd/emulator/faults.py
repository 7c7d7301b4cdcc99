"""Fault injection for the emulator: reproducible with a seed.

Each API request draws once from a seeded generator: with probability
``rate`` it gets one fault, chosen uniformly from ``kinds``. The sequence of
draws is fixed by the seed; which request gets which draw depends on arrival
order, so concurrent clients see the same mix but not the same assignment.

Kinds:

* ``500``, ``503`` — a server error (``ServiceUnavailableException``), nothing done;
* ``throttle`` — 400 ``ThrottlingException``, nothing done;
* ``timeout`` — 408 ``RequestTimeoutException``, nothing done;
* ``drop-before`` — the connection closes with no answer, nothing done;
* ``drop-after`` — the request takes effect, then the connection closes with
  no answer (the case that tests crash-safety: the client cannot know);
* ``truncate`` — the request takes effect and the answer is cut short.

Separately, ``corrupt_rate`` flips one byte in a job-output answer (the
tree-hash header still describes the true bytes), for download verification.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

KINDS = ("500", "503", "throttle", "timeout", "drop-before", "drop-after", "truncate")
BEFORE = frozenset({"500", "503", "throttle", "timeout", "drop-before"})


@dataclass
class FaultPlan:
    rate: float = 0.0
    kinds: tuple[str, ...] = KINDS
    corrupt_rate: float = 0.0
    seed: int | None = None
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.configure(self.rate, self.kinds, self.corrupt_rate, self.seed)

    def configure(
        self,
        rate: float,
        kinds: tuple[str, ...] | list[str] = KINDS,
        corrupt_rate: float = 0.0,
        seed: int | None = None,
    ) -> None:
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
        if not 0.0 <= rate <= 1.0 or not 0.0 <= corrupt_rate <= 1.0:
            raise ValueError("fault rates must be between 0 and 1")
        with self._lock:
            self.rate = rate
            self.kinds = tuple(kinds) or KINDS
            self.corrupt_rate = corrupt_rate
            self.seed = seed
            self._rng = random.Random(seed)

    def draw(self) -> str | None:
        """The fault for the next request, or None."""
        with self._lock:
            if self.rate <= 0.0:
                return None
            if self._rng.random() >= self.rate:
                return None
            return self._rng.choice(self.kinds)

    def corrupt(self) -> bool:
        with self._lock:
            return self.corrupt_rate > 0.0 and self._rng.random() < self.corrupt_rate


def deliver(write: Callable[[bytes], object], chunks: Iterable[bytes], length: int,
            fault: str | None, plan: FaultPlan, note: Callable[[str], None],
            send_whole: Callable[[], int] | None = None) -> int:
    """Write an answer's body of ``length`` bytes from ``chunks`` as the drawn
    ``fault`` has it: half of it for ``truncate`` (the caller then drops the
    connection), its first byte flipped when ``plan`` corrupts this answer
    (``note("corrupt")``). ``send_whole``: sends the body untouched another way
    (``sendfile``: no copy through Python), for an answer with no fault. Returns
    the bytes written."""
    limit = length // 2 if fault == "truncate" else length
    corrupt = length > 0 and plan.corrupt()
    if corrupt:
        note("corrupt")
    sent = 0
    if not length:
        return 0
    if send_whole is not None and fault is None and not corrupt:
        return send_whole()
    for chunk in chunks:
        if corrupt and sent == 0:
            chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
        take = chunk[: max(0, limit - sent)]
        if take:
            write(take)
        sent += len(take)
        if sent >= limit:
            break
    return sent
