"""``GlacierClient``: one method per Glacier REST operation.

Return conventions, the same everywhere:

* an operation whose answer is a JSON document returns it as a ``dict`` with
  Glacier's own (PascalCase) field names, e.g. ``describe_vault(...)["SizeInBytes"]``;
* a listing follows every page (``Marker``) and returns a ``list`` of those dicts;
  ``list_parts`` returns the ListParts document with all pages' ``Parts``;
* an operation whose answer is an id in a header returns that id as ``str``
  (``upload_archive`` and ``complete_multipart_upload`` the archive id,
  ``initiate_multipart_upload`` the upload id, ``initiate_*`` the job id);
* ``get_job_output`` returns a ``JobOutput`` (a streaming response plus the
  headers that describe it).

Progress callbacks are ``progress(done_bytes, total_bytes)``; see
``glacierd.glacier.progress``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from . import errors, limits, rangefetch, treehash
from .auth import SigV4Auth
from .credentials import resolve_credentials
from .files import fsync_dir
from .parts import FileShrankError, PartEngine
from .progress import ByteCounter, Pace, ProgressCallback, ProgressTracker
from .retry import RetryPolicy
from .sigv4 import Credentials
from .transport import FileBody, MemoryBody, Retry, Transport

log = logging.getLogger("glacierd.glacier")

_VAULT_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,255}$")
DEFAULT_SEGMENT_SIZE = 64 * limits.MIB
_DOWNLOAD_BLOCK = 1024 * 1024
SEGMENT_ATTEMPTS = 4


def _vault(name: str) -> str:
    if not isinstance(name, str) or not _VAULT_NAME.match(name):
        raise errors.InvalidInputError(
            f"vault name {name!r} is invalid: 1-255 characters of a-z, A-Z, 0-9, '_', '-', '.'"
        )
    return name


def _id(kind: str, value: str) -> str:
    if not isinstance(value, str) or not value or "/" in value:
        raise errors.InvalidInputError(f"{kind} {value!r} is not a valid id")
    return value


def _json_body(doc: Any) -> MemoryBody:
    data = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    return MemoryBody(data, treehash.digests(data).sha256)


def default_description(path: str | os.PathLike[str]) -> str:
    """pyGlacier's default description, the file name, made printable ASCII."""
    name = Path(path).name
    safe = "".join(c if 0x20 <= ord(c) <= 0x7E else "?" for c in name)
    return safe[: limits.MAX_DESCRIPTION]


