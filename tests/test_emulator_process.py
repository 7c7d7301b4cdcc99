"""``python -m glacierd.emulator`` as a real process: it prints its endpoint
first, serves concurrent clients, and keeps its data across a restart."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from glacierd.emulator import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, fetch_stats
from glacierd.glacier import GlacierClient, treehash
from tests.conftest import MIB, emulator_process, fast_policy, random_file


def _client(url: str) -> GlacierClient:
    return GlacierClient("us-east-1", endpoint_url=url,
                         credentials=(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY),
                         retry_policy=fast_policy())


def test_emulator_process_keeps_data_across_restart(tmp_path: Path) -> None:
    data = random_file(tmp_path / "f.bin", 3 * MIB + 3)
    with emulator_process(tmp_path / "data") as url:
        client = _client(url)
        client.create_vault("kept")
        archive_id = client.multiupload_archive("kept", tmp_path / "f.bin", part_size=MIB)
        pending = client.initiate_multipart_upload("kept", MIB, "unfinished")
        client.upload_part("kept", pending, 0, data[:MIB])
        stats = fetch_stats(url)
        assert stats["part_bytes_received"] == len(data) + MIB
        assert stats["archives_created"] == 1
    with emulator_process(tmp_path / "data") as url:
        client = _client(url)
        assert client.describe_vault("kept")["NumberOfArchives"] == 1
        assert [u["MultipartUploadId"] for u in client.list_multipart_uploads("kept")] == [pending]
        assert client.list_parts("kept", pending)["Parts"][0]["SHA256TreeHash"] == (
            treehash.tree_hash(data[:MIB]))
        job = client.initiate_archive_retrieval("kept", archive_id)
        client.download_job_output("kept", job, tmp_path / "back.bin")
        assert (tmp_path / "back.bin").read_bytes() == data
        assert fetch_stats(url)["part_bytes_received"] == 0, "stats are per process"


def test_emulator_serves_concurrent_clients(tmp_path: Path) -> None:
    with emulator_process(tmp_path / "data", "--job-delay", "0") as url:
        client = _client(url)
        client.create_vault("c")
        blobs = [bytes([i]) * (MIB + i) for i in range(8)]
        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(lambda b: _client(url).upload_archive("c", b), blobs))
        assert len(set(ids)) == 8
        assert client.describe_vault("c")["SizeInBytes"] == sum(len(b) for b in blobs)


def test_bad_arguments_exit_nonzero(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "glacierd.emulator", "--data-dir", str(tmp_path),
         "--fault-kinds", "meteor"],
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode != 0 and "meteor" in proc.stderr
