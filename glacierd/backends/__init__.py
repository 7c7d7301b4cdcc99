"""Where archives are kept: one ``Backend`` interface and its implementations
(``vault`` on the Glacier client, ``memory`` for tests)."""

from .base import (
    Backend,
    CompleteRefused,
    NoRetrievalCapacity,
    ObjectMissing,
    PendingUpload,
    RemotePart,
    Retrieval,
    RetrievalGone,
    RetrievalStatus,
    UploadGone,
)

__all__ = [
    "Backend",
    "CompleteRefused",
    "NoRetrievalCapacity",
    "ObjectMissing",
    "PendingUpload",
    "RemotePart",
    "Retrieval",
    "RetrievalGone",
    "RetrievalStatus",
    "UploadGone",
]
