"""The S3 backend end to end with real processes: ``glacierd upload`` killed with
SIGKILL at random moments and at the dangerous points, then restarted — the
bucket must end with exactly one object per file, with the file's tree hash
(tag) and SHA-256 checksum, and the bytes re-sent within the bound; and the
commands a user runs (upload, status, restore, verify, catalog rebuild,
delete) on a bucket, and ``run --local --s3``."""

from __future__ import annotations

import hashlib
import json
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from glacierd import description
from glacierd.emulator import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, fetch_stats
from glacierd.glacier import treehash
from glacierd.pathtext import shown
from glacierd.s3 import naming
from glacierd.s3.client import S3Client
from tests.conftest import MIB, count_rows, emulator_process, fast_policy, random_file
from tests.test_crash import kill_at_random, run
from tests.test_daemon_e2e import file_states, wait_until

pytestmark = pytest.mark.slow

BUCKET = "crash-bkt"


def s3_config(tmp_path: Path, url: str, *, part_mib: int = 8, concurrency: int = 2,
              bandwidth: str | None = None, storage_class: str = "DEEP_ARCHIVE",
              state: str = "state") -> Path:
    cfg = tmp_path / f"glacierd-{state}.toml"
    limit = f'bandwidth_limit = "{bandwidth}"\n' if bandwidth else ""
    cfg.write_text(f"""
[aws]
endpoint_url = "{url}"
access_key_id = "{DEFAULT_ACCESS_KEY}"
secret_access_key = "{DEFAULT_SECRET_KEY}"
[s3]
bucket = "{BUCKET}"
prefix = "backups/"
storage_class = "{storage_class}"
create = true
[state]
dir = "{state}"
[restore]
dir = "restored"
[upload]
part_size_mib = {part_mib}
concurrency = {concurrency}
retries = 10
{limit}""")
    return cfg


def s3_client(url: str) -> S3Client:
    return S3Client("us-east-1", endpoint_url=url,
                    credentials=(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY),
                    retry_policy=fast_policy())


def objects_of(url: str, path: Path) -> list[tuple[str, dict[str, str], str, str | None]]:
    """(key, tags, size, checksum) of each object whose glacierd metadata names
    ``path``, learnt the way a user would: a listing, HEADs and tags."""
    s3 = s3_client(url)
    found = []
    for listed in s3.list_objects(BUCKET, "backups/"):
        head = s3.head_object(BUCKET, listed["Key"])
        info = description.decode(head.metadata.get(naming.METADATA_NAME, ""))
        if info is not None and info.path == str(path):
            found.append((listed["Key"], s3.get_object_tagging(BUCKET, listed["Key"]),
                          str(head.size), head.checksum_sha256))
    return found


def composite(data: bytes, part: int) -> str:
    digests = [hashlib.sha256(data[o:o + part]).hexdigest() for o in range(0, len(data), part)]
    return naming.composite_sha256(digests)


def check_one_object(url: str, path: Path, data: bytes, part: int) -> str:
    mine = objects_of(url, path)
    assert len(mine) == 1, mine
    key, tags, size, checksum = mine[0]
    assert tags == {naming.TREE_HASH_TAG: treehash.tree_hash(data)}
    assert size == str(len(data)) and checksum == composite(data, part)
    assert s3_client(url).list_multipart_uploads(BUCKET) == [], "no upload left behind"
    return key


def test_random_sigkills_resume_to_exactly_one_object(tmp_path: Path) -> None:
    size, part, concurrency = 72 * MIB, 8 * MIB, 2
    data = random_file(tmp_path / "big.bin", size, seed=72)
    with emulator_process(tmp_path / "emu") as url:
        cfg = s3_config(tmp_path, url, concurrency=concurrency, bandwidth="12M")
        assert run(cfg, "db", "upgrade").returncode == 0
        kills = kill_at_random(cfg, tmp_path / "big.bin", tmp_path / "state" / "glacierd.db",
                               5, random.Random(20261202), 0.6)
        assert kills >= 5, f"the upload finished after only {kills} kills"
        final = run(cfg, "upload", str(tmp_path / "big.bin"))
        assert final.returncode == 0, final.stderr
        stats = fetch_stats(url)
        check_one_object(url, tmp_path / "big.bin", data, part)
    print(f"kills={kills} part_bytes_received={stats['part_bytes_received']} "
          f"bound={size + kills * concurrency * part}")
    assert stats["uploads_completed"] == 1
    assert stats["part_bytes_received"] <= size + kills * concurrency * part, stats


