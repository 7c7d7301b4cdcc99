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
