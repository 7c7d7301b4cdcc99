"""Archive descriptions that make a vault self-describing (pure).

Format: ``glacierd1 `` followed by base64url (no padding) of compact JSON::

    {"p": path, "h": host, "s": size, "m": mtime_ns, "t": tree_hash | null, "u": token,
     "o": mode}

so that an inventory alone can rebuild the catalog. Glacier allows 1,024
printable ASCII characters, which leaves about 760 bytes of JSON. A path too
long to fit keeps its head and gets ``...#`` plus a SHA-256 prefix of the
whole path appended (``"P": true`` marks it shortened); the full path stays in
the state store.

A path that is not valid Unicode text (a name whose bytes are not UTF-8,
which Python holds with surrogate escapes) is written in
``glacierd.pathtext``'s escaped form with ``"pe": "escaped"``, the explicit
marker that says how to read it back; any other path is plain JSON text.

Numbers out of range (a size or mode that is not one, an mtime beyond what a
file system can hold) are dropped when a description is read: ``problems``
says which, so an inventory applies the rest of the archive and warns.

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from glacierd import pathtext
from glacierd.glacier.limits import MAX_DESCRIPTION

PREFIX = "glacierd1 "
PERMISSION_BITS = 0o777
MAX_SIZE = 2**63 - 1
MTIME_RANGE = (-(2**63), 2**63 - 1)  # nanoseconds: what a 64-bit column and stat hold


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
    problems: tuple[str, ...] = ()  # fields that were out of range and were dropped
    manifests: int = 0
    """A sealed description whose path was too long: the number of manifest
    archives that hold the whole path (``seal``)."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _encode_doc(doc: dict[str, object]) -> str:
    raw = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return PREFIX + _b64url(raw)


