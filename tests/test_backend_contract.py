"""One contract every backend passes (model: restic's internal/backend/test/suite.go):
the vault on the emulator and the in-memory backend today; S3 joins them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from glacierd.backends import (
    Backend,
    CompleteRefused,
    ObjectMissing,
    RetrievalStatus,
    UploadGone,
)
from glacierd.backends.memory import MemoryBackend
from glacierd.backends.vault import VaultBackend
from glacierd.emulator import Emulator
from glacierd.glacier import limits
from glacierd.glacier.treehash import digests
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
            order: list[int] | None = None) -> tuple[str, list[str]]:
    upload_id = backend.start_upload(part_size, description)
    parts = list(limits.part_ranges(len(data), part_size))
    sums = [""] * len(parts)
    for index in order or range(len(parts)):
        part = parts[index]
        view = memoryview(data)[part.offset:part.offset + part.length]
        d = digests(view)
        backend.send_part(upload_id, part.offset, view, d, lambda _n: None)
        sums[index] = backend.part_checksum(d)
    return upload_id, sums


def _ready(backend: Backend, ticket: str) -> None:
    deadline = time.monotonic() + 30
    while backend.retrieval(ticket).status != RetrievalStatus.READY:
        assert time.monotonic() < deadline
        time.sleep(0.05)  # polling the service's job; no event tells


def test_a_multipart_upload_comes_back_byte_for_byte(backend: Backend) -> None:
    data = random_file_bytes(3 * MIB + 17, seed=21)
    part_size = backend.part_size(len(data), MIB, name="f")
    upload_id, sums = _upload(backend, data, part_size, order=[2, 0, 3, 1])
    size, listed = backend.uploaded_parts(upload_id)
    assert size == part_size
    assert [(p.index, p.offset, p.length, p.checksum) for p in listed] == [
        (p.index, p.offset, p.length, sums[p.index])
        for p in limits.part_ranges(len(data), part_size)]
    archive_id = backend.complete(upload_id, len(data), backend.whole_checksum(sums))
    ticket = backend.request_retrieval(archive_id, "Standard")
    _ready(backend, ticket)
    out = bytearray(len(data))
    counted: list[int] = []

    def write(offset: int, chunk: bytes) -> None:
        out[offset:offset + len(chunk)] = chunk

    first = backend.fetch(ticket, 0, 2 * MIB - 1, write, attempts=2, counter=counted.append)
    second = backend.fetch(ticket, 2 * MIB, len(data) - 1, write, attempts=2)
    assert bytes(out) == data and sum(counted) == 2 * MIB
    assert backend.whole_checksum([first, second]) == backend.whole_checksum(sums)


def test_unfinished_uploads_are_listed_resent_and_aborted(backend: Backend) -> None:
    data = random_file_bytes(2 * MIB, seed=3)
    upload_id, sums = _upload(backend, data, MIB, description="glacierd1 listed")
    _again, _ = _upload(backend, data, MIB)  # a second one, left alone
    assert {(u.upload_id, u.description) for u in backend.pending_uploads()} >= {
        (upload_id, "glacierd1 listed")}
    view = memoryview(data)[:MIB]
    backend.send_part(upload_id, 0, view, digests(view), lambda _n: None)  # idempotent
    assert len(backend.uploaded_parts(upload_id)[1]) == 2
    backend.abort(upload_id)
    backend.abort(upload_id)  # an unknown upload is not an error
    assert upload_id not in {u.upload_id for u in backend.pending_uploads()}
    with pytest.raises(UploadGone):
        backend.uploaded_parts(upload_id)
    with pytest.raises(UploadGone):
        backend.complete(upload_id, len(data), backend.whole_checksum(sums))


def test_a_complete_whose_parts_do_not_add_up_is_refused(backend: Backend) -> None:
    data = random_file_bytes(2 * MIB, seed=4)
    upload_id, sums = _upload(backend, data, MIB)
    with pytest.raises(CompleteRefused):
        backend.complete(upload_id, len(data), backend.whole_checksum(list(reversed(sums))))
    assert backend.complete(upload_id, len(data), backend.whole_checksum(sums))


def test_missing_archives_and_deletes(backend: Backend) -> None:
    data = b"small"
    upload_id, sums = _upload(backend, data, MIB)
    archive_id = backend.complete(upload_id, len(data), backend.whole_checksum(sums))
    backend.delete(archive_id)
    backend.delete(archive_id)  # already gone: not an error
    with pytest.raises(ObjectMissing):
        backend.request_retrieval(archive_id, "Standard")
    assert backend.retrieval("no-such-ticket").status == RetrievalStatus.GONE
