"""The ORM's classes over the store's tables (``glacierd.store.tables``), mapped
the first time they are used.

Mapping costs: importing SQLAlchemy's ORM and mapping seventeen classes took
about 0.2 CPU-seconds of every command's start-up when the classes were
declarative. Most of the store's hot calls are Core statements
(``glacierd.store.repository``, ``glacierd.store.direct``), and ``glacierd
upload`` uses no ORM session at all, so here the classes are plain until a
store call opens a session (``Store._tx`` calls ``map_models``), an instance is
made, one of their mapped attributes is read (``File.path``), or one is given
to a statement (``select(File)``): each maps all of them first, once, under a
lock. Nothing else about them differs from
declarative classes: ``select(File)``, relationships, defaults and ``onupdate``
(the tables' own) work the same once mapped.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import TYPE_CHECKING, Any

from . import tables
from .states import (
    UNFINISHED,
    FileState,
    MigrationStatus,
    RestoreStatus,
    UploadStatus,
    utcnow,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Mapped

__all__ = [
    "UNFINISHED", "Archive", "BundleMember", "DaemonRecord", "Event", "File", "FileState",
    "FolderProblem", "InventoryRecord", "Job", "MigrationChunk", "MigrationItem",
    "MigrationStatus", "Part", "Restore", "RestoreSegment", "RestoreStatus", "Total", "Upload",
    "UploadCipher", "UploadStatus", "map_models", "utcnow",
]

_lock = threading.RLock()
_mapped = False
_mapping = False


class _MappedOnFirstUse(type):
    """Maps every model before the first instance of one is made, or the first
    mapped attribute of one is read from its class."""

    if not TYPE_CHECKING:
        def __getattr__(cls, name: str) -> Any:
            # Only for names the class does not have yet: its columns and
            # relationships, before mapping. Never while mapping (SQLAlchemy
            # probes the class then) nor after.
            # ``__clause_element__`` is what SQLAlchemy asks first of anything
            # given to ``select()``, ``insert()``, ``update()``: ``select(File)``
            # maps too.
            if _mapped or _mapping or (name != "__clause_element__" and not any(
                    name in vars(k).get("__annotations__", {}) for k in cls.__mro__)):
                raise AttributeError(name)
            map_models()
            return getattr(cls, name)

        def __call__(cls, *args: Any, **kwargs: Any) -> Any:
            map_models()
            return super().__call__(*args, **kwargs)


class _Row(metaclass=_MappedOnFirstUse):
    """A row as an object: ``Model(column=value, ...)``, like a declarative class."""

    def __init__(self, **values: Any) -> None:
        for name, value in values.items():
            setattr(self, name, value)


class File(_Row):
    """A path the daemon has seen; never forgotten (docs/design.md invariant 7)."""

    id: Mapped[int]
    host: Mapped[str]
    path: Mapped[str]
    size: Mapped[int]
    mtime_ns: Mapped[int]
    inode: Mapped[int]
    state: Mapped[str]
    error: Mapped[str | None]
    attempts: Mapped[int]
    retry_at: Mapped[dt.datetime | None]
    first_seen: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    is_bundle: Mapped[bool]

    uploads: Mapped[list[Upload]]


class Upload(_Row):
    """One multipart upload of one version of a file."""

    id: Mapped[int]
    file_id: Mapped[int]
    vault: Mapped[str]
    upload_id: Mapped[str | None]
    token: Mapped[str]
    description: Mapped[str]
    part_size: Mapped[int]
    size: Mapped[int]
    mtime_ns: Mapped[int]
    inode: Mapped[int]
    status: Mapped[str]
    tree_hash: Mapped[str | None]
    wire_size: Mapped[int | None]
    plain_sha256: Mapped[str | None]
    manifest_ids: Mapped[str | None]
    error: Mapped[str | None]
    bytes_acked: Mapped[int]
    bytes_in_flight: Mapped[int]
    rate_bps: Mapped[float]
    eta_seconds: Mapped[float | None]
    progress_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]

    # Every UploadRecord carries its file's path: loaded in the same query.
    file: Mapped[File]
    parts: Mapped[list[Part]]
    cipher: Mapped[UploadCipher | None]


class UploadCipher(_Row):
    """An encrypted upload's age parameters (``file_key`` is a secret)."""

    upload_row: Mapped[int]
    file_key: Mapped[bytes]
    header: Mapped[bytes]
    nonce: Mapped[bytes]


