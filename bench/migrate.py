"""`glacierd migrate` of a vault into a bucket, beside the hashing floor, in one run.

    python bench/migrate.py [--size-mib 1024] [--archives 4] [--rounds 2]

The emulator holds a vault of ``--archives`` archives (``--size-mib`` in all,
its data in /dev/shm when there is room) and serves its S3 side too. Each
round moves the whole vault into a fresh bucket with the real `glacierd
migrate` (a process: retrieval jobs, chunks verified against Glacier's tree
hashes, sent as S3 parts with their SHA-256, the ledger committed a chunk at
a time). Reported: CPU-seconds per GiB of the glacierd process and of the
emulator, MiB/s, and the floor — one core computing the two hashes every
byte needs (the tree hash and the SHA-256) — measured in the same run.
The inventory is fetched before the timed part (`--dry-run`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ACCESS, SECRET, child_cpu, process_cpu, start_emulator

MIB = 1024 * 1024


def floor_cpu(path: Path) -> float:
    """CPU-seconds of one core hashing the file twice (SHA-256 twice)."""
    started = time.process_time()
    for _ in range(2):
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while block := fh.read(4 * MIB):
                digest.update(block)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--archives", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    from glacierd.glacier import GlacierClient
    from glacierd.s3.client import S3Client

    place = "/dev/shm" if Path("/dev/shm").is_dir() else None
    gib = args.size_mib / 1024
    with tempfile.TemporaryDirectory(dir=place) as name:
        tmp = Path(name)
        payload = tmp / "payload.bin"
        with open(payload, "wb") as fh:
            for _ in range(args.size_mib):
                fh.write(os.urandom(MIB))
        floor = floor_cpu(payload)
        emu, url = start_emulator(tmp / "emu")
        try:
            glacier = GlacierClient("us-east-1", endpoint_url=url, credentials=(ACCESS, SECRET))
            glacier.create_vault("bench")
            each = args.size_mib // args.archives * MIB
            for i in range(args.archives):
                part = tmp / f"a{i}.bin"
                with open(payload, "rb") as src, open(part, "wb") as dst:
                    src.seek(i * each)
                    dst.write(src.read(each))
                glacier.multiupload_archive("bench", part, description=f"archive-{i}.bin",
                                            part_size=16 * MIB)
                part.unlink()
            s3 = S3Client("us-east-1", endpoint_url=url, credentials=(ACCESS, SECRET))
            results = []
            for rnd in range(args.rounds):
                bucket = f"bench-{rnd}"
                s3.create_bucket(bucket)
                state = tmp / f"state-{rnd}"
                cfg = tmp / f"glacierd-{rnd}.toml"
                cfg.write_text(f"""[aws]
endpoint_url = "{url}"
access_key_id = "{ACCESS}"
secret_access_key = "{SECRET}"
[vault]
name = "bench"
[state]
dir = "{state}"
""")
                glacierd = [sys.executable, "-m", "glacierd.cli", "--config", str(cfg)]
                subprocess.run([*glacierd, "db", "upgrade"], check=True,
                               stdout=subprocess.DEVNULL)
                subprocess.run([*glacierd, "migrate", "--to-bucket", bucket, "--dry-run"],
                               check=True, stdout=subprocess.DEVNULL)
                emu_before = process_cpu(emu.pid)
                wall, cpu = child_cpu([*glacierd, "migrate", "--to-bucket", bucket,
                                       "--storage-class", "STANDARD", "--json"])
                results.append((wall, cpu, process_cpu(emu.pid) - emu_before))
        finally:
            emu.terminate()
            emu.wait()
    best = min(results, key=lambda r: r[1])
    print(f"{args.size_mib} MiB in {args.archives} archives, best of {args.rounds} rounds "
          "(by CPU)")
    print(f"  floor (SHA-256 twice, one core): {floor / gib:.2f} CPU-s/GiB")
    for wall, cpu, emu_cpu in results:
        print(f"  glacierd migrate: {cpu / gib:.2f} CPU-s/GiB ({cpu / floor:.2f}x the floor), "
              f"{args.size_mib / wall:.0f} MiB/s; emulator {emu_cpu / gib:.2f} CPU-s/GiB")
    print(json.dumps({"floor_cpu_per_gib": floor / gib, "glacierd_cpu_per_gib": best[1] / gib,
                      "ratio_to_floor": best[1] / floor,
                      "mib_per_s": args.size_mib / best[0]}))


if __name__ == "__main__":
    main()
