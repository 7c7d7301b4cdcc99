"""The ``Backend`` interface: what the engine (uploader, restorer, daemon) needs
of a place that keeps archives, and nothing about how a service says it.

Modelled on restic's ``internal/backend/backend.go``: one small interface,
implementations beside it (``vault`` on the Glacier client, ``memory`` for
fast tests of the engine's logic), and one contract suite
(``tests/test_backend_contract.py``) that every implementation passes.

What differs between services lives behind it: part-size rules, what a part's
checksum is, how a retrieval is asked for and polled, how a range is fetched
and verified. Errors the engine acts on are the classes below; every other
failure is the client's ``GlacierError`` (a failed request), which the engine
records as a failure to retry.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from glacierd.glacier.errors import GlacierError
from glacierd.glacier.progress import ByteCounter as ByteCounter
from glacierd.glacier.progress import Pace as Pace
from glacierd.glacier.treehash import Digests


class UploadGone(GlacierError):
    """The service no longer knows this multipart upload (aborted, or expired)."""


class CompleteRefused(GlacierError):
    """The service refused to complete the upload (its parts do not add up)."""


class RetrievalGone(GlacierError):
    """The service no longer knows this retrieval (its output expired)."""


class NoRetrievalCapacity(GlacierError):
    """The service has no capacity for this retrieval tier now."""


class ObjectMissing(GlacierError):
    """The archive or object is not stored there."""


class UploadRef(Protocol):
    """An upload as the engine knows it: the store's ``UploadRecord`` is one. A
    backend may derive what it needs from the description (S3: the object key)."""

    @property
    def upload_id(self) -> str | None: ...

    @property
    def description(self) -> str: ...


@dataclass(frozen=True)
class Upload:
    """An ``UploadRef`` for callers without a store record (tests, tools)."""

    upload_id: str | None
    description: str
    part_size: int = 0


@dataclass(frozen=True)
class PendingUpload:
    """An unfinished upload the service lists. ``host`` and ``token`` say whose it
    is (glacierd's description or object key), None when it is not glacierd's."""

    upload_id: str
    host: str | None
    token: str | None
    description: str = ""  # a vault's; S3 lists none
    key: str | None = None  # an S3 upload's object key


@dataclass(frozen=True)
class RemotePart:
    """A part the service holds for an unfinished upload."""

    index: int
    offset: int
    length: int
    checksum: str


class RetrievalStatus(enum.StrEnum):
    IN_PROGRESS = "in-progress"
    READY = "ready"
    FAILED = "failed"
    GONE = "gone"  # expired or unknown: ask again


@dataclass(frozen=True)
class Retrieval:
    status: RetrievalStatus
    message: str | None = None


class Backend(Protocol):
    """Where archives are kept. ``name`` is what the store records for them."""

    name: str
    retrieval_lifetime: dt.timedelta | None
    """How long a ready retrieval stays readable, counted from its request (a
    vault's job output: 24 h); None when the service says it itself (S3's
    ``x-amz-restore``)."""
    retrieves_ranges: bool
    """A retrieval may ask for a byte range, and its output is that range (a
    vault's job); False: the whole object is made readable (S3's restore)."""

    # --- uploads ---
    def part_size(self, size: int, configured: int, *, name: str) -> int:
        """The part size to upload a file of ``size`` bytes with: 1 MiB x 2^n for
        every backend, so the parts' tree hashes combine into the file's."""

    def whole_checksum(self, parts: Sequence[str]) -> str:
        """The file's tree hash from its parts' (or ranges') tree hashes, in order:
        what the catalog records for an archive on any backend."""

    def part_checksum(self, tree_hash: str, sha256: str | None) -> str:
        """Which of a part's digests (hex) the service lists for it: what a listed
        part is compared with on resume (``RemotePart.checksum``)."""

    def one_request_id(self, part_size: int, description: str) -> str | None:
        """The id of an upload that is one request (an S3 PUT of a file of one
        part), known without asking the service; None for a multipart upload,
        whose id ``start_upload`` asks for. Such an upload's part makes the object
        with its 2xx, and its ``complete`` sends nothing: the uploader records its
        id with its row, and its part with its archive (docs/design.md §3)."""

    def start_upload(self, part_size: int, description: str) -> str:
        """Begin a multipart upload; returns its id."""

    def pending_uploads(self) -> list[PendingUpload]:
        """Every unfinished multipart upload (all pages)."""

    def find_pending(self, upload: UploadRef) -> str | None:
        """The id of the unfinished upload begun for ``upload`` (a crash between
        the start and the commit of its id), or None."""

    def uploaded_parts(self, upload: UploadRef) -> tuple[int, list[RemotePart]]:
        """(part size, the parts the service holds); ``UploadGone`` if it forgot it."""

    def send_part(self, upload: UploadRef, offset: int, data: memoryview, d: Digests,
                  counter: ByteCounter, pace: Pace | None = None) -> None:
        """Send one part (idempotent: the same bytes may be sent again). ``counter``
        hears of bytes as they leave; ``pace`` (the bandwidth limit) is called
        before each block leaves and returns when it may."""

    def complete(self, upload: UploadRef, size: int, tree_hash: str,
                 part_sha256: Sequence[str]) -> str:
        """Finish an upload; returns the archive's id (a vault's archive id, an S3
        object key). ``tree_hash``: the whole file's; ``part_sha256``: each part's
        linear SHA-256 (hex), in order. ``UploadGone``, ``CompleteRefused``."""

    def abort(self, upload: UploadRef) -> None:
        """Abandon an upload (an unknown one is not an error)."""

    # --- the way back ---
    def request_retrieval(self, object_id: str, tier: str,
                          byte_range: tuple[int, int] | None = None) -> str:
        """Ask for an archive's bytes (``byte_range``: those, first to last, a
        megabyte-aligned range; where ``retrieves_ranges`` is False the whole
        object is made readable); returns a ticket to follow (unique to this
        request: the store keeps one job row per ticket).
        ``ObjectMissing``, ``NoRetrievalCapacity``."""

    def retrieval(self, ticket: str, object_id: str) -> Retrieval:
        """How the retrieval ``ticket`` of archive ``object_id`` stands."""

    def segment_size(self, ticket: str, object_id: str, size: int, preferred: int) -> int:
        """The size of the ranges a ready retrieval of ``size`` bytes is fetched
        and verified in (1 MiB x 2^n, so their tree hashes combine); the same
        answer every time, so a resumed download finds its verified ranges."""

    def fetch(self, ticket: str, object_id: str, first: int, last: int,
              write: Callable[[int, bytes], object], *, attempts: int,
              on_mismatch: Callable[[str], None] | None = None,
              counter: ByteCounter | None = None, plain_range: bool = False) -> str:
        """Bytes ``first``-``last`` of a ready retrieval's output, verified where the
        service sends a hash for them, handed to ``write(offset, chunk)``; returns
        their tree hash. ``plain_range``: any range (a packed file's), never taken
        for a whole part. ``RetrievalGone``."""

    def delete(self, object_id: str) -> None:
        """Delete an archive (one already gone is not an error)."""


def upload_id_of(upload: UploadRef) -> str:
    """The service's id of an upload that has one (every call after the start)."""
    if upload.upload_id is None:
        raise ValueError("the upload has no id yet")
    return upload.upload_id
