"""``Store``: every write to glacierd's state goes through here.

Each method is one transaction, committed before it returns: when a caller
moves on, what it recorded survives a ``kill -9`` or a power cut
(``synchronous=FULL``). Methods return frozen snapshots, never live rows,
so no caller can change state behind the store's back.

Every statement is SQLAlchemy Core on the tables of ``glacierd.store.tables``;
the per-file and per-part ones run on the driver's cursor (``_direct_tx``,
``glacierd.store.direct``). There is no ORM: a session's set-up, unit of work
and reloads cost several times the statements themselves, and importing the
ORM and mapping the classes cost about 0.15 s of every command's start-up.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Executable,
    Text,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)

from glacierd import description, humanize, pathtext
from glacierd.errors import StoreError
from glacierd.pathtext import shown

from . import totals
from .db import create_store_engine, translated_errors
from .direct import CacheEntry, DirectConnection
from .schema import require_current
from .states import UNFINISHED, FileState, RestoreStatus, UploadStatus, utcnow
from .tables import (
    archives,
    bundle_members,
    daemon,
    events,
    files,
    folder_problems,
    inventories,
    jobs,
    parts,
    restore_segments,
    restores,
    upload_ciphers,
    uploads,
)
from .tables import totals as total_deltas


@dataclass(frozen=True)
class FileRecord:
    id: int
    path: str
    size: int
    mtime_ns: int
    inode: int
    state: str
    error: str | None
    attempts: int
    retry_at: dt.datetime | None


@dataclass(frozen=True)
class PartRecord:
    index: int
    offset: int
    length: int
    tree_hash: str
    adopted: bool
    sha256: str | None = None  # None: recorded before revision 0005 (a vault's part)


@dataclass(frozen=True)
class CipherRecord:
    """An encrypted upload's age parameters (``glacierd.encryption``): kept from
    before its first part until it ends. ``file_key`` is a secret."""

    file_key: bytes = field(repr=False)
    header: bytes
    nonce: bytes


@dataclass(frozen=True)
class NewUpload:
    """An upload's row as the uploader decides it before Initiate (what
    ``create_upload`` takes): handed to ``file_to_upload``, it is written in the
    transaction of the file's first look when there is nothing to resume."""

    vault: str
    token: str
    description: str
    part_size: int
    cipher: CipherRecord | None = None
    wire_size: int | None = None
    upload_id: str | None = None
    """Known before any request (an S3 one-PUT file's, ``Backend.one_request_id``):
    written with the row, which then starts as uploading, not initiating."""


@dataclass(frozen=True)
class UploadRecord:
    id: int
    file_id: int
    path: str
    vault: str
    upload_id: str | None
    token: str
    description: str
    part_size: int
    size: int
    mtime_ns: int
    inode: int
    status: str
    tree_hash: str | None
    parts: tuple[PartRecord, ...]
    wire_size: int | None = None
    """An encrypted upload's age file size (``size`` is the plaintext file's)."""
    cipher: CipherRecord | None = field(default=None, repr=False)
    plain_sha256: str | None = None

    @property
    def acked(self) -> dict[int, PartRecord]:
        return {p.index: p for p in self.parts}

    @property
    def stored_size(self) -> int:
        """The archive's size in the service: what its parts cover."""
        return self.size if self.wire_size is None else self.wire_size


@dataclass(frozen=True)
class ArchiveRecord:
    id: int
    archive_id: str | None
    vault: str
    size: int
    tree_hash: str
    source_path: str
    mtime_ns: int
    created_at: dt.datetime
    plain_size: int | None = None
    """Set for an encrypted archive: the file's size (``size`` is the age file's)."""
    plain_sha256: str | None = None
    bundle_archive_id: str | None = None
    """A packed file: the archive (object) of its bundle; its bytes are ``size``
    bytes at ``member_offset`` of it, of SHA-256 ``plain_sha256``."""
    member_offset: int | None = None
    bundle_size: int | None = None
    description: str | None = None
    """Set where a caller needs it (a bundle's, to learn its host and token)."""

    @property
    def encrypted(self) -> bool:
        return self.plain_size is not None

    @property
    def packed(self) -> bool:
        return self.bundle_archive_id is not None

    @property
    def file_size(self) -> int:
        return self.size if self.plain_size is None else self.plain_size


@dataclass(frozen=True)
class Adoption:
    """An archive an inventory (or a bucket's listing) holds and the catalog does
    not, to add (``Store.adopt_archives``)."""

    vault: str
    archive_id: str
    size: int
    tree_hash: str
    description: str
    source_path: str
    mtime_ns: int
    created_at: dt.datetime
    plain_size: int | None = None
    """An encrypted archive's file size (from its sealed description; its plaintext
    SHA-256 is not known until restored)."""
    manifest_ids: tuple[str, ...] = ()
    link_file: bool = True
    """False for another host's archive: a file of this host at the same path is
    not the file it holds."""
    is_bundle: bool = False
    event: tuple[str, str, str] | None = None
    """(level, kind, message) recorded with it, if it is adopted."""


_UPLOAD_ROWS = (select(uploads.c.id, uploads.c.file_id, files.c.path, uploads.c.vault,
                       uploads.c.upload_id, uploads.c.token, uploads.c.description,
                       uploads.c.part_size, uploads.c.size, uploads.c.mtime_ns, uploads.c.inode,
                       uploads.c.status, uploads.c.tree_hash, uploads.c.wire_size,
                       uploads.c.plain_sha256, upload_ciphers.c.file_key,
                       upload_ciphers.c.header, upload_ciphers.c.nonce)
                .join(files, files.c.id == uploads.c.file_id)
                .outerjoin(upload_ciphers, upload_ciphers.c.upload_row == uploads.c.id))
_PARTS_OF = (select(parts.c.upload_id, parts.c.index, parts.c.offset, parts.c.length,
                    parts.c.tree_hash, parts.c.adopted, parts.c.sha256)
             .where(parts.c.upload_id.in_(bindparam("uploads", expanding=True)))
             .order_by(parts.c.upload_id, parts.c.index))


_UPLOAD_BY_ID = _UPLOAD_ROWS.where(uploads.c.id == bindparam("upload"))


def _uploads(conn: Connection | DirectConnection, query: Executable,
             params: dict[str, Any] | None = None) -> list[UploadRecord]:
    """The uploads ``query`` (``_UPLOAD_ROWS`` narrowed) finds, with their parts
    and path: Core queries, built once where they are hot (an ORM load of an
    upload, its file and its parts cost several times more, once a small file)."""
    rows = conn.execute(query, params or {}).all()
    if not rows:
        return []
    parts: dict[int, list[PartRecord]] = {r.id: [] for r in rows}
    for start in range(0, len(rows), _BATCH):
        for upload_row, index, offset, length, tree_hash, adopted, sha256 in conn.execute(
                _PARTS_OF, {"uploads": [r.id for r in rows[start:start + _BATCH]]}):
            parts[upload_row].append(PartRecord(index, offset, length, tree_hash, adopted,
                                                sha256))
    return [UploadRecord(
        r.id, r.file_id, r.path, r.vault, r.upload_id, r.token, r.description, r.part_size,
        r.size, r.mtime_ns, r.inode, UploadStatus(r.status), r.tree_hash, tuple(parts[r.id]),
        r.wire_size,
        CipherRecord(r.file_key, r.header, r.nonce) if r.file_key is not None else None,
        r.plain_sha256) for r in rows]


def _host_in(text: str | None) -> str | None:
    """The host an archive's description names (None: none, or not glacierd's)."""
    public = description.public_part(text) if text else None
    return public.host if public is not None else None


def _file_by_id(conn: Connection, file_id: int) -> FileRecord:
    row = conn.execute(_FILE_ROWS.where(files.c.id == file_id)).first()
    if row is None:
        raise StoreError(f"no file with id {file_id}")
    return FileRecord(*row)


_BATCH = 500  # paths in one IN (...): well below SQLite's bound on variables
_FILE_ROWS = select(files.c.id, files.c.path, files.c.size, files.c.mtime_ns, files.c.inode,
                    files.c.state, files.c.error, files.c.attempts, files.c.retry_at)
_QUEUE_ORDER = (FileState.UPLOADING, FileState.PENDING, FileState.FAILED)
"""The queue's order (``Store.pending_files``): unfinished uploads first."""
_QUEUE_PAGE = (_FILE_ROWS.where(files.c.host == bindparam("host"),
                                files.c.state == bindparam("state"),
                                files.c.id > bindparam("after"),
                                bindparam("due") | (files.c.retry_at <= bindparam("now")))
               .order_by(files.c.id).limit(bindparam("limit")))

# The per-part statements, built once (each part commits its own transaction).
_RECORDED_PART = select(parts.c.tree_hash, parts.c.offset).where(
    parts.c.upload_id == bindparam("upload"), parts.c.index == bindparam("index"))
_NEW_PART = insert(parts)
_BYTES_ACKED = update(uploads).where(uploads.c.id == bindparam("upload")).values(
    bytes_acked=uploads.c.bytes_acked + bindparam("length"))

# The per-file statements, built once too: building one (coercions, cache keys)
# cost more than running it, about 17 times a small file.
_FILES_BY_PATH = _FILE_ROWS.where(files.c.host == bindparam("host"),
                                  files.c.path.in_(bindparam("paths", expanding=True)))
_FILE_BY_PATH = _FILE_ROWS.where(files.c.host == bindparam("host"),
                                 files.c.path == bindparam("path"))
_NEW_FILE_IDS = insert(files).returning(files.c.id, sort_by_parameter_order=True)
_UPDATE_FILE = update(files).where(files.c.id == bindparam("file"))
_NEW_UPLOAD = insert(uploads).returning(uploads.c.id)
_FILE_UPLOADING = (update(files).where(files.c.id == bindparam("file"))
                   .values(state=FileState.UPLOADING.value).returning(files.c.path))
_UPDATE_UPLOAD = update(uploads).where(uploads.c.id == bindparam("upload"))
_FINISH_ROW = (select(uploads.c.vault, uploads.c.size, uploads.c.tree_hash, uploads.c.description,
                      uploads.c.mtime_ns, uploads.c.file_id, files.c.path, uploads.c.wire_size,
                      uploads.c.plain_sha256, uploads.c.manifest_ids, files.c.is_bundle,
                      files.c.size.label("file_size"), files.c.mtime_ns.label("file_mtime"))
               .join(files, files.c.id == uploads.c.file_id)
               .where(uploads.c.id == bindparam("upload")))
