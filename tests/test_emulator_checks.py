"""The emulator's own checks, driven with hand-signed raw requests."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
import requests

from glacierd.emulator import Emulator
from glacierd.glacier import InvalidSignatureException
from glacierd.glacier.sigv4 import sign
from tests.conftest import client_for


def _raw(emu: Emulator, method: str, path: str, headers: dict[str, str], body: bytes = b"",
         payload: str | None = None, when: dt.datetime | None = None) -> requests.Response:
    url = emu.endpoint_url + path
    payload = payload or hashlib.sha256(body).hexdigest()
    headers = {**headers, "x-amz-content-sha256": payload}
    headers.update(sign(method, url, headers, payload, emu.credentials, "us-east-1", "glacier",
                        when or dt.datetime.now(dt.UTC)))
    return requests.request(method, url, headers=headers, data=body, timeout=10)


def test_missing_and_wrong_api_version(emulator: Emulator) -> None:
    answer = _raw(emulator, "GET", "/-/vaults", {})
    assert answer.status_code == 400
    assert answer.json()["code"] == "MissingParameterValueException"
    assert answer.headers["x-amzn-RequestId"]
    answer = _raw(emulator, "GET", "/-/vaults", {"x-amz-glacier-version": "2099-01-01"})
    assert answer.json()["code"] == "InvalidParameterValueException"


def test_body_must_match_its_content_sha256(emulator: Emulator) -> None:
    client_for(emulator).create_vault("v")
    headers = {"x-amz-glacier-version": "2012-06-01", "x-amz-sha256-tree-hash": "00" * 32}
    answer = _raw(emulator, "POST", "/-/vaults/v/archives", headers, b"abc",
                  payload=hashlib.sha256(b"xyz").hexdigest())
    assert answer.status_code == 400
    assert "x-amz-content-sha256" in answer.json()["message"]
    assert emulator.stats()["archives_created"] == 0


def test_clock_skew_over_15_minutes_is_refused(emulator: Emulator) -> None:
    late = client_for(emulator, clock=lambda: dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20))
    with pytest.raises(InvalidSignatureException, match="Signature expired"):
        late.list_vaults()
    ok = client_for(emulator, clock=lambda: dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
    assert ok.list_vaults() == []


def test_unsigned_request_is_refused(emulator: Emulator) -> None:
    answer = requests.get(emulator.endpoint_url + "/-/vaults",
                          headers={"x-amz-glacier-version": "2012-06-01"}, timeout=10)
    assert answer.status_code == 403
    assert answer.json()["code"] == "MissingAuthenticationTokenException"


def test_session_token_is_required_when_configured(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with Emulator(tmp_path / "e", session_token="tok") as emu:
        from glacierd.glacier import GlacierClient, UnrecognizedClientException

        no_token = GlacierClient("us-east-1", endpoint_url=emu.endpoint_url,
                                 credentials=(emu.credentials.access_key,
                                              emu.credentials.secret_key))
        with pytest.raises(UnrecognizedClientException):
            no_token.list_vaults()
        assert client_for(emu).list_vaults() == []
