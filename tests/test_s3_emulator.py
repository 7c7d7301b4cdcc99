"""boto3's S3 client (and s3transfer) drive the emulator's S3 side: what boto3
can do there, the emulator speaks; where S3 refuses, the emulator refuses
with S3's codes."""

from __future__ import annotations

import base64
import hashlib
import io
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from glacierd.emulator import Emulator
from tests.conftest import MIB, random_file_bytes


def _s3(emu: Emulator, secret: str | None = None, key: str | None = None,
        **config: Any) -> Any:
    return boto3.client(
        "s3", region_name=emu.region, endpoint_url=emu.endpoint_url,
        aws_access_key_id=key or emu.credentials.access_key,
        aws_secret_access_key=secret or emu.credentials.secret_key,
        config=Config(retries={"max_attempts": 1, "mode": "standard"},
                      s3={"addressing_style": "path"}, **config))


@pytest.fixture
def s3(emulator: Emulator) -> Iterator[Any]:
    client = _s3(emulator)
    client.create_bucket(Bucket="bkt")
    yield client


def _code(info: pytest.ExceptionInfo[ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


def _b64sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_boto3_upload_file_through_s3transfer_and_back(s3: Any, tmp_path: Any) -> None:
    data = random_file_bytes(21 * MIB + 5, seed=8)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    # s3transfer: multipart at 8 MiB, its default concurrency, boto3's default checksum
    s3.upload_file(str(src), "bkt", "dir/ünï code+&.bin",
                   ExtraArgs={"StorageClass": "STANDARD_IA", "Metadata": {"who": "boto3"}},
                   Config=TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB))
    head = s3.head_object(Bucket="bkt", Key="dir/ünï code+&.bin", ChecksumMode="ENABLED")
    assert head["ContentLength"] == len(data) and head["Metadata"] == {"who": "boto3"}
    assert head["ETag"].endswith('-3"') and head["StorageClass"] == "STANDARD_IA"
    out = tmp_path / "out.bin"
    s3.download_file("bkt", "dir/ünï code+&.bin", str(out))
    assert out.read_bytes() == data
    part = s3.get_object(Bucket="bkt", Key="dir/ünï code+&.bin", PartNumber=2)
    assert part["Body"].read() == data[8 * MIB:16 * MIB] and part["PartsCount"] == 3
    listed = s3.list_objects_v2(Bucket="bkt", Prefix="dir/")
    assert [(o["Key"], o["Size"]) for o in listed["Contents"]] == [("dir/ünï code+&.bin",
                                                                     len(data))]


def test_sha256_multipart_is_composite_and_parts_are_checked(s3: Any) -> None:
    data = random_file_bytes(13 * MIB, seed=9)
    pieces = [data[:8 * MIB], data[8 * MIB:]]
    upload = s3.create_multipart_upload(Bucket="bkt", Key="m", StorageClass="DEEP_ARCHIVE",
                                        ChecksumAlgorithm="SHA256")["UploadId"]
    with pytest.raises(ClientError) as wrong:  # a checksum of other bytes
        s3.upload_part(Bucket="bkt", Key="m", UploadId=upload, PartNumber=1, Body=pieces[0],
                       ChecksumSHA256=_b64sha(b"other"))
    assert _code(wrong) == "BadDigest"
    etags = [s3.upload_part(Bucket="bkt", Key="m", UploadId=upload, PartNumber=n + 1, Body=p,
                            ChecksumSHA256=_b64sha(p))["ETag"] for n, p in enumerate(pieces)]
    paginator = s3.get_paginator("list_parts")
    listed = [p for page in paginator.paginate(Bucket="bkt", Key="m", UploadId=upload,
                                               PaginationConfig={"PageSize": 1})
              for p in page["Parts"]]
    assert [(p["PartNumber"], p["ChecksumSHA256"]) for p in listed] == [
        (1, _b64sha(pieces[0])), (2, _b64sha(pieces[1]))]
    parts = [{"PartNumber": n + 1, "ETag": e, "ChecksumSHA256": _b64sha(p)}
             for n, (e, p) in enumerate(zip(etags, pieces, strict=True))]
    with pytest.raises(ClientError) as order:
        s3.complete_multipart_upload(Bucket="bkt", Key="m", UploadId=upload,
                                     MultipartUpload={"Parts": parts[::-1]})
    assert _code(order) == "InvalidPartOrder"
    done = s3.complete_multipart_upload(Bucket="bkt", Key="m", UploadId=upload,
                                        MultipartUpload={"Parts": parts}, IfNoneMatch="*")
    digests = b"".join(hashlib.sha256(p).digest() for p in pieces)
    assert done["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(digests).digest()).decode() \
        + "-2"
    with pytest.raises(ClientError) as again:  # the upload is gone once it completed
        s3.list_parts(Bucket="bkt", Key="m", UploadId=upload)
    assert _code(again) == "NoSuchUpload"


def test_small_parts_conditional_writes_and_wrong_payloads_are_refused(
        s3: Any, emulator: Emulator) -> None:
    upload = s3.create_multipart_upload(Bucket="bkt", Key="small")["UploadId"]
    etags = [s3.upload_part(Bucket="bkt", Key="small", UploadId=upload, PartNumber=n,
                            Body=b"x" * MIB)["ETag"] for n in (1, 2)]
    with pytest.raises(ClientError) as small:
        s3.complete_multipart_upload(Bucket="bkt", Key="small", UploadId=upload,
                                     MultipartUpload={"Parts": [
                                         {"PartNumber": n, "ETag": e}
                                         for n, e in zip((1, 2), etags, strict=True)]})
    assert _code(small) == "EntityTooSmall"
    s3.put_object(Bucket="bkt", Key="once", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as exists:
        s3.put_object(Bucket="bkt", Key="once", Body=b"second", IfNoneMatch="*")
    assert exists.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert s3.get_object(Bucket="bkt", Key="once")["Body"].read() == b"first"
    with pytest.raises(ClientError) as md5:
        s3.put_object(Bucket="bkt", Key="md5", Body=b"abc",
                      ContentMD5=base64.b64encode(hashlib.md5(b"abd").digest()).decode())
    assert _code(md5) == "BadDigest"
    with pytest.raises(ClientError) as nobody:
        _s3(emulator, key="AKIDNOBODY").list_objects_v2(Bucket="bkt")
    assert _code(nobody) == "InvalidAccessKeyId"
    with pytest.raises(ClientError) as forged:
        _s3(emulator, secret="wrong").list_objects_v2(Bucket="bkt")
    assert _code(forged) == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket="bkt", Key="absent")
    assert _code(missing) == "NoSuchKey"


def test_restores_take_the_job_delay_and_then_lapse(tmp_path: Any) -> None:
    with Emulator(tmp_path / "emu", job_delay=0.3, test_endpoints=True) as emu:
        s3 = _s3(emu)
        s3.create_bucket(Bucket="cold")
        s3.put_object(Bucket="cold", Key="a", Body=b"frozen", StorageClass="DEEP_ARCHIVE")
        with pytest.raises(ClientError) as frozen:
            s3.get_object(Bucket="cold", Key="a")
        assert _code(frozen) == "InvalidObjectState"
        started = s3.restore_object(Bucket="cold", Key="a", RestoreRequest={
            "Days": 1, "GlacierJobParameters": {"Tier": "Bulk"}})
        assert started["ResponseMetadata"]["HTTPStatusCode"] == 202
        with pytest.raises(ClientError) as twice:
            s3.restore_object(Bucket="cold", Key="a", RestoreRequest={"Days": 1})
        assert _code(twice) == "RestoreAlreadyInProgress"
        assert 'ongoing-request="true"' in s3.head_object(Bucket="cold", Key="a")["Restore"]
        deadline = time.monotonic() + 10
        while 'ongoing-request="false"' not in s3.head_object(Bucket="cold",
                                                              Key="a").get("Restore", ""):
            assert time.monotonic() < deadline
            time.sleep(0.05)  # the restore's own delay: nothing to wait on but the clock
        assert s3.get_object(Bucket="cold", Key="a")["Body"].read() == b"frozen"
        extended = s3.restore_object(Bucket="cold", Key="a", RestoreRequest={"Days": 2})
        assert extended["ResponseMetadata"]["HTTPStatusCode"] == 200
        from glacierd.emulator import control

        control(emu.endpoint_url, "/__s3/restore/expire", {"bucket": "cold", "key": "a"},
                secret_key=emu.credentials.secret_key)
        with pytest.raises(ClientError) as lapsed:
            s3.get_object(Bucket="cold", Key="a")
        assert _code(lapsed) == "InvalidObjectState"
        s3.put_object(Bucket="cold", Key="ir", Body=b"instant", StorageClass="GLACIER_IR")
        with pytest.raises(ClientError) as no_restore:
            s3.restore_object(Bucket="cold", Key="ir", RestoreRequest={"Days": 1})
        assert _code(no_restore) == "InvalidObjectState"
        assert s3.get_object(Bucket="cold", Key="ir")["Body"].read() == b"instant"


def test_listings_paginate_with_delimiters(s3: Any) -> None:
    keys = [f"d{i % 3}/f{i:03d}" for i in range(25)] + ["top"]
    for key in keys:
        s3.put_object(Bucket="bkt", Key=key, Body=io.BytesIO(key.encode()))
    paginator = s3.get_paginator("list_objects_v2")
    seen = [o["Key"] for page in paginator.paginate(Bucket="bkt", PaginationConfig={
        "PageSize": 4}) for o in page.get("Contents", [])]
    assert seen == sorted(keys)
    top = s3.list_objects_v2(Bucket="bkt", Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["d0/", "d1/", "d2/"]
    assert [o["Key"] for o in top["Contents"]] == ["top"]
    v1 = [o["Key"] for page in s3.get_paginator("list_objects").paginate(
        Bucket="bkt", Prefix="d1/", PaginationConfig={"PageSize": 3})
        for o in page.get("Contents", [])]
    assert v1 == sorted(k for k in keys if k.startswith("d1/"))
    uploads = [s3.create_multipart_upload(Bucket="bkt", Key=f"u{i}")["UploadId"]
               for i in range(3)]
    listed = [u["UploadId"] for page in s3.get_paginator("list_multipart_uploads").paginate(
        Bucket="bkt", PaginationConfig={"PageSize": 2}) for u in page.get("Uploads", [])]
    assert sorted(listed) == sorted(uploads)
