"""Where a small file's CPU goes: each store and backend call of the uploader, timed
on its own thread.

    python bench/percall.py [--files 500] [--size 1024] [--dir /dev/shm] [--service vault|s3]

An uploader in this process (the daemon's wiring: config, state store, vault
backend) uploads the files one after the other to an emulator process; each
store call and each request is timed with the thread's CPU clock (a call made
inside another is counted once, in the outer one). Reported: CPU-ms a file of
each, their sum and the whole, and the wall a file (``--dir``: where the state
store and the emulator's data are; on a disk, each synced commit waits for
it). Compare with the same calls in a loop of their
own (bench/smallfiles.py's peers): between requests the thread runs SQL and
the emulator takes turns on the same cores, so each costs more here.

Then, in the same run and against the same emulator, a floor: the same work
written with the standard library alone (``stdlib_floor``) -- each file read
and hashed, the same three signed requests on one kept ``http.client``
connection, and the same four transactions (the same statements on glacierd's
own schema, WAL, ``synchronous=FULL``) with ``sqlite3`` -- with none of
glacierd's checks, retries, locks or records. What a small file costs in Python on this machine
before any library is chosen. And the emulator's own CPU a file, which bounds
files/s on two cores with the client's.

``--service s3``: the same to a bucket (a one-part file is one PUT and two
transactions), with the synced commits a file counted; its floor is that PUT
and those two transactions.
"""

from __future__ import annotations

import argparse
import base64
import collections
import datetime as dt
import hashlib
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import ACCESS, SECRET, StdlibClient, process_cpu, start_emulator

STORE_CALLS = ("file_to_upload", "upload_state", "create_upload", "set_upload_id",
               "part_acknowledged", "set_completing", "finish_upload")
BACKEND_CALLS = ("start_upload", "send_part", "complete")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--dir", default="/dev/shm" if Path("/dev/shm").is_dir() else None)
    parser.add_argument("--service", choices=("vault", "s3"), default="vault")
    args = parser.parse_args()
    from glacierd import config as config_mod
    from glacierd import wiring
    from glacierd.store import schema
    from glacierd.store.db import create_store_engine
    from glacierd.store.repository import Store

    with tempfile.TemporaryDirectory(dir=args.dir) as name:
        tmp = Path(name)
        emu, url = start_emulator(tmp / "emu")
        try:
            folder = tmp / "inbox"
            folder.mkdir()
            for i in range(args.files + 1):
                (folder / f"f{i:06d}").write_bytes(os.urandom(args.size))
            cfg = tmp / "glacierd.toml"
            cfg.write_text(f'[aws]\nendpoint_url = "{url}"\naccess_key_id = "{ACCESS}"\n'
                           f'secret_access_key = "{SECRET}"\n'
                           + ('[s3]\nbucket = "small"\n' if args.service == "s3" else
                              '[vault]\nname = "small"\n')
                           + f'create = true\n[state]\ndir = "{tmp / "state"}"\n')
            config = config_mod.load(cfg)
            (tmp / "state").mkdir(mode=0o700)
            engine = create_store_engine(config.database_url)
            schema.upgrade(engine)
            engine.dispose()
            store = Store.open(config.database_url)
            backend = wiring.connect(config).backend
            uploader = wiring.make_uploader(config, store, backend)
            files = sorted(folder.iterdir())
            uploader.upload_path(files[0], root=folder)  # connections, caches: warm
            spent: collections.Counter[str] = collections.Counter()
            inside = [False]
            for owner, names, kind in ((store, STORE_CALLS, "store"),
                                       (backend, BACKEND_CALLS, "request")):
                for call in names:
                    setattr(owner, call, _timed(getattr(owner, call), f"{kind} {call}",
                                                spent, inside))
            from sqlalchemy import event

            commits = [0]
            event.listen(store.engine, "commit", lambda _conn: commits.__setitem__(
                0, commits[0] + 1))
            served = process_cpu(emu.pid)
            started, wall = time.thread_time(), time.perf_counter()
            for path in files[1:]:
                if uploader.upload_path(path, root=folder).status != "archived":
                    raise SystemExit(f"{path}: not archived")
            whole, wall = time.thread_time() - started, time.perf_counter() - wall
            served = process_cpu(emu.pid) - served
            floor = stdlib_floor(url, files[1:], tmp / "floor.db",
                                 "s3" if args.service == "s3" else "glacier")
        finally:
            emu.terminate()
            emu.wait()
    print(f"{args.files} files of {args.size} bytes to a {args.service} (state in "
          f"{args.dir or tempfile.gettempdir()}), CPU-ms a file on the uploader's thread:")
    for label, seconds in spent.most_common():
        print(f"  {label:<28}{seconds * 1000 / args.files:>8.3f}")
    print(f"  {'these calls':<28}{sum(spent.values()) * 1000 / args.files:>8.3f}")
    print(f"  {'the whole upload':<28}{whole * 1000 / args.files:>8.3f}")
    print(f"wall: {wall * 1000 / args.files:.2f} ms a file, {args.files / wall:.0f} files/s "
          "(one at a time)")
    print(f"the emulator's CPU: {served * 1000 / args.files:.3f} ms a file; "
          f"{commits[0] / args.files:.2f} synced commits a file")
    floor_cpu, floor_requests, floor_wall = floor
    requests = sum(v for k, v in spent.items() if k.startswith("request "))
    print(f"floor (the standard library alone, same requests and commits): "
          f"{floor_cpu * 1000 / args.files:.3f} CPU-ms a file, of which the requests "
          f"{floor_requests * 1000 / args.files:.3f}; wall {floor_wall * 1000 / args.files:.2f} ms")
    rest, floor_rest = whole - requests, floor_cpu - floor_requests
    print(f"glacierd / floor: {whole / floor_cpu:.2f}x in all, requests "
          f"{requests / floor_requests:.2f}x, the rest (store, files, hashes) "
          f"{rest / floor_rest:.2f}x")


