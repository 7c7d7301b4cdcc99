"""Our client runs every operation against the emulator; outcomes are checked
in the vault (bytes, tree hashes, listings), not just the absence of errors."""

from __future__ import annotations

import csv
import io
import itertools
import json
import threading
from pathlib import Path

import pytest

from glacierd.emulator import Emulator
from glacierd.glacier import (
    GlacierClient,
    GlacierError,
    InvalidInputError,
    InvalidParameterValueException,
    ResourceNotFoundException,
    treehash,
)
from tests.conftest import MIB, client_for, random_file, random_file_bytes


def _archive_bytes(emu: Emulator, vault: str, archive_id: str) -> bytes:
    return emu.state.archive_bytes(vault, archive_id)


def test_vault_lifecycle_notifications_and_tags(client: GlacierClient) -> None:
    assert client.create_vault("photos") == "/123456789012/vaults/photos"
    client.create_vault("photos")  # idempotent
    desc = client.describe_vault("photos")
    assert desc["VaultName"] == "photos"
    assert desc["VaultARN"].endswith(":vaults/photos")
    assert desc["NumberOfArchives"] == 0 and desc["SizeInBytes"] == 0

    client.set_vault_notifications("photos", "arn:aws:sns:us-east-1:1:t",
                                   ["ArchiveRetrievalCompleted"])
    assert client.get_vault_notifications("photos") == {
        "SNSTopic": "arn:aws:sns:us-east-1:1:t", "Events": ["ArchiveRetrievalCompleted"]}
    client.delete_vault_notifications("photos")
    with pytest.raises(ResourceNotFoundException):
        client.get_vault_notifications("photos")

    client.add_tags_to_vault("photos", {"owner": "ann", "tier": "cold"})
    client.remove_tags_from_vault("photos", ["tier"])
    assert client.list_tags_for_vault("photos") == {"owner": "ann"}

    client.delete_vault("photos")
    assert client.list_vaults() == []
    with pytest.raises(ResourceNotFoundException) as info:
        client.describe_vault("photos")
    assert info.value.status == 404 and info.value.request_id


def test_list_vaults_follows_every_page(client: GlacierClient, emulator: Emulator) -> None:
    names = [f"v{i:02d}" for i in range(23)]  # the emulator pages ListVaults by 10
    for name in names:
        client.create_vault(name)
    assert [v["VaultName"] for v in client.list_vaults()] == names
    assert emulator.stats()["requests"]["ListVaults"] == 3


def test_upload_archive_bytes_and_file(client: GlacierClient, emulator: Emulator,
                                       tmp_path: Path) -> None:
    client.create_vault("v")
    aid = client.upload_archive("v", b"hello glacier", description="greeting")
    assert _archive_bytes(emulator, "v", aid) == b"hello glacier"
    data = random_file(tmp_path / "report 2026.pdf", 3 * MIB + 17)
    seen: list[tuple[int, int]] = []
    aid2 = client.upload_archive("v", tmp_path / "report 2026.pdf",
                                 progress=lambda d, t: seen.append((d, t)))
    assert _archive_bytes(emulator, "v", aid2) == data
    meta = emulator.state.archive("v", aid2)
    assert meta["ArchiveDescription"] == "report 2026.pdf"
    assert meta["SHA256TreeHash"] == treehash.tree_hash(data)
    assert seen[-1] == (len(data), len(data))
    assert len(seen) > 3, "progress must be reported as bytes go out, not once per request"

    client.delete_archive("v", aid)
    with pytest.raises(ResourceNotFoundException):
        client.delete_archive("v", aid)