def test_kill_after_a_part_adopts_it_and_after_complete_makes_no_second_object(
        tmp_path: Path) -> None:
    data = random_file(tmp_path / "f.bin", 4 * 8 * MIB + 5, seed=9)
    with emulator_process(tmp_path / "emu") as url:
        cfg = s3_config(tmp_path, url, concurrency=1)
        assert run(cfg, "db", "upgrade").returncode == 0
        crashed = run(cfg, "upload", str(tmp_path / "f.bin"), fault="after-part-2xx:3")
        assert crashed.returncode == -signal.SIGKILL
        assert count_rows(tmp_path / "state" / "glacierd.db", "parts") == 2
        again = run(cfg, "upload", str(tmp_path / "f.bin"), fault="after-complete")
        assert again.returncode == -signal.SIGKILL
        assert fetch_stats(url)["uploads_completed"] == 1, "S3 did make the object"
        done = run(cfg, "upload", str(tmp_path / "f.bin"))
        assert done.returncode == 0, done.stderr
        stats = fetch_stats(url)
        key = check_one_object(url, tmp_path / "f.bin", data, 8 * MIB)
    assert stats["part_bytes_received"] == len(data), "the third part was adopted, not re-sent"
    assert stats["requests"]["CompleteMultipartUpload"] == 1, "settled by a HEAD: ours"
    with sqlite3.connect(tmp_path / "state" / "glacierd.db") as conn:
        assert conn.execute("SELECT \"index\" FROM parts WHERE adopted").fetchall() == [(2,)]
        assert conn.execute("SELECT archive_id FROM archives").fetchall() == [(key,)]


def test_kill_after_create_finds_the_upload_by_its_key(tmp_path: Path) -> None:
    data = random_file(tmp_path / "f.bin", 9 * MIB, seed=10)
    with emulator_process(tmp_path / "emu") as url:
        cfg = s3_config(tmp_path, url)
        assert run(cfg, "db", "upgrade").returncode == 0
        crashed = run(cfg, "upload", str(tmp_path / "f.bin"), fault="after-initiate")
        assert crashed.returncode == -signal.SIGKILL
        assert len(s3_client(url).list_multipart_uploads(BUCKET)) == 1
        done = run(cfg, "upload", str(tmp_path / "f.bin"))
        assert done.returncode == 0, done.stderr
        stats = fetch_stats(url)
        check_one_object(url, tmp_path / "f.bin", data, 8 * MIB)
    assert stats["requests"]["CreateMultipartUpload"] == 1, "the first upload was resumed"


