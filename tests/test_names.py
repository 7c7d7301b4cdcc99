"""Any name Linux allows is backed up and restored under its exact bytes, and
shown escaped, on one line, wherever a person or a script reads it."""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from glacierd import description, pathtext
from glacierd.emulator import Emulator
from glacierd.watcher import Watcher
from tests.conftest import aws_config, store_at_head
from tests.test_daemon_schedule import T0, prepared_daemon

ODD_NAMES = [
    b"caf\xe9.txt",  # Latin-1: not UTF-8
    "snow☃man.txt".encode(),
    b"new\nline.txt",
    b"tab\there.txt",
    b"\x1b[2J\x1b]0;owned\x07.txt",  # clear screen, set the terminal's title
    b"back\\slash\\x41.txt",  # looks like an escape, is not one
    b"\xff\xfe",
]


def _make(folder: Path) -> dict[bytes, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    for i, name in enumerate(ODD_NAMES):
        data = f"file {i}: ".encode() + name
        with open(os.path.join(os.fsencode(folder), name), "wb") as fh:
            fh.write(data)
        old = 1_700_000_000 + i  # long settled
        os.utime(os.path.join(os.fsencode(folder), name), (old, old))
        made[name] = data
    return made


def test_escape_is_lossless_printable_and_one_line() -> None:
    rnd = random.Random(7)
    for _ in range(5000):
        raw = bytes(rnd.randrange(1, 256) for _ in range(rnd.randrange(1, 16)))
        name = os.fsdecode(raw)
        shown = pathtext.escape(name)
        assert pathtext.unescape(shown) == name
        assert shown.encode("utf-8") and not any(
            unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in shown)
    assert pathtext.escape("été/日本.txt") == "été/日本.txt", "UTF-8 names read as themselves"
    assert pathtext.escape("caf\udce9") == "caf\\xe9"
    assert pathtext.escape("a\\xe9") == "a\\\\xe9"


@pytest.mark.parametrize("name", ODD_NAMES)
def test_descriptions_carry_any_name(name: bytes) -> None:
    path = os.fsdecode(b"/data/" + name)
    text = description.encode(description.ArchiveInfo(path, "h", 1, 2, "tok"))
    assert text.isascii() and text.isprintable() and len(text) <= 1024
    info = description.decode(text)
    assert info is not None and os.fsencode(info.path) == b"/data/" + name


def test_a_long_undecodable_path_is_shortened_without_breaking_an_escape() -> None:
    path = os.fsdecode(b"/d/" + b"\xe9" * 600)
    info = description.decode(description.encode(description.ArchiveInfo(path, "h", 1, 2, "t")))
    assert info is not None and info.shortened
    assert info.path.startswith(os.fsdecode(b"/d/\xe9\xe9")) and "...#" in info.path


def test_the_store_keeps_names_exactly_as_printable_text(tmp_path: Path) -> None:
    store = store_at_head(tmp_path)
    folder = os.fsdecode(b"/w/dir\xe9")
    paths = [os.fsdecode(b"/w/dir\xe9/" + name) for name in ODD_NAMES]
    for i, path in enumerate(paths):
        record = store.file_seen(path, i, i, i)
        assert store.file(path) == record and store.file(path).path == path  # type: ignore[union-attr]
        store.record_failure(record.id, f"{pathtext.shown(path)}: odd", None)
    store.file_seen(os.fsdecode(b"/w/dir\xe9x/other"), 1, 1, 1)
    assert sorted(f.path for f in (store.file(p) for p in paths) if f) == sorted(paths)
    store.close()
    with sqlite3.connect(tmp_path / "state" / "glacierd.db") as conn:
        conn.text_factory = bytes
        stored = [row[0] for row in conn.execute("SELECT path FROM files")]
        messages = [row[0] for row in conn.execute("SELECT message FROM events")]
    for raw in stored + messages:
        text = raw.decode("utf-8")  # valid UTF-8: any tool can read the database
        assert text.isprintable(), text
    store = store_at_head(tmp_path)
    with store._core_tx() as conn:  # the prefix query a restore or `archives --prefix` makes
        from sqlalchemy import select

        from glacierd.store.tables import files
        under = set(conn.scalars(select(files.c.path).where(
            files.c.path.startswith(folder + "/", autoescape=True))))
    assert under == set(paths)


def test_one_file_that_cannot_be_queued_never_holds_up_the_others(tmp_path: Path) -> None:
    (tmp_path / "w").mkdir()
    names = ["a.txt", "bad.txt", "c.txt"]
    for name in names:
        (tmp_path / "w" / name).write_text(name)
    recorded: list[str] = []
    failing = {str(tmp_path / "w" / "bad.txt")}

    def record(path: str, size: int, mtime_ns: int) -> None:
        if path in failing:
            raise OSError(28, "No space left on device")
        recorded.append(path)

    from glacierd.config import WatchSection

    watcher = Watcher([WatchSection(path=tmp_path / "w", settle_seconds=0.0)], record)
    watcher.scan()
    assert watcher.settle() == 2
    assert sorted(recorded) == [str(tmp_path / "w" / n) for n in ("a.txt", "c.txt")]
    failing.clear()  # the disk has room again: the file was kept as a candidate
    assert watcher.settle() == 1 and recorded[-1].endswith("bad.txt")


def test_the_daemon_archives_every_odd_name_in_one_pass(tmp_path: Path) -> None:
    now = [T0]
    with Emulator(tmp_path / "emu") as emu, prepared_daemon(tmp_path, emu, now) as daemon:
        _make(tmp_path / "inbox")
        assert daemon.watcher is not None and daemon.store is not None
        daemon.watcher.scan()
        assert daemon.watcher.settle() == len(ODD_NAMES)
        daemon.drain()
        counts = daemon.store.count_files()
    assert counts == {"archived": len(ODD_NAMES)}


@pytest.mark.slow
def test_upload_and_restore_odd_names_end_to_end(tmp_path: Path) -> None:
    made = _make(tmp_path / "data")
    with Emulator(tmp_path / "emu") as emu:
        cfg = tmp_path / "glacierd.toml"
        cfg.write_text(aws_config(emu.endpoint_url, "n") + '[restore]\ndir = "restored"\n')
        base = [sys.executable, "-m", "glacierd.cli", "--config", str(cfg)]

        def run(*args: str) -> subprocess.CompletedProcess[bytes]:
            return subprocess.run([*base, *args], capture_output=True, timeout=120,
                                  cwd=tmp_path)

        assert run("db", "upgrade").returncode == 0
        up = run("upload", str(tmp_path / "data"))
        assert up.returncode == 0, up.stderr.decode(errors="replace")
        assert b"Traceback" not in up.stderr
        lines = up.stdout.splitlines()
        assert len(lines) == len(ODD_NAMES) and all(ln.startswith(b"archived ") for ln in lines)
        assert b"\x1b" not in up.stdout + up.stderr and b"caf\\xe9.txt" in up.stdout
        listing = run("archives")
        assert len(listing.stdout.splitlines()) == len(ODD_NAMES)
        # path, size, when, archive id, bundle (a packed file's)
        assert all(len(ln.split(b"\t")) == 5 for ln in listing.stdout.splitlines())
        assert b"\x1b" not in listing.stdout and b"\x07" not in listing.stdout
        back = run("restore", str(tmp_path / "data"), "--wait", "--to", str(tmp_path / "out"))
        assert back.returncode == 0, back.stderr.decode(errors="replace")
    restored = tmp_path / "out" / str(tmp_path / "data").lstrip("/")
    got = {name: (restored.joinpath(os.fsdecode(name))).read_bytes()
           for name in os.listdir(os.fsencode(restored))}
    assert got == made


def test_a_settle_pass_that_cannot_be_queued_is_kept_whole(tmp_path: Path) -> None:
    """The daemon queues a pass in one transaction; a full disk keeps every file."""
    (tmp_path / "w").mkdir()
    for name in ("a.txt", "b.txt"):
        (tmp_path / "w" / name).write_text(name)
    batches: list[list[str]] = []
    full = [True]

    def record_many(ready: list[tuple[str, int, int]]) -> None:
        if full[0]:
            raise OSError(28, "No space left on device")
        batches.append(sorted(p for p, _, _ in ready))

    from glacierd.config import WatchSection

    def record_one(path: str, size: int, mtime_ns: int) -> None:
        if full[0]:
            raise OSError(28, "No space left on device")

    watcher = Watcher([WatchSection(path=tmp_path / "w", settle_seconds=0.0)],
                      record_one, record_many=record_many)
    watcher.scan()
    assert watcher.settle() == 0 and len(watcher.settler) == 2, "nothing lost"
    full[0] = False
    assert watcher.settle() == 2
    assert batches == [[str(tmp_path / "w" / "a.txt"), str(tmp_path / "w" / "b.txt")]]


def test_a_pass_with_one_file_that_cannot_be_queued_queues_the_others(tmp_path: Path) -> None:
    """If the pass cannot go in one transaction, its files go one by one."""
    (tmp_path / "w").mkdir()
    for name in ("a.txt", "bad.txt", "c.txt"):
        (tmp_path / "w" / name).write_text(name)
    one_by_one: list[str] = []

    def record_many(ready: list[tuple[str, int, int]]) -> None:
        raise ValueError("one of these cannot be stored")

    def record_one(path: str, size: int, mtime_ns: int) -> None:
        if path.endswith("bad.txt"):
            raise ValueError("this one")
        one_by_one.append(Path(path).name)

    from glacierd.config import WatchSection

    watcher = Watcher([WatchSection(path=tmp_path / "w", settle_seconds=0.0)],
                      record_one, record_many=record_many)
    watcher.scan()
    assert watcher.settle() == 2 and sorted(one_by_one) == ["a.txt", "c.txt"]
    assert len(watcher.settler) == 1, "the odd one stays a candidate"
