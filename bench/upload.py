"""Upload throughput and peak memory: glacierd's client against boto3, same
emulator, same file, same part size and concurrency, in the same run.

    python bench/bench_upload.py --size-mib 256 --part-mib 16 --concurrency 4

Each contender runs in its own process so that its peak RSS is its own; the
emulator runs in a third. Also measured: the machine's hashing limit (one
core computing the linear SHA-256 and the tree hash that every upload needs),
which bounds any client on this machine. Read the ratios, not the absolutes:
the emulator shares the two cores with the client.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIB = 1024 * 1024
ACCESS, SECRET = "GLACIERDEMULATOR", "glacierd-emulator-secret-key"


def run_ours(url: str, path: str, part: int, concurrency: int) -> None:
    from glacierd.glacier import GlacierClient

    client = GlacierClient("us-east-1", endpoint_url=url, credentials=(ACCESS, SECRET))
    client.create_vault("bench")
    client.multiupload_archive("bench", path, part_size=part, concurrency=concurrency)


def run_boto3(url: str, path: str, part: int, concurrency: int) -> None:
    import io
    from concurrent.futures import ThreadPoolExecutor

    import boto3
    from botocore.utils import calculate_tree_hash

    from glacierd.glacier.treehash import combine_hex

    glacier = boto3.client("glacier", region_name="us-east-1", endpoint_url=url,
                           aws_access_key_id=ACCESS, aws_secret_access_key=SECRET)
    glacier.create_vault(vaultName="bench")
    size = os.path.getsize(path)
    upload_id = glacier.initiate_multipart_upload(vaultName="bench",
                                                  partSize=str(part))["uploadId"]

    def send(offset: int) -> str:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(part)
        glacier.upload_multipart_part(vaultName="bench", uploadId=upload_id,
                                      range=f"bytes {offset}-{offset + len(data) - 1}/*",
                                      body=data)
        return str(calculate_tree_hash(io.BytesIO(data)))

    with ThreadPoolExecutor(concurrency) as pool:
        hashes = list(pool.map(send, range(0, size, part)))
    glacier.complete_multipart_upload(vaultName="bench", uploadId=upload_id,
                                      archiveSize=str(size), checksum=combine_hex(hashes))


def run_hash_limit(path: str) -> None:
    from glacierd.glacier.treehash import TreeHasher

    hasher = TreeHasher(linear=True)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(16 * MIB), b""):
            hasher.update(chunk)
    hasher.hexdigest()


def child(kind: str, url: str, path: str, part: int, concurrency: int) -> None:
    start = time.perf_counter()
    if kind == "glacierd":
        run_ours(url, path, part, concurrency)
    elif kind == "boto3":
        run_boto3(url, path, part, concurrency)
    else:
        run_hash_limit(path)
    elapsed = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": elapsed, "peak_rss_mib": peak_kib / 1024}))


def measure(kind: str, url: str, path: str, part: int, concurrency: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--url", url, "--path", path,
         "--part-mib", str(part // MIB), "--concurrency", str(concurrency)],
        check=True, capture_output=True, text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--part-mib", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child")
    parser.add_argument("--url", default="")
    parser.add_argument("--path", default="")
    args = parser.parse_args()
    part = args.part_mib * MIB
    if args.child:
        child(args.child, args.url, args.path, part, args.concurrency)
        return
    kinds = ("hash-limit", "glacierd", "boto3")
    results: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "payload.bin"
        with open(path, "wb") as fh:
            for _ in range(args.size_mib):
                fh.write(os.urandom(MIB))
        for rnd in range(args.rounds):
            for kind in kinds:
                # A fresh emulator per run: no contender pays for another's data.
                emu = subprocess.Popen(
                    [sys.executable, "-m", "glacierd.emulator", "--port", "0", "--data-dir",
                     str(Path(tmp) / f"emu-{kind}-{rnd}")],
                    stdout=subprocess.PIPE, text=True,
                )
                assert emu.stdout is not None
                url = emu.stdout.readline().strip()
                try:
                    results[kind].append(measure(kind, url, str(path), part, args.concurrency))
                finally:
                    emu.terminate()
                    emu.wait()
    size = args.size_mib
    best = {k: min(r["seconds"] for r in v) for k, v in results.items()}
    print(f"file {size} MiB, parts {args.part_mib} MiB, concurrency {args.concurrency}, "
          f"best of {args.rounds}")
    print(f"{'contender':<12}{'MiB/s':>10}{'peak RSS MiB':>16}")
    for kind, runs in results.items():
        peak = max(r["peak_rss_mib"] for r in runs)
        print(f"{kind:<12}{size / best[kind]:>10.1f}{peak:>16.1f}")
    print(f"glacierd / boto3 throughput: {best['boto3'] / best['glacierd']:.2f}x")
    print(f"glacierd / hashing limit:    {best['hash-limit'] / best['glacierd']:.2f}x")


if __name__ == "__main__":
    main()