class Part(_Row):
    """A part Glacier acknowledged (docs/design.md invariant 2)."""

    id: Mapped[int]
    upload_id: Mapped[int]
    index: Mapped[int]
    offset: Mapped[int]
    length: Mapped[int]
    tree_hash: Mapped[str]
    sha256: Mapped[str | None]
    adopted: Mapped[bool]
    acknowledged_at: Mapped[dt.datetime]

    upload: Mapped[Upload]


class Archive(_Row):
    """The catalog: one row per archived version of a file."""

    id: Mapped[int]
    archive_id: Mapped[str | None]
    vault: Mapped[str]
    size: Mapped[int]
    tree_hash: Mapped[str]
    description: Mapped[str | None]
    source_path: Mapped[str]
    plain_size: Mapped[int | None]
    plain_sha256: Mapped[str | None]
    manifest_ids: Mapped[str | None]
    mtime_ns: Mapped[int]
    file_id: Mapped[int | None]
    upload_id: Mapped[int | None]
    created_at: Mapped[dt.datetime]
    deleted_at: Mapped[dt.datetime | None]
    bundle_row: Mapped[int | None]
    member_offset: Mapped[int | None]
    is_bundle: Mapped[bool]

    bundle: Mapped[Archive | None]


class Job(_Row):
    """A Glacier job glacierd started or follows (inventory or retrieval)."""

    id: Mapped[int]
    job_id: Mapped[str]
    vault: Mapped[str]
    kind: Mapped[str]
    tier: Mapped[str | None]
    byte_range: Mapped[str | None]
    archive_id: Mapped[str | None]
    status: Mapped[str]
    output_path: Mapped[str | None]
    bytes_done: Mapped[int]
    bytes_total: Mapped[int | None]
    error: Mapped[str | None]
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class Event(_Row):
    """What happened, for ``glacierd status``: errors, retries, completions."""

    id: Mapped[int]
    at: Mapped[dt.datetime]
    level: Mapped[str]
    kind: Mapped[str]
    message: Mapped[str]
    file_id: Mapped[int | None]


class DaemonRecord(_Row):
    """The running daemon, as ``glacierd status`` sees it from another process."""

    id: Mapped[int]
    pid: Mapped[int]
    host: Mapped[str]
    vault: Mapped[str]
    started_at: Mapped[dt.datetime]
    heartbeat_at: Mapped[dt.datetime]
    stopped_at: Mapped[dt.datetime | None]
    status: Mapped[str]


class Restore(_Row):
    """One archive being brought back to a file."""

    id: Mapped[int]
    host: Mapped[str]
    archive_row: Mapped[int | None]
    archive_id: Mapped[str | None]
    vault: Mapped[str]
    source_path: Mapped[str]
    dest_path: Mapped[str]
    size: Mapped[int]
    tree_hash: Mapped[str]
    mtime_ns: Mapped[int]
    tier: Mapped[str]
    segment_size: Mapped[int]
    overwrite: Mapped[bool]
    job_id: Mapped[str | None]
    job_requested_at: Mapped[dt.datetime | None]
    status: Mapped[str]
    error: Mapped[str | None]
    refetches: Mapped[int]
    bytes_done: Mapped[int]
    member_offset: Mapped[int | None]
    range_first: Mapped[int | None]
    range_last: Mapped[int | None]
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]

    # Every RestoreRecord reads its segments and its archive's description (the mode):
    # loaded with the rows, so that a listing of restores is two queries, not 1 + N.
    segments: Mapped[list[RestoreSegment]]
    archive: Mapped[Archive | None]


class RestoreSegment(_Row):
    """A downloaded range whose tree hash was verified (and the partial file fsynced)."""

    id: Mapped[int]
    restore_id: Mapped[int]
    index: Mapped[int]
    offset: Mapped[int]
    length: Mapped[int]
    tree_hash: Mapped[str]
    verified_at: Mapped[dt.datetime]

    restore: Mapped[Restore]


class InventoryRecord(_Row):
    """A vault inventory glacierd fetched: its summary, and where its output is."""

    id: Mapped[int]
    vault: Mapped[str]
    job_id: Mapped[str]
    inventory_date: Mapped[dt.datetime]
    archive_count: Mapped[int]
    total_size: Mapped[int]
    output_path: Mapped[str]
    fetched_at: Mapped[dt.datetime]


