"""Shared fixtures. Every test runs with no AWS configuration from the host:
credentials come only from what a test sets, and instance metadata is off
unless a test points it at its own local fake."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from glacierd.backends.vault import VaultBackend
from glacierd.emulator import Emulator
from glacierd.glacier import GlacierClient, RetryPolicy
from glacierd.store.repository import Store
from glacierd.uploader import Uploader, UploadSettings

if TYPE_CHECKING:
    from sqlalchemy import Engine

MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def isolated_aws_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def fast_policy(attempts: int = 10, seed: int = 0) -> RetryPolicy:
    """Retries without real waiting: delays are computed and recorded, not slept."""
    policy = RetryPolicy(max_attempts=attempts, base=0.001, cap=0.01, rng=random.Random(seed))
    policy.slept = []  # type: ignore[attr-defined]
    policy.sleep = policy.slept.append  # type: ignore[attr-defined]
    return policy


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    with Emulator(tmp_path / "emulator") as emu:
        yield emu


def client_for(emu: Emulator, **kw: object) -> GlacierClient:
    kw.setdefault("retry_policy", fast_policy())
    return GlacierClient("us-east-1", endpoint_url=emu.endpoint_url,
                         credentials=emu.credentials, **kw)  # type: ignore[arg-type]


@pytest.fixture
def client(emulator: Emulator) -> GlacierClient:
    return client_for(emulator)


def random_file_bytes(size: int, seed: int = 3) -> bytes:
    return random.Random(seed).randbytes(size)


def random_file(path: Path, size: int, seed: int = 0) -> bytes:
    data = random_file_bytes(size, seed)
    path.write_bytes(data)
    return data


@contextmanager
def emulator_process(data_dir: Path, *extra: str) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "glacierd.emulator", "--port", "0", "--data-dir", str(data_dir),
         "--test-endpoints", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), (url, proc.stderr.read() if proc.stderr else "")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def aws_config(url: str, vault: str) -> str:
    """The [aws], [vault] and [state] sections every test config starts with."""
    from glacierd.emulator import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY

    return f"""
[aws]
endpoint_url = "{url}"
access_key_id = "{DEFAULT_ACCESS_KEY}"
secret_access_key = "{DEFAULT_SECRET_KEY}"
[vault]
name = "{vault}"
create = true
[state]
dir = "state"
"""


def query_state(state_db: Path, sql: str) -> list[tuple[object, ...]]:
    """Read another process's state database (read-only; empty until it exists)."""
    import sqlite3

    if not state_db.exists():
        return []
    with sqlite3.connect(f"file:{state_db}?mode=ro", uri=True, timeout=10) as conn:
        try:
            return list(conn.execute(sql).fetchall())
        except sqlite3.OperationalError:  # no schema yet
            return []


def count_rows(state_db: Path, table: str) -> int:
    rows = query_state(state_db, f"SELECT count(*) FROM {table}")
    return int(rows[0][0]) if rows else 0  # type: ignore[call-overload]


def store_at_head(tmp_path: Path) -> Store:
    """A fresh state database, upgraded to the newest schema."""
    from glacierd.store import schema
    from glacierd.store.db import create_store_engine

    url = f"sqlite:///{tmp_path / 'state' / 'glacierd.db'}"
    engine = create_store_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    return Store.open(url)


def vault_uploader(tmp_path: Path, emulator: Emulator, **settings: object) -> Uploader:
    """An uploader to vault "v" of ``emulator`` (created here), 1 MiB parts unless told,
    with its state store at head under ``tmp_path``."""
    client = client_for(emulator)
    client.create_vault("v")
    settings.setdefault("part_size", MIB)
    return Uploader(store_at_head(tmp_path), VaultBackend(client, "v"),
                    UploadSettings(**settings))  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server (every service it implements), an implementation nobody here wrote."""
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    """A PostgreSQL server the suite starts itself (``tests/postgres.py``)."""
    from tests import postgres

    if postgres.BIN is None:
        pytest.skip("PostgreSQL's server is not installed (.ci/run installs postgresql)")
    with postgres.running_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind the store runs on, as a URL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'glacierd.db'}"
    server = request.getfixturevalue("postgres_server")
    return str(server.new_database())  # type: ignore[attr-defined]


def store_for(url: str) -> Store:
    """A store at ``url``, upgraded to the newest schema."""
    from glacierd.store import schema
    from glacierd.store.db import create_store_engine

    engine = create_store_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    return Store.open(url)


def engine_at(url: str, revision: str) -> Engine:
    """An engine on a new database at an older schema ``revision`` (upgrade tests)."""
    from alembic import command

    from glacierd.store import schema
    from glacierd.store.db import create_store_engine

    engine = create_store_engine(url)
    cfg = schema.alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return engine


_TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def statements_of(engine: Engine) -> list[str]:
    """Every statement the database's driver runs from now on, whoever gives it:
    SQLAlchemy, or the store's per-file path on the driver's cursor
    (``glacierd.store.direct``), which fires no SQLAlchemy event. Transaction
    control and the pool's liveness checks are left out. Connections made before
    are closed (``dispose``): the new ones are watched from their start."""
    from sqlalchemy import event

    seen: list[str] = []

    def keep(statement: str) -> None:
        words = statement.split(None, 1)
        if not words or words[0].upper() in _TRANSACTION_CONTROL or statement.strip(
                "; ").lower() == "select 1":
            return
        if seen and statement == seen[-1] and "RETURNING" in statement:
            return  # SQLite traces a statement with RETURNING again for its rows
        seen.append(statement)

    engine.dispose()
    if engine.dialect.name == "sqlite":
        def watch(dbapi_conn: Any, _record: object) -> None:
            dbapi_conn.set_trace_callback(keep)
    else:
        import psycopg

        class Watched(psycopg.Cursor[Any]):
            def execute(self, query: Any, *args: Any, **kw: Any) -> Any:
                keep(str(query))
                return super().execute(query, *args, **kw)

        def watch(dbapi_conn: Any, _record: object) -> None:
            dbapi_conn.cursor_factory = Watched
    event.listen(engine, "connect", watch)
    return seen


class DriverWatch:
    """A database driver's connection whose cursors show ``before`` each statement
    before it runs (``before`` may raise, as the database would: a full disk).
    Made by an engine's ``do_connect`` event; everything else is the driver's."""

    def __init__(self, connection: Any, before: Callable[[str], None]) -> None:
        object.__setattr__(self, "_connection", connection)
        object.__setattr__(self, "_before", before)

    def cursor(self, *args: Any) -> _WatchedCursor:
        return _WatchedCursor(self._connection.cursor(*args), self._before)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._connection, name, value)


class _WatchedCursor:
    def __init__(self, cursor: Any, before: Callable[[str], None]) -> None:
        self._cursor = cursor
        self._before = before

    def execute(self, statement: str, *args: Any) -> Any:
        self._before(statement)
        return self._cursor.execute(statement, *args)

    def executemany(self, statement: str, *args: Any) -> Any:
        self._before(statement)
        return self._cursor.executemany(statement, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor)
