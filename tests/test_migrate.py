"""``glacierd migrate`` end to end with real processes: a vault in the emulator
moved into a bucket (the emulator's S3 side, and moto's S3 server), byte for
byte, under any name format, through kills, lapsed job output and corrupt
output."""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from glacierd import description
from glacierd.emulator import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, control, fetch_stats
from glacierd.glacier import GlacierClient, treehash
from glacierd.migration import names
from glacierd.s3 import naming
from glacierd.s3.client import S3Client
from tests.conftest import MIB, aws_config, emulator_process, fast_policy, random_file_bytes
from tests.test_crash import glacierd, run

pytestmark = pytest.mark.slow

T = dt.datetime(2020, 5, 6, 7, 8, 9, tzinfo=dt.UTC)


def _glacier(url: str) -> GlacierClient:
    return GlacierClient("us-east-1", endpoint_url=url,
                         credentials=(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY),
                         retry_policy=fast_policy())


def _s3(url: str, credentials: tuple[str, str] = (DEFAULT_ACCESS_KEY,
                                                  DEFAULT_SECRET_KEY)) -> S3Client:
    return S3Client("us-east-1", endpoint_url=url, credentials=credentials,
                    retry_policy=fast_policy())


def _descriptions() -> dict[str, str]:
    fast = base64.b64encode("photos/été 2019/plage.jpg".encode()).decode()
    mt2 = base64.urlsafe_b64encode(json.dumps(
        {"filename": "docs/report \u2603.pdf", "mtime": 1}).encode()).decode().rstrip("=")
    return {
        "glacierd": description.encode(description.ArchiveInfo(
            path="/home/ann/notes.txt", host="oldhost", size=0, mtime_ns=0,
            token="a" * 32)),
        "fastglacier": f"<m><v>4</v><p>{fast}</p><lm>20121004T200017Z</lm></m>",
        "cloudberry": json.dumps({"Path": "C:\\Users\\bob\\tax.xls"}),
        "mt2": f"mt2 {mt2}",
        "raw": "backup 2019.tar",
        "empty": "",
        "dup-1": "same.bin",
        "dup-2": "same.bin",
    }


def _vault_with_archives(url: str, sizes: dict[str, int]) -> dict[str, tuple[str, bytes]]:
    """name -> (archive id, bytes), uploaded under each description format."""
    glacier = _glacier(url)
    glacier.create_vault("old")
    out = {}
    for n, (name, text) in enumerate(_descriptions().items()):
        data = random_file_bytes(sizes.get(name, 1000 + n), seed=n + 1)
        if name == "glacierd":  # glacierd's description records the size
            info = description.decode(text)
            assert info is not None
            text = description.encode(description.ArchiveInfo(
                path=info.path, host=info.host, size=len(data), mtime_ns=0, token="a" * 32))
        out[name] = (glacier.upload_archive("old", data, description=text or None), data)
    return out


def _config(tmp_path: Path, url: str, state: str = "state") -> Path:
    cfg = tmp_path / f"{state}.toml"
    cfg.write_text(aws_config(url, "old").replace('dir = "state"', f'dir = "{state}"') +
                   "[upload]\npart_size_mib = 8\n")
    return cfg


def _object(s3: S3Client, bucket: str, key: str) -> bytes:
    with s3.get_object(bucket, key) as answer:
        return bytes(answer.content)


