"""The watcher's rules, with time passed in: settling and filtering."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from glacierd.config import WatchSection
from glacierd.watcher import Settler, Watcher, wanted


def test_settle_waits_for_stillness() -> None:
    settler = Settler()
    sizes = {"/w/a": (10, 1)}
    settler.observe("/w/a", 10, 1, now=100.0)

    def look(path: str) -> tuple[int, int] | None:
        return sizes.get(path)

    assert settler.settled(105.0, lambda p: 10.0, look) == []
    sizes["/w/a"] = (20, 2)  # still being written: the clock starts again
    assert settler.settled(109.0, lambda p: 10.0, look) == []
    assert settler.settled(118.0, lambda p: 10.0, look) == []
    assert settler.settled(119.0, lambda p: 10.0, look) == [("/w/a", 20, 2)]
    assert len(settler) == 0


def test_a_file_that_vanishes_is_dropped() -> None:
    settler = Settler()
    settler.observe("/w/gone", 1, 1, now=0.0)
    assert settler.settled(100.0, lambda p: 1.0, lambda p: None) == []
    assert len(settler) == 0


def test_scanned_old_files_count_as_already_still() -> None:
    settler = Settler()
    settler.observe("/w/old", 5, 5, now=50.0, already_still_for=3600.0)
    assert settler.settled(50.0, lambda p: 10.0, lambda p: (5, 5)) == [("/w/old", 5, 5)]


def test_globs_and_default_ignores() -> None:
    watch = WatchSection(path=Path("/w"), exclude=["*.iso", "cache/*"], include=["*"])
    assert wanted(watch, Path("/w/a.txt"))
    assert wanted(watch, Path("/w/deep/er/b.jpg"))
    assert not wanted(watch, Path("/w/disk.iso"))
    assert not wanted(watch, Path("/w/sub/disk.iso"))
    assert not wanted(watch, Path("/w/cache/x"))
    for temp in ("x.part", "y.tmp", "~lock", ".doc.swp", ".#emacs", "a.glacierd-partial"):
        assert not wanted(watch, Path("/w") / temp), temp
    assert not wanted(watch, Path("/elsewhere/a.txt"))
    flat = WatchSection(path=Path("/w"), recursive=False)
    assert wanted(flat, Path("/w/a")) and not wanted(flat, Path("/w/sub/a"))
    only = WatchSection(path=Path("/w"), include=["*.jpg"])
    assert wanted(only, Path("/w/p/x.jpg")) and not wanted(only, Path("/w/x.png"))


def test_watcher_records_settled_files_once(tmp_path: Path) -> None:
    now = [1000.0]
    recorded: list[str] = []
    (tmp_path / "new.txt").write_text("x")
    watch = WatchSection(path=tmp_path, settle_seconds=5)
    watcher = Watcher([watch], lambda p, s, m: recorded.append(p), clock=lambda: now[0],
                      wall=lambda: 0.0)  # the wall clock says: written just now
    assert watcher.scan() == 1
    assert watcher.settle() == 0
    now[0] += 5
    assert watcher.settle() == 1 and recorded == [str(tmp_path / "new.txt")]
    assert watcher.settle() == 0


def test_reading_a_watched_file_wakes_no_handler(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The uploader opens and reads every file it uploads, inside the watched
    folders: those opens and closes must not come back as events (each one
    crossed watchdog's three threads: about a millisecond of CPU a small file).
    Only the kinds the watcher acts on are asked of inotify."""
    from watchdog.events import FileSystemEventHandler

    seen: list[tuple[str, str]] = []
    marker_seen = threading.Event()
    dispatch = FileSystemEventHandler.dispatch

    def spy(self: FileSystemEventHandler, event: Any) -> None:
        seen.append((event.event_type, os.fsdecode(event.src_path)))
        if os.fsdecode(event.src_path).endswith("marker"):
            marker_seen.set()
        dispatch(self, event)

    monkeypatch.setattr(FileSystemEventHandler, "dispatch", spy)
    old = tmp_path / "old.txt"
    old.write_bytes(b"already here")
    watcher = Watcher([WatchSection(path=tmp_path)], lambda p, s, m: None)
    watcher.start()
    try:
        for _ in range(3):
            assert old.read_bytes() == b"already here"  # open, read, close: no write
        (tmp_path / "marker").write_bytes(b"x")  # inotify keeps order: after the reads
        assert marker_seen.wait(30), f"the new file's event never came: {seen}"
    finally:
        watcher.stop()
    about_old = [kind for kind, path in seen if path == str(old)]
    assert about_old == [], about_old
    assert ("created", str(tmp_path / "marker")) in seen


def test_files_in_new_and_moved_in_folders_are_seen(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """With only some kinds of event asked of inotify, a folder made inside a
    watched one is still watched, and a folder moved in brings its files."""
    watched, outside = tmp_path / "watched", tmp_path / "outside"
    watched.mkdir()
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "b.txt").write_bytes(b"b")
    expected = {str(watched / "new" / "a.txt"), str(watched / "moved" / "deep" / "b.txt")}
    observed: set[str] = set()
    all_seen = threading.Event()
    watcher = Watcher([WatchSection(path=watched)], lambda p, s, m: None)
    observe = watcher.settler.observe

    def spy(path: str, *args: Any, **kwargs: Any) -> None:
        observe(path, *args, **kwargs)
        observed.add(path)
        if expected <= observed:
            all_seen.set()

    monkeypatch.setattr(watcher.settler, "observe", spy)
    watcher.start()
    try:
        (watched / "new").mkdir()
        (watched / "new" / "a.txt").write_bytes(b"a")
        os.rename(outside, watched / "moved")
        assert all_seen.wait(30), f"seen only {sorted(observed)}"
    finally:
        watcher.stop()


def test_the_watch_for_a_path_is_the_deepest_folder_holding_it_as_path_says() -> None:
    """``watch_for`` goes by text (the drain asks twice a file): it must pick what
    ``Path.is_relative_to`` picks, the deepest folder, and no sibling sharing a prefix."""
    folders = ["/data", "/data/photos", "/data/photos/raw", "/data2", "/srv/"]
    watcher = Watcher([WatchSection(path=Path(f)) for f in folders], lambda *_: None)

    def by_path(path: str) -> Path | None:
        holding = [Path(f) for f in folders if Path(path).is_relative_to(f)]
        return max(holding, key=lambda p: len(p.parts)) if holding else None

    cases = ["/data/a.txt", "/data", "/data/photos/b.jpg", "/data/photos/raw/c.nef",
             "/data/photosx/d", "/data2/e", "/data3/f", "/srv/x", "/srv", "/other",
             "/data//photos/raw/g", "/data/./photos/h", "/data/photos/", "relative/data",
             "/data/photos/raw/../i", "/"]
    for case in cases:
        found = watcher.watch_for(case)
        assert (found.path if found else None) == by_path(case), case
    rooted = Watcher([WatchSection(path=Path("/")), WatchSection(path=Path("/data"))],
                     lambda *_: None)
    assert rooted.watch_for("/etc/hosts").path == Path("/")  # type: ignore[union-attr]
    assert rooted.watch_for("/data/x").path == Path("/data")  # type: ignore[union-attr]
