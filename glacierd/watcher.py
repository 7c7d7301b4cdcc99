"""Watched folders: find files, wait until they settle, record them as pending.

The watcher never uploads: it writes ``pending`` rows into the store, which is
the queue, so a crash loses nothing (docs/design.md invariant 7). Three sources feed
it: a scan at start (what arrived while the daemon was down), watchdog events,
and a periodic rescan for what events missed (network filesystems, overflows).

A file is taken once its size and mtime have been still for
``settle_seconds``. ``Settler`` is that rule, pure, with time passed in;
``Watcher`` adds the filesystem and watchdog around it.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from glacierd.config import DEFAULT_IGNORES, WatchSection
from glacierd.pathtext import shown

log = logging.getLogger("glacierd.watcher")


def wanted(watch: WatchSection, path: Path) -> bool:
    """Does ``path`` (below ``watch.path``) pass the include/exclude/ignore globs?

    Patterns match the path relative to the watched folder, or any of its
    components (so ``*.iso`` excludes ISO files at any depth, ``cache/*`` a
    folder's content, and ``.git`` everything below any ``.git``).
    """
    try:
        rel = PurePosixPath(path.relative_to(watch.path).as_posix())
    except ValueError:
        return False
    if not watch.recursive and len(rel.parts) > 1:
        return False
    names = [str(rel), *rel.parts]

    def matches(patterns: Iterable[str]) -> bool:
        return any(fnmatch.fnmatchcase(name, pat) for pat in patterns for name in names)

    if watch.ignore_temporary and any(fnmatch.fnmatchcase(rel.name, pat)
                                      for pat in DEFAULT_IGNORES):
        return False
    if watch.exclude and matches(watch.exclude):
        return False
    return matches(watch.include)


@dataclass
class _Candidate:
    size: int
    mtime_ns: int
    still_since: float


class Settler:
    """Tracks candidate files until they have been unchanged for a while (pure)."""

    def __init__(self) -> None:
        self._candidates: dict[str, _Candidate] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._candidates)

    def observe(self, path: str, size: int, mtime_ns: int, now: float,
                already_still_for: float = 0.0) -> None:
        """Note a file as seen now (``already_still_for``: how long it has been unchanged)."""
        with self._lock:
            current = self._candidates.get(path)
            if current is None or (current.size, current.mtime_ns) != (size, mtime_ns):
                self._candidates[path] = _Candidate(size, mtime_ns, now - already_still_for)

    def forget(self, path: str) -> None:
        with self._lock:
            self._candidates.pop(path, None)

    def settled(self, now: float, settle_seconds: Callable[[str], float],
                look: Callable[[str], tuple[int, int] | None]) -> list[tuple[str, int, int]]:
        """Candidates still for long enough, as (path, size, mtime_ns); they are forgotten.

        ``look(path)`` returns the file's current (size, mtime_ns), or None if it
        is gone; a change restarts its clock.
        """
        ready: list[tuple[str, int, int]] = []
        with self._lock:
            items = list(self._candidates.items())
        for path, cand in items:
            seen = look(path)
            with self._lock:
                if seen is None:
                    self._candidates.pop(path, None)
                    continue
                if seen != (cand.size, cand.mtime_ns):
                    self._candidates[path] = _Candidate(seen[0], seen[1], now)
                    continue
                if now - cand.still_since >= settle_seconds(path):
                    self._candidates.pop(path, None)
                    ready.append((path, cand.size, cand.mtime_ns))
        return ready


_ODD_PATH = re.compile(r"//|/\.(?:/|$)|(?<=.)/$|^\./")
"""What ``Path`` would write otherwise: doubled slashes, "." parts, a trailing slash."""


class Watcher:
    """Scans and watches the configured folders; hands settled files to ``record``.

    ``record(path)`` is called for each settled file (the daemon makes it
    write a pending row). Thread-safe; ``clock`` and ``wall`` are injectable.
    """

    def __init__(
        self,
        watches: Iterable[WatchSection],
        record: Callable[[str, int, int], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        skip: Iterable[Path] = (),
        follow_symlinks: bool = False,
        on_unreadable: Callable[[dict[str, str]], None] | None = None,
        record_many: Callable[[list[tuple[str, int, int]]], None] | None = None,
    ) -> None:
        self.watches = tuple(watches)
        # (the folder, the folder and "/", its section): deepest first
        self._deepest_first = sorted(
            ((str(w.path), str(w.path).rstrip("/") + "/", w) for w in self.watches),
            key=lambda entry: -len(entry[0]))
        self.follow_symlinks = follow_symlinks
        self.record = record
        self.clock = clock
        self.wall = wall
        self.skip = tuple(p.resolve() for p in skip)
        self.settler = Settler()
        self.on_unreadable = on_unreadable
        self.record_many = record_many
        self.unreadable: dict[str, str] = {}  # folder -> why, as of the last scan
        self._observer: Any = None

    def watch_for(self, path: str | Path) -> WatchSection | None:
        """The deepest watched folder holding ``path``, lexically (as
        ``Path.is_relative_to``). By prefixes of text: the drain asks twice a file."""
        text = os.fspath(path)
        if _ODD_PATH.search(text):  # not in the form Path gives: make it so
            text = str(Path(text))
        for prefix, head, watch in self._deepest_first:
            if text == prefix or text.startswith(head):
                return watch
        return None

    def consider(self, path: str | Path, *, from_scan: bool = False) -> None:
        p = Path(path)
        watch = self.watch_for(p)
        if watch is None or not wanted(watch, p):
            return
        if any(p.is_relative_to(s) for s in self.skip):
            return
        try:
            st = os.lstat(p)
        except OSError:
            self.settler.forget(str(p))
            return
        if stat.S_ISLNK(st.st_mode) and self.follow_symlinks:
            try:
                st = os.stat(p)
            except OSError:
                return
        if not stat.S_ISREG(st.st_mode):  # folders, FIFOs, sockets, devices, unfollowed links
            return
        # A file found by a scan whose mtime is old has been still at least that long.
        still = max(0.0, self.wall() - st.st_mtime) if from_scan else 0.0
        self.settler.observe(str(p), st.st_size, st.st_mtime_ns, self.clock(), still)

    def scan(self) -> int:
        """Walk every watched folder; returns how many files were considered.

        A folder that cannot be read is never skipped in silence: it is logged when
        first found and when readable again, and ``on_unreadable`` gets the whole
        set after each scan (the daemon keeps it in the store for ``status``).
        """
        count = 0
        unreadable: dict[str, str] = {}

        def note(exc: OSError) -> None:
            unreadable[str(exc.filename)] = exc.strerror or str(exc)

        for watch in self.watches:
            if watch.recursive:
                walker: Iterable[tuple[str, list[str], list[str]]] = os.walk(
                    watch.path, onerror=note)
            else:
                try:
                    walker = [(str(watch.path), [],
                               [e.name for e in os.scandir(watch.path) if e.is_file()])]
                except OSError as exc:
                    note(exc)
                    walker = []
            for root, dirs, files in walker:
                dirs.sort()
                for name in files:
                    self.consider(Path(root) / name, from_scan=True)
                    count += 1
        for folder in unreadable.keys() - self.unreadable.keys():
            log.warning("%s: cannot be read (%s): its files are not backed up until it can",
                        shown(folder), unreadable[folder])
        for folder in self.unreadable.keys() - unreadable.keys():
            log.info("%s: readable again", shown(folder))
        self.unreadable = unreadable
        if self.on_unreadable is not None:
            self.on_unreadable(dict(unreadable))
        return count

    def settle(self) -> int:
        """Record every settled candidate; returns how many were recorded."""
        def look(path: str) -> tuple[int, int] | None:
            try:
                st = os.lstat(path)
            except OSError:
                return None
            return st.st_size, st.st_mtime_ns

        def settle_seconds(path: str) -> float:
            watch = self.watch_for(path)
            return watch.settle_seconds if watch else 0.0

        now = self.clock()
        ready = self.settler.settled(now, settle_seconds, look)
        if self.record_many is not None and ready:
            try:  # the whole pass in one transaction
                self.record_many(ready)
                return len(ready)
            except Exception as exc:  # one at a time: one odd file never holds up the rest
                log.warning("%d settled files could not be queued together (%s: %s); "
                            "queueing them one by one", len(ready), type(exc).__name__, exc)
        recorded = 0
        for path, size, mtime_ns in ready:
            try:
                self.record(path, size, mtime_ns)
            except Exception as exc:  # one file (or a full state disk) never loses the others
                log.error("%s: not queued yet, will try again: %s: %s", shown(path),
                          type(exc).__name__, exc)
                # Still a candidate, already settled: the next pass records it.
                self.settler.observe(path, size, mtime_ns, now, settle_seconds(path))
            else:
                recorded += 1
        return recorded

    def start(self) -> None:
        """Start watchdog observers (events only feed ``consider``).

        Only the kinds of event acted on below are asked for: inotify then never
        reports the opens and closes of reading a file, above all the uploader's
        own reads of every file it sends (each crossed watchdog's three threads,
        about a millisecond of CPU a small file)."""
        from watchdog.events import (
            DirMovedEvent,
            FileClosedEvent,
            FileCreatedEvent,
            FileModifiedEvent,
            FileMovedEvent,
            FileSystemEvent,
            FileSystemEventHandler,
        )
        from watchdog.observers import Observer

        acted_on = [FileCreatedEvent, FileModifiedEvent, FileClosedEvent, FileMovedEvent,
                    DirMovedEvent]

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:  # one of ``acted_on``
                target = os.fsdecode(getattr(event, "dest_path", "") or event.src_path)
                if event.is_directory:  # a folder moved in or within: its files
                    for root, _dirs, files in os.walk(target):
                        for name in files:
                            watcher.consider(Path(root) / name)
                    return
                watcher.consider(target)

        observer = Observer()
        for watch in self.watches:
            observer.schedule(Handler(), str(watch.path), recursive=watch.recursive,
                              event_filter=acted_on)
        observer.daemon = True
        observer.start()
        self._observer = observer

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=10)
            self._observer = None


def check_watch_paths(watches: Iterable[WatchSection], where: str) -> None:
    """Refuse to start on a watch path that does not exist or cannot be read."""
    from glacierd.errors import ConfigError

    for i, watch in enumerate(watches, 1):
        key = f"{where}: [[watch]] #{i}.path = {str(watch.path)!r}"
        if not watch.path.exists():
            raise ConfigError(f"{key}: no such folder")
        if not watch.path.is_dir():
            raise ConfigError(f"{key}: not a folder")
        if not os.access(watch.path, os.R_OK | os.X_OK):
            raise ConfigError(f"{key}: cannot be read (permission denied)")
        move_to = watch.move_to
        if move_to is not None and move_to.is_relative_to(watch.path) and wanted(
                watch, move_to / "x"):
            raise ConfigError(f"{where}: [[watch]] #{i}.after_upload moves files into a folder "
                              "it watches; exclude it or choose another")