class FloorStore:
    """glacierd's transactions and statements for a one-part file, with ``sqlite3``
    alone (WAL, ``synchronous=FULL``, foreign keys), on glacierd's own schema (its
    indexes and totals triggers, built by ``glacierd.store.schema``): the same
    writes with none of SQLAlchemy, types, checks or snapshots."""

    def __init__(self, db: Path) -> None:
        from glacierd.store import schema
        from glacierd.store.db import create_store_engine

        engine = create_store_engine(f"sqlite:///{db}")
        schema.upgrade(engine)
        engine.dispose()
        self.sql = sqlite3.connect(db, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
            self.sql.execute(f"PRAGMA {pragma}")

    @staticmethod
    def now() -> str:
        return f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S.%f}"  # as SQLAlchemy stores it

    def first_look(self, path: Path, st: os.stat_result,
                   upload_id: str | None = None) -> tuple[int, int]:
        """The file's record and its upload's row (before any request): (file, upload)."""
        now = self.now()
        with self.sql:  # a new path: no archive or upload to look for
            self.sql.execute("BEGIN")
            self.sql.execute("SELECT id, path, size, mtime_ns, inode, state, error, attempts, "
                             "retry_at FROM files WHERE host = 'floor' AND path = ?",
                             (str(path),)).fetchall()
            file_id = self.sql.execute(
                "INSERT INTO files (host, path, size, mtime_ns, inode, state, attempts, "
                "first_seen, updated_at, is_bundle) VALUES ('floor', ?, ?, ?, ?, 'pending', 0, "
                "?, ?, 0) RETURNING id",
                (str(path), st.st_size, st.st_mtime_ns, st.st_ino, now, now)).fetchone()[0]
            upload = self.sql.execute(
                "INSERT INTO uploads (file_id, vault, token, description, part_size, size, "
                "mtime_ns, inode, status, bytes_acked, bytes_in_flight, rate_bps, created_at, "
                "updated_at, upload_id) VALUES (?, 'floor', ?, ?, ?, ?, ?, ?, ?, 0, 0, 0.0, ?, "
                "?, ?) RETURNING id",
                (file_id, os.urandom(16).hex(), path.name, 1 << 20, st.st_size,
                 st.st_mtime_ns, st.st_ino, "initiating" if upload_id is None else "uploading",
                 now, now, upload_id)).fetchone()[0]
            self.sql.execute("UPDATE files SET state = 'uploading', updated_at = ? WHERE id = ? "
                             "RETURNING path", (now, file_id)).fetchall()
        return file_id, upload

    def upload_id(self, upload: int, upload_id: str) -> None:
        with self.sql:
            self.sql.execute("BEGIN")
            self.sql.execute("UPDATE uploads SET upload_id = ?, status = 'uploading', "
                             "updated_at = ? WHERE id = ?", (upload_id, self.now(), upload))

    def _part(self, upload: int, length: int, tree_hash: str) -> None:
        now = self.now()
        self.sql.execute('SELECT tree_hash, "offset" FROM parts WHERE upload_id = ? AND '
                         '"index" = 0', (upload,)).fetchall()
        self.sql.execute('INSERT INTO parts (upload_id, "index", "offset", length, tree_hash, '
                         "sha256, adopted, acknowledged_at) VALUES (?, 0, 0, ?, ?, ?, 0, ?)",
                         (upload, length, tree_hash, tree_hash, now))
        self.sql.execute("UPDATE uploads SET status = 'completing', tree_hash = ?, "
                         "plain_sha256 = NULL, bytes_acked = bytes_acked + ?, updated_at = ? "
                         "WHERE id = ?", (tree_hash, length, now, upload))

    def part(self, upload: int, length: int, tree_hash: str) -> None:
        """The part, and the final hash."""
        with self.sql:
            self.sql.execute("BEGIN")
            self._part(upload, length, tree_hash)

    def finish(self, path: Path, file_id: int, upload: int, archive_id: str, length: int,
               tree_hash: str, made_by_part: bool = False) -> None:
        """The archive, the upload's end, the file's state, an event (with the part
        that made the object, when no Complete was sent: S3's one PUT)."""
        now = self.now()
        with self.sql:
            self.sql.execute("BEGIN")
            if made_by_part:
                self._part(upload, length, tree_hash)
            row = self.sql.execute(
                "SELECT uploads.vault, uploads.size, uploads.tree_hash, uploads.description, "
                "uploads.mtime_ns, uploads.file_id, files.path, uploads.wire_size, "
                "uploads.plain_sha256, uploads.manifest_ids, files.is_bundle, files.size, "
                "files.mtime_ns FROM uploads JOIN files ON files.id = uploads.file_id "
                "WHERE uploads.id = ?", (upload,)).fetchone()
            self.sql.execute("SELECT id, archive_id, vault, size, tree_hash, source_path, "
                             "mtime_ns, created_at, plain_size, plain_sha256 FROM archives "
                             "WHERE archive_id = ?", (archive_id,)).fetchall()
            self.sql.execute(
                "INSERT INTO archives (archive_id, vault, size, tree_hash, description, "
                "source_path, mtime_ns, file_id, upload_id, created_at, plain_size, "
                "plain_sha256, manifest_ids, is_bundle) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "NULL, NULL, NULL, 0) RETURNING id",
                (archive_id, row[0], length, tree_hash, row[3], row[6], row[4], file_id,
                 upload, now)).fetchone()
            self.sql.execute("UPDATE uploads SET status = 'done', error = NULL, "
                             "bytes_in_flight = 0, eta_seconds = 0.0, updated_at = ? "
                             "WHERE id = ?", (now, upload))
            self.sql.execute("UPDATE files SET state = 'archived', error = NULL, "
                             "retry_at = NULL, updated_at = ? WHERE id = ?", (now, file_id))
            self.sql.execute("INSERT INTO events (at, level, kind, message, file_id) "
                             "VALUES (?, 'info', 'archived', ?, ?)",
                             (now, f"{path}: archived", file_id))

    def close(self) -> None:
        self.sql.close()


