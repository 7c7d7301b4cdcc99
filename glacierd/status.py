"""What ``glacierd status`` shows, read from the store alone.

``collect`` builds one document (the daemon need not answer; this works while
it runs, through SQLite's WAL). It uses aggregate queries and indexes, so it
stays fast on a catalog of a million files. ``render`` draws it with rich;
``--json`` prints it as it is.

The queries are plain SQL run through a ``glacierd.store.reader.Reader``: on
SQLite, the standard library's ``sqlite3`` (no SQLAlchemy to import, which
cost ``status`` more than all its work on a small store); elsewhere the
store's engine runs the same SQL. Paths come back in the store's escaped form
(``glacierd.pathtext``), times as text on SQLite (``reader.as_time``).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from glacierd import humanize, locks, pathtext
from glacierd.hostname import this_host
from glacierd.pathtext import guard, shown
from glacierd.store import totals
from glacierd.store.reader import EngineReader, Reader, as_time, running_totals
from glacierd.store.sqlitefile import sqlite_path
from glacierd.store.states import (
    UNFINISHED,
    FileState,
    MigrationStatus,
    RestoreStatus,
    UploadStatus,
    utcnow,
)

if TYPE_CHECKING:
    from glacierd.store.repository import Store

STALE_HEARTBEAT = dt.timedelta(seconds=30)


def _sql_list(values: tuple[UploadStatus, ...]) -> str:
    return "(" + ", ".join(f"'{v.value}'" for v in values) + ")"


# The stored values of the store's enums (``glacierd.store.states``: pure, no
# SQLAlchemy), as the plain SQL below uses them.
ARCHIVED, PENDING, UPLOADING, FAILED = (FileState.ARCHIVED.value, FileState.PENDING.value,
                                        FileState.UPLOADING.value, FileState.FAILED.value)
ACTIVE_UPLOADS = _sql_list(UNFINISHED)
SENDING_UPLOADS = _sql_list((UploadStatus.UPLOADING, UploadStatus.COMPLETING))
RESTORE_DONE = RestoreStatus.DONE.value
MIGRATION_DONE, MIGRATION_RETRIEVING = MigrationStatus.DONE.value, MigrationStatus.RETRIEVING.value


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_running(pid: int, heartbeat: dt.datetime | None, stopped: dt.datetime | None,
                here: bool = True) -> bool:
    """Alive: a fresh heartbeat, not stopped, and (``here``: on this machine) its
    process exists; another host's pid means nothing here."""
    return bool(heartbeat is not None and stopped is None and (not here or _pid_alive(pid))
                and utcnow() - heartbeat < STALE_HEARTBEAT)


def daemon_running(store: Store, daemon: Any = None) -> bool:
    """Is a daemon alive on this store: its process exists and its heartbeat is fresh?"""
    daemon = daemon or store.daemon()
    return bool(daemon and _is_running(daemon.pid, daemon.heartbeat_at, daemon.stopped_at))


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def _path(stored: str) -> str:
    """A stored (escaped) path as status shows it."""
    return shown(pathtext.unescape(stored))


def _lock_dir(url: str) -> Path | None:
    """Where uploads hold their per-file locks: ``locks/`` beside a SQLite store."""
    path = sqlite_path(url)
    return path.parent / "locks" if path is not None else None


def reader_of(source: Store | Reader) -> Reader:
    """A reader for a ``Store`` (tests, the daemon) or the reader itself."""
    if hasattr(source, "engine"):
        return EngineReader(source.engine, source.url)
    return source


def _one(reader: Reader, sql: str, params: Mapping[str, Any] | None = None) -> tuple[Any, ...]:
    rows = reader.rows(sql, params)
    return rows[0] if rows else ()


def _filter(state: str | None, path_prefix: str | None,
            host: str) -> tuple[str, dict[str, Any]]:
    """``AND ...`` for ``host``'s files, in one state, and at or below a path."""
    sql, params = " AND f.host = :host", {"host": host}
    if state:
        sql += " AND f.state = :state"
        params["state"] = state
    if path_prefix:
        escaped = pathtext.escape(path_prefix)
        below = escaped.rstrip("/") + "/"
        like = below.replace("/", "//").replace("%", "/%").replace("_", "/_")
        sql += " AND (f.path = :prefix OR f.path LIKE :below ESCAPE '/')"
        params.update(prefix=escaped, below=like + "%")
    return sql, params


