"""Upload throughput and peak memory: glacierd against boto3, same emulator,
same file, in the same run.

    python bench/upload.py                      # 1 GiB, 16 MiB parts, concurrency 4, 5 rounds
    python bench/upload.py --size-mib 256 --rounds 1
    python bench/upload.py --service s3         # to the emulator's S3 side (Deep Archive)
    python bench/upload.py --encrypt            # also glacierd with [encryption], and age

Contenders, each in its own process (peak RSS is that process's own, read
with wait4) against a fresh emulator process:

* ``glacierd`` — the real ``glacierd upload`` command: config, state store,
  every part committed, progress written, as a user runs it;
* ``boto3`` — the same multipart upload as boto3 users write it: botocore
  computes each part's checksums, parts are sent one at a time; with
  ``--service s3``, boto3's ``upload_file`` (s3transfer: 8 MiB parts, 10
  threads, its default CRC32 checksums), as boto3 users back up to S3;
* ``sha256x2`` — the machine's limit: one core computing SHA-256 twice over
  the file (the linear hash and the tree hash every upload needs);
* ``stdlib`` — the floor of an upload in Python: the same multipart upload,
  each part read into one buffer, hashed twice and sent from it on one kept
  ``http.client`` connection, one part after the other, with no store, no
  retries, no library (``common.StdlibClient``). Unlike ``sha256x2`` it pays
  what every upload pays besides hashing: the kernel's copies of the bytes in
  from the file and out to the socket, and starting Python.

With ``--encrypt``, two more:

* ``glacierd+age`` — the same ``glacierd upload`` with ``[encryption]`` (one
  recipient): the file is sent as an age file, encrypted part by part, and
  its plaintext SHA-256 is kept too (a third hash pass);
* ``age`` — Debian's ``age -r`` encrypting the same file to /dev/null: the
  cost of the encryption alone in an independent implementation (Go).

Read the ratios, not the absolutes: the emulator shares the two cores and
hashes every byte twice too.

Both contenders start from compiled bytecode, as ``pip install`` leaves a
package: pip compiled boto3's when it installed it, and this script compiles
glacierd's first. Without that, an editable install under
``PYTHONDONTWRITEBYTECODE=1`` (set on this project's machines) recompiles
glacierd's every module on every start, about 0.25 s that no user pays twice.
"""

from __future__ import annotations

import argparse
import compileall
import dataclasses
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ACCESS, SECRET, StdlibClient, process_cpu, start_emulator

MIB = 1024 * 1024


def boto3_upload(url: str, path: str, part: int) -> None:
    import boto3
    from botocore.utils import calculate_tree_hash

    glacier = boto3.client("glacier", region_name="us-east-1", endpoint_url=url,
                           aws_access_key_id=ACCESS, aws_secret_access_key=SECRET)
    glacier.create_vault(vaultName="bench")
    size = os.path.getsize(path)
    upload_id = glacier.initiate_multipart_upload(vaultName="bench",
                                                  partSize=str(part))["uploadId"]
    with open(path, "rb") as fh:
        for offset in range(0, size, part):
            data = fh.read(part)
            glacier.upload_multipart_part(vaultName="bench", uploadId=upload_id,
                                          range=f"bytes {offset}-{offset + len(data) - 1}/*",
                                          body=data)
        fh.seek(0)
        checksum = calculate_tree_hash(fh)
    glacier.complete_multipart_upload(vaultName="bench", uploadId=upload_id,
                                      archiveSize=str(size), checksum=checksum)


def boto3_s3_upload(url: str, path: str) -> None:
    import boto3
    from botocore.config import Config

    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=url,
                      aws_access_key_id=ACCESS, aws_secret_access_key=SECRET,
                      config=Config(s3={"addressing_style": "path"}))
    s3.create_bucket(Bucket="bench")
    s3.upload_file(path, "bench", "payload.bin", ExtraArgs={"StorageClass": "DEEP_ARCHIVE"})


def sha256_twice(path: str) -> None:
    for _ in range(2):
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(4 * MIB), b""):
                digest.update(chunk)


def stdlib_upload(url: str, path: str, part: int) -> None:
    from glacierd.glacier.treehash import combine

    glacier = StdlibClient(url)
    glacier.call("PUT", "/-/vaults/bench", {})
    upload_id = glacier.call("POST", "/-/vaults/bench/multipart-uploads",
                             {"x-amz-part-size": str(part)}).headers["x-amz-multipart-upload-id"]
    leaves: list[bytes] = []
    buffer = memoryview(bytearray(part))
    offset = 0
    with open(path, "rb", buffering=0) as fh:
        while length := fh.readinto(buffer):
            body = buffer[:length]
            linear, first = hashlib.sha256(), len(leaves)
            for at in range(0, length, MIB):
                leaf = body[at:at + MIB]
                leaves.append(hashlib.sha256(leaf).digest())
                linear.update(leaf)
            glacier.call("PUT", f"/-/vaults/bench/multipart-uploads/{upload_id}", {
                "x-amz-sha256-tree-hash": combine(leaves[first:]).hex(),
                "Content-Range": f"bytes {offset}-{offset + length - 1}/*"},
                body, expect=204, payload=linear.hexdigest())
            offset += length
    glacier.call("POST", f"/-/vaults/bench/multipart-uploads/{upload_id}",
                 {"x-amz-archive-size": str(offset),
                  "x-amz-sha256-tree-hash": combine(leaves).hex()})
    glacier.close()


