"""A real PostgreSQL server for the tests, started by the suite itself: Debian's
``postgresql`` binaries (``.ci/run`` installs the package), ``initdb`` into a
temporary folder, listening only on a unix socket there, stopped at the end.
Each test gets a database of its own. Without the binaries the tests that need
it skip (saying so)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import count
from pathlib import Path


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


BIN = _binaries()


def _as_server_user() -> list[str]:
    """PostgreSQL refuses to run as root: run it as ``postgres`` then."""
    if os.geteuid() != 0:
        return []
    pwd.getpwnam("postgres")  # KeyError: no such user
    return ["runuser", "-u", "postgres", "--"]


class Server:
    def __init__(self, socket_dir: Path, data: Path, prefix: list[str], options: str,
                 log: Path) -> None:
        self.socket_dir = socket_dir
        self._data, self._prefix, self._options, self._log = data, prefix, options, log
        self._names = count(1)

    def restart(self) -> None:
        """Stop the server at once (every connection lost) and start it again."""
        assert BIN is not None
        subprocess.run([*self._prefix, str(BIN / "pg_ctl"), "-D", str(self._data), "-m",
                        "immediate", "-w", "restart", "-o", self._options, "-l",
                        str(self._log)], check=True, capture_output=True)

    def new_database(self) -> str:
        """A fresh, empty database; its SQLAlchemy URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(host=str(self.socket_dir), user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@/{name}?host={self.socket_dir}"


@contextmanager
def running_server() -> Iterator[Server]:
    assert BIN is not None
    prefix = _as_server_user()
    home = Path(tempfile.mkdtemp(prefix="glacierd-pg-"))
    data, sockets = home / "data", home / "run"
    sockets.mkdir()
    if prefix:
        shutil.chown(home, "postgres")
        shutil.chown(sockets, "postgres")
    subprocess.run([*prefix, str(BIN / "initdb"), "-D", str(data), "-U", "postgres",
                    "-A", "trust", "--no-sync", "-E", "UTF8"],
                   check=True, capture_output=True)
    # fsync off: a stopped server loses nothing the OS holds (tests never crash the OS).
    # synchronous_commit off on purpose: a server set up for speed acknowledges commits
    # before they are written, and glacierd must make its own durable (store.db).
    options = (f"-k {sockets} -c listen_addresses='' -c fsync=off -c full_page_writes=off "
               "-c synchronous_commit=off -c max_connections=200")
    subprocess.run([*prefix, str(BIN / "pg_ctl"), "-D", str(data), "-o", options,
                    "-l", str(home / "log"), "-w", "start"], check=True, capture_output=True)
    try:
        yield Server(sockets, data, prefix, options, home / "log")
    finally:
        subprocess.run([*prefix, str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
