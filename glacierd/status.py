"""What ``glacierd status`` shows, read from the store alone.

``collect`` builds one document (the daemon need not answer; this works while
it runs, through SQLite's WAL). It uses aggregate queries and indexes, so it
stays fast on a catalog of 100,000 files. ``render`` draws it with rich;
``--json`` prints it as it is.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import desc, func, select, text

from glacierd import humanize, locks
from glacierd.pathtext import guard, shown
from glacierd.store.models import (
    Archive,
    Event,
    File,
    FileState,
    FolderProblem,
    Job,
    MigrationChunk,
    MigrationItem,
    MigrationStatus,
    Restore,
    RestoreStatus,
    Upload,
    UploadStatus,
    utcnow,
)
from glacierd.store.repository import Store

STALE_HEARTBEAT = dt.timedelta(seconds=30)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def daemon_running(store: Store, daemon: Any = None) -> bool:
    """Is a daemon alive on this store: its process exists and its heartbeat is fresh?"""
    daemon = daemon or store.daemon()
    return bool(daemon and daemon.stopped_at is None and _pid_alive(daemon.pid)
                and utcnow() - daemon.heartbeat_at < STALE_HEARTBEAT)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def _lock_dir(store: Store) -> Path | None:
    """Where uploads hold their per-file locks: ``locks/`` beside a SQLite store."""
    from sqlalchemy.engine import make_url

    url = make_url(store.url)
    if url.get_backend_name() != "sqlite" or not url.database:
        return None
    return Path(url.database.removeprefix("file:").split("?")[0]).parent / "locks"


Priced = tuple[str, str, Mapping[str, Any]]
"""(target, storage class, price table): what the cost line needs from the config."""


def collect(store: Store, *, all_files: bool = True, recent: int = 10,
            state: str | None = None, path_prefix: str | None = None,
            priced: Priced | None = None) -> dict[str, Any]:
    """The status document. ``state`` and ``path_prefix`` filter the ``files``
    array (and the failures); the counts are always of every file. ``priced``:
    add the target's storage cost a month (``glacierd cost`` has the rest)."""
    now = utcnow()
    daemon = store.daemon()
    running = daemon_running(store, daemon)
    doc: dict[str, Any] = {
        "daemon": {
            "running": running,
            "pid": daemon.pid if daemon and running else None,
            "started_at": _iso(daemon.started_at) if daemon else None,
            "uptime_seconds": (now - daemon.started_at).total_seconds()
            if daemon and running else None,
            "last_heartbeat": _iso(daemon.heartbeat_at) if daemon else None,
            "vault": daemon.vault if daemon else None,
            "status": daemon.status if daemon else None,
        },
    }
    with store.engine.connect() as conn:
        doc["counts"] = {state: n for state, n in conn.execute(
            select(File.state, func.count()).group_by(File.state))}
        active = conn.execute(
            select(File.path,  # an encrypted upload's parts cover its age file
                   func.coalesce(Upload.wire_size, Upload.size).label("size"),
                   Upload.bytes_acked, Upload.bytes_in_flight,
                   Upload.rate_bps, Upload.eta_seconds, Upload.status)
            .join(Upload, Upload.file_id == File.id)
            .where(Upload.status.in_([UploadStatus.UPLOADING, UploadStatus.COMPLETING,
                                      UploadStatus.INITIATING]))
            .order_by(Upload.id)).all()
        lock_dir = _lock_dir(store)

        def interrupted(path: str) -> bool:
            """Its process is gone: nobody holds the file's upload lock."""
            return lock_dir is not None and not locks.held(lock_dir, path)

        doc["uploads"] = [
            {"path": shown(r.path), "size": r.size, "bytes_acked": r.bytes_acked,
             "bytes_in_flight": r.bytes_in_flight, "rate_bps": r.rate_bps,
             "eta_seconds": r.eta_seconds, "status": r.status,
             "interrupted": interrupted(r.path)} for r in active]
        for u in doc["uploads"]:
            if u["interrupted"]:  # nothing is moving: no rate, no ETA
                u["bytes_in_flight"], u["rate_bps"], u["eta_seconds"] = 0, 0.0, None
        queued = conn.execute(select(func.count(), func.coalesce(func.sum(File.size), 0))
                              .where(File.state.in_([FileState.PENDING,
                                                     FileState.UPLOADING]))).one()
        archived_bytes = conn.execute(select(func.coalesce(func.sum(Archive.size), 0))
                                      .where(Archive.deleted_at.is_(None))).scalar()
        moving = [u for u in doc["uploads"] if not u["interrupted"]]
        rate = sum(u["rate_bps"] for u in moving)
        left = int(queued[1]) - sum(u["bytes_acked"] for u in doc["uploads"])
        last_error = conn.execute(select(Event.at, Event.message).where(Event.level == "error")
                                  .order_by(desc(Event.id)).limit(1)).first()
        doc["summary"] = {
            "files": sum(doc["counts"].values()), "queued_files": int(queued[0]),
            "queued_bytes": int(queued[1]), "archived_bytes": int(archived_bytes or 0),
            "rate_bps": rate, "eta_seconds": left / rate if rate > 0 and left > 0 else None,
            "last_error": ({"at": _iso(last_error.at), "message": last_error.message}
                           if last_error else None),
            "next_retry": _iso(conn.execute(select(func.min(File.retry_at)).where(
                File.state == FileState.FAILED)).scalar()),
        }
        doc["recent"] = [
            {"path": shown(r.source_path), "size": r.size, "archive_id": r.archive_id,
             "archived_at": _iso(r.created_at)}
            for r in conn.execute(select(Archive.source_path, Archive.size, Archive.archive_id,
                                         Archive.created_at)
                                  .order_by(desc(Archive.id)).limit(recent))]
        doc["failures"] = [
            {"path": shown(r.path), "error": r.error, "attempts": r.attempts,
             "retry_at": _iso(r.retry_at)}
            for r in conn.execute(_filtered(
                select(File.path, File.error, File.attempts, File.retry_at)
                .where(File.state == FileState.FAILED), None, path_prefix)
                .order_by(File.retry_at).limit(50))]
        doc["jobs"] = [
            {"job_id": r.job_id, "kind": r.kind, "status": r.status,
             "age_seconds": (now - r.created_at).total_seconds(), "error": r.error}
            for r in conn.execute(select(Job.job_id, Job.kind, Job.status, Job.created_at,
                                         Job.error).order_by(desc(Job.id)).limit(20))]
        doc["restores"] = [
            {"path": shown(r.source_path), "dest": shown(r.dest_path), "status": r.status,
             "size": r.size,
             "bytes_done": r.bytes_done, "error": r.error}
            for r in conn.execute(select(Restore.source_path, Restore.dest_path, Restore.status,
                                         Restore.size, Restore.bytes_done, Restore.error)
                                  .where(Restore.status != RestoreStatus.DONE)
                                  .order_by(Restore.id).limit(100))]
        doc["unreadable_folders"] = [
            {"path": shown(r.path), "error": r.message, "since": _iso(r.since)}
            for r in conn.execute(select(FolderProblem.path, FolderProblem.message,
                                         FolderProblem.since).order_by(FolderProblem.path))]
        doc["migration"] = _migration(conn, now)
        if priced is not None:
            from dataclasses import asdict

            from glacierd import costs

            doc["cost"] = asdict(costs.monthly(store, *priced))
        inventory = conn.execute(select(Job.created_at, Job.output_path)
                                 .where(Job.kind == "inventory", Job.status == "Downloaded")
                                 .order_by(desc(Job.id)).limit(1)).first()
        doc["last_inventory"] = ({"requested_at": _iso(inventory.created_at),
                                  "output": inventory.output_path} if inventory else None)
        if all_files:
            # One row a file: its state, and its newest archive's id via a grouped max.
            newest = (select(Archive.file_id, func.max(Archive.id).label("aid"))
                      .group_by(Archive.file_id).subquery())
            acked = (select(Upload.file_id, Upload.bytes_acked)
                     .where(Upload.status.in_([UploadStatus.UPLOADING,
                                               UploadStatus.COMPLETING]))
                     .subquery())
            rows = conn.execute(_filtered(
                select(File.path, File.state, File.size, File.error, Archive.archive_id,
                       acked.c.bytes_acked)
                .outerjoin(newest, newest.c.file_id == File.id)
                .outerjoin(Archive, Archive.id == newest.c.aid)
                .outerjoin(acked, acked.c.file_id == File.id), state, path_prefix)
                .order_by(File.path))
            archived = FileState.ARCHIVED.value  # a plain str compares faster than the enum
            doc["files"] = [
                {"path": shown(path), "state": state, "size": size,
                 "bytes_done": size if state == archived else min(size, acked or 0),
                 "archive_id": archive_id if state == archived else None, "error": error}
                for path, state, size, error, archive_id, acked in rows]
    return doc


