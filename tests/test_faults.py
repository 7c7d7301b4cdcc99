"""Transfers under injected faults: every failure is retried with the same
bytes where that is safe, reported where it is not, and nothing wrong is ever
left under a final name."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from glacierd.emulator import Emulator
from glacierd.glacier import (
    AccessDeniedException,
    ChecksumMismatchError,
    GlacierClient,
    GlacierError,
    OutcomeUnknownError,
    ServerError,
    treehash,
)
from tests.conftest import MIB, client_for, fast_policy, random_file


def test_multiupload_64mib_survives_fault_rate_0_2(tmp_path: Path) -> None:
    data = random_file(tmp_path / "big.bin", 64 * MIB, seed=64)
    with Emulator(tmp_path / "emu", fault_rate=0.2, seed=2026) as emu:
        client = client_for(emu, retry_policy=fast_policy(attempts=25, seed=1))
        emu.faults.configure(0.0)
        client.create_vault("v")
        emu.faults.configure(0.2, seed=2026)
        seen: list[int] = []
        archive_id = client.multiupload_archive("v", tmp_path / "big.bin", part_size=MIB,
                                                concurrency=4,
                                                progress=lambda d, t: seen.append(d))
        emu.faults.configure(0.0)
        stats = emu.stats()
        assert sum(stats["faults"].values()) >= 10, stats["faults"]
        assert set(stats["faults"]) >= {"drop-after", "500", "throttle"}
        meta = emu.state.archive("v", archive_id)
        assert meta["SHA256TreeHash"] == treehash.tree_hash(data)
        assert emu.state.archive_bytes("v", archive_id) == data
        assert stats["archives_created"] == 1
        assert client.describe_vault("v")["NumberOfArchives"] == 1
        assert seen[-1] == len(data)


def test_download_of_corrupt_output_fails_and_leaves_no_file(tmp_path: Path) -> None:
    random_file(tmp_path / "a.bin", 3 * MIB + 5, seed=9)
    with Emulator(tmp_path / "emu") as emu:
        client = client_for(emu)
        client.create_vault("v")
        archive_id = client.multiupload_archive("v", tmp_path / "a.bin")
        job = client.initiate_archive_retrieval("v", archive_id)
        emu.faults.configure(0.0, corrupt_rate=1.0, seed=3)
        dest = tmp_path / "restore" / "a.bin"
        dest.parent.mkdir()
        with pytest.raises(ChecksumMismatchError, match=f"job {job}"):
            client.download_job_output("v", job, dest, segment_size=MIB)
        assert list(dest.parent.iterdir()) == [], "neither the file nor a partial is left"


def test_download_under_faults_and_occasional_corruption_is_exact(tmp_path: Path) -> None:
    data = random_file(tmp_path / "a.bin", 9 * MIB + 1, seed=10)
    with Emulator(tmp_path / "emu") as emu:
        client = client_for(emu, retry_policy=fast_policy(attempts=25))
        client.create_vault("v")
        archive_id = client.multiupload_archive("v", tmp_path / "a.bin")
        job = client.initiate_archive_retrieval("v", archive_id)
        emu.faults.configure(0.2, corrupt_rate=0.15, seed=11)
        dest = tmp_path / "out.bin"
        client.download_job_output("v", job, dest, segment_size=MIB)
        emu.faults.configure(0.0)
        assert dest.read_bytes() == data
        assert emu.stats()["faults"].get("corrupt", 0) >= 1


def test_upload_archive_is_not_retried_blindly(tmp_path: Path) -> None:
    with Emulator(tmp_path / "emu") as emu:
        client = client_for(emu)
        client.create_vault("v")
        emu.faults.configure(1.0, ["drop-after"], seed=1)
        with pytest.raises(OutcomeUnknownError, match="may or may not"):
            client.upload_archive("v", b"only once, please")
        emu.faults.configure(1.0, ["500"], seed=1)
        with pytest.raises(OutcomeUnknownError):
            client.upload_archive("v", b"only once, please")
        emu.faults.configure(0.0)
        stats = emu.stats()
        assert stats["requests"]["UploadArchive"] == 2, "one attempt each, no blind retry"
        # The dropped answer hid a real archive: exactly why it was not retried.
        assert stats["archives_created"] == 1


def test_upload_archive_retries_what_glacier_did_not_process(tmp_path: Path) -> None:
    with Emulator(tmp_path / "emu") as emu:
        client = client_for(emu)
        client.create_vault("v")
        # Throttling and 408 mean Glacier did not act on the request. (A dropped
        # connection does not say that, so it is an OutcomeUnknownError instead.)
        emu.faults.configure(0.6, ["throttle", "timeout"], seed=1)
        archive_id = client.upload_archive("v", b"throttled but safe")
        emu.faults.configure(0.0)
        assert emu.state.archive_bytes("v", archive_id) == b"throttled but safe"
        assert emu.stats()["archives_created"] == 1
        assert emu.stats()["requests"]["UploadArchive"] > 1


class _HtmlErrors(http.server.BaseHTTPRequestHandler):
    status = 502

    def do_GET(self) -> None:
        body = b"<html><body><h1>502 Bad Gateway</h1>proxy says no</body></html>"
        self.send_response(self.status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def html_server() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HtmlErrors)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("status", "cls"), [(502, ServerError), (403, AccessDeniedException)])
def test_html_error_body_is_a_clear_glacier_error(
        html_server: http.server.ThreadingHTTPServer, status: int, cls: type[GlacierError],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_HtmlErrors, "status", status)
    policy = fast_policy(attempts=3)
    host, port = html_server.server_address[:2]
    client = GlacierClient("us-east-1", endpoint_url=f"http://{host!s}:{port}",
                           credentials=("AKID", "secret"), retry_policy=policy)
    with pytest.raises(cls) as info:
        client.list_vaults()
    text = str(info.value)
    assert f"HTTP {status}" in text, text
    assert "502 Bad Gateway" in text and "proxy says no" in text, "the body is quoted"
    assert "secret" not in text
    expected_sleeps = 2 if status == 502 else 0
    assert len(policy.slept) == expected_sleeps  # type: ignore[attr-defined]


def test_connection_refused_is_retried_then_a_transport_error() -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens here now
    policy = fast_policy(attempts=4)
    client = GlacierClient("us-east-1", endpoint_url=f"http://127.0.0.1:{port}",
                           credentials=("AKID", "secret"), retry_policy=policy)
    from glacierd.glacier import TransportError

    with pytest.raises(TransportError, match="ListVaults"):
        client.list_vaults()
    assert len(policy.slept) == 3  # type: ignore[attr-defined]
    assert all(0 <= s <= 0.01 for s in policy.slept)  # type: ignore[attr-defined]


def test_truncated_and_dropped_answers_are_retried(tmp_path: Path) -> None:
    with Emulator(tmp_path / "emu") as emu:
        client = client_for(emu, retry_policy=fast_policy(attempts=30))
        for name in ("a", "b", "c"):
            client.create_vault(name)
        emu.faults.configure(0.5, ["truncate", "drop-before"], seed=7)
        for _ in range(5):
            assert [v["VaultName"] for v in client.list_vaults()] == ["a", "b", "c"]
        emu.faults.configure(0.0)
        assert emu.stats()["faults"].get("truncate", 0) >= 1


def test_logs_never_contain_secrets_or_signatures(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    with Emulator(tmp_path / "emu", session_token="tok-SECRET-123") as emu:
        client = client_for(emu, retry_policy=fast_policy(attempts=4))
        client.create_vault("v")
        emu.faults.configure(0.5, seed=3)
        for _ in range(4):
            with contextlib.suppress(GlacierError):
                client.upload_archive("v", b"data")
        emu.faults.configure(0.0)
        wrong = GlacierClient("us-east-1", endpoint_url=emu.endpoint_url,
                              credentials=(emu.credentials.access_key, "wrong-SECRET"),
                              retry_policy=fast_policy(attempts=2))
        with pytest.raises(GlacierError):
            wrong.list_vaults()
    assert caplog.records, "the client does log"
    text = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (emu.credentials.secret_key, "wrong-SECRET", "tok-SECRET-123", "Signature=",
                   "Credential="):
        assert secret not in text
