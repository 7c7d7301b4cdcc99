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

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from glacierd.glacier.errors import GlacierError
from glacierd.glacier.treehash import Digests

ByteCounter = Callable[[int], None]


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


@dataclass(frozen=True)
class PendingUpload:
    upload_id: str
    description: str


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

    # --- uploads ---
    def part_size(self, size: int, configured: int, *, name: str) -> int:
        """The part size to upload a file of ``size`` bytes with."""

    def part_checksum(self, d: Digests) -> str:
        """What the store records for a part (and the service lists for it)."""

    def whole_checksum(self, parts: Sequence[str]) -> str:
        """An archive's checksum from its parts' checksums, in order."""

    def start_upload(self, part_size: int, description: str) -> str:
        """Begin a multipart upload; returns its id."""

    def pending_uploads(self) -> list[PendingUpload]:
        """Every unfinished multipart upload (all pages)."""

    def uploaded_parts(self, upload_id: str) -> tuple[int, list[RemotePart]]:
        """(part size, the parts the service holds); ``UploadGone`` if it forgot it."""

    def send_part(self, upload_id: str, offset: int, data: memoryview, d: Digests,
                  counter: ByteCounter) -> None:
        """Send one part (idempotent: the same bytes may be sent again)."""

    def complete(self, upload_id: str, size: int, checksum: str) -> str:
        """Finish an upload; returns the archive's id. ``UploadGone``,
        ``CompleteRefused``."""

    def abort(self, upload_id: str) -> None:
        """Abandon an upload (an unknown one is not an error)."""

    # --- the way back ---
    def request_retrieval(self, object_id: str, tier: str) -> str:
        """Ask for an archive's bytes; returns a ticket to follow.
        ``ObjectMissing``, ``NoRetrievalCapacity``."""

    def retrieval(self, ticket: str) -> Retrieval:
        """How a retrieval stands."""

    def fetch(self, ticket: str, first: int, last: int,
              write: Callable[[int, bytes], object], *, attempts: int,
              on_mismatch: Callable[[str], None] | None = None,
              counter: ByteCounter | None = None) -> str:
        """Bytes ``first``-``last`` of a ready retrieval, verified, handed to
        ``write(offset, chunk)``; returns their checksum. ``RetrievalGone``."""

    def delete(self, object_id: str) -> None:
        """Delete an archive (one already gone is not an error)."""
