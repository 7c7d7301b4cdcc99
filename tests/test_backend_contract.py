"""One contract every backend passes (model: restic's internal/backend/test/suite.go):
the vault on the emulator and the in-memory backend today; S3 joins them."""

from __future__ import annotations

import time
import uuid
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
from glacierd.backends.s3 import S3Backend
from glacierd.backends.vault import VaultBackend
from glacierd.emulator import Emulator
from glacierd.glacier import limits
from glacierd.glacier.treehash import Digests, digests, tree_hash
from glacierd.s3.client import S3Client
from tests.conftest import MIB, client_for, fast_policy, random_file_bytes


@pytest.fixture(params=["vault", "memory", "s3-moto", "s3-emulator"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        yield MemoryBackend()
        return
    if request.param == "s3-emulator":
        with Emulator(tmp_path / "emu") as emu:
            s3 = S3Client(emu.region, endpoint_url=emu.endpoint_url,
                          credentials=emu.credentials, retry_policy=fast_policy(2))
            s3.create_bucket("contract")
            yield S3Backend(s3, "contract", prefix="p/", storage_class="DEEP_ARCHIVE")
        return
    if request.param == "s3-moto":
        endpoint = request.getfixturevalue("moto_endpoint")
        s3 = S3Client("us-east-1", endpoint_url=endpoint, credentials=("testing", "testing"),
                      retry_policy=fast_policy(2))
        bucket = f"contract-{uuid.uuid4().hex[:12]}"
        s3.create_bucket(bucket)
        # moto keeps objects readable in any class and ignores tiers: STANDARD says so
        s3_backend = S3Backend(s3, bucket, prefix="p/", storage_class="STANDARD")
        GAPS[id(s3_backend)] = {"part-checksums"}  # moto's ListParts shows none
        yield s3_backend
        del GAPS[id(s3_backend)]  # the id may be another object's next
        return
    with Emulator(tmp_path / "emu") as emu:
        client = client_for(emu)
        client.create_vault("contract")
        yield VaultBackend(client, "contract")


def _part(backend: Backend) -> int:
    """The backend's smallest part (1 MiB for a vault, 8 MiB for S3)."""
    return backend.part_size(1, MIB, name="f")


def _upload(backend: Backend, data: bytes, part_size: int, description: str | None = None,
            order: list[int] | None = None) -> tuple[Upload, list[Digests]]:
    description = description or _description(uuid.uuid4().hex, size=len(data))
    upload = Upload(backend.start_upload(part_size, description), description, part_size)
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


GAPS: dict[int, set[str]] = {}
"""What a peer does not do (by backend object): its tests accept that much less."""

LISTED, OTHER = "1" * 32, "2" * 32  # upload tokens


def _description(token: str, path: str = "/data/f", size: int = 2 * 8 * MIB) -> str:
    return description.encode(description.ArchiveInfo(path=path, host="host-a", size=size,
                                                       mtime_ns=0, token=token))


def _ready(backend: Backend, ticket: str, object_id: str) -> None:
    deadline = time.monotonic() + 30
    while backend.retrieval(ticket, object_id).status != RetrievalStatus.READY:
        assert time.monotonic() < deadline
        time.sleep(0.05)  # polling the service's job; no event tells


def test_a_multipart_upload_comes_back_byte_for_byte(backend: Backend) -> None:
    part_size = _part(backend)
    data = random_file_bytes(3 * part_size + 17, seed=21)
    assert backend.part_size(len(data), MIB, name="f") == part_size
    upload, sums = _upload(backend, data, part_size, order=[2, 0, 3, 1])
    size, listed = backend.uploaded_parts(upload)
    assert size == part_size
    unlisted = "part-checksums" in GAPS.get(id(backend), ())
    assert [(p.index, p.offset, p.length, p.checksum) for p in listed] == [
        (p.index, p.offset, p.length,
         "" if unlisted else backend.part_checksum(sums[p.index].tree_hash,
                                                    sums[p.index].sha256))
        for p in limits.part_ranges(len(data), part_size)]
    archive_id = _complete(backend, upload, len(data), sums)
    ticket = backend.request_retrieval(archive_id, "Standard")
    _ready(backend, ticket, archive_id)
    assert backend.request_retrieval(archive_id, "Standard") != ticket, "one ticket a request"
    out = bytearray(len(data))
    counted: list[int] = []

    def write(offset: int, chunk: bytes) -> None:
        out[offset:offset + len(chunk)] = chunk

    segment = backend.segment_size(ticket, archive_id, len(data), 2 * part_size)
    assert segment in (part_size, 2 * part_size)
    ranges = list(limits.part_ranges(len(data), segment))
    sums = [backend.fetch(ticket, archive_id, r.offset, r.last, write, attempts=2,
                          counter=counted.append) for r in ranges]
    assert bytes(out) == data and sum(counted) == len(data)
    assert backend.whole_checksum(sums) == tree_hash(data)
    # a range of its own (not a part): its bytes and tree hash
    first = backend.fetch(ticket, archive_id, 0, 2 * part_size - 1, write, attempts=2)
    second = backend.fetch(ticket, archive_id, 2 * part_size, len(data) - 1, write, attempts=2)
    assert backend.whole_checksum([first, second]) == tree_hash(data)


def test_unfinished_uploads_are_listed_resent_and_aborted(backend: Backend) -> None:
    part = _part(backend)
    data = random_file_bytes(2 * part, seed=3)
    text = _description(LISTED)
    upload, sums = _upload(backend, data, part, description=text)
    other, _ = _upload(backend, data, part, description=_description(OTHER))
    pending = {u.upload_id: (u.host, u.token) for u in backend.pending_uploads()}
    assert pending[upload.upload_id] == ("host-a", LISTED)
    assert backend.find_pending(Upload(None, text, part)) == upload.upload_id
    view = memoryview(data)[:part]
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
    assert backend.find_pending(Upload(None, text, part)) is None


def test_a_complete_whose_parts_do_not_add_up_is_refused(backend: Backend) -> None:
    part = _part(backend)
    data = random_file_bytes(2 * part, seed=4)
    upload, sums = _upload(backend, data, part)
    if "part-checksums" in GAPS.get(id(backend), ()):
        pytest.skip("this peer neither lists nor checks part checksums")
    with pytest.raises(CompleteRefused):
        _complete(backend, upload, len(data), list(reversed(sums)))
    assert _complete(backend, upload, len(data), sums)


def test_missing_archives_and_deletes(backend: Backend) -> None:
    data = b"small"
    upload, sums = _upload(backend, data, _part(backend))
    archive_id = _complete(backend, upload, len(data), sums)
    backend.delete(archive_id)
    backend.delete(archive_id)  # already gone: not an error
    with pytest.raises(ObjectMissing):
        backend.request_retrieval(archive_id, "Standard")
    assert backend.retrieval("no-such-ticket", archive_id).status == RetrievalStatus.GONE



def test_a_file_of_one_part_is_listed_once_sent_and_comes_back(backend: Backend) -> None:
    """(S3 sends it as one PUT: the object is the part a resume finds.)"""
    data = random_file_bytes(3000, seed=5)
    part = backend.part_size(len(data), MIB, name="f")
    upload, sums = _upload(backend, data, part)
    _size, listed = backend.uploaded_parts(upload)
    assert [(p.index, p.offset, p.length) for p in listed] == [(0, 0, len(data))]
    if "part-checksums" not in GAPS.get(id(backend), ()):
        assert listed[0].checksum == backend.part_checksum(sums[0].tree_hash, sums[0].sha256)
    view = memoryview(data)
    backend.send_part(upload, 0, view, digests(view), lambda _n: None)  # sent again: fine
    archive_id = _complete(backend, upload, len(data), sums)
    if isinstance(backend, S3Backend):  # a Complete repeated after a crash finds the object
        assert S3Backend(backend.client, backend.bucket, prefix=backend.prefix).complete(
            upload, len(data), sums[0].tree_hash, [sums[0].sha256]) == archive_id
    ticket = backend.request_retrieval(archive_id, "Bulk")
    _ready(backend, ticket, archive_id)
    out = bytearray(len(data))

    def write(offset: int, chunk: bytes) -> None:
        out[offset:offset + len(chunk)] = chunk

    segment = backend.segment_size(ticket, archive_id, len(data), 64 * MIB)
    assert backend.fetch(ticket, archive_id, 0, len(data) - 1, write, attempts=2) == tree_hash(data)
    assert bytes(out) == data and segment >= len(data)


def test_an_upload_id_known_without_a_request_is_the_one_start_gives(backend: Backend) -> None:
    """``one_request_id`` (what the uploader writes with an upload's row, asking
    nothing of the service) is either None or the id ``start_upload`` gives for
    the same part size and description, and the upload it names is made by its
    one part: ``complete`` after that part's 2xx finds the object."""
    small = random_file_bytes(3000, seed=6)
    for size, data in ((len(small), small), (100 * MIB, None)):  # one part; many
        part = backend.part_size(size, MIB, name="f")
        text = _description(uuid.uuid4().hex, size=size)
        known = backend.one_request_id(part, text)
        if size > part:
            assert known is None, "a file of many parts needs its upload begun"
            continue
        if known is None:  # this backend begins every upload with a request
            continue
        assert known == backend.start_upload(part, text)
        assert data is not None
        upload = Upload(known, text, part)
        view = memoryview(data)
        d = digests(view)
        backend.send_part(upload, 0, view, d, lambda _n: None)
        assert backend.complete(upload, len(data), d.tree_hash, [d.sha256])
