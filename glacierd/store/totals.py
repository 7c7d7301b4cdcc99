"""Running totals of the catalog, kept by the database itself (pure: SQL text).

``glacierd status`` at a million files must not scan a million rows to say how
many files are in each state or how many bytes are archived. Triggers on
``files`` and ``archives`` append a *delta* row to ``totals`` for every change
that moves a count (a file changes state or size, an archive becomes live or
dead); ``status`` sums the rows by ``(kind, key)``. Appending, rather than
updating one counter row, means concurrent writers (several hosts on one
PostgreSQL catalog) never wait on each other's counter or deadlock over two of
them. The daemon's housekeeping folds the deltas into one row per key
(``FOLD_SQL``, atomic: it deletes exactly the rows it sums, with RETURNING), so
the table stays a few rows long.

Kinds: ``files`` by state (files, bytes; bundles under ``bundle:STATE``); ``packed``
by vault: live packed files (revision 0010); ``archives`` by vault or bucket, live
ones only (``archive_id`` set, not deleted), with the count and bytes of those
under ``SMALL_BYTES`` (what the 128 KB minimum of the IA classes pads).

A migration that rebuilds ``files`` or ``archives`` (SQLite's batch mode copies
the table) drops their triggers: it must create them again with
``create_statements`` (a test checks the totals after every upgrade).
"""

from __future__ import annotations

SMALL_BYTES = 128 * 1024
"""Archives below this are counted apart: the IA classes bill each as 128 KB."""

FILES, ARCHIVES, PACKED = "files", "archives", "packed"
BUNDLE_PREFIX = "bundle:"

READ_SQL = ("SELECT kind, key, sum(n), sum(bytes), sum(small_n), sum(small_bytes) "
            "FROM totals GROUP BY kind, key")

# Rebuilds every total from the tables (revision 0009's migration).
RECOUNT_SQL = (
    "INSERT INTO totals (kind, key, n, bytes, small_n, small_bytes) "
    "SELECT 'files', state, count(*), coalesce(sum(size), 0), 0, 0 FROM files GROUP BY state",
    "INSERT INTO totals (kind, key, n, bytes, small_n, small_bytes) "
    "SELECT 'archives', vault, count(*), coalesce(sum(size), 0), "
    f"sum(CASE WHEN size < {SMALL_BYTES} THEN 1 ELSE 0 END), "
    f"coalesce(sum(CASE WHEN size < {SMALL_BYTES} THEN size ELSE 0 END), 0) "
    "FROM archives WHERE archive_id IS NOT NULL AND deleted_at IS NULL GROUP BY vault",
)

FOLD_DELETE_SQL = ("DELETE FROM totals WHERE id <= :upto "
                   "RETURNING kind, key, n, bytes, small_n, small_bytes")
"""The fold's first half: the rows it removes are exactly the rows it sums (a
delta committed meanwhile by another host stays for the next fold)."""

# What an archives row counts toward, and when: (kind, condition on the row).
_ARCHIVE_KINDS = (("archives", "{r}.archive_id IS NOT NULL AND {r}.deleted_at IS NULL"),)
_PACKED_KIND = ("packed", "{r}.bundle_row IS NOT NULL AND {r}.deleted_at IS NULL")
"""Revision 0010: live packed files by vault (what packing saved is their count)."""


def _archive_kinds(bundles: bool) -> tuple[tuple[str, str], ...]:
    return (*_ARCHIVE_KINDS, _PACKED_KIND) if bundles else _ARCHIVE_KINDS


def _archive_values(kind: str, row: str, sign: str) -> str:
    return (f"'{kind}', {row}.vault, {sign}1, {sign}{row}.size, "
            f"CASE WHEN {row}.size < {SMALL_BYTES} THEN {sign}1 ELSE 0 END, "
            f"CASE WHEN {row}.size < {SMALL_BYTES} THEN {sign}{row}.size ELSE 0 END")


def _file_key(row: str, bundles: bool, hosts: bool) -> str:
    key = (f"CASE WHEN {row}.is_bundle THEN '{BUNDLE_PREFIX}' || {row}.state "
           f"ELSE {row}.state END" if bundles else f"{row}.state")
    return f"{key} || '{HOST_SEPARATOR}' || {row}.host" if hosts else key