def test_multipart_operations_one_by_one(client: GlacierClient, emulator: Emulator) -> None:
    client.create_vault("v")
    data = random_file_bytes(2 * MIB + 5)
    upload_id = client.initiate_multipart_upload("v", MIB, "by hand")
    listed = client.list_multipart_uploads("v")
    assert [u["MultipartUploadId"] for u in listed] == [upload_id]
    assert listed[0]["PartSizeInBytes"] == MIB and listed[0]["ArchiveDescription"] == "by hand"
    hashes = []
    for offset in range(0, len(data), MIB):
        hashes.append(client.upload_part("v", upload_id, offset, data[offset:offset + MIB]))
    parts = client.list_parts("v", upload_id)
    assert [p["RangeInBytes"] for p in parts["Parts"]] == [
        "0-1048575", "1048576-2097151", "2097152-2097156"]
    assert [p["SHA256TreeHash"] for p in parts["Parts"]] == hashes
    archive_hash = treehash.combine_hex(hashes)
    assert archive_hash == treehash.tree_hash(data)
    aid = client.complete_multipart_upload("v", upload_id, len(data), archive_hash)
    assert client.complete_multipart_upload("v", upload_id, len(data), archive_hash) == aid
    assert _archive_bytes(emulator, "v", aid) == data
    assert client.list_multipart_uploads("v") == []
    assert emulator.stats()["archives_created"] == 1

    other = client.initiate_multipart_upload("v", 2 * MIB)
    client.abort_multipart_upload("v", other)
    with pytest.raises(ResourceNotFoundException):
        client.list_parts("v", other)


def test_list_parts_follows_pages(client: GlacierClient) -> None:
    client.create_vault("v")
    upload_id = client.initiate_multipart_upload("v", MIB)
    block = b"\xab" * MIB
    tree = treehash.tree_hash(block)
    for i in range(60):  # the emulator pages ListParts by 50
        client.upload_part("v", upload_id, i * MIB, block, tree_hash=tree)
    parts = client.list_parts("v", upload_id)["Parts"]
    assert len(parts) == 60 and parts[-1]["RangeInBytes"] == f"{59 * MIB}-{60 * MIB - 1}"


@pytest.mark.parametrize("size", [1, MIB - 1, MIB, MIB + 1, 5 * MIB + 1])
def test_multiupload_archive_sizes(client: GlacierClient, emulator: Emulator, tmp_path: Path,
                                   size: int) -> None:
    client.create_vault("v")
    data = random_file(tmp_path / "f.bin", size, seed=size)
    seen: list[int] = []
    aid = client.multiupload_archive("v", tmp_path / "f.bin", part_size=MIB,
                                     progress=lambda d, t: seen.append(d))
    assert _archive_bytes(emulator, "v", aid) == data
    assert emulator.state.archive("v", aid)["SHA256TreeHash"] == treehash.tree_hash(data)
    assert seen[-1] == size


def test_multiupload_picks_the_smallest_valid_part_size(client: GlacierClient,
                                                        emulator: Emulator,
                                                        tmp_path: Path) -> None:
    client.create_vault("v")
    random_file(tmp_path / "f.bin", 3 * MIB)
    client.multiupload_archive("v", tmp_path / "f.bin")
    # 1 MiB parts are valid for 3 MiB, so three parts were sent.
    assert emulator.stats()["requests"]["UploadMultipartPart"] == 3


def test_progress_is_monotonic_and_thread_safe_without_faults(
        client: GlacierClient, tmp_path: Path) -> None:
    client.create_vault("v")
    random_file(tmp_path / "f.bin", 8 * MIB + 3)
    seen: list[tuple[int, int, str]] = []
    lock = threading.Lock()

    def progress(done: int, total: int) -> None:
        with lock:
            seen.append((done, total, threading.current_thread().name))

    client.multiupload_archive("v", tmp_path / "f.bin", part_size=MIB, concurrency=4,
                               progress=progress)
    dones = [d for d, _, _ in seen]
    assert dones == sorted(dones) and dones[-1] == 8 * MIB + 3
    assert {t for _, t, _ in seen} == {8 * MIB + 3}
    assert len({name for _, _, name in seen}) > 1, "bytes are reported from the sending threads"
    steps = [b - a for a, b in zip([0, *dones], dones, strict=False)]
    assert max(steps) <= 256 * 1024, "progress is reported at least every 256 KiB"


def test_progress_goes_back_when_a_retry_rewinds(emulator: Emulator, tmp_path: Path) -> None:
    client = client_for(emulator)
    client.create_vault("v")
    data = random_file(tmp_path / "f.bin", 2 * MIB)
    upload_id = client.initiate_multipart_upload("v", 2 * MIB)
    seen: list[int] = []
    # Attempts are dropped after the body was read and stored: the client
    # cannot know, re-sends the same bytes, and rewinds what it had reported.
    emulator.faults.configure(0.5, ["drop-after"], seed=4)
    client.upload_part("v", upload_id, 0, data, progress=lambda d, t: seen.append(d))
    emulator.faults.configure(0.0)
    drops = emulator.stats()["faults"].get("drop-after", 0)
    assert drops >= 1, "the seed was chosen so that at least one attempt is dropped"
    assert seen[-1] == len(data)
    assert any(b < a for a, b in itertools.pairwise(seen)), "progress went backwards"
    assert emulator.stats()["part_bytes_received"] == (drops + 1) * len(data)