def host_of(source: Store | Reader, host: str | None) -> str:
    """Whose files a status document tells: ``host``, the store's, or this machine's."""
    return host or getattr(source, "host", None) or this_host()


def collect(source: Store | Reader, *, all_files: bool = True, recent: int = 10,
            state: str | None = None, path_prefix: str | None = None,
            priced: Priced | None = None, host: str | None = None) -> dict[str, Any]:
    """The status document of ``host``'s files (default: this machine's; a catalog
    on PostgreSQL may hold several hosts'). ``state`` and ``path_prefix`` filter
    the ``files`` array (and the failures); the counts are always of every file.
    ``priced``: add the target's storage cost a month (``glacierd cost`` has the
    rest: the vault or bucket's, every host's archives)."""
    host = host_of(source, host)
    reader = reader_of(source)
    now = utcnow()
    daemon = _one(reader, "SELECT pid, started_at, heartbeat_at, stopped_at, vault, status "
                          "FROM daemon WHERE host = :host", {"host": host})
    running = False
    started = heartbeat = None
    if daemon:
        started, heartbeat = as_time(daemon[1]), as_time(daemon[2])
        running = _is_running(daemon[0], heartbeat, as_time(daemon[3]))
    doc: dict[str, Any] = {
        "daemon": {
            "running": running,
            "pid": daemon[0] if daemon and running else None,
            "started_at": _iso(started) if daemon else None,
            "uptime_seconds": (now - started).total_seconds()
            if daemon and running and started else None,
            "last_heartbeat": _iso(heartbeat) if daemon else None,
            "vault": daemon[4] if daemon else None,
            "status": daemon[5] if daemon else None,
        },
    }
    kept = running_totals(reader)  # counts without a scan of a million rows
    mine = totals.files_of(kept, host)
    doc["counts"] = {st: n for st, (n, _size) in sorted(mine.items())}
    active = reader.rows(
        "SELECT f.path, coalesce(u.wire_size, u.size), u.bytes_acked, u.bytes_in_flight, "
        # the few uploads under way first (CROSS JOIN keeps SQLite's planner to this
        # order: by the host it would walk every file of it), then their files
        "u.rate_bps, u.eta_seconds, u.status FROM uploads u CROSS JOIN files f "
        f"WHERE f.id = u.file_id AND f.host = :host AND u.status IN {ACTIVE_UPLOADS} "
        "ORDER BY u.id", {"host": host})
    lock_dir = _lock_dir(reader.url)

    def interrupted(stored: str) -> bool:
        """Its process is gone: nobody holds the file's upload lock."""
        return lock_dir is not None and not locks.held(lock_dir, pathtext.unescape(stored))

    # an encrypted upload's size is its age file's: what its parts cover
    doc["uploads"] = [
        {"path": _path(path), "size": size, "bytes_acked": acked,
         "bytes_in_flight": in_flight, "rate_bps": rate, "eta_seconds": eta, "status": status,
         "interrupted": interrupted(path)}
        for path, size, acked, in_flight, rate, eta, status in active]
    for u in doc["uploads"]:
        if u["interrupted"]:  # nothing is moving: no rate, no ETA
            u["bytes_in_flight"], u["rate_bps"], u["eta_seconds"] = 0, 0.0, None
    queued = [sum(mine.get(st, (0, 0))[i] for st in (PENDING, UPLOADING)) for i in (0, 1)]
    archived_bytes = sum(values[1] for (kind, _), values in kept.items() if kind == "archives")
    moving = [u for u in doc["uploads"] if not u["interrupted"]]
    rate = sum(u["rate_bps"] for u in moving)
    left = int(queued[1]) - sum(u["bytes_acked"] for u in doc["uploads"])
    last_error = _one(reader, "SELECT at, message FROM events WHERE level = 'error' "
                              "ORDER BY id DESC LIMIT 1")
    doc["summary"] = {
        "files": sum(doc["counts"].values()), "queued_files": int(queued[0]),
        "queued_bytes": int(queued[1]), "archived_bytes": int(archived_bytes or 0),
        "rate_bps": rate, "eta_seconds": left / rate if rate > 0 and left > 0 else None,
        "last_error": ({"at": _iso(as_time(last_error[0])), "message": last_error[1]}
                       if last_error else None),
        "next_retry": _iso(as_time(_one(reader, "SELECT min(retry_at) FROM files WHERE "
                                                f"host = :host AND state = '{FAILED}'",
                                        {"host": host})[0])),
    }
    doc["recent"] = [
        {"path": _path(path), "size": size, "archive_id": archive_id,
         "archived_at": _iso(as_time(created))}
        for path, size, archive_id, created in reader.rows(
            # this host's, and those adopted from an inventory without a file here
            "SELECT a.source_path, a.size, a.archive_id, a.created_at FROM archives a "
            "LEFT JOIN files f ON f.id = a.file_id WHERE (f.host = :host OR a.file_id IS NULL) "
            "AND NOT a.is_bundle ORDER BY a.id DESC LIMIT :n", {"n": recent, "host": host})]
    where, params = _filter(None, path_prefix, host)
    doc["failures"] = [
        {"path": _path(path), "error": error, "attempts": attempts,
         "retry_at": _iso(as_time(retry))}
        for path, error, attempts, retry in reader.rows(
            f"SELECT f.path, f.error, f.attempts, f.retry_at FROM files f WHERE f.state = "
            f"'{FAILED}'{where} ORDER BY f.retry_at LIMIT 50", params)]
    doc["jobs"] = [
        {"job_id": job_id, "kind": kind, "status": status,
         "age_seconds": (now - (as_time(created) or now)).total_seconds(), "error": error}
        for job_id, kind, status, created, error in reader.rows(
            "SELECT job_id, kind, status, created_at, error FROM jobs "
            "ORDER BY id DESC LIMIT 20")]
    doc["restores"] = [
        {"path": _path(source), "dest": _path(dest), "status": status, "size": size,
         "bytes_done": done, "error": error}
        for source, dest, status, size, done, error in reader.rows(
            "SELECT source_path, dest_path, status, size, bytes_done, error FROM restores "
            f"WHERE host = :host AND status != '{RESTORE_DONE}' ORDER BY id LIMIT 100",
            {"host": host})]
    doc["unreadable_folders"] = [
        {"path": _path(path), "error": message, "since": _iso(as_time(since))}
        for path, message, since in reader.rows(
            "SELECT path, message, since FROM folder_problems WHERE host = :host "
            "ORDER BY path", {"host": host})]
    doc["migration"] = _migration(reader, now)
    doc["packing"] = _packing(reader, kept, host)
    if priced is not None:
        from dataclasses import asdict

        from glacierd import costs

        doc["cost"] = asdict(costs.monthly(reader, *priced, kept=kept))
    inventory = _one(reader, "SELECT created_at, output_path FROM jobs WHERE kind = 'inventory' "
                             "AND status = 'Downloaded' ORDER BY id DESC LIMIT 1")
    doc["last_inventory"] = ({"requested_at": _iso(as_time(inventory[0])),
                              "output": inventory[1]} if inventory else None)
    if all_files:
        where, params = _filter(state, path_prefix, host)
        # One row a file: its state, and its newest archive's id via a grouped max.
        rows = reader.rows(
            "SELECT f.path, f.state, f.size, f.error, a.archive_id, u.bytes_acked "
            "FROM files f "
            "LEFT JOIN (SELECT file_id, max(id) AS aid FROM archives GROUP BY file_id) n "
            "  ON n.file_id = f.id "
            "LEFT JOIN archives a ON a.id = n.aid "
            "LEFT JOIN (SELECT file_id, bytes_acked FROM uploads "
            f"  WHERE status IN {SENDING_UPLOADS}) u ON u.file_id = f.id "
            f"WHERE NOT f.is_bundle{where} ORDER BY f.path", params)
        doc["files"] = [
            {"path": _path(path), "state": st, "size": size,
             "bytes_done": size if st == ARCHIVED else min(size, acked or 0),
             "archive_id": archive_id if st == ARCHIVED else None, "error": error}
            for path, st, size, error, archive_id, acked in rows]
    return doc


