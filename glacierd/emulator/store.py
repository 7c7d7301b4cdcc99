"""The emulator's vaults, archives, uploads and jobs, kept on disk.

This module is Glacier's semantics without HTTP: it validates parts, ranges
and hashes as Glacier does and raises ``ApiError`` with Glacier's codes. All
metadata is JSON under ``data_dir`` (written atomically), so an emulator that
restarts finds every vault, archive, pending upload and job again. Bodies are
streamed to disk by the server; nothing here holds a part in memory.

Layout::

    data_dir/vaults/NAME/vault.json
    data_dir/vaults/NAME/archives/ID.json, ID.data
    data_dir/vaults/NAME/uploads/ID/upload.json, OFFSET.part
    data_dir/vaults/NAME/jobs/ID.json, ID.output (inventory snapshots)
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glacierd.glacier import limits, treehash
from glacierd.glacier.errors import InvalidInputError

Clock = Callable[[], float]
MIB = limits.MIB


class ApiError(Exception):
    """An error answer in Glacier's JSON form."""

    def __init__(self, status: int, code: str, message: str, type: str = "Client") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.type = type


def not_found(message: str) -> ApiError:
    return ApiError(404, "ResourceNotFoundException", message)


def invalid(message: str) -> ApiError:
    return ApiError(400, "InvalidParameterValueException", message)


def missing(message: str) -> ApiError:
    return ApiError(400, "MissingParameterValueException", message)


def iso(ts: float) -> str:
    return (
        dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{int(ts * 1000) % 1000:03d}Z"
    )


def _write_json(path: Path, doc: Any) -> None:
    """Atomic (write, then rename) but not fsynced: the emulator survives its own
    restart, not a power cut; an fsync per part would flush every part's data."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh)
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def new_id(length: int) -> str:
    return secrets.token_urlsafe(length)[:length]


def paginate(
    items: list[Any], key: Callable[[Any], str], marker: str | None, limit: str | None,
    default_limit: int,
) -> tuple[list[Any], str | None]:
    """One page of ``items`` after ``marker``, and the marker of the next page."""
    size = default_limit
    if limit is not None:
        if not limit.isdigit() or not 1 <= int(limit) <= 1000:
            raise invalid(f"Invalid limit: {limit!r}; it must be from 1 to 1000")
        size = int(limit)
    start = 0
    if marker:
        keys = [key(i) for i in items]
        if marker not in keys:
            raise invalid(f"Invalid marker: {marker!r}")
        start = keys.index(marker)
    page = items[start : start + size]
    nxt = key(items[start + size]) if start + size < len(items) else None
    return page, nxt


@dataclass
class ReceivedBody:
    """A request body the server streamed to ``path``, with its hashes."""

    path: Path
    length: int
    sha256: str
    tree_hash: str
    leaves: bytes = b""
    """Its 1 MiB leaves' digests (``TreeHasher.leaf_digests``), kept beside the
    bytes: ranges of them are then hashed as Glacier does, from stored hashes,
    not by reading the bytes again."""

    def keep(self, dest: Path) -> None:
        """Move the bytes to ``dest``, and their leaf digests beside them."""
        leaves_of(dest).write_bytes(self.leaves)
        os.replace(self.path, dest)


def leaves_of(path: Path) -> Path:
    """Where a part file's leaf digests are kept."""
    return path.with_name(path.name + ".leaves")


def move_part(source: Path, dest: Path) -> None:
    """A part file and its leaf digests, renamed."""
    if leaves_of(source).exists():
        os.replace(leaves_of(source), leaves_of(dest))
    os.replace(source, dest)