_ARCHIVE_COLUMNS = (archives.c.id, archives.c.archive_id, archives.c.vault, archives.c.size,
                    archives.c.tree_hash, archives.c.source_path, archives.c.mtime_ns,
                    archives.c.created_at, archives.c.plain_size, archives.c.plain_sha256)
_ARCHIVE_BY_ID = select(*_ARCHIVE_COLUMNS).where(archives.c.archive_id == bindparam("archive_id"))
_BUNDLES = archives.alias("bundles")
_LISTED_ARCHIVES = (select(*_ARCHIVE_COLUMNS, _BUNDLES.c.archive_id, archives.c.member_offset,
                           _BUNDLES.c.size, archives.c.description)
                    .outerjoin_from(archives, _BUNDLES,
                                    _BUNDLES.c.id == archives.c.bundle_row))
"""Archives as ``ArchiveRecord``s (a packed file's bundle joined), and, last, each
one's description (whose host a listing may filter on)."""
_RECORD_FIELDS = len(_LISTED_ARCHIVES.selected_columns) - 1


def _listed(row: Any) -> ArchiveRecord:
    """A ``_LISTED_ARCHIVES`` row (with any columns added after it) as a record."""
    return ArchiveRecord(*tuple(row)[:_RECORD_FIELDS])


_NEW_ARCHIVE = insert(archives).returning(archives.c.id)
_UPLOAD_DONE = (update(uploads).where(uploads.c.id == bindparam("upload"))
                .values(status=UploadStatus.DONE.value, error=None, bytes_in_flight=0,
                        eta_seconds=0.0))
_FILE_ARCHIVED = (update(files).where(files.c.id == bindparam("file"))
                  .values(state=FileState.ARCHIVED.value, error=None, retry_at=None))
_FILE_PENDING = (update(files).where(files.c.id == bindparam("file"))
                 .values(state=FileState.PENDING.value))
_NEW_EVENT = insert(events)
_NEW_CIPHER = insert(upload_ciphers)
_DROP_CIPHER = delete(upload_ciphers).where(upload_ciphers.c.upload_row == bindparam("upload"))
_NEWEST_ARCHIVE = (select(*_ARCHIVE_COLUMNS)
                   .where(archives.c.file_id == bindparam("file"), archives.c.deleted_at.is_(None))
                   .order_by(archives.c.id.desc()).limit(1))
_LIVE_ARCHIVES = select(archives.c.id).where(archives.c.file_id == bindparam("file"),
                                             archives.c.deleted_at.is_(None))
_OPEN_STATUSES = [s.value for s in (*UNFINISHED, UploadStatus.UNCONFIRMED)]
_OPEN_UPLOADS = select(uploads.c.id).where(uploads.c.file_id == bindparam("file"),
                                           uploads.c.status.in_(_OPEN_STATUSES))
_WHAT_FILE_HAS = select(_LIVE_ARCHIVES.exists(), _OPEN_UPLOADS.exists())
"""Whether a file has a live archive, and an open upload: one statement where a
file queued by the watcher and never uploaded has neither."""
_OPEN_UPLOADS_OF = (_UPLOAD_ROWS.where(uploads.c.file_id == bindparam("file"),
                                       uploads.c.status.in_(_OPEN_STATUSES))
                    .order_by(uploads.c.id.desc()))


