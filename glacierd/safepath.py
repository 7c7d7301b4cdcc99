"""Turning a path from an archive description into one that is safe to write.

A description can be written by anyone with access to the vault, so its path
is untrusted input. The result is always a relative path inside the restore
directory: a leading ``/`` or drive letter, ``.`` and ``..`` components, NUL
bytes and control characters are removed, and Windows device names (CON, NUL,
COM1...) are prefixed, since a restore may land on a shared or Samba folder.
Pure; the caller logs when the path was changed.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

_DEVICE = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)
_DRIVE = re.compile(r"^[A-Za-z]:$")


def safe_relative_path(original: str) -> tuple[PurePosixPath, bool]:
    """(safe relative path, whether it differs from what the description said)."""
    text = "".join(c for c in original.replace("\\", "/") if c >= " " and c != "\x7f")
    parts: list[str] = []
    for part in text.split("/"):
        if part in ("", ".", "..") or _DRIVE.match(part):
            continue
        if _DEVICE.match(part):
            part = "_" + part
        parts.append(part)
    if not parts:
        parts = ["unnamed"]
    safe = PurePosixPath(*parts)
    expected = original.lstrip("/")
    return safe, str(safe) != expected