def _is_text(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def encode(info: ArchiveInfo) -> str:
    path = info.path
    doc: dict[str, object] = {"h": info.host, "s": info.size,
                              "m": info.mtime_ns, "t": info.tree_hash, "u": info.token}
    if not _is_text(path):
        path = pathtext.escape(path)
        doc["pe"] = "escaped"
    doc["p"] = path
    if info.mode is not None:
        doc["o"] = info.mode & PERMISSION_BITS
    text = _encode_doc(doc)
    if len(text) <= MAX_DESCRIPTION:
        return text
    digest = hashlib.sha256(info.path.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    keep = len(path)
    while keep > 0:
        keep = keep * 3 // 4
        head = pathtext.cut(path, keep) if doc.get("pe") else path[:keep]
        doc["p"] = head + "...#" + digest
        doc["P"] = True
        text = _encode_doc(doc)
        if len(text) <= MAX_DESCRIPTION:
            return text
    raise ValueError("description does not fit even with an empty path")


def _manifest_count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and \
        0 < value <= 64 else 0


def _mode(value: object) -> int | None:
    """A recorded mode, or None when absent or not one (the restore then uses 0600)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= PERMISSION_BITS:
        return value
    return None


def _number(doc: dict[str, object], key: str, low: int, high: int,
            problems: list[str]) -> int:
    """A whole number within [low, high]; else 0, with the key noted in ``problems``."""
    value = doc.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return value
    problems.append(f"{key}={str(value)[:40]}")
    return 0


def decode(description: str) -> ArchiveInfo | None:
    """The info in a glacierd description, or None for anyone else's.

    Never raises, whatever the description holds: it comes from the vault,
    which anyone with access to it can write.
    """
    if not description.startswith(PREFIX):
        return None
    body = description[len(PREFIX):]
    try:
        doc = json.loads(_unb64url(body).decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return _decode_doc(doc) if isinstance(doc, dict) else None


def _decode_doc(doc: dict[str, object]) -> ArchiveInfo | None:
    """The info of a description document (plain, or a sealed one opened); never
    raises."""
    try:
        if not isinstance(doc.get("p"), str):
            return None
        path = str(doc["p"])
        if doc.get("pe") == "escaped":
            path = pathtext.unescape(path)
        problems: list[str] = []
        size = _number(doc, "s", 0, MAX_SIZE, problems)
        mtime_ns = _number(doc, "m", *MTIME_RANGE, problems)
        tree_hash = doc.get("t")
        if "o" in doc and _mode(doc["o"]) is None:
            problems.append(f"o={str(doc['o'])[:40]}")
        return ArchiveInfo(
            path=path, host=str(doc["h"]), size=size, mtime_ns=mtime_ns, token=str(doc["u"]),
            tree_hash=tree_hash if isinstance(tree_hash, str) else None,
            shortened=bool(doc.get("P", False)), mode=_mode(doc.get("o")),
            manifests=_manifest_count(doc.get("M")),
            problems=tuple(problems),
        )
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError):
        return None


SEALED_PREFIX = "glacierd1e "
"""A description whose document is encrypted (issue 15)::

    glacierd1e <base64url of {"h": host, "u": token, "s": stored size}>.<base64url of
    an age file of the description document's JSON>

Only the host, the upload's token and the age file's size stay readable: what
housekeeping needs to tell this host's unfinished uploads, without the
identity the uploading daemon never holds. One base64 layer over the sealed
document leaves room for paths of about 380 bytes (one recipient). A longer
path keeps its head there, with ``...#`` and a SHA-256 prefix of the whole
path, and ``"M": n``: the whole path is in ``n`` manifest archives (``seal``),
small archives whose sealed descriptions each hold a piece of it, so that an
inventory alone (no retrieval) gives it back to whoever holds the identity."""


def encode_sealed(info: ArchiveInfo, seal: Callable[[bytes], bytes], stored_size: int,
                  manifests: int = 0) -> str:
    """The sealed description of ``info``, within Glacier's 1,024 characters.
    ``seal`` encrypts (to the configured recipients: ``glacierd.age.encrypt``).
    ``stored_size``: the archive's size in the service (the ciphertext's, which
    the service shows anyway); ``info.size`` is the file's, and is sealed.
    A path too long keeps its head (``seal`` also writes the manifests)."""
    return _encode_sealed(info, seal, stored_size, manifests)[0]


def _encode_sealed(info: ArchiveInfo, seal: Callable[[bytes], bytes], stored_size: int,
                   manifests: int) -> tuple[str, bool]:
    """(the description, whether its path had to be shortened)."""
    digest = hashlib.sha256(info.path.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    public = SEALED_PREFIX + _b64url(json.dumps(
        {"h": info.host, "u": info.token, "s": stored_size},
        separators=(",", ":"), ensure_ascii=True).encode("ascii")) + "."
    text_path = _is_text(info.path)
    escaped = info.path if text_path else pathtext.escape(info.path)
    path, shortened, keep = escaped, False, len(escaped)
    while True:
        doc = {"p": path, "s": info.size, "m": info.mtime_ns,  # host, token: public
               **({"t": info.tree_hash} if info.tree_hash else {}),
               **({"pe": "escaped"} if not text_path else {}),
               **({"P": True} if shortened else {}),
               **({"M": manifests} if shortened and manifests else {}),
               **({"o": info.mode & PERMISSION_BITS} if info.mode is not None else {})}
        raw = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        text = public + _b64url(seal(raw))
        over = len(text) - MAX_DESCRIPTION
        if over <= 0:
            return text, shortened
        if keep == 0:
            raise ValueError("a sealed description does not fit in 1,024 characters even "
                             "with an empty path: too many recipients")
        # Each path byte costs 4/3 of a character; a character may be several bytes.
        keep = max(0, keep - max(1, over * 3 // 4 // 4 if over > 64 else 1))
        head = pathtext.cut(escaped, keep) if not text_path else escaped[:keep]
        path, shortened = head + "...#" + digest, True


MANIFEST_CONTENT = b"glacierd manifest: a piece of an archive's path, in this description\n"
"""What a manifest archive holds (an archive cannot be empty); its description is
what counts."""


@dataclass(frozen=True)
class Sealed:
    """A sealed description, and the descriptions of the manifest archives that
    must exist for its whole path to be readable (none when it fits)."""

    text: str
    manifests: tuple[str, ...] = ()


def seal(info: ArchiveInfo, seal: Callable[[bytes], bytes], stored_size: int,
         new_token: Callable[[], str]) -> Sealed:
    """``encode_sealed``, and when the path does not fit, manifest descriptions:
    each ``glacierd1e`` with a public ``{"h", "u": its own token, "s", "f": the
    archive's token, "i": index, "n": count}`` and a sealed piece of the path."""
    whole, shortened = _encode_sealed(info, seal, stored_size, 0)
    if not shortened:
        return Sealed(whole)
    text_path = _is_text(info.path)
    escaped = info.path if text_path else pathtext.escape(info.path)
    size = len(MANIFEST_CONTENT)
    pieces: list[tuple[str, str]] = []  # (token, sealed description without the piece count)
    position = 0
    while position < len(escaped):
        take = min(len(escaped) - position, 600)
        token = new_token()
        while True:
            piece = escaped[position:position + take]
            doc = {"d": piece, **({"pe": "escaped"} if not text_path else {})}
            blob = _b64url(seal(json.dumps(doc, separators=(",", ":"),
                                           ensure_ascii=False).encode("utf-8")))
            # The count is not known yet: room for five digits is kept.
            public = _manifest_public(info.host, token, size, info.token, len(pieces), 99999)
            if len(public) + 1 + len(blob) <= MAX_DESCRIPTION or take <= 1:
                break
            take = max(1, take - max(1, (len(public) + 1 + len(blob) - MAX_DESCRIPTION) // 2))
        pieces.append((token, blob))
        position += take
    count = len(pieces)
    manifests = tuple(_manifest_public(info.host, token, size, info.token, i, count) + "." + blob
                      for i, (token, blob) in enumerate(pieces))
    return Sealed(encode_sealed(info, seal, stored_size, manifests=count), manifests)


def _manifest_public(host: str, token: str, size: int, owner: str, index: int,
                     count: int) -> str:
    return SEALED_PREFIX + _b64url(json.dumps(
        {"h": host, "u": token, "s": size, "f": owner, "i": index, "n": count},
        separators=(",", ":"), ensure_ascii=True).encode("ascii"))


@dataclass(frozen=True)
class ManifestPiece:
    owner: str
    index: int
    count: int


def manifest_piece(description: str) -> ManifestPiece | None:
    """Which archive a manifest's description belongs to (readable without the
    identity); None if it is no manifest."""
    doc = _sealed_doc(description)
    if doc is None or not isinstance(doc.get("f"), str):
        return None
    index, count = doc.get("i"), doc.get("n")
    if not (isinstance(index, int) and isinstance(count, int) and 0 <= index < count):
        return None
    return ManifestPiece(str(doc["f"]), index, count)


def with_manifests(info: ArchiveInfo, manifests: Iterable[str],
                   unseal: Callable[[bytes], bytes]) -> ArchiveInfo:
    """``info`` (a shortened path) with its whole path, when every one of its
    ``info.manifests`` pieces is among ``manifests``; else ``info`` as it is."""
    pieces: dict[int, str] = {}
    escaped = False
    for text in manifests:
        piece = manifest_piece(text)
        if piece is None or piece.owner != info.token or piece.count != info.manifests:
            continue
        try:
            doc = json.loads(unseal(_unb64url(text.split(".", 1)[1])).decode(
                "utf-8", "surrogateescape"))
        except (ValueError, IndexError, RecursionError):
            continue
        if isinstance(doc, dict) and isinstance(doc.get("d"), str):
            pieces[piece.index] = doc["d"]
            escaped = escaped or doc.get("pe") == "escaped"
    if not info.manifests or set(pieces) != set(range(info.manifests)):
        return info
    whole = "".join(pieces[i] for i in range(info.manifests))
    return replace(info, path=pathtext.unescape(whole) if escaped else whole, shortened=False)


@dataclass(frozen=True)
class PublicPart:
    """What anyone with access to the vault or bucket reads in a description of
    glacierd's, sealed or not: enough for housekeeping and for S3 keys."""

    host: str
    token: str
    stored_size: int
    """The archive's size in the service (a sealed one's ciphertext)."""
    sealed: bool
    mtime_ns: int = 0
    """The file's mtime (0 for a sealed description: not told)."""
    path: str = ""
    """The file's path ("" for a sealed description: not told)."""


def public_part(description: str) -> PublicPart | None:
    """The readable part of one of glacierd's descriptions, else None."""
    info = decode(description)
    if info is not None:
        return PublicPart(info.host, info.token, info.size, False, info.mtime_ns, info.path)
    doc = _sealed_doc(description)
    if doc is None or not isinstance(doc.get("u"), str) or not isinstance(doc.get("h"), str):
        return None
    size = doc.get("s")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_SIZE:
        size = 0
    return PublicPart(str(doc["h"]), str(doc["u"]), size, True)


def decode_sealed(description: str, unseal: Callable[[bytes], bytes]) -> ArchiveInfo | None:
    """The info of a sealed description, opened with ``unseal`` (which raises on a
    wrong identity or an altered blob: that propagates); None if not sealed."""
    if _sealed_doc(description) is None:
        return None
    try:
        blob = _unb64url(description.split(".", 1)[1])
    except (ValueError, IndexError):
        return None
    raw = unseal(blob)
    try:
        doc = json.loads(raw.decode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError):
        return None
    public = _sealed_doc(description)
    if not isinstance(doc, dict) or public is None:
        return None
    return _decode_doc({**doc, "h": public.get("h"), "u": public.get("u")})


def _sealed_doc(description: str) -> dict[str, object] | None:
    """The readable part of a sealed description."""
    if not description.startswith(SEALED_PREFIX):
        return None
    body = description[len(SEALED_PREFIX):].split(".", 1)[0]
    try:
        doc = json.loads(_unb64url(body))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None
