"""One contract every backend passes (model: restic's internal/backend/test/suite.go):
the vault on the emulator and the in-memory backend today; S3 joins them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from glacierd import description
from glacierd.backends import (
    Backend,
    CompleteRefused,
    ObjectMissing,
    RetrievalStatus,
    UploadGone,
)
from glacierd.backends.base import Upload
from glacierd.backends.memory import MemoryBackend
from glacierd.backends.vault import VaultBackend
from glacierd.emulator import Emulator
from glacierd.glacier import limits
from glacierd.glacier.treehash import Digests, digests, tree_hash
from tests.conftest import MIB, client_for, random_file_bytes


@pytest.fixture(params=["vault", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        yield MemoryBackend()
        return
    with Emulator(tmp_path / "emu") as emu:
        client = client_for(emu)
        client.create_vault("contract")
        yield VaultBackend(client, "contract")


def _upload(backend: Backend, data: bytes, part_size: int, description: str = "d",
            order: list[int] | None = None) -> tuple[Upload, list[Digests]]:
    upload = Upload(backend.start_upload(part_size, description), description)
    parts = list(limits.part_ranges(len(data), part_size))
    sums: list[Digests] = [digests(b"")] * len(parts)
    for index in order or range(len(parts)):
        part = parts[index]
        view = memoryview(data)[part.offset:part.offset + part.length]
        d = digests(view)
        backend.send_part(upload, part.offset, view, d, lambda _n: None)
        sums[index] = d
    return upload, sums


def _complete(backend: Backend, upload: Upload, size: int, sums: list[Digests]) -> str:
    return backend.complete(upload, size, backend.whole_checksum([d.tree_hash for d in sums]),
                            [d.sha256 for d in sums])


def _description(token: str) -> str:
    return description.encode(description.ArchiveInfo(path="/data/f", host="host-a", size=1,
                                                       mtime_ns=0, token=token))


def _ready(backend: Backend, ticket: str) -> None:
    deadline = time.monotonic() + 30
    while backend.retrieval(ticket).status != RetrievalStatus.READY:
        assert time.monotonic() < deadline
        time.sleep(0.05)  # polling the service's job; no event tells


def test_a_multipart_upload_comes_back_byte_for_byte(backend: Backend) -> None:
    data = random_file_bytes(3 * MIB + 17, seed=21)
    part_size = backend.part_size(len(data), MIB, name="f")
    upload, sums = _upload(backend, data, part_size, order=[2, 0, 3, 1])
    size, listed = backend.uploaded_parts(upload)
    assert size == part_size
    assert [(p.index, p.offset, p.length, p.checksum) for p in listed] == [
        (p.index, p.offset, p.length,
         backend.part_checksum(sums[p.index].tree_hash, sums[p.index].sha256))
        for p in limits.part_ranges(len(data), part_size)]
    archive_id = _complete(backend, upload, len(data), sums)
    ticket = backend.request_retrieval(archive_id, "Standard")
    _ready(backend, ticket)
    out = bytearray(len(data))
    counted: list[int] = []

    def write(offset: int, chunk: bytes) -> None:
        out[offset:offset + len(chunk)] = chunk

    first = backend.fetch(ticket, 0, 2 * MIB - 1, write, attempts=2, counter=counted.append)
    second = backend.fetch(ticket, 2 * MIB, len(data) - 1, write, attempts=2)
    assert bytes(out) == data and sum(counted) == 2 * MIB
    assert backend.whole_checksum([first, second]) == tree_hash(data)


def test_unfinished_uploads_are_listed_resent_and_aborted(backend: Backend) -> None:
    data = random_file_bytes(2 * MIB, seed=3)
    text = _description("listed")
    upload, sums = _upload(backend, data, MIB, description=text)
    other, _ = _upload(backend, data, MIB, description=_description("other"))
    pending = {u.upload_id: (u.host, u.token) for u in backend.pending_uploads()}
    assert pending[upload.upload_id] == ("host-a", "listed")
    assert backend.find_pending(Upload(None, text)) == upload.upload_id
    view = memoryview(data)[:MIB]
    backend.send_part(upload, 0, view, digests(view), lambda _n: None)  # idempotent
    assert len(backend.uploaded_parts(upload)[1]) == 2
    backend.abort(upload)
    backend.abort(upload)  # an unknown upload is not an error
    assert upload.upload_id not in {u.upload_id for u in backend.pending_uploads()}
    assert other.upload_id in {u.upload_id for u in backend.pending_uploads()}
    with pytest.raises(UploadGone):
        backend.uploaded_parts(upload)
    with pytest.raises(UploadGone):
        _complete(backend, upload, len(data), sums)
    assert backend.find_pending(Upload(None, text)) is None


def test_a_complete_whose_parts_do_not_add_up_is_refused(backend: Backend) -> None:
    data = random_file_bytes(2 * MIB, seed=4)
    upload, sums = _upload(backend, data, MIB)
    with pytest.raises(CompleteRefused):
        _complete(backend, upload, len(data), list(reversed(sums)))
    assert _complete(backend, upload, len(data), sums)


def test_missing_archives_and_deletes(backend: Backend) -> None:
    data = b"small"
    upload, sums = _upload(backend, data, MIB)
    archive_id = _complete(backend, upload, len(data), sums)
    backend.delete(archive_id)
    backend.delete(archive_id)  # already gone: not an error
    with pytest.raises(ObjectMissing):
        backend.request_retrieval(archive_id, "Standard")
    assert backend.retrieval("no-such-ticket").status == RetrievalStatus.GONE