def _migration(conn: Any, now: dt.datetime) -> dict[str, Any] | None:
    """``glacierd migrate``'s progress: archives and bytes done of all, jobs pending,
    the rate over the last 10 minutes, an ETA and the retrieval cost so far."""
    from glacierd import pricing

    rows = conn.execute(select(MigrationItem.status, MigrationItem.tier, func.count(),
                               func.sum(MigrationItem.size),
                               func.sum(MigrationItem.bytes_fetched),
                               func.sum(MigrationItem.jobs_requested))
                        .group_by(MigrationItem.status, MigrationItem.tier)).all()
    if not rows:
        return None
    by_status: dict[str, int] = {}
    cost = 0.0
    for status, tier, count, _size, fetched, jobs in rows:
        by_status[status] = by_status.get(status, 0) + count
        per_gb, per_request = pricing.VAULT_RETRIEVAL.get(tier, (0.0, 0.0))
        cost += int(fetched or 0) / pricing.GB * per_gb + int(jobs or 0) / 1000 * per_request
    total = sum(int(r[3] or 0) for r in rows)
    done_bytes = sum(int(r[3] or 0) for r in rows if r[0] == MigrationStatus.DONE)
    copied = sum(int(r[4] or 0) for r in rows)
    window = now - dt.timedelta(minutes=10)
    recent = conn.execute(select(func.coalesce(func.sum(MigrationChunk.length), 0),
                                 func.min(MigrationChunk.acknowledged_at))
                          .where(MigrationChunk.acknowledged_at >= window)).one()
    since = recent[1]
    rate = (int(recent[0]) / max(1.0, (now - since).total_seconds())) if since else 0.0
    left = total - done_bytes
    return {"archives": sum(by_status.values()), "by_status": by_status,
            "done": by_status.get(MigrationStatus.DONE, 0), "bytes": total,
            "bytes_done": done_bytes, "bytes_copied": copied,
            "jobs_pending": by_status.get(MigrationStatus.RETRIEVING, 0),
            "rate_bps": rate, "eta_seconds": left / rate if rate > 0 and left > 0 else None,
            "retrieval_cost_usd": round(cost, 6)}


