"""The status document: the fast JSON path says exactly what the Python path says."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from glacierd import status
from tests.conftest import store_at_head


def test_fast_json_equals_the_python_document(tmp_path: Path) -> None:
    store = store_at_head(tmp_path)
    archived = store.file_seen("/d/archived.bin", 10, 1, 1)
    store.record_empty_archive(archived.id, "v", 1)  # archived (no archive id)
    done = store.file_seen("/d/done.bin", 20, 2, 2)
    upload = store.create_upload(done.id, "v", "tok-done", "desc", 2**20, 20, 2, 2)
    upload = store.set_upload_id(upload, "UPLOAD-1")
    store.part_acknowledged(upload, 0, 0, 20, "ab" * 32)
    store.set_completing(upload, "ab" * 32)
    store.finish_upload(upload, "ARCHIVE-1")
    busy = store.file_seen("/d/uploading.bin", 3 * 2**20, 3, 3)
    going = store.set_upload_id(store.create_upload(busy.id, "v", "tok-busy", "desc", 2**20,
                                                    3 * 2**20, 3, 3), "UPLOAD-2")
    store.part_acknowledged(going, 0, 0, 2**20, "cd" * 32)
    failed = store.file_seen("/d/failed.bin", 5, 5, 5)
    store.record_failure(failed.id, 'quote " and newline \n in an error', dt.datetime.now(dt.UTC))
    store.file_seen("/d/pending é.bin", 6, 6, 6)

    slow = status.collect(store)
    fast = json.loads(status.to_json(store))
    assert fast["files"] == slow["files"]
    assert {f["path"]: (f["state"], f["bytes_done"], f["archive_id"]) for f in fast["files"]} == {
        "/d/archived.bin": ("archived", 10, None),
        "/d/done.bin": ("archived", 20, "ARCHIVE-1"),
        "/d/uploading.bin": ("uploading", 2**20, None),
        "/d/failed.bin": ("failed", 0, None),
        "/d/pending é.bin": ("pending", 0, None),
    }
    fast.pop("files")
    slow.pop("files")
    for doc in (fast, slow):
        doc["daemon"].pop("uptime_seconds", None)
        for job in doc["jobs"]:
            job.pop("age_seconds")
    assert fast == slow


def test_status_through_sqlite3_says_what_the_engine_says(tmp_path: Path) -> None:
    """``glacierd status`` reads SQLite with the standard library (no SQLAlchemy to
    load); the same SQL through the store's engine must give the same document:
    escaped paths, times, a path filter, the daemon, a failure, the cost line."""
    import subprocess
    import sys

    from glacierd import pricing
    from glacierd.store.reader import EngineReader, SqliteReader

    store = store_at_head(tmp_path)
    odd = "/d/bad\udcff name\nnewline.bin"
    for i, path in enumerate(["/d/a.bin", odd, "/e/other.bin", "/d_x/under.bin"]):
        record = store.file_seen(path, 100 + i, i, i)
        upload = store.set_upload_id(store.create_upload(record.id, "v", f"tok-{i}", "desc",
                                                         2**20, 100 + i, i, i), f"U-{i}")
        store.part_acknowledged(upload, 0, 0, 100 + i, "ab" * 32)
        store.finish_upload(store.set_completing(upload, "ab" * 32), f"A-{i}")
    failed = store.file_seen("/d/failed.bin", 5, 5, 5)
    store.record_failure(failed.id, "no luck", dt.datetime.now(dt.UTC))
    store.heartbeat(4242, "v", dt.datetime.now(dt.UTC) - dt.timedelta(hours=1), "idle")
    store.event("error", "boom", "it broke")
    db = tmp_path / "state" / "glacierd.db"
    url = f"sqlite:///{db}"
    priced = ("v", "VAULT", pricing.PRICES)
    raw = SqliteReader(db, url)
    engine = EngineReader(store.engine, url)
    for filters in ({}, {"path_prefix": "/d"}, {"state": "failed"}):
        via_sqlite3 = status.collect(raw, priced=priced, **filters)  # type: ignore[arg-type]
        via_engine = status.collect(engine, priced=priced, **filters)  # type: ignore[arg-type]
        for doc in (via_sqlite3, via_engine):
            doc["daemon"].pop("uptime_seconds", None)
        assert via_sqlite3 == via_engine, filters
    below_d = {f["path"] for f in status.collect(raw, path_prefix="/d")["files"]}
    assert "/d_x/under.bin" not in below_d and "/d/a.bin" in below_d and len(below_d) == 3
    assert via_sqlite3["cost"]["objects"] == 4
    assert via_sqlite3["summary"]["last_error"]["message"] == "it broke"
    raw.close()
    store.close()
    # And the command itself loads no SQLAlchemy to say it.
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[state]\ndir = "{tmp_path / "state"}"\n')
    probe = (f"import sys, runpy; sys.argv = ['glacierd', '--config', {str(cfg)!r}, "
             "'status', '--json']\n"
             "try:\n    runpy.run_module('glacierd.cli', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "print('SQLALCHEMY' if 'sqlalchemy' in sys.modules else 'NONE', file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stderr.strip().endswith("NONE"), done.stderr
    assert json.loads(done.stdout)["counts"] == {"archived": 4, "failed": 1}
