"""The bundle format (issue 16's packing, its first piece): a POSIX tar (pax)
file that GNU tar and Python's tarfile read, with its index first, made the
same byte for byte from any range."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from glacierd import bundle
from tests.conftest import random_file


def _members(tmp_path: Path) -> list[bundle.Member]:
    names = ["a.txt", "empty", "x" * 150 + ".long-name", "caf\xe9 \u2615.bin",
             "bad\udcff-bytes.dat", "sub/deep/file.jpg"]
    members = []
    for i, name in enumerate(names):
        path = tmp_path / "src" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = random_file(path, 0 if name == "empty" else 700 + 1000 * i, seed=i)
        mtime_ns = 1_790_000_000_123_456_789 + i
        os.utime(path, ns=(mtime_ns, mtime_ns))
        members.append(bundle.Member(str(path), len(data), mtime_ns, 0o640,
                                     hashlib.sha256(data).hexdigest()))
    return members


def _whole(laid: bundle.Layout, step: int | None = None) -> bytes:
    reader = bundle.BundleReader.of_files(laid, lambda m: os.open(m.path, os.O_RDONLY))
    out = bytearray(laid.size)
    try:
        if step is None:
            assert reader.read_into(memoryview(out), 0) == laid.size
        else:
            offsets = list(range(0, laid.size, step))
            random.Random(step).shuffle(offsets)
            for offset in offsets:
                length = min(step, laid.size - offset)
                assert reader.read_into(memoryview(out)[offset:offset + length],
                                        offset) == length
    finally:
        reader.close()
    return bytes(out)


def test_any_ranges_make_the_same_bundle_and_the_index_tells_where(tmp_path: Path) -> None:
    members = _members(tmp_path)
    laid = bundle.layout(members)
    whole = _whole(laid)
    assert _whole(laid, 777) == whole, "a resumed part is the same bytes"
    assert len(whole) == laid.size and laid.size % 512 == 0
    with tarfile.open(fileobj=io.BytesIO(whole)) as tar:
        first = tar.next()
        assert first is not None and first.name == bundle.INDEX_NAME
        index = json.load(tar.extractfile(first))  # type: ignore[arg-type]
    assert index["format"] == bundle.FORMAT
    for member, entry in zip(members, index["members"], strict=True):
        got = whole[entry["offset"]:entry["offset"] + entry["size"]]
        assert hashlib.sha256(got).hexdigest() == member.sha256 == entry["sha256"]
        assert entry["mtime_ns"] == member.mtime_ns


def test_python_tarfile_reads_names_bytes_and_nanoseconds(tmp_path: Path) -> None:
    members = _members(tmp_path)
    (tmp_path / "b.tar").write_bytes(_whole(bundle.layout(members)))
    with tarfile.open(tmp_path / "b.tar", encoding="utf-8", errors="surrogateescape") as tar:
        entries = [e for e in tar.getmembers() if e.name != bundle.INDEX_NAME]
        assert [e.name for e in entries] == [m.path.lstrip("/") for m in members]
        for entry, member in zip(entries, members, strict=True):
            data = tar.extractfile(entry).read()  # type: ignore[union-attr]
            assert hashlib.sha256(data).hexdigest() == member.sha256
            assert entry.pax_headers["mtime"] == (f"{member.mtime_ns // 10**9}."
                                                  f"{member.mtime_ns % 10**9:09d}")
            assert entry.mode == 0o640


@pytest.mark.skipif(shutil.which("tar") is None, reason="no tar")
def test_gnu_tar_lists_and_extracts_it(tmp_path: Path) -> None:
    members = _members(tmp_path)
    (tmp_path / "b.tar").write_bytes(_whole(bundle.layout(members)))
    listed = subprocess.run(["tar", "-tvf", str(tmp_path / "b.tar")], capture_output=True,
                            check=True).stdout
    assert bundle.INDEX_NAME.encode() in listed and b"x" * 150 + b".long-name" in listed
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["tar", "-xf", str(tmp_path / "b.tar"), "-C", str(out)], check=True)
    for member in members:
        extracted = out / member.path.lstrip("/")
        assert hashlib.sha256(extracted.read_bytes()).hexdigest() == member.sha256
        assert extracted.stat().st_mtime_ns // 1000 == member.mtime_ns // 1000


def test_a_member_that_shrank_is_named(tmp_path: Path) -> None:
    members = _members(tmp_path)
    laid = bundle.layout(members)
    os.truncate(members[3].path, 10)
    with pytest.raises(bundle.MemberChanged) as caught:
        _whole(laid)
    assert caught.value.member == members[3]


def test_the_index_is_read_from_a_bundles_first_bytes(tmp_path: Path) -> None:
    members = []
    for i in range(300):
        path = tmp_path / f"f{i:03d} \udcff"
        path.write_bytes(bytes([i % 256]) * (i + 1))
        members.append(bundle.Member(str(path), i + 1, 1_700_000_000_000_000_000 + i, 0o640,
                                     hashlib.sha256(path.read_bytes()).hexdigest(), "ab" * 32))
    laid = bundle.layout(members)
    reader = bundle.BundleReader.of_files(laid, lambda m: os.open(m.path, os.O_RDONLY))
    whole = bytearray(laid.size)
    reader.read_into(memoryview(whole), 0)
    reader.close()
    needed = bundle.read_index(bytes(whole[:4096]))
    assert isinstance(needed, int) and 4096 < needed < laid.size
    entries = bundle.read_index(bytes(whole[:needed]))
    assert isinstance(entries, list)
    assert [(e.path, e.offset, e.size, e.sha256, e.tree_hash) for e in entries] == [
        (p.member.path, p.offset, p.member.size, p.member.sha256, "ab" * 32)
        for p in laid.members]
    for e in entries[:5]:
        assert bytes(whole[e.offset:e.offset + e.size]) == Path(e.path).read_bytes()
    with pytest.raises(bundle.NotABundle):
        bundle.read_index(b"\0" * 2048)