class FolderProblem(_Row):
    """A folder below a watched one that the watcher cannot read, until it can."""

    id: Mapped[int]
    host: Mapped[str]
    path: Mapped[str]
    message: Mapped[str]
    since: Mapped[dt.datetime]


class MigrationItem(_Row):
    """One vault archive being moved to an S3 object (``glacierd migrate``)."""

    id: Mapped[int]
    archive_id: Mapped[str]
    vault: Mapped[str]
    bucket: Mapped[str]
    key: Mapped[str]
    size: Mapped[int]
    tree_hash: Mapped[str]
    description: Mapped[str]
    archive_created: Mapped[dt.datetime]
    storage_class: Mapped[str]
    tier: Mapped[str]
    status: Mapped[str]
    job_id: Mapped[str | None]
    job_requested_at: Mapped[dt.datetime | None]
    jobs_requested: Mapped[int]
    chunk_size: Mapped[int]
    upload_id: Mapped[str | None]
    error: Mapped[str | None]
    bytes_fetched: Mapped[int]
    source_deleted_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class MigrationChunk(_Row):
    """A chunk of job output verified against Glacier's tree hash and acknowledged
    by S3 as a part (or the whole object, for a one-chunk archive)."""

    id: Mapped[int]
    item_id: Mapped[int]
    index: Mapped[int]
    offset: Mapped[int]
    length: Mapped[int]
    tree_hash: Mapped[str]
    sha256: Mapped[str]
    acknowledged_at: Mapped[dt.datetime]


class Total(_Row):
    """A delta of the catalog's running totals (``glacierd.store.totals``)."""

    id: Mapped[int]
    kind: Mapped[str]
    key: Mapped[str]
    n: Mapped[int]
    bytes: Mapped[int]
    small_n: Mapped[int]
    small_bytes: Mapped[int]


class BundleMember(_Row):
    """A file copied into a bundle (revision 0010)."""

    id: Mapped[int]
    bundle_file: Mapped[int]
    file_id: Mapped[int]
    path: Mapped[str]
    offset: Mapped[int]
    size: Mapped[int]
    mtime_ns: Mapped[int]
    inode: Mapped[int]
    mode: Mapped[int]
    sha256: Mapped[str]
    tree_hash: Mapped[str]
    description: Mapped[str]
    replaces: Mapped[int | None]


def map_models() -> None:
    """Map every class above onto its table, once per process (thread-safe).

    Cheap after the first call: ``Store._tx`` calls it before each ORM session."""
    global _mapped, _mapping
    if _mapped:
        return
    with _lock:
        if _mapped or _mapping:
            return
        _mapping = True
        try:
            _map()
            _mapped = True
        finally:
            _mapping = False


def _map() -> None:
    from sqlalchemy.orm import registry, relationship

    mapper = registry(metadata=tables.metadata).map_imperatively
    t = tables
    mapper(File, t.files, properties={"uploads": relationship(Upload, back_populates="file")})
    mapper(Upload, t.uploads, properties={
        "file": relationship(File, back_populates="uploads", lazy="joined"),
        "parts": relationship(Part, back_populates="upload", order_by=t.parts.c.index,
                              cascade="all, delete-orphan"),
        "cipher": relationship(UploadCipher, lazy="joined", uselist=False,
                               cascade="all, delete-orphan"),
    })
    mapper(UploadCipher, t.upload_ciphers)
    mapper(Part, t.parts, properties={"upload": relationship(Upload, back_populates="parts")})
    mapper(Archive, t.archives, properties={
        "bundle": relationship(Archive, remote_side=[t.archives.c.id], lazy="joined",
                               join_depth=1, viewonly=True),
    })
    mapper(Job, t.jobs)
    mapper(Event, t.events)
    mapper(DaemonRecord, t.daemon)
    mapper(Restore, t.restores, properties={
        "segments": relationship(RestoreSegment, back_populates="restore",
                                 order_by=t.restore_segments.c.index,
                                 cascade="all, delete-orphan", lazy="selectin"),
        "archive": relationship(Archive, viewonly=True, lazy="joined"),
    })
    mapper(RestoreSegment, t.restore_segments,
           properties={"restore": relationship(Restore, back_populates="segments")})
    mapper(InventoryRecord, t.inventories)
    mapper(FolderProblem, t.folder_problems)
    mapper(MigrationItem, t.migration_items)
    mapper(MigrationChunk, t.migration_chunks)
    mapper(Total, t.totals)
    mapper(BundleMember, t.bundle_members)
