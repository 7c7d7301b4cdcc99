"""Archive descriptions: self-describing, always valid for Glacier."""

from __future__ import annotations

from glacierd import description
from glacierd.description import ArchiveInfo
from glacierd.glacier import limits


def test_round_trip_with_non_ascii_path() -> None:
    info = ArchiveInfo(path="/home/anne/Fotos/Café 2026/été.jpg", host="nas", size=12345,
                       mtime_ns=1_790_000_000_123_456_789, token="ab" * 16, tree_hash="cd" * 32)
    text = description.encode(info)
    assert text.startswith("glacierd1 ")
    assert limits.check_description(text) == text
    assert description.decode(text) == info


def test_long_path_is_shortened_but_still_valid() -> None:
    path = "/data/" + "/".join(["very-long-directory-name"] * 60) + "/file.bin"
    info = ArchiveInfo(path=path, host="h", size=1, mtime_ns=1, token="t" * 32)
    text = description.encode(info)
    assert len(text) <= 1024 and limits.check_description(text) == text
    back = description.decode(text)
    assert back is not None and back.shortened
    assert path.startswith(back.path.split("...#")[0])
    assert back.size == 1 and back.token == "t" * 32


def test_foreign_descriptions_are_not_ours() -> None:
    assert description.decode("holiday photos") is None
    assert description.decode("glacierd1 !!!not-base64") is None


def test_mode_is_recorded_without_set_id_bits_and_bad_values_are_ignored() -> None:
    info = ArchiveInfo(path="/x", host="h", size=1, mtime_ns=1, token="t", mode=0o4755)
    back = description.decode(description.encode(info))
    assert back is not None and back.mode == 0o755
    older = description.decode(description.encode(ArchiveInfo("/x", "h", 1, 1, "t")))
    assert older is not None and older.mode is None
    for bad in ("755", -1, 0o1000, True, 7.5):
        doc = {"p": "/x", "h": "h", "s": 1, "m": 1, "t": None, "u": "t", "o": bad}
        decoded = description.decode(description._encode_doc(doc))
        assert decoded is not None and decoded.mode is None, bad
