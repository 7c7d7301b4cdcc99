"""Moving vault archives into S3 objects, resumably (``glacierd migrate``).

For each archive in the ledger (``store.migrations``), in steps a caller
repeats until nothing is left (``Mover.step``):

1. an archive-retrieval job (the tier asked for; at most ``max_jobs`` at once);
2. when it is ready, its output streamed in chunks of 1 MiB x 2^n (8 MiB at
   least, at most 10,000 of them: ``s3.naming.part_size``), each fetched with
   the one verified range fetch — checked against the tree hash Glacier sends
   for it *before* it goes anywhere — then sent as an S3 part with its SHA-256,
   then recorded; a kill resumes at the first unrecorded chunk, and nothing
   is kept on disk (memory: ``concurrency`` chunks);
3. the chunks' tree hashes combined must equal the inventory's tree hash; only
   then CompleteMultipartUpload (or, for a one-chunk archive, the PUT), with
   ``If-None-Match: *``; a 412 or a vanished upload is settled by a HEAD (the
   object's metadata names the archive id);
4. the object carries the description, archive id, creation date and tree hash
   (metadata, and the ``glacierd-tree-hash`` tag), so a catalog can be rebuilt
   from the bucket;
5. job output lasts 24 h: a job that is gone, or too old to trust for the
   chunks left, is requested again (the acknowledged chunks stay);
6. the source archive is deleted only when asked, only once its object is done.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import datetime as dt
import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from glacierd import description, faultpoints, locks
from glacierd.glacier import GlacierClient, limits
from glacierd.glacier.errors import (
    ChecksumMismatchError,
    GlacierError,
    ResourceNotFoundException,
    TransportError,
)
from glacierd.glacier.treehash import combine_hex
from glacierd.inventory import Inventory
from glacierd.s3 import errors as s3_errors
from glacierd.s3 import naming
from glacierd.s3.client import S3Client
from glacierd.store.migrations import ChunkRecord, MigrationLedger, MigrationRecord, PlanRow
from glacierd.store.states import MigrationStatus, utcnow

from .names import SourceArchive, plan

log = logging.getLogger("glacierd.migrate")

MAX_OBJECT = 5 * 1024**4
"""S3's object limit (5 TiB): a larger archive is reported, never half-copied."""
JOB_LIFETIME = dt.timedelta(hours=24)
ARCHIVE_ID_META = "glacier-archive-id"
CREATED_META = "glacier-created"
DESCRIPTION_META = "glacier-description"  # base64 of a description that is not glacierd's


@dataclass(frozen=True)
class MoveSettings:
    tier: str = "Bulk"
    max_jobs: int = 10
    concurrency: int = 4
    part_size: int = 16 * limits.MIB
    attempts: int = 4
    delete_source: bool = False
    job_margin: dt.timedelta = dt.timedelta(hours=1)
    """A job older than its lifetime less this margin is asked for again before
    more of its output is read: output must not lapse halfway through a chunk."""
    lock_dir: Path | None = None
    """The state directory's ``locks/``: one process moves a ledger at a time (the
    daemon's ``[migrate]`` and a ``glacierd migrate`` never both)."""


def plan_rows(prefix: str, archives: list[SourceArchive], overrides: dict[str, str],
              part_size: int) -> list[PlanRow]:
    by_id = {a.archive_id: a for a in archives}
    rows = []
    for planned in plan(prefix, archives, overrides):
        a = by_id[planned.archive_id]
        too_large = a.size > MAX_OBJECT
        chunk = naming.part_size(max(a.size, 1), part_size) if not too_large else part_size
        rows.append(PlanRow(a.archive_id, planned.key, a.size, a.tree_hash, a.description,
                            a.created, chunk, too_large))
    return rows


