"""Opening a file to upload without following a symbolic link out of its folder.

With ``follow_symlinks = false`` no file outside a watched folder (or the
folder named to ``glacierd upload``) may ever be read. Checking a path and then
opening it races with whoever can write in that folder, and ``open()`` follows
links in every component. So the file is opened one component at a time from
its root with ``O_NOFOLLOW`` (a link anywhere below the root fails the open),
and whatever is judged afterwards (size, mtime, inode: has it changed?) is the
``fstat`` of the descriptor that is read, never a new look at the path.

With ``follow_symlinks = true`` the user has chosen to follow links: the path
is opened as it is.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from glacierd.errors import NotAFileError, UnreadableFileError
from glacierd.pathtext import shown
from glacierd.sources import file_kind

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC  # a FIFO must not block the open


def open_for_upload(path: str, root: str | os.PathLike[str] | None,
                    follow_symlinks: bool) -> tuple[int, os.stat_result]:
    """A read-only descriptor of the regular file at ``path`` and its ``fstat``.

    ``root``: the folder the file was found in (a watched folder, or a folder
    named to ``upload``); None for a file named on its own, whose folder is
    then its root. Raises ``NotAFileError`` (gone, a link, not a regular file:
    no retry helps) or ``UnreadableFileError`` (permission denied and the like).
    """
    where = shown(path)
    try:
        if follow_symlinks:
            fd = os.open(path, _FILE_FLAGS)
        else:
            fd = _open_beneath(Path(path), Path(root) if root is not None else None)
    except FileNotFoundError:
        raise NotAFileError(f"{where}: no such file (it vanished?)") from None
    except NotADirectoryError:
        raise NotAFileError(f"{where}: a folder on its path is a symbolic link, or no longer "
                            "a folder") from None
    except PermissionError:
        raise UnreadableFileError(f"{where}: permission denied") from None
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket (or a device with nothing behind it)
            raise NotAFileError(f"{where}: is {_kind_of(path)}, not a regular file") from None
        if exc.errno == errno.ELOOP:
            raise NotAFileError(f"{where}: it, or a folder on its path, is a symbolic link; "
                                "set [upload] follow_symlinks = true to follow") from None
        raise UnreadableFileError(f"{where}: {exc.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotAFileError(f"{where}: is {file_kind(st.st_mode)}, not a regular file")
    return fd, st


def _kind_of(path: str) -> str:
    try:
        return file_kind(os.lstat(path).st_mode)
    except OSError:
        return "not a regular file"


def _open_beneath(path: Path, root: Path | None) -> int:
    if root is None or not path.is_relative_to(root) or path == root:
        root = path.parent
    parts = path.relative_to(root).parts
    dirfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the root is trusted
    try:
        for part in parts[:-1]:
            inner = os.open(part, _DIR_FLAGS, dir_fd=dirfd)
            os.close(dirfd)
            dirfd = inner
        return os.open(parts[-1], _FILE_FLAGS | os.O_NOFOLLOW, dir_fd=dirfd)
    finally:
        os.close(dirfd)