class Store:
    """The state store. Thread-safe: each call is its own transaction, on a
    connection of the engine's pool."""

    def __init__(self, engine: Engine, url: str, host: str | None = None) -> None:
        from glacierd.hostname import this_host

        self.engine = engine
        self.url = url
        self.host = host or this_host()
        """The machine whose files this store works on: a catalog on PostgreSQL may
        hold several hosts' files (each row knows its host)."""
        self._compiled: dict[tuple[int, tuple[str, ...]], CacheEntry] = {}

    @classmethod
    def open(cls, url: str, *, check_schema: bool = True, read_only: bool = False,
             host: str | None = None) -> Store:
        """Open the database at ``url``; refuses one whose schema is not current.
        ``read_only``: for commands that only read (see ``create_store_engine``).
        ``host``: whose files (default: this machine's)."""
        with translated_errors(url):
            engine = create_store_engine(url, read_only=read_only)
            if check_schema:
                require_current(engine, url.removeprefix("sqlite:///"))
        return cls(engine, url, host)

    def close(self) -> None:
        self.release_host()
        self.engine.dispose()

    _host_lock: Connection | None = None

    def claim_host(self) -> bool:
        """This host's daemon, alone on a shared catalog: a PostgreSQL session lock on
        the host's name, held until ``release_host`` (or until the session ends:
        a daemon that dies lets go with its connection). False if another session
        holds it — a daemon of the same host name on another machine. On SQLite
        (one machine) the state folder's instance lock does this: True."""
        if self.engine.dialect.name != "postgresql" or self._host_lock is not None:
            return True
        with translated_errors(self.url):
            conn = self.engine.connect()
            got = conn.execute(text("SELECT pg_try_advisory_lock(hashtext(:key))"),
                               {"key": f"glacierd daemon {self.host}"}).scalar()
            conn.commit()
        if not got:
            conn.close()
            return False
        self._host_lock = conn
        return True

    def release_host(self) -> None:
        if self._host_lock is not None:
            with contextlib.suppress(Exception):  # the session may be gone already
                self._host_lock.close()
            self._host_lock = None

    @contextmanager
    def _core_tx(self) -> Iterator[Connection]:
        """A transaction on SQLAlchemy's connection: every store call but the
        per-file and per-part ones (``_direct_tx``)."""
        with translated_errors(self.url), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _direct_tx(self) -> Iterator[DirectConnection]:
        """A transaction whose statements run on the driver's cursor (``direct``):
        the per-file path, where SQLAlchemy's execution of each statement cost
        about three times the statement. Only module-level statements here."""
        with translated_errors(self.url), self.engine.begin() as conn:
            direct = DirectConnection(conn, self._compiled)
            try:
                yield direct
            finally:
                direct.close()

    # --- files ---------------------------------------------------------------------

    def file_seen(self, path: str, size: int, mtime_ns: int, inode: int) -> FileRecord:
        """Record that ``path`` exists with this size and mtime (pending if new or changed)."""
        return self.files_seen([(path, size, mtime_ns, inode)])[0]

    def files_seen(self, seen: Sequence[tuple[str, int, int, int]]) -> list[FileRecord]:
        """``file_seen`` for many files (path, size, mtime_ns, inode) in one transaction:
        the watcher queues a whole settle pass at once, not a synced commit a file.

        New paths are pending; a changed file is pending again (unless an upload of it
        is under way, which notices the change itself), its error and retry cleared;
        a file that was gone and is back is pending. Returns the records, in order.
        """
        with self._core_tx() as conn:
            return self._files_seen(conn, seen)

    def _files_seen(self, conn: Connection | DirectConnection,
                    seen: Sequence[tuple[str, int, int, int]],
                    created: set[str] | None = None) -> list[FileRecord]:
        """``created``: filled with the paths given rows here."""
        records: dict[str, FileRecord] = {}
        for start in range(0, len(seen), _BATCH):
            chunk = seen[start:start + _BATCH]
            found = (conn.execute(_FILE_BY_PATH, {"path": chunk[0][0], "host": self.host})
                     if len(chunk) == 1 else conn.execute(
                         _FILES_BY_PATH, {"paths": [path for path, *_ in chunk],
                                          "host": self.host}))
            records.update((r.path, FileRecord(*r)) for r in found)
            new: dict[str, tuple[int, int, int]] = {}
            for path, size, mtime, inode in chunk:
                row = records.get(path)
                if row is None:
                    new[path] = (size, mtime, inode)
                    continue
                values: dict[str, Any] = {}
                if (row.size, row.mtime_ns, row.inode) != (size, mtime, inode):
                    values = {"size": size, "mtime_ns": mtime, "inode": inode,
                              "error": None, "retry_at": None}
                    if row.state != FileState.UPLOADING:
                        values["state"] = FileState.PENDING.value
                elif row.state == FileState.GONE:  # it came back
                    values = {"state": FileState.PENDING.value, "error": None}
                if values:
                    conn.execute(_UPDATE_FILE, {"file": row.id, **values})
                    records[path] = replace(row, **values)
            if new:  # their records from what was written: no second look
                ids = conn.execute(_NEW_FILE_IDS, [
                    {"host": self.host, "path": path, "size": size, "mtime_ns": mtime,
                     "inode": inode, "state": FileState.PENDING.value, "attempts": 0}
                    for path, (size, mtime, inode) in new.items()]).scalars().all()
                for file_id, (path, (size, mtime, inode)) in zip(ids, new.items(),
                                                                 strict=True):
                    records[path] = FileRecord(file_id, path, size, mtime, inode,
                                               FileState.PENDING.value, None, 0, None)
                if created is not None:
                    created.update(new)
        return [records[path] for path, *_ in seen]

    def file(self, path: str) -> FileRecord | None:
        with self._core_tx() as conn:
            row = conn.execute(_FILE_BY_PATH, {"host": self.host, "path": path}).first()
            return FileRecord(*row) if row else None

    def file_by_id(self, file_id: int) -> FileRecord:
        with self._core_tx() as conn:
            return _file_by_id(conn, file_id)

    def set_file_state(self, file_id: int, state: FileState) -> None:
        with self._core_tx() as conn:
            conn.execute(update(files).where(files.c.id == file_id).values(state=state.value))

    def record_failure(self, file_id: int, error: str, retry_at: dt.datetime | None,
                       kind: str = "upload-failed") -> FileRecord:
        """Mark a file failed with its error and next retry; it is never dropped."""
        with self._core_tx() as conn:
            row = conn.execute(update(files).where(files.c.id == file_id).values(
                state=FileState.FAILED.value, error=error, retry_at=retry_at,
                attempts=files.c.attempts + 1).returning(*_FILE_ROWS.selected_columns)).first()
            if row is None:
                raise StoreError(f"no file with id {file_id}")
            record = FileRecord(*row)
            conn.execute(_NEW_EVENT, {"level": "error", "kind": kind, "file_id": file_id,
                                      "message": f"{shown(record.path)}: {error}"})
            return record

    def file_gone(self, file_id: int, reason: str) -> None:
        """The file vanished or is no longer a regular file: out of the queue, not a
        failure to retry (it is queued again if it comes back)."""
        with self._core_tx() as conn:
            if _file_by_id(conn, file_id).state == FileState.ARCHIVED:
                return  # its backup stands; `verify` reports the local file missing
            conn.execute(update(files).where(files.c.id == file_id).values(
                state=FileState.GONE.value, error=reason, retry_at=None))
            conn.execute(_NEW_EVENT, {"level": "info", "kind": "file-gone", "message": reason,
                                      "file_id": file_id})

    def set_failed_files(self, state: FileState, paths: Sequence[str] | None,
                         now: dt.datetime) -> list[FileRecord]:
        """``glacierd retry`` (FAILED: due now) and ``forget`` (FORGOTTEN) on failed
        files: all of them, or those at or below ``paths``."""
        with self._core_tx() as conn:
            query = _FILE_ROWS.where(files.c.host == self.host,
                                     files.c.state == FileState.FAILED.value)
            rows = [FileRecord(*r) for r in conn.execute(query.order_by(files.c.path))
                    if paths is None or any(r.path == p or r.path.startswith(p.rstrip("/") + "/")
                                            for p in paths)]
            if state == FileState.FORGOTTEN:
                rows = [replace(r, state=FileState.FORGOTTEN.value, retry_at=None) for r in rows]
            else:
                rows = [replace(r, retry_at=now) for r in rows]
            for row in rows:
                conn.execute(_UPDATE_FILE, {"file": row.id, "state": row.state,
                                            "retry_at": row.retry_at})
                if state == FileState.FORGOTTEN:
                    conn.execute(_NEW_EVENT, {
                        "level": "info", "kind": "forgotten", "file_id": row.id,
                        "message": f"{shown(row.path)}: no longer retried (forget)"})
            return rows

    def record_empty_archive(self, file_id: int, vault: str, mtime_ns: int,
                             description: str | None = None) -> ArchiveRecord:
        """Glacier refuses empty archives: an empty file is archived with no archive id
        (its description, kept here only, still carries its mode)."""
        from glacierd.glacier.treehash import tree_hash

        with self._core_tx() as conn:
            path = _file_by_id(conn, file_id).path
            created, empty_hash = utcnow(), tree_hash(b"")
            row_id = conn.execute(insert(archives).values(
                archive_id=None, vault=vault, size=0, tree_hash=empty_hash,
                description=description, source_path=path, mtime_ns=mtime_ns, file_id=file_id,
                created_at=created).returning(archives.c.id)).scalar_one()
            conn.execute(_FILE_ARCHIVED, {"file": file_id})
            conn.execute(_NEW_EVENT, {
                "level": "info", "kind": "archived", "file_id": file_id,
                "message": f"{shown(path)}: empty file, recorded without an archive"})
            return ArchiveRecord(row_id, None, vault, 0, empty_hash, path, mtime_ns, created)

    # --- uploads ---------------------------------------------------------------------

    # The per-file path (create, set id, set completing) builds the snapshot from
    # what it wrote: reloading the row and its parts would cost more than the
    # statements themselves, once a file.

    def create_upload(self, file_id: int, vault: str, token: str, description: str,
                      part_size: int, size: int, mtime_ns: int, inode: int, *,
                      cipher: CipherRecord | None = None,
                      wire_size: int | None = None,
                      manifest_ids: Sequence[str] = (),
                      upload_id: str | None = None) -> UploadRecord:
        """The upload row (and an encrypted one's age parameters, in the same
        transaction: invariant 1 holds for them too). ``upload_id``: one known
        without a request (``NewUpload.upload_id``)."""
        plan = NewUpload(vault, token, description, part_size, cipher, wire_size, upload_id)
        with self._direct_tx() as conn:
            return _insert_upload(conn, file_id, plan, size, mtime_ns, inode, manifest_ids)

    def _update_upload(self, upload: UploadRecord, **values: Any) -> UploadRecord:
        """Change an upload's columns; the snapshot is the one given, so changed."""
        with self._direct_tx() as conn:
            conn.execute(_UPDATE_UPLOAD, {"upload": upload.id, **values})
        return replace(upload, **values)

    def set_upload_id(self, upload: UploadRecord, upload_id: str) -> UploadRecord:
        """docs/design.md invariant 1: committed before the first part is sent."""
        return self._update_upload(upload, upload_id=upload_id,
                                   status=UploadStatus.UPLOADING.value)

    def part_acknowledged(self, upload: UploadRecord, index: int, offset: int, length: int,
                          tree_hash: str, *, sha256: str | None = None,
                          adopted: bool = False, completing: str | None = None) -> None:
        """docs/design.md invariant 2: after Glacier's 2xx, in its own committed transaction.
        ``completing``: the archive's final hash, when this was the one part missing
        (a small file): invariant 5's record (``set_completing``) in the same commit."""
        with self._direct_tx() as conn:
            _acknowledge(conn, upload.id, PartRecord(index, offset, length, tree_hash, adopted,
                                                     sha256), completing)

    def forget_parts(self, upload: UploadRecord, indices: Sequence[int]) -> UploadRecord:
        """Parts recorded as acknowledged that the service no longer lists: they
        are sent again (docs/design.md invariant 3: the resume plan, not the record, decides)."""
        with self._core_tx() as conn:
            lost = (parts.c.upload_id == upload.id, parts.c.index.in_(list(indices)))
            length = conn.execute(select(func.coalesce(func.sum(parts.c.length), 0))
                                  .where(*lost)).scalar_one()
            conn.execute(delete(parts).where(*lost))
            conn.execute(update(uploads).where(uploads.c.id == upload.id)
                         .values(bytes_acked=uploads.c.bytes_acked - length))
            conn.execute(_NEW_EVENT, {
                "level": "warning", "kind": "part-lost", "file_id": upload.file_id,
                "message": f"{shown(upload.path)}: parts {sorted(indices)[:10]} were "
                           "acknowledged but the service no longer lists them: sending "
                           "them again"})
            return _uploads(conn, _UPLOAD_BY_ID, {"upload": upload.id})[0]

    def set_completing(self, upload: UploadRecord, tree_hash: str,
                       plain_sha256: str | None = None) -> UploadRecord:
        """docs/design.md invariant 5: the final hash is recorded before Complete is
        sent (and an encrypted file's plaintext SHA-256 with it)."""
        return self._update_upload(upload, status=UploadStatus.COMPLETING.value,
                                   tree_hash=tree_hash, plain_sha256=plain_sha256)

    def finish_upload(self, upload: UploadRecord, archive_id: str, *,
                      made_by: PartRecord | None = None) -> ArchiveRecord:
        """The archive id, the upload's end and the file's state: one transaction.
        ``made_by``: the part whose 2xx made the object (an S3 one-PUT file: no
        Complete is sent), recorded here with the upload's final hash
        (``upload.tree_hash``) and plaintext SHA-256, as ``part_acknowledged`` and
        ``set_completing`` would have: nothing remote happened in between."""
        with self._direct_tx() as conn:
            if made_by is not None:
                assert upload.tree_hash is not None
                _acknowledge(conn, upload.id, made_by, upload.tree_hash, upload.plain_sha256)
            row = conn.execute(_FINISH_ROW, {"upload": upload.id}).one()
            assert row.tree_hash is not None
            found = conn.execute(_ARCHIVE_BY_ID, {"archive_id": archive_id}).first()
            encrypted = row.wire_size is not None
            stored = row.wire_size if encrypted else row.size
            if found is None:
                created = utcnow()
                plain_size = row.size if encrypted else None
                new_id = conn.execute(_NEW_ARCHIVE, {
                    "archive_id": archive_id, "vault": row.vault, "size": stored,
                    "tree_hash": row.tree_hash, "description": row.description,
                    "source_path": row.path, "mtime_ns": row.mtime_ns, "file_id": row.file_id,
                    "upload_id": upload.id, "created_at": created, "plain_size": plain_size,
                    "plain_sha256": row.plain_sha256,
                    "manifest_ids": row.manifest_ids, "is_bundle": row.is_bundle}).scalar_one()
                archive = ArchiveRecord(new_id, archive_id, row.vault, stored, row.tree_hash,
                                        row.path, row.mtime_ns, created, plain_size,
                                        row.plain_sha256)
            else:
                archive = ArchiveRecord(**found._asdict())
            conn.execute(_UPLOAD_DONE, {"upload": upload.id})
            if encrypted:
                conn.execute(_DROP_CIPHER, {"upload": upload.id})  # the file key: gone
            newer = (row.file_size, row.file_mtime) != (row.size, row.mtime_ns)
            conn.execute(_FILE_PENDING if newer else _FILE_ARCHIVED,  # pending: a newer version
                         {"file": row.file_id})
            conn.execute(_NEW_EVENT, {
                "level": "info", "kind": "archived", "file_id": row.file_id,
                "message": f"{shown(row.path)}: archived ({humanize.size(row.size)})"})
            if row.is_bundle:
                _archive_members(conn.connection, row.file_id, archive.id, row.vault)
            return archive

    # --- bundles (glacierd.packer) ------------------------------------------------------

    def small_pending(self, below: int, now: dt.datetime,
                      limit: int = 100_000) -> list[FileRecord]:
        """Files to pack: pending (or failed and due) files of 1 to ``below - 1``
        bytes that are not bundles, oldest first."""
        with self._core_tx() as conn:
            rows = conn.execute(_FILE_ROWS.add_columns(files.c.first_seen).where(
                files.c.host == self.host,
                (files.c.state == FileState.PENDING)
                | ((files.c.state == FileState.FAILED) & (files.c.retry_at <= now)),
                files.c.is_bundle.is_(False), files.c.size > 0, files.c.size < below,
            ).order_by(files.c.first_seen, files.c.id).limit(limit)).all()
            return [FileRecord(*r[:9]) for r in rows]

    def small_pending_summary(self, below: int) -> tuple[dt.datetime | None, int, int]:
        """(when the longest-waiting file to pack was first seen, how many wait, their
        bytes): whether a bundle is due (``[pack] max_wait``, ``target_mib``)."""
        with self._core_tx() as conn:
            oldest, count, size = conn.execute(select(
                func.min(files.c.first_seen), func.count(), func.coalesce(func.sum(files.c.size), 0)
            ).where(files.c.host == self.host, files.c.state == FileState.PENDING,
                    files.c.is_bundle.is_(False), files.c.size > 0, files.c.size < below)).one()
            return oldest, int(count), int(size)

    def create_bundle(self, path: str, size: int, mtime_ns: int, inode: int,
                      members: Sequence[PackedMember]) -> FileRecord:
        """A bundle written and fsynced at ``path``: its row (pending, uploaded like
        any file), its member list, and its members packed — one transaction,
        before its first part. A member whose row has moved on meanwhile (a newer
        version seen) keeps its state: the bundle holds the older version."""
        with self._core_tx() as conn:
            now = utcnow()
            bundle_id = conn.execute(insert(files).returning(files.c.id), {
                "host": self.host, "path": path, "size": size, "mtime_ns": mtime_ns, "inode": inode,
                "state": FileState.PENDING.value, "attempts": 0, "first_seen": now,
                "updated_at": now, "is_bundle": True}).scalar_one()
            conn.execute(insert(bundle_members), [
                {"bundle_file": bundle_id, "file_id": m.file_id, "path": m.path,
                 "offset": m.offset, "size": m.size, "mtime_ns": m.mtime_ns, "inode": m.inode,
                 "mode": m.mode, "sha256": m.sha256, "tree_hash": m.tree_hash,
                 "description": m.description, "replaces": m.replaces} for m in members])
            for m in members:
                conn.execute(update(files).where(
                    files.c.id == m.file_id, files.c.size == m.size, files.c.mtime_ns == m.mtime_ns,
                    files.c.state.in_([FileState.PENDING, FileState.FAILED])).values(
                    state=FileState.PACKED.value, error=None, retry_at=None))
            conn.execute(_NEW_EVENT, {
                "level": "info", "kind": "packed", "file_id": bundle_id,
                "message": f"{shown(path)}: {humanize.count(len(members), 'file')} packed "
                           f"({humanize.size(size)})"})
            return FileRecord(bundle_id, path, size, mtime_ns, inode, FileState.PENDING, None,
                              0, None)

    def bundle_members(self, bundle_file: int) -> list[PackedMember]:
        with self._core_tx() as conn:
            member = bundle_members.c
            rows = conn.execute(select(
                member.file_id, member.path, member.offset, member.size, member.mtime_ns,
                member.inode, member.mode, member.sha256, member.tree_hash, member.description,
                member.replaces).where(
                member.bundle_file == bundle_file).order_by(member.offset)).all()
            return [PackedMember(**r._mapping) for r in rows]

    def unfinished_bundles(self) -> list[FileRecord]:
        """Bundles not archived yet (the daemon uploads them; their files are here)."""
        with self._core_tx() as conn:
            rows = conn.execute(_FILE_ROWS.where(
                files.c.host == self.host, files.c.is_bundle.is_(True),
                files.c.state.not_in([FileState.ARCHIVED, FileState.GONE]))).all()
            return [FileRecord(*r) for r in rows]

    def unpack(self, bundle_file: int, reason: str) -> int:
        """A bundle that will never be archived (its file was lost before it was):
        its members still packed go back in the queue; the bundle is gone."""
        with self._core_tx() as conn:
            members = select(bundle_members.c.file_id).where(
                bundle_members.c.bundle_file == bundle_file)
            back = conn.execute(update(files).where(
                files.c.id.in_(members), files.c.state == FileState.PACKED).values(
                state=FileState.PENDING.value)).rowcount
            conn.execute(update(files).where(files.c.id == bundle_file).values(
                state=FileState.GONE.value, error=reason))
            conn.execute(_NEW_EVENT, {"level": "warning", "kind": "unpacked",
                                      "file_id": bundle_file,
                                      "message": f"bundle {bundle_file}: {reason}; "
                                                 f"{humanize.count(back, 'file')} queued again"})
            return int(back)

    def end_upload(self, upload: UploadRecord, status: UploadStatus, reason: str) -> None:
        """Abandon an upload (file changed, upload id gone) or mark it unconfirmed."""
        assert status in (UploadStatus.ABANDONED, UploadStatus.UNCONFIRMED)
        with self._core_tx() as conn:
            file_id = conn.execute(update(uploads).where(uploads.c.id == upload.id).values(
                status=status.value, error=reason).returning(uploads.c.file_id)).scalar_one()
            # an abandoned upload's file key is never needed again
            conn.execute(_DROP_CIPHER, {"upload": upload.id})
            conn.execute(_NEW_EVENT, {
                "level": "warning", "kind": f"upload-{status.value}", "file_id": file_id,
                "message": f"{shown(_file_by_id(conn, file_id).path)}: {reason}"})

    def upload_state(self, file_id: int) -> UploadState:
        """What an upload of this file must know first, in one transaction: its newest
        live archive, its unconfirmed upload and its unfinished upload (or Nones)."""
        with self._direct_tx() as conn:
            return _upload_state(conn, file_id)

    def file_to_upload(
        self, path: str, size: int, mtime_ns: int, inode: int,
        start: Callable[[FileRecord, UploadState], NewUpload | None] | None = None,
    ) -> tuple[FileRecord, UploadState, UploadRecord | None]:
        """``file_seen`` and ``upload_state`` in one transaction: the uploader's first
        look at a file (nothing remote happens between them). ``start`` is asked,
        in that transaction, for the upload to begin given the record and state
        (None: none, or not this way); its row is written there too and returned
        third: a small file's first look and its upload's row are one synced
        commit, and the row is still committed before Initiate (invariant 1).
        ``start`` must do no I/O: it runs while the database is locked for writing."""
        with self._direct_tx() as conn:
            created: set[str] = set()
            record = self._files_seen(conn, [(path, size, mtime_ns, inode)], created)[0]
            # a row just made: no archive or upload can refer to it yet
            state = (None, None, None) if created else _upload_state(conn, record.id)
            plan = start(record, state) if start is not None else None
            if plan is None:
                return record, state, None
            return record, state, _insert_upload(conn, record.id, plan, size, mtime_ns, inode)

    def unfinished_uploads(self) -> list[UploadRecord]:
        """This host's uploads under way (another host's files are not here), oldest first."""
        with self._core_tx() as conn:
            return _uploads(conn, _UPLOAD_ROWS.where(
                files.c.host == self.host, uploads.c.status.in_([s.value for s in UNFINISHED]))
                .order_by(uploads.c.id))

    def upload(self, upload_id: int) -> UploadRecord:
        with self._core_tx() as conn:
            found = _uploads(conn, _UPLOAD_BY_ID, {"upload": upload_id})
        if not found:
            raise StoreError(f"no upload with id {upload_id}")
        return found[0]

    def update_progress(self, upload: UploadRecord, in_flight: int, rate_bps: float,
                        eta_seconds: float | None) -> None:
        with self._core_tx() as conn:
            conn.execute(update(uploads).where(uploads.c.id == upload.id).values(
                bytes_in_flight=in_flight, rate_bps=rate_bps, eta_seconds=eta_seconds,
                progress_at=utcnow()))

    # --- catalog and events ----------------------------------------------------------

    def archives(self, path_prefix: str | None = None,
                 host: str | None = None) -> list[ArchiveRecord]:
        """Live archives (at or below a path); ``host``: only those that host made
        (its name is in their descriptions: a vault or bucket several hosts back
        up to gives a rebuilt catalog everyone's archives)."""
        return list(self.each_archive(path_prefix, host))

    def each_archive(self, path_prefix: str | None = None,
                     host: str | None = None) -> Generator[ArchiveRecord, None, None]:
        """``archives`` one at a time, in the same order, read as they are printed
        (a listing of a million archives in constant memory). The caller must
        exhaust or close it: it holds a read transaction until then."""
        # a bundle's own archive is not a file of the user's: its files are listed
        query = _LISTED_ARCHIVES.where(archives.c.deleted_at.is_(None),
                                       archives.c.is_bundle.is_(False))
        if path_prefix:
            query = query.where(*_under(archives.c.source_path, path_prefix, self.engine))
        query = query.order_by(archives.c.source_path, archives.c.created_at)
        with self._core_tx() as conn:  # Core: a million archives in seconds, not 40
            for row in conn.execution_options(yield_per=1000).execute(query):
                if host is None or _host_in(row[-1]) == host:
                    yield _listed(row)

    def catalog_size(self) -> tuple[int, int]:
        """(live archives, distinct paths) of what ``archives()`` lists, counted by the
        database: a rebuilt catalog may hold millions."""
        live = (archives.c.deleted_at.is_(None), archives.c.is_bundle.is_(False))
        with self._core_tx() as conn:  # GROUP BY: twice as fast as COUNT(DISTINCT) here
            live_archives = conn.execute(select(func.count()).where(*live)).scalar_one()
            paths = conn.execute(select(func.count()).select_from(
                select(archives.c.source_path).where(*live).group_by(archives.c.source_path)
                .subquery())).scalar_one()
            return int(live_archives), int(paths)

    def event(self, level: str, kind: str, message: str, file_id: int | None = None) -> None:
        with self._core_tx() as conn:
            conn.execute(_NEW_EVENT, {"level": level, "kind": kind, "message": message,
                                      "file_id": file_id})

    def events(self, kinds: Sequence[str] | None = None, limit: int = 100) -> list[tuple[str, str]]:
        with self._core_tx() as conn:
            query = (select(events.c.kind, events.c.message).order_by(events.c.id.desc())
                     .limit(limit))
            if kinds:
                query = query.where(events.c.kind.in_(list(kinds)))
            return [(k, m) for k, m in conn.execute(query)]

    def add_job(self, job_id: str, vault: str, kind: str, *, tier: str | None = None,
                archive_id: str | None = None, byte_range: str | None = None,
                created_at: dt.datetime | None = None) -> JobRecord:
        with self._core_tx() as conn:
            _insert_job(conn, job_id, vault, kind, tier=tier, archive_id=archive_id,
                        byte_range=byte_range, created_at=created_at)
            return _job(conn.execute(_JOB_ROWS.where(jobs.c.job_id == job_id)).one())

    def update_job(self, job_id: str, status: str, *, output_path: str | None = None,
                   error: str | None = None, missing_ok: bool = False) -> None:
        """``missing_ok``: a restore's job whose row an older glacierd never wrote (it
        was killed between two commits) is a note to skip, not an error."""
        with self._core_tx() as conn:
            values: dict[str, object] = {"status": status, "error": error}
            if output_path is not None:
                values["output_path"] = output_path
            kind = conn.execute(update(jobs).where(jobs.c.job_id == job_id).values(**values)
                                .returning(jobs.c.kind)).scalar()
            if kind is None:
                if missing_ok:
                    return
                raise StoreError(f"no job {job_id}")
            conn.execute(_NEW_EVENT, {
                "level": "error" if error else "info", "kind": "job-" + status.lower(),
                "message": f"{kind} job {job_id}: {status}" + (f": {error}" if error else "")})

    def jobs(self, statuses: Sequence[str] | None = None, kind: str | None = None,
             limit: int | None = 50) -> list[JobRecord]:
        """The newest jobs (``limit``: None for every one)."""
        with self._core_tx() as conn:
            query = _JOB_ROWS.order_by(jobs.c.id.desc()).limit(limit)
            if statuses:
                query = query.where(jobs.c.status.in_(list(statuses)))
            if kind:
                query = query.where(jobs.c.kind == kind)
            return [_job(r) for r in conn.execute(query)]

    # --- restores ------------------------------------------------------------------

    def add_restore(self, archive: ArchiveRecord, dest_path: str, tier: str, segment_size: int,
                    overwrite: bool, byte_range: tuple[int, int] | None = None) -> RestoreRecord:
        """A restore to ``dest_path``; a packed file's retrieves ``byte_range`` of its
        bundle (shared with the other files of that bundle restored with it)."""
        with self._core_tx() as conn:
            restore_id = conn.execute(insert(restores).values(
                archive_row=archive.id, host=self.host,
                archive_id=archive.bundle_archive_id or archive.archive_id,
                vault=archive.vault, source_path=archive.source_path, dest_path=dest_path,
                size=archive.size, tree_hash=archive.tree_hash, mtime_ns=archive.mtime_ns,
                tier=tier, segment_size=segment_size, overwrite=overwrite,
                status=RestoreStatus.REQUESTED.value, member_offset=archive.member_offset,
                range_first=byte_range[0] if byte_range else None,
                range_last=byte_range[1] if byte_range else None,
            ).returning(restores.c.id)).scalar_one()
            conn.execute(_NEW_EVENT, {
                "level": "info", "kind": "restore-requested",
                "message": f"{shown(archive.source_path)} -> {shown(dest_path)}"})
            return _restore_by_id(conn, restore_id)

    def learn_plain_sha256(self, archive_id: str, sha256: str) -> None:
        """An encrypted archive adopted from an inventory (its plaintext hash was not
        known) decrypted and authenticated: the catalog keeps its SHA-256 from now on
        (``verify``, and a rerun of its restore, compare against it)."""
        with self._core_tx() as conn:
            conn.execute(update(archives).where(archives.c.archive_id == archive_id,
                                                archives.c.plain_sha256.is_(None))
                         .values(plain_sha256=sha256))

    def restore(self, restore_id: int) -> RestoreRecord:
        with self._core_tx() as conn:
            return _restore_by_id(conn, restore_id)

    def open_restore(self, archive_row: int, dest_path: str) -> RestoreRecord | None:
        """An earlier, unfinished restore of the same archive to the same place."""
        with self._core_tx() as conn:
            found = _restores(conn, _RESTORE_ROWS.where(
                restores.c.host == self.host, restores.c.archive_row == archive_row,
                restores.c.dest_path == dest_path,
                restores.c.status != RestoreStatus.DONE.value,
            ).order_by(restores.c.id.desc()).limit(1))
            return found[0] if found else None

    def restores(self, statuses: Sequence[str] | None = None) -> list[RestoreRecord]:
        """This host's restores (their files are written here)."""
        with self._core_tx() as conn:
            query = _RESTORE_ROWS.where(restores.c.host == self.host).order_by(restores.c.id)
            if statuses:
                query = query.where(restores.c.status.in_(list(statuses)))
            return _restores(conn, query)

    def claim_restore(self, restore: RestoreRecord, now: dt.datetime) -> bool:
        """Atomically take a requested restore for initiation; False if another process did.

        Two processes (the daemon and ``restore --wait``) may poll the same store; a
        retrieval costs money, so only the one whose conditional UPDATE lands starts it.
        """
        with self._core_tx() as conn:
            claimed = conn.execute(
                update(restores)
                .where(restores.c.id == restore.id,
                       restores.c.status == RestoreStatus.REQUESTED.value,
                       restores.c.job_requested_at.is_(None))
                .values(job_requested_at=now)
                .returning(restores.c.id)).first()
            return claimed is not None

    def release_restore(self, restore: RestoreRecord) -> None:
        with self._core_tx() as conn:
            conn.execute(update(restores).where(
                restores.c.id == restore.id,
                restores.c.status == RestoreStatus.REQUESTED.value).values(job_requested_at=None))

    def shared_retrieval(self, restore: RestoreRecord) -> tuple[str, dt.datetime] | None:
        """The job another restore of the same bundle range already has (the files of
        one bundle restored together share one retrieval), or None."""
        with self._core_tx() as conn:
            row = conn.execute(select(restores.c.job_id, restores.c.job_requested_at).where(
                restores.c.archive_id == restore.archive_id, restores.c.id != restore.id,
                restores.c.range_first == restore.range_first,
                restores.c.range_last == restore.range_last, restores.c.job_id.is_not(None),
                restores.c.status.in_([RestoreStatus.WAITING.value,
                                       RestoreStatus.DOWNLOADING.value,
                                       RestoreStatus.DONE.value])).order_by(
                restores.c.job_requested_at.desc()).limit(1)).first()
            if row is None or row[1] is None:
                return None
            return str(row[0]), row[1]

    def restore_job(self, restore: RestoreRecord, job_id: str | None,
                    requested_at: dt.datetime | None, *, new_job: bool = False) -> RestoreRecord:
        """The retrieval job for a restore (None: it must be initiated again).

        ``new_job``: the job was just initiated; its row goes in with the restore's
        job id, in one transaction (a kill between two commits left a restore
        pointing at a job the store did not know)."""
        with self._core_tx() as conn:
            row = conn.execute(update(restores).where(restores.c.id == restore.id).values(
                job_id=job_id, job_requested_at=requested_at, error=None,
                status=(RestoreStatus.WAITING if job_id else RestoreStatus.REQUESTED).value,
            ).returning(restores.c.vault, restores.c.tier, restores.c.archive_id)).one()
            if new_job and job_id is not None:
                _insert_job(conn, job_id, row.vault, "archive-retrieval", tier=row.tier,
                            archive_id=row.archive_id, created_at=requested_at)
            return _restore_by_id(conn, restore.id)

    def set_restore_status(self, restore: RestoreRecord, status: RestoreStatus,
                           error: str | None = None) -> None:
        with self._core_tx() as conn:
            values: dict[str, object] = {"status": status.value, "error": error}
            if status == RestoreStatus.DONE:
                values["bytes_done"] = restores.c.size
            row = conn.execute(update(restores).where(restores.c.id == restore.id)
                               .values(**values)
                               .returning(restores.c.source_path, restores.c.dest_path)).one()
            if status == RestoreStatus.FAILED:
                conn.execute(_NEW_EVENT, {"level": "error", "kind": "restore-failed",
                                          "message": f"{shown(row.source_path)}: {error}"})
            elif status == RestoreStatus.DONE:
                conn.execute(_NEW_EVENT, {
                    "level": "info", "kind": "restored",
                    "message": f"{shown(row.source_path)} -> {shown(row.dest_path)}"})

    def segment_verified(self, restore: RestoreRecord, index: int, offset: int, length: int,
                         tree_hash: str) -> None:
        """A range is on disk (fsynced) and matched its tree hash: committed on its own."""
        with self._core_tx() as conn:
            conn.execute(insert(restore_segments).values(
                restore_id=restore.id, index=index, offset=offset, length=length,
                tree_hash=tree_hash))
            conn.execute(update(restores).where(restores.c.id == restore.id)
                         .values(bytes_done=restores.c.bytes_done + length,
                                 status=RestoreStatus.DOWNLOADING.value))

    def forget_segments(self, restore: RestoreRecord, refetch: bool = True) -> None:
        """Start the download over (the partial file was lost or is wrong)."""
        with self._core_tx() as conn:
            conn.execute(delete(restore_segments).where(
                restore_segments.c.restore_id == restore.id))
            values: dict[str, object] = {"bytes_done": 0}
            if refetch:
                values["refetches"] = restores.c.refetches + 1
            conn.execute(update(restores).where(restores.c.id == restore.id).values(**values))

    def count_refetch(self, restore: RestoreRecord) -> int:
        with self._core_tx() as conn:
            refetches = conn.execute(update(restores).where(restores.c.id == restore.id)
                                     .values(refetches=restores.c.refetches + 1)
                                     .returning(restores.c.refetches)).scalar()
            if refetches is None:
                raise StoreError(f"no restore with id {restore.id}")
            return int(refetches)

    # --- inventories ---------------------------------------------------------------

    def add_inventory(self, vault: str, job_id: str, inventory_date: dt.datetime,
                      archive_count: int, total_size: int, output_path: str) -> None:
        with self._core_tx() as conn:
            conn.execute(insert(inventories).values(
                vault=vault, job_id=job_id, inventory_date=inventory_date,
                archive_count=archive_count, total_size=total_size, output_path=output_path))

    def last_inventory(self, vault: str | None = None) -> InventorySummary | None:
        inventory = inventories.c
        with self._core_tx() as conn:
            query = select(inventory.vault, inventory.job_id, inventory.inventory_date,
                           inventory.archive_count, inventory.total_size, inventory.output_path,
                           inventory.fetched_at).order_by(inventory.id.desc()).limit(1)
            if vault:
                query = query.where(inventory.vault == vault)
            row = conn.execute(query).first()
            return InventorySummary(*row) if row is not None else None

    def adopt_archives(self, found: Sequence[Adoption]) -> list[bool]:
        """Archives found in an inventory, added to the catalog in one transaction
        (a rebuilt catalog of a million archives is not two million commits), each
        with its event; for each, False if it was known already. Rerunning a batch
        that was cut short adopts the rest."""
        adopted: list[bool] = []
        with self._direct_tx() as conn:
            for a in found:
                if conn.execute(_ARCHIVE_BY_ID, {"archive_id": a.archive_id}).first():
                    adopted.append(False)
                    continue
                file_id = (conn.execute(_FILE_BY_PATH, {"host": self.host,
                                                        "path": a.source_path}).scalar()
                           if a.link_file and not a.is_bundle else None)
                conn.execute(_NEW_ARCHIVE, {
                    "archive_id": a.archive_id, "vault": a.vault, "size": a.size,
                    "tree_hash": a.tree_hash, "description": a.description,
                    "source_path": a.source_path, "mtime_ns": a.mtime_ns,
                    "file_id": file_id, "upload_id": None, "created_at": a.created_at,
                    "plain_size": a.plain_size, "plain_sha256": None,
                    "manifest_ids": json.dumps(list(a.manifest_ids)) if a.manifest_ids
                    else None, "is_bundle": a.is_bundle})
                if a.event is not None:
                    level, kind, message = a.event
                    conn.execute(_NEW_EVENT, {"level": level, "kind": kind,
                                              "message": message, "file_id": None})
                adopted.append(True)
        return adopted

    def add_events(self, events: Sequence[tuple[str, str, str]]) -> None:
        """(level, kind, message) events, in one transaction."""
        with self._direct_tx() as conn:
            for level, kind, message in events:
                conn.execute(_NEW_EVENT, {"level": level, "kind": kind, "message": message,
                                          "file_id": None})

    def manifests_of(self, archive_id: str) -> list[str]:
        """The manifest archives of an archive (deleted with it)."""
        with self._core_tx() as conn:
            text = conn.execute(select(archives.c.manifest_ids).where(
                archives.c.archive_id == archive_id)).scalar()
        return [str(x) for x in json.loads(text)] if text else []

    def confirm_upload(self, upload_row: int, archive_id: str) -> None:
        """An unconfirmed upload found in the inventory (docs/design.md invariant 5)."""
        with self._core_tx() as conn:  # finish_upload expects it completing
            conn.execute(_UPDATE_UPLOAD, {"upload": upload_row,
                                          "status": UploadStatus.COMPLETING.value})
        self.finish_upload(self.upload(upload_row), archive_id)

    def unconfirmed_uploads(self) -> list[UploadRecord]:
        with self._core_tx() as conn:
            return _uploads(conn, _UPLOAD_ROWS.where(
                uploads.c.status == UploadStatus.UNCONFIRMED.value).order_by(uploads.c.id))

    def catalog_entries(self, vault: str) -> list[tuple[str, dt.datetime, str]]:
        """(archive id, created at, source path) of each live archive in ``vault``:
        what an inventory is reconciled with, daily in the daemon. Three columns,
        not whole records: at a million archives, 4 s instead of 33."""
        with self._core_tx() as conn:
            return [(str(archive_id), created, path) for archive_id, created, path in
                    conn.execute(select(archives.c.archive_id, archives.c.created_at,
                                        archives.c.source_path).where(
                        archives.c.vault == vault, archives.c.archive_id.is_not(None),
                        archives.c.deleted_at.is_(None)))]

    def mark_archive_deleted(self, archive_id: str) -> None:
        """The archive is gone from the vault; a file whose current version it held
        has no backup any more and goes back in the queue (uploaded again if it is
        in a watched folder or named to ``glacierd upload``)."""
        self._mark_deleted(archives.c.archive_id == archive_id, archive_id)

    def mark_member_deleted(self, row_id: int) -> str | None:
        """A packed file's catalog entry is deleted (its bytes stay in its bundle:
        reclaimable, until the bundle goes); returns the bundle's archive id if no
        file of it is left alive (it can be deleted whole), else None."""
        self._mark_deleted(archives.c.id == row_id, f"packed file (catalog row {row_id})")
        with self._core_tx() as conn:
            bundle_row = conn.execute(select(archives.c.bundle_row).where(
                archives.c.id == row_id)).scalar()
            alive = conn.execute(select(archives.c.id).where(
                archives.c.bundle_row == bundle_row, archives.c.deleted_at.is_(None))
                .limit(1)).first()
            if alive is not None:
                return None
            bundle_id: str | None = conn.execute(select(archives.c.archive_id).where(
                archives.c.id == bundle_row, archives.c.deleted_at.is_(None))).scalar()
            return bundle_id

    def bundles_to_repack(self, vault: str, min_dead: float) -> list[RepackCandidate]:
        """Live bundles in ``vault`` whose deleted files are at least ``min_dead`` of
        their bytes, with their files still alive (what a new bundle must hold)."""
        with self._core_tx() as conn:
            dead = (select(archives.c.bundle_row, func.sum(archives.c.size).label("dead"))
                    .where(archives.c.bundle_row.is_not(None),
                           archives.c.deleted_at.is_not(None))
                    .group_by(archives.c.bundle_row).subquery())
            bundles = conn.execute(_LISTED_ARCHIVES.add_columns(dead.c.dead).join(
                dead, dead.c.bundle_row == archives.c.id).where(
                archives.c.vault == vault, archives.c.deleted_at.is_(None))).all()
            out = []
            for row in bundles:
                bundle, dead_bytes = _listed(row), int(row.dead)
                if dead_bytes < min_dead * bundle.size:
                    continue
                alive = conn.execute(_LISTED_ARCHIVES.where(
                    archives.c.bundle_row == bundle.id, archives.c.deleted_at.is_(None))
                    .order_by(archives.c.member_offset))
                out.append(RepackCandidate(bundle, dead_bytes,
                                           [_listed(a) for a in alive]))
            return out

    def unindexed_bundles(self, vault: str) -> list[ArchiveRecord]:
        """Live bundles in ``vault`` whose files the catalog does not hold (a catalog
        rebuilt from an inventory: their index is still to be read)."""
        with self._core_tx() as conn:
            member = archives.alias("member")
            has_members = select(member.c.id).where(member.c.bundle_row == archives.c.id)
            rows = conn.execute(_LISTED_ARCHIVES.where(
                archives.c.vault == vault, archives.c.is_bundle.is_(True),
                archives.c.deleted_at.is_(None), archives.c.archive_id.is_not(None),
                ~has_members.exists()))
            return [replace(_listed(r), description=r.description)
                    for r in rows]

    def adopt_members(self, bundle: ArchiveRecord, entries: Sequence[Any], host: str,
                      token: str, *, link_files: bool) -> int:
        """A rebuilt catalog learns a bundle's files from its index (``entries``:
        ``bundle.IndexEntry``); once. ``link_files``: this host's bundle, whose files
        are this host's files at those paths. Returns how many were added."""
        with self._core_tx() as conn:
            if conn.execute(select(archives.c.id).where(
                    archives.c.bundle_row == bundle.id).limit(1)).first() is not None:
                return 0
            files = {r.path: r.id for r in conn.execute(_FILES_BY_PATH, {
                "paths": [e.path for e in entries], "host": self.host})} \
                if link_files and entries else {}
            conn.execute(insert(archives), [
                {"archive_id": None, "vault": bundle.vault, "size": e.size,
                 "tree_hash": e.tree_hash, "source_path": e.path, "mtime_ns": e.mtime_ns,
                 "description": description.encode(description.ArchiveInfo(
                     path=e.path, host=host, size=e.size, mtime_ns=e.mtime_ns, token=token,
                     mode=e.mode)),
                 "file_id": files.get(e.path), "created_at": bundle.created_at,
                 "plain_sha256": e.sha256, "bundle_row": bundle.id, "member_offset": e.offset}
                for e in entries])
            return len(entries)

    def emptied_bundles(self, vault: str) -> list[str]:
        """Bundles in ``vault`` with no file left alive in them (all deleted, or all
        repacked into newer bundles): what can go from the service."""
        with self._core_tx() as conn:
            bundle = archives.alias("bundle")
            alive = select(archives.c.id).where(archives.c.bundle_row == bundle.c.id,
                                                archives.c.deleted_at.is_(None))
            rows = conn.execute(select(bundle.c.archive_id).where(
                bundle.c.vault == vault, bundle.c.deleted_at.is_(None),
                bundle.c.archive_id.is_not(None),
                bundle.c.id.in_(select(archives.c.bundle_row).where(
                    archives.c.bundle_row.is_not(None))),
                ~alive.exists())).all()
            return [str(r[0]) for r in rows]

    def _mark_deleted(self, which: Any, what: str) -> None:
        with self._core_tx() as conn:
            file_id = conn.execute(select(archives.c.file_id).where(which)).scalar()
            conn.execute(update(archives).where(which).values(deleted_at=utcnow()))
            conn.execute(_NEW_EVENT, {"level": "info", "kind": "deleted-archive",
                                      "message": what})
            row = conn.execute(select(files.c.id, files.c.path, files.c.size,
                                      files.c.mtime_ns, files.c.state, files.c.is_bundle)
                               .where(files.c.id == file_id)).first() if file_id else None
            if row is None or row.state != FileState.ARCHIVED:
                return
            if row.is_bundle:  # a bundle is made once, never queued again
                conn.execute(_UPDATE_FILE, {"file": row.id, "state": FileState.GONE.value})
                return
            still = conn.execute(select(archives.c.id).where(
                archives.c.file_id == row.id, archives.c.deleted_at.is_(None),
                archives.c.size == row.size, archives.c.mtime_ns == row.mtime_ns)).first()
            if still is None:
                conn.execute(_UPDATE_FILE, {"file": row.id, "state": FileState.PENDING.value,
                                            "error": None, "retry_at": None})
                conn.execute(_NEW_EVENT, {
                    "level": "warning", "kind": "backup-deleted", "file_id": row.id,
                    "message": f"{shown(row.path)}: its backup was deleted; queued again"})

    def archive_by_id(self, archive_id: str) -> ArchiveRecord | None:
        with self._core_tx() as conn:
            row = conn.execute(_LISTED_ARCHIVES.where(archives.c.archive_id == archive_id)).first()
            return _listed(row) if row else None

    def pending_files(self, now: dt.datetime, limit: int = 100,
                      after: FileRecord | None = None) -> list[FileRecord]:
        """The queue, a page of at most ``limit`` files: uploads left unfinished
        (uploading: an interrupted run's), then pending files, then failed ones
        whose retry time has come; each state in id order. ``after``: the last
        file of the page before, as it was then: the page goes on from it, so a
        pass over the queue sees each file once and holds one page, however long
        the queue (each page a range of ``ix_files_host_state_id``)."""
        start = 0 if after is None else _QUEUE_ORDER.index(FileState(after.state))
        out: list[FileRecord] = []
        with self._core_tx() as conn:
            for state in _QUEUE_ORDER[start:]:
                from_id = after.id if after is not None and state == after.state else 0
                out += [FileRecord(*r) for r in conn.execute(_QUEUE_PAGE, {
                    "host": self.host, "state": state.value, "now": now, "after": from_id,
                    "due": state != FileState.FAILED, "limit": limit - len(out)})]
                if len(out) >= limit:
                    break
        return out

    def prune_events(self, before: dt.datetime) -> int:
        with self._core_tx() as conn:
            return int(conn.execute(delete(events).where(events.c.at < before)).rowcount)

    def tracked_uploads(self) -> dict[str, str | None]:
        """Token -> upload id of the uploads glacierd still means to finish (None while
        Initiate's answer is not yet recorded): housekeeping spares exactly these."""
        with self._core_tx() as conn:
            rows = conn.execute(select(uploads.c.token, uploads.c.upload_id)
                                .where(uploads.c.status.in_([s.value for s in UNFINISHED])))
            return {token: upload_id for token, upload_id in rows}

    def heartbeat(self, pid: int, vault: str, started_at: dt.datetime, status: str) -> None:
        """This host's daemon is alive (one row a host)."""
        values = {"pid": pid, "vault": vault, "started_at": started_at,
                  "heartbeat_at": utcnow(), "status": status, "stopped_at": None}
        with self._core_tx() as conn:
            if not conn.execute(update(daemon).where(daemon.c.host == self.host)
                                .values(**values)).rowcount:
                conn.execute(insert(daemon).values(host=self.host, **values))

    def daemon_stopped(self, pid: int) -> None:
        with self._core_tx() as conn:
            conn.execute(update(daemon).where(daemon.c.host == self.host, daemon.c.pid == pid)
                         .values(stopped_at=utcnow(), status="stopped"))

    def daemon(self) -> DaemonInfo | None:
        """This host's daemon, as it last said."""
        with self._core_tx() as conn:
            row = conn.execute(select(
                daemon.c.pid, daemon.c.host, daemon.c.vault, daemon.c.started_at,
                daemon.c.heartbeat_at, daemon.c.stopped_at, daemon.c.status,
            ).where(daemon.c.host == self.host)).first()
            return DaemonInfo(*row) if row is not None else None

    def files_without_backup(self, path_prefix: str | None = None) -> list[str]:
        """Paths the store knows (neither gone nor forgotten) with no live archive."""
        with self._core_tx() as conn:
            live = select(archives.c.file_id).where(archives.c.deleted_at.is_(None),
                                                    archives.c.file_id.is_not(None))
            query = select(files.c.path).where(
                files.c.host == self.host, files.c.id.not_in(live),
                files.c.state.not_in([FileState.GONE.value, FileState.FORGOTTEN.value]))
            if path_prefix:
                query = query.where(*_under(files.c.path, path_prefix, self.engine))
            return list(conn.scalars(query.order_by(files.c.path)))

    def set_folder_problems(self, problems: dict[str, str]) -> None:
        """The folders the last scan could not read (replacing the earlier set; a
        folder still unreadable keeps the time it was first found)."""
        problem = folder_problems.c
        with self._core_tx() as conn:
            known = {path: (row_id, message) for row_id, path, message in conn.execute(
                select(problem.id, problem.path, problem.message)
                .where(problem.host == self.host))}
            for path in known.keys() - problems.keys():
                conn.execute(delete(folder_problems).where(problem.id == known[path][0]))
                conn.execute(_NEW_EVENT, {"level": "info", "kind": "folder-readable",
                                          "message": f"{shown(path)}: readable again"})
            for path, message in problems.items():
                if path not in known:
                    conn.execute(insert(folder_problems).values(
                        host=self.host, path=path, message=message))
                    conn.execute(_NEW_EVENT, {
                        "level": "warning", "kind": "folder-unreadable",
                        "message": f"{shown(path)}: cannot be read ({message})"})
                elif known[path][1] != message:
                    conn.execute(update(folder_problems).where(problem.id == known[path][0])
                                 .values(message=message))

    def folder_problems(self) -> list[tuple[str, str, dt.datetime]]:
        problem = folder_problems.c
        with self._core_tx() as conn:
            return [(path, message, since) for path, message, since in conn.execute(
                select(problem.path, problem.message, problem.since)
                .where(problem.host == self.host).order_by(problem.path))]

    # --- what is stored, for the cost engine ------------------------------------------

    def archives_since(self, vault: str, since: dt.datetime) -> list[tuple[int, dt.datetime]]:
        """(size, created_at) of the live archives in ``vault`` created after ``since``
        (those still within a minimum storage duration)."""
        with self._core_tx() as conn:
            return [(int(size), created) for size, created in conn.execute(
                select(archives.c.size, archives.c.created_at).where(
                    archives.c.vault == vault, archives.c.archive_id.is_not(None),
                    archives.c.deleted_at.is_(None), archives.c.created_at > since))]

    def small_archives(self, vault: str, below: int) -> int:
        with self._core_tx() as conn:
            return int(conn.execute(select(func.count()).where(
                archives.c.vault == vault, archives.c.archive_id.is_not(None),
                archives.c.deleted_at.is_(None), archives.c.size < below)).scalar_one())

    def requests_since(self, vault: str, since: dt.datetime) -> tuple[int, int, int]:
        """(one-PUT uploads, multipart uploads, parts) sent to ``vault`` since then:
        the write requests a month's bill counts."""
        with self._core_tx() as conn:
            single = int(conn.execute(select(func.count()).where(
                uploads.c.vault == vault, uploads.c.created_at >= since,
                uploads.c.upload_id.like("put:%"))).scalar_one())
            multipart = int(conn.execute(select(func.count()).where(
                uploads.c.vault == vault, uploads.c.created_at >= since,
                uploads.c.upload_id.is_not(None), uploads.c.upload_id.not_like("put:%")))
                .scalar_one())
            sent = int(conn.execute(select(func.count()).select_from(parts).join(
                uploads, uploads.c.id == parts.c.upload_id).where(
                uploads.c.vault == vault, parts.c.acknowledged_at >= since,
                uploads.c.upload_id.not_like("put:%"))).scalar_one())
        return single, multipart, sent

    def fold_totals(self) -> totals.Totals:
        """Fold the running totals' deltas into one row per key and return the
        sums (``glacierd.store.totals``); no write when they are folded already."""
        with self._core_tx() as conn:
            rows = conn.execute(text(
                "SELECT id, kind, key, n, bytes, small_n, small_bytes FROM totals")).all()
            sums = totals.summed([tuple(r)[1:] for r in rows])
            if len(rows) <= len(sums):
                return sums
            upto = max(r[0] for r in rows)
            folded = totals.summed([tuple(r) for r in conn.execute(
                text(totals.FOLD_DELETE_SQL), {"upto": upto})])
            if folded:
                conn.execute(insert(total_deltas), [
                    {"kind": kind, "key": key, "n": n, "bytes": size, "small_n": small_n,
                     "small_bytes": small_bytes}
                    for (kind, key), (n, size, small_n, small_bytes) in folded.items()])
            return sums

    def count_files(self) -> dict[str, int]:
        """This host's files by state, from the running totals (no scan of ``files``)."""
        return {state: n for state, (n, _size) in
                totals.files_of(self.fold_totals(), self.host).items()}


