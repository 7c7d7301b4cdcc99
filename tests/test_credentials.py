"""Where credentials come from, in the SDKs' order, and a clear error when
they come from nowhere. Instance-role credentials are fetched from a small
local IMDSv2 fake, never from the real metadata address."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from glacierd.emulator import Emulator
from glacierd.glacier import CredentialsError, GlacierClient, resolve_credentials
from glacierd.glacier.credentials import InstanceRoleSource

T0 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def test_explicit_beats_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ENVKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "envsecret")
    assert resolve_credentials(("EXPLICIT", "s"))().access_key == "EXPLICIT"
    creds = resolve_credentials()()
    assert (creds.access_key, creds.secret_key, creds.token) == ("ENVKEY", "envsecret", None)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "envtoken")
    assert resolve_credentials()().token == "envtoken"


def test_shared_files_and_profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "credentials"
    shared.write_text("[default]\naws_access_key_id = DEFKEY\naws_secret_access_key = defsecret\n"
                      "[work]\naws_access_key_id = WORKKEY\naws_secret_access_key = worksecret\n"
                      "aws_session_token = worktoken\n")
    config = tmp_path / "config"
    config.write_text("[profile cfgonly]\naws_access_key_id = CFGKEY\n"
                      "aws_secret_access_key = cfgsecret\nregion = eu-west-1\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(shared))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    assert resolve_credentials()().access_key == "DEFKEY"
    work = resolve_credentials(profile="work")()
    assert (work.access_key, work.token) == ("WORKKEY", "worktoken")
    monkeypatch.setenv("AWS_PROFILE", "cfgonly")
    assert resolve_credentials()().access_key == "CFGKEY"
    # A named profile wins over keys in the environment, as with the AWS CLI.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ENVKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "envsecret")
    assert resolve_credentials()().access_key == "CFGKEY"


def test_default_files_in_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text(
        "[default]\naws_access_key_id = HOMEKEY\naws_secret_access_key = s\n")
    assert resolve_credentials()().access_key == "HOMEKEY"


def test_missing_credentials_say_where_they_looked(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CredentialsError) as info:
        resolve_credentials()
    text = str(info.value)
    for place in ("explicit arguments", "AWS_ACCESS_KEY_ID", "shared credentials file",
                  "config file", "EC2 instance metadata (disabled"):
        assert place in text, place
    with pytest.raises(CredentialsError, match="profile 'nope' has no credentials"):
        resolve_credentials(profile="nope")


class _FakeImds(http.server.BaseHTTPRequestHandler):
    """IMDSv2: a token first, then the role, then its credentials."""

    protocol_version = "HTTP/1.1"
    issued: ClassVar[list[str]] = []
    key = "ASIAFAKE"
    secret = "fake-secret"
    token = "fake-session-token"
    expiry = T0 + dt.timedelta(hours=1)
    broken = False

    def _reply(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self) -> None:
        if self.path != "/latest/api/token" or not self.headers.get(
                "X-aws-ec2-metadata-token-ttl-seconds"):
            self._reply(400, "bad token request")
            return
        self._reply(200, "imds-token")

    def do_GET(self) -> None:
        if self.headers.get("X-aws-ec2-metadata-token") != "imds-token":
            self._reply(401, "unauthorized")
            return
        if self.broken:
            self._reply(500, "down")
            return
        base = "/latest/meta-data/iam/security-credentials/"
        if self.path == base:
            self._reply(200, "backup-role\n")
        elif self.path == base + "backup-role":
            n = len(self.issued) + 1
            self.issued.append(self.path)
            self._reply(200, json.dumps({
                "Code": "Success", "AccessKeyId": f"{self.key}{n}" if self.key == "ASIAFAKE"
                else self.key, "SecretAccessKey": self.secret, "Token": self.token,
                "Expiration": self.expiry.strftime("%Y-%m-%dT%H:%M:%SZ")}))
        else:
            self._reply(404, "not found")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def imds(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(_FakeImds, "issued", [])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeImds)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_instance_role_credentials_refresh_before_expiry(imds: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    now = [T0]
    source = InstanceRoleSource(imds, clock=lambda: now[0])
    first = source()
    assert (first.access_key, first.token) == ("ASIAFAKE1", "fake-session-token")
    now[0] = T0 + dt.timedelta(minutes=30)
    assert source().access_key == "ASIAFAKE1", "still fresh: no new fetch"
    monkeypatch.setattr(_FakeImds, "expiry", T0 + dt.timedelta(hours=2))
    now[0] = T0 + dt.timedelta(minutes=52)  # within 10 minutes of expiry
    assert source().access_key == "ASIAFAKE2"
    assert len(_FakeImds.issued) == 2

    monkeypatch.setattr(_FakeImds, "broken", True)
    now[0] = T0 + dt.timedelta(hours=1, minutes=55)  # due, but the old keys are still valid
    assert source().access_key == "ASIAFAKE2"
    now[0] = T0 + dt.timedelta(hours=3)  # expired, and the service is down
    with pytest.raises(CredentialsError, match="could not be fetched"):
        source()


def test_chain_reaches_imds_and_signs_with_its_token(imds: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds)
    monkeypatch.setattr(_FakeImds, "key", "ROLEKEY")
    monkeypatch.setattr(_FakeImds, "expiry", dt.datetime.now(dt.UTC) + dt.timedelta(hours=6))
    with Emulator(tmp_path / "emu", access_key="ROLEKEY", secret_key="fake-secret",
                  session_token="fake-session-token") as emu:
        client = GlacierClient("us-east-1", endpoint_url=emu.endpoint_url)
        client.create_vault("from-role")
        assert [v["VaultName"] for v in client.list_vaults()] == ["from-role"]


def test_unreachable_imds_is_listed_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(CredentialsError, match=f"EC2 instance metadata at http://127.0.0.1:{port}"):
        resolve_credentials()
