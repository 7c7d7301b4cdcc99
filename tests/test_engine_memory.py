"""The engine's logic on the in-memory backend: fast, and proof that the
uploader and restorer need nothing of the Glacier API."""

from __future__ import annotations

from pathlib import Path

import pytest

from glacierd.backends.memory import MemoryBackend
from glacierd.glacier import treehash
from glacierd.restorer import Restorer, RestoreSettings
from glacierd.uploader import Uploader, UploadSettings
from tests.conftest import MIB, random_file, store_at_head


def test_upload_resume_after_the_service_forgot_and_restore(tmp_path: Path) -> None:
    backend = MemoryBackend("mem")
    store = store_at_head(tmp_path)
    uploader = Uploader(store, backend, UploadSettings(part_size=MIB, concurrency=1))
    data = random_file(tmp_path / "f.bin", 3 * MIB + 9, seed=44)
    sent: list[int] = []
    real_send = backend.send_part

    def send_then_stop(upload_id: str, offset: int, *args: object, **kw: object) -> None:
        real_send(upload_id, offset, *args, **kw)  # type: ignore[arg-type]
        sent.append(offset)
        if len(sent) == 2:
            uploader.stopping.set()  # SIGTERM after two parts

    backend.send_part = send_then_stop  # type: ignore[method-assign,assignment]
    with pytest.raises(InterruptedError):
        uploader.upload_path(tmp_path / "f.bin")
    [upload] = store.unfinished_uploads()
    assert len(upload.parts) == 2
    backend.send_part = real_send  # type: ignore[method-assign]
    assert upload.upload_id is not None
    backend.expire(upload.upload_id)  # the service forgot it (24 h idle)
    uploader.stopping.clear()
    outcome = uploader.upload_path(tmp_path / "f.bin")
    assert outcome.status == "archived" and outcome.archive_id in backend.archives
    [archive] = backend.archives.values()
    assert archive.data == data and archive.checksum == treehash.tree_hash(data)
    assert backend.pending_uploads() == []
    restorer = Restorer(store, backend, RestoreSettings(restore_dir=tmp_path / "out",
                                                        segment_size=MIB))
    [record] = restorer.request(restorer.select([str(tmp_path / "f.bin")]))
    restorer.poll()
    done = store.restore(record.id)
    assert done.status == "done" and Path(done.dest_path).read_bytes() == data
    uploader.close()
