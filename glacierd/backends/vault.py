"""A Glacier vault as a ``Backend``, on glacierd's Glacier client.

Parts are 1 MiB x 2^n; a part's checksum is its SHA-256 tree hash, and an
archive's is the tree hash combined from its parts'. A retrieval is an
archive-retrieval job; its output is fetched in tree-hash-aligned ranges,
each checked against the tree hash Glacier sends for it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

from glacierd import description
from glacierd.glacier import limits
from glacierd.glacier.errors import (
    GlacierError,
    InsufficientCapacityException,
    InvalidParameterValueException,
    ResourceNotFoundException,
)
from glacierd.glacier.treehash import Digests, combine_hex

from .base import (
    ByteCounter,
    CompleteRefused,
    NoRetrievalCapacity,
    ObjectMissing,
    Pace,
    PendingUpload,
    RemotePart,
    Retrieval,
    RetrievalGone,
    RetrievalStatus,
    UploadGone,
    UploadRef,
    upload_id_of,
)

if TYPE_CHECKING:
    from glacierd.glacier.client import GlacierClient


@contextmanager
def _as(kind: type[GlacierError], *when: type[GlacierError]) -> Iterator[None]:
    """Re-raise the client's ``when`` errors as the backend's ``kind`` (same code,
    message and request id)."""
    try:
        yield
    except when as exc:
        raise kind(exc.message, code=exc.code, type=exc.type, status=exc.status,
                   request_id=exc.request_id) from exc


def pending_by_description(upload_id: str, text: str) -> PendingUpload:
    """A listed upload, whose by glacierd's description (None: not glacierd's)."""
    info = description.public_part(text)
    if info is None:
        return PendingUpload(upload_id, None, None, text)
    return PendingUpload(upload_id, info.host, info.token, text)


class TreeHashRules:
    """What every backend shares: an archive is known by its SHA-256 tree hash,
    combined from its parts' (which is why parts are 1 MiB x 2^n everywhere)."""

    def whole_checksum(self, parts: Sequence[str]) -> str:
        return combine_hex(parts)


class VaultRules(TreeHashRules):
    """A vault's rules: parts of 1 MiB x 2^n; a vault lists each part's tree hash;
    a job's output is kept at least 24 h."""

    retrieval_lifetime: dt.timedelta | None = dt.timedelta(hours=24)
    retrieves_ranges = True

    def part_size(self, size: int, configured: int, *, name: str) -> int:
        return limits.upload_part_size(size, configured, name=name)

    def part_checksum(self, tree_hash: str, sha256: str | None) -> str:
        return tree_hash

    def one_request_id(self, part_size: int, description: str) -> str | None:
        return None  # a vault's every upload is Initiate, parts, Complete

    def segment_size(self, ticket: str, object_id: str, size: int, preferred: int) -> int:
        return preferred


class VaultBackend(VaultRules):
    def __init__(self, client: GlacierClient, vault: str) -> None:
        self.client = client
        self.name = vault

    def start_upload(self, part_size: int, description: str) -> str:
        return self.client.initiate_multipart_upload(self.name, part_size, description)

    def _listed(self) -> list[tuple[str, str]]:
        return [(u["MultipartUploadId"], u.get("ArchiveDescription") or "")
                for u in self.client.list_multipart_uploads(self.name)]

    def pending_uploads(self) -> list[PendingUpload]:
        return [pending_by_description(upload_id, text) for upload_id, text in self._listed()]

    def find_pending(self, upload: UploadRef) -> str | None:
        return next((upload_id for upload_id, text in self._listed()
                     if text == upload.description), None)

    def uploaded_parts(self, upload: UploadRef) -> tuple[int, list[RemotePart]]:
        with _as(UploadGone, ResourceNotFoundException):
            listing = self.client.list_parts(self.name, upload_id_of(upload))
        part_size = int(listing.get("PartSizeInBytes") or 0)
        parts = []
        for part in listing.get("Parts") or []:
            first, last = limits.parse_byte_range(part["RangeInBytes"])
            index = first // part_size if part_size else 0
            parts.append(RemotePart(index, first, last - first + 1, part["SHA256TreeHash"]))
        return part_size, parts

    def send_part(self, upload: UploadRef, offset: int, data: memoryview, d: Digests,
                  counter: ByteCounter, pace: Pace | None = None) -> None:
        with _as(UploadGone, ResourceNotFoundException):
            self.client.upload_part(self.name, upload_id_of(upload), offset, data, d.tree_hash,
                                    sha256=d.sha256, counter=counter, pace=pace)

    def complete(self, upload: UploadRef, size: int, tree_hash: str,
                 part_sha256: Sequence[str]) -> str:
        with _as(UploadGone, ResourceNotFoundException), \
                _as(CompleteRefused, InvalidParameterValueException):
            return self.client.complete_multipart_upload(self.name, upload_id_of(upload), size,
                                                         tree_hash)

    def abort(self, upload: UploadRef) -> None:
        with suppress(ResourceNotFoundException):
            self.client.abort_multipart_upload(self.name, upload_id_of(upload))

    # --- the way back ---
    def request_retrieval(self, object_id: str, tier: str,
                          byte_range: tuple[int, int] | None = None) -> str:
        with _as(NoRetrievalCapacity, InsufficientCapacityException), \
                _as(ObjectMissing, ResourceNotFoundException):
            return self.client.initiate_archive_retrieval(self.name, object_id, tier=tier,
                                                          byte_range=byte_range,
                                                          description="glacierd restore")

    def retrieval(self, ticket: str, object_id: str) -> Retrieval:
        try:
            job = self.client.describe_job(self.name, ticket)
        except ResourceNotFoundException:
            return Retrieval(RetrievalStatus.GONE)
        status = job.get("StatusCode")
        if status == "Succeeded":
            return Retrieval(RetrievalStatus.READY)
        if status == "Failed":
            return Retrieval(RetrievalStatus.FAILED, str(job.get("StatusMessage") or "failed"))
        return Retrieval(RetrievalStatus.IN_PROGRESS)

    def fetch(self, ticket: str, object_id: str, first: int, last: int,
              write: Callable[[int, bytes], object], *, attempts: int,
              on_mismatch: Callable[[str], None] | None = None,
              counter: ByteCounter | None = None, plain_range: bool = False) -> str:
        with _as(RetrievalGone, ResourceNotFoundException):
            return self.client.fetch_verified(self.name, ticket, first, last, write,
                                              counter=counter, attempts=attempts,
                                              on_mismatch=on_mismatch)

    def delete(self, object_id: str) -> None:
        with suppress(ResourceNotFoundException):
            self.client.delete_archive(self.name, object_id)
