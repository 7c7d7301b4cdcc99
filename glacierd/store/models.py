"""The state store's tables (SQLAlchemy 2). Schema changes go through Alembic
revisions in ``migrations/``; this module is what the newest revision builds.

Times are UTC datetimes; sizes are bytes; mtimes are nanoseconds since the
epoch (what ``os.stat`` gives, so a comparison is exact).
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from glacierd import pathtext


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every database.

    SQLite keeps no time zone and hands back naive values; comparing those
    with an aware "now" raises. This stores UTC and always returns aware UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware UTC one")
        result: dt.datetime = value.astimezone(dt.UTC)
        return result

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        result: dt.datetime = (value.replace(tzinfo=dt.UTC) if value.tzinfo is None
                               else value.astimezone(dt.UTC))
        return result


class PathText(TypeDecorator[str]):
    """A path, stored in ``glacierd.pathtext``'s escaped form: any bytes a file name
    may hold go in and come back exactly, and the stored text is printable, so
    prefix queries and documents the database builds work on it as on any text."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else pathtext.escape(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else pathtext.unescape(value)


class SafeText(TypeDecorator[str]):
    """Free text (errors, events) that may quote a path: stored with control
    characters and undecodable bytes escaped, so it can be stored and shown."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else pathtext.guard(value)


class Base(DeclarativeBase):
    pass


class FileState(enum.StrEnum):
    PENDING = "pending"
    UPLOADING = "uploading"
    ARCHIVED = "archived"
    FAILED = "failed"
    GONE = "gone"  # no longer there: out of the queue; queued again if it comes back
    FORGOTTEN = "forgotten"  # the user said to stop retrying; queued again when it changes
    PACKED = "packed"  # copied into a bundle that is on its way (revision 0010)


class UploadStatus(enum.StrEnum):
    INITIATING = "initiating"  # row written, InitiateMultipartUpload not yet confirmed
    UPLOADING = "uploading"  # upload id known; parts being sent
    COMPLETING = "completing"  # final tree hash recorded; Complete sent or about to be
    DONE = "done"  # archive id recorded in the same transaction
    UNCONFIRMED = "unconfirmed"  # Complete's answer was lost and the upload id is gone:
    # the next inventory decides (docs/design.md invariant 5); never re-uploaded meanwhile
    ABANDONED = "abandoned"  # file changed or upload id expired; a new upload replaces it


UNFINISHED = (UploadStatus.INITIATING, UploadStatus.UPLOADING, UploadStatus.COMPLETING)


class File(Base):
    """A path the daemon has seen; never forgotten (docs/design.md invariant 7)."""

    __tablename__ = "files"
    __table_args__ = (
        UniqueConstraint("host", "path", name="uq_files_host_path"),
        # each host's last archive (status --all-hosts), without a scan
        Index("ix_files_host_state_updated", "host", "state", "updated_at"),
        # the queue, a page at a time in order (Store.pending_files; revision 0012)
        Index("ix_files_host_state_id", "host", "state", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    """The machine the file is on (revision 0011): several hosts share a catalog on
    PostgreSQL, each with its own files; a store works on its host's."""
    path: Mapped[str] = mapped_column(PathText)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    inode: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16), default=FileState.PENDING, index=True)
    error: Mapped[str | None] = mapped_column(SafeText, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    retry_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    first_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow,
                                                    onupdate=utcnow)
    is_bundle: Mapped[bool] = mapped_column(default=False)
    """A bundle of small files (revision 0010), written in the state folder's
    ``bundles/`` and uploaded like any file; its members are in ``bundle_members``."""

    uploads: Mapped[list[Upload]] = relationship(back_populates="file")