class Blob:
    """Bytes kept as a sequence of files: an archive is the part files it was
    uploaded in, so Complete is a rename however large the archive."""

    def __init__(self, files: list[tuple[int, Path]], size: int) -> None:
        self.files = sorted(files)
        self.size = size

    def _spans(self, first: int, last: int) -> Iterator[tuple[int, int, int, Path]]:
        """(file's offset, lo, hi, file) for each file holding bytes of ``first..last``,
        in order: it holds bytes ``lo..hi-1`` of them (a file's bytes run from its
        offset to the next file's; the last one's, to the end)."""
        ends = [offset for offset, _ in self.files[1:]] + [self.size]
        for (start, path), end in zip(self.files, ends, strict=True):
            if start <= last and end > first:
                yield start, max(first, start), min(last + 1, end), path

    def chunks(self, first: int, last: int, block: int = MIB) -> Iterator[bytes]:
        """Bytes ``first..last`` (inclusive), in blocks of at most ``block``."""
        for start, position, stop, path in self._spans(first, last):
            with open(path, "rb") as fh:
                fh.seek(position - start)
                while position < stop:
                    data = fh.read(min(block, stop - position))
                    if not data:
                        return
                    position += len(data)
                    yield data

    def send(self, sock: socket.socket, first: int, last: int) -> int:
        """Bytes ``first..last`` to ``sock`` by ``sendfile`` (the kernel copies them
        from the page cache: a server's way, not a byte through Python); the count
        sent."""
        sent = 0
        for start, lo, hi, path in self._spans(first, last):
            with open(path, "rb") as fh:
                sent += sock.sendfile(fh, lo - start, hi - lo)
        return sent

    def read(self) -> bytes:
        return b"".join(self.chunks(0, self.size - 1)) if self.size else b""

    def tree_hash(self, first: int, last: int) -> str:
        """Of bytes ``first..last``: from the leaf digests kept with the parts when the
        range starts on a MiB (every part does), else by reading the bytes."""
        leaves = self._leaves(first, last) if first % MIB == 0 else None
        if leaves is not None:
            return treehash.combine(leaves).hex()
        hasher = treehash.TreeHasher()
        for data in self.chunks(first, last):
            hasher.update(data)
        return hasher.hexdigest()

    def _leaves(self, first: int, last: int) -> list[bytes] | None:
        """The digests of the leaves of ``first..last`` (``first`` on a MiB), or None
        when a part's were not kept (stored by an older emulator)."""
        found: list[bytes] = []
        for start, lo_at, hi_at, path in self._spans(first, last):
            if start % MIB:
                return None
            try:
                kept = leaves_of(path).read_bytes()
            except FileNotFoundError:
                return None
            lo, hi = lo_at - start, hi_at - start  # leaves [lo/MIB, ceil(hi/MIB)) of it
            want = kept[lo // MIB * 32 : -(-hi // MIB) * 32]
            if len(want) != (-(-hi // MIB) - lo // MIB) * 32:
                return None
            found += [want[i : i + 32] for i in range(0, len(want), 32)]
        return found


class GlacierState:
    """Every vault of one emulated account. Thread-safe."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        job_delay: float = 0.0,
        upload_expiry: float = 24 * 3600,
        job_expiry: float = 24 * 3600,
        clock: Clock = time.time,
    ) -> None:
        self.root = Path(data_dir)
        self.vaults_dir = self.root / "vaults"
        self.vaults_dir.mkdir(parents=True, exist_ok=True)
        self.region = region
        self.account_id = account_id
        self.job_delay = job_delay
        self.upload_expiry = upload_expiry
        self.job_expiry = job_expiry
        self.clock = clock
        self._lock = threading.RLock()
        self._upload_locks: dict[str, threading.Lock] = {}

    # --- paths and lookups ---------------------------------------------------

    def arn(self, vault: str) -> str:
        return f"arn:aws:glacier:{self.region}:{self.account_id}:vaults/{vault}"

    def _vault_dir(self, vault: str) -> Path:
        path = self.vaults_dir / vault
        if not (path / "vault.json").is_file():
            raise not_found(f"Vault not found for ARN: {self.arn(vault)}")
        return path

    def tmp_dir(self) -> Path:
        path = self.root / "incoming"
        path.mkdir(exist_ok=True)
        return path

    def _next_seq(self) -> int:
        """A persisted counter: listings keep creation order even within one clock tick."""
        with self._lock:
            path = self.root / "sequence"
            value = int(path.read_text()) + 1 if path.is_file() else 1
            path.write_text(str(value))
            return value

    def _upload_lock(self, upload_id: str) -> threading.Lock:
        with self._lock:
            return self._upload_locks.setdefault(upload_id, threading.Lock())

    # --- vaults ----------------------------------------------------------------

    def create_vault(self, vault: str) -> None:
        with self._lock:
            path = self.vaults_dir / vault
            if (path / "vault.json").is_file():
                return  # idempotent
            for sub in ("archives", "uploads", "jobs"):
                (path / sub).mkdir(parents=True, exist_ok=True)
            _write_json(path / "vault.json", {"CreationDate": iso(self.clock()), "Tags": {},
                                              "Notifications": None, "LastInventoryDate": None})

    def _vault_meta(self, vault: str) -> dict[str, Any]:
        meta: dict[str, Any] = _read_json(self._vault_dir(vault) / "vault.json")
        return meta

    def _archives(self, vault: str) -> list[dict[str, Any]]:
        out = []
        for meta in sorted((self._vault_dir(vault) / "archives").glob("*.json")):
            out.append(_read_json(meta))
        out.sort(key=lambda a: a["Seq"])
        return out

    def describe_vault(self, vault: str) -> dict[str, Any]:
        with self._lock:
            meta = self._vault_meta(vault)
            archives = self._archives(vault)
            return {
                "VaultARN": self.arn(vault),
                "VaultName": vault,
                "CreationDate": meta["CreationDate"],
                "LastInventoryDate": meta.get("LastInventoryDate"),
                "NumberOfArchives": len(archives),
                "SizeInBytes": sum(a["Size"] for a in archives),
            }

    def list_vaults(self, marker: str | None, limit: str | None) -> dict[str, Any]:
        with self._lock:
            names = sorted(p.parent.name for p in self.vaults_dir.glob("*/vault.json"))
            docs = [self.describe_vault(n) for n in names]
        page, nxt = paginate(docs, lambda d: d["VaultARN"], marker, limit, 10)
        return {"VaultList": page, "Marker": nxt}

    def delete_vault(self, vault: str) -> None:
        with self._lock:
            path = self._vault_dir(vault)
            if any((path / "archives").glob("*.json")):
                raise invalid(f"Vault not empty or recently written to: {self.arn(vault)}")
            shutil.rmtree(path)

    def set_notifications(self, vault: str, doc: Any) -> None:
        if not isinstance(doc, dict) or "SNSTopic" not in doc or "Events" not in doc:
            raise invalid("vaultNotificationConfig needs SNSTopic and Events")
        allowed = {"ArchiveRetrievalCompleted", "InventoryRetrievalCompleted"}
        if not isinstance(doc["Events"], list) or not set(doc["Events"]) <= allowed:
            raise invalid(f"Events must be a list drawn from {sorted(allowed)}")
        self._update_vault(vault, Notifications={"SNSTopic": doc["SNSTopic"],
                                                 "Events": doc["Events"]})

    def get_notifications(self, vault: str) -> dict[str, Any]:
        with self._lock:
            config = self._vault_meta(vault).get("Notifications")
            if not config:
                raise not_found(f"No notification configuration is set for vault: {vault}")
            return dict(config)

    def delete_notifications(self, vault: str) -> None:
        self._update_vault(vault, Notifications=None)

    def _update_vault(self, vault: str, **changes: Any) -> None:
        with self._lock:
            meta = self._vault_meta(vault)
            meta.update(changes)
            _write_json(self._vault_dir(vault) / "vault.json", meta)

    def add_tags(self, vault: str, doc: Any) -> None:
        tags = doc.get("Tags") if isinstance(doc, dict) else None
        if not isinstance(tags, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
        ):
            raise invalid("Tags must be an object of string keys and values")
        with self._lock:
            current = dict(self._vault_meta(vault).get("Tags") or {})
            current.update(tags)
            if len(current) > 50:
                raise ApiError(400, "LimitExceededException", "A vault can have at most 50 tags")
            self._update_vault(vault, Tags=current)

    def remove_tags(self, vault: str, doc: Any) -> None:
        keys = doc.get("TagKeys") if isinstance(doc, dict) else None
        if not isinstance(keys, list):
            raise invalid("TagKeys must be a list")
        with self._lock:
            current = dict(self._vault_meta(vault).get("Tags") or {})
            for key in keys:
                current.pop(key, None)
            self._update_vault(vault, Tags=current)

    def list_tags(self, vault: str) -> dict[str, Any]:
        with self._lock:
            return {"Tags": dict(self._vault_meta(vault).get("Tags") or {})}

    # --- archives ----------------------------------------------------------------

    def _store_archive(
        self, vault: str, parts: Path, offsets: list[int], size: int, tree_hash: str,
        description: str,
    ) -> str:
        """Move a folder of part files (``OFFSET.part``) into the vault; returns the id."""
        archive_id = new_id(138)
        folder = self._vault_dir(vault) / "archives"
        os.replace(parts, folder / f"{archive_id}.parts")
        _write_json(folder / f"{archive_id}.json", {
            "PartOffsets": offsets,
            "ArchiveId": archive_id,
            "ArchiveDescription": description,
            "CreationDate": iso(self.clock()),
            "Size": size,
            "SHA256TreeHash": tree_hash,
            "Seq": self._next_seq(),
        })
        return archive_id

    def upload_archive(self, vault: str, body: ReceivedBody, tree_hash: str | None,
                       description: str) -> str:
        self._vault_dir(vault)
        if tree_hash is None:
            raise missing("Required header x-amz-sha256-tree-hash is missing")
        if body.length == 0:
            raise invalid("Invalid Content-Length: 0; an archive must be at least 1 byte")
        if tree_hash != body.tree_hash:
            raise invalid(f"Checksum mismatch: expected {tree_hash}, computed {body.tree_hash}")
        with self._lock:
            parts = self.tmp_dir() / f"{new_id(16)}.parts"
            parts.mkdir()
            body.keep(parts / "0.part")
            return self._store_archive(vault, parts, [0], body.length, tree_hash, description)

    def archive(self, vault: str, archive_id: str) -> dict[str, Any]:
        path = self._vault_dir(vault) / "archives" / f"{archive_id}.json"
        if "/" in archive_id or not path.is_file():
            raise not_found(f"Archive not found in vault {vault}: {archive_id}")
        doc: dict[str, Any] = _read_json(path)
        return doc

    def archive_data(self, vault: str, archive_id: str) -> Blob:
        meta = self.archive(vault, archive_id)
        folder = self._vault_dir(vault) / "archives" / f"{archive_id}.parts"
        return Blob([(o, folder / f"{o}.part") for o in meta["PartOffsets"]], meta["Size"])

    def archive_bytes(self, vault: str, archive_id: str) -> bytes:
        """A whole archive's bytes (tests)."""
        return self.archive_data(vault, archive_id).read()

    def delete_archive(self, vault: str, archive_id: str) -> None:
        with self._lock:
            self.archive(vault, archive_id)
            folder = self._vault_dir(vault) / "archives"
            (folder / f"{archive_id}.json").unlink()
            shutil.rmtree(folder / f"{archive_id}.parts", ignore_errors=True)

    # --- multipart uploads ----------------------------------------------------

    def _upload_dir(self, vault: str, upload_id: str) -> Path:
        return self._vault_dir(vault) / "uploads" / upload_id

    def _upload(self, vault: str, upload_id: str, *, allow_completed: bool = False
                ) -> dict[str, Any]:
        path = self._upload_dir(vault, upload_id) / "upload.json"
        if "/" in upload_id or not path.is_file():
            raise not_found(f"Multipart upload not found: {upload_id}")
        doc: dict[str, Any] = _read_json(path)
        if doc.get("ArchiveId") and not allow_completed:
            raise not_found(f"Multipart upload {upload_id} was completed")
        if not doc.get("ArchiveId") and self.clock() - doc["LastActivity"] > self.upload_expiry:
            raise not_found(f"Multipart upload {upload_id} expired after inactivity")
        return doc

    def _save_upload(self, vault: str, doc: dict[str, Any]) -> None:
        _write_json(self._upload_dir(vault, doc["MultipartUploadId"]) / "upload.json", doc)

    def initiate_upload(self, vault: str, part_size: str | None, description: str) -> str:
        self._vault_dir(vault)
        if part_size is None:
            raise missing("Required header x-amz-part-size is missing")
        if not part_size.isdigit() or not limits.is_valid_part_size(int(part_size)):
            raise invalid(f"Invalid part size: {part_size}. Part size must be 1 MiB x 2^n, "
                          "from 1 MiB to 4 GiB")
        with self._lock:
            upload_id = new_id(92)
            folder = self._upload_dir(vault, upload_id)
            folder.mkdir(parents=True)
            now = self.clock()
            self._save_upload(vault, {
                "MultipartUploadId": upload_id,
                "VaultARN": self.arn(vault),
                "ArchiveDescription": description,
                "PartSizeInBytes": int(part_size),
                "CreationDate": iso(now),
                "LastActivity": now,
                "Parts": {},
                "ArchiveId": None,
                "Seq": self._next_seq(),
            })
            return upload_id

    def check_part_request(self, vault: str, upload_id: str, content_range: str | None,
                           content_length: int) -> tuple[int, int]:
        """Validate a part's headers before its body is read; returns (first, last)."""
        doc = self._upload(vault, upload_id)
        if content_range is None:
            raise missing("Required header Content-Range is missing")
        first, last = parse_content_range(content_range)
        part_size = doc["PartSizeInBytes"]
        length = last - first + 1
        if length != content_length:
            raise invalid(f"Content-Range {content_range} does not match Content-Length "
                          f"{content_length}")
        if first % part_size:
            raise invalid(f"Content-Range: {content_range} is incompatible with the part size "
                          f"{part_size}: its start is not a multiple of it")
        if length > part_size:
            raise invalid(f"Content-Range: {content_range} is larger than the part size "
                          f"{part_size}")
        return first, last

    def upload_part(self, vault: str, upload_id: str, first: int, body: ReceivedBody,
                    tree_hash: str | None) -> str:
        if tree_hash is None:
            body.path.unlink(missing_ok=True)
            raise missing("Required header x-amz-sha256-tree-hash is missing")
        if tree_hash != body.tree_hash:
            body.path.unlink(missing_ok=True)
            raise invalid(f"Checksum mismatch: expected {tree_hash}, computed {body.tree_hash}")
        with self._upload_lock(upload_id), self._lock:
            doc = self._upload(vault, upload_id)
            folder = self._upload_dir(vault, upload_id)
            body.keep(folder / f"{first}.part")
            doc["Parts"][str(first)] = {
                "RangeInBytes": f"{first}-{first + body.length - 1}",
                "SHA256TreeHash": tree_hash,
                "Length": body.length,
            }
            doc["LastActivity"] = self.clock()
            self._save_upload(vault, doc)
        return tree_hash

    def list_parts(self, vault: str, upload_id: str, marker: str | None,
                   limit: str | None) -> dict[str, Any]:
        with self._lock:
            doc = self._upload(vault, upload_id)
        parts = sorted(doc["Parts"].items(), key=lambda kv: int(kv[0]))
        page, nxt = paginate(parts, lambda kv: kv[0], marker, limit, 50)
        return {
            "MultipartUploadId": upload_id,
            "VaultARN": doc["VaultARN"],
            "ArchiveDescription": doc["ArchiveDescription"],
            "PartSizeInBytes": doc["PartSizeInBytes"],
            "CreationDate": doc["CreationDate"],
            "Parts": [{"RangeInBytes": p["RangeInBytes"], "SHA256TreeHash": p["SHA256TreeHash"]}
                      for _, p in page],
            "Marker": nxt,
        }

    def list_uploads(self, vault: str, marker: str | None, limit: str | None) -> dict[str, Any]:
        with self._lock:
            folder = self._vault_dir(vault) / "uploads"
            docs = []
            for path in folder.glob("*/upload.json"):
                doc = _read_json(path)
                live = not doc.get("ArchiveId") and (
                    self.clock() - doc["LastActivity"] <= self.upload_expiry
                )
                if live:
                    docs.append(doc)
        docs.sort(key=lambda d: d["Seq"])
        page, nxt = paginate(docs, lambda d: d["MultipartUploadId"], marker, limit, 50)
        fields = ("MultipartUploadId", "VaultARN", "ArchiveDescription", "PartSizeInBytes",
                  "CreationDate")
        return {"UploadsList": [{f: d[f] for f in fields} for d in page], "Marker": nxt}

    def complete_upload(self, vault: str, upload_id: str, size_header: str | None,
                        tree_hash: str | None) -> str:
        if size_header is None:
            raise missing("Required header x-amz-archive-size is missing")
        if tree_hash is None:
            raise missing("Required header x-amz-sha256-tree-hash is missing")
        if not size_header.isdigit():
            raise invalid(f"Invalid x-amz-archive-size: {size_header!r}")
        size = int(size_header)
        with self._upload_lock(upload_id):
            with self._lock:
                doc = self._upload(vault, upload_id, allow_completed=True)
            if doc.get("ArchiveId"):
                if doc["CompletedSize"] == size and doc["CompletedTreeHash"] == tree_hash:
                    return str(doc["ArchiveId"])  # Complete is idempotent
                raise invalid(f"Multipart upload {upload_id} was completed with another size "
                              "or tree hash")
            part_size = doc["PartSizeInBytes"]
            offsets = sorted(int(o) for o in doc["Parts"])
            if size < 1:
                raise invalid("Invalid x-amz-archive-size: an archive must be at least 1 byte")
            expected = list(range(0, size, part_size))
            if offsets != expected:
                missing_parts = sorted(set(expected) - set(offsets))
                extra = sorted(set(offsets) - set(expected))
                raise invalid(
                    f"Archive size {size} does not match the uploaded parts: "
                    f"missing parts at offsets {missing_parts[:5]}, unexpected parts at "
                    f"{extra[:5]}"
                )
            for offset in offsets:
                want = min(part_size, size - offset)
                have = doc["Parts"][str(offset)]["Length"]
                if have != want:
                    raise invalid(f"The part at offset {offset} has {have} bytes; expected "
                                  f"{want} for an archive of {size} bytes")
            computed = treehash.combine_hex(doc["Parts"][str(o)]["SHA256TreeHash"]
                                            for o in offsets)
            if computed != tree_hash:
                raise invalid(f"Checksum mismatch: the archive's tree hash is {computed}, "
                              f"the request says {tree_hash}")
            folder = self._upload_dir(vault, upload_id)
            parts = self.tmp_dir() / f"{upload_id}.parts"
            parts.mkdir(exist_ok=True)
            for offset in offsets:  # renames only: no byte is copied
                move_part(folder / f"{offset}.part", parts / f"{offset}.part")
            with self._lock:
                archive_id = self._store_archive(vault, parts, offsets, size, tree_hash,
                                                 doc["ArchiveDescription"])
                doc.update(ArchiveId=archive_id, CompletedSize=size, CompletedTreeHash=tree_hash,
                           Parts={})
                self._save_upload(vault, doc)
            return archive_id

    def upload_is_completed(self, vault: str, upload_id: str) -> bool:
        with self._lock:
            return bool(self._upload(vault, upload_id, allow_completed=True).get("ArchiveId"))

    def expire_upload(self, upload_id: str) -> None:
        """Make an upload vanish as Glacier's do after 24 h without activity (tests)."""
        with self._lock:
            for path in self.vaults_dir.glob(f"*/uploads/{upload_id}/upload.json"):
                doc = _read_json(path)
                doc["LastActivity"] = self.clock() - self.upload_expiry - 1
                _write_json(path, doc)
                return
        raise not_found(f"Multipart upload not found: {upload_id}")

    def abort_upload(self, vault: str, upload_id: str) -> None:
        with self._upload_lock(upload_id), self._lock:
            self._upload(vault, upload_id)
            shutil.rmtree(self._upload_dir(vault, upload_id))

    # --- jobs ------------------------------------------------------------------

    def _job_path(self, vault: str, job_id: str) -> Path:
        return self._vault_dir(vault) / "jobs" / f"{job_id}.json"

    def initiate_job(self, vault: str, params: Any) -> str:
        self._vault_dir(vault)
        if not isinstance(params, dict):
            raise invalid("The job parameters must be a JSON object")
        kind = params.get("Type")
        now = self.clock()
        job_id = new_id(92)
        doc: dict[str, Any] = {
            "JobId": job_id,
            "JobDescription": params.get("Description"),
            "VaultARN": self.arn(vault),
            "CreationDate": iso(now),
            "CreatedAt": now,
            "Seq": self._next_seq(),
            "SNSTopic": params.get("SNSTopic"),
        }
        if kind == "inventory-retrieval":
            fmt = params.get("Format", "JSON")
            if fmt not in limits.INVENTORY_FORMATS:
                raise invalid(f"Invalid inventory format: {fmt!r}")
            output = self._inventory(vault, fmt, now, params.get("InventoryRetrievalParameters"))
            out_path = self._vault_dir(vault) / "jobs" / f"{job_id}.output"
            out_path.write_bytes(output)
            doc.update(
                Action="InventoryRetrieval",
                InventorySizeInBytes=len(output),
                InventoryRetrievalParameters={"Format": fmt,
                                              **(params.get("InventoryRetrievalParameters") or {})},
                Format=fmt,
            )
        elif kind == "archive-retrieval":
            archive_id = params.get("ArchiveId")
            if not archive_id:
                raise missing("ArchiveId is required for an archive-retrieval job")
            archive = self.archive(vault, archive_id)
            tier = params.get("Tier", "Standard")
            if tier not in limits.TIERS:
                raise invalid(f"Invalid tier: {tier!r}")
            size = archive["Size"]
            first, last = 0, size - 1
            if params.get("RetrievalByteRange"):
                rng = params["RetrievalByteRange"]
                try:
                    limits.check_retrieval_range(rng, size)
                except InvalidInputError as exc:
                    raise invalid(f"Invalid RetrievalByteRange: {exc.message}") from None
                first, last = limits.parse_byte_range(rng)
            range_hash = None
            if first == 0 and last == size - 1:
                range_hash = archive["SHA256TreeHash"]
            elif limits.is_tree_hash_aligned(first, last, size):
                range_hash = self.archive_data(vault, archive_id).tree_hash(first, last)
            doc.update(
                Action="ArchiveRetrieval",
                ArchiveId=archive_id,
                ArchiveSizeInBytes=size,
                ArchiveSHA256TreeHash=archive["SHA256TreeHash"],
                SHA256TreeHash=range_hash,
                RetrievalByteRange=f"{first}-{last}",
                Tier=tier,
            )
        else:
            raise invalid(f"Invalid job type: {kind!r}; expected inventory-retrieval or "
                          "archive-retrieval")
        with self._lock:
            _write_json(self._job_path(vault, job_id), doc)
        return job_id

    def _inventory(self, vault: str, fmt: str, now: float, params: Any) -> bytes:
        archives = self._archives(vault)
        if isinstance(params, dict):
            start, end = params.get("StartDate"), params.get("EndDate")
            archives = [a for a in archives
                        if (not start or a["CreationDate"] >= start)
                        and (not end or a["CreationDate"] < end)]
        fields = ("ArchiveId", "ArchiveDescription", "CreationDate", "Size", "SHA256TreeHash")
        listing = [{f: a[f] for f in fields} for a in archives]
        self._update_vault(vault, LastInventoryDate=iso(now))
        if fmt == "CSV":
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(fields)
            for entry in listing:
                writer.writerow([entry[f] for f in fields])
            return buf.getvalue().encode("utf-8")
        doc = {"VaultARN": self.arn(vault), "InventoryDate": iso(now), "ArchiveList": listing}
        return json.dumps(doc).encode("utf-8")

    def _public_job(self, doc: dict[str, Any]) -> dict[str, Any]:
        done = self.clock() - doc["CreatedAt"] >= self.job_delay
        out = {k: v for k, v in doc.items() if k not in ("CreatedAt", "Format", "Seq")}
        out["Completed"] = done
        out["StatusCode"] = "Succeeded" if done else "InProgress"
        out["StatusMessage"] = "Succeeded" if done else None
        out["CompletionDate"] = iso(doc["CreatedAt"] + self.job_delay) if done else None
        for key in ("ArchiveId", "ArchiveSizeInBytes", "InventorySizeInBytes", "SHA256TreeHash",
                    "ArchiveSHA256TreeHash", "RetrievalByteRange", "Tier",
                    "InventoryRetrievalParameters"):
            out.setdefault(key, None)
        return out

    def describe_job(self, vault: str, job_id: str) -> dict[str, Any]:
        path = self._job_path(vault, job_id)
        if "/" in job_id or not path.is_file():
            raise not_found(f"Job not found: {job_id}")
        doc = _read_json(path)
        if self.clock() > doc["CreatedAt"] + self.job_delay + self.job_expiry:
            raise not_found(f"Job not found: {job_id} (its output expired)")
        return self._public_job(doc)

    def expire_job(self, job_id: str) -> None:
        """Make a job's output lapse, as Glacier's does 24 h after it finished (tests)."""
        with self._lock:
            for path in self.vaults_dir.glob(f"*/jobs/{job_id}.json"):
                doc = _read_json(path)
                doc["CreatedAt"] = self.clock() - self.job_delay - self.job_expiry - 1
                _write_json(path, doc)
                return
        raise not_found(f"Job not found: {job_id}")

    def list_jobs(self, vault: str, query: dict[str, str]) -> dict[str, Any]:
        folder = self._vault_dir(vault) / "jobs"
        raw = sorted((_read_json(p) for p in folder.glob("*.json")), key=lambda j: j["Seq"])
        live = self.clock() - self.job_delay - self.job_expiry
        jobs = [self._public_job(j) for j in raw if j["CreatedAt"] >= live]
        if "completed" in query:
            if query["completed"] not in ("true", "false"):
                raise invalid(f"Invalid completed value: {query['completed']!r}")
            want = query["completed"] == "true"
            jobs = [j for j in jobs if j["Completed"] is want]
        if "statuscode" in query:
            if query["statuscode"] not in ("InProgress", "Succeeded", "Failed"):
                raise invalid(f"Invalid statuscode: {query['statuscode']!r}")
            jobs = [j for j in jobs if j["StatusCode"] == query["statuscode"]]
        page, nxt = paginate(jobs, lambda j: j["JobId"], query.get("marker"), query.get("limit"),
                             50)
        return {"JobList": page, "Marker": nxt}

    def job_output(self, vault: str, job_id: str) -> JobOutputSource:
        job = self.describe_job(vault, job_id)
        if not job["Completed"]:
            raise invalid(f"The job is not currently available for download: {job_id}")
        if job["Action"] == "InventoryRetrieval":
            path = self._vault_dir(vault) / "jobs" / f"{job_id}.output"
            fmt = (job.get("InventoryRetrievalParameters") or {}).get("Format", "JSON")
            size = path.stat().st_size
            return JobOutputSource(Blob([(0, path)], size), 0, size, None, 0,
                                   "text/csv" if fmt == "CSV" else "application/json", None)
        first, last = limits.parse_byte_range(job["RetrievalByteRange"])
        archive = self.archive(vault, job["ArchiveId"])
        return JobOutputSource(
            self.archive_data(vault, job["ArchiveId"]), first, last - first + 1,
            job["SHA256TreeHash"], first, "application/octet-stream",
            archive["ArchiveDescription"],
        )


@dataclass(frozen=True)
class JobOutputSource:
    """Where a job's output bytes are: ``length`` bytes of ``blob`` from ``offset``."""

    blob: Blob
    offset: int
    length: int
    tree_hash: str | None
    archive_offset: int
    content_type: str
    archive_description: str | None

    def range_tree_hash(self, first: int, last: int) -> str | None:
        """The tree hash Glacier sends for output bytes ``first..last``, if aligned."""
        if self.tree_hash is None:
            return None
        if first == 0 and last == self.length - 1:
            return self.tree_hash
        if not limits.is_tree_hash_aligned(first, last, self.length):
            return None
        span = last - first + 1
        node = MIB
        while node < span:
            node *= 2
        if self.archive_offset % node:
            return None
        return self.blob.tree_hash(self.offset + first, self.offset + last)

    def chunks(self, first: int, last: int, block: int = MIB) -> Iterator[bytes]:
        return self.blob.chunks(self.offset + first, self.offset + last, block)

    def send(self, sock: socket.socket, first: int, last: int) -> int:
        return self.blob.send(sock, self.offset + first, self.offset + last)


def parse_content_range(value: str) -> tuple[int, int]:
    """``bytes FIRST-LAST/*`` as Glacier's UploadMultipartPart takes it."""
    try:
        unit, spec = value.strip().split(" ", 1)
        rng, _, _total = spec.partition("/")
        first_s, last_s = rng.split("-", 1)
        first, last = int(first_s), int(last_s)
    except ValueError:
        raise invalid(f"Invalid Content-Range: {value!r}; expected 'bytes FIRST-LAST/*'") from None
    if unit != "bytes" or first < 0 or last < first:
        raise invalid(f"Invalid Content-Range: {value!r}")
    return first, last
