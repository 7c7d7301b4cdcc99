"""SigV4 against AWS's published test vectors and against botocore, byte for byte."""

from __future__ import annotations

import datetime as dt
import hashlib

import botocore.auth
import botocore.credentials
import pytest
import requests
from botocore.awsrequest import AWSRequest

from glacierd.glacier import sigv4
from glacierd.glacier.auth import SigV4Auth
from glacierd.glacier.sigv4 import Credentials

SUITE_CREDS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
SUITE_TIME = dt.datetime(2015, 8, 30, 12, 36, 0, tzinfo=dt.UTC)
FROZEN = dt.datetime(2026, 11, 28, 19, 38, 40, tzinfo=dt.UTC)


# From AWS's SigV4 test suite (aws-sig-v4-test-suite): host example.amazonaws.com,
# region us-east-1, service "service", empty payload.
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.amazonaws.com/",
         "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        ("https://example.amazonaws.com/?Param2=value2&Param1=value1",
         "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
    ],
)
def test_published_aws_test_vectors(url: str, expected: str) -> None:
    added = sigv4.sign("GET", url, {}, sigv4.EMPTY_SHA256, SUITE_CREDS, "us-east-1", "service",
                       SUITE_TIME)
    assert added["X-Amz-Date"] == "20150830T123600Z"
    assert added["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        f"SignedHeaders=host;x-amz-date, Signature={expected}"
    )


def _botocore_authorization(
    method: str, url: str, headers: dict[str, str], body: bytes, creds: Credentials,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: FROZEN.replace(tzinfo=None))
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    bcreds = botocore.credentials.Credentials(creds.access_key, creds.secret_key, creds.token)
    botocore.auth.SigV4Auth(bcreds, "glacier", "us-east-1").add_auth(request)
    return {k: v for k, v in request.headers.items()}


CASES = [
    ("GET", "https://glacier.us-east-1.amazonaws.com/-/vaults", {}, b""),
    ("PUT", "https://glacier.us-east-1.amazonaws.com/-/vaults/examplevault", {}, b""),
    ("GET", "https://glacier.us-east-1.amazonaws.com/-/vaults/v/jobs?statuscode=Succeeded&completed=true&marker=abc%2Fdef",
     {}, b""),
    ("POST", "https://glacier.us-east-1.amazonaws.com/-/vaults/v/tags?operation=add",
     {"Content-Type": "application/json"}, b'{"Tags":{"a":"b"}}'),
    ("PUT", "http://127.0.0.1:8123/-/vaults/v/multipart-uploads/UPLOAD-ID_x",
     {"Content-Range": "bytes 0-1048575/*", "x-amz-sha256-tree-hash": "ab" * 32,
      "x-amz-archive-description": "  two   spaces  inside "}, b"x" * 100),
    ("GET", "https://glacier.eu-west-1.amazonaws.com:443/-/vaults/v/jobs/J/output",
     {"Range": "bytes=0-1048575"}, b""),
    ("GET", "https://glacier.us-east-1.amazonaws.com/-/vaults/a.b-c_d/../x/./y", {}, b""),
]


