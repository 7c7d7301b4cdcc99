"""What a person and a script read: binary units, relative times, whole ids,
JSON for every listing, messages that name the fix."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from glacierd import humanize
from glacierd.emulator import Emulator
from tests.conftest import MIB, aws_config, random_file


def test_humane_units_times_and_cuts() -> None:
    assert [humanize.size(n) for n in (0, 1, 1023, 1024, 1536, 200_000_000)] == [
        "0 B", "1 B", "1023 B", "1.0 KiB", "1.5 KiB", "190.7 MiB"]
    assert humanize.count(1, "archive") == "1 archive" and humanize.count(2, "file") == "2 files"
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    assert humanize.relative(now - dt.timedelta(minutes=3), now) == "3 min ago"
    assert humanize.relative(now + dt.timedelta(hours=2), now) == "in 2 h"
    path = "/tmp/x/inbox/tree/a/a1.txt"
    for width in range(10, 30):
        cut = humanize.middle_cut(path, width)
        assert len(cut) <= width and cut.endswith("a1.txt")


@pytest.fixture
def cli(tmp_path: Path, emulator: Emulator) -> object:
    cfg = tmp_path / "glacierd.toml"
    cfg.write_text(aws_config(emulator.endpoint_url, "o") + '[restore]\ndir = "restored"\n')

    def run(*args: str, config: Path = cfg) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "glacierd.cli", "--config", str(config),
                               *args], capture_output=True, text=True, timeout=120,
                              cwd=tmp_path)

    assert run("db", "upgrade").returncode == 0
    return run


def test_json_for_every_listing_and_humane_tables(tmp_path: Path, cli: object) -> None:
    run = cli  # type: ignore[assignment]
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    random_file(data / "sub" / "big.bin", 3 * MIB + 5)
    (data / "small.txt").write_text("small")
    up = run("upload", "--json", "data")  # type: ignore[operator]
    assert up.returncode == 0, up.stderr
    results = [json.loads(line) for line in up.stdout.splitlines()]
    assert {(r["path"], r["status"], r["size"]) for r in results} == {
        (str(data / "small.txt"), "archived", 5), (str(data / "sub" / "big.bin"), "archived",
                                                   3 * MIB + 5)}
    assert all(len(r["archive_id"]) > 100 for r in results), "ids whole"
    assert "2 archived" in up.stderr, "a summary at the end"
    listed = json.loads(run("archives", "--json", "--prefix", "data/sub").stdout)  # type: ignore[operator]
    assert [(a["path"], a["size"]) for a in listed] == [(str(data / "sub" / "big.bin"),
                                                         3 * MIB + 5)], "relative prefix"
    assert listed[0]["archive_id"] == next(r["archive_id"] for r in results
                                           if r["path"].endswith("big.bin"))
    jobs = json.loads(run("jobs", "--json").stdout)  # type: ignore[operator]
    assert jobs == []
    verify = json.loads(run("verify", "--json", "data").stdout)  # type: ignore[operator]
    assert verify["counts"]["unchanged"] == 2 and verify["counts"]["not_backed_up"] == 0
    summary = json.loads(run("status", "--json", "--summary").stdout)  # type: ignore[operator]
    assert "files" not in summary and summary["counts"] == {"archived": 2}
    assert summary["summary"]["archived_bytes"] == 3 * MIB + 10
    only = json.loads(run("status", "--json", "--path", "data/sub").stdout)  # type: ignore[operator]
    assert [f["path"] for f in only["files"]] == [str(data / "sub" / "big.bin")]
    none_failed = json.loads(run("status", "--json", "--state", "failed").stdout)  # type: ignore[operator]
    assert none_failed["files"] == []
    dry = run("restore", "data", "--dry-run")  # type: ignore[operator]
    assert "2 archives, 3.0 MiB to retrieve" in dry.stdout and "3 MB" not in dry.stdout
    back = run("restore", "data", "--wait", "--json", "--strip", "data")  # type: ignore[operator]
    assert back.returncode == 0, back.stderr
    outcomes = [json.loads(line) for line in back.stdout.splitlines()]
    assert {o["status"] for o in outcomes} == {"done"}
    assert (tmp_path / "restored" / "sub" / "big.bin").stat().st_size == 3 * MIB + 5, "--strip"
    gone = run("delete", "data")  # type: ignore[operator]
    assert gone.returncode == 1 and "would delete 2 archives of 2 files (3.0 MiB)" in gone.stderr


def test_read_only_commands_need_only_the_state_section(tmp_path: Path, cli: object) -> None:
    run = cli  # type: ignore[assignment]
    state_only = tmp_path / "state-only.toml"
    state_only.write_text('[state]\ndir = "state"\n')
    for command in (["status"], ["archives"], ["jobs"], ["status", "--json"]):
        answer = run(*command, config=state_only)  # type: ignore[operator]
        assert answer.returncode == 0, (command, answer.stderr)


def test_messages_that_name_the_fix(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "glacierd.cli"]
    env = {k: v for k, v in os.environ.items() if k != "GLACIERD_CONFIG"}
    missing = subprocess.run([*base, "--config", str(tmp_path / "nope.toml"), "status"],
                             capture_output=True, text=True, timeout=60, env=env)
    assert missing.returncode == 78
    for way in ("nope.toml", "--config", "GLACIERD_CONFIG", "--local"):
        assert way in missing.stderr
    after = subprocess.run([*base, "archives", "--local", "--state-dir", str(tmp_path / "s")],
                           capture_output=True, text=True, timeout=60)
    assert "No such option" not in after.stderr and "run --local" in after.stderr


def test_an_interrupted_foreground_upload_shows_as_interrupted(tmp_path: Path,
                                                               cli: object) -> None:
    run = cli  # type: ignore[assignment]
    random_file(tmp_path / "big.bin", 4 * MIB)
    cfg = tmp_path / "glacierd.toml"
    cfg.write_text(cfg.read_text() + "[upload]\npart_size_mib = 1\nconcurrency = 1\n")
    killed = subprocess.run(
        [sys.executable, "-m", "glacierd.cli", "--config", str(cfg), "upload", "big.bin"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "GLACIERD_FAULT_POINT": "after-part-2xx:2"})
    assert killed.returncode == -9
    doc = json.loads(run("status", "--json").stdout)  # type: ignore[operator]
    [upload] = doc["uploads"]
    assert upload["interrupted"] and upload["rate_bps"] == 0 and upload["eta_seconds"] is None
    table = run("status").stdout  # type: ignore[operator]
    assert "interrupted" in table and "MiB/s" not in table
    again = run("upload", "big.bin")  # type: ignore[operator]
    assert again.returncode == 0 and "resuming" in again.stderr and "of 4.0 MiB" in again.stderr


def test_a_json_listing_is_written_row_by_row_as_json_dumps_would_write_it(
        capsys: pytest.CaptureFixture[str]) -> None:
    """``--json`` to a pipe streams (a million archives in constant memory) and is
    byte for byte what ``json.dumps`` of the whole list gives."""
    import io

    from glacierd.cli import listing

    rows = [{"path": f"/d/f{i}", "size": i, "created_at": dt.datetime(2026, 1, i + 1,
                                                                      tzinfo=dt.UTC),
             "archive_id": None if i == 1 else f"A{i}"} for i in range(3)]
    written = io.StringIO()

    def each() -> object:
        for i, row in enumerate(rows):
            written.write(capsys.readouterr().out)
            if i:  # the row before is out already: nothing waits for the end
                assert f'"/d/f{i - 1}"' in written.getvalue()
            yield row

    original = sys.stdout
    columns = [listing.Column("path", "path")]
    listing.show(each(), columns, as_json=True, long=False)  # type: ignore[arg-type]
    out = capsys.readouterr().out
    written.write(out)
    expected = json.dumps([{k: (v.isoformat(timespec="seconds") if isinstance(
        v, dt.datetime) else v) for k, v in row.items()} for row in rows]) + "\n"
    assert written.getvalue() == expected
    listing.show(iter([]), columns, as_json=True, long=False)
    assert capsys.readouterr().out == json.dumps([]) + "\n"
    assert sys.stdout is original
