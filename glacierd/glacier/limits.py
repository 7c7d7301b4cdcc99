"""Glacier's limits, and the checks that refuse bad input before any request.

Pure functions: part-size planning, part ranges, description and retrieval
range validation. Each failure is an ``InvalidInputError`` whose message names
the value at fault.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .errors import InvalidInputError

MIB = 1024 * 1024
MIN_PART_SIZE = MIB
MAX_PART_SIZE = 4 * 1024 * MIB
MAX_PARTS = 10_000
MAX_DESCRIPTION = 1024
MAX_SINGLE_UPLOAD = 4 * 1024 * MIB
TIERS = ("Expedited", "Standard", "Bulk")
INVENTORY_FORMATS = ("JSON", "CSV")


def is_valid_part_size(part_size: int) -> bool:
    """True for 1 MiB x 2^n between 1 MiB and 4 GiB."""
    return (
        MIN_PART_SIZE <= part_size <= MAX_PART_SIZE
        and part_size % MIB == 0
        and (part_size // MIB) & (part_size // MIB - 1) == 0
    )


def check_part_size(part_size: int) -> int:
    if not isinstance(part_size, int) or not is_valid_part_size(part_size):
        raise InvalidInputError(
            f"part size {part_size!r} is invalid: it must be 1 MiB x 2^n, "
            f"from 1 MiB ({MIN_PART_SIZE}) to 4 GiB ({MAX_PART_SIZE}) bytes"
        )
    return part_size


def smallest_part_size(archive_size: int) -> int:
    """The smallest valid part size that keeps ``archive_size`` within 10,000 parts."""
    part = MIN_PART_SIZE
    while part * MAX_PARTS < archive_size:
        part *= 2
        if part > MAX_PART_SIZE:
            raise InvalidInputError(
                f"an archive of {archive_size} bytes is larger than Glacier's maximum "
                f"({MAX_PART_SIZE * MAX_PARTS} bytes)"
            )
    return part


def plan_part_size(archive_size: int, preferred: int | None = None, *, name: str = "") -> int:
    """The part size to upload ``archive_size`` bytes with.

    With no ``preferred`` size, the smallest valid one. With one, it must be
    valid, and it must not need more than 10,000 parts: an explicit choice is
    never silently overridden.
    """
    if preferred is None:
        return smallest_part_size(archive_size)
    check_part_size(preferred)
    parts = part_count(archive_size, preferred)
    if parts > MAX_PARTS:
        what = f"{name}: " if name else ""
        raise InvalidInputError(
            f"{what}{archive_size} bytes need {parts} parts of {preferred} bytes; Glacier "
            f"allows {MAX_PARTS}. Use a part size of at least {smallest_part_size(archive_size)}"
        )
    return preferred


def upload_part_size(archive_size: int, configured: int, *, name: str = "") -> int:
    """The part size glacierd uploads ``archive_size`` bytes with, given the
    configured one: raised to the smallest that fits in 10,000 parts when the file
    is too big for it (a configured default, unlike an explicit choice above, is
    a preference)."""
    return plan_part_size(archive_size, max(configured, smallest_part_size(archive_size)),
                          name=name)


def part_count(archive_size: int, part_size: int) -> int:
    return max(1, -(-archive_size // part_size))


@dataclass(frozen=True)
class PartRange:
    index: int
    offset: int
    length: int

    @property
    def last(self) -> int:
        """Inclusive last byte, as Content-Range writes it."""
        return self.offset + self.length - 1


def part_ranges(archive_size: int, part_size: int) -> Iterator[PartRange]:
    for index, offset in enumerate(range(0, archive_size, part_size)):
        yield PartRange(index, offset, min(part_size, archive_size - offset))


def check_description(description: str | None) -> str | None:
    """Glacier accepts up to 1,024 printable ASCII characters (0x20-0x7E)."""
    if description is None:
        return None
    if len(description) > MAX_DESCRIPTION:
        raise InvalidInputError(
            f"archive description is {len(description)} characters; the limit is "
            f"{MAX_DESCRIPTION}: {description[:40]!r}..."
        )
    if description.isascii() and description.isprintable():  # 0x20-0x7E, fast
        return description
    bad = [c for c in description if not 0x20 <= ord(c) <= 0x7E]
    if bad:
        raise InvalidInputError(
            f"archive description {description[:60]!r} has a character Glacier refuses "
            f"({bad[0]!r}): only printable ASCII is allowed"
        )
    return description


def parse_byte_range(byte_range: str | tuple[int, int]) -> tuple[int, int]:
    """``"FIRST-LAST"`` or ``(first, last)``, inclusive, as two ints."""
    if isinstance(byte_range, tuple):
        first, last = byte_range
    else:
        head, sep, tail = str(byte_range).partition("-")
        if not sep or not head.strip().isdigit() or not tail.strip().isdigit():
            raise InvalidInputError(f"byte range {byte_range!r} is not of the form FIRST-LAST")
        first, last = int(head), int(tail)
    if first < 0 or last < first:
        raise InvalidInputError(f"byte range {first}-{last} is empty or negative")
    return first, last


def aligned_range(start: int, end: int, archive_size: int) -> tuple[int, int]:
    """The smallest megabyte-aligned retrieval range (first, last inclusive) that
    holds bytes ``start`` to ``end`` (exclusive) of an archive of ``archive_size``."""
    first = start // MIB * MIB
    last = min(-(-end // MIB) * MIB, archive_size) - 1
    return first, last


def check_retrieval_range(
    byte_range: str | tuple[int, int], archive_size: int | None = None
) -> str:
    """A retrieval range must be megabyte aligned: FIRST on a MiB boundary, and
    LAST + 1 on one too unless it is the archive's end."""
    first, last = parse_byte_range(byte_range)
    if first % MIB:
        raise InvalidInputError(
            f"retrieval range {first}-{last} is not megabyte aligned: {first} is not a "
            f"multiple of {MIB}"
        )
    at_end = archive_size is not None and last + 1 == archive_size
    if (last + 1) % MIB and not at_end:
        raise InvalidInputError(
            f"retrieval range {first}-{last} is not megabyte aligned: {last} + 1 is not a "
            f"multiple of {MIB}" + ("" if archive_size is None else " nor the archive's end")
        )
    if archive_size is not None and last >= archive_size:
        raise InvalidInputError(
            f"retrieval range {first}-{last} runs past the archive's end ({archive_size} bytes)"
        )
    return f"{first}-{last}"


def check_tier(tier: str) -> str:
    if tier not in TIERS:
        raise InvalidInputError(f"retrieval tier {tier!r} is not one of {', '.join(TIERS)}")
    return tier


def is_tree_hash_aligned(first: int, last: int, total: int) -> bool:
    """True when bytes ``first..last`` (inclusive) of a ``total``-byte blob are a
    node of its tree: 2^k MiB at a multiple of 2^k MiB, or the tail from such a
    start. Glacier only returns a tree hash for such ranges."""
    length = last - first + 1
    if first % MIB or length <= 0 or last >= total:
        return False
    mib_units = -(-length // MIB)
    span = 1
    while span < mib_units:
        span *= 2
    if (first // MIB) % span:
        return False
    return length == span * MIB or last + 1 == total
