"""An S3 client for the S3 Glacier storage classes, talking REST with ``requests``.

    from glacierd.s3.client import S3Client
    s3 = S3Client("us-east-1", endpoint_url="http://127.0.0.1:9000")
    upload_id = s3.create_multipart_upload("backups", "photos/a.jpg", "DEEP_ARCHIVE")

It shares the Glacier client's signer (service ``s3``: keys encoded once),
transport, retries and credentials. Only the operations glacierd needs are
here (see S3-API.md in the shared folder). Requests are path-style
(``/{bucket}/{key}``), which every local peer understands. Every body is
signed with its SHA-256, and bodies that create data carry
``x-amz-checksum-sha256`` (the same digest, base64: one pass).
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

import requests

from glacierd.glacier import errors as glacier_errors
from glacierd.glacier import rangefetch, treehash
from glacierd.glacier.auth import SigV4Auth
from glacierd.glacier.credentials import resolve_credentials
from glacierd.glacier.progress import ByteCounter, Pace, null_counter
from glacierd.glacier.retry import RetryPolicy
from glacierd.glacier.sigv4 import Credentials
from glacierd.glacier.transport import MemoryBody, Retry, Transport, Wire

from . import errors
from .errors import local_name
from .naming import b64

STORAGE_CLASSES = ("DEEP_ARCHIVE", "GLACIER", "GLACIER_IR", "STANDARD_IA", "STANDARD")


def s3_wire() -> Wire:
    def path(segments: Sequence[str]) -> str:
        bucket, *key = segments
        return quote(bucket, safe="") + ("/" + quote(key[0], safe="/~") if key else "")

    return Wire("S3", path, {}, "x-amz-request-id", errors.from_response)


@dataclass(frozen=True)
class ObjectHead:
    size: int
    etag: str
    storage_class: str  # STANDARD when S3 leaves the header out
    restore: str | None  # x-amz-restore, as S3 sent it
    metadata: dict[str, str]
    checksum_sha256: str | None
    last_modified: str | None
    parts_count: int = 0  # with a partNumber HEAD: the object's parts (0: one PUT)

    @property
    def restore_ongoing(self) -> bool:
        return self.restore is not None and 'ongoing-request="true"' in self.restore

    @property
    def restored(self) -> bool:
        return self.restore is not None and 'ongoing-request="false"' in self.restore


def _xml(response: requests.Response, operation: str) -> ET.Element:
    try:
        root = ET.fromstring(response.content)
    except ET.ParseError as exc:
        raise errors.S3Error(f"{operation}: the answer is not XML: {response.text[:200]!r}",
                             status=response.status_code,
                             request_id=response.headers.get("x-amz-request-id")) from exc
    if local_name(root.tag) == "Error":  # S3 may answer 200 with an error inside
        raise errors.from_response(response.status_code, response.content,
                                   response.headers.get("x-amz-request-id"))
    return root


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if local_name(child.tag) == name]


def _text(element: ET.Element, name: str, default: str = "") -> str:
    for child in element:
        if local_name(child.tag) == name:
            return child.text or default
    return default


def _fields(element: ET.Element) -> dict[str, str]:
    return {local_name(child.tag): child.text or "" for child in element}


class S3Client:
    def __init__(
        self,
        region: str,
        *,
        credentials: Credentials | tuple[str, str] | tuple[str, str, str] | None = None,
        profile: str | None = None,
        endpoint_url: str | None = None,
        timeout: float = 60.0,
        retries: int = 7,
        retry_policy: RetryPolicy | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        if not region:
            raise glacier_errors.InvalidInputError("a region is required")
        self.region = region
        self.endpoint_url = endpoint_url or f"https://s3.{region}.amazonaws.com"
        self._credentials = resolve_credentials(credentials, profile=profile)
        self.transport = Transport(
            self.endpoint_url, SigV4Auth(self._credentials, region, "s3", clock),
            wire=s3_wire(), timeout=timeout,
            policy=retry_policy or RetryPolicy(max_attempts=retries + 1))

    def __repr__(self) -> str:
        return f"S3Client({self.region!r}, endpoint_url={self.endpoint_url!r})"

    def _call(self, method: str, bucket: str, key: str | None = None, *, operation: str,
              **kw: Any) -> requests.Response:
        segments = (bucket,) if key is None else (bucket, key)
        return self.transport.request(method, segments, operation=operation, **kw)

    # --- buckets ---
    def create_bucket(self, bucket: str) -> None:
        """Create ``bucket``; one that is already ours is fine."""
        body = None
        if self.region != "us-east-1":
            xml = ("<CreateBucketConfiguration><LocationConstraint>"
                   f"{self.region}</LocationConstraint></CreateBucketConfiguration>")
            body = MemoryBody.of(xml.encode())
        try:
            self._call("PUT", bucket, operation="CreateBucket", body=body)
        except errors.S3Error as exc:
            if exc.code != "BucketAlreadyOwnedByYou":
                raise

    def bucket_exists(self, bucket: str) -> bool:
        try:
            self._call("HEAD", bucket, operation="HeadBucket")
        except errors.NotFound:
            return False
        return True

    # --- objects ---
    def put_object(self, bucket: str, key: str, data: bytes | memoryview, *, sha256: str,
                   storage_class: str = "DEEP_ARCHIVE", metadata: Mapping[str, str] = {},
                   if_none_match: bool = True, counter: ByteCounter = null_counter,
                   pace: Pace | None = None) -> str:
        """One PUT (small files); returns the ETag. ``sha256``: hex digest of ``data``.
        With ``if_none_match`` an existing key raises ``PreconditionFailed``."""
        headers = {"x-amz-storage-class": storage_class, "x-amz-checksum-sha256": b64(sha256),
                   **{f"x-amz-meta-{k}": v for k, v in metadata.items()}}
        if if_none_match:
            headers["If-None-Match"] = "*"
        r = self._call("PUT", bucket, key, operation="PutObject", headers=headers,
                       body=MemoryBody(data, sha256), counter=counter, pace=pace,
                       retry=Retry.IF_NOT_PROCESSED if not if_none_match else Retry.ALWAYS)
        return r.headers.get("ETag", "")

    def head_object(self, bucket: str, key: str, part_number: int | None = None) -> ObjectHead:
        """The object's headers; with ``part_number``, that part's size and checksum
        (and ``parts_count``: how many parts the object was uploaded in)."""
        query = {"partNumber": str(part_number)} if part_number is not None else None
        r = self._call("HEAD", bucket, key, operation="HeadObject", query=query,
                       headers={"x-amz-checksum-mode": "ENABLED"},
                       expect=(200, 206))  # a part's HEAD may say 206, as its GET does
        h = r.headers
        return ObjectHead(
            size=int(h.get("Content-Length") or 0), etag=h.get("ETag", ""),
            parts_count=int(h.get("x-amz-mp-parts-count") or 0),
            storage_class=h.get("x-amz-storage-class") or "STANDARD",
            restore=h.get("x-amz-restore"),
            metadata={k[len("x-amz-meta-"):].lower(): v for k, v in h.items()
                      if k.lower().startswith("x-amz-meta-")},
            checksum_sha256=h.get("x-amz-checksum-sha256"),
            last_modified=h.get("Last-Modified"))

    def get_object(self, bucket: str, key: str, first: int | None = None,
                   last: int | None = None) -> requests.Response:
        """The object (or bytes ``first``-``last``), streaming: read it, then close it."""
        headers = {"x-amz-checksum-mode": "ENABLED"}
        if first is not None:
            headers["Range"] = f"bytes={first}-{'' if last is None else last}"
        return self._call("GET", bucket, key, operation="GetObject", headers=headers,
                          expect=(200, 206), stream=True)

    def fetch_verified(self, bucket: str, key: str, first: int, last: int,
                       write: Callable[[int, bytes], object], *,
                       part_number: int | None = None, counter: ByteCounter | None = None,
                       attempts: int = 4,
                       on_mismatch: Callable[[str], None] | None = None) -> str:
        """Bytes ``first``-``last`` (with ``part_number``: that part, which must be
        those bytes), checked against the SHA-256 S3 sends for them, handed to
        ``write(offset, chunk)``; returns their tree hash. S3 sends a checksum for
        a part, or for a whole object uploaded in one PUT; a plain range comes
        without one and is accepted on its length (the caller checks the whole)."""
        headers = {"x-amz-checksum-mode": "ENABLED"}
        query = None
        if part_number is not None:
            query = {"partNumber": str(part_number)}
        else:
            headers["Range"] = f"bytes={first}-{last}"

        def open_range() -> requests.Response:
            r = self._call("GET", bucket, key, operation="GetObject", headers=headers,
                           query=query, expect=(200, 206), stream=True)
            if part_number is not None and r.headers.get("Content-Length") != str(
                    last - first + 1):
                r.close()
                raise errors.PartNumberIgnored(
                    f"s3://{bucket}/{key}: GET of part {part_number} answered "
                    f"{r.headers.get('Content-Length')} bytes, not {last - first + 1}",
                    status=r.status_code)
            return r

        def check(answer: requests.Response, hasher: treehash.TreeHasher) -> str | None:
            sent = answer.headers.get("x-amz-checksum-sha256")
            if not sent or "-" in sent:  # none, or the whole object's composite
                return None
            computed = b64(hasher.linear_hexdigest())
            return None if sent == computed else f"SHA-256 {computed}, S3 sent {sent}"

        return rangefetch.fetch_verified(open_range, first, last, write, check=check,
                                         label=f"s3://{bucket}/{key}", linear=True,
                                         counter=counter, attempts=attempts,
                                         on_mismatch=on_mismatch)

    def put_object_tagging(self, bucket: str, key: str, tags: Mapping[str, str]) -> None:
        """Set the object's tags (all of them): tags, unlike metadata, can be written
        after the object is made, in any storage class."""
        xml = "<Tagging><TagSet>" + "".join(
            f"<Tag><Key>{escape(k)}</Key><Value>{escape(v)}</Value></Tag>"
            for k, v in tags.items()) + "</TagSet></Tagging>"
        self._call("PUT", bucket, key, operation="PutObjectTagging", query={"tagging": ""},
                   body=MemoryBody.of(xml.encode()))

    def get_object_tagging(self, bucket: str, key: str) -> dict[str, str]:
        root = _xml(self._call("GET", bucket, key, operation="GetObjectTagging",
                               query={"tagging": ""}), "GetObjectTagging")
        return {_text(tag, "Key"): _text(tag, "Value")
                for tag in root.iter() if local_name(tag.tag) == "Tag"}

    def delete_object(self, bucket: str, key: str) -> None:
        self._call("DELETE", bucket, key, operation="DeleteObject", expect=(204, 200))

    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[dict[str, str]]:
        """Every object under ``prefix`` (ListObjectsV2, following continuation tokens)."""
        query = {"list-type": "2", "prefix": prefix, "max-keys": "1000"}
        while True:
            root = _xml(self._call("GET", bucket, operation="ListObjectsV2", query=query),
                        "ListObjectsV2")
            for item in _children(root, "Contents"):
                yield _fields(item)
            token = _text(root, "NextContinuationToken")
            if _text(root, "IsTruncated") != "true" or not token:
                return
            query["continuation-token"] = token

    # --- multipart ---
    def create_multipart_upload(self, bucket: str, key: str, storage_class: str = "DEEP_ARCHIVE",
                                metadata: Mapping[str, str] = {}) -> str:
        headers = {"x-amz-storage-class": storage_class, "x-amz-checksum-algorithm": "SHA256",
                   **{f"x-amz-meta-{k}": v for k, v in metadata.items()}}
        root = _xml(self._call("POST", bucket, key, operation="CreateMultipartUpload",
                               query={"uploads": ""}, headers=headers,
                               retry=Retry.IF_NOT_PROCESSED), "CreateMultipartUpload")
        return _text(root, "UploadId")

    def upload_part(self, bucket: str, key: str, upload_id: str, number: int,
                    data: bytes | memoryview, *, sha256: str,
                    counter: ByteCounter = null_counter, pace: Pace | None = None) -> str:
        """Part ``number`` (1-10,000); returns its ETag. Idempotent."""
        r = self._call("PUT", bucket, key, operation="UploadPart",
                       query={"partNumber": str(number), "uploadId": upload_id},
                       headers={"x-amz-checksum-sha256": b64(sha256)},
                       body=MemoryBody(data, sha256), counter=counter, pace=pace)
        return r.headers.get("ETag", "")

    def list_parts(self, bucket: str, key: str, upload_id: str) -> list[dict[str, str]]:
        query = {"uploadId": upload_id, "max-parts": "1000"}
        parts: list[dict[str, str]] = []
        while True:
            root = _xml(self._call("GET", bucket, key, operation="ListParts", query=query),
                        "ListParts")
            parts += [_fields(p) for p in _children(root, "Part")]
            marker = _text(root, "NextPartNumberMarker")
            if _text(root, "IsTruncated") != "true" or not marker:
                return parts
            query["part-number-marker"] = marker

    def complete_multipart_upload(self, bucket: str, key: str, upload_id: str,
                                  parts: Sequence[tuple[int, str, str]], *,
                                  if_none_match: bool = True) -> dict[str, str]:
        """``parts``: (number, ETag, base64 SHA-256) in ascending order. An answer of
        200 with an ``<Error>`` inside raises, as S3 means it."""
        xml = "<CompleteMultipartUpload>" + "".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag>"
            f"<ChecksumSHA256>{checksum}</ChecksumSHA256></Part>"
            for n, etag, checksum in parts) + "</CompleteMultipartUpload>"
        headers = {"If-None-Match": "*"} if if_none_match else {}
        root = _xml(self._call("POST", bucket, key, operation="CompleteMultipartUpload",
                               query={"uploadId": upload_id}, headers=headers,
                               body=MemoryBody.of(xml.encode())), "CompleteMultipartUpload")
        return _fields(root)

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        self._call("DELETE", bucket, key, operation="AbortMultipartUpload",
                   query={"uploadId": upload_id}, expect=(204, 200))

    def list_multipart_uploads(self, bucket: str, prefix: str = "") -> list[dict[str, str]]:
        query = {"uploads": "", "prefix": prefix}
        uploads: list[dict[str, str]] = []
        while True:
            root = _xml(self._call("GET", bucket, operation="ListMultipartUploads",
                                   query=query), "ListMultipartUploads")
            uploads += [_fields(u) for u in _children(root, "Upload")]
            key_marker = _text(root, "NextKeyMarker")
            if _text(root, "IsTruncated") != "true" or not key_marker:
                return uploads
            query["key-marker"] = key_marker
            query["upload-id-marker"] = _text(root, "NextUploadIdMarker")

    # --- restores ---
    def restore_object(self, bucket: str, key: str, days: int, tier: str) -> str:
        """Ask for a temporary copy: "started" (202) or "restored" (200: it already
        is, its expiry extended). ``RestoreAlreadyInProgress`` while one runs."""
        xml = (f"<RestoreRequest><Days>{days}</Days><GlacierJobParameters><Tier>{tier}"
               "</Tier></GlacierJobParameters></RestoreRequest>")
        r = self._call("POST", bucket, key, operation="RestoreObject", query={"restore": ""},
                       body=MemoryBody.of(xml.encode()), expect=(200, 202))
        return "started" if r.status_code == 202 else "restored"
