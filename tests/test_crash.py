"""Crash tests with real processes: ``glacierd upload`` killed with SIGKILL —
at random moments, and at the exact points where a crash is most dangerous —
then restarted. The vault must end with exactly one archive per file, with
the file's tree hash, and the bytes re-sent must stay within the bound."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from glacierd import description
from glacierd.emulator import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, fetch_stats
from glacierd.glacier import GlacierClient, treehash
from tests.conftest import (
    MIB,
    aws_config,
    count_rows,
    emulator_process,
    fast_policy,
    random_file,
)

pytestmark = pytest.mark.slow


def write_config(tmp_path: Path, url: str, *, part_mib: int = 1, concurrency: int = 4,
                 bandwidth: str | None = None) -> Path:
    cfg = tmp_path / "glacierd.toml"
    limit = f'bandwidth_limit = "{bandwidth}"\n' if bandwidth else ""
    cfg.write_text(aws_config(url, "crash") + f"""
[upload]
part_size_mib = {part_mib}
concurrency = {concurrency}
retries = 10
{limit}""")
    return cfg


def glacierd(cfg: Path, *args: str, fault: str | None = None,
             **kw: object) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "GLACIERD_FAULT_POINT"}
    if fault:
        env["GLACIERD_FAULT_POINT"] = fault
    return subprocess.Popen([sys.executable, "-m", "glacierd.cli", "--config", str(cfg), *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kw)  # type: ignore[call-overload]


def run(cfg: Path, *args: str, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = glacierd(cfg, *args, fault=fault)
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def acked_parts(state_db: Path) -> int:
    return count_rows(state_db, "parts")


def vault_inventory(url: str, vault: str = "crash") -> list[dict[str, object]]:
    """The vault's archives, the way a user would learn them: an inventory job."""
    client = GlacierClient("us-east-1", endpoint_url=url,
                           credentials=(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY),
                           retry_policy=fast_policy())
    job = client.initiate_inventory_job(vault)
    deadline = time.monotonic() + 30
    while client.describe_job(vault, job)["StatusCode"] != "Succeeded":
        assert time.monotonic() < deadline, "inventory job did not finish"
        time.sleep(0.05)
    with client.get_job_output(vault, job) as out:
        doc = json.loads(out.read())
    listing: list[dict[str, object]] = doc["ArchiveList"]
    return listing


def archives_of(listing: list[dict[str, object]], path: Path) -> list[dict[str, object]]:
    mine = []
    for entry in listing:
        info = description.decode(str(entry["ArchiveDescription"]))
        if info is not None and info.path == str(path):
            mine.append(entry)
    return mine


def kill_at_random(cfg: Path, path: Path, state_db: Path, kills: int, rng: random.Random,
                   longest: float) -> int:
    """``glacierd upload PATH`` started and SIGKILLed ``kills`` times, each time at a
    random moment up to ``longest`` seconds after it acknowledged a new part;
    returns how many kills there were (fewer if the upload finished first)."""
    done = 0
    while done < kills:
        before = acked_parts(state_db)
        proc = glacierd(cfg, "upload", str(path))
        deadline = time.monotonic() + 60
        while acked_parts(state_db) <= before and proc.poll() is None:
            assert time.monotonic() < deadline, "no progress within 60 s"
            time.sleep(0.02)  # polling another process's database: no event to wait on
        time.sleep(rng.uniform(0.0, longest))  # the random moment of the kill
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        done += 1
    return done


def test_random_sigkills_resume_to_exactly_one_archive(tmp_path: Path) -> None:
    size, part, concurrency = 64 * MIB, MIB, 4
    data = random_file(tmp_path / "big.bin", size, seed=64)
    with emulator_process(tmp_path / "emu") as url:
        cfg = write_config(tmp_path, url, concurrency=concurrency, bandwidth="6M")
        assert run(cfg, "db", "upgrade").returncode == 0
        kills = kill_at_random(cfg, tmp_path / "big.bin", tmp_path / "state" / "glacierd.db",
                               10, random.Random(20261128), 0.4)
        assert kills >= 10, f"the upload finished after only {kills} kills"
        final = run(cfg, "upload", str(tmp_path / "big.bin"))
        assert final.returncode == 0, final.stderr
        stats = fetch_stats(url)
        mine = archives_of(vault_inventory(url), tmp_path / "big.bin")
    print(f"kills={kills} part_bytes_received={stats['part_bytes_received']} "
          f"bound={size + kills * concurrency * part}")
    assert len(mine) == 1, mine
    assert mine[0]["SHA256TreeHash"] == treehash.tree_hash(data)
    assert mine[0]["Size"] == size
    assert stats["archives_created"] == 1
    assert stats["part_bytes_received"] <= size + kills * concurrency * part, stats