def stdlib_floor(url: str, files: list[Path], db: Path,
                 service: str) -> tuple[float, float, float]:
    """(CPU of this thread, of it in requests, wall) to upload ``files`` with
    http.client and sqlite3 alone: glacierd's requests and transactions, none
    of its care. A vault: Initiate, the part, Complete, four transactions; a
    bucket: one conditional PUT, two transactions."""
    client = StdlibClient(url, service)
    in_requests = [0.0]

    def call(*args: Any, **kw: Any) -> Any:
        started = time.thread_time()
        try:
            return client.call(*args, **kw)
        finally:
            in_requests[0] += time.thread_time() - started
    call("PUT", "/-/vaults/floor" if service == "glacier" else "/floor-bucket", {},
         expect=201 if service == "glacier" else 200)
    store = FloorStore(db)
    in_requests[0] = 0.0
    started, wall = time.thread_time(), time.perf_counter()
    for path in files:
        st = path.stat()
        if service == "s3":
            file_id, upload = store.first_look(path, st, f"put:{os.urandom(16).hex()}")
            data = path.read_bytes()
            digest = hashlib.sha256(data)
            tree_hash = digest.hexdigest()  # one leaf: tree hash = SHA-256
            call("PUT", f"/floor-bucket/{path.name}",
                 {"x-amz-storage-class": "DEEP_ARCHIVE", "If-None-Match": "*",
                  "x-amz-checksum-sha256": base64.b64encode(digest.digest()).decode()},
                 data, expect=200, payload=tree_hash)
            store.finish(path, file_id, upload, path.name, len(data), tree_hash,
                         made_by_part=True)
            continue
        file_id, upload = store.first_look(path, st)
        upload_id = call("POST", "/-/vaults/floor/multipart-uploads",
                         {"x-amz-part-size": str(1 << 20),
                          "x-amz-archive-description": path.name}).headers[
                                "x-amz-multipart-upload-id"]
        store.upload_id(upload, upload_id)
        data = path.read_bytes()
        tree_hash = hashlib.sha256(data).hexdigest()
        call("PUT", f"/-/vaults/floor/multipart-uploads/{upload_id}",
             {"x-amz-sha256-tree-hash": tree_hash,
              "Content-Range": f"bytes 0-{len(data) - 1}/*"}, data, expect=204,
             payload=tree_hash)
        store.part(upload, len(data), tree_hash)
        archive_id = call("POST", f"/-/vaults/floor/multipart-uploads/{upload_id}",
                          {"x-amz-archive-size": str(len(data)),
                           "x-amz-sha256-tree-hash": tree_hash}).headers["x-amz-archive-id"]
        store.finish(path, file_id, upload, archive_id, len(data), tree_hash)
    cpu, wall = time.thread_time() - started, time.perf_counter() - wall
    store.close()
    client.close()
    return cpu, in_requests[0], wall


def _timed(call: Callable[..., Any], label: str, spent: collections.Counter[str],
           inside: list[bool]) -> Callable[..., Any]:
    def timed(*args: Any, **kw: Any) -> Any:
        if inside[0]:
            return call(*args, **kw)
        inside[0] = True
        started = time.thread_time()
        try:
            return call(*args, **kw)
        finally:
            spent[label] += time.thread_time() - started
            inside[0] = False
    return timed


if __name__ == "__main__":
    sys.exit(main())