@dataclasses.dataclass
class Run:
    seconds: float
    peak_mib: float
    cpu: float  # the contender's own user + system seconds
    emulator_cpu: float = 0.0  # its emulator's, during the run

    @property
    def cores_busy(self) -> float:
        """How many of the machine's cores the run kept busy, on average."""
        return (self.cpu + self.emulator_cpu) / self.seconds


def timed(argv: list[str], emulator_pid: int | None = None) -> Run:
    """Run a command: its wall seconds, peak RSS, and the CPU it and its emulator used."""
    emulator_before = process_cpu(emulator_pid) if emulator_pid else 0.0
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv[:4]} failed with status {status}")
    emulator = process_cpu(emulator_pid) - emulator_before if emulator_pid else 0.0
    return Run(elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, emulator)


def quiet_machine(payload: Path, drop_caches: bool) -> None:
    """The same starting point for every run.

    Dirty pages of earlier runs are written back now: the kernel would otherwise
    flush them ~30 s later, on the cores of whichever run happens to be going.
    With ``--drop-caches`` (and as root), the whole machine's page cache is
    emptied too, and the payload read back into it: the emulator's writes then
    find free memory instead of making the kernel reclaim pages, which cost up
    to a CPU-second per GiB in some runs. Off by default: a benchmark leaves the
    machine as it found it.
    """
    os.sync()
    if not drop_caches:
        return
    try:
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("1\n")
    except OSError:
        return
    with open(payload, "rb") as fh:
        while fh.read(4 * MIB):
            pass


def emulator_home(size: int) -> str | None:
    """Where the emulators keep what they receive: memory (``/dev/shm``) when it has room.

    The emulator stands in for Glacier, whose disks are not on the client's
    machine. Writing a GiB into ext4's page cache cost the emulator 0.6 to 1.8
    CPU-seconds here (tmpfs: 0.45), on the very cores the contender runs on, and
    most of the run-to-run spread. ``BENCH_EMULATOR_DIR`` chooses another place.
    """
    chosen = os.environ.get("BENCH_EMULATOR_DIR")
    if chosen:
        return chosen
    try:
        fs = os.statvfs("/dev/shm")
    except OSError:
        return None
    return "/dev/shm" if fs.f_bavail * fs.f_frsize > size + 1024 * MIB else None


