"""Commands that back up: `db upgrade`, `upload`, `run`, `status`, `archives`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from glacierd.cli import (
    DEFAULT_LOCAL_STATE,
    LOCAL_ENDPOINT_FILE,
    Context,
    cli,
    open_store,
    startup_done,
)
from glacierd.cli.terminal import transfer_view
from glacierd.pathtext import shown


@cli.group()
def db() -> None:
    """The state database."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(ctx: Context) -> None:
    """Create the state database, or bring it to this glacierd's schema."""
    from glacierd.store import schema
    from glacierd.store.db import create_store_engine, translated_errors

    url = ctx.database_url
    with translated_errors(url):
        engine = create_store_engine(url)
        try:
            before, after = schema.upgrade(engine)
        finally:
            engine.dispose()
    if before == after:
        click.echo(f"state database is at revision {after}, the newest")
    else:
        click.echo(f"state database upgraded from {before or 'nothing'} to {after}")


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True,
              help="one JSON object a line for each file (see the README)")
@click.pass_obj
def upload(ctx: Context, paths: tuple[str, ...], as_json: bool) -> None:
    """Upload files (folders: everything below them), resumably.

    Run it again after an interruption and it continues where it stopped.
    """
    import json
    import os

    from glacierd.readahead import ReadAhead
    from glacierd.sources import uploadable_files

    config = ctx.config
    selection = uploadable_files(list(paths), config.upload.follow_symlinks)
    files = selection.files
    total = sum(_size_of(path) for path in files)
    codes: set[int] = set()

    def report(status: str, path: Path | str, size: int = 0, archive_id: str | None = None,
               error: str | None = None) -> None:
        view.finished(status, str(path), size)
        if as_json:
            click.echo(json.dumps({"path": shown(path), "status": status, "size": size,
                                   "archive_id": archive_id, "error": error}))
        elif status in ("failed", "refused", "gone", "busy", "unconfirmed"):
            named = error if error and error.startswith(shown(path)) else \
                f"{shown(path)}: {error}"
            view.problem(status, named)
        elif view.live:  # a whole archive id would wrap across the bars
            view.result(f"{status} {shown(path)}")
        else:  # piped: one line a file, whole archive id
            view.result(f"{status} {shown(path)} {archive_id or '-'}")
        if status == "failed":
            codes.add(1)
        elif status in ("refused", "gone"):
            codes.add(66)  # EX_NOINPUT

    # The first file's first parts are read and hashed while the store's code loads
    # (not when encrypting: the parts sent are then the age file's, not the file's).
    first = files[0] if files and config.encryption is None else None
    with ReadAhead(first, config.upload.part_size,
                   config.upload.concurrency,
                   follow_symlinks=config.upload.follow_symlinks) as readahead, \
            transfer_view(len(files), total) as view:
        from glacierd import wiring

        store = open_store(ctx)
        target = wiring.connect(config)
        uploader = wiring.make_uploader(config, store, target.backend, view.progress)
        for bad in selection.refused:  # refused at once, never stored for retries
            report("refused", os.path.abspath(bad.path), error=bad.reason)
        try:
            for number, path in enumerate(files):
                outcome = uploader.upload_path(path, readahead if number == 0 else None,
                                               root=selection.roots.get(path))
                report(outcome.status, outcome.path, outcome.size, outcome.archive_id,
                       outcome.error)
        except KeyboardInterrupt:
            view.note("interrupted: run the same command again and it resumes where it "
                      "stopped")
            raise click.exceptions.Exit(130) from None
        finally:
            uploader.close()
            store.close()
        view.note(view.summary())
    if codes:
        raise click.exceptions.Exit(min(codes))


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _failed_paths(ctx: Context, paths: tuple[str, ...], state: Any) -> list[Any]:
    import os

    from glacierd.store.states import utcnow

    store = open_store(ctx)
    try:
        given = [os.path.abspath(p) for p in paths] or None
        return list(store.set_failed_files(state, given, utcnow()))
    finally:
        store.close()


@cli.command()
@click.argument("paths", nargs=-1)
@click.pass_context
def retry(click_ctx: click.Context, paths: tuple[str, ...]) -> None:
    """Retry failed files now, in the foreground (all, or those under PATHS).

    The daemon retries failures by itself with a growing delay; this does not wait.
    """
    from glacierd.store.states import FileState

    records = _failed_paths(click_ctx.obj, paths, FileState.FAILED)
    if not records:
        click.echo("no failed files" + (" under the paths given" if paths else ""))
        return
    click_ctx.invoke(upload, paths=tuple(r.path for r in records))