def test_a_vault_moves_into_a_bucket_byte_for_byte(tmp_path: Path) -> None:
    sizes = {"glacierd": 20 * MIB + 3, "fastglacier": 200 * MIB, "raw": 8 * MIB}
    with emulator_process(tmp_path / "emu") as url:
        archives = _vault_with_archives(url, sizes)
        s3 = _s3(url)
        s3.create_bucket("moved")
        cfg = _config(tmp_path, url)
        assert run(cfg, "db", "upgrade").returncode == 0
        dry = run(cfg, "migrate", "--to-bucket", "moved", "--prefix", "v/", "--dry-run",
                  "--write-plan", str(tmp_path / "plan.csv"))
        assert dry.returncode == 0, dry.stderr
        assert "8 archives" in dry.stdout and "retrieval, Bulk" in dry.stdout, dry.stdout
        assert "a month in DEEP_ARCHIVE" in dry.stdout
        assert "Bulk" not in json.dumps(fetch_stats(url)["requests"]), "nothing was spent"
        assert fetch_stats(url)["requests"].get("InitiateJob") == 1, "the inventory only"
        plan = names.read_plan((tmp_path / "plan.csv").read_text(), "plan.csv")
        raw_id = archives["raw"][0]
        plan[raw_id] = "v/renamed by me.tar"
        (tmp_path / "plan.csv").write_text(names.write_plan(
            names.PlannedKey(a, k, "") for a, k in plan.items()))
        moved = run(cfg, "migrate", "--to-bucket", "moved", "--prefix", "v/",
                    "--storage-class", "STANDARD", "--plan", str(tmp_path / "plan.csv"),
                    "--json")
        assert moved.returncode == 0, moved.stderr
        report = json.loads(moved.stdout)
        assert (report["done"], report["archives"], report["failed"]) == (8, 8, 0)
        keys = {o["Key"] for o in s3.list_objects("moved", "v/")}
        by_id = {}
        for key in keys:
            head = s3.head_object("moved", key)
            by_id[head.metadata["glacier-archive-id"]] = (key, head)
        for name, (archive_id, data) in archives.items():
            key, head = by_id[archive_id]
            assert _object(s3, "moved", key) == data, name
            assert s3.get_object_tagging("moved", key) == {
                naming.TREE_HASH_TAG: treehash.tree_hash(data)}
        assert by_id[archives["fastglacier"][0]][0] == "v/photos/été 2019/plage.jpg"
        assert by_id[archives["cloudberry"][0]][0] == "v/C/Users/bob/tax.xls"
        assert by_id[archives["mt2"][0]][0] == "v/docs/report \u2603.pdf"
        assert by_id[raw_id][0] == "v/renamed by me.tar", "the reviewed plan won"
        assert by_id[archives["empty"][0]][0] == f"v/00undefined/{archives['empty'][0]}"
        dups = {by_id[archives["dup-1"][0]][0], by_id[archives["dup-2"][0]][0]}
        assert "v/same.bin" in dups and len(dups) == 2, dups
        assert by_id[archives["glacierd"][0]][0].startswith("v/oldhost/home/ann/notes.txt@")
        assert by_id[archives["fastglacier"][0]][1].storage_class == "STANDARD"
        status = json.loads(run(cfg, "status", "--json", "--summary").stdout)["migration"]
        assert (status["done"], status["archives"], status["jobs_pending"]) == (8, 8, 0)
        assert status["bytes_done"] == sum(len(d) for _, d in archives.values())
        assert "migration to S3: 8 of 8 archives" in run(cfg, "status").stdout
        again = run(cfg, "migrate", "--to-bucket", "moved", "--prefix", "v/", "--json")
        assert json.loads(again.stdout)["done"] == 8
        assert fetch_stats(url)["requests"].get("InitiateJob") == 9, "nothing moved twice"
        # The bucket alone gives glacierd's catalog back.
        s3_cfg = tmp_path / "s3.toml"
        s3_cfg.write_text(aws_config(url, "x").replace('[vault]\nname = "x"\ncreate = true',
                                                       '[s3]\nbucket = "moved"\nprefix = "v/"')
                          .replace('dir = "state"', 'dir = "state-s3"'))
        assert run(s3_cfg, "db", "upgrade").returncode == 0
        assert run(s3_cfg, "catalog", "rebuild").returncode == 0
        catalog = json.loads(run(s3_cfg, "archives", "--json").stdout)
        assert [a["path"] for a in catalog] == ["/home/ann/notes.txt"]


def test_kills_lapsed_output_and_corrupt_output(tmp_path: Path) -> None:
    with emulator_process(tmp_path / "emu") as url:
        glacier = _glacier(url)
        glacier.create_vault("old")
        datas = {}
        rng = random.Random(7)
        for i in range(22):
            data = random_file_bytes(rng.choice([300 * 1000, 9 * MIB, 17 * MIB + 5]), seed=i)
            datas[glacier.upload_archive("old", data, description=f"file-{i:02d}.bin")] = data
        s3 = _s3(url)
        s3.create_bucket("moved")
        cfg = _config(tmp_path, url)
        assert run(cfg, "db", "upgrade").returncode == 0
        args = ("migrate", "--to-bucket", "moved", "--max-jobs", "5", "--concurrency", "2",
                "--poll-seconds", "0.1", "--storage-class", "STANDARD", "--json")
        # A damaged inventory (Glacier sends no hash for one): a message, nothing planned.
        control(url, "/__faults", {"rate": 0, "corrupt_rate": 1.0, "seed": 1})
        bad = run(cfg, *args)
        assert bad.returncode == 65 and "not a Glacier inventory" in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr
        control(url, "/__faults", {"rate": 0, "corrupt_rate": 0.0})
        assert run(cfg, "migrate", "--to-bucket", "moved", "--dry-run").returncode == 0
        # Corrupt job output: never written into S3.
        control(url, "/__faults", {"rate": 0, "corrupt_rate": 1.0, "seed": 1})
        corrupt = run(cfg, *args)
        assert corrupt.returncode == 1
        assert json.loads(corrupt.stdout)["failed"] == 22
        assert list(s3.list_objects("moved")) == [] and s3.list_multipart_uploads("moved") == []
        assert fetch_stats(url)["part_bytes_received"] == 0, "no corrupt chunk was sent"
        control(url, "/__faults", {"rate": 0, "corrupt_rate": 0.0})
        # Kills, each after a chunk is recorded, then jobs whose output lapses.
        start = fetch_stats(url)
        kills = 0
        for n in range(4):
            proc = glacierd(cfg, *args, fault=f"migrate-after-chunk:{3 + 2 * n}")
            proc.communicate(timeout=300)
            if proc.returncode == -signal.SIGKILL:
                kills += 1
        with sqlite3.connect(tmp_path / "state" / "glacierd.db") as conn:
            jobs = [j for (j,) in conn.execute(
                "SELECT job_id FROM migration_items WHERE status != 'done' AND job_id "
                "IS NOT NULL")]
        for job_id in jobs:
            control(url, "/__jobs/expire", {"job_id": job_id})
        before = fetch_stats(url)
        done = run(cfg, *args)
        assert done.returncode == 0, done.stderr
        stats = fetch_stats(url)
        objects = {}
        for listed in s3.list_objects("moved"):
            head = s3.head_object("moved", listed["Key"])
            archive_id = head.metadata["glacier-archive-id"]
            assert archive_id not in objects, "one object an archive"
            objects[archive_id] = listed["Key"]
        assert set(objects) == set(datas)
        for archive_id, key in objects.items():
            assert _object(s3, "moved", key) == datas[archive_id]
        assert s3.list_multipart_uploads("moved") == []
    assert kills == 4
    assert json.loads(done.stdout)["done"] == 22
    assert stats["requests"]["InitiateJob"] > before["requests"]["InitiateJob"], \
        "lapsed job output was requested again"
    chunk, in_flight = 8 * MIB, 2  # --concurrency 2
    total = sum(len(d) for d in datas.values())
    fetched = stats["job_output_bytes_sent"] - start["job_output_bytes_sent"]
    assert fetched <= total + kills * in_flight * chunk, "a kill re-fetches its chunks in flight"
    sent = stats["part_bytes_received"] - start["part_bytes_received"]
    assert sent <= total + kills * in_flight * chunk, stats


