"""Per-item exclusive locks between glacierd processes on one state directory.

The daemon and a foreground command (``upload``, ``restore --wait``) may reach
the same file or the same restore at the same moment; the one that gets the
lock does the work, the other leaves it. An ``flock`` on a file under the
state directory's ``locks/``: the kernel drops it when its process dies, even
by SIGKILL, so a crash never leaves a stale lock.

A lock's file is deleted by its holder on release (while still holding it), so
the folder holds only the locks in use, not one file for every file ever
uploaded. A process that opened the file just before it was deleted may then
lock the deleted file: so a lock counts only if the file it locked is still
the one at its name, and otherwise is taken again on the new file. A process
killed while holding a lock leaves its file behind, unlocked; the next holder
deletes it.
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
    path = _lock_file(lock_dir, key)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            yield False
            return
        except BaseException:
            os.close(fd)
            raise
        if still_named(fd, path):
            break
        os.close(fd)  # its holder deleted it on release: lock the file now at its name
    try:
        yield True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # before the lock goes: see the module's docstring
        os.close(fd)


def still_named(fd: int, path: Path) -> bool:
    """Is the file open at ``fd`` still the one at ``path``?"""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (mine.st_dev, mine.st_ino)
