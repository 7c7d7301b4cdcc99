"""The schema gate: ``glacierd db upgrade`` moves a database forward; every
other command refuses a database that is not at the revision it knows.

The gate reads ``alembic_version`` with plain SQL against the revisions this
glacierd ships (``REVISIONS``; a test keeps them equal to Alembic's own
view), so everyday commands never import Alembic: that saves about 15 MiB of
resident memory and a good part of start-up. Only ``upgrade`` runs Alembic.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, inspect, text

from glacierd.errors import SchemaTooNewError, StoreError

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

from .revisions import HEAD, REVISIONS, check_revision

__all__ = ["HEAD", "REVISIONS", "alembic_config", "current_revision", "require_current",
           "upgrade"]


def alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    location = Path(str(resources.files("glacierd.migrations")))
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(location))
    return cfg


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        value = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return str(value) if value is not None else None


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the database to the newest revision; returns (before, after)."""
    from alembic import command

    before = current_revision(engine)
    if before is not None and before not in REVISIONS:
        raise SchemaTooNewError(
            f"the state database is at revision {before}, which this glacierd does not know "
            "(it was written by a newer version): upgrade glacierd; no changes were made"
        )
    cfg = alembic_config()
    if engine.dialect.name != "sqlite":  # PostgreSQL's DDL is transactional as it is
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        return before, HEAD
    migrating = _sqlite_migration_engine(engine)
    try:
        with migrating.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise StoreError(f"the upgrade would leave rows pointing nowhere "
                                 f"({broken[:3]}); nothing was changed")
    finally:
        migrating.dispose()
    return before, HEAD


def _sqlite_migration_engine(engine: Engine) -> Engine:
    """An engine for migrating a SQLite store, all of it in one transaction.

    Python's ``sqlite3`` begins transactions only before INSERT and the like:
    left to it, the CREATE, DROP and ALTER of a migration would each commit on
    their own, and a failure would leave a half-changed database behind. Here
    the transaction is begun explicitly, so everything rolls back together.
    And SQLite's way to change a table (Alembic's batch mode) copies it and
    drops the old one, which other tables' rows refer to: foreign keys are off
    for the migration (checked whole before it commits)."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.pool import NullPool

    from .sqlitefile import BUSY_TIMEOUT_MS

    migrating = create_engine(engine.url, poolclass=NullPool)

    @event.listens_for(migrating, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # no implicit BEGIN: ours, below
        dbapi_conn.execute("PRAGMA foreign_keys=OFF")
        dbapi_conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    @event.listens_for(migrating, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return migrating


def require_current(engine: Engine, where: str) -> None:
    """Refuse, with a message, a database this glacierd cannot safely use."""
    check_revision(current_revision(engine), where)