class Upload(Base):
    """One multipart upload of one version of a file."""

    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id", ondelete="RESTRICT"), index=True)
    vault: Mapped[str] = mapped_column(String(255))
    upload_id: Mapped[str | None] = mapped_column(String(255), unique=True, default=None)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text)
    part_size: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    inode: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default=UploadStatus.INITIATING, index=True)
    tree_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    # Encrypted uploads (revision 0007): the age file's size (``size`` stays the
    # plaintext file's: it is how a change is told) and the plaintext's SHA-256,
    # recorded with the final tree hash.
    wire_size: Mapped[int | None] = mapped_column(BigInteger, default=None)
    plain_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    # The manifest archives holding a path too long for a sealed description
    # (revision 0008): a JSON array of archive ids, written before Initiate.
    manifest_ids: Mapped[str | None] = mapped_column(Text, default=None)
    error: Mapped[str | None] = mapped_column(SafeText, default=None)
    bytes_acked: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_in_flight: Mapped[int] = mapped_column(BigInteger, default=0)
    rate_bps: Mapped[float] = mapped_column(Float, default=0.0)
    eta_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    progress_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow,
                                                    onupdate=utcnow)

    # Every UploadRecord carries its file's path: loaded in the same query.
    file: Mapped[File] = relationship(back_populates="uploads", lazy="joined")
    parts: Mapped[list[Part]] = relationship(back_populates="upload", order_by="Part.index",
                                             cascade="all, delete-orphan")
    cipher: Mapped[UploadCipher | None] = relationship(lazy="joined",
                                                       cascade="all, delete-orphan")


class UploadCipher(Base):
    """An encrypted upload's age parameters, from before its first part until it
    ends (then the row is deleted): a resumed part is encrypted byte for byte as
    before. ``file_key`` is a secret; the store file is 0600."""

    __tablename__ = "upload_ciphers"

    upload_row: Mapped[int] = mapped_column(ForeignKey("uploads.id", ondelete="CASCADE"),
                                            primary_key=True)
    file_key: Mapped[bytes] = mapped_column(LargeBinary)
    header: Mapped[bytes] = mapped_column(LargeBinary)
    nonce: Mapped[bytes] = mapped_column(LargeBinary)


