"""Object keys, metadata and checksums for glacierd's objects in S3 (pure).

A key is ``PREFIX HOST PATH @ STAMP - TOKEN``, e.g.::

    backups/myhost/home/ann/notes.txt@20261202T150933Z-3f2a…(32 hex)

* the path is ``glacierd.pathtext``'s escaped form (lossless, printable), so
  any file name makes a valid UTF-8 key;
* ``STAMP`` is the file's mtime (UTC) and ``TOKEN`` the upload's token: a new
  version of a file is a new key, never an overwrite of an object with a
  minimum storage duration, and a crash between CreateMultipartUpload and the
  commit of its id finds the upload again by its key alone;
* the host and the token let housekeeping tell this host's unfinished uploads
  from everyone else's without any metadata (ListMultipartUploads shows none).

A key longer than S3's 1,024 bytes keeps the head of its path and gets
``...#`` and a SHA-256 prefix of the whole path. The object's metadata holds
glacierd's description document (``x-amz-meta-glacierd``, ASCII), which has
everything ``catalog rebuild`` needs.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import re
from collections.abc import Sequence

from glacierd import description, pathtext
from glacierd.glacier import limits

MAX_KEY_BYTES = 1024
METADATA_NAME = "glacierd"
TREE_HASH_TAG = "glacierd-tree-hash"
MIN_PART_SIZE = 8 * limits.MIB
"""S3's minimum part is 5 MiB; glacierd's are 1 MiB x 2^n, so 8 MiB at least."""
MAX_SINGLE_PUT = 5 * 1024 * limits.MIB

_KEY = re.compile(r"(?P<stamp>\d{8}T\d{6}Z)-(?P<token>[0-9a-f]{32})\Z")

ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
"""Classes whose objects must be restored before they can be read."""

MIN_STORAGE_DAYS = {"GLACIER": 90, "DEEP_ARCHIVE": 180, "GLACIER_IR": 90, "STANDARD_IA": 30,
                    "STANDARD": 0}
"""Deleting an object younger than this is charged as if it had stayed."""


def _stamp(mtime_ns: int) -> str:
    try:
        when = dt.datetime.fromtimestamp(mtime_ns / 1e9, dt.UTC)
    except (OverflowError, OSError, ValueError):
        when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return when.strftime("%Y%m%dT%H%M%SZ")


def object_key(prefix: str, info: description.ArchiveInfo) -> str:
    """The key an upload of ``info`` (path, host, mtime, token) is stored under."""
    tail = f"@{_stamp(info.mtime_ns)}-{info.token}"
    path = pathtext.escape(info.path)
    head = f"{prefix}{info.host}"
    if not path.startswith("/"):
        path = "/" + path
    room = MAX_KEY_BYTES - len((head + tail).encode())
    if len(path.encode()) > room:
        digest = "...#" + hashlib.sha256(path.encode()).hexdigest()[:16]
        keep = room - len(digest)
        head_of_path = pathtext.cut(path, keep)
        while (excess := len(head_of_path.encode()) - keep) > 0:  # multi-byte characters
            head_of_path = pathtext.cut(head_of_path, len(head_of_path) - max(1, excess // 4))
        path = head_of_path + digest
    return head + path + tail


SEALED_SUFFIX = ".age"


def sealed_key(prefix: str, host: str, token: str) -> str:
    """An encrypted upload's key: ``PREFIX HOST/TOKEN.age``, no path, no name, no
    date (its description is sealed too); ``age -d`` reads the object as it is."""
    return f"{prefix}{host}/{token}{SEALED_SUFFIX}"


@functools.lru_cache(maxsize=256)
def key_for(prefix: str, description_text: str) -> str:
    """The key of the upload whose description document this is. Kept for the
    uploads under way: a one-part file asks it for its PUT and its Complete."""
    info = description.decode(description_text)
    if info is not None:
        return object_key(prefix, info)
    public = description.public_part(description_text)
    if public is None:
        raise ValueError("not a glacierd description: no key can be derived from it")
    return sealed_key(prefix, public.host, public.token)


_SEALED_KEY = re.compile(r"/(?P<token>[0-9a-f]{32})\.age\Z")


def owner(prefix: str, key: str) -> tuple[str, str] | None:
    """(host, token) of a key glacierd made under ``prefix``, else None."""
    if not key.startswith(prefix):
        return None
    rest = key[len(prefix):]
    host, slash, path = rest.partition("/")
    sealed = _SEALED_KEY.match("/" + path)
    if slash and sealed is not None:
        return host, sealed["token"]
    match = _KEY.search(rest)
    if not slash or match is None or "@" not in rest:
        return None
    return host, match["token"]


def b64(hex_digest: str) -> str:
    """A hex SHA-256 as S3 writes it (base64 of the 32 bytes)."""
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def hex_of(b64_digest: str) -> str:
    return base64.b64decode(b64_digest).hex()


def composite_sha256(part_sha256: Sequence[str]) -> str:
    """S3's checksum of a multipart object: SHA-256 over the parts' 32-byte
    digests, base64, then ``-N``."""
    joined = b"".join(bytes.fromhex(h) for h in part_sha256)
    return f"{b64(hashlib.sha256(joined).hexdigest())}-{len(part_sha256)}"


def part_size(size: int, configured: int, *, name: str = "") -> int:
    """glacierd's part size for an S3 object of ``size`` bytes: 1 MiB x 2^n (so
    the parts' tree hashes combine into the file's), 8 MiB at least (S3's
    minimum is 5 MiB), at most 10,000 parts."""
    return limits.upload_part_size(size, max(configured, MIN_PART_SIZE), name=name)
