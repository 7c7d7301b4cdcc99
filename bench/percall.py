"""Where a small file's CPU goes: each store and backend call of the uploader, timed
on its own thread.

    python bench/percall.py [--files 500] [--size 1024] [--dir /dev/shm]

An uploader in this process (the daemon's wiring: config, state store, vault
backend) uploads the files one after the other to an emulator process; each
store call and each request is timed with the thread's CPU clock (a call made
inside another is counted once, in the outer one). Reported: CPU-ms a file of
each, their sum and the whole, and the wall a file (``--dir``: where the state
store and the emulator's data are; on a disk, each synced commit waits for
it). Compare with the same calls in a loop of their
own (bench/smallfiles.py's peers): between requests the thread runs SQL and
the emulator takes turns on the same cores, so each costs more here.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import ACCESS, SECRET, start_emulator

STORE_CALLS = ("file_to_upload", "upload_state", "create_upload", "set_upload_id",
               "part_acknowledged", "set_completing", "finish_upload")
BACKEND_CALLS = ("start_upload", "send_part", "complete")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--dir", default="/dev/shm" if Path("/dev/shm").is_dir() else None)
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
                           f'secret_access_key = "{SECRET}"\n[vault]\nname = "small"\n'
                           f'create = true\n[state]\ndir = "{tmp / "state"}"\n')
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
            started, wall = time.thread_time(), time.perf_counter()
            for path in files[1:]:
                if uploader.upload_path(path, root=folder).status != "archived":
                    raise SystemExit(f"{path}: not archived")
            whole, wall = time.thread_time() - started, time.perf_counter() - wall
        finally:
            emu.terminate()
            emu.wait()
    print(f"{args.files} files of {args.size} bytes in {args.dir or tempfile.gettempdir()}, "
          "CPU-ms a file on the uploader's thread:")
    for label, seconds in spent.most_common():
        print(f"  {label:<28}{seconds * 1000 / args.files:>8.3f}")
    print(f"  {'these calls':<28}{sum(spent.values()) * 1000 / args.files:>8.3f}")
    print(f"  {'the whole upload':<28}{whole * 1000 / args.files:>8.3f}")
    print(f"wall: {wall * 1000 / args.files:.2f} ms a file, {args.files / wall:.0f} files/s "
          "(one at a time)")


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