class Part(Base):
    """A part Glacier acknowledged (docs/design.md invariant 2)."""

    __tablename__ = "parts"
    __table_args__ = (UniqueConstraint("upload_id", "index", name="uq_parts_upload_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    upload_id: Mapped[int] = mapped_column(ForeignKey("uploads.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    length: Mapped[int] = mapped_column(BigInteger)
    tree_hash: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    adopted: Mapped[bool] = mapped_column(default=False)
    acknowledged_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    upload: Mapped[Upload] = relationship(back_populates="parts")


class Archive(Base):
    """The catalog: one row per archived version of a file."""

    __tablename__ = "archives"
    __table_args__ = (
        Index("ix_archives_source_path", "source_path"),
        # Deleted packed files (revision 0010): the reclaimable bytes of bundles. The
        # migration makes it partial on PostgreSQL too; saying so here would load
        # SQLAlchemy's PostgreSQL dialect (and asyncio) in every command.
        Index("ix_archives_dead_members", "bundle_row",
              sqlite_where=text("deleted_at IS NOT NULL AND bundle_row IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    archive_id: Mapped[str | None] = mapped_column(String(255), unique=True, default=None)
    vault: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    tree_hash: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    source_path: Mapped[str] = mapped_column(PathText)
    # An encrypted archive (revision 0007): ``size`` and ``tree_hash`` are the age
    # file's (what the service holds and checks); these are the plaintext's
    # (``plain_sha256`` is unknown for one adopted from an inventory).
    plain_size: Mapped[int | None] = mapped_column(BigInteger, default=None)
    plain_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    manifest_ids: Mapped[str | None] = mapped_column(Text, default=None)
    """Its manifest archives (revision 0008), deleted with it."""
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    file_id: Mapped[int | None] = mapped_column(ForeignKey("files.id"), default=None, index=True)
    upload_id: Mapped[int | None] = mapped_column(ForeignKey("uploads.id"), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    # A file packed in a bundle (revision 0010): no archive id of its own; its bytes
    # are ``size`` bytes at ``member_offset`` of the bundle's archive (``bundle_row``),
    # ``plain_sha256`` their SHA-256.
    bundle_row: Mapped[int | None] = mapped_column(ForeignKey("archives.id"), default=None,
                                                   index=True)
    member_offset: Mapped[int | None] = mapped_column(BigInteger, default=None)
    is_bundle: Mapped[bool] = mapped_column(default=False)
    """A bundle's own archive (its files have rows of their own): not listed."""

    bundle: Mapped[Archive | None] = relationship(remote_side="Archive.id", lazy="joined",
                                                  join_depth=1, viewonly=True)


class Job(Base):
    """A Glacier job glacierd started or follows (inventory or retrieval)."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(String(255), unique=True)
    vault: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    tier: Mapped[str | None] = mapped_column(String(16), default=None)
    byte_range: Mapped[str | None] = mapped_column(String(64), default=None)
    archive_id: Mapped[str | None] = mapped_column(String(255), default=None)
    status: Mapped[str] = mapped_column(String(16), default="InProgress", index=True)
    output_path: Mapped[str | None] = mapped_column(PathText, default=None)
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_total: Mapped[int | None] = mapped_column(BigInteger, default=None)
    error: Mapped[str | None] = mapped_column(SafeText, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow,
                                                    onupdate=utcnow)


class Event(Base):
    """What happened, for ``glacierd status``: errors, retries, completions."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    level: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(SafeText)
    file_id: Mapped[int | None] = mapped_column(ForeignKey("files.id"), default=None)


class DaemonRecord(Base):
    """The running daemon, as ``glacierd status`` sees it from another process."""

    __tablename__ = "daemon"
    __table_args__ = (UniqueConstraint("host", name="uq_daemon_host"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pid: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(255))
    """One row a host (revision 0011)."""
    vault: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    stopped_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    status: Mapped[str] = mapped_column(Text, default="")


class RestoreStatus(enum.StrEnum):
    REQUESTED = "requested"  # recorded; the retrieval job is not yet initiated
    WAITING = "waiting"  # the retrieval job runs at Glacier
    DOWNLOADING = "downloading"  # output being fetched; verified segments recorded
    DONE = "done"  # renamed into place, mtime restored
    FAILED = "failed"  # with its error; kept to retry


class Restore(Base):
    """One archive being brought back to a file."""

    __tablename__ = "restores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    """The machine that asked, where the file is written (revision 0011)."""
    archive_row: Mapped[int | None] = mapped_column(ForeignKey("archives.id"), default=None)
    archive_id: Mapped[str | None] = mapped_column(String(255), default=None, index=True)
    vault: Mapped[str] = mapped_column(String(255))
    source_path: Mapped[str] = mapped_column(PathText)
    dest_path: Mapped[str] = mapped_column(PathText)
    size: Mapped[int] = mapped_column(BigInteger)
    tree_hash: Mapped[str] = mapped_column(String(64))
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    tier: Mapped[str] = mapped_column(String(16))
    segment_size: Mapped[int] = mapped_column(BigInteger)
    overwrite: Mapped[bool] = mapped_column(default=False)
    job_id: Mapped[str | None] = mapped_column(String(255), default=None)
    job_requested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    status: Mapped[str] = mapped_column(String(16), default=RestoreStatus.REQUESTED, index=True)
    error: Mapped[str | None] = mapped_column(SafeText, default=None)
    refetches: Mapped[int] = mapped_column(Integer, default=0)
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    # A packed file (revision 0010): ``archive_id`` is its bundle's; the retrieval
    # asks for bytes ``range_first``-``range_last`` of it (megabyte-aligned, shared
    # by the other members restored with it) and the file is ``size`` bytes at
    # ``member_offset`` of the bundle.
    member_offset: Mapped[int | None] = mapped_column(BigInteger, default=None)
    range_first: Mapped[int | None] = mapped_column(BigInteger, default=None)
    range_last: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow,
                                                    onupdate=utcnow)

    # Every RestoreRecord reads its segments and its archive's description (the mode):
    # loaded with the rows, so that a listing of restores is two queries, not 1 + N.
    segments: Mapped[list[RestoreSegment]] = relationship(
        back_populates="restore", order_by="RestoreSegment.index", cascade="all, delete-orphan",
        lazy="selectin")
    archive: Mapped[Archive | None] = relationship(viewonly=True, lazy="joined")


class RestoreSegment(Base):
    """A downloaded range whose tree hash was verified (and the partial file fsynced)."""

    __tablename__ = "restore_segments"
    __table_args__ = (UniqueConstraint("restore_id", "index", name="uq_restore_segment"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    restore_id: Mapped[int] = mapped_column(ForeignKey("restores.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    length: Mapped[int] = mapped_column(BigInteger)
    tree_hash: Mapped[str] = mapped_column(String(64))
    verified_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    restore: Mapped[Restore] = relationship(back_populates="segments")


class InventoryRecord(Base):
    """A vault inventory glacierd fetched: its summary, and where its output is."""

    __tablename__ = "inventories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vault: Mapped[str] = mapped_column(String(255))
    job_id: Mapped[str] = mapped_column(String(255), unique=True)
    inventory_date: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    archive_count: Mapped[int] = mapped_column(Integer)
    total_size: Mapped[int] = mapped_column(BigInteger)
    output_path: Mapped[str] = mapped_column(Text)
    fetched_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class FolderProblem(Base):
    """A folder below a watched one that the watcher cannot read, until it can:
    nothing in a watched folder is skipped in silence."""

    __tablename__ = "folder_problems"
    __table_args__ = (UniqueConstraint("host", "path", name="uq_folder_problems_host_path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    """Whose watched folder (revision 0011): each host's daemon keeps its own list."""
    path: Mapped[str] = mapped_column(PathText)
    message: Mapped[str] = mapped_column(SafeText)
    since: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MigrationStatus(enum.StrEnum):
    PLANNED = "planned"  # in the plan; no retrieval yet
    RETRIEVING = "retrieving"  # its archive-retrieval job runs at Glacier
    COPYING = "copying"  # job output streaming into S3 parts; acknowledged chunks recorded
    DONE = "done"  # the object is in S3, verified (tree hash) and completed
    FAILED = "failed"  # with its error; `glacierd migrate` tries it again
    TOO_LARGE = "too-large"  # over S3's object limit: reported, never half-copied


class MigrationItem(Base):
    """One vault archive being moved to an S3 object (``glacierd migrate``)."""

    __tablename__ = "migration_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    archive_id: Mapped[str] = mapped_column(String(255), unique=True)
    vault: Mapped[str] = mapped_column(String(255))
    bucket: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    tree_hash: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    archive_created: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    storage_class: Mapped[str] = mapped_column(String(16))
    tier: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=MigrationStatus.PLANNED, index=True)
    job_id: Mapped[str | None] = mapped_column(String(255), default=None)
    job_requested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    jobs_requested: Mapped[int] = mapped_column(Integer, default=0)
    chunk_size: Mapped[int] = mapped_column(BigInteger)
    upload_id: Mapped[str | None] = mapped_column(String(255), default=None)
    error: Mapped[str | None] = mapped_column(SafeText, default=None)
    bytes_fetched: Mapped[int] = mapped_column(BigInteger, default=0)
    source_deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow,
                                                    onupdate=utcnow)


class MigrationChunk(Base):
    """A chunk of job output verified against Glacier's tree hash and acknowledged
    by S3 as a part (or the whole object, for a one-chunk archive)."""

    __tablename__ = "migration_chunks"
    __table_args__ = (UniqueConstraint("item_id", "index", name="uq_migration_chunk"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("migration_items.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(BigInteger)
    length: Mapped[int] = mapped_column(BigInteger)
    tree_hash: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    acknowledged_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Total(Base):
    """A delta of the catalog's running totals, appended by triggers
    (``glacierd.store.totals``; revision 0009) and folded by housekeeping."""

    __tablename__ = "totals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(255))
    n: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)
    small_n: Mapped[int] = mapped_column(BigInteger)
    small_bytes: Mapped[int] = mapped_column(BigInteger)


class BundleMember(Base):
    """A file copied into a bundle (revision 0010): committed with the bundle's
    row, before its first part; where its bytes are and what they hash to."""

    __tablename__ = "bundle_members"
    __table_args__ = (Index("ix_bundle_members_bundle_file", "bundle_file"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bundle_file: Mapped[int] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"))
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id"), index=True)
    path: Mapped[str] = mapped_column(PathText)
    offset: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    inode: Mapped[int] = mapped_column(BigInteger)
    mode: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    tree_hash: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    """The member's own description (path, host, mode...), kept in the catalog only:
    its archive row's, once the bundle is archived."""
    replaces: Mapped[int | None] = mapped_column(ForeignKey("archives.id"), default=None)
    """``repack``: the catalog row of these same bytes in the bundle being rewritten,
    retired when this bundle's archive is committed."""
