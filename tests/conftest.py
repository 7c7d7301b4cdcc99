"""Shared fixtures. Every test runs with no AWS configuration from the host:
credentials come only from what a test sets, and instance metadata is off
unless a test points it at its own local fake."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from glacierd.emulator import Emulator
from glacierd.glacier import GlacierClient, RetryPolicy

MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def isolated_aws_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def fast_policy(attempts: int = 10, seed: int = 0) -> RetryPolicy:
    """Retries without real waiting: delays are computed and recorded, not slept."""
    policy = RetryPolicy(max_attempts=attempts, base=0.001, cap=0.01, rng=random.Random(seed))
    policy.slept = []  # type: ignore[attr-defined]
    policy.sleep = policy.slept.append  # type: ignore[attr-defined]
    return policy


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    with Emulator(tmp_path / "emulator") as emu:
        yield emu


def client_for(emu: Emulator, **kw: object) -> GlacierClient:
    kw.setdefault("retry_policy", fast_policy())
    return GlacierClient("us-east-1", endpoint_url=emu.endpoint_url,
                         credentials=emu.credentials, **kw)  # type: ignore[arg-type]


@pytest.fixture
def client(emulator: Emulator) -> GlacierClient:
    return client_for(emulator)


def random_file_bytes(size: int, seed: int = 3) -> bytes:
    return random.Random(seed).randbytes(size)


def random_file(path: Path, size: int, seed: int = 0) -> bytes:
    data = random_file_bytes(size, seed)
    path.write_bytes(data)
    return data


@contextmanager
def emulator_process(data_dir: Path, *extra: str) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "glacierd.emulator", "--port", "0", "--data-dir", str(data_dir),
         *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), (url, proc.stderr.read() if proc.stderr else "")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
