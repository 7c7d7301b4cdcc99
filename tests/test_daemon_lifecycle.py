"""The daemon's lifecycle: signals at any moment, reloads, a quiet journal."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from glacierd.config import UploadSection
from glacierd.emulator import Emulator
from tests.conftest import MIB, aws_config, emulator_process, random_file
from tests.test_daemon_schedule import T0, prepared_daemon


def _acked_parts(daemon: object) -> int:
    store = daemon.store  # type: ignore[attr-defined]
    return sum(len(u.parts) for u in store.unfinished_uploads())


def test_reload_keeps_one_uploader_and_stop_stops_it(tmp_path: Path) -> None:
    """SIGTERM after a SIGHUP that changed [upload]: the drain under way stops
    (before the reload it would have gone on with an uploader nobody stops)."""
    now = [T0]
    slow = UploadSection(part_size_mib=1, concurrency=1, bandwidth_limit=2 * MIB)
    with Emulator(tmp_path / "emu") as emu, \
            prepared_daemon(tmp_path, emu, now, upload=slow) as daemon:
        assert daemon.store is not None and daemon.uploader is not None
        big = tmp_path / "inbox" / "big.bin"
        random_file(big, 12 * MIB, seed=12)
        st = big.stat()
        daemon.store.file_seen(str(big), st.st_size, st.st_mtime_ns, st.st_ino)
        uploader = daemon.uploader
        drain = threading.Thread(target=daemon.drain)
        drain.start()
        deadline = time.monotonic() + 30
        while _acked_parts(daemon) < 1:
            assert time.monotonic() < deadline, "no part was acknowledged"
            time.sleep(0.05)  # polling the store: the upload runs on another thread
        daemon._reload_config = lambda: replace(  # type: ignore[method-assign]
            daemon.config, upload=replace(slow, bandwidth_limit=3 * MIB))
        daemon.reload()
        assert daemon.uploader is uploader, "one uploader for the daemon's life"
        assert uploader.limiter is not None and uploader.limiter.rate == 3 * MIB
        daemon.request_stop()
        started = time.monotonic()
        daemon.shutdown()
        drain.join(timeout=30)
        assert not drain.is_alive()
        assert time.monotonic() - started < 3, "stopped after the parts in flight"
        assert daemon.store.file(str(big)).state != "archived", "the upload was stopped"  # type: ignore[union-attr]


def test_long_drains_do_not_flood_the_log(tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    """A drain longer than its interval is normal: no 'skipped' warning every interval."""
    now = [T0]
    with Emulator(tmp_path / "emu") as emu, prepared_daemon(tmp_path, emu, now) as daemon:
        release = threading.Event()
        runs: list[float] = []

        def long_drain() -> None:
            runs.append(time.monotonic())
            release.wait(10)

        daemon.drain = long_drain  # type: ignore[method-assign]
        daemon.config = replace(daemon.config, schedule=replace(daemon.config.schedule,
                                                                drain_seconds=0.1))
        caplog.set_level(logging.WARNING)
        daemon._start_scheduler()
        try:
            deadline = time.monotonic() + 10
            while not runs:
                assert time.monotonic() < deadline
                time.sleep(0.05)  # polling for the scheduler's first run
            threading.Event().wait(1.0)  # ten intervals pass while the drain runs
        finally:
            release.set()
            daemon.scheduler.shutdown(wait=True)
    noisy = [r for r in caplog.records if "maximum number of running instances" in r.getMessage()]
    assert noisy == []
    assert len(runs) == 1


@pytest.mark.parametrize("point", ["run-command", "daemon-starting"])
def test_sigterm_while_starting_exits_cleanly(tmp_path: Path, point: str) -> None:
    """A SIGTERM before the scheduler runs ends the daemon with status 0, not -15."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with emulator_process(tmp_path / "emu") as url:
        cfg = tmp_path / "glacierd.toml"
        cfg.write_text(aws_config(url, "v") + f'[[watch]]\npath = "{inbox}"\n')
        base = [sys.executable, "-m", "glacierd.cli", "--config", str(cfg)]
        assert subprocess.run([*base, "db", "upgrade"], timeout=60).returncode == 0
        proc = subprocess.run([*base, "run"], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "GLACIERD_FAULT_POINT": f"{point}@TERM"})
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr


def test_fault_point_can_send_another_signal() -> None:
    code = ("import os, signal\n"
            "from glacierd import faultpoints\n"
            "signal.signal(signal.SIGHUP, lambda *a: print('hup', flush=True))\n"
            "faultpoints.hit('x')\nprint('after')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=30, env={**os.environ, "GLACIERD_FAULT_POINT": "x@HUP"})
    assert out.stdout.split() == ["hup", "after"] and out.returncode == 0


def test_an_unreadable_subfolder_is_logged_and_shown_until_readable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    from glacierd import status

    now = [T0]
    locked = tmp_path / "inbox" / "locked"
    locked.mkdir(parents=True)
    (locked / "inside.txt").write_text("cannot be seen")
    real_scandir = os.scandir

    def scandir(path: object = ".") -> object:
        if str(path) == str(locked):  # what EACCES looks like to a non-root daemon
            raise PermissionError(13, "Permission denied", str(locked))
        return real_scandir(path)  # type: ignore[arg-type]

    with Emulator(tmp_path / "emu") as emu, prepared_daemon(tmp_path, emu, now) as daemon:
        assert daemon.watcher is not None and daemon.store is not None
        monkeypatch.setattr(os, "scandir", scandir)
        caplog.set_level(logging.INFO, "glacierd.watcher")
        daemon.watcher.scan()
        shown = status.collect(daemon.store)["unreadable_folders"]
        assert [(f["path"], f["error"]) for f in shown] == [(str(locked), "Permission denied")]
        assert any(str(locked) in r.getMessage() and "cannot be read" in r.getMessage()
                   for r in caplog.records)
        daemon.watcher.scan()  # still unreadable: one row, one warning
        assert len(status.collect(daemon.store)["unreadable_folders"]) == 1
        monkeypatch.undo()
        daemon.watcher.scan()
        assert status.collect(daemon.store)["unreadable_folders"] == []
        events = [kind for kind, _ in daemon.store.events()]
    assert events.count("folder-unreadable") == 1 and events.count("folder-readable") == 1