@dataclass(frozen=True)
class RepackCandidate:
    bundle: ArchiveRecord
    dead_bytes: int
    alive: list[ArchiveRecord]


@dataclass(frozen=True)
class PackedMember:
    """A file in a bundle: where its bytes are and what they hash to."""

    file_id: int
    path: str
    offset: int
    size: int
    mtime_ns: int
    inode: int
    mode: int
    sha256: str
    tree_hash: str
    description: str
    replaces: int | None = None
    """``repack``: the catalog row these bytes replace (in the bundle rewritten)."""


def _archive_members(conn: Connection, bundle_file: int, bundle_row: int, vault: str) -> None:
    """A bundle's archive is committed: each member gets its archive row (no archive
    id of its own: the bundle's row, its offset) and its file, if still of that
    version and packed, is archived — in the bundle's transaction. Done once."""
    members = conn.execute(select(bundle_members).where(
        bundle_members.c.bundle_file == bundle_file)).all()
    if not members or conn.execute(select(archives.c.id).where(
            archives.c.bundle_row == bundle_row).limit(1)).first() is not None:
        return
    created = utcnow()
    conn.execute(insert(archives), [
        {"archive_id": None, "vault": vault, "size": m.size, "tree_hash": m.tree_hash,
         "description": m.description, "source_path": m.path, "mtime_ns": m.mtime_ns,
         "file_id": m.file_id, "created_at": created, "plain_sha256": m.sha256,
         "bundle_row": bundle_row, "member_offset": m.offset} for m in members])
    for m in members:
        conn.execute(update(files).where(
            files.c.id == m.file_id, files.c.size == m.size, files.c.mtime_ns == m.mtime_ns,
            files.c.state == FileState.PACKED).values(
            state=FileState.ARCHIVED.value, error=None, retry_at=None))
    replaced = [m.replaces for m in members if m.replaces is not None]
    if replaced:  # repacked: the old bundle's rows of these bytes retire with this commit
        conn.execute(update(archives).where(archives.c.id.in_(replaced),
                                            archives.c.deleted_at.is_(None)).values(
            deleted_at=created))
    # A member seen in a newer version meanwhile was queued by the watcher (and may
    # be packed in another bundle by now): its row is that version's, left alone.