def plan_inventory(ledger: MigrationLedger, inv: Inventory, *, vault: str, bucket: str,
                   prefix: str, storage_class: str, tier: str, part_size: int,
                   overrides: dict[str, str] | None = None) -> list[PlanRow]:
    """The plan for every archive of the inventory, added to the ledger (archives
    already there keep their rows and progress); returns the plan."""
    archives = [SourceArchive(a.archive_id, a.description, a.created, a.size, a.tree_hash)
                for a in inv.archives]
    rows = plan_rows(prefix, archives, overrides or {}, part_size)
    ledger.plan(vault, bucket, storage_class, tier, rows)
    return rows


def _completed_at(job: dict[str, object]) -> dt.datetime | None:
    text = job.get("CompletionDate")
    if not isinstance(text, str) or not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


class _JobLapsed(Exception):
    """The retrieval job's output is gone (or too old): ask for it again."""


class Mover:
    def __init__(self, ledger: MigrationLedger, glacier: GlacierClient, vault: str,
                 s3: S3Client, settings: MoveSettings,
                 now: Callable[[], dt.datetime] = utcnow) -> None:
        self.ledger = ledger
        self.glacier = glacier
        self.vault = vault
        self.s3 = s3
        self.settings = settings
        self.now = now
        self.stopping = threading.Event()
        self.busy = False

    # --- the loop ---------------------------------------------------------------------

    def step(self) -> bool:
        """Request jobs (as slots allow), follow them, copy what is ready. Returns
        True while archives remain to be moved. When another process is moving
        this ledger, does nothing and sets ``busy``."""
        with locks.exclusive(self.settings.lock_dir, "migration") as mine:
            self.busy = not mine
            if not mine:
                return True
            return self._step()

    def _step(self) -> bool:
        active = self.ledger.items([MigrationStatus.RETRIEVING, MigrationStatus.COPYING])
        slots = self.settings.max_jobs - len(active)
        for item in self.ledger.items([MigrationStatus.PLANNED]):
            if slots <= 0 or self.stopping.is_set():
                break
            self._request(item)
            slots -= 1
        for item in self.ledger.items([MigrationStatus.RETRIEVING, MigrationStatus.COPYING]):
            if self.stopping.is_set():
                break
            self._follow(item)
        return bool(self.ledger.items([MigrationStatus.PLANNED, MigrationStatus.RETRIEVING,
                                       MigrationStatus.COPYING]))

    def _request(self, item: MigrationRecord) -> None:
        if self._already_there(item):
            return
        job_id = self.glacier.initiate_archive_retrieval(self.vault, item.archive_id,
                                                         tier=item.tier,
                                                         description="glacierd migrate")
        self.ledger.job_requested(item, job_id, self.now())
        log.info("%s: retrieval requested (%s, job %s)", item.key, item.tier, job_id)

    def _follow(self, item: MigrationRecord) -> None:
        try:
            if item.status == MigrationStatus.COPYING and len(self.ledger.chunks(item)) == \
                    limits.part_count(item.size, item.chunk_size):
                self._copy(item)  # every chunk is in S3: the job is not needed any more
                return
            assert item.job_id is not None
            try:
                job = self.glacier.describe_job(self.vault, item.job_id)
            except ResourceNotFoundException:
                raise _JobLapsed() from None
            status = job.get("StatusCode")
            if status == "Failed":
                self.ledger.failed(item, f"retrieval job failed: {job.get('StatusMessage')}")
            elif status == "Succeeded":
                self._copy(self.ledger.copying(item), _completed_at(job))
        except _JobLapsed:
            log.info("%s: job output lapsed; requesting it again", item.key)
            self.ledger.job_lapsed(self.ledger.item(item.id))
        except GlacierError as exc:  # S3 or Glacier refused, after retries: try it later
            log.error("%s: %s", item.key, exc)
            self.ledger.failed(self.ledger.item(item.id), str(exc))

    # --- copying ------------------------------------------------------------------------

    def _metadata(self, item: MigrationRecord) -> dict[str, str]:
        meta = {ARCHIVE_ID_META: item.archive_id,
                CREATED_META: item.archive_created.strftime("%Y-%m-%dT%H:%M:%SZ")}
        if description.public_part(item.description) is not None:  # sealed ones too
            meta[naming.METADATA_NAME] = item.description  # the catalog reads it as is
        elif item.description:
            meta[DESCRIPTION_META] = base64.b64encode(item.description.encode()).decode()
        return meta

    def _copy(self, item: MigrationRecord, completed: dt.datetime | None = None) -> None:
        """``completed``: when the job finished (its output lasts 24 h from then)."""
        ranges = list(limits.part_ranges(item.size, item.chunk_size))
        single = len(ranges) == 1
        if not single:
            item = self._ensure_upload(item)
        acked = self.ledger.chunks(item)
        todo = [r for r in ranges if r.index not in acked]
        if todo:
            self._check_job_age(item, completed)
            try:
                self._send(item, todo, single)
            except (ChecksumMismatchError, TransportError) as exc:
                if not self.ledger.chunks(item):  # no part of it in S3: no upload left behind
                    item = self._start_over(item)
                self.ledger.failed(item, f"job output could not be read intact: {exc.message}; "
                                         "nothing of it was written to S3")
                return
            acked = self.ledger.chunks(item)
        whole = combine_hex([acked[r.index].tree_hash for r in ranges])
        if whole != item.tree_hash:
            self._start_over(item)
            self.ledger.failed(item, f"the copied bytes' tree hash {whole} is not the "
                                     f"inventory's {item.tree_hash}; nothing was completed")
            return
        if not single and not self._complete(item, [acked[r.index] for r in ranges]):
            return
        self.s3.put_object_tagging(item.bucket, item.key, {naming.TREE_HASH_TAG: item.tree_hash})
        self.ledger.done(item)
        log.info("%s: copied and verified (%d bytes)", item.key, item.size)
        if self.settings.delete_source:
            self._delete_source(self.ledger.item(item.id))

    def _check_job_age(self, item: MigrationRecord, completed: dt.datetime | None) -> None:
        """Output lasts 24 h from the job's completion (from its request when that is
        not known): too close to the end, the job is asked for again first."""
        since = completed or item.job_requested_at
        if since is not None and self.now() - since > JOB_LIFETIME - self.settings.job_margin:
            raise _JobLapsed()

    def _ensure_upload(self, item: MigrationRecord) -> MigrationRecord:
        """The object's multipart upload: started (and committed) once; one S3 has
        forgotten, or whose parts do not match the ledger, starts over."""
        if item.upload_id is not None:
            try:
                listed = {int(p["PartNumber"]) - 1 for p in
                          self.s3.list_parts(item.bucket, item.key, item.upload_id)}
            except s3_errors.NoSuchUpload:
                item = self.ledger.forget_chunks(item, "the S3 upload expired: started over")
            else:
                if not set(self.ledger.chunks(item)) <= listed:
                    item = self._start_over(item)
        if item.upload_id is None:
            upload_id = self.s3.create_multipart_upload(item.bucket, item.key, item.storage_class,
                                                        metadata=self._metadata(item))
            item = self.ledger.upload_started(item, upload_id)
        return item

    def _start_over(self, item: MigrationRecord) -> MigrationRecord:
        if item.upload_id is not None:
            with contextlib.suppress(s3_errors.NoSuchUpload):
                self.s3.abort_multipart_upload(item.bucket, item.key, item.upload_id)
        return self.ledger.forget_chunks(item, "started over")

    def _send(self, item: MigrationRecord, todo: list[limits.PartRange], single: bool) -> None:
        """Fetch, verify and send ``todo``, ``concurrency`` chunks at a time."""
        assert item.job_id is not None
        job_id = item.job_id
        failed = threading.Event()

        def one(part: limits.PartRange) -> None:
            if failed.is_set() or self.stopping.is_set():
                return
            buffer = bytearray(part.length)
            view = memoryview(buffer)

            def write(offset: int, chunk: bytes) -> None:
                view[offset - part.offset:offset - part.offset + len(chunk)] = chunk

            try:
                tree = self.glacier.fetch_verified(self.vault, job_id, part.offset, part.last,
                                                   write, attempts=self.settings.attempts)
                sha = hashlib.sha256(view).hexdigest()
                if single:
                    if tree != item.tree_hash:  # the PUT makes the object: check first
                        raise ChecksumMismatchError(
                            f"archive {item.archive_id}: tree hash {tree}, the inventory says "
                            f"{item.tree_hash}")
                    self._put(item, view, sha, tree)
                else:
                    assert item.upload_id is not None
                    self.s3.upload_part(item.bucket, item.key, item.upload_id, part.index + 1,
                                        view, sha256=sha)
            except ResourceNotFoundException as exc:
                failed.set()
                raise _JobLapsed() from exc
            except BaseException:
                failed.set()
                raise
            self.ledger.chunk_acknowledged(item, ChunkRecord(part.index, part.offset,
                                                             part.length, tree, sha))
            faultpoints.hit("migrate-after-chunk")

        workers = max(1, min(self.settings.concurrency, len(todo)))
        with concurrent.futures.ThreadPoolExecutor(workers,
                                                   thread_name_prefix="glacierd-migrate") as pool:
            futures = [pool.submit(one, part) for part in todo]
        for future in futures:
            future.result()  # the first failure, in chunk order

    def _put(self, item: MigrationRecord, data: memoryview, sha: str, tree: str) -> None:
        try:
            self.s3.put_object(item.bucket, item.key, data, sha256=sha,
                               storage_class=item.storage_class,
                               metadata={**self._metadata(item), naming.TREE_HASH_TAG: tree})
        except s3_errors.PreconditionFailed:
            if not self._ours(item):
                raise s3_errors.S3Error(f"s3://{item.bucket}/{item.key} exists and is not "
                                        f"archive {item.archive_id}", status=412) from None

    def _complete(self, item: MigrationRecord, chunks: list[ChunkRecord]) -> bool:
        assert item.upload_id is not None
        try:
            listed = {int(p["PartNumber"]): p for p in
                      self.s3.list_parts(item.bucket, item.key, item.upload_id)}
            parts = [(c.index + 1, listed[c.index + 1].get("ETag", ""), naming.b64(c.sha256))
                     for c in chunks]
            self.s3.complete_multipart_upload(item.bucket, item.key, item.upload_id, parts)
        except (s3_errors.PreconditionFailed, s3_errors.NoSuchUpload):
            if not self._ours(item):
                self.ledger.forget_chunks(item, "the upload vanished before Complete")
                self.ledger.job_lapsed(self.ledger.item(item.id))
                return False
        except KeyError as missing:
            self._start_over(item)
            self.ledger.failed(item, f"S3 does not list part {missing}; started over")
            return False
        return True

    def _ours(self, item: MigrationRecord) -> bool:
        try:
            head = self.s3.head_object(item.bucket, item.key)
        except s3_errors.NotFound:
            return False
        return head.metadata.get(ARCHIVE_ID_META) == item.archive_id and head.size == item.size

    def _already_there(self, item: MigrationRecord) -> bool:
        """An object of this archive made by an earlier run whose last record was
        lost: done, without a retrieval."""
        if not self._ours(item):
            return False
        self.s3.put_object_tagging(item.bucket, item.key, {naming.TREE_HASH_TAG: item.tree_hash})
        self.ledger.done(item)
        return True

    def _delete_source(self, item: MigrationRecord) -> None:
        age = (self.now() - item.archive_created).days
        if age < 90:
            log.warning("%s: archive %s is %d days old: the vault charges for the rest of "
                        "its 90 days", item.key, item.archive_id, age)
        try:
            self.glacier.delete_archive(self.vault, item.archive_id)
        except ResourceNotFoundException:
            pass
        except GlacierError as exc:
            log.error("archive %s: not deleted from the vault: %s", item.archive_id, exc)
            return
        self.ledger.source_deleted(item, self.now())
