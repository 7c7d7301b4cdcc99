"""How long ``glacierd status`` takes on a large catalog.

    python bench/status.py --files 100000
    python bench/status.py --files 1000000 --postgres --hosts 20

Fills a fresh state database with N archived files (plus a few uploading and
failed ones; with ``--hosts H``, spread over H hosts), folds the running
totals as the daemon's heartbeat does, then times the status document
(`glacierd status`), the full ``--json`` document (every file listed) and the
rendering, best of 5; then runs the real `glacierd status --json` (one host's
files) and `glacierd status` as processes, writing to /dev/null, and reports
their walls, CPU and peak RSS (the document is streamed: memory stays flat),
and `glacierd status --all-hosts`. ``--postgres``: on a PostgreSQL server the
bench starts (Debian's binaries, as the tests do), not SQLite.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from sqlalchemy import insert

from glacierd import status
from glacierd.store import schema
from glacierd.store.db import create_store_engine
from glacierd.store.repository import Store
from glacierd.store.tables import archives, files, uploads


def fill(store: Store, n: int, hosts: list[str]) -> None:
    now = dt.datetime.now(dt.UTC)
    with store.engine.begin() as conn:
        conn.execute(insert(files), [
            {"id": i + 1, "host": hosts[i % len(hosts)],
             "path": f"/data/photos/{i // 1000:03d}/img_{i:06d}.jpg",
             "size": 1_000_000 + i, "mtime_ns": i, "inode": i,
             "state": "archived" if i < n - 20 else ("failed" if i % 2 else "uploading"),
             "error": "ServiceUnavailableException" if i >= n - 20 and i % 2 else None,
             "attempts": 0, "first_seen": now, "updated_at": now} for i in range(n)])
        conn.execute(insert(archives), [
            {"archive_id": f"A{i:0138d}", "vault": "v", "size": 1_000_000 + i,
             "tree_hash": "ab" * 32, "source_path": f"/data/photos/{i // 1000:03d}/img_{i:06d}.jpg",
             "mtime_ns": i, "file_id": i + 1, "created_at": now} for i in range(n - 20)])
        conn.execute(insert(uploads), [
            {"file_id": i + 1, "vault": "v", "upload_id": f"U{i}", "token": f"t{i}",
             "description": "d", "part_size": 2**24, "size": 1_000_000 + i, "mtime_ns": i,
             "inode": i, "status": "uploading", "bytes_acked": 500_000,
             "created_at": now, "updated_at": now} for i in range(n - 20, n, 2)])


def best(fn: object, rounds: int = 5) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--hosts", type=int, default=1)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        if args.postgres:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
            from tests import postgres

            url = stack.enter_context(postgres.running_server()).new_database()
        else:
            url = f"sqlite:///{Path(tmp) / 'glacierd.db'}"
        engine = create_store_engine(url)
        schema.upgrade(engine)
        engine.dispose()
        hosts = [f"host{h:02d}" for h in range(args.hosts)]
        store = Store.open(url, host=hosts[0])
        fill(store, args.files, hosts)
        store.fold_totals()  # as the running daemon does at every heartbeat
        console = Console(file=io.StringIO(), width=120)
        summary = best(lambda: console.print(status.render(status.collect(store,
                                                                          all_files=False))))
        full = best(lambda: status.to_json(store))
        cfg = Path(tmp) / "state.toml"
        cfg.write_text(f'[state]\ndir = "{tmp}"\n'
                       + (f'url = "{url}"\n' if args.postgres else ""))
        # Measured from a small helper process: a child forked from this one (which
        # holds the million rows it inserted) would count this process's pages too.
        probe = ("import os, resource, subprocess, sys, time\n"
                 "t = time.perf_counter()\n"
                 "subprocess.run([sys.executable, '-m', 'glacierd.cli', '--config', sys.argv[1],"
                 " 'status', *sys.argv[2:]], stdout=open(os.devnull, 'w'), check=True,"
                 f" env={{**os.environ, 'GLACIERD_HOST': {hosts[0]!r}}})\n"
                 "r = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
                 "print(time.perf_counter() - t, r.ru_utime + r.ru_stime, r.ru_maxrss / 1024)")

        def as_process(*extra: str) -> tuple[float, ...]:
            """(wall, CPU-s, peak RSS MiB): the best of three runs of the real command."""
            runs = [tuple(float(x) for x in subprocess.run(
                [sys.executable, "-c", probe, str(cfg), *extra], check=True,
                capture_output=True, text=True).stdout.split()) for _ in range(3)]
            return min(runs, key=lambda r: r[1])

        process_wall, cpu, peak = as_process("--json")
        table_wall, table_cpu, _ = as_process()
        hosts_wall, hosts_cpu, _ = as_process("--all-hosts")
    where = "PostgreSQL" if args.postgres else "SQLite"
    print(f"{args.files} files of {args.hosts} hosts on {where}: `glacierd status` "
          f"{summary * 1000:.0f} ms in-process; `status --json` with every file (of one "
          f"host) {full * 1000:.0f} ms in-process; as a process {process_wall:.2f} s wall, "
          f"{cpu:.2f} CPU-s, peak RSS {peak:.0f} MiB; `glacierd status` (the table) as a "
          f"process {table_wall * 1000:.0f} ms wall, {table_cpu * 1000:.0f} ms CPU; "
          f"`status --all-hosts` {hosts_wall * 1000:.0f} ms wall, "
          f"{hosts_cpu * 1000:.0f} ms CPU")


if __name__ == "__main__":
    main()
