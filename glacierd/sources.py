"""What the paths a user names stand for: the files to upload, in a stable order.

Cheap to import on purpose: ``glacierd upload`` needs the first file before it
loads the store's code, to read it ahead (``glacierd.readahead``).
"""

from __future__ import annotations

import os
from pathlib import Path


def uploadable_files(paths: list[str], follow_symlinks: bool = False) -> list[Path]:
    """Expand directories into the files below them, in a stable order."""
    out: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir() and (follow_symlinks or not path.is_symlink()):
            for root, dirs, files in os.walk(path, followlinks=follow_symlinks):
                dirs.sort()
                out.extend(Path(root) / name for name in sorted(files))
        else:
            out.append(path)
    return out
