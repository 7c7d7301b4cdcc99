"""Restores: retrieval jobs, then resumable, verified downloads.

Symmetric to the uploader (docs/design.md §3): the request and its job are in the
store; the output is fetched in tree-hash-aligned segments into
``NAME.glacierd-partial``; each segment is checked against the tree hash
Glacier sends for it, fsynced, and recorded as verified in its own
transaction, so a restart continues at the first unverified segment. The
file is renamed into place only when the whole tree hash matches the
catalog's, with its mtime restored: the final name never holds a half or
wrong file, and an existing file is never replaced without ``overwrite``.

An encrypted archive (an age file) is downloaded and verified the same way,
and decrypted while it downloads: each verified segment, as soon as the ones
before it are (``encryption.OrderedDecryption``), into a second partial file
(``NAME.plain.glacierd-partial``) whose size and SHA-256 must match the
catalog's before that one is renamed into place. A chunk that does not
authenticate (a tampered or truncated archive, a swapped header) fails the
restore and leaves neither file. The age file stays on disk until the rename:
the restore needs room for the file twice.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import errno
import logging
import os
import stat
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from glacierd import faultpoints, locks, metrics
from glacierd.backends import (
    Backend,
    NoRetrievalCapacity,
    ObjectMissing,
    Retrieval,
    RetrievalGone,
    RetrievalStatus,
)
from glacierd.errors import RestoreError
from glacierd.glacier import (
    ChecksumMismatchError,
    GlacierError,
    TransportError,
    limits,
)
from glacierd.glacier.files import fsync_dir
from glacierd.glacier.treehash import tree_hash_file
from glacierd.pathtext import shown
from glacierd.safepath import safe_relative_path
from glacierd.store.repository import ArchiveRecord, RestoreRecord, Store
from glacierd.store.states import RestoreStatus, utcnow

if TYPE_CHECKING:
    from glacierd.encryption import OrderedDecryption

log = logging.getLogger("glacierd.restorer")

MAX_REFETCHES = 3

RestoreProgress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RestoreSettings:
    restore_dir: Path
    tier: str = "Standard"
    segment_size: int = 64 * limits.MIB
    max_concurrent_jobs: int = 10
    concurrency: int = 4  # segments fetched at once
    lock_dir: Path | None = None
    """The state directory's ``locks/``: the daemon and ``restore --wait`` never
    download one restore at the same time (one of them gets its lock)."""
    identities: tuple[bytes, ...] = field(default=(), repr=False)
    """age identities (``[encryption] identity_file``): encrypted archives need one."""


def pick_versions(archives: Iterable[ArchiveRecord], *, before: dt.datetime | None = None,
                  version: int | None = None) -> list[ArchiveRecord]:
    """One archive per source path: the newest, the newest before a date, or the
    N-th version (1 is the oldest). Pure."""
    by_path: dict[str, list[ArchiveRecord]] = {}
    for archive in archives:
        by_path.setdefault(archive.source_path, []).append(archive)
    chosen = []
    for path in sorted(by_path):
        versions = sorted(by_path[path], key=lambda a: (a.created_at, a.id))
        if before is not None:
            versions = [a for a in versions if a.created_at < before]
        if not versions:
            continue
        if version is not None:
            if not 1 <= version <= len(versions):
                continue
            chosen.append(versions[version - 1])
        else:
            chosen.append(versions[-1])
    return chosen


class Restorer:
    def __init__(self, store: Store, backend: Backend, settings: RestoreSettings, *,
                 now: Callable[[], dt.datetime] = utcnow,
                 on_progress: RestoreProgress | None = None) -> None:
        self.store = store
        self.backend = backend
        self.settings = settings
        self.now = now
        self.on_progress = on_progress
        self.strip: str | None = None
        """A folder: files are restored relative to it (``restore --strip``)."""

    # --- choosing what to restore -----------------------------------------------------

    def select(self, paths: Iterable[str] = (), archive_ids: Iterable[str] = (), *,
               before: dt.datetime | None = None, version: int | None = None,
               host: str | None = None) -> list[ArchiveRecord]:
        """Catalog entries for paths (files or folder prefixes) and archive ids;
        ``host``: paths as that host archived them (``restore --host``)."""
        chosen: dict[int, ArchiveRecord] = {}
        for given in paths:
            path = os.path.abspath(given)
            candidates = [a for a in self.store.archives(path, host)
                          if a.source_path == path or a.source_path.startswith(
                              path.rstrip("/") + "/")]
            picked = pick_versions(candidates, before=before, version=version)
            if not picked:
                raise RestoreError(f"{given}: nothing in the catalog"
                                   + (" matches that version or date"
                                      if candidates else " under that path")
                                   + (f" from host {host!r}" if host else ""))
            chosen.update((a.id, a) for a in picked)
        for archive_id in archive_ids:
            archive = self.store.archive_by_id(archive_id)
            if archive is None:
                raise RestoreError(f"archive id {archive_id}: not in the catalog")
            chosen[archive.id] = archive
        return list(chosen.values())

    def destination(self, archive: ArchiveRecord, to_dir: Path) -> Path:
        source = archive.source_path
        if self.strip and source.startswith(self.strip.rstrip("/") + "/"):
            source = source[len(self.strip.rstrip("/")) + 1:]
        relative, changed = safe_relative_path(source)
        if changed:
            log.warning("archive %s: path %s made safe as %s", archive.archive_id,
                        shown(archive.source_path), shown(relative))
        return to_dir / relative

    # --- requesting -------------------------------------------------------------------

    def request(self, archives: Iterable[ArchiveRecord], to_dir: Path | None = None, *,
                overwrite: bool = False, tier: str | None = None) -> list[RestoreRecord]:
        """Record the restores and start their retrieval jobs (as slots allow)."""
        target = (to_dir or self.settings.restore_dir).resolve()
        planned = [(a, self.destination(a, target)) for a in archives]
        locked = [a for a, _dest in planned if a.encrypted and not self.settings.identities]
        if locked:
            raise RestoreError(
                f"archive {locked[0].archive_id} ({shown(locked[0].source_path)}) is encrypted"
                + (f", and {len(locked) - 1} more," if len(locked) > 1 else "")
                + ": set [encryption] identity_file to the key it was encrypted to; nothing "
                  "was requested")
        # A file already in place with the archive's size and tree hash is a finished
        # restore (a rerun after some files landed, or a kill before the DONE record).
        finished = {a.id for a, dest in planned
                    if already_restored(dest, a.size, a.tree_hash, a.plain_size,
                                        a.plain_sha256)}
        if not overwrite:
            existing = [shown(dest) for a, dest in planned
                        if a.id not in finished and os.path.lexists(dest)]
            if existing:
                raise RestoreError(f"{existing[0]} exists (and {len(existing) - 1} more) with "
                                   "other content; nothing was requested: use --overwrite to "
                                   "replace them" if len(existing) > 1 else
                                   f"{existing[0]} exists with other content; nothing was "
                                   "requested: use --overwrite to replace it")
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RestoreError(f"{shown(target)}: the restore folder cannot be created: "
                               f"{exc.strerror}") from None
        if not os.access(target, os.W_OK | os.X_OK):
            raise RestoreError(f"{shown(target)}: the restore folder is not writable")
        ranges = retrieval_ranges([a for a, _dest in planned])
        records = []
        for archive, dest in planned:
            previous = self.store.open_restore(archive.id, str(dest))
            if archive.id in finished:
                record = previous or self.store.add_restore(
                    archive, str(dest), tier or self.settings.tier, self.settings.segment_size,
                    overwrite, ranges.get(archive.id))
                self.store.set_restore_status(record, RestoreStatus.DONE)
                records.append(record)
                continue
            if previous is not None:  # asked again: resume it, verified segments and all
                record = self.store.restore_job(  # no job yet: clear the old claim too
                    previous, previous.job_id,
                    previous.job_requested_at if previous.job_id else None)
                records.append(record)
                continue
            record = self.store.add_restore(archive, str(dest), tier or self.settings.tier,
                                            self.settings.segment_size, overwrite,
                                            ranges.get(archive.id))
            if archive.archive_id is None and not archive.packed:  # an empty file: Glacier
                # has nothing to give
                self._finish_empty(record)
            records.append(self.store.restore(record.id))
        self.start_jobs()
        return [self.store.restore(r.id) for r in records]

    def _finish_empty(self, record: RestoreRecord) -> None:
        dest = Path(record.dest_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(record.partial_path)
        with open(partial, "wb") as fh:
            os.fsync(fh.fileno())
        _give_back_metadata(partial, record)
        os.replace(partial, dest)
        self.store.set_restore_status(record, RestoreStatus.DONE)

    def start_jobs(self) -> None:
        """Initiate retrieval jobs for requested restores, up to the concurrency limit."""
        # Jobs, not restores, are counted: the files of one bundle share one job.
        waiting = len({r.job_id for r in self.store.restores([RestoreStatus.WAITING,
                                                              RestoreStatus.DOWNLOADING])})
        for record in self.store.restores([RestoreStatus.REQUESTED]):
            shares = record.packed and self.store.shared_retrieval(record) is not None
            if not shares and waiting >= self.settings.max_concurrent_jobs:
                continue  # a later one may share a job under way
            self._initiate(record)
            waiting += 0 if shares else 1

    def _initiate(self, record: RestoreRecord, expired: str | None = None) -> None:
        """Request the retrieval; a packed file's is shared with the other files of its
        bundle restored with it (the first one asks; ``expired``: a job not to share)."""
        assert record.archive_id is not None
        if not self.store.claim_restore(record, self.now()):
            return  # another process is starting this one
        if record.packed:
            shared = self.store.shared_retrieval(record)
            if shared is not None and shared[0] != expired:
                self.store.restore_job(record, shared[0], shared[1])
                return
        byte_range = ((record.range_first, record.range_last)
                      if record.range_first is not None and record.range_last is not None
                      else None)
        try:
            job_id = self.backend.request_retrieval(record.archive_id, record.tier,
                                                    byte_range)
        except NoRetrievalCapacity as exc:
            self.store.set_restore_status(record, RestoreStatus.FAILED,
                                          f"no {record.tier} capacity now ({exc.message}); "
                                          "request it again with --tier Standard")
            return
        except ObjectMissing:
            self.store.set_restore_status(record, RestoreStatus.FAILED,
                                          f"archive {record.archive_id} is not in "
                                          f"{self.backend.name}")
            return
        except BaseException:
            self.store.release_restore(record)  # someone may try again
            raise
        self.store.restore_job(record, job_id, self.now(), new_job=True)

    # --- following jobs and downloading -----------------------------------------------------

    def poll(self) -> None:
        """Start due jobs, follow running ones, download what is ready."""
        self.start_jobs()
        states: dict[str, Retrieval] = {}  # a shared job (a bundle's) is asked once a poll
        for record in self.store.restores([RestoreStatus.WAITING, RestoreStatus.DOWNLOADING]):
            self._follow(record, states)

    def _follow(self, record: RestoreRecord, states: dict[str, Retrieval] | None = None) -> None:
        assert record.job_id is not None
        lifetime = self.backend.retrieval_lifetime
        expired = (lifetime is not None and record.job_requested_at is not None
                   and self.now() - record.job_requested_at > lifetime)
        assert record.archive_id is not None
        state = None
        if not expired:
            known = states.get(record.job_id) if states is not None else None
            state = known or self.backend.retrieval(record.job_id, record.archive_id)
            if states is not None:
                states[record.job_id] = state
        if state is None or state.status == RetrievalStatus.GONE:
            log.info("%s: retrieval job %s expired; requesting it again", shown(record.source_path),
                     record.job_id)
            self.store.restore_job(record, None, None)
            self._initiate(self.store.restore(record.id), expired=record.job_id)
            return
        if state.status == RetrievalStatus.IN_PROGRESS:
            return
        if state.status == RetrievalStatus.FAILED:
            self.store.update_job(record.job_id, "Failed", missing_ok=True,
                                  error=state.message or "failed")
            self.store.set_restore_status(record, RestoreStatus.FAILED,
                                          f"retrieval job failed: {state.message}")
            return
        try:
            self.download(record)
        except RetrievalGone:
            self.store.restore_job(record, None, None)
            self._initiate(self.store.restore(record.id))

    def download(self, record: RestoreRecord) -> RestoreRecord:
        """Fetch the unverified segments, verify the whole, rename into place.

        The daemon and ``restore --wait`` may both get here: the one that holds the
        restore's lock does it all, the DONE record included; the other leaves it.
        """
        with locks.exclusive(self.settings.lock_dir, f"restore {record.id}") as mine:
            if not mine:
                return self.store.restore(record.id)
            return self._download(self.store.restore(record.id))  # as others left it

    def _download(self, record: RestoreRecord) -> RestoreRecord:
        if record.status in (RestoreStatus.DONE, RestoreStatus.FAILED) or record.job_id is None:
            return record
        if record.packed:
            return self._download_member(record)
        dest, partial = Path(record.dest_path), Path(record.partial_path)
        if already_restored(dest, record.size, record.tree_hash, record.plain_size,
                            record.plain_sha256):  # killed before DONE
            partial.unlink(missing_ok=True)  # an encrypted one's verified ciphertext
            self.store.set_restore_status(record, RestoreStatus.DONE)
            return self.store.restore(record.id)
        if os.path.lexists(dest) and not record.overwrite:
            return self._fail(record, f"{shown(dest)} appeared meanwhile; not overwritten")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(partial, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            return self._fail(record, f"{shown(partial)}: cannot be written: {exc.strerror}")
        verified = dict(record.verified)
        if verified and os.fstat(fd).st_size == 0:  # the partial file was lost
            self.store.forget_segments(record, refetch=False)
            verified = {}
        # The backend may hold the archive in ranges of its own (an S3 object's parts,
        # each with its checksum); otherwise the size recorded with the restore.
        assert record.archive_id is not None
        segment_size = self.backend.segment_size(record.job_id, record.archive_id, record.size,
                                                 record.segment_size)
        segments = list(limits.part_ranges(record.size, segment_size))
        done = sum(p.length for p in segments if p.index in verified)
        if self.on_progress:  # where it starts: above 0, it resumes
            self.on_progress(record.dest_path, done, record.size)
        todo = [seg for seg in segments if seg.index not in verified]
        lock = threading.Lock()
        decrypting = None

        def fetch(seg: limits.PartRange) -> None:
            nonlocal done
            got = self._segment(record, fd, seg)
            with lock:
                verified[seg.index] = got
                done += seg.length
                if self.on_progress:
                    self.on_progress(record.dest_path, done, record.size)
                if decrypting is not None:  # what now follows, verified, on the part done
                    decrypting.advance(verified)

        undecryptable: tuple[type[Exception], ...] = ()  # (no cryptography for plain ones)
        try:
            if record.encrypted:
                from glacierd.encryption import AgeError, OrderedDecryption

                undecryptable = (AgeError,)
                decrypting = OrderedDecryption(fd, Path(record.plain_partial_path), segments,
                                               self.settings.identities)
                decrypting.advance(verified)  # a resumed restore: the part verified before
            # Segments in parallel: each streams into its own range of the file and is
            # checked, fsynced and recorded on its own, so memory is a few blocks a
            # segment and a kill loses at most the segments in flight.
            self._each_at_once(fetch, todo)
        except OSError as exc:
            if decrypting is not None:
                decrypting.close()
            reason = ("the disk is full" if exc.errno == errno.ENOSPC else exc.strerror)
            return self._fail(record, f"{shown(partial)}: {reason}; the verified part is kept and "
                                      "the restore can be retried")
        except _SegmentRejected as exc:
            if decrypting is not None:
                decrypting.close()
            return self._fail(record, str(exc))
        except undecryptable as exc:
            assert decrypting is not None
            decrypting.close()
            return self._undecryptable(record, exc)
        finally:
            os.close(fd)
        whole = self.backend.whole_checksum([verified[i] for i in range(len(verified))])
        if whole != record.tree_hash:
            if decrypting is not None:
                decrypting.close()
            self.store.forget_segments(record)
            again = self.store.restore(record.id)
            if again.refetches > MAX_REFETCHES:
                partial.unlink(missing_ok=True)
                return self._fail(record, f"the downloaded archive's tree hash {whole} does not "
                                          f"match the catalog's {record.tree_hash}")
            return again
        if decrypting is not None:
            decrypted = self._decrypted(record, decrypting)
            if isinstance(decrypted, RestoreRecord):
                return decrypted  # failed, and said why
            partial, record = decrypted
        assert record.job_id is not None
        _give_back_metadata(partial, record)
        os.replace(partial, dest)
        Path(record.partial_path).unlink(missing_ok=True)  # an encrypted one's ciphertext
        faultpoints.hit("after-restore-rename")
        fsync_dir(dest.parent)
        self.store.set_restore_status(record, RestoreStatus.DONE)
        self.store.update_job(record.job_id, "Downloaded", output_path=str(dest),
                              missing_ok=True)
        log.info("restored %s to %s", shown(record.source_path), shown(dest))
        return self.store.restore(record.id)

    def _download_member(self, record: RestoreRecord) -> RestoreRecord:
        """A packed file: its bytes alone, from the bundle's retrieval (one ranged
        request), checked against the SHA-256 its bundle's index and the catalog
        hold, then given its mode and mtime and renamed into place."""
        assert record.job_id is not None and record.archive_id is not None
        assert record.member_offset is not None and record.plain_sha256 is not None
        dest, partial = Path(record.dest_path), Path(record.partial_path)
        if already_restored(dest, record.size, record.tree_hash, None, record.plain_sha256):
            self.store.set_restore_status(record, RestoreStatus.DONE)
            return self.store.restore(record.id)
        if os.path.lexists(dest) and not record.overwrite:
            return self._fail(record, f"{shown(dest)} appeared meanwhile; not overwritten")
        # A vault job's output is the range retrieved; S3's copy is the whole object.
        first = record.member_offset - (record.range_first or 0 if self.backend.retrieves_ranges
                                        else 0)
        last = first + record.size - 1
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as exc:
            return self._fail(record, f"{shown(partial)}: cannot be written: {exc.strerror}")
        try:
            for _attempt in range(MAX_REFETCHES + 1):
                os.ftruncate(fd, 0)
                try:
                    self.backend.fetch(record.job_id, record.archive_id, first, last,
                                       lambda at, chunk: os.pwrite(fd, chunk, at - first),
                                       attempts=MAX_REFETCHES + 1, plain_range=True)
                except (ChecksumMismatchError, TransportError) as exc:
                    return self._fail(record, f"bytes {first}-{last} of bundle "
                                              f"{record.archive_id} could not be fetched: "
                                              f"{exc.message}")
                got = sha256_fd(fd)
                if got == record.plain_sha256:
                    break
                count = self.store.count_refetch(record)
                log.warning("%s: its bytes in bundle %s hash to %s, not %s; fetching them "
                            "again (%d)", shown(record.source_path), record.archive_id, got,
                            record.plain_sha256, count)
            else:
                partial.unlink(missing_ok=True)
                return self._fail(record, f"its bytes in bundle {record.archive_id} do not "
                                          f"match the SHA-256 {record.plain_sha256} it was "
                                          "packed with; no file was written")
            os.fsync(fd)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            reason = "the disk is full" if exc.errno == errno.ENOSPC else exc.strerror
            return self._fail(record, f"{shown(partial)}: {reason}")
        finally:
            os.close(fd)
        metrics.PROCESS.add("restored_bytes", record.size)
        _give_back_metadata(partial, record)
        os.replace(partial, dest)
        fsync_dir(dest.parent)
        self.store.set_restore_status(record, RestoreStatus.DONE)
        if self.on_progress:
            self.on_progress(record.dest_path, record.size, record.size)
        log.info("restored %s to %s (from bundle %s)", shown(record.source_path), shown(dest),
                 record.archive_id)
        return self.store.restore(record.id)

    def _each_at_once(self, work: Callable[[limits.PartRange], None],
                      segments: list[limits.PartRange]) -> None:
        """``work`` on every segment, ``settings.concurrency`` at a time; the first
        failure stops new ones and is raised once those under way have ended."""
        if self.settings.concurrency <= 1 or len(segments) <= 1:
            for seg in segments:
                work(seg)
            return
        failed = threading.Event()

        def guarded(seg: limits.PartRange) -> None:
            if failed.is_set():
                return
            try:
                work(seg)
            except BaseException:
                failed.set()
                raise

        with concurrent.futures.ThreadPoolExecutor(
                min(self.settings.concurrency, len(segments)),
                thread_name_prefix="glacierd-restore") as pool:
            futures = [pool.submit(guarded, seg) for seg in segments]
        for future in futures:
            future.result()  # the first failure, in segment order, propagates

    def _segment(self, record: RestoreRecord, fd: int, seg: limits.PartRange) -> str:
        """One segment, fetched and checked by the client's verified range fetch, then
        fsynced and recorded as verified in its own transaction."""
        assert record.job_id is not None and record.archive_id is not None

        def mismatch(detail: str) -> None:
            count = self.store.count_refetch(record)
            log.warning("%s: bytes %d-%d do not match (%s); fetching them again (%d)",
                        shown(record.source_path), seg.offset, seg.last, detail, count)

        try:
            got = self.backend.fetch(
                record.job_id, record.archive_id, seg.offset, seg.last,
                lambda offset, chunk: os.pwrite(fd, chunk, offset),  # local errors propagate
                attempts=MAX_REFETCHES + 1, on_mismatch=mismatch)
        except (ChecksumMismatchError, TransportError) as exc:
            raise _SegmentRejected(f"bytes {seg.offset}-{seg.last} could not be fetched intact "
                                   f"after {MAX_REFETCHES + 1} attempts: {exc.message}") from None
        os.fsync(fd)
        self.store.segment_verified(record, seg.index, seg.offset, seg.length, got)
        metrics.PROCESS.add("restored_bytes", seg.length)
        return got

    def _undecryptable(self, record: RestoreRecord, exc: Exception) -> RestoreRecord:
        """The age file matched the service's hashes but does not decrypt: the
        archive itself is at fault (tampered, truncated, another header). Neither
        partial file is kept; fetching it again cannot help."""
        Path(record.plain_partial_path).unlink(missing_ok=True)
        Path(record.partial_path).unlink(missing_ok=True)
        return self._fail(record, f"archive {record.archive_id} does not decrypt: {exc}; "
                                  "no file was written")

    def _decrypted(self, record: RestoreRecord,
                   decrypting: OrderedDecryption) -> tuple[Path, RestoreRecord] | RestoreRecord:
        """The last chunk, then the plaintext checked against the catalog: (the
        plaintext partial file, the record with the sealed mode), or the failed
        record."""
        from glacierd.encryption import AgeError, Encryption

        plain = Path(record.plain_partial_path)
        try:
            got = decrypting.finish()
        except AgeError as exc:
            decrypting.close()
            return self._undecryptable(record, exc)
        except OSError as exc:
            decrypting.close()
            plain.unlink(missing_ok=True)
            reason = "the disk is full" if exc.errno == errno.ENOSPC else exc.strerror
            return self._fail(record, f"{shown(plain)}: {reason}; the verified archive is kept "
                                      "and the restore can be retried")
        expected = (record.plain_size, record.plain_sha256 or got.sha256)
        if (got.size, got.sha256) != expected:
            plain.unlink(missing_ok=True)
            Path(record.partial_path).unlink(missing_ok=True)
            return self._fail(record, f"archive {record.archive_id} decrypts to {got.size} bytes "
                                      f"with SHA-256 {got.sha256}, not the catalog's "
                                      f"{expected[0]} bytes with {expected[1]}; no file was "
                                      "written")
        if record.plain_sha256 is None and record.archive_id is not None:
            # Adopted from an inventory: every chunk authenticated, so this is its hash.
            self.store.learn_plain_sha256(record.archive_id, got.sha256)
            record = replace(record, plain_sha256=got.sha256)
        if record.mode is None and record.description:
            info = Encryption((), self.settings.identities).unseal(record.description)
            record = replace(record, mode=info.mode if info is not None else None)
        return plain, record

    def _fail(self, record: RestoreRecord, reason: str) -> RestoreRecord:
        self.store.set_restore_status(record, RestoreStatus.FAILED, reason)
        log.error("%s: %s", shown(record.source_path), reason)
        return self.store.restore(record.id)


class _SegmentRejected(Exception):
    pass


def already_restored(dest: Path, size: int, tree_hash: str, plain_size: int | None = None,
                     plain_sha256: str | None = None) -> bool:
    """Is ``dest`` a regular file with exactly this size and tree hash (for an
    encrypted archive: the plaintext's size and SHA-256; unknown: no)?"""
    if plain_size is not None:
        if plain_sha256 is None:
            return False
        size = plain_size
    try:
        st = os.lstat(dest)
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode) or st.st_size != size:
        return False
    try:
        if plain_sha256 is not None:
            return sha256_file(dest) == plain_sha256
        return tree_hash_file(dest) == tree_hash
    except OSError:
        return False