@cli.command()
@click.argument("paths", nargs=-1)
@click.option("--all-failed", is_flag=True, help="every failed file")
@click.pass_obj
def forget(ctx: Context, paths: tuple[str, ...], all_failed: bool) -> None:
    """Stop retrying failed files (PATHS, or --all-failed); a file that changes is
    queued again."""
    from glacierd.store.states import FileState

    if bool(paths) == all_failed:
        raise click.UsageError("name failed files (or folders), or give --all-failed")
    for record in _failed_paths(ctx, paths, FileState.FORGOTTEN):
        click.echo(f"forgotten {shown(record.path)}")


@cli.command()
@click.option("--local", is_flag=True,
              help="no AWS account: back up to an embedded Glacier emulator")
@click.option("--watch", "watch_dirs", multiple=True, type=click.Path(file_okay=False),
              help="with --local: a folder to watch (default ./inbox); repeatable")
@click.option("--state-dir", default=None, type=click.Path(file_okay=False),
              help=f"with --local: where state and the emulator's data go "
                   f"(default ./{DEFAULT_LOCAL_STATE})")
@click.option("--s3", "use_s3", is_flag=True,
              help="with --local: back up to the emulator's S3 bucket (Deep Archive), not a "
                   "vault")
@click.pass_obj
def run(ctx: Context, local: bool, watch_dirs: tuple[str, ...], state_dir: str | None,
        use_s3: bool) -> None:
    """Run the backup daemon: watch folders, upload what settles, follow jobs."""
    from glacierd import faultpoints
    from glacierd.signals import DaemonSignals

    signals = DaemonSignals().install()  # before the slow imports: a SIGTERM now stops cleanly
    faultpoints.hit("run-command")
    from glacierd.daemon import Daemon

    startup_done()
    local = local or ctx.local
    if state_dir is None and ctx.local:
        state_dir = str(ctx.state_dir)
    if not local:
        if watch_dirs or state_dir or use_s3:
            raise click.UsageError("--watch, --state-dir and --s3 go with --local; otherwise "
                                   "the config file says what to watch, where state goes and "
                                   "where archives go")
        config = ctx.config
        _apply_log_level(ctx, config.daemon.log_level)
        raise click.exceptions.Exit(Daemon(config, signals=signals).run())
    _run_local(ctx, watch_dirs, state_dir, signals, use_s3)


