"""Per-item exclusive locks between glacierd processes on one state directory.

The daemon and a foreground command (``upload``, ``restore --wait``) may reach
the same file or the same restore at the same moment; the one that gets the
lock does the work, the other leaves it. An ``flock`` on a file under the
state directory's ``locks/``: the kernel drops it when its process dies, even
by SIGKILL, so a crash never leaves a stale lock. Lock files are kept, never
deleted: deleting one could let a waiter lock a file that no longer has that
name.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path


def _lock_file(lock_dir: Path, key: str) -> Path:
    name = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return lock_dir / f"{name}.lock"


def held(lock_dir: Path, key: str) -> bool:
    """Does a live process hold the lock for ``key``? (For ``status``: an upload
    whose process died holds no lock, so it shows as interrupted.)"""
    try:
        fd = os.open(_lock_file(lock_dir, key), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


@contextlib.contextmanager
def exclusive(lock_dir: Path | None, key: str) -> Iterator[bool]:
    """Yield True when this process holds the lock for ``key`` (non-blocking),
    False when another holds it; always True without a lock directory."""
    if lock_dir is None:
        yield True
        return
    lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(_lock_file(lock_dir, key), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