def _file_values(row: str, sign: str, bundles: bool = True, hosts: bool = True) -> str:
    """A file's delta, keyed ``STATE@HOST`` (revision 0011); a bundle's (0010) is
    ``bundle:STATE``: the user's files by state are the keys without it."""
    return f"'files', {_file_key(row, bundles, hosts)}, {sign}1, {sign}{row}.size, 0, 0"


HOST_SEPARATOR = "@"
RECOUNT_FILES_BY_HOST = (
    "INSERT INTO totals (kind, key, n, bytes, small_n, small_bytes) "
    f"SELECT 'files', {_file_key('files', True, True)}, count(*), coalesce(sum(size), 0), "
    f"0, 0 FROM files GROUP BY {_file_key('files', True, True)}")
"""Revision 0011: the files' totals counted again, by state and host."""


def files_of(kept: Totals, host: str | None) -> dict[str, tuple[int, int]]:
    """(files, bytes) by state of ``host``'s files (None: every host's), bundles
    left out; from running totals read at revision 0011 or later."""
    out: dict[str, tuple[int, int]] = {}
    for (kind, key), (n, size, _sn, _sb) in kept.items():
        state, _, owner = key.rpartition(HOST_SEPARATOR)
        if kind != FILES or state.startswith(BUNDLE_PREFIX) or host not in (None, owner):
            continue
        had = out.get(state, (0, 0))
        out[state] = (had[0] + n, had[1] + size)
    return {state: v for state, v in out.items() if v[0]}


def bundles_of(kept: Totals, host: str | None) -> dict[str, int]:
    """Bundles by state of ``host`` (None: every host)."""
    out: dict[str, int] = {}
    for (kind, key), (n, *_rest) in kept.items():
        state, _, owner = key.rpartition(HOST_SEPARATOR)
        if kind == FILES and state.startswith(BUNDLE_PREFIX) and host in (None, owner):
            name = state.removeprefix(BUNDLE_PREFIX)
            out[name] = out.get(name, 0) + n
    return {state: n for state, n in out.items() if n}


def hosts_of(kept: Totals) -> list[str]:
    return sorted({key.rpartition(HOST_SEPARATOR)[2] for kind, key in kept if kind == FILES})


_INTO = "INSERT INTO totals (kind, key, n, bytes, small_n, small_bytes)"
_INSERT = _INTO + " VALUES"

TRIGGER_NAMES = ("totals_files_insert", "totals_files_delete", "totals_files_update",
                 "totals_archives_insert", "totals_archives_delete", "totals_archives_update")


def _archive_deltas(bundles: bool, *, old: bool, new: bool) -> str:
    """SQLite trigger body: take the old row out of what it counted toward, put the
    new one in."""
    out = ""
    for kind, when in _archive_kinds(bundles):
        if old:
            out += f"{_INTO} SELECT {_archive_values(kind, 'OLD', '-')} " \
                   f"WHERE {when.format(r='OLD')}; "
        if new:
            out += f"{_INTO} SELECT {_archive_values(kind, 'NEW', '')} " \
                   f"WHERE {when.format(r='NEW')}; "
    return out


def _sqlite_statements(bundles: bool, hosts: bool) -> list[str]:
    watched = "archive_id, deleted_at, size, vault" + (", bundle_row" if bundles else "")
    return [
        f"CREATE TRIGGER totals_files_insert AFTER INSERT ON files BEGIN "
        f"{_INSERT} ({_file_values('NEW', '', bundles, hosts)}); END",
        f"CREATE TRIGGER totals_files_delete AFTER DELETE ON files BEGIN "
        f"{_INSERT} ({_file_values('OLD', '-', bundles, hosts)}); END",
        "CREATE TRIGGER totals_files_update AFTER UPDATE OF state, size ON files "
        "WHEN OLD.state IS NOT NEW.state OR OLD.size IS NOT NEW.size BEGIN "
        f"{_INSERT} ({_file_values('OLD', '-', bundles, hosts)}), "
        f"({_file_values('NEW', '', bundles, hosts)}); END",
        "CREATE TRIGGER totals_archives_insert AFTER INSERT ON archives BEGIN "
        f"{_archive_deltas(bundles, old=False, new=True)}END",
        "CREATE TRIGGER totals_archives_delete AFTER DELETE ON archives BEGIN "
        f"{_archive_deltas(bundles, old=True, new=False)}END",
        # Any change of liveness, size or vault: take the old row out, put the new in.
        f"CREATE TRIGGER totals_archives_update AFTER UPDATE OF {watched} ON archives BEGIN "
        f"{_archive_deltas(bundles, old=True, new=True)}END",
    ]


