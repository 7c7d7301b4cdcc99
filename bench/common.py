"""What the bench scripts share: an emulator process, a child's CPU, and a
Glacier client made of the standard library alone (the floors' peer)."""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ACCESS, SECRET = "GLACIERDEMULATOR", "glacierd-emulator-secret-key"


def start_emulator(data_dir: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """``python -m glacierd.emulator`` on a free port; (process, endpoint URL)."""
    emu = subprocess.Popen([sys.executable, "-m", "glacierd.emulator", "--port", "0",
                            "--data-dir", str(data_dir), *extra],
                           stdout=subprocess.PIPE, text=True)
    assert emu.stdout is not None
    return emu, emu.stdout.readline().strip()


def child_cpu(command: list[str]) -> tuple[float, float]:
    """Run ``command``; (wall seconds, user + system CPU-seconds of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def process_cpu(pid: int) -> float:
    """User + system seconds a live process has used so far."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class StdlibClient:
    """Signed Glacier (or, ``service="s3"``, S3) requests on one kept
    ``http.client`` connection: no retries, no checks, no library. What a request
    costs in Python before any choice of HTTP library (bench/percall.py's and
    bench/upload.py's floors)."""

    def __init__(self, url: str, service: str = "glacier") -> None:
        from glacierd.glacier.sigv4 import Credentials

        self.url = url
        self.service = service
        self.where = urlsplit(url)
        self.conn = http.client.HTTPConnection(self.where.hostname, self.where.port)
        self.credentials = Credentials(ACCESS, SECRET)
        self.headers = {"x-amz-glacier-version": "2012-06-01"} if service == "glacier" else {}

    def call(self, method: str, path: str, headers: dict[str, str],
             body: bytes | memoryview = b"", expect: int = 201,
             payload: str | None = None) -> http.client.HTTPResponse:
        """``payload``: the body's SHA-256, when the caller has it already."""
        from glacierd.glacier.sigv4 import sign

        payload = payload or hashlib.sha256(body).hexdigest()
        headers = {"Host": self.where.netloc, **self.headers,
                   "x-amz-content-sha256": payload, **headers}
        headers.update(sign(method, self.url + path, headers, payload, self.credentials,
                            "us-east-1", self.service, dt.datetime.now(dt.UTC)))
        self.conn.request(method, path, body, headers)
        answer = self.conn.getresponse()
        answer.read()
        if answer.status != expect:
            raise SystemExit(f"stdlib client: {method} {path}: {answer.status}")
        return answer

    def close(self) -> None:
        self.conn.close()