def test_a_vault_moves_into_moto_s3(tmp_path: Path, moto_endpoint: str) -> None:
    with emulator_process(tmp_path / "emu") as url:
        archives = _vault_with_archives(url, {"raw": 17 * MIB})
        moto = _s3(moto_endpoint)
        moto.create_bucket("elsewhere")
        cfg = _config(tmp_path, url)
        assert run(cfg, "db", "upgrade").returncode == 0
        moved = run(cfg, "migrate", "--to-bucket", "elsewhere", "--s3-endpoint-url",
                    moto_endpoint, "--storage-class", "STANDARD", "--json")
        assert moved.returncode == 0, moved.stderr
    by_id = {moto.head_object("elsewhere", o["Key"]).metadata["glacier-archive-id"]: o["Key"]
             for o in moto.list_objects("elsewhere")}
    for name, (archive_id, data) in archives.items():
        assert _object(moto, "elsewhere", by_id[archive_id]) == data, name


def test_the_daemon_migrates_in_the_background_and_deletes_the_source(tmp_path: Path) -> None:
    with emulator_process(tmp_path / "emu") as url:
        archives = _vault_with_archives(url, {"raw": 9 * MIB})
        _s3(url).create_bucket("bg-bucket")
        cfg = _config(tmp_path, url)
        cfg.write_text(cfg.read_text() + """
[schedule]
job_poll_seconds = 1
[migrate]
to_bucket = "bg-bucket"
storage_class = "STANDARD"
delete_source = true
""")
        assert run(cfg, "db", "upgrade").returncode == 0
        daemon = glacierd(cfg, "run")
        try:
            deadline = time.monotonic() + 120
            while True:
                status = json.loads(run(cfg, "status", "--json", "--summary").stdout)
                mig = status.get("migration") or {}
                if mig.get("done") == len(archives):
                    break
                assert daemon.poll() is None, daemon.communicate()
                assert time.monotonic() < deadline, status
                time.sleep(0.5)  # another process's progress: polled
        finally:
            daemon.send_signal(signal.SIGTERM)
            _out, journal = daemon.communicate(timeout=60)
        assert daemon.returncode == 0, journal
        s3 = _s3(url)
        by_id = {s3.head_object("bg-bucket", o["Key"]).metadata["glacier-archive-id"]: o["Key"]
                 for o in s3.list_objects("bg-bucket")}
        for archive_id, data in archives.values():
            assert _object(s3, "bg-bucket", by_id[archive_id]) == data
        assert _glacier(url).describe_vault("old")["NumberOfArchives"] == 0, "sources deleted"
        assert "90 days" in journal, "young archives are deleted with a warning"


def test_one_process_moves_a_vault_at_a_time(tmp_path: Path) -> None:
    from glacierd import locks

    with emulator_process(tmp_path / "emu") as url:
        _vault_with_archives(url, {})
        _s3(url).create_bucket("once")
        cfg = _config(tmp_path, url)
        assert run(cfg, "db", "upgrade").returncode == 0
        with locks.exclusive(tmp_path / "state" / "locks", "migration") as mine:
            assert mine  # as the daemon's [migrate] would hold it
            busy = run(cfg, "migrate", "--to-bucket", "once")
        assert busy.returncode == 75 and "another glacierd process" in busy.stderr
        assert "Traceback" not in busy.stderr
        assert fetch_stats(url)["requests"].get("InitiateJob") == 1, "the inventory only"
        done = run(cfg, "migrate", "--to-bucket", "once", "--storage-class", "STANDARD",
                   "--json")
        assert done.returncode == 0 and json.loads(done.stdout)["done"] == 8
