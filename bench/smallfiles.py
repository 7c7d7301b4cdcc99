"""Many small files through the real daemon, beside boto3 doing the same requests.

    python bench/smallfiles.py [--files 500] [--size 1024] [--service vault|s3] [--by-thread]
    python bench/smallfiles.py --files 100000 --size 4096 --queue-files 0

glacierd: a `glacierd run` process watches a folder into which the files are
dropped (already settled: their mtimes are old). Unpacked (`[pack] threshold =
0`), it queues and uploads each through a multipart upload (Initiate, one
part, Complete: the crash-safe path); packed (`[pack]`'s defaults, but
`max_wait = 1`), it packs them into bundles of 128 MiB and uploads those.
The peer: boto3 making the same three requests per file, one file after the
other, against its own emulator. With ``--service s3`` glacierd backs up to a
bucket (Deep Archive, the service new users start on): a one-part file is one
conditional PUT (``If-None-Match: *``); the peer is boto3's ``put_object`` of
each file with the same storage class, SHA-256 checksum and condition.

Reported: files per second (wall, from the daemon's start to the last file
archived, start-up included), the steady files per second once running (from
the first file done to the last: glacierd's archive rows, boto3's loop; not
for packed files, archived together), CPU-milliseconds per file of each client process
and of its emulator, requests per file as the emulator counted them, and what
the vault or bucket then costs a month (storage with its per-archive or
per-object overhead, at `glacierd.pricing`'s list prices) and what its write
requests cost once. Walls are noisy on two shared cores; CPU per file is the steadier
figure.

With ``--by-thread``, the unpacked daemon runs under ``bench/threadcpu.py`` and
its CPU a file is printed by kind of thread, from start to exit: the upload
threads, the scheduled jobs (the drain, settling), the watcher's inotify
threads, the main thread (start-up, exit).

Then queueing alone (``--queue-files``, 10,000 by default): the watcher's scan
and one settle pass of files already still, recorded in the store in one
transaction, beside the same files recorded one transaction a file; and what
the drain then reads of that queue, a pass of pages (``Store.pending_files``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ACCESS, SECRET, child_cpu, process_cpu, start_emulator


def steady_rate(first: float, last: float, count: int) -> float:
    """Files a second from the first file done to the last: the rate once running,
    without start-up, the start-up scan and settling (or boto3's import)."""
    return (count - 1) / (last - first) if count > 1 and last > first else float("nan")


def archives_rate(db: Path) -> float:
    """``steady_rate`` of a daemon's archives, by the times their rows were committed."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        first, last, count = conn.execute(
            "SELECT min(created_at), max(created_at), count(*) FROM archives").fetchone()

    def seconds(text: str) -> float:
        return dt.datetime.fromisoformat(text).timestamp()

    return steady_rate(seconds(first), seconds(last), count)


def archived(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
            return int(conn.execute("SELECT count(*) FROM files WHERE state = 'archived'")
                       .fetchone()[0])
    except sqlite3.OperationalError:
        return 0


THREAD_KINDS = (("upload threads", ("glacierd-file",)),
                ("scheduled jobs (the drain, settling)", ("ThreadPoolExecutor", "APScheduler")),
                ("watcher (inotify)", ("Inotify",)),
                ("main (start-up, exit)", ("MainThread",)))


def by_thread(rows: list[tuple[str, str, float]]) -> dict[str, float]:
    """CPU-seconds by kind of thread (``THREAD_KINDS``, by the thread's name or its
    class's; the rest: "other")."""
    out: dict[str, float] = {}
    for name, cls, seconds in rows:
        kind = next((k for k, prefixes in THREAD_KINDS
                     if name.startswith(prefixes) or cls.startswith(prefixes)), "other")
        out[kind] = out.get(kind, 0.0) + seconds
    return out


def run_glacierd(tmp: Path, url: str, folder: Path, files: int, packed: bool,
                 concurrency: int | None = None, service: str = "vault",
                 threads: dict[str, float] | None = None) -> tuple[float, float, float]:
    """(wall, CPU, steady files/s) of a daemon until ``files`` are archived;
    ``threads``, when given, gets its CPU by kind of thread, from start to exit
    (``bench/threadcpu.py``)."""
    tmp = tmp / ("packed" if packed else "unpacked")
    tmp.mkdir()
    cfg = tmp / "glacierd.toml"
    pack = "max_wait = 1" if packed else "threshold = 0"
    target = ('[s3]\nbucket = "small"\ncreate = true' if service == "s3" else
              '[vault]\nname = "small"\ncreate = true')
    cfg.write_text(f"""[aws]
endpoint_url = "{url}"
access_key_id = "{ACCESS}"
secret_access_key = "{SECRET}"
{target}
[state]
dir = "{tmp / 'state'}"
[schedule]
drain_seconds = 0.2
settle_check_seconds = 0.2
[pack]
{pack}
[upload]
{f"concurrency = {concurrency}" if concurrency else ""}
[[watch]]
path = "{folder}"
settle_seconds = 1
""")
    glacierd = [sys.executable, "-m", "glacierd.cli", "--config", str(cfg)]
    subprocess.run([*glacierd, "db", "upgrade"], check=True, stdout=subprocess.DEVNULL)
    started = time.monotonic()
    counted = tmp / "threads.json"
    command = [*glacierd, "run"] if threads is None else [
        sys.executable, str(Path(__file__).with_name("threadcpu.py")), "--config", str(cfg),
        "run"]
    daemon = subprocess.Popen(command, stderr=subprocess.DEVNULL,
                              env={**os.environ, "THREAD_CPU_OUT": str(counted)})
    try:
        db = tmp / "state" / "glacierd.db"
        while archived(db) < files:
            if time.monotonic() - started > 3600:
                raise SystemExit("glacierd did not archive every file within an hour")
            time.sleep(0.2)  # polling another process's store: there is no event
        wall = time.monotonic() - started
        cpu = process_cpu(daemon.pid)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=120)
    if threads is not None:
        threads.update(by_thread(json.loads(counted.read_text())))
    return wall, cpu, float("nan") if packed else archives_rate(db)


def _steady_out(first: float, last: float, count: int) -> None:
    Path(os.environ["BENCH_STEADY_OUT"]).write_text(str(steady_rate(first, last, count)))


def boto3_child(url: str, folder: str) -> None:
    import boto3
    from botocore.utils import calculate_tree_hash

    client = boto3.client("glacier", region_name="us-east-1", endpoint_url=url,
                          aws_access_key_id=ACCESS, aws_secret_access_key=SECRET)
    client.create_vault(vaultName="small")
    names = sorted(os.listdir(folder))
    first = 0.0
    for name in names:
        data = Path(folder, name).read_bytes()
        upload = client.initiate_multipart_upload(vaultName="small", partSize=str(2**20),
                                                  archiveDescription=name)
        client.upload_multipart_part(vaultName="small", uploadId=upload["uploadId"],
                                     range=f"bytes 0-{len(data) - 1}/*", body=data)
        client.complete_multipart_upload(vaultName="small", uploadId=upload["uploadId"],
                                         archiveSize=str(len(data)),
                                         checksum=calculate_tree_hash(io.BytesIO(data)))
        first = first or time.time()
    _steady_out(first, time.time(), len(names))


def boto3_s3_child(url: str, folder: str) -> None:
    import base64
    import hashlib

    import boto3
    from botocore.config import Config

    client = boto3.client("s3", region_name="us-east-1", endpoint_url=url,
                          aws_access_key_id=ACCESS, aws_secret_access_key=SECRET,
                          config=Config(s3={"addressing_style": "path"}))
    client.create_bucket(Bucket="small")
    names = sorted(os.listdir(folder))
    first = 0.0
    for name in names:
        data = Path(folder, name).read_bytes()
        client.put_object(Bucket="small", Key=name, Body=data, StorageClass="DEEP_ARCHIVE",
                          IfNoneMatch="*",
                          ChecksumSHA256=base64.b64encode(hashlib.sha256(data).digest()).decode())
        first = first or time.time()
    _steady_out(first, time.time(), len(names))


def run_boto3(url: str, folder: Path, service: str) -> tuple[float, float, float]:
    out = folder.parent / "boto3-steady"
    os.environ["BENCH_STEADY_OUT"] = str(out)
    wall, cpu = child_cpu([sys.executable, __file__, "--child", url, str(folder), service])
    return wall, cpu, float(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--queue-files", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int,
                        help="[upload] concurrency: how many one-part files at once "
                             "(default: glacierd's)")
    parser.add_argument("--service", choices=("vault", "s3"), default="vault",
                        help="a Glacier vault, or an S3 bucket in Deep Archive")
    parser.add_argument("--by-thread", action="store_true",
                        help="also the unpacked daemon's CPU by kind of thread, start to exit")
    parser.add_argument("--child", nargs=3)
    args = parser.parse_args()
    if args.child:
        url, folder, service = args.child
        (boto3_s3_child if service == "s3" else boto3_child)(url, folder)
        return
    from glacierd.emulator import fetch_stats

    place = "/dev/shm" if Path("/dev/shm").is_dir() else None
    results = {}
    threads: dict[str, float] | None = {} if args.by_thread else None
    with tempfile.TemporaryDirectory(dir=place) as name:
        tmp = Path(name)
        folder = tmp / "inbox"
        folder.mkdir()
        old = time.time() - 3600
        for i in range(args.files):
            path = folder / f"file-{i:06d}.txt"
            path.write_bytes(os.urandom(args.size))
            os.utime(path, (old, old))
        for kind in ("glacierd", "glacierd packed", "boto3"):
            emu_dir = tmp / f"emu-{kind.replace(' ', '-')}"
            emu, url = start_emulator(emu_dir, "--test-endpoints")
            try:
                served = process_cpu(emu.pid)
                wall, cpu, steady = (run_boto3(url, folder, args.service) if kind == "boto3" else
                             run_glacierd(tmp, url, folder, args.files, kind.endswith("packed"),
                                          args.concurrency, args.service,
                                          threads if kind == "glacierd" else None))
                served = process_cpu(emu.pid) - served
                stats = fetch_stats(url)
            finally:
                emu.terminate()
                emu.wait()
            requests = sum(stats["requests"].values())
            cost = bucket_cost if args.service == "s3" else vault_cost
            results[kind] = (wall, cpu, steady, served, requests,
                             *cost(emu_dir, stats["requests"]))
    print(f"{args.files} files of {args.size} bytes to "
          f"{'an S3 bucket (Deep Archive)' if args.service == 's3' else 'a Glacier vault'}, "
          f"one emulator each (data in {place or tempfile.gettempdir()})")
    stored = "objects" if args.service == "s3" else "archives"
    print(f"{'':<16}{'files/s':>9}{'steady':>8}{'CPU ms/file':>13}{'emulator ms':>13}"
          f"{'requests/file':>15}{stored:>10}{'$/month':>11}{'$ requests':>12}")
    for kind, (wall, cpu, steady, served, requests, archives, month, once) in results.items():
        shown = "-" if steady != steady else f"{steady:.1f}"  # nan: packed, no such rate
        print(f"{kind:<16}{args.files / wall:>9.1f}{shown:>8}{cpu * 1000 / args.files:>13.2f}"
              f"{served * 1000 / args.files:>13.2f}{requests / args.files:>15.2f}"
              f"{archives:>10,}{month:>11.6f}{once:>12.6f}")
    print("emulator ms: its CPU a file; on two cores, files/s can be at most "
          "2000 / (CPU ms + emulator ms)")
    print("glacierd's wall includes its start-up, the start-up scan and settling (1 s); "
          "packed, also the bundles' one-second wait")
    print("steady: files/s from the first file done to the last (glacierd: its archive "
          "rows' commit times; boto3: its loop), without start-up")
    if threads is not None:
        print("glacierd (unpacked), CPU-ms a file by kind of thread, start to exit:")
        for kind, seconds in sorted(threads.items(), key=lambda kv: -kv[1]):
            print(f"  {kind:<40}{seconds * 1000 / args.files:>8.2f}")
    if args.queue_files:
        queueing(args.queue_files, place)


def vault_cost(emu_dir: Path, requests: dict[str, int]) -> tuple[int, float, float]:
    """(archives, USD a month of storage with overhead, USD of the write requests)."""
    from glacierd import pricing
    from glacierd.emulator.store import GlacierState

    sizes = [int(a["Size"]) for a in GlacierState(emu_dir)._archives("small")]
    month = sum(sum(pricing.billed_month(size, pricing.VAULT)) for size in sizes)
    writes = sum(n for op, n in requests.items() if op in (
        "InitiateMultipartUpload", "UploadMultipartPart", "CompleteMultipartUpload",
        "UploadArchive"))
    return len(sizes), month, writes / 1000 * pricing.PRICES[pricing.VAULT].put_per_1000


def bucket_cost(emu_dir: Path, requests: dict[str, int]) -> tuple[int, float, float]:
    """(objects, USD a month of storage with overhead, USD of the write requests)."""
    import json

    from glacierd import pricing

    objects = [json.loads(meta.read_text())
               for meta in (emu_dir / "s3" / "small" / "objects").glob("*.json")]
    month = sum(sum(pricing.billed_month(int(o["Size"]), o["StorageClass"])) for o in objects)
    writes = sum(n for op, n in requests.items() if op in (
        "PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload",
        "CopyObject"))
    return (len(objects), month,
            writes / 1000 * pricing.PRICES["DEEP_ARCHIVE"].put_per_1000)


def queueing(count: int, place: str | None) -> None:
    from glacierd.config import WatchSection
    from glacierd.store import schema
    from glacierd.store.db import create_store_engine
    from glacierd.store.repository import Store
    from glacierd.watcher import Watcher

    def store_in(folder: Path) -> Store:
        url = f"sqlite:///{folder / 'glacierd.db'}"
        engine = create_store_engine(url)
        schema.upgrade(engine)
        engine.dispose()
        return Store.open(url)

    with tempfile.TemporaryDirectory(dir=place) as name:
        tmp = Path(name)
        inbox = tmp / "inbox"
        inbox.mkdir()
        old = time.time() - 3600
        for i in range(count):
            path = inbox / f"f{i:07d}"
            path.write_bytes(b"x")
            os.utime(path, (old, old))
        batched, single = store_in(tmp / "a"), store_in(tmp / "b")

        def many(ready: list[tuple[str, int, int]]) -> None:
            batched.files_seen([(p, s, m, os.lstat(p).st_ino) for p, s, m in ready])

        def one(path: str, size: int, mtime: int) -> None:
            single.file_seen(path, size, mtime, os.lstat(path).st_ino)

        print(f"queueing {count:,} settled files (scan + settle + store):")
        for label, watcher in (
                ("one transaction a pass", Watcher([WatchSection(path=inbox)], one,
                                                   record_many=many)),
                ("one transaction a file", Watcher([WatchSection(path=inbox)], one))):
            wall, cpu = time.monotonic(), time.process_time()
            watcher.scan()
            queued = watcher.settle()
            wall, cpu = time.monotonic() - wall, time.process_time() - cpu
            print(f"  {label:<24}{queued / wall:>9.0f} files/s{cpu * 1e6 / queued:>8.0f} "
                  "CPU-us/file")
        # What the drain reads of that queue: a pass of pages (its upload work aside).
        import datetime as dt

        from glacierd.daemon import QUEUE_PAGE

        now, last, taken, largest = dt.datetime.now(dt.UTC), None, 0, 0
        cpu = time.process_time()
        while page := batched.pending_files(now, limit=QUEUE_PAGE, after=last):
            taken, last, largest = taken + len(page), page[-1], max(largest, len(page))
        cpu = time.process_time() - cpu
        print(f"the drain's pass over the queue: {taken:,} files in pages of at most "
              f"{largest}, {cpu * 1e6 / max(taken, 1):.1f} CPU-us a file")


if __name__ == "__main__":
    main()
