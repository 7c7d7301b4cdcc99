"""The resumable multipart uploader: every file goes to Glacier once, whatever
happens to this process.

The store is the record of truth (docs/design.md §3). In order:

1. the upload row (with its token and description) is committed, then
   InitiateMultipartUpload is sent and its upload id committed — before any
   part (invariant 1);
2. parts go out on a bounded pool; each part's linear SHA-256 and tree hash
   come from one pass over its bytes, and it is recorded as acknowledged in
   its own transaction only after Glacier's 2xx (invariant 2);
3. on resume, ListParts is reconciled with the store: acknowledged parts are
   skipped, parts only Glacier has are adopted if their tree hash matches the
   local bytes, the rest are sent (invariant 3); a changed file abandons the
   upload (invariant 4);
4. the final tree hash is committed as "completing" before Complete, and the
   archive id in the transaction that ends the upload; a crash in between is
   resolved by calling Complete again, never by uploading again (invariant 5).

Per-file failures are recorded in the store with a retry time and returned as
an ``Outcome``; nothing is dropped (invariant 7).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import stat
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from glacierd import description, faultpoints, humanize, locks, metrics, resume
from glacierd.backends import Backend, CompleteRefused, UploadGone
from glacierd.errors import FileChangedError, NotAFileError, StoreError, UnreadableFileError
from glacierd.glacier import GlacierError, limits
from glacierd.glacier.parts import FileShrankError, PartEngine, ReadInto
from glacierd.glacier.treehash import Digests, digests
from glacierd.hostname import this_host
from glacierd.pathtext import shown
from glacierd.ratelimit import TokenBucket
from glacierd.readahead import FileIdentity, ReadAhead, ReadyPart
from glacierd.safeopen import open_for_upload
from glacierd.store.repository import (
    FileRecord,
    NewUpload,
    PartRecord,
    Store,
    UploadRecord,
    UploadState,
)
from glacierd.store.states import FileState, UploadStatus, utcnow

if TYPE_CHECKING:
    from glacierd.encryption import EncryptingReader, Encryption

log = logging.getLogger("glacierd.uploader")

PROGRESS_INTERVAL = 1.0
MAX_RESTARTS = 3
RETRY_BASE = dt.timedelta(minutes=1)
RETRY_CAP = dt.timedelta(hours=6)

FileProgress = Callable[[str, int, int], None]
"""``(path, bytes_done, bytes_total)``; ``bytes_done`` counts bytes sent, and
goes down when a retry rewinds."""


@dataclass(frozen=True)
class UploadSettings:
    part_size: int = 16 * limits.MIB
    concurrency: int = 4
    follow_symlinks: bool = False
    host: str = field(default_factory=this_host)
    lock_dir: Path | None = None
    """Where per-file locks live (the state directory's ``locks/``): the daemon and
    a foreground ``glacierd upload`` must never upload one file twice at once."""
    encryption: Encryption | None = None
    """New uploads are age files for these recipients (an upload started before
    keeps the form it started with)."""


@dataclass(frozen=True)
class _ManifestUpload:
    """A manifest archive's upload, as the backend sees an upload."""

    upload_id: str
    description: str
    part_size: int


@dataclass(frozen=True)
class Outcome:
    path: str
    status: str  # archived | skipped | failed | unconfirmed | busy | gone
    archive_id: str | None = None
    size: int = 0
    error: str | None = None


def retry_delay(attempts: int) -> dt.timedelta:
    """Back-off before a failed file is tried again: 1 min, 2, 4, ... up to 6 h."""
    delay: dt.timedelta = RETRY_BASE * (2 ** min(attempts, 16))
    return min(RETRY_CAP, delay)


class _Progress:
    """One upload's progress: acknowledged and in-flight bytes, rate and ETA,
    written to the store at most once every ``PROGRESS_INTERVAL`` seconds."""

    def __init__(self, store: Store, upload: UploadRecord, on_progress: FileProgress | None,
                 clock: Callable[[], float]) -> None:
        self._store = store
        self._upload = upload
        self._callback = on_progress
        self._clock = clock
        self._lock = threading.Lock()
        self.acked = sum(p.length for p in upload.parts)
        self.in_flight = 0
        # The first write comes a second in: a small file (or a fast one) costs the
        # store no progress transaction at all.
        self._last_write = clock()
        self._window: list[tuple[float, int]] = [(clock(), self.acked)]
        if on_progress is not None:  # where it starts: above 0, it resumes
            on_progress(upload.path, self.acked, upload.stored_size)

    def sent(self, delta: int) -> None:
        with self._lock:
            self.in_flight += delta
            self._tick()

    def acknowledged(self, length: int) -> None:
        with self._lock:
            self.in_flight -= length
            self.acked += length
            self._tick()  # the end needs no write: finish_upload clears in-flight and ETA

    def _tick(self, force: bool = False) -> None:
        done = self.acked + max(0, self.in_flight)
        if self._callback is not None:
            self._callback(self._upload.path, done, self._upload.stored_size)
        now = self._clock()
        if not force and now - self._last_write < PROGRESS_INTERVAL:
            return
        self._last_write = now
        self._window.append((now, done))
        self._window = [(t, b) for t, b in self._window if now - t <= 10.0] or self._window[-1:]
        t0, b0 = self._window[0]
        rate = (done - b0) / (now - t0) if now > t0 else 0.0
        eta = (self._upload.stored_size - done) / rate if rate > 0 else None
        try:
            self._store.update_progress(self._upload, max(0, self.in_flight), rate, eta)
        except StoreError as exc:  # progress is advisory; the parts table is the truth
            log.warning("could not record progress: %s", exc)


class Uploader:
    """Uploads files to ``backend`` (a vault, a bucket), recording in ``store``."""

    def __init__(
        self,
        store: Store,
        backend: Backend,
        settings: UploadSettings,
        *,
        limiter: TokenBucket | None = None,
        on_progress: FileProgress | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.store = store
        self.backend = backend
        self.settings = settings
        self.limiter = limiter
        self.on_progress = on_progress
        self.clock = clock
        self.now = now
        self.stopping = threading.Event()
        self.engine = PartEngine()  # one executor for the uploader's life

    def close(self) -> None:
        """End the part engine's threads (after the parts in flight)."""
        self.engine.close()

    def reconfigure(self, settings: UploadSettings, limiter: TokenBucket | None) -> None:
        """New settings (a reload) for the files that start from now on; a file
        under way keeps the part size and pool it started with."""
        self.settings, self.limiter = settings, limiter

    # --- entry points --------------------------------------------------------------

    def upload_path(self, path: str | os.PathLike[str], readahead: ReadAhead | None = None,
                    root: str | os.PathLike[str] | None = None) -> Outcome:
        """Upload one file (resuming its unfinished upload, if any).

        ``root``: the folder the file was found in (a watched folder, a folder
        named to ``upload``); unless ``follow_symlinks``, no link below it is
        followed (``glacierd.safeopen``). ``readahead``: its parts are sent if
        they are of this file as the upload finds it (see ``glacierd.readahead``).
        It is closed on return, used or not (a skipped file, say): the memory it
        holds is the next upload's budget.
        """
        try:
            return self._upload_path(os.path.abspath(os.fspath(path)), readahead, root)
        finally:
            if readahead is not None:
                readahead.close()

    def _upload_path(self, abspath: str, readahead: ReadAhead | None,
                     root: str | os.PathLike[str] | None) -> Outcome:
        try:
            fd, st = open_for_upload(abspath, root, self.settings.follow_symlinks)
        except NotAFileError as exc:  # retrying cannot help: out of the queue, not failed
            return self._gone(abspath, str(exc.message))
        except UnreadableFileError as exc:
            record = self.store.file_seen(abspath, 0, 0, 0)
            return self.failed(record, str(exc.message))
        with locks.exclusive(self.settings.lock_dir, abspath) as mine:
            if not mine:
                os.close(fd)
                return Outcome(abspath, "busy", None, st.st_size,
                               "another glacierd process is uploading it")
            try:
                record, state, started = self._first_look(abspath, st)
            except BaseException:
                os.close(fd)  # _upload_record owns it from here on
                raise
            return self._upload_record(record, fd, st, readahead, root, state, started)

    def _first_look(self, path: str, st: os.stat_result
                    ) -> tuple[FileRecord, UploadState, UploadRecord | None]:
        """The file's record and upload state, and for a file with nothing to skip,
        confirm or resume, its new upload's row: one transaction."""
        return self.store.file_to_upload(path, st.st_size, st.st_mtime_ns, st.st_ino,
                                         lambda record, state: self._new_upload(record,
                                                                                state, st))

    # --- the work --------------------------------------------------------------------

    def _upload_record(self, record: FileRecord, fd: int, st: os.stat_result,
                       readahead: ReadAhead | None,
                       root: str | os.PathLike[str] | None,
                       state: UploadState | None = None,
                       started: UploadRecord | None = None) -> Outcome:
        """Upload from ``fd`` (owned here, closed on return); a file that changed is
        opened again, the same safe way, and its new version uploaded. ``state``:
        the store's ``upload_state`` of the file, read with its record; ``started``:
        the upload whose row was written with them (``_first_look``)."""
        try:
            for _restart in range(MAX_RESTARTS):
                try:
                    return self._attempt(record, fd, st, readahead, state, started)
                except FileChangedError as exc:
                    log.warning("%s", exc)
                    os.close(fd)
                    fd = -1
                    try:
                        fd, st = open_for_upload(record.path, root,
                                                 self.settings.follow_symlinks)
                    except NotAFileError as gone:
                        return self._gone(record.path, str(gone.message))
                    except UnreadableFileError as unreadable:
                        return self.failed(record, str(unreadable.message))
                    record, state, started = self._first_look(record.path, st)
                except GlacierError as exc:
                    return self.failed(record, str(exc))
            return self.failed(record,
                                f"{shown(record.path)}: the file kept changing during upload")
        finally:
            if fd >= 0:
                os.close(fd)

    def _attempt(self, record: FileRecord, fd: int, st: os.stat_result,
                 readahead: ReadAhead | None, state: UploadState | None = None,
                 started: UploadRecord | None = None) -> Outcome:
        if started is not None:  # its row came with the file's record
            return self._send_and_complete(self._initiated(started), fd, readahead)
        path = record.path
        latest, unconfirmed, upload = state or self.store.upload_state(record.id)
        if latest and (latest.size, latest.mtime_ns) == (st.st_size, st.st_mtime_ns):
            if record.state != FileState.ARCHIVED:
                self.store.set_file_state(record.id, FileState.ARCHIVED)
            return Outcome(path, "skipped", latest.archive_id, st.st_size)
        if record.state == FileState.PACKED and (record.size, record.mtime_ns) == (
                st.st_size, st.st_mtime_ns):
            return Outcome(path, "skipped", None, st.st_size,
                           "packed into a bundle that is on its way")
        if unconfirmed and (unconfirmed.size, unconfirmed.mtime_ns) == (st.st_size,
                                                                          st.st_mtime_ns):
            return Outcome(path, "unconfirmed", None, st.st_size,
                           "Complete's answer was lost; the next inventory confirms it")
        if st.st_size == 0:
            if upload is not None:
                self._abandon(upload, "the file is now empty")
            archive = self.store.record_empty_archive(
                record.id, self.backend.name, st.st_mtime_ns,
                self._description(record, st, uuid.uuid4().hex)[0])
            return Outcome(path, "archived", archive.archive_id, 0)
        if upload is not None:
            upload = self._reconcile(upload, fd)
        if upload is None:
            upload = self._start(record, st)
        return self._send_and_complete(upload, fd, readahead)

    def _send_and_complete(self, upload: UploadRecord, fd: int,
                           readahead: ReadAhead | None) -> Outcome:
        """Send what the upload lacks, then complete it."""
        if upload.status == UploadStatus.COMPLETING:
            return self._complete(upload, resumed=True)
        reader = self._encrypting_reader(upload, fd)
        if readahead is not None and reader is not None:
            readahead.close()  # its plaintext parts are of no use: their memory goes back
        ready = readahead.claim(upload.path, FileIdentity(upload.size, upload.mtime_ns,
                                                          upload.inode),
                                upload.part_size) if readahead and reader is None else []
        upload, made_by = self._send_missing(upload, fd, ready, reader)
        plain_sha256 = None
        if reader is not None:  # (it may read the file again: before the check)
            with contextlib.suppress(FileShrankError):  # the check below tells, and restarts
                plain_sha256 = reader.plaintext_sha256()
        self._check_unchanged(upload, fd)
        return self._complete(upload, resumed=False, plain_sha256=plain_sha256,
                              made_by=made_by)

    @staticmethod
    def _encrypting_reader(upload: UploadRecord, fd: int) -> EncryptingReader | None:
        """An encrypted upload's ciphertext, made from the file as parts need it."""
        if upload.cipher is None:
            return None
        from glacierd.encryption import EncryptingReader

        return EncryptingReader(fd, upload.size, upload.cipher)

    @staticmethod
    def _read_for(reader: EncryptingReader | None, fd: int) -> ReadInto:
        if reader is not None:
            return reader.read_into
        return lambda view, offset: os.preadv(fd, [view], offset)

    def _plan(self, record: FileRecord, st: os.stat_result) -> tuple[NewUpload, tuple[str, ...]]:
        """A new upload of the file as it is (``st``): its row, and the descriptions
        of the manifest archives it needs first. No I/O."""
        size = st.st_size
        token = uuid.uuid4().hex
        encryption = self.settings.encryption
        cipher, wire_size = None, None
        if encryption is not None:  # made once, kept until the upload ends
            from glacierd.encryption import stored_size

            cipher = encryption.new_secrets()
            wire_size = stored_size(cipher, size)
        part_size = self.backend.part_size(size if wire_size is None else wire_size,
                                           self.settings.part_size, name=shown(record.path))
        desc, manifests = self._description(record, st, token, wire_size)
        return NewUpload(self.backend.name, token, desc, part_size, cipher, wire_size,
                         self.backend.one_request_id(part_size, desc)), manifests

    def _new_upload(self, record: FileRecord, state: UploadState,
                    st: os.stat_result) -> NewUpload | None:
        """For ``_first_look``: the upload to begin when ``_attempt`` would go straight
        to ``_start`` (no archive, no upload to confirm or resume, not packed, not
        empty) and it needs no manifest archives (they go up before its row)."""
        if state != (None, None, None) or st.st_size == 0 or record.state == FileState.PACKED:
            return None
        plan, manifests = self._plan(record, st)
        return None if manifests else plan

    def _start(self, record: FileRecord, st: os.stat_result) -> UploadRecord:
        plan, manifests = self._plan(record, st)
        # Before the upload's row: a crash here leaves small orphans, never a file
        # archived without its path.
        manifest_ids = [self._put_manifest(text, record) for text in manifests]
        return self._initiated(self.store.create_upload(
            record.id, plan.vault, plan.token, plan.description, plan.part_size, st.st_size,
            st.st_mtime_ns, st.st_ino, cipher=plan.cipher, wire_size=plan.wire_size,
            manifest_ids=manifest_ids, upload_id=plan.upload_id))

    def _initiated(self, upload: UploadRecord) -> UploadRecord:
        """Initiate an upload whose row is committed (invariant 1); one whose id came
        with its row (``Backend.one_request_id``) has nothing to initiate."""
        faultpoints.hit("after-upload-row")
        if upload.upload_id is not None:
            return upload
        return self._initiate(upload)

    def _description(self, record: FileRecord, st: os.stat_result, token: str,
                     sealed_size: int | None = None) -> tuple[str, tuple[str, ...]]:
        """The archive's description, and the descriptions of the manifest archives
        it needs: sealed (only host, token and size readable) when the upload is
        encrypted, its ``sealed_size`` bytes of age file, with manifests when
        the path is too long to be sealed in 1,024 characters."""
        info = description.ArchiveInfo(
            path=record.path, host=self.settings.host, size=st.st_size, mtime_ns=st.st_mtime_ns,
            token=token, mode=stat.S_IMODE(st.st_mode))
        if sealed_size is not None and self.settings.encryption is not None:
            sealed = self.settings.encryption.seal_description(info, sealed_size)
            return sealed.text, sealed.manifests
        return description.encode(info), ()

    def _put_manifest(self, text: str, record: FileRecord) -> str:
        """One manifest archive (a few bytes; the description is what counts)."""
        content = memoryview(description.MANIFEST_CONTENT)
        part_size = self.backend.part_size(len(content), limits.MIB, name=shown(record.path))
        ref = _ManifestUpload(self.backend.start_upload(part_size, text), text, part_size)
        d = digests(content)
        self.backend.send_part(ref, 0, content, d, lambda _n: None, None)
        return self.backend.complete(ref, len(content), d.tree_hash, [d.sha256])

    def _initiate(self, upload: UploadRecord) -> UploadRecord:
        upload_id = self.backend.start_upload(upload.part_size, upload.description)
        faultpoints.hit("after-initiate")
        return self.store.set_upload_id(upload, upload_id)

    def _abandon(self, upload: UploadRecord, reason: str) -> None:
        if upload.upload_id:
            try:
                self.backend.abort(upload)
            except GlacierError as exc:  # housekeeping aborts it later; the token tells
                log.warning("%s: could not abort upload %s: %s", shown(upload.path),
                            upload.upload_id, exc)
        self.store.end_upload(upload, UploadStatus.ABANDONED, reason)

    def _changed(self, upload: UploadRecord, fd: int) -> str | None:
        """How the file behind ``fd`` (the descriptor that is read, never a new look
        at the path) differs from what the upload began with, or None."""
        try:
            st = os.fstat(fd)
        except OSError as exc:
            return f"it can no longer be read ({exc.strerror})"
        if (st.st_size, st.st_mtime_ns, st.st_ino) != (upload.size, upload.mtime_ns,
                                                       upload.inode):
            return (f"size/mtime/inode went from {upload.size}/{upload.mtime_ns}/{upload.inode} "
                    f"to {st.st_size}/{st.st_mtime_ns}/{st.st_ino}")
        return None

    def _reconcile(self, upload: UploadRecord, fd: int) -> UploadRecord | None:
        """Bring an unfinished upload in line with Glacier; None if it must start over."""
        change = self._changed(upload, fd)
        if change is not None:
            self._abandon(upload, f"the file changed since the upload began: {change}")
            return None
        if upload.status == UploadStatus.INITIATING:
            # A crash after Initiate but before its id was committed: the token finds it.
            found = self.backend.find_pending(upload)
            if found is not None:
                return self.store.set_upload_id(upload, found)
            return self._initiate(upload)
        if upload.status == UploadStatus.COMPLETING:
            return upload
        if upload.wire_size is not None and upload.cipher is None:
            self._abandon(upload, "the encrypted upload's key is no longer in the store")
            return None
        assert upload.upload_id is not None
        try:
            part_size, listed_parts = self.backend.uploaded_parts(upload)
        except UploadGone:
            self._abandon(upload, f"the service no longer knows upload id {upload.upload_id} "
                                  "(expired after 24 h without activity?): starting over")
            return None
        if (part_size or upload.part_size) != upload.part_size:
            self._abandon(upload, "the service reports another part size for this upload")
            return None
        ranges = list(limits.part_ranges(upload.stored_size, upload.part_size))
        acked = {p.index: (p.length, self.backend.part_checksum(p.tree_hash, p.sha256))
                 for p in upload.parts}
        decision = resume.plan(ranges, acked, resume.remote_parts(listed_parts,
                                                                  upload.part_size))
        if decision.conflicts:
            self._abandon(upload, f"Glacier holds other bytes for parts {decision.conflicts[:5]}")
            return None
        lost = [index for index in decision.send if index in acked]
        if lost:  # the plan is what is sent: the store's record follows it
            upload = self.store.forget_parts(upload, lost)
        read = self._read_for(self._encrypting_reader(upload, fd), fd)
        for remote in decision.adopt:
            buffer = bytearray(remote.length)
            got = read(memoryview(buffer), remote.offset)
            local = digests(memoryview(buffer)[:got])
            if self.backend.part_checksum(local.tree_hash, local.sha256) != remote.checksum:
                self._abandon(upload, f"part at offset {remote.offset} on Glacier does "
                                      "not match the file: it changed")
                return None
            self.store.part_acknowledged(upload, remote.index, remote.offset,
                                         remote.length, local.tree_hash, sha256=local.sha256,
                                         adopted=True)
            self.store.event("info", "part-adopted",
                             f"{shown(upload.path)}: adopted part {remote.index} that "
                             "Glacier had but the store lacked")
        return self.store.upload(upload.id)

    def _send_missing(self, upload: UploadRecord, fd: int, ready: list[ReadyPart],
                      reader: EncryptingReader | None = None
                      ) -> tuple[UploadRecord, PartRecord | None]:
        """Send the parts Glacier lacks through the engine; ``ready`` ones (read ahead,
        of this upload's file and part size) go first, without reading or hashing
        them again. Each part is committed as acknowledged after its 2xx, its buffer
        already back in the pool (the commit, an fsync, overlaps the next sends).
        Returns the upload with every part the store now holds for it (those it held
        and those committed here: no other process writes this upload's parts while
        this one holds the file's lock), and the part of a one-request upload
        (``Backend.one_request_id``) if it was sent here: its 2xx made the object,
        and ``finish_upload`` records it with the archive, not before."""
        assert upload.upload_id is not None
        acked = upload.acked
        todo = [r for r in limits.part_ranges(upload.stored_size, upload.part_size)
                if r.index not in acked]
        if not todo:
            return upload, None
        progress = _Progress(self.store, upload, self.on_progress, self.clock)
        pace = self.limiter.consume if self.limiter is not None else None
        one_request = upload.upload_id == self.backend.one_request_id(upload.part_size,
                                                                      upload.description)
        # The one part missing (a small file's only part) and nothing to hash after it
        # (an encrypted file's plaintext SHA-256 is): its commit records the final hash
        # too, one synced transaction fewer a file (invariant 5 holds: before Complete).
        final = len(todo) == 1 and reader is None
        completing: list[str] = []
        made_by: list[PartRecord] = []

        def send(part: limits.PartRange, data: memoryview, d: Digests,
                 release: Callable[[], None]) -> None:
            self.backend.send_part(upload, part.offset, data, d, progress.sent, pace)
            release()  # the bytes are no longer needed; the commit is
            faultpoints.hit("after-part-2xx")
            record = PartRecord(part.index, part.offset, part.length, d.tree_hash, False,
                                d.sha256)
            acked[part.index] = record
            if one_request:  # nothing remote happens before the archive: recorded with it
                made_by.append(record)
            else:
                whole = self.backend.whole_checksum(
                    [acked[i].tree_hash
                     for i in range(limits.part_count(upload.stored_size, upload.part_size))]
                ) if final else None
                self.store.part_acknowledged(upload, part.index, part.offset, part.length,
                                             d.tree_hash, sha256=d.sha256, completing=whole)
                if whole is not None:
                    completing.append(whole)
            metrics.PROCESS.add("parts_sent")
            metrics.PROCESS.add("uploaded_bytes", part.length)
            progress.acknowledged(part.length)

        try:
            self.engine.run(fd, todo, upload.part_size, self.settings.concurrency, send,
                            ready=ready, stop=self.stopping,
                            read=reader.read_into if reader is not None else None)
        except FileShrankError:
            self._check_unchanged(upload, fd)
            raise FileChangedError(f"{shown(upload.path)}: the file shrank during upload") \
                from None
        upload = replace(upload, parts=tuple(acked[i] for i in sorted(acked)))
        if completing:
            upload = replace(upload, status=UploadStatus.COMPLETING.value,
                             tree_hash=completing[0], plain_sha256=None)
        return upload, made_by[0] if made_by else None

    def _check_unchanged(self, upload: UploadRecord, fd: int) -> None:
        change = self._changed(upload, fd)
        if change is not None:
            reason = f"{shown(upload.path)}: the file changed during upload ({change})"
            self._abandon(upload, reason)
            raise FileChangedError(reason)

    def _complete(self, upload: UploadRecord, *, resumed: bool,
                  plain_sha256: str | None = None, made_by: PartRecord | None = None
                  ) -> Outcome:
        """``made_by``: the unrecorded part whose 2xx made the object (no Complete is
        sent for it): it and the final hash are committed with the archive."""
        assert upload.upload_id is not None
        count = limits.part_count(upload.stored_size, upload.part_size)
        if upload.status != UploadStatus.COMPLETING:
            sums = [upload.acked[i].tree_hash for i in range(count)]
            whole = self.backend.whole_checksum(sums)
            upload = (replace(upload, status=UploadStatus.COMPLETING.value, tree_hash=whole,
                              plain_sha256=plain_sha256) if made_by is not None else
                      self.store.set_completing(upload, whole, plain_sha256))
        assert upload.tree_hash is not None and upload.upload_id is not None
        part_sha256 = [upload.acked[i].sha256 or "" for i in range(count)]
        faultpoints.hit("before-complete")
        try:
            archive_id = self.backend.complete(upload, upload.stored_size, upload.tree_hash,
                                               part_sha256)
        except UploadGone:
            if resumed:
                # An earlier Complete may have succeeded and its answer been lost: uploading
                # again could make a second archive. The next inventory decides (invariant 5).
                reason = ("Complete's answer was lost and the upload id is gone; the next "
                          "inventory confirms the archive by token, tree hash and size")
                self.store.end_upload(upload, UploadStatus.UNCONFIRMED, reason)
                return Outcome(upload.path, "unconfirmed", None, upload.size, reason)
            self._abandon(upload, f"upload id {upload.upload_id} vanished before Complete")
            raise FileChangedError(
                f"{shown(upload.path)}: the upload id vanished; starting over") from None
        except CompleteRefused as exc:
            self._abandon(upload, f"the service refused Complete: {exc.message}")
            raise FileChangedError(
                f"{shown(upload.path)}: Complete was refused; starting over") from exc
        faultpoints.hit("after-complete")
        archive = self.store.finish_upload(upload, archive_id, made_by=made_by)
        log.info("%s: archived as %s (%s)", shown(upload.path), archive_id,
                 humanize.size(upload.size))
        return Outcome(upload.path, "archived", archive.archive_id, upload.size)

    def _gone(self, path: str, reason: str) -> Outcome:
        """A path that is no file to upload: recorded as gone if the store knows it
        (queued again if a file comes back), never stored as a failure to retry."""
        record = self.store.file(path)
        if record is not None:
            self.store.file_gone(record.id, reason)
        log.info("%s", reason)
        return Outcome(path, "gone", None, 0, reason)

    def failed(self, record: FileRecord, error: str) -> Outcome:
        """A file that could not be uploaded (or packed): recorded, to be retried
        after the back-off (``retry_delay``)."""
        retry_at = self.now() + retry_delay(record.attempts)
        self.store.record_failure(record.id, error, retry_at)
        log.error("%s (retry after %s)", error, retry_at.isoformat(timespec="seconds"))
        return Outcome(record.path, "failed", None, record.size, error)

