"""Bundles: many small files in one archive (issue 16), as a POSIX tar (pax)
file that ``tar`` and Python's ``tarfile`` read without glacierd.

A bundle is laid out once, from its member list (``layout``), before any of
it is sent, and is then a pure function of that list and the members' bytes:
any byte range of it can be made again (``BundleReader.read_into``), so a
resumed bundle re-sends a part byte for byte, exactly as an encrypted
upload does. Layout:

* first, ``.glacierd-bundle.json``: the index — each member's path, the
  offset and size of its bytes in the bundle, its mtime (ns), mode and
  SHA-256 — so that the first megabyte of a bundle tells what it holds and
  where, and a ranged retrieval fetches one member;
* then one tar entry per member: a pax header (any bytes in a name,
  ``hdrcharset=BINARY``; the mtime to the nanosecond) and the file's bytes,
  padded to 512;
* then tar's end: two zero blocks.

Pure apart from the reads of the members' files; knows nothing of the store.
"""

from __future__ import annotations

import json
import os
import re
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from glacierd import pathtext

BLOCK = 512
INDEX_NAME = ".glacierd-bundle.json"
FORMAT = "glacierd-bundle/1"
FILE_PREFIX, FILE_SUFFIX = "glacierd-bundle-", ".tar"
"""A bundle's file name: ``glacierd-bundle-TOKEN.tar`` (the path in its archive's
description ends so: how a rebuilt catalog tells bundles from files)."""
_FILE_NAME = re.compile(r"glacierd-bundle-[0-9a-f]{32}\.tar")


def is_bundle_name(path: str) -> bool:
    return _FILE_NAME.fullmatch(os.path.basename(path)) is not None


@dataclass(frozen=True)
class Member:
    path: str
    """The file's absolute path (the name in the tar is it without the leading /)."""
    size: int
    mtime_ns: int
    mode: int
    sha256: str
    tree_hash: str = ""


@dataclass(frozen=True)
class Placed:
    member: Member
    offset: int
    """Where the member's bytes begin in the bundle."""


@dataclass(frozen=True)
class _Piece:
    offset: int
    length: int
    data: bytes | None  # fixed bytes (headers, the index, padding), or
    member: int | None  # the index of the member whose bytes these are


@dataclass(frozen=True)
class Layout:
    members: tuple[Placed, ...]
    size: int
    pieces: tuple[_Piece, ...]


class MemberChanged(Exception):
    """A member's file no longer has the size it was laid out with."""

    def __init__(self, member: Member) -> None:
        super().__init__(f"{member.path}: changed since it was packed")
        self.member = member


def _pad(length: int) -> int:
    return -length % BLOCK