@pytest.mark.parametrize("token", [None, "FQoGZXIvYXdzEXAMPLE//token+with/odd=chars"])
@pytest.mark.parametrize(("method", "url", "headers", "body"), CASES)
def test_authorization_is_byte_identical_to_botocore(
    method: str, url: str, headers: dict[str, str], body: bytes, token: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    creds = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", token)
    payload = hashlib.sha256(body).hexdigest()
    headers = {**headers, "x-amz-glacier-version": "2012-06-01", "X-Amz-Content-SHA256": payload}
    theirs = _botocore_authorization(method, url, headers, body, creds, monkeypatch)
    ours = sigv4.sign(method, url, headers, payload, creds, "us-east-1", "glacier", FROZEN)
    assert ours["Authorization"] == theirs["Authorization"]
    assert ours["X-Amz-Date"] == theirs["X-Amz-Date"]
    assert ours.get("X-Amz-Security-Token") == theirs.get("X-Amz-Security-Token")


def test_auth_base_signs_prepared_requests_with_injected_clock() -> None:
    creds = Credentials("AKIAIOSFODNN7EXAMPLE", "secret", "tok")
    auth = SigV4Auth(lambda: creds, "us-east-1", clock=lambda: FROZEN)
    prepared = requests.Request(
        "GET", "https://glacier.us-east-1.amazonaws.com/-/vaults",
        headers={"x-amz-glacier-version": "2012-06-01"},
    ).prepare()
    auth(prepared)
    assert prepared.headers["X-Amz-Date"] == "20261128T193840Z"
    assert prepared.headers["X-Amz-Security-Token"] == "tok"
    parsed = sigv4.parse_authorization(prepared.headers["Authorization"])
    assert parsed.access_key == "AKIAIOSFODNN7EXAMPLE"
    assert parsed.region == "us-east-1" and parsed.service == "glacier"
    assert "user-agent" not in parsed.signed_headers
    assert set(parsed.signed_headers) >= {"host", "x-amz-date", "x-amz-glacier-version",
                                          "x-amz-content-sha256", "x-amz-security-token"}
    # The verifier's view of the same request reproduces the signature.
    signed = {h: [prepared.headers[h]] for h in parsed.signed_headers if h != "host"}
    signed["host"] = ["glacier.us-east-1.amazonaws.com"]
    canonical = sigv4.canonical_request("GET", prepared.url or "", signed, sigv4.EMPTY_SHA256)
    key = sigv4.signing_key("secret", "20261128", "us-east-1", "glacier")
    scope = sigv4.credential_scope("20261128", "us-east-1", "glacier")
    assert sigv4.signature(key, sigv4.string_to_sign("20261128T193840Z", scope, canonical)) == (
        parsed.signature
    )


def test_secrets_never_appear_in_repr() -> None:
    creds = Credentials("AKIAEXAMPLE", "super-secret-key", "session-token-value")
    text = repr(creds)
    assert "AKIAEXAMPLE" in text
    assert "super-secret-key" not in text and "session-token-value" not in text


def test_parse_authorization_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        sigv4.parse_authorization("Basic dXNlcjpwYXNz")
    with pytest.raises(ValueError):
        sigv4.parse_authorization("AWS4-HMAC-SHA256 Credential=a/b, Signature=x")


S3_CASES = [
    ("PUT", "http://127.0.0.1:9000/backups/photos/2026/caf%C3%A9%20%E2%98%83%2Bplus.jpg",
     {"x-amz-storage-class": "DEEP_ARCHIVE", "If-None-Match": "*",
      "x-amz-checksum-sha256": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
      "x-amz-meta-glacierd": "glacierd1 eyJwIjoiL3gifQ"}, b"hello"),
    ("GET", "http://127.0.0.1:9000/backups?list-type=2&prefix=a%2Fb%20c&continuation-token=1%2Fx",
     {}, b""),
    ("POST", "http://127.0.0.1:9000/backups/key?uploads", {"x-amz-checksum-algorithm": "SHA256"},
     b""),
    ("PUT", "http://127.0.0.1:9000/backups/key?partNumber=3&uploadId=2~abc.def_G-h",
     {"Content-Length": "5"}, b"12345"),
    ("GET", "http://localhost:9000/backups/a//b/../c.txt", {"Range": "bytes=0-9",
                                                            "x-amz-checksum-mode": "ENABLED"}, b""),
    ("POST", "http://127.0.0.1:9000/backups/k?restore", {"Content-Type": "application/xml"},
     b"<RestoreRequest><Days>1</Days></RestoreRequest>"),
]


@pytest.mark.parametrize(("method", "url", "headers", "body"), S3_CASES)
def test_s3_signatures_are_byte_identical_to_botocore(
    method: str, url: str, headers: dict[str, str], body: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """S3's canonical URI is the key as sent (encoded once, slashes and dots kept)."""
    creds = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    payload = hashlib.sha256(body).hexdigest()
    monkeypatch.setattr(botocore.auth, "get_current_datetime",
                        lambda: FROZEN.replace(tzinfo=None))
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    bcreds = botocore.credentials.Credentials(creds.access_key, creds.secret_key)
    botocore.auth.S3SigV4Auth(bcreds, "s3", "us-east-1").add_auth(request)
    assert request.headers["X-Amz-Content-SHA256"] == payload
    ours = sigv4.sign(method, url, {**headers, "X-Amz-Content-SHA256": payload}, payload, creds,
                      "us-east-1", "s3", FROZEN)
    assert ours["Authorization"] == request.headers["Authorization"]
    path = url.split("?")[0].split("9000", 1)[1]
    assert sigv4.canonical_uri(path, "s3") == path, "the key as sent"
    if "%" in path or "//" in path:
        assert sigv4.canonical_uri(path, "glacier") != path, "other services: encoded again"
