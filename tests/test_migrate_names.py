"""The migration's plan (pure): names from every description format, duplicates,
the plan file, archives too large for S3, and the price of a plan."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from glacierd import description, pricing
from glacierd.migration import names
from glacierd.migration.mover import MAX_OBJECT, plan_rows

T = dt.datetime(2021, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
MIB = 1024 * 1024


def _a(archive_id: str, text: str, size: int = 10,
       created: dt.datetime = T) -> names.SourceArchive:
    return names.SourceArchive(archive_id, text, created, size, "0" * 64)


@pytest.mark.parametrize(("text", "key", "origin"), [
    ("<m><v>4</v><p>" + base64.b64encode("a/ü b.txt".encode()).decode() + "</p><lm>x</lm></m>",
     "p/a/ü b.txt", "fastglacier"),
    ("<m><v>2</v><p>" + base64.b64encode(b"not\xffutf8").decode() + "</p></m>",
     "p/not\\xffutf8", "fastglacier"),
    (json.dumps({"Path": "D:\\photos\\2020\\x.jpg", "Size": 3}), "p/D/photos/2020/x.jpg",
     "cloudberry"),
    ("mt2 " + base64.urlsafe_b64encode(json.dumps({"filename": "dir/é.txt"}).encode()
                                       ).decode().rstrip("="), "p/dir/é.txt", "mt-aws-glacier"),
    ("../../etc/passwd", "p/etc/passwd", "raw"),
    ("line\nbreak", "p/line\\nbreak", "raw"),
    ("", "p/00undefined/A1", "undefined"),
    ("/./..//", "p/00undefined/A1", "undefined"),
])
def test_names_from_every_format(text: str, key: str, origin: str) -> None:
    planned = names.key_for("p/", _a("A1", text))
    assert (planned.key, planned.origin) == (key, origin)


def test_glacierd_archives_keep_the_s3_backends_key() -> None:
    text = description.encode(description.ArchiveInfo(path="/srv/x.db", host="h", size=10,
                                                      mtime_ns=0, token="b" * 32))
    assert names.key_for("", _a("A", text)).key == f"h/srv/x.db@19700101T000000Z-{'b' * 32}"


def test_encrypted_archives_get_the_s3_backends_sealed_key() -> None:
    """Moved without the identity: the key names no path, the owner is still told."""
    from glacierd import age
    from glacierd.s3 import naming

    recipient = age.generate_identity()[1]
    info = description.ArchiveInfo(path="/srv/secret plans.pdf", host="h", size=10,
                                   mtime_ns=0, token="c" * 32)
    text = description.encode_sealed(info, lambda b: age.encrypt(b, [recipient]), 300)
    planned = names.key_for("p/", _a("A", text))
    assert (planned.key, planned.origin) == (f"p/h/{'c' * 32}.age", "glacierd")
    assert naming.owner("p/", planned.key) == ("h", "c" * 32)


def test_duplicates_get_the_creation_date_then_a_counter() -> None:
    archives = [_a("A", "same"), _a("B", "same", created=T + dt.timedelta(days=1)),
                _a("C", "same", created=T + dt.timedelta(days=1))]
    keys = [p.key for p in names.plan("", archives)]
    assert keys == ["same", "same~20210305T050607Z", "same~20210305T050607Z~2"]


def test_a_plan_file_round_trips_and_overrides_and_bad_lines_are_named() -> None:
    planned = names.plan("", [_a("A", "x"), _a("B", "y")])
    text = names.write_plan(planned)
    assert names.read_plan(text, "plan.csv") == {"A": "x", "B": "y"}
    assert [p.key for p in names.plan("", [_a("A", "x")], {"A": "mine/x"})] == ["mine/x"]
    with pytest.raises(ValueError, match=r"plan\.csv: line 2"):
        names.read_plan("archive_id,key\nA\n", "plan.csv")
    with pytest.raises(ValueError, match="given twice"):
        names.read_plan("A,k\nB,k\n", "plan.csv")


def test_chunks_fit_ten_thousand_parts_and_too_large_archives_are_reported() -> None:
    rows = plan_rows("", [_a("small", "s", 3 * MIB), _a("big", "b", 200 * 1024 * MIB),
                          _a("huge", "h", MAX_OBJECT + 1)], {}, 16 * MIB)
    by = {r.archive_id: r for r in rows}
    assert by["small"].chunk_size == 16 * MIB and not by["small"].too_large
    assert by["big"].chunk_size == 32 * MIB, "200 GiB in 16 MiB would be 12,800 parts"
    assert by["huge"].too_large


def test_the_price_of_a_plan() -> None:
    gib = 1024**3
    estimate = pricing.migration_estimate([gib, gib], [64, 1], "DEEP_ARCHIVE")
    assert estimate.requests == 64 + 3 + 1
    assert estimate.retrieval_usd["Bulk"] == pytest.approx(2 * 0.0025 + 2 / 1000 * 0.025)
    overhead = 2 * (32 * 1024 / 2**30 * 0.00099 + 8 * 1024 / 2**30 * 0.023)
    assert estimate.first_month_usd == pytest.approx(2 * 0.00099 + overhead)
    assert estimate.vault_month_usd == pytest.approx(2 * 0.0036 + 2 * 32 * 1024 / 2**30 * 0.0036)
    assert estimate.retrieval_time["Bulk"] == "5-12 h"
