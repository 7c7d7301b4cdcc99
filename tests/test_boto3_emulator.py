"""boto3 signs and hashes for itself: if it can use the emulator, the emulator
speaks Glacier. It must also be refused exactly where Glacier refuses."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.utils import calculate_tree_hash

from glacierd.emulator import Emulator
from tests.conftest import MIB, random_file_bytes


@pytest.fixture
def glacier(emulator: Emulator) -> Iterator[Any]:
    yield _boto(emulator)


def _boto(emu: Emulator, secret: str | None = None) -> Any:
    return boto3.client(
        "glacier", region_name="us-east-1", endpoint_url=emu.endpoint_url,
        aws_access_key_id=emu.credentials.access_key,
        aws_secret_access_key=secret or emu.credentials.secret_key,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def _tree(data: bytes) -> str:
    return calculate_tree_hash(io.BytesIO(data))


def _code(info: pytest.ExceptionInfo[ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


def test_boto3_runs_the_whole_api(glacier: Any, emulator: Emulator) -> None:
    assert glacier.create_vault(vaultName="bv")["location"] == "/123456789012/vaults/bv"
    assert [v["VaultName"] for v in glacier.list_vaults()["VaultList"]] == ["bv"]
    single = glacier.upload_archive(vaultName="bv", body=b"x" * 3000, archiveDescription="one")
    assert single["checksum"] == _tree(b"x" * 3000)

    data = random_file_bytes(2 * MIB + 7)
    upload_id = glacier.initiate_multipart_upload(
        vaultName="bv", partSize=str(MIB), archiveDescription="multi")["uploadId"]
    for off in range(0, len(data), MIB):
        chunk = data[off : off + MIB]
        answer = glacier.upload_multipart_part(vaultName="bv", uploadId=upload_id,
                                               range=f"bytes {off}-{off + len(chunk) - 1}/*",
                                               body=chunk)
        assert answer["checksum"] == _tree(chunk)
    parts = glacier.list_parts(vaultName="bv", uploadId=upload_id)
    assert parts["PartSizeInBytes"] == MIB and len(parts["Parts"]) == 3
    assert [u["MultipartUploadId"] for u in
            glacier.list_multipart_uploads(vaultName="bv")["UploadsList"]] == [upload_id]
    done = glacier.complete_multipart_upload(vaultName="bv", uploadId=upload_id,
                                             archiveSize=str(len(data)), checksum=_tree(data))
    archive_id = done["archiveId"]
    assert emulator.state.archive_bytes("bv", archive_id) == data

    job_id = glacier.initiate_job(vaultName="bv", jobParameters={
        "Type": "archive-retrieval", "ArchiveId": archive_id, "Tier": "Bulk"})["jobId"]
    assert glacier.describe_job(vaultName="bv", jobId=job_id)["StatusCode"] == "Succeeded"
    ranged = glacier.get_job_output(vaultName="bv", jobId=job_id, range=f"bytes=0-{MIB - 1}")
    assert ranged["status"] == 206 and ranged["checksum"] == _tree(data[:MIB])
    assert ranged["body"].read() == data[:MIB]
    whole = glacier.get_job_output(vaultName="bv", jobId=job_id)
    assert whole["body"].read() == data and whole["archiveDescription"] == "multi"

    inv = glacier.initiate_job(vaultName="bv", jobParameters={
        "Type": "inventory-retrieval", "Format": "JSON"})["jobId"]
    listing = glacier.get_job_output(vaultName="bv", jobId=inv)["body"].read()
    assert archive_id.encode() in listing and single["archiveId"].encode() in listing
    assert {j["JobId"] for j in glacier.list_jobs(vaultName="bv")["JobList"]} == {job_id, inv}

    glacier.add_tags_to_vault(vaultName="bv", Tags={"a": "b", "c": "d"})
    glacier.remove_tags_from_vault(vaultName="bv", TagKeys=["c"])
    assert glacier.list_tags_for_vault(vaultName="bv")["Tags"] == {"a": "b"}
    config = {"SNSTopic": "arn:aws:sns:us-east-1:1:t", "Events": ["InventoryRetrievalCompleted"]}
    glacier.set_vault_notifications(vaultName="bv", vaultNotificationConfig=config)
    assert glacier.get_vault_notifications(vaultName="bv")["vaultNotificationConfig"] == config
    glacier.delete_vault_notifications(vaultName="bv")

    other = glacier.initiate_multipart_upload(vaultName="bv", partSize=str(MIB))["uploadId"]
    glacier.abort_multipart_upload(vaultName="bv", uploadId=other)
    glacier.delete_archive(vaultName="bv", archiveId=single["archiveId"])
    glacier.delete_archive(vaultName="bv", archiveId=archive_id)
    assert glacier.describe_vault(vaultName="bv")["NumberOfArchives"] == 0
    glacier.delete_vault(vaultName="bv")
    assert glacier.list_vaults()["VaultList"] == []
    assert emulator.stats()["errors"] == {}


def test_bad_signature_is_refused(emulator: Emulator) -> None:
    _boto(emulator).create_vault(vaultName="v")
    with pytest.raises(ClientError) as info:
        _boto(emulator, secret="not-the-secret").list_vaults()
    assert _code(info) == "InvalidSignatureException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_unknown_access_key_is_refused(emulator: Emulator) -> None:
    client = boto3.client("glacier", region_name="us-east-1", endpoint_url=emulator.endpoint_url,
                          aws_access_key_id="AKIDUNKNOWN", aws_secret_access_key="x")
    with pytest.raises(ClientError) as info:
        client.list_vaults()
    assert _code(info) == "UnrecognizedClientException"


def test_wrong_region_in_scope_is_refused(emulator: Emulator) -> None:
    client = boto3.client("glacier", region_name="eu-west-1", endpoint_url=emulator.endpoint_url,
                          aws_access_key_id=emulator.credentials.access_key,
                          aws_secret_access_key=emulator.credentials.secret_key)
    with pytest.raises(ClientError) as info:
        client.list_vaults()
    assert _code(info) == "InvalidSignatureException"
    assert "region" in info.value.response["Error"]["Message"]


@pytest.fixture
def upload(glacier: Any) -> str:
    glacier.create_vault(vaultName="v")
    return str(glacier.initiate_multipart_upload(vaultName="v", partSize=str(MIB))["uploadId"])


def _part(glacier: Any, upload_id: str, first: int, data: bytes, **kw: Any) -> Any:
    return glacier.upload_multipart_part(vaultName="v", uploadId=upload_id,
                                         range=f"bytes {first}-{first + len(data) - 1}/*",
                                         body=data, **kw)


def test_wrong_part_tree_hash_is_refused(glacier: Any, upload: str, emulator: Emulator) -> None:
    with pytest.raises(ClientError) as info:
        _part(glacier, upload, 0, b"a" * MIB, checksum="00" * 32)
    assert _code(info) == "InvalidParameterValueException"
    assert "Checksum mismatch" in info.value.response["Error"]["Message"]
    assert glacier.list_parts(vaultName="v", uploadId=upload)["Parts"] == []


def test_misaligned_part_is_refused(glacier: Any, upload: str) -> None:
    with pytest.raises(ClientError) as info:
        _part(glacier, upload, 1000, b"a" * 1000)
    assert _code(info) == "InvalidParameterValueException"
    assert "part size" in info.value.response["Error"]["Message"]


def test_oversize_part_is_refused(glacier: Any, upload: str) -> None:
    with pytest.raises(ClientError) as info:
        _part(glacier, upload, 0, b"a" * (MIB + 1))
    assert _code(info) == "InvalidParameterValueException"


def test_unknown_upload_id_is_refused(glacier: Any, upload: str) -> None:
    with pytest.raises(ClientError) as info:
        _part(glacier, "no-such-upload", 0, b"a" * 10)
    assert _code(info) == "ResourceNotFoundException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_complete_with_wrong_hash_or_gap_is_refused(glacier: Any, upload: str,
                                                    emulator: Emulator) -> None:
    a, c = b"a" * MIB, b"c" * 10
    _part(glacier, upload, 0, a)
    _part(glacier, upload, 2 * MIB, c)
    with pytest.raises(ClientError) as info:  # the part at 1 MiB is missing
        glacier.complete_multipart_upload(vaultName="v", uploadId=upload,
                                          archiveSize=str(2 * MIB + 10), checksum="00" * 32)
    assert _code(info) == "InvalidParameterValueException"
    assert "missing parts at offsets [1048576]" in info.value.response["Error"]["Message"]
    b = b"b" * MIB
    _part(glacier, upload, MIB, b)
    with pytest.raises(ClientError) as info:
        glacier.complete_multipart_upload(vaultName="v", uploadId=upload,
                                          archiveSize=str(2 * MIB + 10), checksum="00" * 32)
    assert _code(info) == "InvalidParameterValueException"
    assert emulator.stats()["archives_created"] == 0
    done = glacier.complete_multipart_upload(vaultName="v", uploadId=upload,
                                             archiveSize=str(2 * MIB + 10),
                                             checksum=_tree(a + b + c))
    assert emulator.state.archive_bytes("v", done["archiveId"]) == a + b + c


def test_short_part_before_the_last_is_refused_at_complete(glacier: Any, upload: str) -> None:
    _part(glacier, upload, 0, b"a" * 100)  # short, so it may only be the last part
    _part(glacier, upload, MIB, b"b" * 100)
    with pytest.raises(ClientError) as info:
        glacier.complete_multipart_upload(vaultName="v", uploadId=upload,
                                          archiveSize=str(MIB + 100), checksum="00" * 32)
    assert _code(info) == "InvalidParameterValueException"


def test_empty_archive_is_refused(glacier: Any) -> None:
    glacier.create_vault(vaultName="v")
    with pytest.raises(ClientError) as info:
        glacier.upload_archive(vaultName="v", body=b"")
    assert _code(info) == "InvalidParameterValueException"
    upload_id = glacier.initiate_multipart_upload(vaultName="v", partSize=str(MIB))["uploadId"]
    with pytest.raises(ClientError) as info:
        glacier.complete_multipart_upload(vaultName="v", uploadId=upload_id, archiveSize="0",
                                          checksum=_tree(b""))
    assert _code(info) == "InvalidParameterValueException"


def test_invalid_part_size_and_unknown_vault(glacier: Any) -> None:
    glacier.create_vault(vaultName="v")
    with pytest.raises(ClientError) as info:
        glacier.initiate_multipart_upload(vaultName="v", partSize=str(3 * MIB))
    assert _code(info) == "InvalidParameterValueException"
    with pytest.raises(ClientError) as info:
        glacier.describe_vault(vaultName="nope")
    assert _code(info) == "ResourceNotFoundException"


def test_output_of_unfinished_job_is_refused(tmp_path: Any) -> None:
    with Emulator(tmp_path / "e", job_delay=3600) as emu:
        glacier = _boto(emu)
        glacier.create_vault(vaultName="v")
        job = glacier.initiate_job(vaultName="v", jobParameters={"Type": "inventory-retrieval"})
        assert glacier.describe_job(vaultName="v", jobId=job["jobId"])["StatusCode"] == (
            "InProgress")
        with pytest.raises(ClientError) as info:
            glacier.get_job_output(vaultName="v", jobId=job["jobId"])
        assert _code(info) == "InvalidParameterValueException"