def test_kill_between_part_2xx_and_commit_adopts_the_part(tmp_path: Path) -> None:
    size = 8 * MIB
    data = random_file(tmp_path / "f.bin", size, seed=8)
    with emulator_process(tmp_path / "emu") as url:
        cfg = write_config(tmp_path, url, concurrency=1)
        assert run(cfg, "db", "upgrade").returncode == 0
        crashed = run(cfg, "upload", str(tmp_path / "f.bin"), fault="after-part-2xx:5")
        assert crashed.returncode == -signal.SIGKILL
        assert acked_parts(tmp_path / "state" / "glacierd.db") == 4, "the 5th was not committed"
        done = run(cfg, "upload", str(tmp_path / "f.bin"))
        assert done.returncode == 0, done.stderr
        stats = fetch_stats(url)
        mine = archives_of(vault_inventory(url), tmp_path / "f.bin")
    assert stats["part_bytes_received"] == size, "the 5th part was adopted, not sent again"
    assert len(mine) == 1 and mine[0]["SHA256TreeHash"] == treehash.tree_hash(data)
    with sqlite3.connect(tmp_path / "state" / "glacierd.db") as conn:
        adopted = conn.execute("SELECT \"index\" FROM parts WHERE adopted").fetchall()
        events = conn.execute("SELECT kind FROM events").fetchall()
    assert adopted == [(4,)]
    assert ("part-adopted",) in events


@pytest.mark.parametrize("fault", ["after-upload-row", "after-initiate"])
def test_a_small_files_first_commit_holds_its_upload_row(tmp_path: Path, fault: str) -> None:
    """A one-part file's record and its upload's row are one commit, before
    Initiate (invariant 1). Killed right after that commit, or after Initiate
    but before its id is committed, the next run makes exactly one archive:
    after Initiate the token finds the upload (never a second Initiate), and no
    upload is left pending."""
    data = random_file(tmp_path / "f.bin", 3000, seed=30)
    with emulator_process(tmp_path / "emu") as url:
        cfg = write_config(tmp_path, url, concurrency=1)
        assert run(cfg, "db", "upgrade").returncode == 0
        crashed = run(cfg, "upload", str(tmp_path / "f.bin"), fault=fault)
        assert crashed.returncode == -signal.SIGKILL
        with sqlite3.connect(tmp_path / "state" / "glacierd.db") as conn:
            rows = conn.execute("SELECT u.status, u.upload_id, f.state FROM uploads u "
                                "JOIN files f ON f.id = u.file_id").fetchall()
        assert rows == [("initiating", None, "uploading")], rows
        done = run(cfg, "upload", str(tmp_path / "f.bin"))
        assert done.returncode == 0, done.stderr
        stats = fetch_stats(url)
        mine = archives_of(vault_inventory(url), tmp_path / "f.bin")
        client = GlacierClient("us-east-1", endpoint_url=url,
                               credentials=(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY),
                               retry_policy=fast_policy())
        pending = client.list_multipart_uploads("crash")
    assert len(mine) == 1 and mine[0]["SHA256TreeHash"] == treehash.tree_hash(data)
    assert pending == [], "an initiated upload was left behind"
    assert stats["requests"].get("InitiateMultipartUpload") == 1, stats["requests"]


def test_kill_between_complete_and_commit_makes_no_second_archive(tmp_path: Path) -> None:
    data = random_file(tmp_path / "f.bin", 3 * MIB + 1, seed=3)
    with emulator_process(tmp_path / "emu") as url:
        cfg = write_config(tmp_path, url)
        assert run(cfg, "db", "upgrade").returncode == 0
        crashed = run(cfg, "upload", str(tmp_path / "f.bin"), fault="after-complete")
        assert crashed.returncode == -signal.SIGKILL
        with sqlite3.connect(tmp_path / "state" / "glacierd.db") as conn:
            assert conn.execute("SELECT status FROM uploads").fetchall() == [("completing",)]
            assert conn.execute("SELECT count(*) FROM archives").fetchone() == (0,)
        assert fetch_stats(url)["archives_created"] == 1, "Glacier did create the archive"
        done = run(cfg, "upload", str(tmp_path / "f.bin"))
        assert done.returncode == 0, done.stderr
        stats = fetch_stats(url)
        mine = archives_of(vault_inventory(url), tmp_path / "f.bin")
        listing = run(cfg, "archives")
    assert stats["archives_created"] == 1 and stats["part_bytes_received"] == len(data)
    assert stats["requests"]["CompleteMultipartUpload"] == 2, "Complete was simply repeated"
    assert len(mine) == 1 and mine[0]["SHA256TreeHash"] == treehash.tree_hash(data)
    assert str(tmp_path / "f.bin") in listing.stdout


