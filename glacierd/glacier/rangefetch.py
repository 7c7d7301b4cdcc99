"""The one verified range fetch: a range of bytes streamed to ``write``, checked
against what the service sent for it, fetched again when it does not match.

Both clients use it: the Glacier client for job output (checked against the
``x-amz-sha256-tree-hash`` Glacier sends for a range), the S3 client for an
object's parts (checked against the part's ``x-amz-checksum-sha256``). The
restorer reaches it through its backend and never sees a ``requests``
exception: a broken stream is a ``TransportError`` here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager

import requests

from . import errors, treehash
from .progress import ByteCounter, null_counter

log = logging.getLogger("glacierd.glacier")

BLOCK = 1024 * 1024


Opener = Callable[[], AbstractContextManager[requests.Response]]
"""Sends the request for the range; the answer is read, then closed."""

Check = Callable[[requests.Response, treehash.TreeHasher], str | None]
"""What is wrong with the bytes hashed (the answer's headers say what they
should be), or None when they match or nothing was sent to compare with."""


def fetch_verified(open_range: Opener, first: int, last: int,
                   write: Callable[[int, bytes], object], *, check: Check, label: str,
                   linear: bool = False, counter: ByteCounter | None = None,
                   attempts: int = 4, on_mismatch: Callable[[str], None] | None = None) -> str:
    """Bytes ``first``-``last``, handed to ``write(offset, chunk)``; returns their
    tree hash.

    An answer that is short, or that ``check`` rejects, or whose stream breaks,
    is fetched again, ``attempts`` times at most; ``counter`` is rewound by what a
    failed attempt had counted and ``on_mismatch`` hears of each mismatch. Then
    the last error is raised: ``ChecksumMismatchError`` or ``TransportError``.
    Errors from ``write`` (a full disk) are not retried. ``linear``: the hasher
    also keeps the plain SHA-256 (for a ``check`` that needs it).
    """
    count = counter or null_counter
    length = last - first + 1
    last_error: errors.GlacierError | None = None
    for _attempt in range(max(1, attempts)):
        got = 0
        hasher = treehash.TreeHasher(linear=linear)
        try:
            with open_range() as answer:
                for chunk in answer.iter_content(BLOCK):
                    write(first + got, chunk)
                    hasher.update(chunk)
                    got += len(chunk)
                    count(len(chunk))
                if got != length:
                    raise errors.TransportError(f"{label}: bytes {first}-{last}: got {got} "
                                                f"of {length} bytes")
                wrong = check(answer, hasher)
            if wrong is not None:
                if on_mismatch is not None:
                    on_mismatch(wrong)
                raise errors.ChecksumMismatchError(f"{label}: bytes {first}-{last}: {wrong}")
            return hasher.hexdigest()
        except requests.RequestException as exc:  # before OSError: it subclasses it
            last_error = errors.TransportError(f"{label}: {type(exc).__name__}: {exc}")
        except errors.GlacierError as exc:
            if not exc.retryable:
                raise
            last_error = exc
        count(-got)
        log.info("%s: bytes %d-%d: %s; fetching them again", label, first, last, last_error)
    assert last_error is not None
    raise last_error