def _packing(reader: Reader, kept: totals.Totals, host: str) -> dict[str, Any] | None:
    """Bundles of small files: how many this host made, the files in the vault's
    or bucket's bundles, the bytes of deleted files they still hold (what
    ``repack`` would reclaim)."""
    bundles = totals.bundles_of(kept, host)
    if not bundles:
        return None
    reclaimable = _one(reader, "SELECT coalesce(sum(m.size), 0) FROM archives m "
                               "JOIN archives b ON b.id = m.bundle_row "
                               "WHERE m.deleted_at IS NOT NULL AND m.bundle_row IS NOT NULL "
                               "AND b.deleted_at IS NULL")[0]
    return {"bundles": bundles.get(ARCHIVED, 0),
            "bundles_on_their_way": sum(n for st, n in bundles.items()
                                        if st in (PENDING, UPLOADING, FAILED)),
            "packed_files": sum(v[0] for (kind, _), v in kept.items() if kind == "packed"),
            "packed_bytes": sum(v[1] for (kind, _), v in kept.items() if kind == "packed"),
            "reclaimable_bytes": int(reclaimable or 0)}


Priced = tuple[str, str, Mapping[str, Any]]
"""(target, storage class, price table): what the cost line needs from the config."""


def _migration(reader: Reader, now: dt.datetime) -> dict[str, Any] | None:
    """``glacierd migrate``'s progress: archives and bytes done of all, jobs pending,
    the rate over the last 10 minutes, an ETA and the retrieval cost so far."""
    from glacierd import pricing

    rows = reader.rows("SELECT status, tier, count(*), sum(size), sum(bytes_fetched), "
                       "sum(jobs_requested) FROM migration_items GROUP BY status, tier")
    if not rows:
        return None
    by_status: dict[str, int] = {}
    cost = 0.0
    for status, tier, count, _size, fetched, jobs in rows:
        by_status[status] = by_status.get(status, 0) + count
        cost += pricing.retrieval_usd(int(fetched or 0), int(jobs or 0), pricing.VAULT,
                                      tier) or 0.0
    total = sum(int(r[3] or 0) for r in rows)
    done_bytes = sum(int(r[3] or 0) for r in rows if r[0] == MIGRATION_DONE)
    copied = sum(int(r[4] or 0) for r in rows)
    window = now - dt.timedelta(minutes=10)
    recent = _one(reader, "SELECT coalesce(sum(length), 0), min(acknowledged_at) FROM "
                          "migration_chunks WHERE acknowledged_at >= :window",
                  {"window": reader.time_param(window)})
    since = as_time(recent[1])
    rate = (int(recent[0]) / max(1.0, (now - since).total_seconds())) if since else 0.0
    left = total - done_bytes
    return {"archives": sum(by_status.values()), "by_status": by_status,
            "done": by_status.get(MIGRATION_DONE, 0), "bytes": total,
            "bytes_done": done_bytes, "bytes_copied": copied,
            "jobs_pending": by_status.get(MIGRATION_RETRIEVING, 0),
            "rate_bps": rate, "eta_seconds": left / rate if rate > 0 and left > 0 else None,
            "retrieval_cost_usd": round(cost, 6)}