def _filtered(query: Any, state: str | None, path_prefix: str | None) -> Any:
    """Files in one state, and at or below a path."""
    if state:
        query = query.where(File.state == state)
    if path_prefix:
        below = path_prefix.rstrip("/") + "/"
        query = query.where((File.path == path_prefix)
                            | File.path.startswith(below, autoescape=True))
    return query


# Per file, through the indexes on archives.file_id and uploads.file_id: cheaper
# at a million files than grouping every archive first (12 % of SQLite's time).
_FILES_JSON_SQLITE = text("""
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
  ORDER BY f.path
""")


def write_json(store: Store, out: TextIO, *, summary: bool = False, state: str | None = None,
               path_prefix: str | None = None, priced: Priced | None = None) -> None:
    """``collect`` as one compact JSON document, written to ``out`` as it is read.

    On SQLite each file's object is written by SQLite itself (its JSON functions)
    and streamed: memory stays the same whatever the number of files, and no
    Python dict is built for any of them.
    """
    if summary:  # for scripts that poll: no list of every file
        out.write(json.dumps(collect(store, all_files=False, priced=priced)))
        return
    if store.engine.dialect.name != "sqlite" or state or path_prefix:
        out.write(json.dumps(collect(store, state=state, path_prefix=path_prefix,
                                     priced=priced)))
        return
    head = json.dumps(collect(store, all_files=False, priced=priced))
    out.write(head[:-1] + ', "files": [')
    with store.engine.connect() as conn:
        # SQLAlchemy's result rows cost about a microsecond each: at a million files
        # the driver's own cursor, read in batches and joined, is a good part faster.
        cursor = conn.connection.driver_connection.execute(  # type: ignore[union-attr]
            str(_FILES_JSON_SQLITE))
        separator = ""
        while batch := cursor.fetchmany(10_000):
            out.write(separator + ",".join([item for (item,) in batch]))
            separator = ","
        cursor.close()
    out.write("]}")


def to_json(store: Store, **filters: Any) -> str:
    """``write_json`` into a string (tests, small stores)."""
    buffer = io.StringIO()
    write_json(store, buffer, **filters)
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
    inv = doc["last_inventory"]
    parts.append(Text(f"last inventory: requested {_when(inv['requested_at'], now)}" if inv
                      else "last inventory: none yet"))
    return Group(*parts)
