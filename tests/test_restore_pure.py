"""Safe restore paths and inventory reconciliation (pure)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from glacierd import description, inventory
from glacierd.safepath import safe_relative_path


@pytest.mark.parametrize(("given", "safe", "changed"), [
    ("/home/ann/photo.jpg", "home/ann/photo.jpg", False),
    ("../../outside", "outside", True),
    ("/etc/x", "etc/x", False),
    ("a/./b/../c", "a/b/c", True),
    ("C:\\Users\\ann\\file.txt", "C:\\Users\\ann\\file.txt", False),
    ("dir/CON", "dir/CON", False),
    ("bad\x00name/\x01x", "badname/\x01x", True),
    ("new\nline/tab\t/\x1b[2J/caf\udce9", "new\nline/tab\t/\x1b[2J/caf\udce9", False),
    ("/", "unnamed", True),
    ("..", "unnamed", True),
    ("été/日本.txt", "été/日本.txt", False),
])
def test_safe_relative_paths(given: str, safe: str, changed: bool) -> None:
    path, was_changed = safe_relative_path(given)
    assert str(path) == safe and was_changed is changed
    assert not path.is_absolute() and ".." not in path.parts


def test_a_name_too_long_for_the_file_system_is_shortened_recognisably() -> None:
    long = "é" * 200  # 400 bytes
    path, changed = safe_relative_path(f"/a/{long}/b.txt")
    assert changed and path.parts[0] == "a" and path.parts[2] == "b.txt"
    name = path.parts[1]
    assert len(name.encode()) <= 255 and name.startswith("é" * 100) and "~" in name
    assert safe_relative_path(f"/a/{long}x/b.txt")[0].parts[1] != name, "the hash tells them apart"


T = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


def _entry(aid: str, desc: str, size: int = 10, tree: str = "aa") -> dict[str, object]:
    return {"ArchiveId": aid, "ArchiveDescription": desc, "CreationDate": "2026-11-01T00:00:00Z",
            "Size": size, "SHA256TreeHash": tree}


def test_reconcile_adopts_lists_flags_and_confirms() -> None:
    ours = description.encode(description.ArchiveInfo("/a", "h", 10, 1, "tok-a"))
    pending = description.encode(description.ArchiveInfo("/b", "h", 20, 2, "tok-b"))
    inv = inventory.parse(json.dumps({
        "VaultARN": "arn", "InventoryDate": "2026-11-20T00:00:00Z",
        "ArchiveList": [_entry("known", ours), _entry("new-ours", ours),
                        _entry("theirs", "holiday photos"),
                        _entry("lost-answer", pending, 20, "bb")]}))
    catalog = [inventory.CatalogEntry("known", T - dt.timedelta(days=5), "/a"),
               inventory.CatalogEntry("gone-old", T - dt.timedelta(days=3), "/x"),
               inventory.CatalogEntry("too-recent", T - dt.timedelta(hours=5), "/y")]
    unconfirmed = [inventory.PendingConfirmation(7, "tok-b", "bb", 20)]
    result = inventory.reconcile(inv, catalog, unconfirmed)
    assert [a.archive_id for a, _info in result.adopt] == ["new-ours"]
    assert [a.archive_id for a in result.foreign] == ["theirs"]
    assert [c.archive_id for c in result.missing] == ["gone-old"], "inventories lag a day"
    assert [(p.upload_row, a.archive_id) for p, a in result.confirmed] == [(7, "lost-answer")]
    assert inv.total_size == 50


def test_unconfirmed_upload_needs_hash_and_size_to_match() -> None:
    pending = description.encode(description.ArchiveInfo("/b", "h", 20, 2, "tok-b"))
    inv = inventory.parse(json.dumps({"VaultARN": "arn", "InventoryDate": "2026-11-20T00:00:00Z",
                                      "ArchiveList": [_entry("x", pending, 20, "other")]}))
    result = inventory.reconcile(inv, [], [inventory.PendingConfirmation(7, "tok-b", "bb", 20)])
    assert result.confirmed == [] and [a.archive_id for a, _info in result.adopt] == ["x"]
