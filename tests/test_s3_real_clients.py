"""Real S3 clients nobody here wrote — the aws-cli and Debian's rclone — against
the emulator's S3 side: what they send (payloads signed or UNSIGNED-PAYLOAD,
Content-MD5, CRC32 checksums, multipart), the emulator must take; what they
check (ETags, sizes, restores), it must answer as S3 does. ``.ci/run``
installs both with apt-get when missing; without them these tests skip."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from glacierd.emulator import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_REGION,
    DEFAULT_SECRET_KEY,
    fetch_stats,
)
from glacierd.s3.client import S3Client
from tests.conftest import MIB, emulator_process, random_file

pytestmark = pytest.mark.slow


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[str]:
    with emulator_process(tmp_path / "emu", "--job-delay", "0.5") as url:
        s3 = S3Client(DEFAULT_REGION, endpoint_url=url,
                      credentials=(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY))
        s3.create_bucket("real-clients")
        yield url


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
    env.update(HOME=str(tmp_path), AWS_ACCESS_KEY_ID=DEFAULT_ACCESS_KEY,
               AWS_SECRET_ACCESS_KEY=DEFAULT_SECRET_KEY, AWS_DEFAULT_REGION=DEFAULT_REGION,
               AWS_CONFIG_FILE=str(tmp_path / "aws-config"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "aws-credentials"), **extra)
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


def _wait_restored(head: list[str], env: dict[str, str]) -> None:
    deadline = time.monotonic() + 30
    while 'ongoing-request="false"' not in json.loads(_run(head, env).stdout).get("Restore", ""):
        assert time.monotonic() < deadline, "the restore did not finish"
        time.sleep(0.2)  # the emulator's restore delay: the clock is all there is to wait on


def test_aws_cli_copies_restores_and_reads_back(tmp_path: Path, endpoint: str) -> None:
    aws = shutil.which("aws")
    if aws is None:
        pytest.skip("the aws-cli is not installed (.ci/run installs Debian's awscli)")
    env = _env(tmp_path)
    data = random_file(tmp_path / "big file.bin", 20 * MIB + 11, seed=20)
    base = [aws, "--endpoint-url", endpoint]
    _run([*base, "s3", "cp", str(tmp_path / "big file.bin"), "s3://real-clients/cli/big file.bin",
          "--storage-class", "DEEP_ARCHIVE"], env)
    head = [*base, "s3api", "head-object", "--bucket", "real-clients", "--key",
            "cli/big file.bin"]
    described = json.loads(_run(head, env).stdout)
    assert described["ContentLength"] == len(data)
    assert described["StorageClass"] == "DEEP_ARCHIVE" and described["ETag"].endswith('-3"')
    frozen = subprocess.run([*base, "s3", "cp", "s3://real-clients/cli/big file.bin",
                             str(tmp_path / "early.bin"), "--force-glacier-transfer"], env=env,
                            capture_output=True, text=True, timeout=180)
    assert frozen.returncode != 0 and "InvalidObjectState" in frozen.stderr
    _run([*base, "s3api", "restore-object", "--bucket", "real-clients", "--key",
          "cli/big file.bin", "--restore-request",
          '{"Days": 1, "GlacierJobParameters": {"Tier": "Bulk"}}'], env)
    _wait_restored(head, env)
    _run([*base, "s3", "cp", "s3://real-clients/cli/big file.bin", str(tmp_path / "back.bin"),
          "--force-glacier-transfer"], env)
    assert (tmp_path / "back.bin").read_bytes() == data
    listed = json.loads(_run([*base, "s3api", "list-objects-v2", "--bucket", "real-clients"],
                             env).stdout)
    assert [o["Key"] for o in listed["Contents"]] == ["cli/big file.bin"]


def test_rclone_copies_checks_and_restores(tmp_path: Path, endpoint: str) -> None:
    rclone = shutil.which("rclone")
    if rclone is None:
        pytest.skip("rclone is not installed (.ci/run installs Debian's rclone)")
    env = _env(tmp_path, RCLONE_CONFIG_EMU_TYPE="s3", RCLONE_CONFIG_EMU_PROVIDER="Other",
               RCLONE_CONFIG_EMU_ENDPOINT=endpoint,
               RCLONE_CONFIG_EMU_ACCESS_KEY_ID=DEFAULT_ACCESS_KEY,
               RCLONE_CONFIG_EMU_SECRET_ACCESS_KEY=DEFAULT_SECRET_KEY,
               RCLONE_CONFIG_EMU_REGION=DEFAULT_REGION, RCLONE_CONFIG_EMU_FORCE_PATH_STYLE="true",
               RCLONE_CONFIG="/dev/null")
    src = tmp_path / "src"
    src.mkdir()
    files = {"a.txt": random_file(src / "a.txt", 1000, seed=1),
             "with space é.bin": random_file(src / "with space é.bin", 70 * 1000, seed=2),
             "multi.bin": random_file(src / "multi.bin", 12 * MIB + 1, seed=3)}
    common = [rclone, "--s3-no-check-bucket", "--retries", "1", "--low-level-retries", "1"]
    # small files as single PUTs (UNSIGNED-PAYLOAD, Content-MD5); multi.bin in 5 MiB parts
    _run([*common, "copy", str(src), "emu:real-clients/rc", "--s3-upload-cutoff", "5M",
          "--s3-chunk-size", "5M", "--s3-storage-class", "GLACIER"], env)
    _run([*common, "check", str(src), "emu:real-clients/rc"], env)  # sizes and MD5 ETags
    sent = fetch_stats(endpoint)["requests"]
    assert sent.get("UploadPart", 0) == 3 and sent.get("PutObject", 0) == 2, sent
    s3 = S3Client(DEFAULT_REGION, endpoint_url=endpoint,
                  credentials=(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY))
    head = s3.head_object("real-clients", "rc/a.txt")
    assert head.storage_class == "GLACIER" and head.etag.strip('"') == hashlib.md5(
        files["a.txt"]).hexdigest()
    _run([*common, "backend", "restore", "emu:real-clients/rc", "-o", "priority=Standard",
          "-o", "lifetime=1"], env)
    deadline = time.monotonic() + 30
    while not all(s3.head_object("real-clients", f"rc/{name}").restored for name in files):
        assert time.monotonic() < deadline, "the restores did not finish"
        time.sleep(0.2)  # the emulator's restore delay: the clock is all there is to wait on
    out = tmp_path / "out"
    _run([*common, "copy", "emu:real-clients/rc", str(out)], env)
    for name, data in files.items():
        assert (out / name).read_bytes() == data, name