# Per file, through the indexes on archives.file_id and uploads.file_id: cheaper
# at a million files than grouping every archive first (12 % of SQLite's time).
_FILES_JSON_SQLITE = """
SELECT json_object(
    'path', f.path, 'state', f.state, 'size', f.size,
    'bytes_done', CASE WHEN f.state = 'archived' THEN f.size ELSE min(f.size, coalesce(
        (SELECT u.bytes_acked FROM uploads u WHERE u.file_id = f.id
           AND u.status IN ('uploading', 'completing') ORDER BY u.id DESC LIMIT 1), 0)) END,
    'archive_id', CASE WHEN f.state = 'archived' THEN
        (SELECT a.archive_id FROM archives a WHERE a.file_id = f.id ORDER BY a.id DESC LIMIT 1)
        END,
    'error', f.error)
  FROM files f
  WHERE f.host = :host AND NOT f.is_bundle
  ORDER BY f.path
"""


def write_json(source: Store | Reader, out: TextIO, *, summary: bool = False,
               state: str | None = None, path_prefix: str | None = None,
               priced: Priced | None = None, host: str | None = None) -> None:
    """``collect`` as one compact JSON document, written to ``out`` as it is read.

    On SQLite each file's object is written by SQLite itself (its JSON functions)
    and streamed: memory stays the same whatever the number of files, and no
    Python dict is built for any of them.
    """
    host = host_of(source, host)
    reader = reader_of(source)
    if summary:  # for scripts that poll: no list of every file
        out.write(json.dumps(collect(reader, all_files=False, priced=priced, host=host)))
        return
    if not reader.is_sqlite or state or path_prefix:
        out.write(json.dumps(collect(reader, state=state, path_prefix=path_prefix,
                                     priced=priced, host=host)))
        return
    head = json.dumps(collect(reader, all_files=False, priced=priced, host=host))
    out.write(head[:-1] + ', "files": [')
    separator = ""
    for batch in reader.batches(_FILES_JSON_SQLITE, 10_000, {"host": host}):
        out.write(separator + ",".join([item for (item,) in batch]))
        separator = ","
    out.write("]}")


