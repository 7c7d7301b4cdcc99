"""The state store's tables, as SQLAlchemy Core ``Table``s: the schema the
newest Alembic revision in ``migrations/`` builds (a test compares the two).

Core, not declarative ORM classes: every store call is a Core statement
(``glacierd.store.repository``), and importing SQLAlchemy's ORM and mapping
seventeen classes cost about 0.15 s of every command's start-up.

Times are UTC datetimes; sizes are bytes; mtimes are nanoseconds since the
epoch (what ``os.stat`` gives, so a comparison is exact). Python-side
defaults and ``onupdate`` values live on the columns, so Core inserts, ORM
flushes and the driver-cursor statements (``glacierd.store.direct``) all
apply them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator

from glacierd import pathtext

from .states import FileState, MigrationStatus, RestoreStatus, UploadStatus, utcnow


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


metadata = MetaData()


# A path the daemon has seen; never forgotten (docs/design.md invariant 7).
files = Table(
    "files",
    metadata,
    Column("id", Integer(), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("path", PathText(), nullable=False),
    Column("size", BigInteger(), nullable=False),
    Column("mtime_ns", BigInteger(), nullable=False),
    Column("inode", BigInteger(), nullable=False),
    Column("state", String(16), nullable=False, index=True, default=FileState.PENDING),
    Column("error", SafeText()),
    Column("attempts", Integer(), nullable=False, default=0),
    Column("retry_at", UTCDateTime()),
    Column("first_seen", UTCDateTime(), nullable=False, default=utcnow),
    Column("updated_at", UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow),
    # A bundle of small files (revision 0010), written in the state folder's
    # ``bundles/`` and uploaded like any file; its members are in ``bundle_members``.
    Column("is_bundle", Boolean(), nullable=False, default=False),
    UniqueConstraint("host", "path", name="uq_files_host_path"),
    # each host's last archive (status --all-hosts), without a scan
    Index("ix_files_host_state_updated", "host", "state", "updated_at"),
    # the queue, a page at a time in order (Store.pending_files; revision 0012)
    Index("ix_files_host_state_id", "host", "state", "id"),
)


# One multipart upload of one version of a file.
uploads = Table(
    "uploads",
    metadata,
    Column("id", Integer(), primary_key=True),
    Column("file_id", Integer(), ForeignKey("files.id", ondelete="RESTRICT"), nullable=False,
           index=True),
    Column("vault", String(255), nullable=False),
    Column("upload_id", String(255), unique=True),
    Column("token", String(64), nullable=False, unique=True),
    Column("description", Text(), nullable=False),
    Column("part_size", BigInteger(), nullable=False),
    Column("size", BigInteger(), nullable=False),
    Column("mtime_ns", BigInteger(), nullable=False),
    Column("inode", BigInteger(), nullable=False),
    Column("status", String(16), nullable=False, index=True, default=UploadStatus.INITIATING),
    Column("tree_hash", String(64)),
    # Encrypted uploads (revision 0007): the age file's size (``size`` stays the
    # plaintext file's: it is how a change is told) and the plaintext's SHA-256,
    # recorded with the final tree hash.
    Column("wire_size", BigInteger()),
    Column("plain_sha256", String(64)),
    # The manifest archives holding a path too long for a sealed description
    # (revision 0008): a JSON array of archive ids, written before Initiate.
    Column("manifest_ids", Text()),
    Column("error", SafeText()),
    Column("bytes_acked", BigInteger(), nullable=False, default=0),
    Column("bytes_in_flight", BigInteger(), nullable=False, default=0),
    Column("rate_bps", Float(), nullable=False, default=0.0),
    Column("eta_seconds", Float()),
    Column("progress_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
    Column("updated_at", UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow),
)


# An encrypted upload's age parameters, from before its first part until it ends
# (then the row is deleted): a resumed part is encrypted byte for byte as before.
# ``file_key`` is a secret; the store file is 0600.
upload_ciphers = Table(
    "upload_ciphers",
    metadata,
    Column("upload_row", Integer(), ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True),
    Column("file_key", LargeBinary(), nullable=False),
    Column("header", LargeBinary(), nullable=False),
    Column("nonce", LargeBinary(), nullable=False),
)


# A part Glacier acknowledged (docs/design.md invariant 2).
parts = Table(
    "parts",
    metadata,
    Column("id", Integer(), primary_key=True),
    Column("upload_id", Integer(), ForeignKey("uploads.id", ondelete="CASCADE"), nullable=False),
    Column("index", Integer(), nullable=False),
    Column("offset", BigInteger(), nullable=False),
    Column("length", BigInteger(), nullable=False),
    Column("tree_hash", String(64), nullable=False),
    Column("sha256", String(64)),
    Column("adopted", Boolean(), nullable=False, default=False),
    Column("acknowledged_at", UTCDateTime(), nullable=False, default=utcnow),
    UniqueConstraint("upload_id", "index", name="uq_parts_upload_index"),
)


# The catalog: one row per archived version of a file.
archives = Table(
    "archives",
    metadata,
    Column("id", Integer(), primary_key=True),
    Column("archive_id", String(255), unique=True),
    Column("vault", String(255), nullable=False),
    Column("size", BigInteger(), nullable=False),
    Column("tree_hash", String(64), nullable=False),
    Column("description", Text()),
    Column("source_path", PathText(), nullable=False),
    # An encrypted archive (revision 0007): ``size`` and ``tree_hash`` are the age
    # file's (what the service holds and checks); these are the plaintext's
    # (``plain_sha256`` is unknown for one adopted from an inventory).
    Column("plain_size", BigInteger()),
    Column("plain_sha256", String(64)),
    Column("manifest_ids", Text()),  # its manifest archives (revision 0008), deleted with it
    Column("mtime_ns", BigInteger(), nullable=False),
    Column("file_id", Integer(), ForeignKey("files.id"), index=True),
    Column("upload_id", Integer(), ForeignKey("uploads.id")),
    Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
    Column("deleted_at", UTCDateTime()),
    # A file packed in a bundle (revision 0010): no archive id of its own; its bytes
    # are ``size`` bytes at ``member_offset`` of the bundle's archive (``bundle_row``),
    # ``plain_sha256`` their SHA-256.
    Column("bundle_row", Integer(), ForeignKey("archives.id"), index=True),
    Column("member_offset", BigInteger()),
    # A bundle's own archive (its files have rows of their own): not listed.
    Column("is_bundle", Boolean(), nullable=False, default=False),
    Index("ix_archives_source_path", "source_path"),
    # Deleted packed files (revision 0010): the reclaimable bytes of bundles. The
    # migration makes it partial on PostgreSQL too; saying so here would load
    # SQLAlchemy's PostgreSQL dialect (and asyncio) in every command.
    Index("ix_archives_dead_members", "bundle_row",
          sqlite_where=text("deleted_at IS NOT NULL AND bundle_row IS NOT NULL")),
)


# A Glacier job glacierd started or follows (inventory or retrieval).
jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer(), primary_key=True),
    Column("job_id", String(255), nullable=False, unique=True),
    Column("vault", String(255), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("tier", String(16)),
    Column("byte_range", String(64)),
    Column("archive_id", String(255)),
    Column("status", String(16), nullable=False, index=True, default="InProgress"),
    Column("output_path", PathText()),
    Column("bytes_done", BigInteger(), nullable=False, default=0),
    Column("bytes_total", BigInteger()),
    Column("error", SafeText()),
    Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
    Column("updated_at", UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow),
)


# What happened, for ``glacierd status``: errors, retries, completions.
events = Table(
    "events",
    metadata,
    Column("id", Integer(), primary_key=True),
    Column("at", UTCDateTime(), nullable=False, index=True, default=utcnow),
    Column("level", String(8), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("message", SafeText(), nullable=False),
    Column("file_id", Integer(), ForeignKey("files.id")),
)


# The running daemon, as ``glacierd status`` sees it from another process.
daemon = Table(
    "daemon",
    metadata,
    Column("id", Integer(), primary_key=True),
    Column("pid", Integer(), nullable=False),
    Column("host", String(255), nullable=False),  # one row a host (revision 0011)
    Column("vault", String(255), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("heartbeat_at", UTCDateTime(), nullable=False),
    Column("stopped_at", UTCDateTime()),
    Column("status", Text(), nullable=False, default=""),
    UniqueConstraint("host", name="uq_daemon_host"),
)


# One archive being brought back to a file.
restores = Table(
    "restores",
    metadata,
    Column("id", Integer(), primary_key=True),
    # The machine that asked, where the file is written (revision 0011).
    Column("host", String(255), nullable=False),
    Column("archive_row", Integer(), ForeignKey("archives.id")),
    Column("archive_id", String(255), index=True),
    Column("vault", String(255), nullable=False),
    Column("source_path", PathText(), nullable=False),
    Column("dest_path", PathText(), nullable=False),
    Column("size", BigInteger(), nullable=False),
    Column("tree_hash", String(64), nullable=False),
    Column("mtime_ns", BigInteger(), nullable=False),
    Column("tier", String(16), nullable=False),
    Column("segment_size", BigInteger(), nullable=False),
    Column("overwrite", Boolean(), nullable=False, default=False),
    Column("job_id", String(255)),
    Column("job_requested_at", UTCDateTime()),
    Column("status", String(16), nullable=False, index=True, default=RestoreStatus.REQUESTED),
    Column("error", SafeText()),
    Column("refetches", Integer(), nullable=False, default=0),
    Column("bytes_done", BigInteger(), nullable=False, default=0),
    # A packed file (revision 0010): ``archive_id`` is its bundle's; the retrieval
    # asks for bytes ``range_first``-``range_last`` of it (megabyte-aligned, shared
    # by the other members restored with it) and the file is ``size`` bytes at
    # ``member_offset`` of the bundle.
    Column("member_offset", BigInteger()),
    Column("range_first", BigInteger()),
    Column("range_last", BigInteger()),
    Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
    Column("updated_at", UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow),
)


# A downloaded range whose tree hash was verified (and the partial file fsynced).
restore_segments = Table(
    "restore_segments",
    metadata,
    Column("id", Integer(), primary_key=True),
    Column("restore_id", Integer(), ForeignKey("restores.id", ondelete="CASCADE"), nullable=False),
    Column("index", Integer(), nullable=False),
    Column("offset", BigInteger(), nullable=False),
    Column("length", BigInteger(), nullable=False),
    Column("tree_hash", String(64), nullable=False),
    Column("verified_at", UTCDateTime(), nullable=False, default=utcnow),
    UniqueConstraint("restore_id", "index", name="uq_restore_segment"),
)


# A vault inventory glacierd fetched: its summary, and where its output is.
inventories = Table(
    "inventories",
    metadata,
    Column("id", Integer(), primary_key=True),
    Column("vault", String(255), nullable=False),
    Column("job_id", String(255), nullable=False, unique=True),
    Column("inventory_date", UTCDateTime(), nullable=False),
    Column("archive_count", Integer(), nullable=False),
    Column("total_size", BigInteger(), nullable=False),
    Column("output_path", Text(), nullable=False),
    Column("fetched_at", UTCDateTime(), nullable=False, default=utcnow),
)


# A folder below a watched one that the watcher cannot read, until it can:
# nothing in a watched folder is skipped in silence. Each host's daemon keeps its
# own list (revision 0011).
folder_problems = Table(
    "folder_problems",
    metadata,
    Column("id", Integer(), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("path", PathText(), nullable=False),
    Column("message", SafeText(), nullable=False),
    Column("since", UTCDateTime(), nullable=False, default=utcnow),
    UniqueConstraint("host", "path", name="uq_folder_problems_host_path"),
)


# One vault archive being moved to an S3 object (``glacierd migrate``).
migration_items = Table(
    "migration_items",
    metadata,
    Column("id", Integer(), primary_key=True),
    Column("archive_id", String(255), nullable=False, unique=True),
    Column("vault", String(255), nullable=False),
    Column("bucket", String(255), nullable=False),
    Column("key", Text(), nullable=False),
    Column("size", BigInteger(), nullable=False),
    Column("tree_hash", String(64), nullable=False),
    Column("description", Text(), nullable=False, default=""),
    Column("archive_created", UTCDateTime(), nullable=False),
    Column("storage_class", String(16), nullable=False),
    Column("tier", String(16), nullable=False),
    Column("status", String(16), nullable=False, index=True, default=MigrationStatus.PLANNED),
    Column("job_id", String(255)),
    Column("job_requested_at", UTCDateTime()),
    Column("jobs_requested", Integer(), nullable=False, default=0),
    Column("chunk_size", BigInteger(), nullable=False),
    Column("upload_id", String(255)),
    Column("error", SafeText()),
    Column("bytes_fetched", BigInteger(), nullable=False, default=0),
    Column("source_deleted_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
    Column("updated_at", UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow),
)


# A chunk of job output verified against Glacier's tree hash and acknowledged by S3
# as a part (or the whole object, for a one-chunk archive).
migration_chunks = Table(
    "migration_chunks",
    metadata,
    Column("id", Integer(), primary_key=True),
    Column("item_id", Integer(), ForeignKey("migration_items.id", ondelete="CASCADE"),
           nullable=False),
    Column("index", Integer(), nullable=False),
    Column("offset", BigInteger(), nullable=False),
    Column("length", BigInteger(), nullable=False),
    Column("tree_hash", String(64), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("acknowledged_at", UTCDateTime(), nullable=False, default=utcnow),
    UniqueConstraint("item_id", "index", name="uq_migration_chunk"),
)


# A delta of the catalog's running totals, appended by triggers
# (``glacierd.store.totals``; revision 0009) and folded by housekeeping.
totals = Table(
    "totals",
    metadata,
    Column("id", Integer(), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("key", String(255), nullable=False),
    Column("n", BigInteger(), nullable=False),
    Column("bytes", BigInteger(), nullable=False),
    Column("small_n", BigInteger(), nullable=False),
    Column("small_bytes", BigInteger(), nullable=False),
)


# A file copied into a bundle (revision 0010): committed with the bundle's row,
# before its first part; where its bytes are and what they hash to.
bundle_members = Table(
    "bundle_members",
    metadata,
    Column("id", Integer(), primary_key=True),
    Column("bundle_file", Integer(), ForeignKey("files.id", ondelete="CASCADE"), nullable=False),
    Column("file_id", Integer(), ForeignKey("files.id"), nullable=False, index=True),
    Column("path", PathText(), nullable=False),
    Column("offset", BigInteger(), nullable=False),
    Column("size", BigInteger(), nullable=False),
    Column("mtime_ns", BigInteger(), nullable=False),
    Column("inode", BigInteger(), nullable=False),
    Column("mode", Integer(), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("tree_hash", String(64), nullable=False),
    # The member's own description (path, host, mode...), kept in the catalog only:
    # its archive row's, once the bundle is archived.
    Column("description", Text(), nullable=False),
    # ``repack``: the catalog row of these same bytes in the bundle being rewritten,
    # retired when this bundle's archive is committed.
    Column("replaces", Integer(), ForeignKey("archives.id")),
    Index("ix_bundle_members_bundle_file", "bundle_file"),
)

