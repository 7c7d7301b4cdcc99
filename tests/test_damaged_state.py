"""A damaged state database gets a message naming it and what to do, an exit code,
no traceback, and is never modified; read-only commands change nothing."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import aws_config, store_at_head


def _cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "glacierd.cli", "--config", str(cfg), *args],
                          capture_output=True, text=True, timeout=60, cwd=cfg.parent)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_database_is_named_and_left_alone(tmp_path: Path, damage: str) -> None:
    db = tmp_path / "state" / "glacierd.db"
    if damage == "garbage":
        db.parent.mkdir(mode=0o700)
        db.write_bytes(os.urandom(50_000))
    else:
        store = store_at_head(tmp_path)
        for i in range(2000):
            store.file_seen(f"/data/file-{i:05d}.bin", i, i, i)
        store.close()
        conn = sqlite3.connect(db)  # fold the WAL in, then cut the file in half
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        os.truncate(db, db.stat().st_size // 2)
    before = _digest(db)
    cfg = tmp_path / "glacierd.toml"
    cfg.write_text(aws_config("http://127.0.0.1:9", "v"))
    (tmp_path / "f.txt").write_text("x")
    for args in (["status"], ["archives"], ["upload", str(tmp_path / "f.txt")], ["db", "upgrade"]):
        answer = _cli(cfg, *args)
        assert answer.returncode == 74, (args, answer.stderr)
        assert "Traceback" not in answer.stderr
        assert str(db) in answer.stderr and "damaged" in answer.stderr
        assert "catalog rebuild" in answer.stderr and "keep this file" in answer.stderr
    assert _digest(db) == before, "the damaged file was not touched"
    assert not Path(f"{db}-wal").exists()


def test_read_only_commands_leave_a_foreign_journal_mode_alone(tmp_path: Path) -> None:
    store_at_head(tmp_path).close()
    db = tmp_path / "state" / "glacierd.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=DELETE")  # as another tool might have left it
    conn.close()
    cfg = tmp_path / "glacierd.toml"
    cfg.write_text(aws_config("http://127.0.0.1:9", "v"))
    for args in (["status"], ["status", "--json"], ["archives"], ["jobs"], ["verify"]):
        answer = _cli(cfg, *args)
        assert answer.returncode == 0, (args, answer.stderr)
    assert db.read_bytes()[18:20] == b"\x01\x01", "rollback journal, not WAL (header bytes)"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes whatever the modes say")
def test_status_works_on_a_read_only_state_folder(tmp_path: Path) -> None:
    store_at_head(tmp_path).close()
    state = tmp_path / "state"
    (state / "glacierd.db").chmod(0o400)
    state.chmod(0o500)
    cfg = tmp_path / "glacierd.toml"
    cfg.write_text(aws_config("http://127.0.0.1:9", "v"))
    try:
        answer = _cli(cfg, "status")
        assert answer.returncode == 0, answer.stderr
        upload = _cli(cfg, "upload", str(cfg))
        assert upload.returncode == 74 and "read-only" in upload.stderr
        assert "cannot create" not in upload.stderr
    finally:
        state.chmod(0o700)
