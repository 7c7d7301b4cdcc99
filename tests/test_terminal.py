"""What a person sees: `status --watch` in a real terminal (tmux), 80 and 200
columns wide: names visible, ids whole with --long, no escape sequence from a
file name reaching the terminal."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import store_at_head

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

JOB_ID = "HkF9p6o7yjhFx-K3CGl6fuSm6VzW9T7esGQfco8nUXVYwS1jo6L8oRO4gvbFLk1Q_" + "x" * 27
LONG = "/srv/photos/2026/holidays/a-rather-long-folder-name/and-another-one/IMG_0042.jpg"
ODD = "/srv/inbox/\x1b[2J\x1b]0;owned\x07name.txt"


def _screen(tmux: list[str], session: str, want: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        screen = subprocess.run([*tmux, "capture-pane", "-p", "-J", "-t", session],
                                capture_output=True, text=True, timeout=10).stdout
        if want in screen:
            return screen
        assert time.monotonic() < deadline, f"no {want!r} on the screen:\n{screen}"
        time.sleep(0.2)  # polling another process's screen: there is no event for it


@pytest.mark.parametrize("columns", [80, 200])
def test_status_watch_in_a_real_terminal(tmp_path: Path, columns: int) -> None:
    store = store_at_head(tmp_path)
    for path in (LONG, ODD):
        record = store.file_seen(path, 5 * 2**20, 1, 1)
        store.record_failure(record.id, f"{path}: permission denied", None)
    store.add_job(JOB_ID, "v", "inventory")
    store.close()
    cfg = tmp_path / "glacierd.toml"
    cfg.write_text(f'[state]\ndir = "{tmp_path / "state"}"\n')
    tmux = ["tmux", "-L", f"glacierd-test-{os.getpid()}-{columns}"]
    session = "status"
    command = f"{sys.executable} -m glacierd.cli --config {cfg} status --watch --long"
    subprocess.run([*tmux, "new-session", "-d", "-s", session, "-x", str(columns), "-y", "60",
                    command], check=True, timeout=30, env={**os.environ, "TERM": "xterm"})
    try:
        screen = _screen(tmux, session, "last inventory")
        raw = subprocess.run([*tmux, "capture-pane", "-p", "-e", "-t", session],
                             capture_output=True, text=True, timeout=10).stdout
    finally:
        subprocess.run([*tmux, "kill-server"], timeout=10)
    assert "IMG_0042.jpg" in screen, "the file name survives any cut"
    assert "name.txt" in screen and "\\x1b[2J" in screen, "an odd name is shown escaped"
    assert JOB_ID in screen.replace("\n", ""), "the job id is whole"
    assert "\x1b[2J" not in raw and "\x07" not in raw, "no escape from a name reached it"
    assert "files: 0 pending, 0 uploading, 0 archived, 2 failed" in screen
    lines = [line for line in screen.splitlines() if line.strip()]
    assert all(len(line) <= columns for line in lines)
