"""Restores end to end: real processes, the emulator's jobs taking their time,
files compared byte for byte and mtime for mtime."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from glacierd import description
from glacierd.emulator import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, fetch_stats
from glacierd.glacier import GlacierClient
from tests.conftest import (
    MIB,
    aws_config,
    count_rows,
    emulator_process,
    fast_policy,
    random_file,
)

pytestmark = pytest.mark.slow


def write_config(tmp_path: Path, url: str, *, segment_mib: int = 4) -> Path:
    cfg = tmp_path / "glacierd.toml"
    cfg.write_text(aws_config(url, "r") + f"""
[upload]
part_size_mib = 4
[restore]
dir = "restored"
segment_mib = {segment_mib}
""")
    return cfg


@contextmanager
def backed_up(tmp_path: Path, data_dir: Path, *emulator_args: str,
              segment_mib: int = 4) -> Iterator[tuple[str, Path]]:
    """An emulator process, a config for it, and ``data_dir`` uploaded: (url, config)."""
    with emulator_process(tmp_path / "emu", *emulator_args) as url:
        cfg = write_config(tmp_path, url, segment_mib=segment_mib)
        assert run(cfg, "db", "upgrade").returncode == 0
        up = run(cfg, "upload", str(data_dir))
        assert up.returncode == 0, up.stderr
        yield url, cfg


def run(cfg: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "glacierd.cli", "--config", str(cfg), *args],
                          capture_output=True, text=True, timeout=timeout)


def make_files(folder: Path) -> dict[Path, bytes]:
    folder.mkdir(parents=True)
    files = {
        folder / "empty.txt": b"",
        folder / "one.bin": b"x",
        folder / "five.bin": random.Random(5).randbytes(5 * MIB + 1),
        folder / "big" / "sixty-four.bin": random.Random(64).randbytes(64 * MIB),
        folder / "été" / "café ☕.txt": b"non-ASCII names survive",
    }
    for i, (path, data) in enumerate(files.items()):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, ns=(1_700_000_000_000_000_000 + i, 1_700_000_000_123_456_789 + i * 1000))
    return files


def test_archive_delete_restore_by_folder_is_identical(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    files = make_files(data_dir)
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    with emulator_process(tmp_path / "emu", "--job-delay", "2") as url:
        cfg = write_config(tmp_path, url)
        assert run(cfg, "db", "upgrade").returncode == 0
        up = run(cfg, "upload", str(data_dir))
        assert up.returncode == 0, up.stderr
        for path in files:
            path.unlink()
        dry = json.loads(run(cfg, "restore", str(data_dir), "--dry-run", "--json").stdout)
        assert (dry["archives"], dry["bytes"]) == (5, sum(map(len, files.values())))
        assert {f["path"] for f in dry["files"]} == {str(p) for p in files}
        human = run(cfg, "restore", str(data_dir), "--dry-run")
        assert human.returncode == 0 and "5 archives, 69.0 MiB to retrieve" in human.stdout
        assert fetch_stats(url)["requests"].get("InitiateJob", 0) == 0, "a dry run costs nothing"
        started = time.monotonic()
        back = run(cfg, "restore", str(data_dir), "--wait")
        assert back.returncode == 0, back.stderr
        assert time.monotonic() - started >= 2, "the jobs took their delay"
        assert "waiting for r:" in back.stderr and "typically ready 3-5 h" in back.stderr
        assert "5 restored" in back.stderr, "a summary at the end"
    restored = tmp_path / "restored"
    for path, data in files.items():
        target = restored / str(path).lstrip("/")
        assert target.read_bytes() == data, path
        assert target.stat().st_mtime_ns == mtimes[path], path
    assert not list(restored.rglob("*.glacierd-partial"))


def test_restore_refuses_to_overwrite_and_unknown_paths(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "a.txt").write_text("original")
    with backed_up(tmp_path, data_dir) as (_url, cfg):
        target = tmp_path / "restored" / str(data_dir / "a.txt").lstrip("/")
        target.parent.mkdir(parents=True)
        target.write_text("do not touch")
        refused = run(cfg, "restore", str(data_dir / "a.txt"), "--wait")
        assert refused.returncode == 65 and "exists" in refused.stderr
        assert target.read_text() == "do not touch"
        unknown = run(cfg, "restore", str(tmp_path / "never-archived"))
        assert unknown.returncode == 65 and "never-archived" in unknown.stderr
        bad_id = run(cfg, "restore", "--archive-id", "NOPE")
        assert bad_id.returncode == 65 and "NOPE" in bad_id.stderr
        forced = run(cfg, "restore", str(data_dir / "a.txt"), "--wait", "--overwrite")
        assert forced.returncode == 0, forced.stderr
        assert target.read_text() == "original"


def _verified_segments(state_db: Path) -> int:
    return count_rows(state_db, "restore_segments")


def test_sigkill_during_download_resumes_at_the_first_unverified_segment(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data = random_file(data_dir / "big.bin", 64 * MIB, seed=9)
    segment = 4 * MIB
    rng = random.Random(7)
    with backed_up(tmp_path, data_dir, segment_mib=4) as (url, cfg):
        (data_dir / "big.bin").unlink()
        state_db = tmp_path / "state" / "glacierd.db"
        baseline = fetch_stats(url)["job_output_bytes_sent"]
        kills = 0
        while kills < 4:
            before = _verified_segments(state_db)
            proc = subprocess.Popen([sys.executable, "-m", "glacierd.cli", "--config", str(cfg),
                                     "restore", str(data_dir), "--wait"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 60
            while _verified_segments(state_db) <= before and proc.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.01)  # polling another process's database
            time.sleep(rng.uniform(0, 0.05))
            if proc.poll() is not None:
                break
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            kills += 1
        assert kills >= 3, f"the download finished after {kills} kills"
        final = run(cfg, "restore", str(data_dir), "--wait")
        assert final.returncode == 0, final.stderr
        served = fetch_stats(url)["job_output_bytes_sent"] - baseline
    target = tmp_path / "restored" / str(data_dir / "big.bin").lstrip("/")
    assert target.read_bytes() == data
    # A kill loses at most the segments in flight: [restore] concurrency (4) of them.
    assert served <= len(data) + kills * 4 * segment, (served, kills)


def test_corrupted_output_never_lands_under_the_final_name(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    files = {data_dir / f"f{i}.bin": random_file(data_dir / f"f{i}.bin", 3 * MIB + i, seed=i)
             for i in range(4)}
    with backed_up(tmp_path, data_dir, "--corrupt-rate", "0.35", "--seed", "5",
                   segment_mib=1) as (url, cfg):
        for path in files:
            path.unlink()
        result = run(cfg, "restore", str(data_dir), "--wait")
        stats = fetch_stats(url)
    assert stats["faults"].get("corrupt", 0) >= 1, "corruption did happen"
    for path, data in files.items():
        target = tmp_path / "restored" / str(path).lstrip("/")
        if target.exists():
            assert target.read_bytes() == data, "a file under its final name is always right"
        else:
            assert "tree hash" in result.stderr
    assert result.returncode == 0 or "failed" in result.stderr


def test_catalog_rebuild_after_losing_the_state_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    files = make_files(data_dir)
    with backed_up(tmp_path, data_dir, "--job-delay", "1") as (_url, cfg):
        before = run(cfg, "archives").stdout
        for leftover in (tmp_path / "state").glob("glacierd.db*"):
            leftover.unlink()
        assert run(cfg, "db", "upgrade").returncode == 0
        assert run(cfg, "archives").stdout.strip() == ""
        rebuilt = run(cfg, "catalog", "rebuild")
        assert rebuilt.returncode == 0, rebuilt.stderr
        nonempty_files = sum(1 for d in files.values() if d)
        assert f"catalog has {nonempty_files} archives of {nonempty_files} files" in (
            rebuilt.stdout), rebuilt.stdout
        after = run(cfg, "archives").stdout
    rows = [line.split("\t") for line in after.strip().splitlines()]
    listed = {(r[0], int(r[1])) for r in rows}
    nonempty = {(str(p), len(d)) for p, d in files.items() if d}
    assert listed == nonempty, "every archived file is back with its path and size"
    assert len(before.strip().splitlines()) == len(files), "the empty file had no archive"


def test_hostile_description_paths_restore_inside_the_restore_folder(tmp_path: Path) -> None:
    with emulator_process(tmp_path / "emu") as url:
        cfg = write_config(tmp_path, url)
        assert run(cfg, "db", "upgrade").returncode == 0
        client = GlacierClient("us-east-1", endpoint_url=url,
                               credentials=(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY),
                               retry_policy=fast_policy())
        client.create_vault("r")
        ids = {}
        for evil in ("../../outside", "/etc/x"):
            desc = description.encode(description.ArchiveInfo(
                path=evil, host="attacker", size=5, mtime_ns=1, token=f"t{len(ids)}"))
            ids[evil] = client.upload_archive("r", b"pwned", description=desc)
        assert run(cfg, "catalog", "rebuild").returncode == 0
        for archive_id in ids.values():
            answer = run(cfg, "restore", "--archive-id", archive_id, "--wait")
            assert answer.returncode == 0, answer.stderr
    restored = tmp_path / "restored"
    assert (restored / "outside").read_bytes() == b"pwned"
    assert (restored / "etc" / "x").read_bytes() == b"pwned"
    assert not (tmp_path.parent / "outside").exists()
    assert not (tmp_path / "outside").exists()


def test_verify_delete_vaults_and_jobs_commands(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "same.txt").write_text("unchanged")
    (data_dir / "edited.txt").write_text("before")
    (data_dir / "lost.txt").write_text("will vanish")
    with backed_up(tmp_path, data_dir) as (url, cfg):
        (data_dir / "edited.txt").write_text("after!")
        (data_dir / "lost.txt").unlink()
        verify = run(cfg, "verify", str(data_dir))
        assert verify.returncode == 1
        assert f"changed\t{data_dir / 'edited.txt'}" in verify.stdout
        assert f"missing\t{data_dir / 'lost.txt'}" in verify.stdout
        assert "1 unchanged, 1 changed, 1 missing" in verify.stdout
        unconfirmed = run(cfg, "delete", str(data_dir / "lost.txt"))
        assert unconfirmed.returncode == 1 and "keeps it 90 days at least" in unconfirmed.stderr
        assert "--yes" in unconfirmed.stderr
        deleted = run(cfg, "delete", str(data_dir / "lost.txt"), "--yes")
        assert deleted.returncode == 0, deleted.stderr
        client = GlacierClient("us-east-1", endpoint_url=url,
                               credentials=(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY))
        assert client.describe_vault("r")["NumberOfArchives"] == 2
        assert str(data_dir / "lost.txt") not in run(cfg, "archives").stdout
        vaults = run(cfg, "vaults")
        assert vaults.returncode == 0 and "r" in vaults.stdout
        assert run(cfg, "inventory", "--refresh", "--wait").returncode == 0
        inv = run(cfg, "inventory")
        assert "2 archives" in inv.stdout, inv.stdout
        jobs = run(cfg, "jobs")
        assert jobs.returncode == 0 and "inventory" in jobs.stdout


def test_a_restore_killed_after_a_rename_finishes_when_run_again(tmp_path: Path) -> None:
    """Killed between the rename into place and the DONE record, with some files of
    the folder in place and some not: the same command finishes the rest."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    files = {data_dir / f"f{i}.bin": random_file(data_dir / f"f{i}.bin", MIB + i, seed=i)
             for i in range(3)}
    with backed_up(tmp_path, data_dir) as (_url, cfg):
        killed = subprocess.run(
            [sys.executable, "-m", "glacierd.cli", "--config", str(cfg), "restore",
             str(data_dir), "--wait"], capture_output=True, text=True, timeout=120,
            env={**os.environ, "GLACIERD_FAULT_POINT": "after-restore-rename:2"})
        assert killed.returncode == -signal.SIGKILL
        restored = tmp_path / "restored" / str(data_dir).lstrip("/")
        assert len(list(restored.glob("f*.bin"))) == 2, "two in place, the second unrecorded"
        again = run(cfg, "restore", str(data_dir), "--wait")
        assert again.returncode == 0, again.stderr
        assert again.stdout.count("restored ") == 3
    for path, data in files.items():
        assert (restored / path.name).read_bytes() == data
    assert not list(restored.rglob("*.glacierd-partial"))


