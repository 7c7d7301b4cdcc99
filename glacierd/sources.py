"""What the paths a user names stand for: the files to upload, in a stable order,
and the paths that cannot be uploaded, each with its reason.

Cheap to import on purpose: ``glacierd upload`` needs the first file before it
loads the store's code, to read it ahead (``glacierd.readahead``).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Refused:
    """A path that is not a regular file (or does not exist): never queued or stored."""

    path: Path
    reason: str


def file_kind(mode: int) -> str:
    """What a non-regular file is, for a message."""
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "not a regular file"


def refusal(path: Path, follow_symlinks: bool) -> str | None:
    """Why ``path`` cannot be uploaded as a file, or None if it can."""
    try:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            if not follow_symlinks:
                return "is a symbolic link; set [upload] follow_symlinks = true to follow"
            st = os.stat(path)
    except FileNotFoundError:
        return "no such file or folder"
    except OSError as exc:
        return exc.strerror or str(exc)
    if not stat.S_ISREG(st.st_mode):
        return f"is {file_kind(st.st_mode)}, not a regular file"
    return None


@dataclass
class Selection:
    """The files to upload, in order; for each, the folder named for it (below
    which no symbolic link is followed unless configured); and the refusals."""

    files: list[Path]
    roots: dict[Path, Path]
    refused: list[Refused]


def uploadable_files(paths: list[str], follow_symlinks: bool = False) -> Selection:
    """Expand directories into the files below them, in a stable order; paths that
    are not regular files come back as refusals instead."""
    chosen = Selection([], {}, [])

    def take(path: Path, root: Path | None) -> None:
        reason = refusal(path, follow_symlinks)
        if reason is not None:
            chosen.refused.append(Refused(path, reason))
            return
        chosen.files.append(path)
        if root is not None:
            chosen.roots[path] = root

    for given in paths:
        path = Path(given)
        if path.is_dir() and (follow_symlinks or not path.is_symlink()):
            for root, dirs, files in os.walk(path, followlinks=follow_symlinks):
                dirs.sort()
                for name in sorted(files):
                    take(Path(root) / name, path.absolute())
        else:
            take(path, None)
    return chosen