def _postgresql_statements(bundles: bool, hosts: bool) -> list[str]:
    files_fn = (
        "CREATE FUNCTION totals_files() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP <> 'INSERT' THEN {_INSERT} ({_file_values('OLD', '-', bundles, hosts)}); "
        "END IF; "
        f"IF TG_OP <> 'DELETE' THEN {_INSERT} ({_file_values('NEW', '', bundles, hosts)}); "
        "END IF; "
        "RETURN NULL; END $$")
    body = ""
    for kind, when in _archive_kinds(bundles):
        body += (f"IF TG_OP <> 'INSERT' AND {when.format(r='OLD')} THEN "
                 f"{_INSERT} ({_archive_values(kind, 'OLD', '-')}); END IF; "
                 f"IF TG_OP <> 'DELETE' AND {when.format(r='NEW')} THEN "
                 f"{_INSERT} ({_archive_values(kind, 'NEW', '')}); END IF; ")
    archives_fn = ("CREATE FUNCTION totals_archives() RETURNS trigger LANGUAGE plpgsql AS $$ "
                   f"BEGIN {body}RETURN NULL; END $$")
    each = "FOR EACH ROW EXECUTE FUNCTION"
    watched = "archive_id, deleted_at, size, vault" + (", bundle_row" if bundles else "")
    return [
        files_fn, archives_fn,
        f"CREATE TRIGGER totals_files_insert AFTER INSERT ON files {each} totals_files()",
        f"CREATE TRIGGER totals_files_delete AFTER DELETE ON files {each} totals_files()",
        "CREATE TRIGGER totals_files_update AFTER UPDATE OF state, size ON files FOR EACH ROW "
        "WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.size IS DISTINCT FROM NEW.size) "
        "EXECUTE FUNCTION totals_files()",
        f"CREATE TRIGGER totals_archives_insert AFTER INSERT ON archives {each} "
        "totals_archives()",
        f"CREATE TRIGGER totals_archives_delete AFTER DELETE ON archives {each} "
        "totals_archives()",
        f"CREATE TRIGGER totals_archives_update AFTER UPDATE OF {watched} ON archives {each} "
        "totals_archives()",
    ]


def create_statements(dialect: str, revision: str) -> list[str]:
    """The triggers (and PostgreSQL's trigger functions) for ``dialect``, as
    schema ``revision`` has them (a migration builds its own revision's)."""
    bundles, hosts = revision >= "0010", revision >= "0011"
    if dialect == "sqlite":
        return _sqlite_statements(bundles, hosts)
    if dialect == "postgresql":
        return _postgresql_statements(bundles, hosts)
    raise ValueError(f"no running totals for the {dialect} dialect")


def drop_statements(dialect: str) -> list[str]:
    tables = {name: name.split("_")[1] for name in TRIGGER_NAMES}
    if dialect == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {name}" for name in TRIGGER_NAMES]
    return ([f"DROP TRIGGER IF EXISTS {name} ON {table}" for name, table in tables.items()]
            + ["DROP FUNCTION IF EXISTS totals_files()",
               "DROP FUNCTION IF EXISTS totals_archives()"])


Totals = dict[tuple[str, str], tuple[int, int, int, int]]
"""(kind, key) -> (n, bytes, small_n, small_bytes)."""


def summed(rows: list[tuple[object, ...]]) -> Totals:
    """``READ_SQL``'s rows (or the fold's) as a dict, keys with nothing left dropped."""
    out: dict[tuple[str, str], list[int]] = {}
    for kind, key, *values in rows:
        acc = out.setdefault((str(kind), str(key)), [0, 0, 0, 0])
        for i, v in enumerate(values):
            acc[i] += int(v or 0)  # type: ignore[call-overload]
    return {k: (v[0], v[1], v[2], v[3]) for k, v in out.items() if any(v)}