def _under(column: Any, prefix: str, engine: Engine) -> list[ColumnElement[bool]]:
    """A stored path (``PathText``) that starts with ``prefix``: a LIKE, and on
    SQLite also a range of the escaped text, which its index on the column can
    serve (a LIKE alone scans the whole index: 0.1 s at a million archives).
    ``pathtext.escape`` works character by character, so the escaped prefix is a
    prefix of every escaped path under it, and SQLite compares text by code
    point: every such path is at least the prefix and below its successor (the
    last character one higher). Not on PostgreSQL, whose collation may order
    text otherwise."""
    conditions: list[ColumnElement[bool]] = [column.startswith(prefix, autoescape=True)]
    escaped = pathtext.escape(prefix)
    if engine.dialect.name == "sqlite" and escaped and escaped[-1] != "\U0010ffff":
        above = escaped[:-1] + chr(ord(escaped[-1]) + 1)
        conditions += [column >= bindparam(None, escaped, type_=Text),
                       column < bindparam(None, above, type_=Text)]
    return conditions


UploadState = tuple[ArchiveRecord | None, UploadRecord | None, UploadRecord | None]
"""A file's newest live archive, its unconfirmed upload, its unfinished upload."""


def _upload_state(conn: Connection | DirectConnection, file_id: int) -> UploadState:
    has_archive, has_upload = conn.execute(_WHAT_FILE_HAS, {"file": file_id}).one()
    archive = None
    if has_archive:
        newest = conn.execute(_NEWEST_ARCHIVE, {"file": file_id}).first()
        archive = ArchiveRecord(**newest._asdict()) if newest else None
    if not has_upload:
        return archive, None, None  # the usual case: a file with no open upload
    uploads = _uploads(conn, _OPEN_UPLOADS_OF, {"file": file_id})
    unconfirmed = next((u for u in uploads if u.status == UploadStatus.UNCONFIRMED), None)
    unfinished = next((u for u in uploads if u.status != UploadStatus.UNCONFIRMED), None)
    return archive, unconfirmed, unfinished


