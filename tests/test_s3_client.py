"""Our S3 client against moto's S3 server, an implementation nobody here wrote
(it does not verify checksums and ignores tiers: those are the emulator's job)."""

from __future__ import annotations

import hashlib

import pytest

from glacierd.s3 import errors
from glacierd.s3.client import S3Client, b64
from tests.conftest import MIB, fast_policy, random_file_bytes


@pytest.fixture(scope="module")
def s3(moto_endpoint: str) -> S3Client:
    client = S3Client("us-east-1", endpoint_url=moto_endpoint,
                      credentials=("testing", "testing"), retry_policy=fast_policy(2))
    client.create_bucket("backups")
    return client


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_put_head_get_list_delete_with_odd_keys(s3: S3Client) -> None:
    key = "photos/2026/café ☕ +plus & more.txt"
    data = b"bytes in a deep archive"
    s3.put_object("backups", key, data, sha256=_sha(data), storage_class="STANDARD",
                  metadata={"glacierd": "glacierd1 abc"})
    head = s3.head_object("backups", key)
    assert head.size == len(data) and head.metadata == {"glacierd": "glacierd1 abc"}
    with s3.get_object("backups", key, 6, 7) as answer:
        assert answer.content == b"in"
    assert [o["Key"] for o in s3.list_objects("backups", "photos/")] == [key]
    with pytest.raises(errors.PreconditionFailed):
        s3.put_object("backups", key, b"other", sha256=_sha(b"other"))
    s3.delete_object("backups", key)
    with pytest.raises(errors.NotFound):
        s3.head_object("backups", key)
    assert s3.bucket_exists("backups") and not s3.bucket_exists("no-such-bucket")


def test_multipart_round_trip_with_checksums(s3: S3Client) -> None:
    data = random_file_bytes(11 * MIB + 3, seed=12)
    key = "big/archive.bin"
    upload_id = s3.create_multipart_upload("backups", key, "STANDARD", {"glacierd": "x"})
    assert upload_id in {u["UploadId"] for u in s3.list_multipart_uploads("backups", "big/")}
    pieces = [data[:5 * MIB], data[5 * MIB:10 * MIB], data[10 * MIB:]]
    etags = [s3.upload_part("backups", key, upload_id, n, piece, sha256=_sha(piece))
             for n, piece in enumerate(pieces, 1)]
    listed = s3.list_parts("backups", key, upload_id)
    assert [int(p["PartNumber"]) for p in listed] == [1, 2, 3]
    assert [int(p["Size"]) for p in listed] == [len(p) for p in pieces]
    s3.complete_multipart_upload("backups", key, upload_id, [
        (n, etag, b64(_sha(piece))) for n, (etag, piece) in enumerate(zip(etags, pieces,
                                                                          strict=True), 1)])
    with s3.get_object("backups", key) as answer:
        assert answer.content == data
    assert upload_id not in {u["UploadId"] for u in s3.list_multipart_uploads("backups")}
    with pytest.raises(errors.NoSuchUpload):
        s3.list_parts("backups", key, upload_id)


def test_an_aborted_upload_is_gone_and_errors_carry_codes(s3: S3Client) -> None:
    upload_id = s3.create_multipart_upload("backups", "gone.bin", "STANDARD")
    s3.abort_multipart_upload("backups", "gone.bin", upload_id)
    with pytest.raises(errors.NoSuchUpload) as gone:  # (moto answers UploadPart with a 500)
        s3.list_parts("backups", "gone.bin", upload_id)
    assert gone.value.code == "NoSuchUpload" and gone.value.status == 404
    with pytest.raises(errors.NoSuchKey):
        s3.get_object("backups", "never-written").close()


def test_restoring_an_archived_object(s3: S3Client) -> None:
    data = b"cold"
    s3.put_object("backups", "cold.txt", data, sha256=_sha(data), storage_class="GLACIER")
    assert s3.head_object("backups", "cold.txt").storage_class == "GLACIER"
    with pytest.raises(errors.InvalidObjectState):
        s3.get_object("backups", "cold.txt").close()
    assert s3.restore_object("backups", "cold.txt", 1, "Bulk") in ("started", "restored")
    head = s3.head_object("backups", "cold.txt")
    assert head.restore is not None


def test_a_200_answer_with_an_error_inside_is_an_error() -> None:
    """CompleteMultipartUpload can answer 200 and put an <Error> in the body."""
    import requests

    from glacierd.s3.client import _xml

    answer = requests.Response()
    answer.status_code = 200
    answer._content = (b'<?xml version="1.0"?><Error><Code>InternalError</Code><Message>We '
                       b"encountered an internal error</Message><RequestId>R1</RequestId></Error>")
    with pytest.raises(errors.S3ServerError) as raised:
        _xml(answer, "CompleteMultipartUpload")
    assert raised.value.retryable and raised.value.code == "InternalError"
    assert raised.value.request_id == "R1"
    head_404 = errors.from_response(404, b"", "R2")
    assert isinstance(head_404, errors.NotFound) and head_404.request_id == "R2"
