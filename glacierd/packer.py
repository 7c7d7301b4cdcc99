"""Packing small files into bundles (issue 16): one archive for many files.

A bundle is made whole on local disk before anything is sent, then uploaded
like any file (``glacierd.uploader``: resumable parts, encryption, the same
invariants), so that what is sent never depends on files that may change:

1. each member is read once, through a descriptor opened as an upload opens
   it (no link followed below its watched folder), into a spool file beside
   the bundle, hashing as it goes (SHA-256 and tree hash); a file whose
   size, mtime or inode moved while it was read is left out (it stays queued);
2. the bundle is laid out (``glacierd.bundle``: a tar file, its index first)
   and written from the spool, fsynced and renamed to
   ``bundles/glacierd-bundle-TOKEN.tar`` in the state folder;
3. its row, its member list (offsets, sizes, hashes) and its members' state
   (``packed``) are committed in one transaction — before its first part.

A crash before 3 leaves files in ``bundles/`` that no row names: ``recover``
deletes them, and the members are still queued. After 3 the bundle is an
ordinary pending file: its upload resumes part by part. When its archive is
committed, each member gets its archive row in the same transaction
(``Store.finish_upload``) and the local bundle is deleted. A member changed
after it was packed is archived in the bundle as it was, and its new version
is queued (the watcher sees it) — never a mix of the two.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import stat
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from glacierd import bundle, description, faultpoints
from glacierd.errors import NotAFileError, UnreadableFileError
from glacierd.glacier import limits
from glacierd.glacier.files import fsync_dir
from glacierd.glacier.treehash import digests
from glacierd.pathtext import shown
from glacierd.safeopen import open_for_upload
from glacierd.store.repository import ArchiveRecord, FileRecord, PackedMember, Store
from glacierd.store.states import FileState

log = logging.getLogger("glacierd.packer")

_TAR_OVERHEAD = 3 * bundle.BLOCK
"""About what a member costs in a bundle beyond its bytes (its pax and ustar
headers, its padding, its index entry): used to keep a bundle near its target."""


@dataclass(frozen=True)
class PackSettings:
    threshold: int = 1024 * 1024
    """Files of 1 byte up to this size (not included) are packed; 0: none."""
    target: int = 128 * 1024 * 1024
    max_wait: dt.timedelta = dt.timedelta(minutes=10)
    """A bundle smaller than ``target`` is made once its oldest file waited this long."""

    @property
    def enabled(self) -> bool:
        return self.threshold > 0


def is_bundle_path(path: str, bundles_dir: Path) -> bool:
    """A bundle this host made (in its state folder), waiting for its upload."""
    name = os.path.basename(path)
    return os.path.dirname(path) == str(bundles_dir) and bundle.is_bundle_name(name)


def groups(records: Sequence[FileRecord], target: int) -> list[list[FileRecord]]:
    """``records`` cut, in order, into groups of about ``target`` bytes of bundle."""
    out: list[list[FileRecord]] = []
    current: list[FileRecord] = []
    size = 0
    for record in records:
        cost = record.size + _TAR_OVERHEAD
        if current and size + cost > target:
            out.append(current)
            current, size = [], 0
        current.append(record)
        size += cost
    if current:
        out.append(current)
    return out


@dataclass(frozen=True)
class _Spooled:
    record: FileRecord
    member: bundle.Member
    spool_offset: int
    inode: int


class Packer:
    """Makes bundles of the queue's small files (the daemon's drain calls ``pack``)."""

    def __init__(self, store: Store, bundles_dir: Path, settings: PackSettings, *,
                 host: str, follow_symlinks: bool, root_of: Callable[[str], str | None],
                 now: Callable[[], dt.datetime],
                 on_failure: Callable[[FileRecord, str], None]) -> None:
        self.store = store
        self.bundles_dir = bundles_dir
        self.settings = settings
        self.host = host
        self.follow_symlinks = follow_symlinks
        self.root_of = root_of
        self.now = now
        self.on_failure = on_failure

    def wants(self, record: FileRecord) -> bool:
        """Is this queued file one to pack (it waits for its bundle)?"""
        return (self.settings.enabled and 0 < record.size < self.settings.threshold
                and not is_bundle_path(record.path, self.bundles_dir))

    # --- after a crash -------------------------------------------------------------------

    def recover(self) -> None:
        """Delete what a crash left in ``bundles/`` that no unfinished bundle names;
        an unfinished bundle whose file is lost gives its members back to the queue."""
        self.bundles_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        unfinished = {r.path: r for r in self.store.unfinished_bundles()}
        for entry in os.scandir(self.bundles_dir):
            if entry.path not in unfinished:
                log.info("%s: removing a bundle left by an interrupted run", shown(entry.path))
                os.unlink(entry.path)
        for path, record in unfinished.items():
            if not os.path.exists(path):
                back = self.store.unpack(record.id, "its bundle file was lost before upload")
                log.warning("%s: lost before it was uploaded; %d files queued again",
                            shown(path), back)

    def archived_members(self, bundle_path: str) -> list[str]:
        """The members of an archived bundle that are archived as they are on disk
        now (what a watched folder's ``after_upload`` may delete or move)."""
        record = self.store.file(bundle_path)
        if record is None:
            return []
        out = []
        for member in self.store.bundle_members(record.id):
            current = self.store.file(member.path)
            try:
                st = os.stat(member.path, follow_symlinks=False)
            except OSError:
                continue
            if (current is not None and current.state == FileState.ARCHIVED
                    and (st.st_size, st.st_mtime_ns) == (member.size, member.mtime_ns)
                    == (current.size, current.mtime_ns)):
                out.append(member.path)
        return out

    def uploaded(self, path: str) -> None:
        """The bundle's archive is committed: its local copy goes."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    # --- packing ---------------------------------------------------------------------------

    def pack(self, stop: Callable[[], bool] = lambda: False) -> list[FileRecord]:
        """Bundles of the queued small files: every full one, and the rest too once
        the oldest of them has waited ``max_wait``. Returns the bundles' rows."""
        if not self.settings.enabled:
            return []
        oldest, count, size = self.store.small_pending_summary(self.settings.threshold)
        waited = oldest is not None and self.now() - oldest >= self.settings.max_wait
        if not count or (not waited and size + count * _TAR_OVERHEAD < self.settings.target):
            return []  # (the drain asks every few seconds: no rows read while they wait)
        records = [r for r in self.store.small_pending(self.settings.threshold, self.now())
                   if self.root_of(r.path) is not None]
        if not records:
            return []
        cut = groups(records, self.settings.target)
        if not waited and sum(r.size + _TAR_OVERHEAD for r in cut[-1]) < self.settings.target:
            cut.pop()  # not full yet: it waits for more files, or for max_wait
        made = []
        for group in cut:
            if stop():
                break
            made_one = self._make(group)
            if made_one is not None:
                made.append(made_one)
        return made

    def repack(self, alive: Sequence[ArchiveRecord]) -> FileRecord | None:
        """A new bundle of a bundle's files still alive (``alive``: their catalog
        rows), read from their files on disk, which must still hold the very bytes
        packed (SHA-256): when it is archived, those rows retire and the old bundle
        holds nothing alive. None, and nothing written, if any file is missing or
        changed: the old bundle's bytes are then the only copy of it."""
        records = []
        for entry in alive:
            record = self.store.file(entry.source_path)
            if record is None:
                return None
            records.append(record)
        return self._make(records, replacing={r.id: a for r, a in zip(records, alive,
                                                                      strict=True)})

    def _make(self, group: Sequence[FileRecord],
              replacing: Mapping[int, ArchiveRecord] | None = None) -> FileRecord | None:
        token = uuid.uuid4().hex
        final = self.bundles_dir / f"{bundle.FILE_PREFIX}{token}{bundle.FILE_SUFFIX}"
        spool_path = final.with_name(final.name + ".spool")
        partial = final.with_name(final.name + ".partial")
        self.bundles_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        spool = os.open(spool_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            spooled = self._spool(group, spool, strict=replacing is not None)
            if replacing is not None and [
                    (s.member.sha256, s.member.mtime_ns, s.member.size) for s in spooled] != [
                    (replacing[r.id].plain_sha256, replacing[r.id].mtime_ns,
                     replacing[r.id].size) for r in group]:
                log.warning("not repacked: a file is no longer on disk as it was packed")
                return None
            if not spooled:
                return None
            faultpoints.hit("bundle-spooled")
            laid = bundle.layout([s.member for s in spooled])

            def member_bytes(number: int, offset: int, length: int) -> bytes:
                return os.pread(spool, length, spooled[number].spool_offset + offset)

            reader = bundle.BundleReader(laid, member_bytes)
            out = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                buffer = bytearray(limits.MIB)
                for offset in range(0, laid.size, len(buffer)):
                    got = reader.read_into(memoryview(buffer), offset)
                    os.pwrite(out, memoryview(buffer)[:got], offset)
                os.fsync(out)
                st = os.fstat(out)
            finally:
                os.close(out)
            os.replace(partial, final)
            fsync_dir(self.bundles_dir)
        finally:
            os.close(spool)
            for leftover in (spool_path, partial):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover)
        faultpoints.hit("bundle-written")
        members = [PackedMember(
            s.record.id, s.record.path, placed.offset, placed.member.size,
            placed.member.mtime_ns, s.inode, placed.member.mode, placed.member.sha256,
            placed.member.tree_hash, description.encode(description.ArchiveInfo(
                path=s.record.path, host=self.host, size=placed.member.size,
                mtime_ns=placed.member.mtime_ns, token=token, mode=placed.member.mode)),
            replacing[s.record.id].id if replacing is not None else None)
            for s, placed in zip(spooled, laid.members, strict=True)]
        record = self.store.create_bundle(str(final), st.st_size, st.st_mtime_ns, st.st_ino,
                                          members)
        faultpoints.hit("bundle-committed")
        log.info("%s: %d files packed (%d bytes)", shown(str(final)), len(members), st.st_size)
        return record

    def _spool(self, group: Sequence[FileRecord], spool: int,
               strict: bool = False) -> list[_Spooled]:
        """Each member's bytes, read once, appended to ``spool``; those that could not
        be read whole and unchanged are left out (and stay queued). ``strict``
        (repack): the store is not told; the caller sees who is missing."""
        spooled: list[_Spooled] = []
        at = 0
        for record in group:
            try:
                fd, st = open_for_upload(record.path, self.root_of(record.path),
                                         self.follow_symlinks)
            except NotAFileError as exc:
                if not strict:
                    self.store.file_gone(record.id, str(exc.message))
                continue
            except UnreadableFileError as exc:
                if not strict:
                    self.on_failure(record, str(exc.message))
                continue
            try:
                data = _read_whole(fd, st.st_size)
                after = os.fstat(fd)
            finally:
                os.close(fd)
            same = ((st.st_size, st.st_mtime_ns, st.st_ino)
                    == (after.st_size, after.st_mtime_ns, after.st_ino)
                    and len(data) == st.st_size)
            if not same or (not strict and not 0 < len(data) < self.settings.threshold):
                log.info("%s: changed while it was packed; left for later", shown(record.path))
                if same and not strict:  # a new size: the store is told; queued as it is
                    self.store.file_seen(record.path, st.st_size, st.st_mtime_ns, st.st_ino)
                continue
            if not strict and (st.st_size, st.st_mtime_ns) != (record.size, record.mtime_ns):
                record = self.store.file_seen(record.path, st.st_size, st.st_mtime_ns,
                                              st.st_ino)
            os.pwrite(spool, data, at)
            d = digests(memoryview(data))
            spooled.append(_Spooled(record, bundle.Member(
                record.path, len(data), st.st_mtime_ns, stat.S_IMODE(st.st_mode), d.sha256,
                d.tree_hash), at, st.st_ino))
            at += len(data)
        return spooled


def _read_whole(fd: int, size: int) -> bytes:
    """The file's bytes, up to one past ``size`` (so that growth is seen)."""
    chunks = []
    got = 0
    while got <= size:
        chunk = os.pread(fd, size + 1 - got, got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
