"""An S3 bucket (a Glacier storage class) as a ``Backend``, on glacierd's S3 client.

* Parts are 1 MiB x 2^n, 8 MiB at least (``naming.part_size``), each sent with
  its SHA-256 (signed payload hash and ``x-amz-checksum-sha256``, one digest);
  S3 lists each part's SHA-256, which is what a resumed upload compares.
* A file of one part is one PUT (``If-None-Match: *``, its tree hash in the
  metadata): its upload id is ``put:TOKEN``, which asks nothing of S3; the
  object, when its PUT landed, is the part a resumed upload finds.
* The object key comes from the upload's description (``naming.key_for``), so
  the store needs nothing beyond what it keeps for a vault.
* Complete lists the parts for their ETags, checks every listed SHA-256
  against the store's, and sends ``If-None-Match: *``: an object is never
  overwritten and never made twice. A 412, or a ``NoSuchUpload`` on a Complete
  whose answer was lost, is settled by a HEAD: an object under this key with
  this upload's token is ours, and is recorded.
* The archive id is the object key. A retrieval is a RestoreObject; its
  ticket is a name of glacierd's own (S3 names no job), and HEAD's
  ``x-amz-restore`` on the key says how it stands.
* A restored object is fetched part by part (``?partNumber=N``), each part
  checked against the SHA-256 S3 sends for it; the restorer checks the whole
  file's tree hash against the catalog.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING

from glacierd import description
from glacierd.glacier.errors import GlacierError
from glacierd.glacier.treehash import Digests
from glacierd.s3 import errors, naming

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
from .vault import TreeHashRules

if TYPE_CHECKING:
    from glacierd.s3.client import ObjectHead, S3Client


def _gone(exc: errors.S3Error, kind: type[GlacierError]) -> GlacierError:
    return kind(exc.message, code=exc.code, type=exc.type, status=exc.status,
                request_id=exc.request_id)


class S3Backend(TreeHashRules):
    # HEAD's x-amz-restore tells when a restored copy lapses
    retrieval_lifetime: dt.timedelta | None = None
    retrieves_ranges = False

    def __init__(self, client: S3Client, bucket: str, *, prefix: str = "",
                 storage_class: str = "DEEP_ARCHIVE", restore_days: int = 1) -> None:
        self.client = client
        self.bucket = bucket
        self.name = bucket
        self.prefix = prefix
        self.storage_class = storage_class
        self.restore_days = restore_days
        self._part_sizes: dict[str, int] = {}
        self._ranges_only = False
        self._put_here: set[str] = set()  # keys this process PUT (their 2xx seen)

    def __repr__(self) -> str:
        return f"S3Backend(s3://{self.bucket}/{self.prefix}, {self.storage_class})"

    def key(self, upload: UploadRef) -> str:
        if isinstance(upload, PendingUpload) and upload.key:
            return upload.key
        return naming.key_for(self.prefix, upload.description)

    # --- uploads ---
    def part_size(self, size: int, configured: int, *, name: str) -> int:
        return naming.part_size(size, configured, name=name)

    def part_checksum(self, tree_hash: str, sha256: str | None) -> str:
        return sha256 or ""

    def one_request_id(self, part_size: int, description_text: str) -> str | None:
        return _single_put_id(description_text, part_size)

    def start_upload(self, part_size: int, description_text: str) -> str:
        single = self.one_request_id(part_size, description_text)
        if single is not None:
            return single  # nothing to ask S3: the one part is the object's PUT
        return self.client.create_multipart_upload(
            self.bucket, naming.key_for(self.prefix, description_text), self.storage_class,
            metadata={naming.METADATA_NAME: description_text})

    def pending_uploads(self) -> list[PendingUpload]:
        out = []
        for listed in self.client.list_multipart_uploads(self.bucket, self.prefix):
            key = listed.get("Key", "")
            whose = naming.owner(self.prefix, key)
            host, token = whose if whose else (None, None)
            out.append(PendingUpload(listed.get("UploadId", ""), host, token, key=key))
        return out

    def find_pending(self, upload: UploadRef) -> str | None:
        single = _single_put_id(upload.description, _part_size_of(upload))
        if single is not None:
            return single
        key = self.key(upload)
        ids = [u.get("UploadId", "") for u in self.client.list_multipart_uploads(self.bucket, key)
               if u.get("Key") == key]
        return ids[-1] if ids else None

    def _listed_parts(self, upload: UploadRef) -> list[dict[str, str]]:
        try:
            return self.client.list_parts(self.bucket, self.key(upload), upload_id_of(upload))
        except errors.NoSuchUpload as exc:
            raise _gone(exc, UploadGone) from exc

    def uploaded_parts(self, upload: UploadRef) -> tuple[int, list[RemotePart]]:
        part_size = _part_size_of(upload)
        if _is_single(upload):  # the object, if its PUT landed, is the one part
            head = self._ours(self.key(upload), upload)
            if head is None:
                return part_size, []
            sent = head.checksum_sha256  # a peer that keeps none: "" (unknown, not adopted)
            return part_size, [RemotePart(0, 0, head.size, naming.hex_of(sent) if sent else "")]
        parts = []
        for listed in self._listed_parts(upload):
            index = int(listed["PartNumber"]) - 1
            checksum = listed.get("ChecksumSHA256") or ""
            parts.append(RemotePart(index, index * part_size, int(listed["Size"]),
                                    naming.hex_of(checksum) if checksum else ""))
        return part_size, parts  # S3 records none: parts are numbered by the store's

    def send_part(self, upload: UploadRef, offset: int, data: memoryview, d: Digests,
                  counter: ByteCounter, pace: Pace | None = None) -> None:
        if _is_single(upload):
            self._put(upload, data, d, counter, pace)
            return
        number = offset // _part_size_of(upload) + 1
        try:
            self.client.upload_part(self.bucket, self.key(upload), upload_id_of(upload), number,
                                    data, sha256=d.sha256, counter=counter, pace=pace)
        except errors.NoSuchUpload as exc:
            raise _gone(exc, UploadGone) from exc

    def complete(self, upload: UploadRef, size: int, tree_hash: str,
                 part_sha256: Sequence[str]) -> str:
        key = self.key(upload)
        if _is_single(upload):  # made by its PUT, if that landed
            if key in self._put_here:
                return key
            head = self._ours(key, upload)
            if head is None or head.size != size:
                raise UploadGone(f"s3://{self.bucket}/{key} was not made", status=404)
            return key
        try:
            listed = {int(p["PartNumber"]): p for p in self._listed_parts(upload)}
        except UploadGone:
            if self._is_ours(key, upload, size):
                return self._tagged(key, tree_hash)  # an earlier Complete made it
            raise
        parts = []
        for number, sha in enumerate(part_sha256, start=1):
            got = listed.get(number)
            sent = got.get("ChecksumSHA256") if got is not None else None
            if got is None or not sha or (sent and sent != naming.b64(sha)):
                raise CompleteRefused(f"s3://{self.bucket}/{key}: part {number} is missing "
                                      "or holds other bytes than were sent", status=400)
            parts.append((number, got.get("ETag", ""), naming.b64(sha)))
        if len(listed) != len(part_sha256) or sum(int(p["Size"]) for p in listed.values()) \
                != size:
            raise CompleteRefused(f"s3://{self.bucket}/{key}: the parts do not make "
                                  f"{size} bytes", status=400)
        try:
            answer = self.client.complete_multipart_upload(self.bucket, key, upload_id_of(upload),
                                                           parts)
        except errors.PreconditionFailed:
            if self._is_ours(key, upload, size):
                return self._tagged(key, tree_hash)
            raise CompleteRefused(f"s3://{self.bucket}/{key} exists and is not this upload",
                                  status=412) from None
        except errors.NoSuchUpload as exc:
            if self._is_ours(key, upload, size):
                return self._tagged(key, tree_hash)
            raise _gone(exc, UploadGone) from exc
        except (errors.InvalidPart, errors.EntityTooSmall, errors.BadDigest) as exc:
            raise _gone(exc, CompleteRefused) from exc
        sent = answer.get("ChecksumSHA256")
        if sent and sent != naming.composite_sha256(part_sha256):
            raise CompleteRefused(f"s3://{self.bucket}/{key}: S3 made the object with "
                                  f"checksum {sent}, not {naming.composite_sha256(part_sha256)}",
                                  status=400)
        return self._tagged(key, tree_hash)

    def _tagged(self, key: str, tree_hash: str) -> str:
        """Tag the object with its tree hash (known only now; metadata is fixed at
        the start), so a catalog rebuilt from the bucket knows it. Repeated when
        a Complete is settled again after a crash."""
        self.client.put_object_tagging(self.bucket, key, {naming.TREE_HASH_TAG: tree_hash})
        return key

    def _put(self, upload: UploadRef, data: memoryview, d: Digests,
             counter: ByteCounter, pace: Pace | None) -> None:
        """A file of one part: one PUT, with its SHA-256 and, since it is known now,
        its tree hash as metadata (no tag needed). ``If-None-Match: *``: a 412
        (a retried PUT whose first answer was lost) is fine when the object is ours."""
        key = self.key(upload)
        try:
            self.client.put_object(self.bucket, key, data, sha256=d.sha256,
                                   storage_class=self.storage_class, counter=counter,
                                   pace=pace,
                                   metadata={naming.METADATA_NAME: upload.description,
                                             naming.TREE_HASH_TAG: d.tree_hash})
        except errors.PreconditionFailed:
            if self._ours(key, upload) is None:
                raise CompleteRefused(f"s3://{self.bucket}/{key} exists and is not this "
                                      "upload", status=412) from None
        self._put_here.add(key)

    def _ours(self, key: str, upload: UploadRef) -> ObjectHead | None:
        """The object under ``key`` if it is this upload's (its metadata carries the
        upload's token), else None."""
        try:
            head = self.client.head_object(self.bucket, key)
        except errors.NotFound:
            return None
        mine = description.public_part(upload.description)
        theirs = description.public_part(head.metadata.get(naming.METADATA_NAME, ""))
        if mine is None or theirs is None or mine.token != theirs.token:
            return None
        return head

    def _is_ours(self, key: str, upload: UploadRef, size: int) -> bool:
        """Is the object under ``key`` this upload's, of this size? Used where S3
        says an object exists or an upload is gone."""
        head = self._ours(key, upload)
        return head is not None and head.size == size

    def abort(self, upload: UploadRef) -> None:
        if _is_single(upload):  # a PUT that landed for a file that then changed
            key = self.key(upload)
            if self._ours(key, upload) is not None:
                self.client.delete_object(self.bucket, key)
            self._put_here.discard(key)
            return
        with suppress(errors.NoSuchUpload):
            self.client.abort_multipart_upload(self.bucket, self.key(upload), upload_id_of(upload))

    # --- the way back ---
    def request_retrieval(self, object_id: str, tier: str,
                          byte_range: tuple[int, int] | None = None) -> str:
        try:  # S3 restores whole objects: a range is read from the copy
            self.client.restore_object(self.bucket, object_id, self.restore_days, tier)
        except errors.RestoreAlreadyInProgress:
            pass  # one is running: follow it
        except errors.InvalidObjectState:
            pass  # a class that is read as it is (GLACIER_IR, STANDARD ...)
        except errors.NotFound as exc:
            raise _gone(exc, ObjectMissing) from exc
        except errors.S3Error as exc:
            if exc.code == "GlacierExpeditedRetrievalNotAvailable":
                raise _gone(exc, NoRetrievalCapacity) from exc
            raise
        return f"s3-restore-{uuid.uuid4().hex}"  # S3 names no job: the key is followed

    def _head(self, key: str) -> ObjectHead | None:
        try:
            return self.client.head_object(self.bucket, key)
        except errors.NotFound:
            return None

    def retrieval(self, ticket: str, object_id: str) -> Retrieval:
        head = self._head(object_id)
        if head is None:  # asked again, the object's absence is told (ObjectMissing)
            return Retrieval(RetrievalStatus.GONE)
        if head.storage_class not in naming.ARCHIVE_CLASSES or head.restored:
            return Retrieval(RetrievalStatus.READY)
        if head.restore_ongoing:
            return Retrieval(RetrievalStatus.IN_PROGRESS)
        return Retrieval(RetrievalStatus.GONE)  # never asked, or the copy expired

    def segment_size(self, ticket: str, object_id: str, size: int, preferred: int) -> int:
        """The object's own part size (every part is checked against its SHA-256),
        or the whole object when it went up in one PUT."""
        known = self._part_sizes.get(object_id)
        if known is None:
            try:
                head = self.client.head_object(self.bucket, object_id, part_number=1)
            except errors.NotFound as exc:
                raise _gone(exc, RetrievalGone) from exc
            known = head.size if head.parts_count > 1 else max(size, 1)
            self._part_sizes[object_id] = known
        return known

    def fetch(self, ticket: str, object_id: str, first: int, last: int,
              write: Callable[[int, bytes], object], *, attempts: int,
              on_mismatch: Callable[[str], None] | None = None,
              counter: ByteCounter | None = None, plain_range: bool = False) -> str:
        part = self._part_sizes.get(object_id)
        number = None  # a plain range: S3 sends no checksum for it
        if (part and first % part == 0 and last - first + 1 <= part and not self._ranges_only
                and not plain_range):
            number = first // part + 1  # one whole part, checked against its SHA-256
        try:
            return self.client.fetch_verified(self.bucket, object_id, first, last, write,
                                              part_number=number, counter=counter,
                                              attempts=attempts, on_mismatch=on_mismatch)
        except errors.PartNumberIgnored:
            self._ranges_only = True  # this peer: the restorer's whole-file check remains
            return self.fetch(ticket, object_id, first, last, write, attempts=attempts,
                              on_mismatch=on_mismatch, counter=counter, plain_range=plain_range)
        except (errors.NotFound, errors.InvalidObjectState) as exc:
            raise _gone(exc, RetrievalGone) from exc

    def delete(self, object_id: str) -> None:
        self.client.delete_object(self.bucket, object_id)  # S3: 204 when absent too


SINGLE_PUT = "put:"
"""The upload id glacierd records for a one-part file: S3's ids never hold ``:``."""


@functools.lru_cache(maxsize=256)
def _single_put_id(description_text: str, part_size: int) -> str | None:
    """A file that fits in one part goes up as one PUT: the id recorded for it
    (kept for the uploads under way: asked when planned and when sent)."""
    info = description.public_part(description_text)  # a sealed one's size: the age file's
    if info is None or not 0 < info.stored_size <= min(part_size, naming.MAX_SINGLE_PUT):
        return None
    return SINGLE_PUT + info.token


def _is_single(upload: UploadRef) -> bool:
    return bool(upload.upload_id and upload.upload_id.startswith(SINGLE_PUT))


def _part_size_of(upload: UploadRef) -> int:
    size = getattr(upload, "part_size", None)
    if not size:
        raise ValueError("an S3 upload's part size is needed to number its parts")
    return int(size)
