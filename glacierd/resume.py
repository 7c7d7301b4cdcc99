"""Resume planning (pure): given what the store acknowledged and what Glacier
lists, decide which parts to skip, which to check for adoption, which to send.

docs/design.md invariant 3: only parts that were not acknowledged are sent again, and
a part Glacier has that the store lacks (a crash between the 2xx and the
commit) is adopted only if its tree hash matches the local bytes — which the
caller checks, since that needs the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from glacierd.backends.base import RemotePart
from glacierd.glacier.limits import PartRange


@dataclass(frozen=True)
class ResumePlan:
    skip: tuple[int, ...]  # acknowledged here and present there with the same hash
    adopt: tuple[RemotePart, ...]  # present there only: adopt if the local bytes match
    send: tuple[int, ...]  # everything else
    conflicts: tuple[int, ...]  # acknowledged here, but Glacier has other bytes


def remote_parts(parts: Iterable[RemotePart], part_size: int) -> dict[int, RemotePart]:
    """The parts a backend lists, keyed by part index (ours are aligned to the part size)."""
    out: dict[int, RemotePart] = {}
    for part in parts:
        if part.offset % part_size:
            continue  # not one of ours: a part size mismatch is caught by the caller
        index = part.offset // part_size
        out[index] = RemotePart(index, part.offset, part.length, part.checksum)
    return out


def plan(ranges: Iterable[PartRange], acked: Mapping[int, tuple[int, str]],
         remote: Mapping[int, RemotePart]) -> ResumePlan:
    """``acked`` maps index to (length, tree hash) as the store has them."""
    skip: list[int] = []
    adopt: list[RemotePart] = []
    send: list[int] = []
    conflicts: list[int] = []
    for r in ranges:
        mine, theirs = acked.get(r.index), remote.get(r.index)
        if theirs is not None and theirs.length != r.length:
            theirs = None  # a different split: send ours, which overwrites it
        if mine is not None and theirs is not None:
            # a service that lists no checksum (some S3 peers) cannot contradict the store
            same = mine[1] == theirs.checksum or not theirs.checksum
            (skip if same else conflicts).append(r.index)
        elif theirs is not None and theirs.checksum:
            adopt.append(theirs)  # a part listed without a checksum is sent again
        else:
            send.append(r.index)
    return ResumePlan(tuple(skip), tuple(adopt), tuple(send), tuple(conflicts))