def test_a_deleted_backup_is_reflected_and_made_again(tmp_path: Path) -> None:
    """After `delete` the file has no backup: verify says so, `upload` uploads it
    again (not 'skipped' with the deleted id), and a file in a watched folder that
    was never backed up is named too."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "keep.txt").write_text("kept")
    (data_dir / "again.txt").write_text("deleted, then backed up again")
    with backed_up(tmp_path, data_dir) as (url, cfg):
        cfg.write_text(cfg.read_text() + f'[[watch]]\npath = "{data_dir}"\n')
        (data_dir / "never.txt").write_text("dropped in, never uploaded")
        assert run(cfg, "delete", str(data_dir / "again.txt"), "--yes").returncode == 0
        states = {f["path"]: f["state"] for f in json.loads(
            run(cfg, "status", "--json").stdout)["files"]}
        assert states[str(data_dir / "again.txt")] == "pending", "no backup: queued again"
        verify = run(cfg, "verify", str(data_dir))
        assert verify.returncode == 1
        assert f"not backed up\t{data_dir / 'again.txt'}" in verify.stdout
        assert f"not backed up\t{data_dir / 'never.txt'}" in verify.stdout
        assert "1 unchanged, 0 changed, 0 missing, 2 not backed up" in verify.stdout
        again = run(cfg, "upload", str(data_dir / "again.txt"))
        assert again.returncode == 0 and again.stdout.startswith("archived "), again.stdout
        client = GlacierClient("us-east-1", endpoint_url=url,
                               credentials=(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY))
        assert client.describe_vault("r")["NumberOfArchives"] == 2


def test_upload_refuses_what_is_no_file_and_retry_and_forget_failures(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "ok.txt").write_text("fine")
    os.mkfifo(data_dir / "pipe")
    with emulator_process(tmp_path / "emu") as url:
        cfg = write_config(tmp_path, url)
        assert run(cfg, "db", "upgrade").returncode == 0
        answer = run(cfg, "upload", str(tmp_path / "typo.txt"), str(data_dir), timeout=60)
        assert answer.returncode == 66, answer.stderr
        assert f"refused {tmp_path / 'typo.txt'}: no such file" in answer.stderr
        assert f"refused {data_dir / 'pipe'}: is a FIFO" in answer.stderr
        assert f"archived {data_dir / 'ok.txt'}" in answer.stdout, "the others still go"
        assert "Traceback" not in answer.stderr
        paths = {f["path"] for f in json.loads(run(cfg, "status", "--json").stdout)["files"]}
        assert paths == {str(data_dir / "ok.txt")}, "refused paths are not stored"
        # Two failures, as the daemon records them (retry in hours): one retried now
        # in the foreground, one forgotten; neither stays in the queue.
        (data_dir / "later.txt").write_text("failed once")
        from glacierd.store.repository import Store

        store = Store.open(f"sqlite:///{tmp_path / 'state' / 'glacierd.db'}")
        for name in ("later.txt", "ok.txt"):
            record = store.file_seen(str(data_dir / name), 1, 1, 1)
            store.record_failure(record.id, "ServiceUnavailable", dt.datetime(2099, 1, 1,
                                                                             tzinfo=dt.UTC))
        forgot = run(cfg, "forget", str(data_dir / "ok.txt"))
        assert forgot.stdout.strip() == f"forgotten {data_dir / 'ok.txt'}"
        retried = run(cfg, "retry", str(data_dir))
        assert retried.returncode == 0, retried.stderr
        assert retried.stdout.startswith(f"archived {data_dir / 'later.txt'}"), retried.stdout
        assert run(cfg, "retry").stdout.strip() == "no failed files"
        assert store.file(str(data_dir / "ok.txt")).state == "forgotten"  # type: ignore[union-attr]
        assert store.pending_files(dt.datetime(2100, 1, 1, tzinfo=dt.UTC)) == []
        store.close()
        forgot = run(cfg, "forget")
        assert forgot.returncode == 2 and "--all-failed" in forgot.stderr


def test_restore_says_what_happens_next_and_ctrl_c_resumes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "a.txt").write_text("bring me back")
    with backed_up(tmp_path, data_dir, "--job-delay", "3600") as (_url, cfg):
        asked = run(cfg, "restore", str(data_dir))
        assert asked.returncode == 0
        assert "No glacierd daemon is running" in asked.stderr and "--wait" in asked.stderr
        waiting = subprocess.Popen([sys.executable, "-m", "glacierd.cli", "--config", str(cfg),
                                    "restore", str(data_dir), "--wait"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert waiting.stderr is not None
        line = waiting.stderr.readline()  # blocks until it says what it waits for
        assert "waiting for r:" in line and "Standard retrieval" in line, line
        waiting.send_signal(signal.SIGINT)
        _out, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 130
    assert "run the same command again to resume" in err and "Traceback" not in err
