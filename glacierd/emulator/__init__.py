"""A Glacier-compatible HTTP server for tests and for ``glacierd run --local``.

    with Emulator(tmp_path) as emu:
        client = GlacierClient("us-east-1", endpoint_url=emu.endpoint_url,
                               credentials=emu.credentials)

It verifies SigV4 and hashes like Glacier, keeps its data under ``data_dir``
(so it survives its own restart), runs jobs after ``job_delay`` seconds and can
inject faults; see ``glacierd.emulator.server`` and ``.faults``.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from glacierd.glacier.sigv4 import Credentials

from .faults import KINDS, FaultPlan
from .s3state import S3State
from .server import EmulatorHTTPServer, Secret
from .store import GlacierState

DEFAULT_ACCESS_KEY = "GLACIERDEMULATOR"
DEFAULT_SECRET_KEY = "glacierd-emulator-secret-key"
DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "123456789012"

__all__ = [
    "DEFAULT_ACCESS_KEY",
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_REGION",
    "DEFAULT_SECRET_KEY",
    "Emulator",
    "control",
    "fetch_stats",
]


class Emulator:
    """An emulator serving on a background thread; a context manager."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        access_key: str = DEFAULT_ACCESS_KEY,
        secret_key: str = DEFAULT_SECRET_KEY,
        session_token: str | None = None,
        region: str = DEFAULT_REGION,
        account_id: str = DEFAULT_ACCOUNT_ID,
        job_delay: float = 0.0,
        fault_rate: float = 0.0,
        fault_kinds: Sequence[str] = KINDS,
        corrupt_rate: float = 0.0,
        seed: int | None = None,
        upload_expiry: float = 24 * 3600,
        job_expiry: float = 24 * 3600,
        clock: Callable[[], float] = time.time,
        test_endpoints: bool = False,
    ) -> None:
        self.state = GlacierState(data_dir, region=region, account_id=account_id,
                                  job_delay=job_delay, upload_expiry=upload_expiry,
                                  job_expiry=job_expiry, clock=clock)
        self.faults = FaultPlan(fault_rate, tuple(fault_kinds), corrupt_rate, seed)
        self.credentials = Credentials(access_key, secret_key, session_token)
        self.region = region
        self._server = EmulatorHTTPServer(
            (host, port), self.state, {access_key: Secret(secret_key, session_token)},
            self.faults, clock, test_endpoints,
        )
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Emulator:
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="glacierd-emulator", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def s3(self) -> S3State:
        """The S3 side's buckets and objects (tests look inside)."""
        return self._server.s3

    def stats(self) -> dict[str, Any]:
        return self._server.stats.snapshot()

    def reset_stats(self) -> None:
        self._server.stats.reset()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def control(endpoint_url: str, path: str, doc: dict[str, Any] | None = None,
            secret_key: str = DEFAULT_SECRET_KEY) -> Any:
    """Call a test endpoint (``/__stats``, ``/__faults`` ...) of an emulator in another
    process started with ``--test-endpoints``: GET without ``doc``, else POST it."""
    request = urllib.request.Request(
        f"{endpoint_url}{path}", method="GET" if doc is None else "POST",
        data=None if doc is None else json.dumps(doc).encode(),
        headers={"Authorization": f"Bearer {secret_key}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        body = answer.read()
        return json.loads(body) if body else None


def fetch_stats(endpoint_url: str, secret_key: str = DEFAULT_SECRET_KEY) -> dict[str, Any]:
    """``GET /__stats`` of an emulator in another process."""
    doc: dict[str, Any] = control(endpoint_url, "/__stats", secret_key=secret_key)
    return doc