def to_json(source: Store | Reader, **filters: Any) -> str:
    """``write_json`` into a string (tests, small stores)."""
    buffer = io.StringIO()
    write_json(source, buffer, **filters)
    return buffer.getvalue()


def _when(value: str | None, now: dt.datetime) -> str:
    return humanize.relative(dt.datetime.fromisoformat(value) if value else None, now)


def render(doc: dict[str, Any], *, width: int = 120, long: bool = False,
           now: dt.datetime | None = None) -> Any:
    """A rich renderable for the status document, ``width`` columns wide.

    Sizes in binary units, times relative to now; a path too long for its column
    is cut in the middle (its file name stays); ids are never cut: ``long`` puts
    each job id whole on its own line.
    """
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    now = now or utcnow()

    def path(text: str, others: int) -> Text:
        return Text(humanize.middle_cut(text, max(16, width - others)))

    d = doc["daemon"]
    if d["running"]:
        head = Text(f"glacierd running, pid {d['pid']}, up "
                    f"{humanize.duration(d['uptime_seconds'])}, archiving to {d['vault']}; "
                    f"last heartbeat {_when(d['last_heartbeat'], now)}", style="green")
    else:
        head = Text("glacierd is not running (last heartbeat "
                    f"{_when(d['last_heartbeat'], now) if d['last_heartbeat'] else 'never'})",
                    style="yellow")
    counts = doc["counts"]
    shown_states = ["pending", "uploading", "archived", "failed",
                    *(s for s in ("gone", "forgotten") if counts.get(s))]
    line = "files: " + ", ".join(f"{counts.get(s, 0):,} {s}" for s in shown_states)
    total = doc.get("summary")
    if total:
        line += f"; {humanize.size(total['archived_bytes'])} archived"
        if total["queued_files"]:
            line += f", {humanize.size(total['queued_bytes'])} queued"
        if total["rate_bps"]:
            line += f" at {humanize.rate(total['rate_bps'])}"
        if total["eta_seconds"]:
            line += f", done in {humanize.duration(total['eta_seconds'])}"
    parts: list[Any] = [head, Text(line)]
    cost = doc.get("cost")
    if cost and cost["objects"]:
        parts.append(Text(f"cost: about ${cost['month_usd']:.4f} a month for "
                          f"{cost['objects']:,} archives in {cost['storage_class']} (overhead "
                          f"${cost['overhead_usd']:.4f}); `glacierd cost` tells more"))
    if doc["uploads"]:
        table = Table("uploading", "progress", "bytes", "rate", "ETA", box=None)
        for u in doc["uploads"]:
            done = u["bytes_acked"] + u["bytes_in_flight"]
            if u.get("interrupted"):
                rate, eta = Text("interrupted", style="yellow"), "-"
            else:
                rate = Text(humanize.rate(u["rate_bps"]))
                eta = humanize.duration(u["eta_seconds"]) if u["eta_seconds"] else "-"
            table.add_row(path(u["path"], 88), ProgressBar(total=max(u["size"], 1),
                                                           completed=done, width=20),
                          f"{humanize.size(done)} / {humanize.size(u['size'])}", rate, eta)
        parts.append(table)
    if doc.get("restores"):
        table = Table("restoring", "progress", "bytes", "status", box=None)
        for r in doc["restores"]:
            table.add_row(path(r["path"], 90), ProgressBar(total=max(r["size"], 1),
                                                           completed=r["bytes_done"], width=20),
                          f"{humanize.size(r['bytes_done'])} / {humanize.size(r['size'])}",
                          Text(r["status"] + (f": {guard(r['error'])}" if r["error"] else ""),
                               style="red" if r["status"] == "failed" else ""))
        parts.append(table)
    if doc["recent"]:
        table = Table("recently archived", "size", "when", box=None)
        for r in doc["recent"]:
            table.add_row(path(r["path"], 26), humanize.size(r["size"]),
                          _when(r["archived_at"], now))
        parts.append(table)
    if doc["failures"]:
        table = Table("failed", "error", "next retry", box=None)
        for f in doc["failures"]:
            table.add_row(path(f["path"], 60), Text(guard(f["error"] or ""), style="red"),
                          _when(f["retry_at"], now))
        parts.append(table)
    if doc.get("unreadable_folders"):
        table = Table("unreadable folder (its files are not backed up)", "error", "since",
                      box=None)
        for f in doc["unreadable_folders"]:
            table.add_row(path(f["path"], 50), Text(guard(f["error"]), style="red"),
                          _when(f["since"], now))
        parts.append(table)
    if doc["jobs"] and long:  # one job a block: its id whole, on a line of its own
        parts.append(Text("Glacier jobs", style="bold"))
        for j in doc["jobs"]:
            started = now - dt.timedelta(seconds=j["age_seconds"])
            parts.append(Text(f"  {j['kind']}, {j['status']}, started "
                              f"{humanize.relative(started, now)}"))
            parts.append(Text(f"    {j['job_id']}", style="dim"))
    elif doc["jobs"]:
        table = Table("Glacier job", "status", "started", box=None)
        for j in doc["jobs"]:
            started = now - dt.timedelta(seconds=j["age_seconds"])
            table.add_row(j["kind"], j["status"], humanize.relative(started, now))
        parts.append(table)
        parts.append(Text("(--long shows the jobs' ids)", style="dim"))
    mig = doc.get("migration")
    if mig:
        failed = mig["by_status"].get("failed", 0) + mig["by_status"].get("too-large", 0)
        parts.append(Text(
            f"migration to S3: {mig['done']} of {humanize.count(mig['archives'], 'archive')}, "
            f"{humanize.size(mig['bytes_done'])} of {humanize.size(mig['bytes'])}; "
            f"{humanize.count(mig['jobs_pending'], 'retrieval job')} pending"
            + (f", {humanize.rate(mig['rate_bps'])}" if mig["rate_bps"] else "")
            + (f", ETA {humanize.duration(mig['eta_seconds'])}" if mig["eta_seconds"] else "")
            + f"; retrieval so far ${mig['retrieval_cost_usd']:.2f}"
            + (f"; {failed} not moved (see glacierd migrate)" if failed else ""),
            style="red" if failed else ""))
    packing = doc.get("packing")
    if packing:
        parts.append(Text(
            f"bundles: {humanize.count(packing['packed_files'], 'small file')} "
            f"({humanize.size(packing['packed_bytes'])}) in "
            f"{humanize.count(packing['bundles'], 'bundle')}"
            + (f", {packing['bundles_on_their_way']} on their way"
               if packing["bundles_on_their_way"] else "")
            + (f"; {humanize.size(packing['reclaimable_bytes'])} of deleted files "
               "still stored in them (reclaimable)" if packing["reclaimable_bytes"] else "")))
    inv = doc["last_inventory"]
    parts.append(Text(f"last inventory: requested {_when(inv['requested_at'], now)}" if inv
                      else "last inventory: none yet"))
    return Group(*parts)


