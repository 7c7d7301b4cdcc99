"""Archive descriptions that make a vault self-describing (pure).

Format: ``glacierd1 `` followed by base64url (no padding) of compact JSON::

    {"p": path, "h": host, "s": size, "m": mtime_ns, "t": tree_hash | null, "u": token,
     "o": mode}

so that an inventory alone can rebuild the catalog. Glacier allows 1,024
printable ASCII characters, which leaves about 760 bytes of JSON. A path too
long to fit keeps its head and gets ``...#`` plus a SHA-256 prefix of the
whole path appended (``"P": true`` marks it shortened); the full path stays in
the state store.

``o``, the file's permission bits (``0o777`` at most), lets a restore give
the file back its mode; descriptions written before it was added restore as
0600. Set-id and sticky bits are never recorded.

``t`` is the file's tree hash when it is known before the upload starts (the
daemon hashes a file to avoid uploading an unchanged one again); the
uploader does not read a file twice just to fill it, because the archive's
own SHA256TreeHash, which every inventory lists, is that same hash.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass

from glacierd.glacier.limits import MAX_DESCRIPTION

PREFIX = "glacierd1 "
PERMISSION_BITS = 0o777


@dataclass(frozen=True)
class ArchiveInfo:
    path: str
    host: str
    size: int
    mtime_ns: int
    token: str
    tree_hash: str | None = None
    shortened: bool = False
    mode: int | None = None  # permission bits, 0o777 at most


def _encode_doc(doc: dict[str, object]) -> str:
    raw = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def encode(info: ArchiveInfo) -> str:
    doc: dict[str, object] = {"p": info.path, "h": info.host, "s": info.size,
                              "m": info.mtime_ns, "t": info.tree_hash, "u": info.token}
    if info.mode is not None:
        doc["o"] = info.mode & PERMISSION_BITS
    text = _encode_doc(doc)
    if len(text) <= MAX_DESCRIPTION:
        return text
    digest = hashlib.sha256(info.path.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    keep = len(info.path)
    while keep > 0:
        keep = keep * 3 // 4
        doc["p"] = info.path[:keep] + "...#" + digest
        doc["P"] = True
        text = _encode_doc(doc)
        if len(text) <= MAX_DESCRIPTION:
            return text
    raise ValueError("description does not fit even with an empty path")


def _mode(value: object) -> int | None:
    """A recorded mode, or None when absent or not one (the restore then uses 0600)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= PERMISSION_BITS:
        return value
    return None


def decode(description: str) -> ArchiveInfo | None:
    """The info in a glacierd description, or None for anyone else's."""
    if not description.startswith(PREFIX):
        return None
    body = description[len(PREFIX):]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        doc = json.loads(raw.decode("utf-8"))
        return ArchiveInfo(
            path=str(doc["p"]), host=str(doc["h"]), size=int(doc["s"]),
            mtime_ns=int(doc["m"]), token=str(doc["u"]),
            tree_hash=doc.get("t"), shortened=bool(doc.get("P", False)),
            mode=_mode(doc.get("o")),
        )
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
