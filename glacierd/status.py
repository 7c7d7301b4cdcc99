"""What ``glacierd status`` shows, read from the store alone.

``collect`` builds one document (the daemon need not answer; this works while
it runs, through SQLite's WAL). It uses aggregate queries and indexes, so it
stays fast on a catalog of 100,000 files. ``render`` draws it with rich;
``--json`` prints it as it is.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

from sqlalchemy import desc, func, select, text

from glacierd.pathtext import guard, shown
from glacierd.store.models import (
    Archive,
    File,
    FileState,
    FolderProblem,
    Job,
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


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def collect(store: Store, *, all_files: bool = True, recent: int = 10) -> dict[str, Any]:
    now = utcnow()
    daemon = store.daemon()
    running = bool(daemon and daemon.stopped_at is None and _pid_alive(daemon.pid)
                   and now - daemon.heartbeat_at < STALE_HEARTBEAT)
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
            select(File.path, Upload.size, Upload.bytes_acked, Upload.bytes_in_flight,
                   Upload.rate_bps, Upload.eta_seconds, Upload.status)
            .join(Upload, Upload.file_id == File.id)
            .where(Upload.status.in_([UploadStatus.UPLOADING, UploadStatus.COMPLETING,
                                      UploadStatus.INITIATING]))
            .order_by(Upload.id)).all()
        doc["uploads"] = [
            {"path": shown(r.path), "size": r.size, "bytes_acked": r.bytes_acked,
             "bytes_in_flight": r.bytes_in_flight, "rate_bps": r.rate_bps,
             "eta_seconds": r.eta_seconds, "status": r.status} for r in active]
        doc["recent"] = [
            {"path": shown(r.source_path), "size": r.size, "archive_id": r.archive_id,
             "archived_at": _iso(r.created_at)}
            for r in conn.execute(select(Archive.source_path, Archive.size, Archive.archive_id,
                                         Archive.created_at)
                                  .order_by(desc(Archive.id)).limit(recent))]
        doc["failures"] = [
            {"path": shown(r.path), "error": r.error, "attempts": r.attempts,
             "retry_at": _iso(r.retry_at)}
            for r in conn.execute(select(File.path, File.error, File.attempts, File.retry_at)
                                  .where(File.state == FileState.FAILED)
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
            rows = conn.execute(
                select(File.path, File.state, File.size, File.error, Archive.archive_id,
                       acked.c.bytes_acked)
                .outerjoin(newest, newest.c.file_id == File.id)
                .outerjoin(Archive, Archive.id == newest.c.aid)
                .outerjoin(acked, acked.c.file_id == File.id)
                .order_by(File.path))
            archived = FileState.ARCHIVED.value  # a plain str compares faster than the enum
            doc["files"] = [
                {"path": shown(path), "state": state, "size": size,
                 "bytes_done": size if state == archived else (acked or 0),
                 "archive_id": archive_id if state == archived else None, "error": error}
                for path, state, size, error, archive_id, acked in rows]
    return doc


_FILES_JSON_SQLITE = text("""
SELECT json_group_array(json(doc)) FROM (
  SELECT json_object(
    'path', f.path, 'state', f.state, 'size', f.size,
    'bytes_done', CASE WHEN f.state = 'archived' THEN f.size ELSE coalesce(u.bytes_acked, 0) END,
    'archive_id', CASE WHEN f.state = 'archived' THEN a.archive_id END,
    'error', f.error) AS doc
  FROM files f
  LEFT JOIN (SELECT file_id, max(id) AS aid FROM archives GROUP BY file_id) n
         ON n.file_id = f.id
  LEFT JOIN archives a ON a.id = n.aid
  LEFT JOIN uploads u ON u.file_id = f.id AND u.status IN ('uploading', 'completing')
  ORDER BY f.path)
""")


def to_json(store: Store) -> str:
    """``collect`` as one compact JSON document, built fast for a large catalog.

    On SQLite the ``files`` array is written by SQLite itself (its JSON functions),
    which is several times faster than building 100,000 dicts in Python.
    """
    if store.engine.dialect.name != "sqlite":
        return json.dumps(collect(store))
    doc = collect(store, all_files=False)
    with store.engine.connect() as conn:
        files = conn.execute(_FILES_JSON_SQLITE).scalar() or "[]"
    head = json.dumps(doc)
    return head[:-1] + ', "files": ' + str(files) + "}"


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def render(doc: dict[str, Any]) -> Any:
    """A rich renderable for the status document."""
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    d = doc["daemon"]
    if d["running"]:
        head = Text(f"glacierd running, pid {d['pid']}, up {d['uptime_seconds'] / 60:.0f} min, "
                    f"vault {d['vault']}; last heartbeat {d['last_heartbeat']}", style="green")
    else:
        head = Text(f"glacierd is not running (last heartbeat {d['last_heartbeat'] or 'never'})",
                    style="yellow")
    counts = doc["counts"]
    shown_states = ["pending", "uploading", "archived", "failed",
                    *(s for s in ("gone", "forgotten") if counts.get(s))]
    summary = Text("files: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in shown_states))
    parts: list[Any] = [head, summary]
    if doc["uploads"]:
        table = Table("uploading", "progress", "bytes", "rate", "ETA", box=None)
        for u in doc["uploads"]:
            done = u["bytes_acked"] + u["bytes_in_flight"]
            eta = f"{u['eta_seconds']:.0f}s" if u["eta_seconds"] else "-"
            table.add_row(Text(u["path"]), ProgressBar(total=max(u["size"], 1), completed=done,
                                                 width=30),
                          f"{_size(done)} / {_size(u['size'])}", f"{_size(u['rate_bps'])}/s",
                          eta)
        parts.append(table)
    if doc.get("restores"):
        table = Table("restoring", "progress", "bytes", "status", box=None)
        for r in doc["restores"]:
            table.add_row(Text(r["path"]), ProgressBar(total=max(r["size"], 1),
                                                 completed=r["bytes_done"], width=30),
                          f"{_size(r['bytes_done'])} / {_size(r['size'])}",
                          Text(r["status"] + (f": {guard(r['error'])}" if r["error"] else ""),
                               style="red" if r["status"] == "failed" else ""))
        parts.append(table)
    if doc["recent"]:
        table = Table("recently archived", "size", "when", box=None)
        for r in doc["recent"]:
            table.add_row(Text(r["path"]), _size(r["size"]), r["archived_at"])
        parts.append(table)
    if doc["failures"]:
        table = Table("failed", "error", "next retry", box=None)
        for f in doc["failures"]:
            table.add_row(Text(f["path"]), Text(guard(f["error"] or ""), style="red"),
                          f["retry_at"] or "-")
        parts.append(table)
    if doc.get("unreadable_folders"):
        table = Table("unreadable folder (its files are not backed up)", "error", "since",
                      box=None)
        for f in doc["unreadable_folders"]:
            table.add_row(Text(f["path"]), Text(guard(f["error"]), style="red"), f["since"])
        parts.append(table)
    if doc["jobs"]:
        table = Table("Glacier job", "kind", "status", "age", box=None)
        for j in doc["jobs"]:
            table.add_row(j["job_id"][:20] + "...", j["kind"], j["status"],
                          f"{j['age_seconds'] / 60:.0f} min")
        parts.append(table)
    inv = doc["last_inventory"]
    parts.append(Text(f"last inventory: {inv['requested_at']}" if inv else
                      "last inventory: none yet"))
    return Group(*parts)