def _acknowledge(conn: Connection | DirectConnection, upload_row: int, part: PartRecord,
                 completing: str | None = None, plain_sha256: str | None = None) -> None:
    """A part acknowledged (invariant 2), in the caller's transaction; ``completing``:
    the archive's final hash, set by the same UPDATE as the bytes (invariant 5)."""
    existing = conn.execute(_RECORDED_PART, {"upload": upload_row, "index": part.index}).first()
    if existing is not None and (existing.tree_hash, existing.offset) != (part.tree_hash,
                                                                         part.offset):
        raise StoreError(f"part {part.index} of upload {upload_row} was recorded with "
                         "another hash or offset")
    completes = ({} if completing is None else {
        "status": UploadStatus.COMPLETING.value, "tree_hash": completing,
        "plain_sha256": plain_sha256})
    if existing is None:
        conn.execute(_NEW_PART, {"upload_id": upload_row, "index": part.index,
                                 "offset": part.offset, "length": part.length,
                                 "tree_hash": part.tree_hash, "sha256": part.sha256,
                                 "adopted": part.adopted})
        conn.execute(_BYTES_ACKED, {"upload": upload_row, "length": part.length, **completes})
    elif completes:
        conn.execute(_UPDATE_UPLOAD, {"upload": upload_row, **completes})