def all_hosts(source: Store | Reader) -> list[dict[str, Any]]:
    """``status --all-hosts``: each host sharing the catalog — its daemon (up, last
    heartbeat), its files by state, bytes archived, last archive, failures."""
    reader = reader_of(source)
    kept = running_totals(reader)
    daemons = {host: (pid, as_time(beat), as_time(stopped), status)
               for host, pid, beat, stopped, status in reader.rows(
                   "SELECT host, pid, heartbeat_at, stopped_at, status FROM daemon")}
    here = this_host()
    out = []
    for host in sorted(set(totals.hosts_of(kept)) | set(daemons)):
        files = totals.files_of(kept, host)
        last = _one(reader, "SELECT max(updated_at) FROM files WHERE host = :host "
                            f"AND state = '{ARCHIVED}'", {"host": host})  # an index seek
        pid, beat, stopped, said = daemons.get(host, (0, None, None, None))
        out.append({
            "host": host,
            "daemon": {"running": _is_running(pid, beat, stopped, here=host == here),
                       "last_heartbeat": _iso(beat), "status": said},
            "counts": {st: n for st, (n, _size) in sorted(files.items())},
            "archived_bytes": files.get(ARCHIVED, (0, 0))[1],
            "queued_files": sum(files.get(st, (0, 0))[0] for st in (PENDING, UPLOADING)),
            "failed_files": files.get(FAILED, (0, 0))[0],
            "last_archived_at": _iso(as_time(last[0])) if last else None,
        })
    return out
