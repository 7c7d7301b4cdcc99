"""The migration's ledger in the state store: one row per vault archive being
moved to S3, one per acknowledged chunk (``glacierd migrate``).

The same discipline as uploads (docs/design.md §3): the S3 upload id is
committed before its first part; a chunk is recorded only after Glacier's
bytes matched their tree hash *and* S3 acknowledged the part; the object is
done only after Complete (or a HEAD that finds it ours). Every method is one
committed transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select, update

from glacierd.store.repository import Store
from glacierd.store.states import MigrationStatus, utcnow
from glacierd.store.tables import migration_chunks, migration_items


@dataclass(frozen=True)
class ChunkRecord:
    index: int
    offset: int
    length: int
    tree_hash: str
    sha256: str


@dataclass(frozen=True)
class MigrationRecord:
    id: int
    archive_id: str
    vault: str
    bucket: str
    key: str
    size: int
    tree_hash: str
    description: str
    archive_created: dt.datetime
    storage_class: str
    tier: str
    status: str
    job_id: str | None
    job_requested_at: dt.datetime | None
    jobs_requested: int
    chunk_size: int
    upload_id: str | None
    error: str | None
    bytes_fetched: int
    source_deleted_at: dt.datetime | None
    updated_at: dt.datetime


@dataclass(frozen=True)
class PlanRow:
    archive_id: str
    key: str
    size: int
    tree_hash: str
    description: str
    archive_created: dt.datetime
    chunk_size: int
    too_large: bool


_COLUMNS = [migration_items.c[f] for f in MigrationRecord.__dataclass_fields__]


class MigrationLedger:
    def __init__(self, store: Store) -> None:
        self.store = store

    def plan(self, vault: str, bucket: str, storage_class: str, tier: str,
             rows: Iterable[PlanRow]) -> int:
        """Add archives not yet in the ledger; returns how many were new. An archive
        already planned keeps its row (and its progress)."""
        rows = list(rows)
        with self.store._core_tx() as conn:
            known = set(conn.execute(select(migration_items.c.archive_id)).scalars())
            new = [r for r in rows if r.archive_id not in known]
            now = utcnow()
            for r in new:
                conn.execute(insert(migration_items).values(
                    archive_id=r.archive_id, vault=vault, bucket=bucket, key=r.key, size=r.size,
                    tree_hash=r.tree_hash, description=r.description,
                    archive_created=r.archive_created, storage_class=storage_class, tier=tier,
                    status=(MigrationStatus.TOO_LARGE if r.too_large
                            else MigrationStatus.PLANNED).value,
                    jobs_requested=0, chunk_size=r.chunk_size, bytes_fetched=0,
                    created_at=now, updated_at=now))
        return len(new)

    def items(self, statuses: Sequence[MigrationStatus] = ()) -> list[MigrationRecord]:
        query = select(*_COLUMNS).order_by(migration_items.c.id)
        if statuses:
            query = query.where(migration_items.c.status.in_([s.value for s in statuses]))
        with self.store._core_tx() as conn:
            return [MigrationRecord(*row) for row in conn.execute(query)]

    def item(self, item_id: int) -> MigrationRecord:
        with self.store._core_tx() as conn:
            row = conn.execute(select(*_COLUMNS).where(migration_items.c.id == item_id)).one()
        return MigrationRecord(*row)

    def _set(self, item: MigrationRecord, **values: object) -> MigrationRecord:
        with self.store._core_tx() as conn:
            conn.execute(update(migration_items).where(migration_items.c.id == item.id)
                         .values(updated_at=utcnow(), **values))
        return self.item(item.id)

    def job_requested(self, item: MigrationRecord, job_id: str,
                      at: dt.datetime) -> MigrationRecord:
        return self._set(item, job_id=job_id, job_requested_at=at,
                         jobs_requested=item.jobs_requested + 1,
                         status=MigrationStatus.RETRIEVING.value, error=None)

    def job_lapsed(self, item: MigrationRecord) -> MigrationRecord:
        """The job's output expired (or is about to): a new job is needed; the
        chunks S3 acknowledged stay."""
        return self._set(item, job_id=None, job_requested_at=None,
                         status=MigrationStatus.PLANNED.value)

    def copying(self, item: MigrationRecord) -> MigrationRecord:
        return self._set(item, status=MigrationStatus.COPYING.value)

    def upload_started(self, item: MigrationRecord, upload_id: str | None) -> MigrationRecord:
        """docs/design.md invariant 1: committed before the first part is sent."""
        return self._set(item, upload_id=upload_id)

    def chunk_acknowledged(self, item: MigrationRecord, chunk: ChunkRecord) -> None:
        with self.store._core_tx() as conn:
            conn.execute(insert(migration_chunks).values(
                item_id=item.id, index=chunk.index, offset=chunk.offset, length=chunk.length,
                tree_hash=chunk.tree_hash, sha256=chunk.sha256, acknowledged_at=utcnow()))
            conn.execute(update(migration_items).where(migration_items.c.id == item.id).values(
                bytes_fetched=migration_items.c.bytes_fetched + chunk.length))

    def chunks(self, item: MigrationRecord) -> dict[int, ChunkRecord]:
        with self.store._core_tx() as conn:
            rows = conn.execute(select(migration_chunks.c.index, migration_chunks.c.offset,
                                       migration_chunks.c.length, migration_chunks.c.tree_hash,
                                       migration_chunks.c.sha256)
                                .where(migration_chunks.c.item_id == item.id))
            return {int(r[0]): ChunkRecord(*r) for r in rows}

    def forget_chunks(self, item: MigrationRecord, reason: str) -> MigrationRecord:
        """The S3 upload is gone (expired, aborted): start the object again."""
        with self.store._core_tx() as conn:
            conn.execute(delete(migration_chunks).where(migration_chunks.c.item_id == item.id))
        return self._set(item, upload_id=None, error=reason, bytes_fetched=0)

    def done(self, item: MigrationRecord) -> MigrationRecord:
        return self._set(item, status=MigrationStatus.DONE.value, error=None)

    def failed(self, item: MigrationRecord, error: str) -> MigrationRecord:
        return self._set(item, status=MigrationStatus.FAILED.value, error=error)

    def retry_failed(self) -> int:
        """Failed archives go back to the plan (their acknowledged chunks stay)."""
        with self.store._core_tx() as conn:
            result = conn.execute(update(migration_items)
                                  .where(migration_items.c.status == MigrationStatus.FAILED.value)
                                  .values(status=MigrationStatus.PLANNED.value, job_id=None,
                                          job_requested_at=None))
            return int(result.rowcount or 0)

    def source_deleted(self, item: MigrationRecord, at: dt.datetime) -> MigrationRecord:
        return self._set(item, source_deleted_at=at)

    def summary(self) -> dict[str, object]:
        """Counts and bytes by status, for ``status`` and the command's report."""
        with self.store._core_tx() as conn:
            rows = conn.execute(select(migration_items.c.status, func.count(), func.sum(
                migration_items.c.size), func.sum(migration_items.c.bytes_fetched),
                func.sum(migration_items.c.jobs_requested))
                .group_by(migration_items.c.status)).all()
            first = conn.execute(select(func.min(migration_items.c.created_at))).scalar()
        by_status = {r[0]: {"archives": r[1], "bytes": int(r[2] or 0)} for r in rows}
        return {
            "archives": sum(r[1] for r in rows),
            "bytes": sum(int(r[2] or 0) for r in rows),
            "bytes_copied": sum(int(r[3] or 0) for r in rows),
            "jobs_requested": sum(int(r[4] or 0) for r in rows),
            "by_status": by_status,
            "started_at": first,
        }