@dataclass
class JobOutput:
    """A GetJobOutput answer. Read ``response`` (streaming) and close it."""

    response: requests.Response
    status: int
    tree_hash: str | None
    content_range: str | None
    content_type: str | None
    archive_description: str | None

    def iter_content(self, chunk_size: int = _DOWNLOAD_BLOCK) -> Iterator[bytes]:
        return self.response.iter_content(chunk_size)

    def read(self) -> bytes:
        return self.response.content

    def close(self) -> None:
        self.response.close()

    def __enter__(self) -> JobOutput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class GlacierClient:
    """A Glacier client that talks REST directly and reports progress.

    ``credentials`` may be a ``Credentials``, a ``(key, secret[, token])``
    tuple, or ``None`` to search the usual places (see
    ``glacierd.glacier.credentials``). ``endpoint_url`` overrides
    ``https://glacier.{region}.amazonaws.com`` (the emulator, a proxy).
    ``retries`` is how many times a transient failure is retried; ``timeout``
    is the socket read timeout in seconds.
    """

    def __init__(
        self,
        region: str,
        *,
        credentials: Credentials | tuple[str, str] | tuple[str, str, str] | None = None,
        profile: str | None = None,
        endpoint_url: str | None = None,
        account_id: str = "-",
        timeout: float = 60.0,
        retries: int = 7,
        retry_policy: RetryPolicy | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        session: requests.Session | None = None,
    ) -> None:
        if not region:
            raise errors.InvalidInputError("a region is required, e.g. GlacierClient('us-east-1')")
        self.region = region
        self.endpoint_url = endpoint_url or f"https://glacier.{region}.amazonaws.com"
        self._credentials = resolve_credentials(credentials, profile=profile)
        policy = retry_policy or RetryPolicy(max_attempts=retries + 1)
        self.transport = Transport(
            self.endpoint_url,
            SigV4Auth(self._credentials, region, "glacier", clock),
            account_id=account_id,
            timeout=timeout,
            policy=policy,
            session=session,
        )

    def __repr__(self) -> str:
        return f"GlacierClient({self.region!r}, endpoint_url={self.endpoint_url!r})"

    # --- helpers --------------------------------------------------------------

    def _call(self, method: str, *segments: str, operation: str, **kw: Any) -> requests.Response:
        return self.transport.request(method, segments, operation=operation, **kw)

    def _json(self, method: str, *segments: str, operation: str, **kw: Any) -> dict[str, Any]:
        response = self._call(method, *segments, operation=operation, **kw)
        try:
            doc = response.json()
        except ValueError as exc:
            raise errors.GlacierError(
                f"{operation}: the answer is not JSON: {response.text[:200]!r}",
                status=response.status_code,
                request_id=response.headers.get("x-amzn-RequestId"),
            ) from exc
        if not isinstance(doc, dict):
            raise errors.GlacierError(f"{operation}: expected a JSON object, got {doc!r:.200}")
        return doc

    def _pages(
        self, operation: str, key: str, *segments: str, query: dict[str, str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every item of a paginated listing, following ``Marker``."""
        params = dict(query or {})
        while True:
            doc = self._json("GET", *segments, operation=operation, query=params)
            yield from doc.get(key) or []
            marker = doc.get("Marker")
            if not marker:
                return
            params["marker"] = marker

    # --- vaults ----------------------------------------------------------------

    def list_vaults(self) -> list[dict[str, Any]]:
        return list(self._pages("ListVaults", "VaultList", "vaults"))

    def describe_vault(self, vault: str) -> dict[str, Any]:
        return self._json("GET", "vaults", _vault(vault), operation="DescribeVault")

    def create_vault(self, vault: str) -> str:
        """Create ``vault`` (idempotent); returns its Location path."""
        r = self._call("PUT", "vaults", _vault(vault), operation="CreateVault", expect=(201,))
        return r.headers.get("Location", "")

    def delete_vault(self, vault: str) -> None:
        self._call("DELETE", "vaults", _vault(vault), operation="DeleteVault", expect=(204,))

    def set_vault_notifications(self, vault: str, sns_topic: str, events: list[str]) -> None:
        self._call(
            "PUT", "vaults", _vault(vault), "notification-configuration",
            operation="SetVaultNotifications", expect=(204,),
            body=_json_body({"SNSTopic": sns_topic, "Events": list(events)}),
        )

    def get_vault_notifications(self, vault: str) -> dict[str, Any]:
        return self._json(
            "GET", "vaults", _vault(vault), "notification-configuration",
            operation="GetVaultNotifications",
        )

    def delete_vault_notifications(self, vault: str) -> None:
        self._call(
            "DELETE", "vaults", _vault(vault), "notification-configuration",
            operation="DeleteVaultNotifications", expect=(204,),
        )

    def add_tags_to_vault(self, vault: str, tags: dict[str, str]) -> None:
        self._call(
            "POST", "vaults", _vault(vault), "tags", operation="AddTagsToVault",
            query={"operation": "add"}, expect=(204,), body=_json_body({"Tags": dict(tags)}),
        )

    def list_tags_for_vault(self, vault: str) -> dict[str, str]:
        doc = self._json("GET", "vaults", _vault(vault), "tags", operation="ListTagsForVault")
        return dict(doc.get("Tags") or {})

    def remove_tags_from_vault(self, vault: str, keys: list[str]) -> None:
        self._call(
            "POST", "vaults", _vault(vault), "tags", operation="RemoveTagsFromVault",
            query={"operation": "remove"}, expect=(204,), body=_json_body({"TagKeys": list(keys)}),
        )

    # --- archives ----------------------------------------------------------------

    def upload_archive(
        self,
        vault: str,
        file_path_or_bytes: str | os.PathLike[str] | bytes | bytearray | memoryview,
        description: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> str:
        """Upload in one request; returns the archive id.

        Not crash-safe: if the connection fails after the body was sent, the
        archive may exist, so this raises ``OutcomeUnknownError`` instead of
        retrying. ``multiupload_archive`` (or the daemon) is safe to retry.
        """
        _vault(vault)
        limits.check_description(description)
        body: MemoryBody | FileBody
        if isinstance(file_path_or_bytes, bytes | bytearray | memoryview):
            data = memoryview(file_path_or_bytes).cast("B")
            d = treehash.digests(data)
            body = MemoryBody(data, d.sha256)
            if description is None:
                description = ""
        else:
            path = Path(file_path_or_bytes)
            size = _regular_file_size(path)
            hasher = treehash.TreeHasher(linear=True)
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(4 * limits.MIB), b""):
                    hasher.update(chunk)
            if hasher.size != size:
                raise errors.InvalidInputError(f"{path}: the file changed while it was hashed")
            d = treehash.Digests(hasher.linear_hexdigest(), hasher.hexdigest())
            body = FileBody(path, 0, size, d.sha256)
            if description is None:
                description = default_description(path)
        if body.length == 0:
            raise errors.InvalidInputError("Glacier refuses empty archives (the minimum is 1 byte)")
        if body.length > limits.MAX_SINGLE_UPLOAD:
            raise errors.InvalidInputError(
                f"{body.length} bytes is over the 4 GiB single-request limit: "
                "use multiupload_archive"
            )
        tracker = ProgressTracker(body.length, progress)
        headers = {"x-amz-sha256-tree-hash": d.tree_hash}
        if description:
            headers["x-amz-archive-description"] = description
        r = self._call(
            "POST", "vaults", vault, "archives", operation="UploadArchive", expect=(201,),
            headers=headers, body=body, counter=tracker, retry=Retry.IF_NOT_PROCESSED,
        )
        return _header(r, "x-amz-archive-id", "UploadArchive")

    def delete_archive(self, vault: str, archive_id: str) -> None:
        self._call(
            "DELETE", "vaults", _vault(vault), "archives", _id("archive id", archive_id),
            operation="DeleteArchive", expect=(204,),
        )

    # --- multipart uploads ----------------------------------------------------

    def initiate_multipart_upload(
        self, vault: str, part_size: int, description: str | None = None
    ) -> str:
        """Start a multipart upload; returns the upload id."""
        limits.check_part_size(part_size)
        limits.check_description(description)
        headers = {"x-amz-part-size": str(part_size)}
        if description:
            headers["x-amz-archive-description"] = description
        r = self._call(
            "POST", "vaults", _vault(vault), "multipart-uploads",
            operation="InitiateMultipartUpload", expect=(201,), headers=headers,
        )
        return _header(r, "x-amz-multipart-upload-id", "InitiateMultipartUpload")

    def upload_part(
        self,
        vault: str,
        upload_id: str,
        offset: int,
        data: bytes | bytearray | memoryview,
        tree_hash: str | None = None,
        *,
        sha256: str | None = None,
        progress: ProgressCallback | None = None,
        counter: ByteCounter | None = None,
        pace: Pace | None = None,
    ) -> str:
        """Upload the part that starts at ``offset``; returns its tree hash.

        Pass ``tree_hash`` and ``sha256`` when already known (the uploader
        computes both in one read); otherwise they are computed here. The part
        size rules are Glacier's to enforce: the offset must be a multiple of
        the upload's part size. ``counter`` receives raw byte deltas (for an
        aggregate across parts); ``progress`` gets ``(done, len(data))``;
        ``pace`` is the bandwidth limit, on the body's stream.
        """
        view = memoryview(data).cast("B")
        if not view:
            raise errors.InvalidInputError("a part cannot be empty")
        if offset < 0 or offset % limits.MIB:
            raise errors.InvalidInputError(
                f"part offset {offset} is not a multiple of 1 MiB, so it cannot be a part boundary"
            )
        if tree_hash is None or sha256 is None:
            d = treehash.digests(view)
            tree_hash, sha256 = tree_hash or d.tree_hash, sha256 or d.sha256
        sink = counter or ProgressTracker(len(view), progress)
        r = self._call(
            "PUT", "vaults", _vault(vault), "multipart-uploads", _id("upload id", upload_id),
            operation="UploadMultipartPart", expect=(204,),
            headers={
                "x-amz-sha256-tree-hash": tree_hash,
                "Content-Range": f"bytes {offset}-{offset + len(view) - 1}/*",
            },
            body=MemoryBody(view, sha256), counter=sink, pace=pace,
        )
        echoed = r.headers.get("x-amz-sha256-tree-hash")
        if echoed and echoed != tree_hash:
            raise errors.ChecksumMismatchError(
                f"UploadMultipartPart at offset {offset}: Glacier computed tree hash {echoed}, "
                f"we sent {tree_hash}"
            )
        return tree_hash

    def complete_multipart_upload(
        self, vault: str, upload_id: str, archive_size: int, tree_hash: str
    ) -> str:
        """Assemble the archive; returns its id. Safe to repeat (idempotent)."""
        r = self._call(
            "POST", "vaults", _vault(vault), "multipart-uploads", _id("upload id", upload_id),
            operation="CompleteMultipartUpload", expect=(201,),
            headers={"x-amz-archive-size": str(archive_size), "x-amz-sha256-tree-hash": tree_hash},
        )
        return _header(r, "x-amz-archive-id", "CompleteMultipartUpload")

    def abort_multipart_upload(self, vault: str, upload_id: str) -> None:
        self._call(
            "DELETE", "vaults", _vault(vault), "multipart-uploads", _id("upload id", upload_id),
            operation="AbortMultipartUpload", expect=(204,),
        )

    def list_multipart_uploads(self, vault: str) -> list[dict[str, Any]]:
        return list(
            self._pages("ListMultipartUploads", "UploadsList", "vaults", _vault(vault),
                        "multipart-uploads")
        )

    def list_parts(self, vault: str, upload_id: str) -> dict[str, Any]:
        segments = ("vaults", _vault(vault), "multipart-uploads", _id("upload id", upload_id))
        params: dict[str, str] = {}
        first: dict[str, Any] | None = None
        parts: list[dict[str, Any]] = []
        while True:
            doc = self._json("GET", *segments, operation="ListParts", query=params)
            first = first or doc
            parts.extend(doc.get("Parts") or [])
            if not doc.get("Marker"):
                break
            params["marker"] = doc["Marker"]
        result = dict(first)
        result["Parts"] = parts
        result["Marker"] = None
        return result

    def multiupload_archive(
        self,
        vault: str,
        archive_path: str | os.PathLike[str],
        part_size: int | None = None,
        progress: ProgressCallback | None = None,
        concurrency: int = 4,
        description: str | None = None,
    ) -> str:
        """Upload a file in parts, ``concurrency`` at a time; returns the archive id.

        A one-shot convenience that keeps no state: if it fails, the upload is
        aborted and the error raised (the daemon's uploader is the resumable
        one). Memory stays within ``concurrency x part_size``. With no
        ``part_size`` the smallest valid one for the file is chosen.
        """
        _vault(vault)
        path = Path(archive_path)
        size = _regular_file_size(path)
        if size == 0:
            raise errors.InvalidInputError(
                f"{path}: Glacier refuses empty archives (the minimum is 1 byte)"
            )
        part_size = limits.plan_part_size(size, part_size, name=str(path))
        if concurrency < 1:
            raise errors.InvalidInputError(f"concurrency must be at least 1, not {concurrency}")
        if description is None:
            description = default_description(path)
        limits.check_description(description)
        upload_id = self.initiate_multipart_upload(vault, part_size, description)
        tracker = ProgressTracker(size, progress)
        hashes: dict[int, str] = {}

        def send(part: limits.PartRange, data: memoryview, d: treehash.Digests,
                 release: Callable[[], None]) -> None:
            hashes[part.index] = self.upload_part(vault, upload_id, part.offset, data,
                                                  d.tree_hash, sha256=d.sha256, counter=tracker)
            release()

        engine = PartEngine(concurrency + 1)
        try:
            with open(path, "rb") as fh:
                engine.run(fh.fileno(), list(limits.part_ranges(size, part_size)), part_size,
                           concurrency, send)
            if os.stat(path).st_size != size:
                raise errors.InvalidInputError(f"{path}: the file changed size during upload")
            archive_hash = treehash.combine_hex(hashes[i] for i in range(len(hashes)))
            return self.complete_multipart_upload(vault, upload_id, size, archive_hash)
        except BaseException as exc:
            try:
                self.abort_multipart_upload(vault, upload_id)
            except errors.GlacierError as abort_error:
                log.warning("could not abort multipart upload %s: %s", upload_id, abort_error)
            if isinstance(exc, FileShrankError):
                raise errors.InvalidInputError(f"{path}: the file shrank during upload") \
                    from None
            raise
        finally:
            engine.close()

    # --- jobs ------------------------------------------------------------------

    def list_jobs(
        self, vault: str, completed: bool | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        query: dict[str, str] = {}
        if completed is not None:
            query["completed"] = "true" if completed else "false"
        if status is not None:
            if status not in ("InProgress", "Succeeded", "Failed"):
                raise errors.InvalidInputError(
                    f"job status {status!r} is not InProgress, Succeeded or Failed"
                )
            query["statuscode"] = status
        return list(self._pages("ListJobs", "JobList", "vaults", _vault(vault), "jobs",
                                query=query))

    def describe_job(self, vault: str, job_id: str) -> dict[str, Any]:
        return self._json(
            "GET", "vaults", _vault(vault), "jobs", _id("job id", job_id), operation="DescribeJob"
        )

    def _initiate_job(self, vault: str, params: dict[str, Any]) -> str:
        r = self._call(
            "POST", "vaults", _vault(vault), "jobs", operation="InitiateJob", expect=(202,),
            body=_json_body(params),
        )
        return _header(r, "x-amz-job-id", "InitiateJob")

    def initiate_inventory_job(
        self,
        vault: str,
        format: str = "JSON",
        start: dt.datetime | str | None = None,
        end: dt.datetime | str | None = None,
        description: str | None = None,
    ) -> str:
        """Request a vault inventory; returns the job id."""
        if format not in limits.INVENTORY_FORMATS:
            raise errors.InvalidInputError(f"inventory format {format!r} is not JSON or CSV")
        limits.check_description(description)
        params: dict[str, Any] = {"Type": "inventory-retrieval", "Format": format}
        dates = {k: _iso(v) for k, v in (("StartDate", start), ("EndDate", end)) if v is not None}
        if dates:
            params["InventoryRetrievalParameters"] = dates
        if description:
            params["Description"] = description
        return self._initiate_job(vault, params)

    def initiate_archive_retrieval(
        self,
        vault: str,
        archive_id: str,
        tier: str = "Standard",
        byte_range: str | tuple[int, int] | None = None,
        description: str | None = None,
    ) -> str:
        """Request an archive (or a megabyte-aligned range of it); returns the job id."""
        params: dict[str, Any] = {
            "Type": "archive-retrieval",
            "ArchiveId": _id("archive id", archive_id),
            "Tier": limits.check_tier(tier),
        }
        if byte_range is not None:
            first, last = limits.parse_byte_range(byte_range)
            # The archive's end is unknown here; Glacier checks that case itself.
            if first % limits.MIB:
                limits.check_retrieval_range((first, last))
            params["RetrievalByteRange"] = f"{first}-{last}"
        if description:
            params["Description"] = limits.check_description(description)
        return self._initiate_job(vault, params)

    def get_job_output(
        self, vault: str, job_id: str, byte_range: str | tuple[int, int] | None = None
    ) -> JobOutput:
        """Open a job's output (all of it, or ``byte_range`` inclusive)."""
        headers = {}
        if byte_range is not None:
            first, last = limits.parse_byte_range(byte_range)
            headers["Range"] = f"bytes={first}-{last}"
        r = self._call(
            "GET", "vaults", _vault(vault), "jobs", _id("job id", job_id), "output",
            operation="GetJobOutput", expect=(200, 206), headers=headers, stream=True,
        )
        return JobOutput(
            response=r,
            status=r.status_code,
            tree_hash=r.headers.get("x-amz-sha256-tree-hash"),
            content_range=r.headers.get("Content-Range"),
            content_type=r.headers.get("Content-Type"),
            archive_description=r.headers.get("x-amz-archive-description"),
        )

    def download_job_output(
        self,
        vault: str,
        job_id: str,
        dest: str | os.PathLike[str],
        progress: ProgressCallback | None = None,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
    ) -> str | None:
        """Download a finished job's output to ``dest``, verified.

        The output is fetched in tree-hash-aligned segments; each one whose
        answer carries a tree hash is checked and fetched again on a mismatch
        or a short read (up to ``SEGMENT_ATTEMPTS`` times). For an archive
        retrieval the whole file must then match the job's tree hash. Bytes go
        to a temporary file beside ``dest``, which is fsynced and renamed into
        place only when everything matched: ``dest`` is never half written.
        Returns the tree hash of what was written (``None`` for inventories,
        which Glacier does not hash).
        """
        limits.check_part_size(segment_size)
        job = self.describe_job(vault, job_id)
        if job.get("StatusCode") != "Succeeded":
            raise errors.InvalidInputError(
                f"job {job_id} is {job.get('StatusCode')}, not Succeeded: its output "
                "cannot be downloaded yet"
            )
        is_archive = job.get("Action") == "ArchiveRetrieval"
        total = _job_output_size(job)
        expected = job.get("SHA256TreeHash") if is_archive else None
        dest_path = Path(dest)
        tracker = ProgressTracker(total, progress)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{dest_path.name}.", suffix=".glacierd-partial", dir=dest_path.parent or "."
        )
        segment_hashes: list[str] = []
        try:
            with os.fdopen(fd, "wb") as out:
                if total:
                    fd_out = out.fileno()
                    for seg in limits.part_ranges(total, segment_size):
                        segment_hashes.append(self.fetch_verified(
                            vault, job_id, seg.offset, seg.last,
                            lambda offset, chunk: os.pwrite(fd_out, chunk, offset),
                            counter=tracker))
                    whole = treehash.combine_hex(segment_hashes)
                else:  # the job does not say how big its output is
                    whole = self._download_unsized(vault, job_id, out, tracker,
                                                   expected, is_archive, dest_path)
                out.flush()
                os.fsync(out.fileno())
            if expected and whole != expected:
                raise errors.ChecksumMismatchError(
                    f"job {job_id}: downloaded output has tree hash {whole}, the job says "
                    f"{expected}; nothing was written to {dest_path}"
                )
            os.replace(tmp_name, dest_path)
            fsync_dir(dest_path.parent)
            return whole if is_archive else None
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    def _download_unsized(self, vault: str, job_id: str, out: Any, tracker: ProgressTracker,
                          expected: str | None, is_archive: bool, dest: Path) -> str:
        """The whole output of a job that lists no size, checked against every size
        and hash there is (the job's tree hash, the answer's tree hash and length).

        A peer that leaves the size out must not turn a lost archive into an empty
        file: with nothing at all to check the bytes against, this refuses.
        """
        hasher = treehash.TreeHasher()
        got = 0
        with self.get_job_output(vault, job_id) as answer:
            for chunk in answer.iter_content(_DOWNLOAD_BLOCK):
                out.write(chunk)
                hasher.update(chunk)
                got += len(chunk)
                tracker(len(chunk))
            length = answer.response.headers.get("Content-Length")
            sent_hash = answer.tree_hash
        computed = hasher.hexdigest()
        if length is not None and length.isdigit() and int(length) != got:
            raise errors.TransportError(
                f"job {job_id}: got {got} of {length} bytes; nothing was written to {dest}")
        hashes = [h for h in (expected, sent_hash) if h]
        for known in hashes:
            if known != computed:
                raise errors.ChecksumMismatchError(
                    f"job {job_id}: downloaded output has tree hash {computed}, expected "
                    f"{known}; nothing was written to {dest}")
        if not hashes and (is_archive or length is None):
            raise errors.UnverifiedOutputError(
                f"job {job_id}: its output ({got} bytes) could not be verified: the job lists "
                "no size or tree hash and the answer carries no "
                + ("tree hash" if is_archive else "length") + f"; nothing was written to {dest}")
        return computed

    def fetch_verified(
        self,
        vault: str,
        job_id: str,
        first: int,
        last: int,
        write: Callable[[int, bytes], object],
        *,
        counter: ByteCounter | None = None,
        attempts: int = SEGMENT_ATTEMPTS,
        on_mismatch: Callable[[str], None] | None = None,
    ) -> str:
        """Bytes ``first``-``last`` of a job's output, checked, handed to ``write(offset,
        chunk)``; returns their tree hash.

        The one verified range fetch (``download_job_output`` and glacierd's
        restorer both use it). An answer that is short, or whose bytes do not match
        the tree hash Glacier sent for them, or whose stream breaks, is fetched
        again, ``attempts`` times at most; ``counter`` is rewound by what a failed
        attempt had counted, and ``on_mismatch`` hears of each hash mismatch. Then
        the last error is raised: ``ChecksumMismatchError`` or ``TransportError``
        (stream errors never escape as ``requests`` exceptions). Local errors from
        ``write`` (a full disk) are not retried. An answer without a tree hash is
        accepted on its length; the caller checks the whole against its own hash.
        """
        def open_range() -> requests.Response:
            return self.get_job_output(vault, job_id, (first, last)).response

        def check(answer: requests.Response, hasher: treehash.TreeHasher) -> str | None:
            sent = answer.headers.get("x-amz-sha256-tree-hash")
            computed = hasher.hexdigest()
            return f"tree hash {computed}, Glacier sent {sent}" if sent and sent != computed \
                else None

        return rangefetch.fetch_verified(open_range, first, last, write, check=check,
                                         label=f"job {job_id}", counter=counter,
                                         attempts=attempts, on_mismatch=on_mismatch)


def _header(r: requests.Response, name: str, operation: str) -> str:
    value = r.headers.get(name)
    if not value:
        raise errors.GlacierError(
            f"{operation}: the answer lacks the {name} header",
            status=r.status_code,
            request_id=r.headers.get("x-amzn-RequestId"),
        )
    return value


def _regular_file_size(path: Path) -> int:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise errors.InvalidInputError(f"{path}: no such file") from None
    except PermissionError:
        raise errors.InvalidInputError(f"{path}: permission denied") from None
    if not stat.S_ISREG(st.st_mode):
        raise errors.InvalidInputError(f"{path}: not a regular file")
    return st.st_size


def _job_output_size(job: dict[str, Any]) -> int:
    if job.get("Action") == "ArchiveRetrieval":
        rng = job.get("RetrievalByteRange")
        if rng:
            first, last = limits.parse_byte_range(rng)
            return last - first + 1
        return int(job.get("ArchiveSizeInBytes") or 0)
    return int(job.get("InventorySizeInBytes") or 0)


def _iso(value: dt.datetime | str) -> str:
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
