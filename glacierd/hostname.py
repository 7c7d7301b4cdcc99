"""This machine's name as glacierd records it: in every file row, archive
description and daemon row of a catalog several hosts may share.

``$GLACIERD_HOST`` overrides the system's host name: a container, whose name
changes with each start, or a machine renamed, keeps its identity (and its
files) with it. Pure: the standard library only.
"""

from __future__ import annotations

import os
import socket


def this_host() -> str:
    return os.environ.get("GLACIERD_HOST") or socket.gethostname()
