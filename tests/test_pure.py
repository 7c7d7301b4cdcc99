"""Pure modules: limits and planning, error decoding, back-off."""

from __future__ import annotations

import random

import pytest

from glacierd.glacier import errors, limits
from glacierd.glacier.retry import RetryPolicy

MIB = limits.MIB


@pytest.mark.parametrize("size", [MIB, 2 * MIB, 64 * MIB, 4096 * MIB])
def test_valid_part_sizes(size: int) -> None:
    assert limits.check_part_size(size) == size


@pytest.mark.parametrize("size", [0, MIB - 1, MIB + 1, 3 * MIB, 8192 * MIB, 1536 * 1024])
def test_invalid_part_sizes(size: int) -> None:
    with pytest.raises(errors.InvalidInputError, match=str(size)):
        limits.check_part_size(size)


@pytest.mark.parametrize(("archive", "part"), [
    (1, MIB), (10_000 * MIB, MIB), (10_000 * MIB + 1, 2 * MIB), (200 * 1024 * MIB, 32 * MIB),
])
def test_smallest_part_size(archive: int, part: int) -> None:
    assert limits.smallest_part_size(archive) == part
    assert limits.part_count(archive, part) <= limits.MAX_PARTS


def test_part_ranges_cover_the_file_exactly() -> None:
    ranges = list(limits.part_ranges(5 * MIB + 1, 2 * MIB))
    assert [(r.offset, r.length) for r in ranges] == [(0, 2 * MIB), (2 * MIB, 2 * MIB),
                                                      (4 * MIB, MIB + 1)]
    assert ranges[-1].last == 5 * MIB


def test_retrieval_ranges() -> None:
    assert limits.check_retrieval_range((0, MIB - 1)) == f"0-{MIB - 1}"
    assert limits.check_retrieval_range(f"{MIB}-{MIB + 99}", archive_size=MIB + 100)
    with pytest.raises(errors.InvalidInputError, match="not megabyte aligned"):
        limits.check_retrieval_range((0, MIB))
    with pytest.raises(errors.InvalidInputError, match="past the archive's end"):
        limits.check_retrieval_range((0, 2 * MIB - 1), archive_size=MIB)
    with pytest.raises(errors.InvalidInputError, match="FIRST-LAST"):
        limits.parse_byte_range("12")


@pytest.mark.parametrize(("first", "last", "total", "aligned"), [
    (0, MIB - 1, 10 * MIB, True),
    (2 * MIB, 4 * MIB - 1, 10 * MIB, True),
    (MIB, 3 * MIB - 1, 10 * MIB, False),       # 2 MiB not starting at a multiple of 2 MiB
    (8 * MIB, 10 * MIB - 1, 10 * MIB, True),
    (8 * MIB, 10 * MIB - 5, 10 * MIB - 4, True),  # the tail from an aligned start
    (0, 3 * MIB - 1, 10 * MIB, False),
    (100, MIB - 1, 10 * MIB, False),
])
def test_tree_hash_alignment(first: int, last: int, total: int, aligned: bool) -> None:
    assert limits.is_tree_hash_aligned(first, last, total) is aligned


def test_descriptions() -> None:
    assert limits.check_description("a" * 1024) == "a" * 1024
    assert limits.check_description(None) is None
    with pytest.raises(errors.InvalidInputError, match="'\\\\n'"):
        limits.check_description("line\nbreak")


def test_json_error_body_becomes_its_class() -> None:
    err = errors.from_response(
        404, b'{"code":"ResourceNotFoundException","message":"Vault not found","type":"Client"}',
        "req-1")
    assert isinstance(err, errors.ResourceNotFoundException)
    assert (err.code, err.message, err.type, err.status, err.request_id) == (
        "ResourceNotFoundException", "Vault not found", "Client", 404, "req-1")
    assert str(err) == "ResourceNotFoundException: Vault not found (HTTP 404, request id req-1)"
    assert not err.retryable


@pytest.mark.parametrize(("status", "body", "cls", "retryable"), [
    (400, b'{"code":"ThrottlingException","message":"slow down"}', errors.ThrottlingException,
     True),
    (408, b"", errors.RequestTimeoutException, True),
    (500, b'{"code":"ServiceUnavailableException","message":"x","type":"Server"}',
     errors.ServiceUnavailableException, True),
    (503, b"<html>Service Unavailable</html>", errors.ServerError, True),
    (400, b'{"code":"InsufficientCapacityException","message":"no"}',
     errors.InsufficientCapacityException, False),
    (400, b'{"code":"SomethingNew","message":"?"}', errors.GlacierError, False),
    (400, b"\xff\xfe not json", errors.GlacierError, False),
])
def test_error_classification(status: int, body: bytes, cls: type[errors.GlacierError],
                              retryable: bool) -> None:
    err = errors.from_response(status, body, None)
    assert type(err) is cls and err.retryable is retryable
    assert err.message


def test_error_docstring_is_the_default_message_and_exit_code_is_carried() -> None:
    err = errors.InsufficientCapacityException()
    assert "try the Standard tier" in str(err)
    assert errors.InvalidInputError.exit_code == 64
    assert errors.CredentialsError.exit_code == 3


def test_full_jitter_backoff_is_capped() -> None:
    policy = RetryPolicy(max_attempts=5, base=0.5, cap=4.0, rng=random.Random(1))
    delays = [policy.delay(n) for n in range(12)]
    assert all(0 <= d <= min(4.0, 0.5 * 2**n) for n, d in enumerate(delays))
    assert max(delays[6:]) > 2.0, "later delays use the full capped window"
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
