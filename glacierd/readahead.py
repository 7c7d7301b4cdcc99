"""The first parts of a file, read and hashed while the rest of glacierd starts.

``glacierd upload`` spends its first third of a second on one core, loading the
state store's code (SQLAlchemy) before it can commit an upload row, send
Initiate and read the first part. A ``ReadAhead`` started before that load puts
the idle core to work: it reads the parts the upload will send first into the
part buffers the upload then reuses, and computes both their hashes, so the
first part leaves as soon as the upload id is committed.

It is a guess, checked before use: the uploader takes the parts only if the
upload it has planned is of the same file, unchanged since the read (size,
mtime and inode as ``fstat`` gave them just before), with the same part size;
otherwise they are dropped. Each part's two hashes still come from the one read
whose bytes are sent. Memory: at most ``count`` part buffers, the ones the
upload would have allocated anyway.

This module knows nothing of the store: it must stay cheap to import, since its
whole point is to run before the expensive imports finish.
"""

from __future__ import annotations

import os
import stat
import sys
import threading
from dataclasses import dataclass
from types import TracebackType

from glacierd.glacier import limits
from glacierd.glacier.errors import InvalidInputError
from glacierd.glacier.treehash import Digests, digests

IMPORT_SWITCH_INTERVAL = 0.0005
"""Seconds; while the read-ahead runs. Its thread needs the GIL back after each
1 MiB hash, and the importing main thread keeps it for the interpreter's default
5 ms unless asked to hand it over sooner."""


@dataclass(frozen=True, eq=False)  # parts are compared by identity, never by their bytes
class ReadyPart:
    """A part's bytes, in a buffer of the upload's pool, with both its hashes."""

    part: limits.PartRange
    buffer: bytearray
    digests: Digests

    @property
    def data(self) -> memoryview:
        return memoryview(self.buffer)[: self.part.length]


@dataclass(frozen=True)
class FileIdentity:
    size: int
    mtime_ns: int
    inode: int


class ReadAhead:
    """Reads and hashes the first ``count`` parts of ``path`` in a thread, from now.

    Use as a context manager, or call ``close()``: parts nobody claimed are dropped
    then. Failure of any kind (a vanished, unreadable or special file, a size
    Glacier refuses) just means nothing is read ahead; the upload itself reports it.
    With no ``path``, nothing is read.
    """

    def __init__(self, path: str | os.PathLike[str] | None, configured_part_size: int,
                 count: int, *, follow_symlinks: bool = False) -> None:
        self.path = os.path.abspath(os.fspath(path)) if path is not None else None
        self._configured = configured_part_size
        self._count = count
        self._follow = follow_symlinks
        self._ready: list[ReadyPart] = []
        self.identity: FileIdentity | None = None
        self.part_size = 0
        self._closed = threading.Event()
        self._switch_interval = sys.getswitchinterval()
        self._thread = threading.Thread(target=self._run, name="glacierd-readahead",
                                        daemon=True)
        if self.path is not None:
            self._thread.start()

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def claim(self, path: str, identity: FileIdentity, part_size: int) -> list[ReadyPart]:
        """The parts read ahead, if they are of this file as it is now and cut the same way.

        Waits for the reading to end. A claim takes the parts: a second one gets none.
        """
        self.wait()
        ready, self._ready = self._ready, []
        if (path, identity, part_size) != (self.path, self.identity, self.part_size):
            return []
        return ready

    def close(self) -> None:
        self._closed.set()
        self.wait()
        self._ready = []

    def wait(self) -> None:
        """Until the reading ends (it is bounded: ``count`` parts)."""
        if self._thread.ident is not None:  # started
            self._thread.join()

    def _run(self) -> None:
        sys.setswitchinterval(min(self._switch_interval, IMPORT_SWITCH_INTERVAL))
        try:
            self._read()
        except (OSError, InvalidInputError):
            self._ready = []  # nothing read ahead; the upload meets the problem itself
        finally:
            sys.setswitchinterval(self._switch_interval)

    def _read(self) -> None:
        assert self.path is not None
        # Never open what is not a regular file: a FIFO would block, a device could act.
        st = os.stat(self.path) if self._follow else os.lstat(self.path)
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
            return
        flags = os.O_RDONLY | os.O_NONBLOCK | (0 if self._follow else os.O_NOFOLLOW)
        fd = os.open(self.path, flags)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return
            part_size = limits.upload_part_size(st.st_size, self._configured)
            self.identity = FileIdentity(st.st_size, st.st_mtime_ns, st.st_ino)
            self.part_size = part_size
            for part in limits.part_ranges(st.st_size, part_size):
                if part.index >= self._count or self._closed.is_set():
                    return
                buffer = bytearray(part_size)
                view = memoryview(buffer)[: part.length]
                if os.preadv(fd, [view], part.offset) != part.length:
                    return  # it shrank: the upload will see that
                self._ready.append(ReadyPart(part, buffer, digests(view)))
        finally:
            os.close(fd)
