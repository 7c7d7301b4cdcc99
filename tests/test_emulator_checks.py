"""The emulator's own checks, driven with hand-signed raw requests."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
from pathlib import Path

import pytest
import requests

from glacierd.emulator import Emulator
from glacierd.glacier import InvalidSignatureException
from glacierd.glacier.sigv4 import sign
from glacierd.glacier.treehash import MIB
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


def test_ranged_job_output_hashes_come_from_the_kept_leaves(emulator: Emulator,
                                                            tmp_path: Path) -> None:
    """Glacier sends a range's tree hash from hashes it keeps, not by reading the
    bytes again: the emulator keeps each part's leaf digests. They match botocore's
    tree hash of the bytes for every aligned range, across parts; bytes changed on
    disk behind its back do not change them; an archive kept without them (an
    older emulator's) is hashed from its bytes."""
    from botocore.utils import calculate_tree_hash

    client = client_for(emulator)
    client.create_vault("v")
    data = os.urandom(7 * MIB + 5)
    source = tmp_path / "data"
    source.write_bytes(data)
    archive_id = client.multiupload_archive("v", source, part_size=2 * MIB)
    job = client.initiate_archive_retrieval("v", archive_id)

    def ranged(first: int, last: int) -> str | None:
        with client.get_job_output("v", job, (first, last)) as out:
            out.response.content  # noqa: B018 - read to the end
            return out.tree_hash

    ranges = [(0, MIB - 1), (MIB, 2 * MIB - 1), (2 * MIB, 4 * MIB - 1), (0, 4 * MIB - 1),
              (4 * MIB, len(data) - 1), (6 * MIB, len(data) - 1)]
    for first, last in ranges:
        assert ranged(first, last) == calculate_tree_hash(io.BytesIO(data[first:last + 1]))
    parts = next((emulator.state.vaults_dir / "v" / "archives").glob("*.parts"))
    with open(parts / "2097152.part", "r+b") as fh:  # bytes 2-4 MiB, changed behind its back
        fh.write(b"\0" * 16)
    assert ranged(2 * MIB, 4 * MIB - 1) == calculate_tree_hash(io.BytesIO(data[2 * MIB:4 * MIB]))
    for kept in parts.glob("*.leaves"):
        kept.unlink()
    changed = bytearray(data)
    changed[2 * MIB:2 * MIB + 16] = b"\0" * 16
    assert ranged(2 * MIB, 4 * MIB - 1) == calculate_tree_hash(
        io.BytesIO(bytes(changed[2 * MIB:4 * MIB])))


def test_answers_are_not_held_back_by_nagles_algorithm(emulator: Emulator,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """An answer with a body leaves in two writes (headers, then body). With
    Nagle's algorithm on, the second waits for the client's delayed ACK: every
    DescribeJob, DescribeVault or ListParts took 40 ms more than its work. The
    connections that served these requests must have TCP_NODELAY set."""
    import socket

    from glacierd.emulator.server import GlacierRequestHandler

    nodelay: list[int] = []
    setup = GlacierRequestHandler.setup

    def recording_setup(self: GlacierRequestHandler) -> None:
        setup(self)
        nodelay.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    monkeypatch.setattr(GlacierRequestHandler, "setup", recording_setup)
    client = client_for(emulator)
    client.create_vault("v")
    assert client.describe_vault("v")["VaultName"] == "v"
    assert nodelay and all(nodelay), nodelay
