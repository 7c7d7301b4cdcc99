"""What the store's status columns hold, and the store's clock: plain enums and
a function, importable without SQLAlchemy (the uploader, the daemon and the
commands name states without loading the database layer)."""

from __future__ import annotations

import datetime as dt
import enum


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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


class RestoreStatus(enum.StrEnum):
    REQUESTED = "requested"  # recorded; the retrieval job is not yet initiated
    WAITING = "waiting"  # the retrieval job runs at Glacier
    DOWNLOADING = "downloading"  # output being fetched; verified segments recorded
    DONE = "done"  # renamed into place, mtime restored
    FAILED = "failed"  # with its error; kept to retry


class MigrationStatus(enum.StrEnum):
    PLANNED = "planned"  # in the plan; no retrieval yet
    RETRIEVING = "retrieving"  # its archive-retrieval job runs at Glacier
    COPYING = "copying"  # job output streaming into S3 parts; acknowledged chunks recorded
    DONE = "done"  # the object is in S3, verified (tree hash) and completed
    FAILED = "failed"  # with its error; `glacierd migrate` tries it again
    TOO_LARGE = "too-large"  # over S3's object limit: reported, never half-copied
