"""A ``Backend`` in memory, with a vault's rules, for fast tests of the engine.

It checks what a vault checks (part sizes, alignment, each part's tree hash,
the archive's size and tree hash at Complete) and keeps nothing on disk.
Retrievals are ready at once unless ``hold_retrievals`` is set; ``expire``
forgets an upload or a retrieval, as a service does after a while.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from glacierd.glacier import limits
from glacierd.glacier.errors import ChecksumMismatchError, InvalidInputError
from glacierd.glacier.treehash import Digests, tree_hash

from .base import (
    ByteCounter,
    CompleteRefused,
    ObjectMissing,
    Pace,
    PendingUpload,
    RemotePart,
    Retrieval,
    RetrievalGone,
    RetrievalStatus,
    UploadGone,
    UploadRef,
)
from .vault import VaultRules, pending_by_description


@dataclass
class _Upload:
    part_size: int
    description: str
    parts: dict[int, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredArchive:
    data: bytes
    description: str
    checksum: str


class MemoryBackend(VaultRules):
    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self.uploads: dict[str, _Upload] = {}
        self.archives: dict[str, StoredArchive] = {}
        self.retrievals: dict[str, str] = {}  # ticket -> archive id
        self.retrieved_ranges: dict[str, tuple[int, int]] = {}  # ticket -> first, last
        self.hold_retrievals = False
        self.requests: dict[str, int] = {}
        self._lock = threading.Lock()

    def _count(self, operation: str) -> None:
        with self._lock:
            self.requests[operation] = self.requests.get(operation, 0) + 1

    def expire(self, upload_or_ticket: str) -> None:
        with self._lock:
            self.uploads.pop(upload_or_ticket, None)
            self.retrievals.pop(upload_or_ticket, None)

    # --- uploads ---
    def start_upload(self, part_size: int, description: str) -> str:
        self._count("start_upload")
        limits.check_part_size(part_size)
        upload_id = uuid.uuid4().hex
        with self._lock:
            self.uploads[upload_id] = _Upload(part_size, description)
        return upload_id

    def pending_uploads(self) -> list[PendingUpload]:
        with self._lock:
            return [pending_by_description(k, u.description) for k, u in self.uploads.items()]

    def find_pending(self, upload: UploadRef) -> str | None:
        with self._lock:
            return next((k for k, u in self.uploads.items()
                         if u.description == upload.description), None)

    def _upload(self, ref: UploadRef) -> _Upload:
        upload = self.uploads.get(ref.upload_id or "")
        if upload is None:
            raise UploadGone(f"no upload {ref.upload_id}", status=404)
        return upload

    def uploaded_parts(self, ref: UploadRef) -> tuple[int, list[RemotePart]]:
        with self._lock:
            upload = self._upload(ref)
            return upload.part_size, [
                RemotePart(i, i * upload.part_size, len(b), tree_hash(b))
                for i, b in sorted(upload.parts.items())]

    def send_part(self, ref: UploadRef, offset: int, data: memoryview, d: Digests,
                  counter: ByteCounter, pace: Pace | None = None) -> None:
        self._count("send_part")
        body = bytes(data)
        if tree_hash(body) != d.tree_hash:
            raise ChecksumMismatchError(f"part at {offset}: its tree hash does not match",
                                        status=400)
        with self._lock:
            upload = self._upload(ref)
            if offset % upload.part_size or len(body) > upload.part_size or not body:
                raise InvalidInputError(f"part at {offset} ({len(body)} bytes) does not fit "
                                        f"part size {upload.part_size}")
            upload.parts[offset // upload.part_size] = body
        if pace is not None:
            pace(len(body))
        counter(len(body))

    def complete(self, ref: UploadRef, size: int, whole: str,
                 part_sha256: Sequence[str]) -> str:
        self._count("complete")
        checksum = whole
        with self._lock:
            upload = self._upload(ref)
            data = b"".join(upload.parts[i] for i in sorted(upload.parts))
            contiguous = sorted(upload.parts) == list(range(len(upload.parts)))
            if not contiguous or len(data) != size or tree_hash(data) != checksum:
                raise CompleteRefused(f"upload {ref.upload_id}: the parts do not make {size} bytes "
                                      f"with tree hash {checksum}", status=400)
            archive_id = uuid.uuid4().hex + uuid.uuid4().hex
            self.archives[archive_id] = StoredArchive(data, upload.description, checksum)
            del self.uploads[ref.upload_id or ""]
            return archive_id

    def abort(self, ref: UploadRef) -> None:
        with self._lock:
            self.uploads.pop(ref.upload_id or "", None)

    # --- the way back ---
    def request_retrieval(self, object_id: str, tier: str,
                          byte_range: tuple[int, int] | None = None) -> str:
        self._count("request_retrieval")
        with self._lock:
            if object_id not in self.archives:
                raise ObjectMissing(f"no archive {object_id}", status=404)
            ticket = uuid.uuid4().hex
            self.retrievals[ticket] = object_id
            self.retrieved_ranges[ticket] = byte_range or (
                0, len(self.archives[object_id].data) - 1)
            return ticket

    def retrieval(self, ticket: str, object_id: str) -> Retrieval:
        with self._lock:
            if ticket not in self.retrievals:
                return Retrieval(RetrievalStatus.GONE)
        return Retrieval(RetrievalStatus.IN_PROGRESS if self.hold_retrievals
                         else RetrievalStatus.READY)

    def fetch(self, ticket: str, object_id: str, first: int, last: int,
              write: Callable[[int, bytes], object], *, attempts: int,
              on_mismatch: Callable[[str], None] | None = None,
              counter: ByteCounter | None = None, plain_range: bool = False) -> str:
        self._count("fetch")
        with self._lock:
            if self.retrievals.get(ticket) != object_id:
                raise RetrievalGone(f"no retrieval {ticket} of {object_id}", status=404)
            start, end = self.retrieved_ranges[ticket]  # the output is the range retrieved
            data = self.archives[object_id].data[start + first:min(end, start + last) + 1]
        write(first, data)
        if counter is not None:
            counter(len(data))
        return tree_hash(data)

    def delete(self, object_id: str) -> None:
        with self._lock:
            self.archives.pop(object_id, None)