def test_file_changed_between_runs_abandons_and_starts_over(tmp_path: Path) -> None:
    random_file(tmp_path / "f.bin", 6 * MIB, seed=6)
    with emulator_process(tmp_path / "emu") as url:
        cfg = write_config(tmp_path, url, concurrency=1)
        assert run(cfg, "db", "upgrade").returncode == 0
        crashed = run(cfg, "upload", str(tmp_path / "f.bin"), fault="after-part-2xx:3")
        assert crashed.returncode == -signal.SIGKILL
        new = random_file(tmp_path / "f.bin", 5 * MIB + 9, seed=66)  # rewritten meanwhile
        done = run(cfg, "upload", str(tmp_path / "f.bin"))
        assert done.returncode == 0, done.stderr
        mine = archives_of(vault_inventory(url), tmp_path / "f.bin")
        client = GlacierClient("us-east-1", endpoint_url=url,
                               credentials=(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY))
        assert client.list_multipart_uploads("crash") == [], "the old upload was aborted"
    assert len(mine) == 1 and mine[0]["SHA256TreeHash"] == treehash.tree_hash(new)
    with sqlite3.connect(tmp_path / "state" / "glacierd.db") as conn:
        statuses = conn.execute("SELECT status FROM uploads ORDER BY id").fetchall()
        reasons = conn.execute("SELECT error FROM uploads WHERE status='abandoned'").fetchall()
    assert statuses == [("abandoned",), ("done",)]
    assert "changed" in reasons[0][0]


def test_expired_upload_id_starts_over(tmp_path: Path) -> None:
    from glacierd.emulator import control

    data = random_file(tmp_path / "f.bin", 5 * MIB, seed=5)
    with emulator_process(tmp_path / "emu") as url:
        cfg = write_config(tmp_path, url, concurrency=1)
        assert run(cfg, "db", "upgrade").returncode == 0
        crashed = run(cfg, "upload", str(tmp_path / "f.bin"), fault="after-part-2xx:3")
        assert crashed.returncode == -signal.SIGKILL
        with sqlite3.connect(tmp_path / "state" / "glacierd.db") as conn:
            (upload_id,) = conn.execute("SELECT upload_id FROM uploads").fetchone()
        control(url, "/__uploads/expire", {"upload_id": upload_id})
        done = run(cfg, "upload", str(tmp_path / "f.bin"))
        assert done.returncode == 0, done.stderr
        stats = fetch_stats(url)
        mine = archives_of(vault_inventory(url), tmp_path / "f.bin")
    assert len(mine) == 1 and mine[0]["SHA256TreeHash"] == treehash.tree_hash(data)
    assert stats["part_bytes_received"] == 3 * MIB + len(data), "three parts, then all anew"
    with sqlite3.connect(tmp_path / "state" / "glacierd.db") as conn:
        reasons = conn.execute("SELECT error FROM uploads WHERE status='abandoned'").fetchall()
    assert len(reasons) == 1 and "no longer knows upload id" in reasons[0][0]


def test_schema_too_new_and_bad_config_refuse_to_run(tmp_path: Path) -> None:
    random_file(tmp_path / "f.bin", 10)
    with emulator_process(tmp_path / "emu") as url:
        cfg = write_config(tmp_path, url)
        not_yet = run(cfg, "upload", str(tmp_path / "f.bin"))
        assert not_yet.returncode == 75 and "glacierd db upgrade" in not_yet.stderr
        assert run(cfg, "db", "upgrade").returncode == 0
        with sqlite3.connect(tmp_path / "state" / "glacierd.db") as conn:
            conn.execute("UPDATE alembic_version SET version_num = 'from_the_future'")
        refused = run(cfg, "upload", str(tmp_path / "f.bin"))
        assert refused.returncode == 75
        assert "newer than this glacierd knows" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert fetch_stats(url)["requests"] == {}, "refused before talking to Glacier"
    bad = tmp_path / "bad.toml"
    bad.write_text('[vault]\nname = "v"\n[upload]\nconcurency = 4\n')
    answer = run(bad, "upload", str(tmp_path / "f.bin"))
    assert answer.returncode == 78
    assert "bad.toml" in answer.stderr and "'concurency'" in answer.stderr