def _header(name: str, size: int, mtime_ns: int, mode: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = mode & 0o7777
    info.mtime = mtime_ns // 1_000_000_000
    info.type = tarfile.REGTYPE
    info.uname = info.gname = ""
    # The nanoseconds, in the pax header (tarfile writes a float's digits otherwise).
    seconds, nanos = divmod(mtime_ns, 1_000_000_000)
    info.pax_headers = {"mtime": f"{seconds}.{nanos:09d}"}
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape")


def _name(path: str) -> str:
    return path.lstrip("/") or "."


def _index(placed: Sequence[Placed]) -> dict[str, object]:
    return {"format": FORMAT, "members": [
        {"path": pathtext.escape(p.member.path), "offset": p.offset, "size": p.member.size,
         "mtime_ns": p.member.mtime_ns, "mode": p.member.mode & 0o7777,
         "sha256": p.member.sha256, **({"tree_hash": p.member.tree_hash}
                                       if p.member.tree_hash else {})} for p in placed]}


def layout(members: Sequence[Member]) -> Layout:
    """Where everything goes. The index's size depends on the offsets it lists,
    which depend on its size: laid out again until the two agree."""
    index_size = 0
    while True:
        index_header = _header(INDEX_NAME, index_size, 0, 0o644)
        position = len(index_header) + index_size + _pad(index_size)
        placed = []
        headers = []
        for member in members:
            header = _header(_name(member.path), member.size, member.mtime_ns, member.mode)
            headers.append(header)
            position += len(header)
            placed.append(Placed(member, position))
            position += member.size + _pad(member.size)
        document = json.dumps(_index(placed), separators=(",", ":"),
                              ensure_ascii=True).encode("ascii")
        if len(document) == index_size:
            break
        index_size = len(document)
    pieces: list[_Piece] = []
    at = 0

    def fixed(data: bytes) -> None:
        nonlocal at
        if data:
            pieces.append(_Piece(at, len(data), data, None))
            at += len(data)

    fixed(index_header + document + b"\0" * _pad(index_size))
    for number, (member, header) in enumerate(zip(members, headers, strict=True)):
        fixed(header)
        if member.size:
            pieces.append(_Piece(at, member.size, None, number))
            at += member.size
        fixed(b"\0" * _pad(member.size))
    fixed(b"\0" * (2 * BLOCK))
    return Layout(tuple(placed), at, tuple(pieces))


MemberBytes = Callable[[int, int, int], bytes]
"""``(member number, offset in the member, length)`` -> that many of its bytes
(fewer: the member is shorter than laid out)."""


class BundleReader:
    """Any byte range of a bundle, its members' bytes from ``member_bytes``."""

    def __init__(self, laid_out: Layout, member_bytes: MemberBytes,
                 on_close: Callable[[], None] | None = None) -> None:
        self._layout = laid_out
        self._member_bytes = member_bytes
        self._on_close = on_close

    @classmethod
    def of_files(cls, laid_out: Layout, open_member: Callable[[Member], int]) -> BundleReader:
        """Members read from their files, each opened (``open_member`` returns a file
        descriptor) when first read and closed when the next member is: a bundle
        is read front to back, and must not hold thousands of files open."""
        current: list[int] = []  # [number, fd] of the open member

        def member_bytes(number: int, offset: int, length: int) -> bytes:
            if not current or current[0] != number:
                if current:
                    os.close(current[1])
                current[:] = [number, open_member(laid_out.members[number].member)]
            return os.pread(current[1], length, offset)

        def close() -> None:
            if current:
                os.close(current[1])
                current.clear()

        return cls(laid_out, member_bytes, close)

    def read_into(self, view: memoryview, offset: int) -> int:
        """Fill ``view`` with the bundle's bytes from ``offset``; ``MemberChanged``
        if a member's bytes are fewer than laid out."""
        end = min(offset + len(view), self._layout.size)
        filled = 0
        for piece in self._layout.pieces:
            if piece.offset + piece.length <= offset or piece.offset >= end:
                continue
            start = max(offset, piece.offset)
            stop = min(end, piece.offset + piece.length)
            if piece.data is not None:
                chunk: bytes = piece.data[start - piece.offset:stop - piece.offset]
            else:
                assert piece.member is not None
                chunk = self._member_bytes(piece.member, start - piece.offset, stop - start)
                if len(chunk) != stop - start:
                    raise MemberChanged(self._layout.members[piece.member].member)
            view[start - offset:stop - offset] = chunk
            filled = stop - offset
        return filled

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()


@dataclass(frozen=True)
class IndexEntry:
    """A file as a bundle's index lists it."""

    path: str
    offset: int
    size: int
    mtime_ns: int
    mode: int
    sha256: str
    tree_hash: str


class NotABundle(Exception):
    """The bytes do not begin with a glacierd bundle's index."""


def read_index(head: bytes) -> list[IndexEntry] | int:
    """The index from a bundle's first bytes, or — when ``head`` stops short of
    its end — how many first bytes hold it. ``NotABundle`` if they cannot."""
    import io

    try:
        with tarfile.open(fileobj=io.BytesIO(head), mode="r:") as tar:
            info = tar.next()
    except (tarfile.TarError, EOFError) as exc:
        raise NotABundle(f"no tar header at its start ({exc})") from None
    if info is None or info.name != INDEX_NAME:
        raise NotABundle(f"its first member is not {INDEX_NAME}")
    end = info.offset_data + info.size
    if end > len(head):
        return end
    try:
        doc = json.loads(head[info.offset_data:end])
        if doc.get("format") != FORMAT:
            raise NotABundle(f"unknown index format {doc.get('format')!r}")
        return [IndexEntry(pathtext.unescape(str(m["path"])), int(m["offset"]), int(m["size"]),
                           int(m["mtime_ns"]), int(m["mode"]), str(m["sha256"]),
                           str(m.get("tree_hash", ""))) for m in doc["members"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise NotABundle(f"its index cannot be read ({exc})") from None