def sha256_file(path: Path) -> str:
    import hashlib

    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def sha256_fd(fd: int) -> str:
    """The SHA-256 of what ``fd`` holds, from its start."""
    import hashlib

    digest = hashlib.sha256()
    offset = 0
    while chunk := os.pread(fd, limits.MIB, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


def retrieval_ranges(archives: Iterable[ArchiveRecord]) -> dict[int, tuple[int, int]]:
    """For the packed files among ``archives``: the range of its bundle each one's
    retrieval asks for, keyed by catalog row. Files of one bundle share one
    megabyte-aligned range, from the first one's first byte to the last one's
    last (a vault retrieves that range only; it is also how they find the job
    they share). Pure."""
    spans: dict[str, list[int]] = {}
    sizes: dict[str, int] = {}
    for a in archives:
        if a.bundle_archive_id is None or a.member_offset is None or a.bundle_size is None:
            continue
        span = spans.setdefault(a.bundle_archive_id, [a.member_offset, a.member_offset + a.size])
        span[0] = min(span[0], a.member_offset)
        span[1] = max(span[1], a.member_offset + a.size)
        sizes[a.bundle_archive_id] = a.bundle_size
    out = {}
    for a in archives:
        if a.bundle_archive_id in spans:
            start, end = spans[a.bundle_archive_id]
            out[a.id] = limits.aligned_range(start, end, sizes[a.bundle_archive_id])
    return out


def _give_back_metadata(partial: Path, record: RestoreRecord) -> None:
    """The file's recorded mode and mtime, set on the verified partial file just
    before it is renamed into place (until then it stays 0600: its bytes are not
    yet known to be right). Archives recorded without a mode keep 0600."""
    if record.mode is not None:
        os.chmod(partial, record.mode)
    try:
        os.utime(partial, ns=(record.mtime_ns, record.mtime_ns))
    except (OverflowError, OSError) as exc:  # an mtime this file system cannot hold
        log.warning("%s: mtime %d not restored: %s", shown(record.dest_path), record.mtime_ns,
                    exc)


__all__ = ["GlacierError", "RestoreSettings", "Restorer", "pick_versions"]