def test_jobs_inventory_and_archive_retrieval(tmp_path: Path) -> None:
    clock = [1_800_000_000.0]
    with Emulator(tmp_path / "emu", job_delay=60, clock=lambda: clock[0]) as emu:
        client = client_for(emu, clock=lambda: _dt(clock[0]))
        client.create_vault("v")
        data = random_file(tmp_path / "a.bin", 5 * MIB + 1)
        aid = client.multiupload_archive("v", tmp_path / "a.bin", description="five")
        job = client.initiate_archive_retrieval("v", aid, tier="Bulk", description="get it")
        inv = client.initiate_inventory_job("v", format="CSV")
        described = client.describe_job("v", job)
        assert described["StatusCode"] == "InProgress" and described["Completed"] is False
        assert described["Tier"] == "Bulk" and described["ArchiveId"] == aid
        assert [j["JobId"] for j in client.list_jobs("v", completed=False)] == [job, inv]
        assert client.list_jobs("v", completed=True) == []
        with pytest.raises(InvalidParameterValueException):
            client.get_job_output("v", job)
        clock[0] += 61  # the frozen clock passes the job delay; no sleeping
        assert client.describe_job("v", job)["StatusCode"] == "Succeeded"
        assert {j["JobId"] for j in client.list_jobs("v", status="Succeeded")} == {job, inv}

        with client.get_job_output("v", job, byte_range=(0, 4 * MIB - 1)) as out:
            assert out.status == 206
            assert out.content_range == f"bytes 0-{4 * MIB - 1}/{len(data)}"
            assert out.read() == data[: 4 * MIB]
            assert out.tree_hash == treehash.tree_hash(data[: 4 * MIB])
            assert out.archive_description == "five"
        with client.get_job_output("v", job, byte_range=(MIB, 3 * MIB - 1)) as out:
            assert out.tree_hash is None, "1..3 MiB is not a node of the tree"

        dest = tmp_path / "restored.bin"
        seen: list[int] = []
        assert client.download_job_output("v", job, dest, progress=lambda d, t: seen.append(d),
                                          segment_size=2 * MIB) == treehash.tree_hash(data)
        assert dest.read_bytes() == data and seen[-1] == len(data)

        with client.get_job_output("v", inv) as out:
            rows = list(csv.DictReader(io.StringIO(out.read().decode())))
        assert [(r["ArchiveId"], int(r["Size"]), r["SHA256TreeHash"]) for r in rows] == [
            (aid, len(data), treehash.tree_hash(data))]
        inv_json = client.initiate_inventory_job("v")
        clock[0] += 61
        client.download_job_output("v", inv_json, tmp_path / "inv.json")
        listing = json.loads((tmp_path / "inv.json").read_text())["ArchiveList"]
        assert listing[0]["ArchiveDescription"] == "five"


def _dt(ts: float):  # type: ignore[no-untyped-def]
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC)


def test_ranged_retrieval_job(client: GlacierClient, tmp_path: Path) -> None:
    client.create_vault("v")
    data = random_file(tmp_path / "a.bin", 6 * MIB + 9)
    aid = client.multiupload_archive("v", tmp_path / "a.bin")
    job = client.initiate_archive_retrieval("v", aid, byte_range=(2 * MIB, 4 * MIB - 1))
    desc = client.describe_job("v", job)
    assert desc["RetrievalByteRange"] == f"{2 * MIB}-{4 * MIB - 1}"
    assert desc["SHA256TreeHash"] == treehash.tree_hash(data[2 * MIB : 4 * MIB])
    client.download_job_output("v", job, tmp_path / "part.bin", segment_size=MIB)
    assert (tmp_path / "part.bin").read_bytes() == data[2 * MIB : 4 * MIB]
    tail = client.initiate_archive_retrieval("v", aid, byte_range=f"{4 * MIB}-{len(data) - 1}")
    client.download_job_output("v", tail, tmp_path / "tail.bin")
    assert (tmp_path / "tail.bin").read_bytes() == data[4 * MIB :]