def test_a_bucket_end_to_end_upload_restore_verify_rebuild_delete(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    names = {"caf\xe9 \u2615.txt": 3000, "big.bin": 17 * MIB + 3, "sub/empty": 0,
             "new\nline": 10}
    contents = {}
    for name, size in names.items():
        (data_dir / name).parent.mkdir(exist_ok=True)
        contents[name] = random_file(data_dir / name, size, seed=len(name))
    with emulator_process(tmp_path / "emu", "--job-delay", "0.5") as url:
        cfg = s3_config(tmp_path, url, concurrency=3)
        assert run(cfg, "db", "upgrade").returncode == 0
        up = run(cfg, "upload", str(data_dir), "--json")
        assert up.returncode == 0, up.stderr
        assert {json.loads(line)["status"] for line in up.stdout.splitlines()} == {"archived"}
        status = json.loads(run(cfg, "status", "--json").stdout)
        assert {f["state"] for f in status["files"]} == {"archived"}
        frozen = s3_client(url)
        key = next(o["Key"] for o in frozen.list_objects(BUCKET, "backups/")
                   if o["Key"].endswith(tuple("0123456789abcdef")) and "big.bin@" in o["Key"])
        assert frozen.head_object(BUCKET, key).storage_class == "DEEP_ARCHIVE"
        verify = run(cfg, "verify", str(data_dir))
        assert verify.returncode == 0 and "4 unchanged" in verify.stdout, verify.stdout
        for name in names:
            (data_dir / name).unlink()
        back = run(cfg, "restore", str(data_dir), "--wait")
        assert back.returncode == 0, back.stderr
        for name, data in contents.items():
            restored = tmp_path / "restored" / str(data_dir / name).lstrip("/")
            assert restored.read_bytes() == data, name
        restores = fetch_stats(url)["requests"].get("RestoreObject", 0)
        assert restores == 3, "the empty file needs none"
        # A new machine: the catalog comes back from the bucket's listing alone.
        fresh = s3_config(tmp_path, url, state="state2")
        assert run(fresh, "db", "upgrade").returncode == 0
        rebuilt = run(fresh, "catalog", "rebuild")
        assert rebuilt.returncode == 0, rebuilt.stderr
        listing = json.loads(run(fresh, "archives", "--json").stdout)
        assert {a["path"] for a in listing} == {shown(data_dir / n) for n in names if names[n]}
        trees = {a["path"]: a["tree_hash"] for a in listing}
        assert trees[str(data_dir / "big.bin")] == treehash.tree_hash(contents["big.bin"])
        warned = run(cfg, "delete", str(data_dir / "big.bin"))
        assert warned.returncode == 1 and "DEEP_ARCHIVE keeps it 180 days" in warned.stderr
        deleted = run(cfg, "delete", str(data_dir / "big.bin"), "--yes")
        assert deleted.returncode == 0, deleted.stderr
        assert all("big.bin@" not in o["Key"] for o in frozen.list_objects(BUCKET, "backups/"))


def test_run_local_s3_backs_up_and_restores(tmp_path: Path) -> None:
    state, inbox = tmp_path / "state", tmp_path / "inbox"
    inbox.mkdir()
    base = [sys.executable, "-m", "glacierd.cli"]
    local = [*base, "--local", "--state-dir", str(state)]
    proc = subprocess.Popen([*base, "run", "--local", "--s3", "--state-dir", str(state),
                             "--watch", str(inbox)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: (state / "local-endpoint.json").exists(), 60, "the local daemon")
        data = random_file(inbox / "notes.bin", 1500 * 1000, seed=12)
        wait_until(lambda: file_states(state / "glacierd.db").get(str(inbox / "notes.bin"))
                   == "archived", 60, "the upload")
        archives = json.loads(subprocess.run([*local, "archives", "--json"],
                                             capture_output=True, text=True, timeout=60).stdout)
        assert archives[0]["vault"] == "local" and "notes.bin@" in archives[0]["archive_id"]
        (inbox / "notes.bin").unlink()
        back = subprocess.run([*local, "restore", str(inbox), "--wait"], capture_output=True,
                              text=True, timeout=120)
        assert back.returncode == 0, back.stderr
        restored = tmp_path / "restored" / str(inbox / "notes.bin").lstrip("/")
        assert restored.read_bytes() == data
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert proc.stderr is not None
    assert "S3 bucket" in proc.stderr.read()
    assert list((state / "emulator" / "s3" / "local" / "objects").glob("*.json"))


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["after-upload-row", "before-complete", "after-complete"])
def test_a_one_put_file_killed_around_its_two_commits_makes_one_object(
        tmp_path: Path, fault: str) -> None:
    """A one-PUT file's upload id is committed with its row and its part with its
    archive. Killed after the first commit (before the PUT), or after the PUT but
    before the second (its Complete sends nothing), the next run makes exactly
    one object with exactly one PUT in all, and records its one part."""
    data = random_file(tmp_path / "small.bin", 5000, seed=14)
    with emulator_process(tmp_path / "emu") as url:
        cfg = s3_config(tmp_path, url)
        assert run(cfg, "db", "upgrade").returncode == 0
        crashed = run(cfg, "upload", str(tmp_path / "small.bin"), fault=fault)
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr
        with sqlite3.connect(tmp_path / "state" / "glacierd.db") as conn:
            assert conn.execute("SELECT status, upload_id LIKE 'put:%' FROM uploads"
                                ).fetchall() == [("uploading", 1)]
            assert conn.execute("SELECT count(*) FROM parts").fetchone() == (0,)
        done = run(cfg, "upload", str(tmp_path / "small.bin"))
        assert done.returncode == 0, done.stderr
        stats = fetch_stats(url)
        mine = objects_of(url, tmp_path / "small.bin")
    assert len(mine) == 1 and mine[0][2] == str(len(data))
    assert stats["requests"].get("PutObject") == 1, stats["requests"]
    with sqlite3.connect(tmp_path / "state" / "glacierd.db") as conn:
        assert conn.execute("SELECT p.adopted, u.status FROM parts p JOIN uploads u "
                            "ON u.id = p.upload_id").fetchall() == [
            (int(fault != "after-upload-row"), "done")]
        assert conn.execute("SELECT archive_id FROM archives").fetchall() == [(mine[0][0],)]


def test_small_files_go_as_one_put_each_and_survive_a_kill(tmp_path: Path) -> None:
    data = random_file(tmp_path / "small.bin", 300 * 1000, seed=13)
    with emulator_process(tmp_path / "emu") as url:
        cfg = s3_config(tmp_path, url)
        assert run(cfg, "db", "upgrade").returncode == 0
        crashed = run(cfg, "upload", str(tmp_path / "small.bin"), fault="after-part-2xx")
        assert crashed.returncode == -signal.SIGKILL
        done = run(cfg, "upload", str(tmp_path / "small.bin"))
        assert done.returncode == 0, done.stderr
        stats = fetch_stats(url)
        mine = objects_of(url, tmp_path / "small.bin")
    assert len(mine) == 1 and mine[0][2] == str(len(data))
    assert mine[0][3] == naming.b64(hashlib.sha256(data).hexdigest()), "a plain SHA-256: one PUT"
    assert stats["requests"].get("PutObject") == 1, "the object was adopted, not sent again"
    assert "CreateMultipartUpload" not in stats["requests"]
    with sqlite3.connect(tmp_path / "state" / "glacierd.db") as conn:
        assert conn.execute("SELECT adopted FROM parts").fetchall() == [(1,)]