def _apply_log_level(ctx: Context, level: str) -> None:
    if not ctx.log_level_given:
        logging.getLogger().setLevel(level.upper())
        # Libraries' own INFO lines are noise in a daemon's journal.
        for noisy in ("alembic", "apscheduler", "watchdog"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def _run_local(ctx: Context, watch_dirs: tuple[str, ...], state_dir: str | None,
               signals: Any, use_s3: bool) -> None:
    from glacierd.daemon import Daemon, check_state_dir, local_config
    from glacierd.emulator import Emulator
    from glacierd.glacier import GlacierClient
    from glacierd.store import schema
    from glacierd.store.db import create_store_engine, translated_errors

    state = Path(state_dir or DEFAULT_LOCAL_STATE).resolve()
    watches = [Path(d).resolve() for d in (watch_dirs or ("inbox",))]
    check_state_dir(state, "glacierd run --local")
    if watch_dirs:  # a typo must not become a new, empty folder watched in silence
        for folder in watches:
            if not folder.is_dir():
                raise click.UsageError(f"--watch {shown(folder)}: no such folder (only the "
                                       "default ./inbox is created)")
    else:
        watches[0].mkdir(parents=True, exist_ok=True)
    _apply_log_level(ctx, "INFO")
    (state / "emulator").mkdir(mode=0o700, exist_ok=True)  # the backed-up bytes: ours alone
    access_key, secret_key = _local_credentials(state)
    emulator = Emulator(state / "emulator", access_key=access_key, secret_key=secret_key).start()
    try:
        config = local_config(state, watches, emulator.endpoint_url,
                              emulator.credentials.access_key, emulator.credentials.secret_key,
                              s3=use_s3)
        with translated_errors(config.database_url):
            engine = create_store_engine(config.database_url)
            schema.upgrade(engine)
            engine.dispose()
        client = GlacierClient(config.aws.region, endpoint_url=emulator.endpoint_url,
                               credentials=emulator.credentials)
        folders = ", ".join(shown(w) for w in watches)
        where = "an S3 bucket (Deep Archive)" if use_s3 else "a Glacier vault"
        click.echo(f"glacierd: backing up {folders} to {where} in a local emulator (data in "
                   f"{state}).\nDrop files there; `{_this_command()} status --local"
                   + (f" --state-dir {state}" if state_dir else "")
                   + "` shows progress. Ctrl-C stops.", err=True)
        code = Daemon(config, client=client, reload=lambda: config, signals=signals,
                      on_ready=lambda: _publish_local_endpoint(state, emulator, use_s3)).run()
    finally:
        _withdraw_local_endpoint(state)
        emulator.stop()
    raise click.exceptions.Exit(code)


def _this_command() -> str:
    """How to run glacierd again: ``glacierd`` when that is on the PATH, else the
    path this process was started with (``.venv/bin/glacierd``)."""
    import os
    import shutil

    started = sys.argv[0]
    if os.path.basename(started) == "glacierd" and shutil.which("glacierd") != os.path.abspath(
            started):
        return os.path.relpath(started) if not started.startswith("/") else started
    return "glacierd"


LOCAL_CREDENTIALS_FILE = "local-credentials.json"


def _local_credentials(state: Path) -> tuple[str, str]:
    """This state folder's own emulator keys, made once (0600): with public default
    keys any local process could read the backups of `run --local` back."""
    import json
    import os
    import secrets

    path = state / LOCAL_CREDENTIALS_FILE
    try:
        doc = json.loads(path.read_text())
        return str(doc["access_key"]), str(doc["secret_key"])
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise click.ClickException(f"{shown(path)}: unreadable ({exc}); remove it and start again "
                                   "(the local emulator's data stays)") from None
    doc = {"access_key": "GLD" + secrets.token_hex(8).upper(),
           "secret_key": secrets.token_urlsafe(30)}
    tmp = state / f".{LOCAL_CREDENTIALS_FILE}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return doc["access_key"], doc["secret_key"]


def _publish_local_endpoint(state: Path, emulator: Any, use_s3: bool) -> None:
    """Let `glacierd --local COMMAND` find this process's emulator (file mode 0600)."""
    import json
    import os

    doc = {"endpoint_url": emulator.endpoint_url, "pid": os.getpid(),
           "access_key": emulator.credentials.access_key,
           "secret_key": emulator.credentials.secret_key, "s3": use_s3}
    tmp = state / f".{LOCAL_ENDPOINT_FILE}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh)
    os.replace(tmp, state / LOCAL_ENDPOINT_FILE)


def _withdraw_local_endpoint(state: Path) -> None:
    """Remove the endpoint file only if this process published it: a second
    `run --local` that was refused must leave the running one reachable."""
    import json
    import os

    published = state / LOCAL_ENDPOINT_FILE
    try:
        mine = json.loads(published.read_text()).get("pid") == os.getpid()
    except (OSError, ValueError, AttributeError):
        return
    if mine:
        published.unlink(missing_ok=True)



def _print_hosts(hosts: list[dict[str, Any]]) -> None:
    """``status --all-hosts`` as a table (one row a host)."""
    from glacierd import humanize
    from glacierd.cli.terminal import print_table

    if not hosts:
        click.echo("no host has files in this catalog yet")
        return
    print_table(
        ["host", "daemon", "archived", "queued", "failed", "bytes", "last archive"],
        ([h["host"], ("up" if h["daemon"]["running"] else "down")
          + (f", heartbeat {h['daemon']['last_heartbeat']}" if h["daemon"]["last_heartbeat"]
             else ""),
          f"{h['counts'].get('archived', 0):,}", f"{h['queued_files']:,}",
          f"{h['failed_files']:,}", humanize.size(h["archived_bytes"]),
          h["last_archived_at"] or "-"] for h in hosts))


def _priced(ctx: Context) -> tuple[str, str, Any] | None:
    """The config's target, class and prices for status's cost line; None for a
    config with only [state] (status needs no more than that)."""
    from glacierd.config import NO_VAULT
    from glacierd.errors import GlacierdError

    try:
        config = ctx._load(need_vault=False)
    except GlacierdError:
        return None
    if config.s3 is None and config.vault == NO_VAULT:
        return None
    return config.target, config.storage_class, config.price_table()

@cli.command()
@click.option("--json", "as_json", is_flag=True, help="one JSON document (see the README)")
@click.option("--summary", is_flag=True,
              help="with --json: counts, bytes, rates and the daemon, without every file")
@click.option("--state", "state", default=None,
              type=click.Choice(["pending", "uploading", "archived", "failed", "gone",
                                 "forgotten"]),
              help="only files in this state")
@click.option("--path", "path_prefix", default=None, help="only files at or below this path")
@click.option("--long", "long", is_flag=True, help="whole ids, on lines of their own")
@click.option("--watch", "live", is_flag=True, help="refresh until interrupted")
@click.option("--all-hosts", "all_hosts", is_flag=True,
              help="each host sharing the catalog: daemon, counts, bytes, last archive, "
                   "failures")
@click.option("--host", "host", default=None,
              help="another host's files (a catalog several hosts share)")
@click.option("--local", is_flag=True, help="the state of the running glacierd run --local")
@click.option("--state-dir", default=None, type=click.Path(file_okay=False),
              help=f"with --local (default ./{DEFAULT_LOCAL_STATE})")
@click.pass_obj
def status(ctx: Context, as_json: bool, summary: bool, state: str | None,
           path_prefix: str | None, long: bool, live: bool, all_hosts: bool, host: str | None,
           local: bool, state_dir: str | None) -> None:
    """What glacierd is doing: daemon, queue, uploads, failures, jobs."""
    import json
    import os
    import time

    from glacierd import status as status_mod
    from glacierd.store.reader import open_reader

    startup_done()
    if local or ctx.local:
        db = (Path(state_dir).resolve() if state_dir else ctx.state_dir) / "glacierd.db"
        if not db.exists():
            raise click.ClickException(f"{db}: no state here; start `glacierd run --local` first")
        url = f"sqlite:///{db}"
    else:
        url = ctx.database_url
    prefix = os.path.abspath(path_prefix) if path_prefix else None
    priced = None if (local or ctx.local) else _priced(ctx)
    store = open_reader(url)  # on SQLite: sqlite3 alone, no SQLAlchemy to load
    try:
        if all_hosts:
            hosts = status_mod.all_hosts(store)
            if as_json:
                click.echo(json.dumps(hosts))
            else:
                _print_hosts(hosts)
            return
        if as_json:  # piped (scripts): compact and built by the database; a terminal: indented
            if sys.stdout.isatty() and not summary:
                click.echo(json.dumps(status_mod.collect(store, state=state, path_prefix=prefix,
                                                         priced=priced, host=host), indent=2))
            else:
                status_mod.write_json(store, sys.stdout, summary=summary, state=state,
                                      path_prefix=prefix, priced=priced, host=host)
                sys.stdout.write("\n")
            return
        from rich.console import Console

        # Piped (a log, a journal, grep): wide enough that no line is folded at 80.
        console = Console() if sys.stdout.isatty() else Console(width=200)

        def screen() -> Any:
            return status_mod.render(status_mod.collect(store, all_files=False,
                                                        path_prefix=prefix, priced=priced,
                                                        host=host),
                                     width=console.width, long=long)

        if not live:
            console.print(screen())
            return
        from rich.live import Live

        with Live(screen(), console=console, refresh_per_second=2) as view:
            while True:
                time.sleep(1)  # a refresh period, not synchronisation
                view.update(screen())
    except KeyboardInterrupt:
        pass
    finally:
        store.close()


@cli.command()
@click.option("--prefix", default=None,
              help="only paths at or below this one (relative paths mean from here)")
@click.option("--json", "as_json", is_flag=True, help="a JSON array (see the README)")
@click.option("--long", "long", is_flag=True, help="one block an archive, its id whole")
@click.option("--host", default=None,
              help="only the archives this host made (a catalog rebuilt from a vault or "
                   "bucket that several hosts back up to holds everyone's)")
@click.pass_obj
def archives(ctx: Context, prefix: str | None, as_json: bool, long: bool,
             host: str | None) -> None:
    """List the catalog: every archived version of every file."""
    import os

    from glacierd.cli import listing

    store = open_store(ctx, read_only=True)
    rows = store.each_archive(os.path.abspath(prefix) if prefix else None, host)
    try:
        listing.show(
            ({"path": shown(r.source_path), "size": r.size, "created_at": r.created_at,
              "archive_id": r.archive_id, "tree_hash": r.tree_hash, "vault": r.vault,
              # a packed file: its bundle's archive and where its bytes are in it
              "bundle": r.bundle_archive_id, "offset": r.member_offset}
             for r in rows),
            [listing.Column("path", "path"), listing.Column("size", "size", listing.size),
             listing.Column("created_at", "archived", listing.when),
             listing.Column("archive_id", "archive id", lambda v: v or "(none)", is_id=True),
             listing.Column("bundle", "packed in bundle", lambda v: v or "", is_id=True)],
            as_json=as_json, long=long, empty="the catalog has no archives"
            + (" under that path" if prefix else "") + (f" from host {host!r}" if host else ""))
    finally:
        rows.close()  # its read transaction
        store.close()