def _insert_upload(conn: Connection | DirectConnection, file_id: int, plan: NewUpload,
                   size: int, mtime_ns: int, inode: int,
                   manifest_ids: Sequence[str] = ()) -> UploadRecord:
    """An upload's row (and an encrypted one's age parameters: invariant 1 holds for
    them too), its file marked uploading; in the caller's transaction."""
    status = (UploadStatus.INITIATING if plan.upload_id is None else UploadStatus.UPLOADING).value
    new_id = conn.execute(_NEW_UPLOAD, {
        "file_id": file_id, "vault": plan.vault, "token": plan.token,
        "description": plan.description, "part_size": plan.part_size, "size": size,
        "mtime_ns": mtime_ns, "inode": inode, "status": status, "wire_size": plan.wire_size,
        "manifest_ids": json.dumps(list(manifest_ids)) if manifest_ids else None,
        "upload_id": plan.upload_id,
    }).scalar_one()
    if plan.cipher is not None:
        conn.execute(_NEW_CIPHER, {"upload_row": new_id, "file_key": plan.cipher.file_key,
                                   "header": plan.cipher.header, "nonce": plan.cipher.nonce})
    path = conn.execute(_FILE_UPLOADING, {"file": file_id}).scalar_one()
    return UploadRecord(new_id, file_id, path, plan.vault, plan.upload_id, plan.token,
                        plan.description, plan.part_size, size, mtime_ns, inode, status, None,
                        (), plan.wire_size, plan.cipher)