def test_bad_input_fails_before_any_request(client: GlacierClient, emulator: Emulator,
                                            tmp_path: Path) -> None:
    client.create_vault("v")
    before = sum(emulator.stats()["requests"].values())
    random_file(tmp_path / "f.bin", 3 * MIB)
    cases = [
        (lambda: client.initiate_multipart_upload("v", 3 * MIB), "part size 3145728"),
        (lambda: client.initiate_multipart_upload("v", 8 * 1024 * MIB), "4 GiB"),
        (lambda: client.multiupload_archive("v", tmp_path / "f.bin", part_size=MIB + 1),
         "1048577"),
        (lambda: client.initiate_multipart_upload("v", MIB, "x" * 1025), "1025 characters"),
        (lambda: client.initiate_multipart_upload("v", MIB, "caf\u00e9"), "printable ASCII"),
        (lambda: client.initiate_archive_retrieval("v", "id", byte_range=(100, MIB - 1)),
         "not megabyte aligned"),
        (lambda: client.initiate_archive_retrieval("v", "id", tier="Fast"), "Fast"),
        (lambda: client.upload_archive("v", b""), "empty"),
        (lambda: client.multiupload_archive("v", tmp_path / "missing.bin"), "missing.bin"),
        (lambda: client.multiupload_archive("v", tmp_path), "not a regular file"),
        (lambda: client.describe_vault("bad/name"), "vault name"),
    ]
    for call, fragment in cases:
        with pytest.raises(InvalidInputError, match=fragment.replace("(", r"\(")):
            call()
    assert sum(emulator.stats()["requests"].values()) == before


def test_too_many_parts_is_refused_with_the_size_to_use(client: GlacierClient) -> None:
    from glacierd.glacier import limits

    with pytest.raises(InvalidInputError, match=r"10001 parts.*at least 2097152"):
        limits.plan_part_size(10_001 * MIB, MIB, name="big.iso")
    assert limits.plan_part_size(200 * 1024 * MIB) == 32 * MIB


def test_service_errors_carry_code_status_and_request_id(client: GlacierClient) -> None:
    client.create_vault("v")
    upload_id = client.initiate_multipart_upload("v", MIB)
    client.upload_part("v", upload_id, 0, b"a" * MIB)
    with pytest.raises(InvalidParameterValueException) as info:
        client.complete_multipart_upload("v", upload_id, MIB, "00" * 32)
    err = info.value
    assert err.code == "InvalidParameterValueException" and err.status == 400
    assert err.request_id and "Checksum mismatch" in err.message
    assert err.type == "Client"
    assert isinstance(err, GlacierError)


def test_wrong_secret_is_refused(emulator: Emulator) -> None:
    from glacierd.glacier import InvalidSignatureException

    bad = GlacierClient("us-east-1", endpoint_url=emulator.endpoint_url,
                        credentials=(emulator.credentials.access_key, "wrong"))
    with pytest.raises(InvalidSignatureException) as info:
        bad.list_vaults()
    assert info.value.status == 403
    assert "wrong" not in str(info.value)


def test_the_verified_range_fetch_refetches_bad_bytes_and_rewinds_progress(
        tmp_path: Path) -> None:
    from glacierd.glacier import ChecksumMismatchError

    data = random_file(tmp_path / "f.bin", 3 * MIB, seed=8)
    with Emulator(tmp_path / "emu", corrupt_rate=0.5, seed=3) as emu:
        client = client_for(emu)
        client.create_vault("v")
        archive_id = client.upload_archive("v", data)
        job = client.initiate_archive_retrieval("v", archive_id)
        out = bytearray(len(data))
        counted: list[int] = []
        mismatches: list[str] = []

        def write(offset: int, chunk: bytes) -> None:
            out[offset:offset + len(chunk)] = chunk

        got = client.fetch_verified("v", job, 0, len(data) - 1, write, counter=counted.append,
                                    attempts=20, on_mismatch=mismatches.append)
        assert bytes(out) == data and got == treehash.tree_hash(data)
        assert mismatches, "the seed corrupts at least one answer"
        assert sum(counted) == len(data), "progress rewound by each failed attempt"
        emu.faults.configure(0.0, (), 1.0)  # every answer corrupt: give up, say why
        with pytest.raises(ChecksumMismatchError):
            client.fetch_verified("v", job, 0, MIB - 1, write, attempts=2)
