"""The schema revisions this glacierd knows (pure: no SQLAlchemy, no Alembic), and
the check every command makes before it uses a state database."""

from __future__ import annotations

from glacierd.errors import SchemaNotUpgradedError, SchemaTooNewError

REVISIONS = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009", "0010", "0011",
             "0012")
"""Every revision in ``migrations/versions``, oldest first; the last is the head."""
HEAD = REVISIONS[-1]


def check_revision(current: str | None, where: str) -> None:
    """Refuse, with a message, a database at ``current`` (None: no schema yet)."""
    if current == HEAD:
        return
    if current is None:
        raise SchemaNotUpgradedError(
            f"{where}: the state database has no schema yet: run `glacierd db upgrade`"
        )
    if current not in REVISIONS:
        raise SchemaTooNewError(
            f"{where}: the state database is at revision {current}, newer than this glacierd "
            f"knows (head {HEAD}): upgrade glacierd"
        )
    raise SchemaNotUpgradedError(
        f"{where}: the state database is at revision {current}, older than {HEAD}: "
        "run `glacierd db upgrade`"
    )