def run_one(kind: str, tmp: Path, emu_home: Path, path: Path, args: argparse.Namespace,
            rnd: int) -> Run:
    if kind == "sha256x2":
        return timed([sys.executable, __file__, "--child", "sha256x2", "--path", str(path)])
    if kind == "age":
        return timed(["age", "-r", args.recipient, "-o", "/dev/null", str(path)])
    emu, url = start_emulator(emu_home / f"emu-{kind}-{rnd}")
    try:
        if kind == "stdlib":
            return timed([sys.executable, __file__, "--child", "stdlib", "--url", url,
                          "--path", str(path), "--part-mib", str(args.part_mib)], emu.pid)
        if kind == "boto3":
            child = "boto3-s3" if args.service == "s3" else "boto3"
            return timed([sys.executable, __file__, "--child", child, "--url", url,
                          "--path", str(path), "--part-mib", str(args.part_mib)], emu.pid)
        target = ('[s3]\nbucket = "bench"\ncreate = true' if args.service == "s3" else
                  '[vault]\nname = "bench"\ncreate = true')
        cfg = tmp / f"glacierd-{kind}-{rnd}.toml"
        cfg.write_text(f"""[aws]
endpoint_url = "{url}"
access_key_id = "{ACCESS}"
secret_access_key = "{SECRET}"
{target}
[state]
dir = "{tmp / f'state-{kind}-{rnd}'}"
[upload]
part_size_mib = {args.part_mib}
concurrency = {args.concurrency}
""" + (f'[encryption]\nrecipients = ["{args.recipient}"]\n' if kind == "glacierd+age" else ""))
        glacierd = [sys.executable, "-m", "glacierd.cli", "--config", str(cfg)]
        subprocess.run([*glacierd, "db", "upgrade"], check=True, stdout=subprocess.DEVNULL)
        return timed([*glacierd, "upload", str(path)], emu.pid)
    finally:
        emu.terminate()
        emu.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--part-mib", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--service", choices=("vault", "s3"), default="vault",
                        help="upload to a vault, or to an S3 bucket (boto3: upload_file)")
    parser.add_argument("--drop-caches", action="store_true",
                        help="empty the whole machine's page cache before each run (root)")
    parser.add_argument("--encrypt", action="store_true",
                        help="also glacierd with [encryption], and Debian's age alone")
    parser.add_argument("--child")
    parser.add_argument("--url", default="")
    parser.add_argument("--path", default="")
    args = parser.parse_args()
    if args.child == "boto3":
        boto3_upload(args.url, args.path, args.part_mib * MIB)
        return
    if args.child == "boto3-s3":
        boto3_s3_upload(args.url, args.path)
        return
    if args.child == "sha256x2":
        sha256_twice(args.path)
        return
    if args.child == "stdlib":
        stdlib_upload(args.url, args.path, args.part_mib * MIB)
        return
    import glacierd

    compileall.compile_dir(str(Path(glacierd.__file__).parent), quiet=1)
    kinds: tuple[str, ...] = ("sha256x2", "glacierd", "boto3")
    if args.service == "vault":
        kinds += ("stdlib",)
    if args.encrypt:
        from glacierd import age

        args.recipient = age.generate_identity()[1]
        kinds += ("glacierd+age", "age")
    runs: dict[str, list[Run]] = {k: [] for k in kinds}
    emu_place = emulator_home(args.size_mib * MIB)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as name, \
            tempfile.TemporaryDirectory(dir=emu_place) as emu_name:
        tmp, emu_home = Path(name), Path(emu_name)
        path = tmp / "payload.bin"
        with open(path, "wb") as fh:
            for _ in range(args.size_mib):
                fh.write(os.urandom(MIB))
        for rnd in range(args.rounds):
            for kind in kinds:
                quiet_machine(path, args.drop_caches)
                runs[kind].append(run_one(kind, tmp, emu_home, path, args, rnd))
                for emu_dir in emu_home.glob("emu-*"):  # keep memory or disk from filling up
                    subprocess.run(["rm", "-rf", str(emu_dir)], check=True)
    size = args.size_mib
    best = {k: min(v, key=lambda r: r.seconds) for k, v in runs.items()}
    rate = {k: size / r.seconds for k, r in best.items()}
    peak = {k: max(r.peak_mib for r in v) for k, v in runs.items()}
    budget = 64 + args.concurrency * args.part_mib
    print(f"{args.service}: file {size} MiB, parts {args.part_mib} MiB, glacierd concurrency "
          f"{args.concurrency}, best of {args.rounds} rounds; emulator data in "
          f"{emu_place or tempfile.gettempdir()}")
    print(f"{'':<13}{'MiB/s':>9}{'peak RSS MiB':>15}{'CPU s':>8}{'CPU s/GiB':>11}"
          f"{'emulator CPU s':>16}{'cores busy':>12}")
    for kind in kinds:
        r = best[kind]
        per_gib = min(x.cpu for x in runs[kind]) * 1024 / size
        print(f"{kind:<13}{rate[kind]:>9.1f}{peak[kind]:>15.1f}{r.cpu:>8.2f}{per_gib:>11.2f}"
              f"{r.emulator_cpu:>16.2f}{r.cores_busy:>12.2f}")
    target = " (target >= 2)" if args.service == "vault" else ""
    print(f"glacierd / boto3 throughput: {rate['glacierd'] / rate['boto3']:.2f}x{target}")
    # Each round's pair ran back to back: their ratio is less exposed to the machine's drift.
    paired = sorted(b.seconds / g.seconds for g, b in zip(runs["glacierd"], runs["boto3"],
                                                                   strict=True))
    print(f"  round by round: {' '.join(f'{x:.2f}x' for x in paired)}; "
          f"median {statistics.median(paired):.2f}x")
    cpu = {k: min(x.cpu for x in runs[k]) for k in kinds}
    line = (f"CPU: glacierd / sha256x2 {cpu['glacierd'] / cpu['sha256x2']:.2f}x "
            "(target <= 1.3)")
    if "stdlib" in cpu:
        line += (f"; stdlib / sha256x2 {cpu['stdlib'] / cpu['sha256x2']:.2f}x (reading and "
                 f"sending the bytes); glacierd / stdlib {cpu['glacierd'] / cpu['stdlib']:.2f}x")
    print(line)
    if args.encrypt:
        ratio = cpu["glacierd+age"] / cpu["glacierd"]
        speed = rate["glacierd+age"] / rate["glacierd"]
        print(f"encryption: glacierd+age / glacierd CPU {ratio:.2f}x, throughput {speed:.2f}x; "
              "age alone "
              f"{cpu['age'] * 1024 / size:.2f} CPU s/GiB")
    print(f"glacierd peak RSS {peak['glacierd']:.0f} MiB; budget 64 + "
          f"{args.concurrency} x {args.part_mib} = {budget} MiB")
    print(json.dumps({"mib_per_s": rate, "peak_rss_mib": peak,
                      "runs": {k: [dataclasses.asdict(r) for r in v] for k, v in runs.items()}}))

if __name__ == "__main__":
    main()
