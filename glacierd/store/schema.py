"""The schema gate: ``glacierd db upgrade`` moves a database forward; every
other command refuses a database that is not at the revision it knows."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from glacierd.errors import SchemaNotUpgradedError, SchemaTooNewError


def _alembic_config() -> AlembicConfig:
    location = Path(str(resources.files("glacierd.migrations")))
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(location))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the database to the newest revision; returns (before, after)."""
    before = current_revision(engine)
    known = {s.revision for s in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}
    if before is not None and before not in known:
        raise SchemaTooNewError(
            f"the state database is at revision {before}, which this glacierd does not know "
            "(it was written by a newer version): upgrade glacierd; no changes were made"
        )
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return before, head_revision()


def require_current(engine: Engine, where: str) -> None:
    """Refuse, with a message, a database this glacierd cannot safely use."""
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if current is None:
        raise SchemaNotUpgradedError(
            f"{where}: the state database has no schema yet: run `glacierd db upgrade`"
        )
    known = {s.revision for s in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}
    if current not in known:
        raise SchemaTooNewError(
            f"{where}: the state database is at revision {current}, newer than this glacierd "
            f"knows (head {head}): upgrade glacierd"
        )
    raise SchemaNotUpgradedError(
        f"{where}: the state database is at revision {current}, older than {head}: "
        "run `glacierd db upgrade`"
    )
