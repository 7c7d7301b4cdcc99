"""Resume planning (pure)."""

from __future__ import annotations

from glacierd import resume
from glacierd.backends import RemotePart
from glacierd.glacier import limits

MIB = limits.MIB


def _remote(*parts: tuple[int, int, str]) -> dict[int, RemotePart]:
    """What a backend lists: (first byte, last byte, checksum)."""
    return resume.remote_parts(
        [RemotePart(a // MIB, a, b - a + 1, h) for a, b, h in parts], MIB)


def test_plan_skips_adopts_sends_and_flags_conflicts() -> None:
    ranges = list(limits.part_ranges(4 * MIB + 10, MIB))
    acked = {0: (MIB, "h0"), 1: (MIB, "h1"), 3: (MIB, "h3")}
    remote = _remote((0, MIB - 1, "h0"), (MIB, 2 * MIB - 1, "other"),
                     (2 * MIB, 3 * MIB - 1, "h2"), (3 * MIB, 4 * MIB - 1, "h3"))
    plan = resume.plan(ranges, acked, remote)
    assert plan.skip == (0, 3)
    assert plan.conflicts == (1,)
    assert [p.index for p in plan.adopt] == [2]
    assert plan.send == (4,)


def test_store_acked_but_glacier_lacks_it_is_sent_again() -> None:
    ranges = list(limits.part_ranges(2 * MIB, MIB))
    plan = resume.plan(ranges, {0: (MIB, "h0")}, {})
    assert plan.send == (0, 1) and plan.skip == ()


def test_a_remote_part_of_the_wrong_length_is_not_adopted() -> None:
    ranges = list(limits.part_ranges(MIB + 5, MIB))
    plan = resume.plan(ranges, {}, _remote((MIB, MIB + 1, "short")))
    assert plan.adopt == () and plan.send == (0, 1)
