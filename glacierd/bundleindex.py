"""A rebuilt catalog learns the files packed in bundles from the bundles
themselves (issue 16): the vault or bucket alone is enough.

An inventory names a bundle's archive (its description's path ends in
``glacierd-bundle-TOKEN.tar``) but not the files in it. Each bundle's first
bytes hold its index (``glacierd.bundle``): a retrieval of the first megabyte
(from a vault: a ranged job, ``RetrievalByteRange``; from a bucket: the
object's restore, then a ranged GET) is read; when the index is longer, a
retrieval of the megabytes that hold it follows. The jobs are recorded
(kind ``bundle-index``, with their range), so the daemon's job polling and
``catalog rebuild`` both follow them, and a restart picks them up. The files
are added in one transaction per bundle, each with its offset and SHA-256, and
are then restored like any packed file.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from glacierd import bundle, description
from glacierd.backends import Backend, NoRetrievalCapacity, ObjectMissing, RetrievalStatus
from glacierd.glacier import ChecksumMismatchError, TransportError, limits
from glacierd.store.repository import ArchiveRecord, JobRecord, Store
from glacierd.store.states import utcnow

log = logging.getLogger("glacierd.bundleindex")

KIND = "bundle-index"
FIRST_READ = limits.MIB
NOT_A_BUNDLE = "NotABundle"
"""A bundle-index job's end when the archive's first bytes are no bundle's: it is
not asked again."""


class BundleIndexer:
    """Reads the indexes of the bundles a catalog holds without their files."""

    def __init__(self, store: Store, backend: Backend, *, tier: str, host: str,
                 now: Callable[[], dt.datetime] = utcnow) -> None:
        self.store = store
        self.backend = backend
        self.tier = tier
        self.host = host
        self.now = now

    def step(self) -> int:
        """Request, follow and read what is due; returns how many bundles have a
        retrieval of their index under way (0: nothing to wait for)."""
        waiting = self.store.unindexed_bundles(self.backend.name)
        jobs = {j.archive_id: j for j in self.store.jobs(statuses=["InProgress"], kind=KIND,
                                                          limit=None)}
        refused = {j.archive_id for j in self.store.jobs(statuses=[NOT_A_BUNDLE], kind=KIND,
                                                          limit=None)}
        left = 0
        for found in waiting:
            assert found.archive_id is not None
            if found.archive_id in refused:
                continue
            job = jobs.get(found.archive_id)
            under_way = (self._read(found, job) if job is not None
                         else self._request(found, FIRST_READ))
            left += 1 if under_way else 0
        return left

    def _request(self, found: ArchiveRecord, length: int) -> bool:
        assert found.archive_id is not None
        first, last = limits.aligned_range(0, min(length, found.size), found.size)
        try:
            ticket = self.backend.request_retrieval(found.archive_id, self.tier, (first, last))
        except (NoRetrievalCapacity, ObjectMissing) as exc:
            self.store.event("warning", "bundle-index", f"bundle {found.archive_id}: its index "
                                                        f"cannot be retrieved now: {exc.message}")
            return False
        self.store.add_job(ticket, found.vault, KIND, tier=self.tier,
                           archive_id=found.archive_id, byte_range=f"{first}-{last}",
                           created_at=self.now())
        return True

    def _read(self, found: ArchiveRecord, job: JobRecord) -> bool:
        assert found.archive_id is not None and job.byte_range is not None
        state = self.backend.retrieval(job.job_id, found.archive_id)
        if state.status == RetrievalStatus.IN_PROGRESS:
            return True
        first, last = limits.parse_byte_range(job.byte_range)
        if state.status != RetrievalStatus.READY:  # gone or failed: asked again
            self.store.update_job(job.job_id, "Expired" if state.status == RetrievalStatus.GONE
                                  else "Failed", error=state.message, missing_ok=True)
            return self._request(found, last + 1)
        head = bytearray(last - first + 1)
        try:
            self.backend.fetch(job.job_id, found.archive_id, 0, last - first,
                               lambda at, chunk: head.__setitem__(
                                   slice(at, at + len(chunk)), chunk),
                               attempts=4, plain_range=True)
        except (ChecksumMismatchError, TransportError) as exc:
            log.warning("bundle %s: its index could not be fetched (%s); asked again",
                        found.archive_id, exc.message)
            self.store.update_job(job.job_id, "Failed", error=exc.message, missing_ok=True)
            return self._request(found, last + 1)
        try:
            index = bundle.read_index(bytes(head))
        except bundle.NotABundle as exc:
            self.store.update_job(job.job_id, NOT_A_BUNDLE, error=str(exc), missing_ok=True)
            self.store.event("error", "bundle-index", f"archive {found.archive_id} is named as "
                                                      f"a bundle but is not one: {exc}")
            return False  # nothing more to learn from it
        self.store.update_job(job.job_id, "Downloaded", missing_ok=True)
        if isinstance(index, int):  # longer than what was retrieved: the bytes that hold it
            return self._request(found, index)
        info = description.decode(found.description or "")
        host = info.host if info is not None else "?"
        token = info.token if info is not None else ""
        added = self.store.adopt_members(found, index, host, token,
                                         link_files=host == self.host)
        self.store.event("info", "bundle-index", f"bundle {found.archive_id}: "
                                                 f"{added} packed files added to the catalog")
        return False
