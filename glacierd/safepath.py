"""Turning a path from an archive description into one that is safe to write.

A description can be written by anyone with access to the vault, so its path
is untrusted input. The result is always a relative path inside the restore
directory: a leading ``/``, empty, ``.`` and ``..`` components and NUL bytes
are removed. Everything else a Linux file name may hold is kept exactly
(bytes that are not UTF-8, newlines, tabs, escape sequences, backslashes,
names such as ``CON``), so a file comes back under its own name; showing
such names safely is ``glacierd.pathtext``'s business.

A component longer than a file system takes (255 bytes) keeps its head and
gets ``~`` and a hash of the whole name, so that one odd archive restores
under a recognisable name instead of failing with ENAMETOOLONG.
Pure; the caller logs when the path was changed.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import PurePosixPath

NAME_MAX = 255


def _fit(name: str) -> str:
    """``name`` if it fits in NAME_MAX bytes, else its head + ``~`` + a hash."""
    raw = os.fsencode(name)
    if len(raw) <= NAME_MAX:
        return name
    tag = "~" + hashlib.sha256(raw).hexdigest()[:16]
    head = raw[: NAME_MAX - len(tag)]
    text = os.fsdecode(head)
    while len(os.fsencode(text)) + len(tag) > NAME_MAX:  # pragma: no cover - defensive
        text = text[:-1]
    return text + tag


def safe_relative_path(original: str) -> tuple[PurePosixPath, bool]:
    """(safe relative path, whether it differs from what the description said)."""
    text = original.replace("\x00", "")
    parts = [_fit(part) for part in text.split("/") if part not in ("", ".", "..")]
    if not parts:
        parts = ["unnamed"]
    safe = PurePosixPath(*parts)
    expected = original.lstrip("/")
    return safe, str(safe) != expected
