"""Tree hash against botocore's independent implementation, and its algebra."""

from __future__ import annotations

import io
import os
import random

import pytest
from botocore.utils import calculate_tree_hash

from glacierd.glacier import treehash
from glacierd.glacier.treehash import MIB, TreeHasher

SIZES = [0, 1, MIB - 1, MIB, MIB + 1, 2 * MIB, 3 * MIB, 5 * MIB + 1, 7 * MIB - 3, 8 * MIB, 9 * MIB]


def _data(size: int, seed: int = 0) -> bytes:
    return random.Random(seed ^ size).randbytes(size)


def _oracle(data: bytes) -> str:
    return calculate_tree_hash(io.BytesIO(data))


@pytest.mark.parametrize("size", SIZES)
def test_tree_hash_matches_botocore(size: int) -> None:
    data = _data(size)
    assert treehash.tree_hash(data) == _oracle(data)


def test_random_sizes_match_botocore() -> None:
    rng = random.Random(1234)
    for _ in range(12):
        size = rng.randrange(0, 12 * MIB)
        data = _data(size, rng.randrange(1 << 30))
        assert treehash.tree_hash(data) == _oracle(data), size


def test_incremental_feeding_in_odd_chunks_gives_the_same_hash() -> None:
    data = _data(6 * MIB + 12345)
    rng = random.Random(7)
    hasher = TreeHasher()
    pos = 0
    while pos < len(data):
        step = rng.choice([1, 17, 4096, MIB - 1, MIB, MIB + 3, 3 * MIB])
        hasher.update(data[pos : pos + step])
        pos += step
    assert hasher.hexdigest() == _oracle(data)
    assert hasher.size == len(data)


def test_one_pass_yields_linear_and_tree_hash() -> None:
    import hashlib

    data = _data(3 * MIB + 5)
    d = treehash.digests(data)
    assert d.sha256 == hashlib.sha256(data).hexdigest()
    assert d.tree_hash == _oracle(data)


@pytest.mark.parametrize("size", SIZES)
def test_linear_and_tree_hash_of_any_size_fed_in_any_chunks(size: int) -> None:
    """The first leaf is taken from the linear hash's state: check the seams."""
    import hashlib

    data = _data(size, 99)
    rng = random.Random(size)
    hasher = TreeHasher(linear=True)
    pos = 0
    while pos < len(data):
        step = rng.choice([1, 63, 64, 4096, MIB - 1, MIB, MIB + 1, 2 * MIB])
        hasher.update(data[pos : pos + step])
        pos += step
        if rng.random() < 0.3:  # a digest mid-way must not disturb what follows
            assert hasher.hexdigest() == _oracle(data[:pos])
            assert hasher.linear_hexdigest() == hashlib.sha256(data[:pos]).hexdigest()
    assert hasher.hexdigest() == _oracle(data)
    assert hasher.linear_hexdigest() == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("part_mib", [1, 2, 4])
@pytest.mark.parametrize("size", [MIB, 5 * MIB + 1, 8 * MIB, 13 * MIB - 1])
def test_part_hashes_combine_into_the_archive_hash(part_mib: int, size: int) -> None:
    data = _data(size)
    part = part_mib * MIB
    part_hashes = [treehash.tree_hash(data[o : o + part]) for o in range(0, size, part)]
    assert treehash.combine_hex(part_hashes) == _oracle(data)


def test_file_and_range_hashes(tmp_path) -> None:
    data = _data(5 * MIB + 1)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert treehash.tree_hash_file(path) == _oracle(data)
    assert treehash.tree_hash_file(path, 2 * MIB, 2 * MIB) == _oracle(data[2 * MIB : 4 * MIB])
    assert treehash.tree_hash_file(path, 4 * MIB) == _oracle(data[4 * MIB :])
    with pytest.raises(ValueError, match="ended 1 bytes early"):
        treehash.tree_hash_file(path, 4 * MIB, MIB + 2)


def test_empty_input_is_the_hash_of_nothing() -> None:
    assert treehash.tree_hash(b"") == _oracle(b"")
    assert treehash.combine_hex([]) == _oracle(b"")


@pytest.mark.parametrize("size", [1, MIB, 5 * MIB + 7])
def test_kept_leaves_rebuild_any_aligned_range(size: int) -> None:
    data = os.urandom(size)
    hasher = TreeHasher(linear=True, keep_leaves=True)
    for start in range(0, size, 300_000):  # odd chunks: leaves cross them
        hasher.update(data[start:start + 300_000])
    kept = hasher.leaf_digests()
    leaves = [kept[i:i + 32] for i in range(0, len(kept), 32)]
    assert len(leaves) == -(-size // MIB)
    assert treehash.combine(leaves).hex() == hasher.hexdigest()
    for first in range(len(leaves)):
        for last in range(first + 1, len(leaves) + 1):
            assert treehash.combine(leaves[first:last]).hex() == treehash.tree_hash(
                data[first * MIB:last * MIB]), (first, last)
