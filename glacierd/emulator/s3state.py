"""The emulator's S3 side without HTTP: buckets, objects, multipart uploads and
restores, kept on disk, with S3's rules and error codes (``S3Error``).

What it checks, as S3 does: every checksum a client sends (SHA-256, CRC32,
CRC32C, SHA-1 and Content-MD5) against the bytes; part numbers 1-10,000;
parts other than the last of at least 5 MiB at Complete (``EntityTooSmall``);
Complete's parts ascending, each with the ETag and checksum the part got
(``InvalidPartOrder``, ``InvalidPart``); ``If-None-Match: *`` on PUT and
Complete (412 ``PreconditionFailed``); GLACIER and DEEP_ARCHIVE objects are
unreadable (403 ``InvalidObjectState``) until a RestoreObject has run for
``job_delay`` seconds, and again once its ``Days`` have passed.

Layout::

    data_dir/s3/BUCKET/bucket.json
    data_dir/s3/BUCKET/objects/SHA256(KEY).json, .N.part (the parts, or .1.part)
    data_dir/s3/BUCKET/uploads/ID/upload.json, N.part
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .store import Blob, _read_json, _write_json, iso, new_id

MIB = 1024 * 1024
MIN_PART = 5 * MIB
MAX_PART = 5 * 1024 * MIB
MAX_PARTS = 10_000
STORAGE_CLASSES = frozenset({"STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
                             "GLACIER", "DEEP_ARCHIVE", "GLACIER_IR", "REDUCED_REDUNDANCY"})
ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
CHECKSUMS = ("sha256", "crc32", "crc32c", "sha1", "crc64nvme")
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")


class S3Error(Exception):
    """An error answer in S3's XML form."""

    def __init__(self, status: int, code: str, message: str, resource: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.resource = status, code, message, resource


def no_bucket(bucket: str) -> S3Error:
    return S3Error(404, "NoSuchBucket", "The specified bucket does not exist", bucket)


def no_key(key: str) -> S3Error:
    return S3Error(404, "NoSuchKey", "The specified key does not exist.", key)


def no_upload(upload_id: str) -> S3Error:
    return S3Error(404, "NoSuchUpload", "The specified upload does not exist. The upload ID "
                   "may be invalid, or the upload may have been aborted or completed.",
                   upload_id)


def bad_request(code: str, message: str) -> S3Error:
    return S3Error(400, code, message)


# --- checksums ------------------------------------------------------------------

def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


class Crc32c:
    """CRC32C (Castagnoli), table-driven: only a client that asks for it pays."""

    def __init__(self) -> None:
        self.crc = 0xFFFFFFFF

    def update(self, data: bytes | memoryview) -> None:
        crc, table = self.crc, _CRC32C
        for byte in bytes(data):
            crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        self.crc = crc

    def digest(self) -> bytes:
        return (self.crc ^ 0xFFFFFFFF).to_bytes(4, "big")


class Crc32:
    def __init__(self) -> None:
        self.crc = 0

    def update(self, data: bytes | memoryview) -> None:
        self.crc = zlib.crc32(data, self.crc)

    def digest(self) -> bytes:
        return self.crc.to_bytes(4, "big")


class BodyHasher:
    """The hashes of a body as it streams in: SHA-256 and MD5 always, the other
    checksum algorithms only when the request names them."""

    def __init__(self, extra: set[str]) -> None:
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.extra: dict[str, Any] = {}
        if "crc32" in extra:
            self.extra["crc32"] = Crc32()
        if "crc32c" in extra:
            self.extra["crc32c"] = Crc32c()
        if "sha1" in extra:
            self.extra["sha1"] = hashlib.sha1(usedforsecurity=False)

    def update(self, data: memoryview) -> None:
        self.sha256.update(data)
        self.md5.update(data)
        for h in self.extra.values():
            h.update(data)

    def checksums(self) -> dict[str, str]:
        """base64 of each digest, as S3 writes ``x-amz-checksum-*``."""
        out = {"sha256": base64.b64encode(self.sha256.digest()).decode()}
        for name, h in self.extra.items():
            out[name] = base64.b64encode(h.digest()).decode()
        return out


@dataclass
class S3Body:
    """A request body the server streamed to ``path``."""

    path: Path
    length: int
    sha256_hex: str
    md5_hex: str
    checksums: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectView:
    """An object (or one of its parts) to answer a GET or HEAD with."""

    meta: dict[str, Any]
    blob: Blob
    first: int
    last: int
    checksum: dict[str, str]
    part_count: int | None


def _composite(digests_b64: list[str], algorithm: str) -> str:
    hasher = BodyHasher({algorithm})
    hasher.update(memoryview(b"".join(base64.b64decode(d) for d in digests_b64)))
    return f"{hasher.checksums()[algorithm]}-{len(digests_b64)}"


class S3State:
    """Every bucket of the emulated account. Thread-safe."""

    def __init__(self, data_dir: str | os.PathLike[str], *, region: str, job_delay: float,
                 clock: Any = time.time) -> None:
        self.root = Path(data_dir) / "s3"
        self.root.mkdir(parents=True, exist_ok=True)
        self.region = region
        self.job_delay = job_delay
        self.clock = clock
        self._lock = threading.RLock()

    # --- buckets ---
    def _bucket_dir(self, bucket: str) -> Path:
        path = self.root / bucket
        if not _BUCKET_NAME.match(bucket) or not (path / "bucket.json").is_file():
            raise no_bucket(bucket)
        return path

    def create_bucket(self, bucket: str) -> None:
        if not _BUCKET_NAME.match(bucket) or ".." in bucket:
            raise bad_request("InvalidBucketName", "The specified bucket is not valid.")
        with self._lock:
            path = self.root / bucket
            if (path / "bucket.json").is_file():
                raise S3Error(409, "BucketAlreadyOwnedByYou", "Your previous request to "
                              "create the named bucket succeeded and you already own it.", bucket)
            for sub in ("objects", "uploads"):
                (path / sub).mkdir(parents=True, exist_ok=True)
            _write_json(path / "bucket.json", {"CreationDate": iso(self.clock())})

    def head_bucket(self, bucket: str) -> None:
        self._bucket_dir(bucket)

    def list_buckets(self) -> list[dict[str, str]]:
        out = []
        for meta in sorted(self.root.glob("*/bucket.json")):
            out.append({"Name": meta.parent.name, "CreationDate": _read_json(meta)["CreationDate"]})
        return out

    def delete_bucket(self, bucket: str) -> None:
        with self._lock:
            path = self._bucket_dir(bucket)
            if any((path / "objects").glob("*.json")) or any((path / "uploads").iterdir()):
                raise S3Error(409, "BucketNotEmpty", "The bucket you tried to delete is not "
                              "empty", bucket)
            for sub in ("objects", "uploads"):
                (path / sub).rmdir()
            (path / "bucket.json").unlink()
            path.rmdir()

    def tmp_dir(self) -> Path:
        path = self.root.parent / "incoming"
        path.mkdir(exist_ok=True)
        return path

    # --- objects ---
    @staticmethod
    def _name(key: str) -> str:
        return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()

    def _object_meta(self, bucket: str, key: str) -> dict[str, Any] | None:
        path = self._bucket_dir(bucket) / "objects" / f"{self._name(key)}.json"
        return _read_json(path) if path.is_file() else None

    def _require(self, bucket: str, key: str) -> dict[str, Any]:
        meta = self._object_meta(bucket, key)
        if meta is None:
            raise no_key(key)
        return meta

    def _blob(self, bucket: str, meta: dict[str, Any]) -> Blob:
        base = self._bucket_dir(bucket) / "objects"
        files = [(offset, base / f"{meta['Name']}.{n}.part")
                 for n, offset in enumerate(meta["PartOffsets"], start=1)]
        return Blob(files, meta["Size"])

    def _store(self, bucket: str, key: str, parts: list[tuple[Path, int]], *,
               etag: str, checksum: dict[str, str], part_checksums: list[dict[str, str]],
               storage_class: str, metadata: dict[str, str], content_type: str | None,
               if_none_match: bool, multipart: bool) -> dict[str, Any]:
        """Make (or replace) an object from files moved in; under the lock."""
        base = self._bucket_dir(bucket) / "objects"
        if if_none_match and self._object_meta(bucket, key) is not None:
            raise S3Error(412, "PreconditionFailed", "At least one of the pre-conditions you "
                          "specified did not hold", "If-None-Match")
        old = self._object_meta(bucket, key)
        name = self._name(key)
        generation = new_id(8)
        offsets, size = [], 0
        for n, (path, length) in enumerate(parts, start=1):
            os.replace(path, base / f"{name}-{generation}.{n}.part")
            offsets.append(size)
            size += length
        meta = {"Key": key, "Name": f"{name}-{generation}", "Size": size, "ETag": etag,
                "Checksum": checksum, "PartChecksums": part_checksums,
                "PartOffsets": offsets, "StorageClass": storage_class, "Metadata": metadata,
                "ContentType": content_type or "binary/octet-stream",
                "LastModified": self.clock(), "Multipart": multipart, "Restore": None}
        _write_json(base / f"{name}.json", meta)
        if old is not None:
            self._unlink_parts(bucket, old)
        return meta

    def _unlink_parts(self, bucket: str, meta: dict[str, Any]) -> None:
        base = self._bucket_dir(bucket) / "objects"
        for n in range(1, len(meta["PartOffsets"]) + 1):
            (base / f"{meta['Name']}.{n}.part").unlink(missing_ok=True)

    def put_object(self, bucket: str, key: str, body: S3Body, *, storage_class: str,
                   metadata: dict[str, str], content_type: str | None,
                   if_none_match: bool) -> dict[str, Any]:
        _check_class(storage_class)
        with self._lock:
            return self._store(bucket, key, [(body.path, body.length)],
                               etag=f'"{body.md5_hex}"', checksum=body.checksums,
                               part_checksums=[body.checksums], storage_class=storage_class,
                               metadata=metadata, content_type=content_type,
                               if_none_match=if_none_match, multipart=False)

    def delete_object(self, bucket: str, key: str) -> None:
        with self._lock:
            meta = self._object_meta(bucket, key)
            if meta is None:
                return
            self._unlink_parts(bucket, meta)
            (self._bucket_dir(bucket) / "objects" / f"{self._name(key)}.json").unlink()

    def _readable(self, meta: dict[str, Any]) -> bool:
        if meta["StorageClass"] not in ARCHIVE_CLASSES:
            return True
        restore: dict[str, Any] | None = meta.get("Restore")
        now = self.clock()
        return restore is not None and restore["ReadyAt"] <= now < restore["ExpiresAt"]

    def restore_header(self, meta: dict[str, Any]) -> str | None:
        restore: dict[str, Any] | None = meta.get("Restore")
        if restore is None or self.clock() >= restore["ExpiresAt"]:
            return None
        if self.clock() < restore["ReadyAt"]:
            return 'ongoing-request="true"'
        expiry = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(restore["ExpiresAt"]))
        return f'ongoing-request="false", expiry-date="{expiry}"'

    def view(self, bucket: str, key: str, *, part_number: str | None, byte_range: str | None,
             for_get: bool) -> ObjectView:
        with self._lock:
            meta = self._require(bucket, key)
            if for_get and not self._readable(meta):
                raise S3Error(403, "InvalidObjectState", "The operation is not valid for the "
                              "object's storage class", key)
            blob = self._blob(bucket, meta)
        size = meta["Size"]
        if part_number is not None:
            if byte_range:
                raise bad_request("InvalidRequest", "Cannot specify both Range header and "
                                  "partNumber query parameter")
            n = _part_number(part_number)
            offsets = meta["PartOffsets"]
            if n > len(offsets):
                raise S3Error(416, "InvalidPartNumber", "The requested partnumber is not "
                              "satisfiable")
            first = offsets[n - 1]
            last = (offsets[n] if n < len(offsets) else size) - 1
            checksum = meta["PartChecksums"][n - 1] if meta["Multipart"] else meta["Checksum"]
            return ObjectView(meta, blob, first, last, checksum,
                              len(offsets) if meta["Multipart"] else None)
        if byte_range:
            first, last = _parse_range(byte_range, size)
            return ObjectView(meta, blob, first, last, {}, None)
        return ObjectView(meta, blob, 0, size - 1, meta["Checksum"], None)

    def list_objects(self, bucket: str, prefix: str, delimiter: str, start_after: str,
                     max_keys: int) -> tuple[list[dict[str, Any]], list[str], bool, str]:
        """(objects, common prefixes, truncated, the last key or prefix listed)."""
        with self._lock:
            base = self._bucket_dir(bucket) / "objects"
            metas = [_read_json(p) for p in base.glob("*.json")]
        entries: dict[str, dict[str, Any] | None] = {}
        for meta in metas:
            key = meta["Key"]
            if not key.startswith(prefix) or key <= start_after:
                continue
            if delimiter:
                cut = key.find(delimiter, len(prefix))
                if cut >= 0:
                    entries[key[:cut + len(delimiter)]] = None
                    continue
            entries[key] = meta
        names = sorted(entries)
        if start_after:
            names = [n for n in names if n > start_after]
        page, truncated = names[:max_keys], len(names) > max_keys
        objects = [meta for n in page if (meta := entries[n]) is not None]
        prefixes = [n for n in page if entries[n] is None]
        return objects, prefixes, truncated, page[-1] if page else ""

    def restore(self, bucket: str, key: str, days: int, tier: str) -> int:
        """202 (started) or 200 (already restored: its expiry moved on)."""
        if tier not in ("Standard", "Bulk", "Expedited"):
            raise bad_request("MalformedXML", f"Invalid tier {tier!r}")
        if not 1 <= days <= 30000:
            raise bad_request("InvalidArgument", "Days must be from 1 to 30000")
        with self._lock:
            meta = self._require(bucket, key)
            if meta["StorageClass"] not in ARCHIVE_CLASSES:
                raise S3Error(403, "InvalidObjectState", "Restore is not allowed for the "
                              "object's current storage class", key)
            now = self.clock()
            restore = meta.get("Restore")
            if restore is not None and now < restore["ReadyAt"]:
                raise S3Error(409, "RestoreAlreadyInProgress", "Object restore is already "
                              "in progress", key)
            ongoing = restore is not None and now < restore["ExpiresAt"]
            ready = restore["ReadyAt"] if restore is not None and ongoing else now + self.job_delay
            status = 200 if ongoing else 202
            meta["Restore"] = {"ReadyAt": ready, "ExpiresAt": max(ready, now) + days * 86400,
                               "Tier": tier}
            _write_json(self._bucket_dir(bucket) / "objects" / f"{self._name(key)}.json", meta)
            return status

    def set_tags(self, bucket: str, key: str, tags: dict[str, str]) -> None:
        if len(tags) > 10 or any(len(k) > 128 or len(v) > 256 for k, v in tags.items()):
            raise bad_request("InvalidTag", "Object tags cannot be greater than 10, keys 128 "
                              "and values 256 characters")
        with self._lock:
            meta = self._require(bucket, key)
            meta["Tags"] = tags
            _write_json(self._bucket_dir(bucket) / "objects" / f"{self._name(key)}.json", meta)

    def tags(self, bucket: str, key: str) -> dict[str, str]:
        with self._lock:
            tags: dict[str, str] = self._require(bucket, key).get("Tags") or {}
            return tags

    def expire_restore(self, bucket: str, key: str) -> None:
        """Make a restored copy lapse, as after its Days (tests)."""
        with self._lock:
            meta = self._require(bucket, key)
            if meta.get("Restore"):
                meta["Restore"]["ExpiresAt"] = self.clock() - 1
                _write_json(self._bucket_dir(bucket) / "objects" / f"{self._name(key)}.json",
                            meta)

    # --- multipart ---
    def _upload_dir(self, bucket: str, upload_id: str) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", upload_id):
            raise no_upload(upload_id)
        return self._bucket_dir(bucket) / "uploads" / upload_id

    def _upload(self, bucket: str, key: str, upload_id: str) -> dict[str, Any]:
        path = self._upload_dir(bucket, upload_id) / "upload.json"
        if not path.is_file():
            raise no_upload(upload_id)
        doc: dict[str, Any] = _read_json(path)
        if doc["Key"] != key:
            raise no_upload(upload_id)
        return doc

    def create_upload(self, bucket: str, key: str, *, storage_class: str,
                      metadata: dict[str, str], algorithm: str | None, checksum_type: str | None,
                      content_type: str | None) -> str:
        _check_class(storage_class)
        if algorithm is not None and algorithm not in CHECKSUMS:
            raise bad_request("InvalidRequest", f"Checksum algorithm {algorithm!r} is not "
                              "supported")
        with self._lock:
            upload_id = new_id(64)
            path = self._upload_dir(bucket, upload_id)
            path.mkdir(parents=True)
            _write_json(path / "upload.json", {
                "Key": key, "UploadId": upload_id, "Initiated": self.clock(),
                "StorageClass": storage_class, "Metadata": metadata, "Algorithm": algorithm,
                "ChecksumType": checksum_type or "COMPOSITE", "ContentType": content_type,
                "Parts": {}})
            return upload_id

    def upload_part(self, bucket: str, key: str, upload_id: str, number: str,
                    body: S3Body) -> dict[str, Any]:
        n = _part_number(number)
        if body.length > MAX_PART:
            raise bad_request("EntityTooLarge", "Your proposed upload exceeds the maximum "
                              "allowed size")
        with self._lock:
            doc = self._upload(bucket, key, upload_id)
            algorithm = doc["Algorithm"]
            if algorithm is not None and algorithm not in body.checksums:
                raise bad_request("InvalidRequest", f"The upload was created using a "
                                  f"{algorithm} checksum; the part must carry "
                                  f"x-amz-checksum-{algorithm}")
            os.replace(body.path, self._upload_dir(bucket, upload_id) / f"{n}.part")
            part = {"Size": body.length, "ETag": f'"{body.md5_hex}"', "MD5": body.md5_hex,
                    "Checksums": body.checksums, "LastModified": self.clock()}
            doc["Parts"][str(n)] = part
            _write_json(self._upload_dir(bucket, upload_id) / "upload.json", doc)
            return part

    def list_parts(self, bucket: str, key: str, upload_id: str, marker: int,
                   max_parts: int) -> tuple[dict[str, Any], list[tuple[int, dict[str, Any]]], bool]:
        with self._lock:
            doc = self._upload(bucket, key, upload_id)
        numbers = sorted(int(n) for n in doc["Parts"] if int(n) > marker)
        page = numbers[:max_parts]
        return doc, [(n, doc["Parts"][str(n)]) for n in page], len(numbers) > max_parts

    def list_uploads(self, bucket: str, prefix: str) -> list[dict[str, Any]]:
        with self._lock:
            base = self._bucket_dir(bucket) / "uploads"
            docs = [_read_json(p) for p in base.glob("*/upload.json")]
        docs = [d for d in docs if d["Key"].startswith(prefix)]
        return sorted(docs, key=lambda d: (d["Key"], d["Initiated"], d["UploadId"]))

    def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        with self._lock:
            self._upload(bucket, key, upload_id)
            path = self._upload_dir(bucket, upload_id)
            for child in path.iterdir():
                child.unlink()
            path.rmdir()

    def complete_upload(self, bucket: str, key: str, upload_id: str,
                        given: list[dict[str, str]], *, if_none_match: bool,
                        full_checksum: tuple[str, str] | None) -> dict[str, Any]:
        with self._lock:
            doc = self._upload(bucket, key, upload_id)
            if not given:
                raise bad_request("MalformedXML", "The XML you provided was not well-formed "
                                  "or did not validate against our published schema")
            numbers = [_part_number(p.get("PartNumber", "")) for p in given]
            if numbers != sorted(set(numbers)):
                raise bad_request("InvalidPartOrder", "The list of parts was not in ascending "
                                  "order. Parts must be ordered by part number.")
            algorithm = doc["Algorithm"]
            chosen: list[dict[str, Any]] = []
            for n, spec in zip(numbers, given, strict=True):
                part = doc["Parts"].get(str(n))
                etag = spec.get("ETag", "").strip()
                if part is None or (etag and etag.strip('"') != part["MD5"]):
                    raise bad_request("InvalidPart", "One or more of the specified parts could "
                                      "not be found. The part may not have been uploaded, or "
                                      "the specified entity tag may not match the part's "
                                      "entity tag.")
                for name in CHECKSUMS:
                    sent = spec.get(f"Checksum{name.upper()}")
                    if sent is not None and sent != part["Checksums"].get(name):
                        raise bad_request("InvalidPart", f"The {name} checksum of part {n} "
                                          "does not match the checksum the part was sent with")
                chosen.append(part)
            for part in chosen[:-1]:
                if part["Size"] < MIN_PART:
                    raise bad_request("EntityTooSmall", "Your proposed upload is smaller than "
                                      "the minimum allowed object size.")
            base = self._upload_dir(bucket, upload_id)
            md5s = b"".join(bytes.fromhex(p["MD5"]) for p in chosen)
            etag = f'"{hashlib.md5(md5s, usedforsecurity=False).hexdigest()}-{len(chosen)}"'
            checksum: dict[str, str] = {}
            if algorithm is not None:
                checksum[algorithm] = _composite([p["Checksums"][algorithm] for p in chosen],
                                                 algorithm)
            if full_checksum is not None:
                name, value = full_checksum
                computed = self._full_checksum(base, numbers, name)
                if computed != value:
                    raise bad_request("BadDigest", f"The {name} you specified for the whole "
                                      "object did not match what we computed.")
                checksum[name] = value
            meta = self._store(
                bucket, key, [(base / f"{n}.part", p["Size"]) for n, p in
                              zip(numbers, chosen, strict=True)],
                etag=etag, checksum=checksum,
                part_checksums=[p["Checksums"] for p in chosen],
                storage_class=doc["StorageClass"], metadata=doc["Metadata"],
                content_type=doc["ContentType"], if_none_match=if_none_match, multipart=True)
            for child in base.iterdir():
                child.unlink()
            base.rmdir()
            return meta

    @staticmethod
    def _full_checksum(base: Path, numbers: list[int], name: str) -> str:
        hasher = BodyHasher({name})
        for n in numbers:
            with open(base / f"{n}.part", "rb") as fh:
                while block := fh.read(MIB):
                    hasher.update(memoryview(block))
        return hasher.checksums()[name]

    def chunks(self, view: ObjectView) -> Iterator[bytes]:
        if view.last >= view.first:
            yield from view.blob.chunks(view.first, view.last)


def _check_class(storage_class: str) -> None:
    if storage_class not in STORAGE_CLASSES:
        raise bad_request("InvalidStorageClass", "The storage class you specified is not "
                          "valid")


def _part_number(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= MAX_PARTS:
        raise bad_request("InvalidArgument", "Part number must be an integer between 1 and "
                          "10000, inclusive")
    return int(value)


def _parse_range(value: str, size: int) -> tuple[int, int]:
    unit, _, spec = value.strip().partition("=")
    first_s, sep, last_s = spec.partition("-")
    if unit != "bytes" or not sep or "," in spec:
        raise S3Error(416, "InvalidRange", "The requested range is not satisfiable")
    try:
        if first_s == "":  # the last N bytes
            n = int(last_s)
            return max(0, size - n), size - 1
        first = int(first_s)
        last = int(last_s) if last_s.strip() else size - 1
    except ValueError:
        raise S3Error(416, "InvalidRange", "The requested range is not satisfiable") from None
    if first >= size or last < first:
        raise S3Error(416, "InvalidRange", "The requested range is not satisfiable")
    return first, min(last, size - 1)