@dataclass(frozen=True)
class RestoreRecord:
    id: int
    archive_id: str | None
    vault: str
    source_path: str
    dest_path: str
    size: int
    tree_hash: str
    mtime_ns: int
    tier: str
    segment_size: int
    overwrite: bool
    job_id: str | None
    job_requested_at: dt.datetime | None
    status: str
    error: str | None
    refetches: int
    bytes_done: int
    verified: tuple[tuple[int, str], ...]  # (segment index, tree hash), in order

    mode: int | None = None  # the file's permission bits, from its archive's description
    plain_size: int | None = None
    """An encrypted archive's file size (``size``, ``tree_hash``: the age file's)."""
    plain_sha256: str | None = None
    description: str | None = None
    member_offset: int | None = None
    """A packed file: where its bytes begin in its bundle (``archive_id``)."""
    range_first: int | None = None
    range_last: int | None = None
    """The bytes of the bundle its retrieval asked for (a vault job's output)."""

    @property
    def encrypted(self) -> bool:
        return self.plain_size is not None

    @property
    def packed(self) -> bool:
        return self.member_offset is not None

    @property
    def partial_path(self) -> str:
        return self.dest_path + ".glacierd-partial"

    @property
    def plain_partial_path(self) -> str:
        """Where an encrypted archive is decrypted to before its rename (the name
        ends as the other partial's, which watched folders ignore)."""
        return self.dest_path + ".plain.glacierd-partial"


_RESTORE_ROWS = (select(restores, archives.c.description.label("archive_description"),
                        archives.c.plain_size.label("archive_plain_size"),
                        archives.c.plain_sha256.label("archive_plain_sha256"))
                 .outerjoin(archives, archives.c.id == restores.c.archive_row))
"""Restores, with what their archive's row adds (mode, plaintext size and hash)."""
_SEGMENTS_OF = (select(restore_segments.c.restore_id, restore_segments.c.index,
                       restore_segments.c.tree_hash)
                .where(restore_segments.c.restore_id.in_(bindparam("restores", expanding=True)))
                .order_by(restore_segments.c.restore_id, restore_segments.c.index))


def _restores(conn: Connection, query: Executable) -> list[RestoreRecord]:
    """The restores ``query`` (``_RESTORE_ROWS`` narrowed) finds, with their verified
    segments: two queries, however many restores."""
    rows = conn.execute(query).all()
    verified: dict[int, list[tuple[int, str]]] = {r.id: [] for r in rows}
    for start in range(0, len(rows), _BATCH):
        for restore_id, index, tree_hash in conn.execute(
                _SEGMENTS_OF, {"restores": [r.id for r in rows[start:start + _BATCH]]}):
            verified[restore_id].append((index, tree_hash))
    return [RestoreRecord(
        r.id, r.archive_id, r.vault, r.source_path, r.dest_path, r.size, r.tree_hash,
        r.mtime_ns, r.tier, r.segment_size, r.overwrite, r.job_id, r.job_requested_at,
        r.status, r.error, r.refetches, r.bytes_done, tuple(verified[r.id]),
        _recorded_mode(r.archive_description), r.archive_plain_size, r.archive_plain_sha256,
        r.archive_description, r.member_offset, r.range_first, r.range_last) for r in rows]


def _restore_by_id(conn: Connection, restore_id: int) -> RestoreRecord:
    found = _restores(conn, _RESTORE_ROWS.where(restores.c.id == restore_id))
    if not found:
        raise StoreError(f"no restore with id {restore_id}")
    return found[0]


def _recorded_mode(text: str | None) -> int | None:
    info = description.decode(text) if text else None
    return info.mode if info is not None else None


@dataclass(frozen=True)
class InventorySummary:
    vault: str
    job_id: str
    inventory_date: dt.datetime
    archive_count: int
    total_size: int
    output_path: str
    fetched_at: dt.datetime


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    vault: str
    kind: str
    status: str
    tier: str | None
    archive_id: str | None
    output_path: str | None
    error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    byte_range: str | None = None


def _insert_job(conn: Connection, job_id: str, vault: str, kind: str, *, tier: str | None,
                archive_id: str | None, byte_range: str | None = None,
                created_at: dt.datetime | None) -> None:
    """A job glacierd started, and its event (``add_job``, ``restore_job``)."""
    conn.execute(insert(jobs).values(
        job_id=job_id, vault=vault, kind=kind, tier=tier, archive_id=archive_id,
        byte_range=byte_range, status="InProgress", created_at=created_at or utcnow()))
    conn.execute(_NEW_EVENT, {"level": "info", "kind": "job-started",
                              "message": f"{kind} job {job_id}"})


_JOB_ROWS = select(jobs.c.job_id, jobs.c.vault, jobs.c.kind, jobs.c.status, jobs.c.tier,
                   jobs.c.archive_id, jobs.c.output_path, jobs.c.error, jobs.c.created_at,
                   jobs.c.updated_at, jobs.c.byte_range)


def _job(row: Any) -> JobRecord:
    """A ``_JOB_ROWS`` row as a record."""
    return JobRecord(*row)


@dataclass(frozen=True)
class DaemonInfo:
    pid: int
    host: str
    vault: str
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    stopped_at: dt.datetime | None
    status: str
