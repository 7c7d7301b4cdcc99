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
from glacierd.cli.terminal import print_table, transfer_view
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

    url = ctx.config.database_url
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
@click.pass_obj
def upload(ctx: Context, paths: tuple[str, ...]) -> None:
    """Upload files (folders: everything below them), resumably.

    Run it again after an interruption and it continues where it stopped.
    """
    from glacierd.readahead import ReadAhead
    from glacierd.sources import Refused, uploadable_files

    config = ctx.config
    selection = uploadable_files(list(paths), config.upload.follow_symlinks)
    files, refused = selection.files, selection.refused
    failures = 0
    # The first file's first parts are read and hashed while the store's code loads.
    with ReadAhead(files[0] if files else None, config.upload.part_size,
                   config.upload.concurrency,
                   follow_symlinks=config.upload.follow_symlinks) as readahead, \
            transfer_view() as view:
        from glacierd import wiring

        store = open_store(ctx)
        client = wiring.make_client(config)
        wiring.ensure_vault(client, config)
        uploader = wiring.make_uploader(config, store, client, view.progress)
        for bad in refused:  # refused at once, never stored for retries
            view.problem("refused", f"{shown(bad.path)}: {bad.reason}")
        for number, path in enumerate(files):
            outcome = uploader.upload_path(path, readahead if number == 0 else None,
                                           root=selection.roots.get(path))
            if outcome.status == "failed":
                failures += 1
                view.problem("failed", str(outcome.error))
            elif outcome.status == "gone":
                refused.append(Refused(path, str(outcome.error)))
                view.problem("gone", str(outcome.error))
            elif outcome.status in ("busy", "unconfirmed"):
                view.problem(outcome.status, f"{shown(outcome.path)}: {outcome.error}")
            elif view.live:  # a whole archive id would wrap across the bars
                view.result(f"{outcome.status} {shown(outcome.path)}")
            else:  # piped: one line a file, whole archive id
                view.result(f"{outcome.status} {shown(outcome.path)} {outcome.archive_id or '-'}")
    store.close()
    if failures:
        raise click.exceptions.Exit(1)
    if refused:
        raise click.exceptions.Exit(66)  # EX_NOINPUT


def _failed_paths(ctx: Context, paths: tuple[str, ...], state: Any) -> list[Any]:
    import os

    from glacierd.store.models import utcnow

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
    from glacierd.store.models import FileState

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
    from glacierd.store.models import FileState

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
@click.pass_obj
def run(ctx: Context, local: bool, watch_dirs: tuple[str, ...], state_dir: str | None) -> None:
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
        if watch_dirs or state_dir:
            raise click.UsageError("--watch and --state-dir go with --local; otherwise the "
                                   "config file says what to watch and where state goes")
        config = ctx.config
        _apply_log_level(ctx, config.daemon.log_level)
        raise click.exceptions.Exit(Daemon(config, signals=signals).run())
    _run_local(ctx, watch_dirs, state_dir, signals)


def _apply_log_level(ctx: Context, level: str) -> None:
    if not ctx.log_level_given:
        logging.getLogger().setLevel(level.upper())
        # Libraries' own INFO lines are noise in a daemon's journal.
        for noisy in ("alembic", "apscheduler", "watchdog"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def _run_local(ctx: Context, watch_dirs: tuple[str, ...], state_dir: str | None,
               signals: Any) -> None:
    from glacierd.daemon import Daemon, check_state_dir, local_config
    from glacierd.emulator import Emulator
    from glacierd.glacier import GlacierClient
    from glacierd.store import schema
    from glacierd.store.db import create_store_engine, translated_errors

    state = Path(state_dir or DEFAULT_LOCAL_STATE).resolve()
    watches = [Path(d).resolve() for d in (watch_dirs or ("inbox",))]
    check_state_dir(state, "glacierd run --local")
    for folder in watches:
        folder.mkdir(parents=True, exist_ok=True)
    _apply_log_level(ctx, "INFO")
    access_key, secret_key = _local_credentials(state)
    emulator = Emulator(state / "emulator", access_key=access_key, secret_key=secret_key).start()
    try:
        config = local_config(state, watches, emulator.endpoint_url,
                              emulator.credentials.access_key, emulator.credentials.secret_key)
        with translated_errors(config.database_url):
            engine = create_store_engine(config.database_url)
            schema.upgrade(engine)
            engine.dispose()
        client = GlacierClient(config.aws.region, endpoint_url=emulator.endpoint_url,
                               credentials=emulator.credentials)
        shown = ", ".join(str(w) for w in watches)
        click.echo(f"glacierd: backing up {shown} to a local Glacier emulator (data in "
                   f"{state}).\nDrop files there; `glacierd status --local"
                   + (f" --state-dir {state}" if state_dir else "")
                   + "` shows progress. Ctrl-C stops.", err=True)
        code = Daemon(config, client=client, reload=lambda: config, signals=signals,
                      on_ready=lambda: _publish_local_endpoint(state, emulator)).run()
    finally:
        _withdraw_local_endpoint(state)
        emulator.stop()
    raise click.exceptions.Exit(code)


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


def _publish_local_endpoint(state: Path, emulator: Any) -> None:
    """Let `glacierd --local COMMAND` find this process's emulator (file mode 0600)."""
    import json
    import os

    doc = {"endpoint_url": emulator.endpoint_url, "pid": os.getpid(),
           "access_key": emulator.credentials.access_key,
           "secret_key": emulator.credentials.secret_key}
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


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="one JSON document")
@click.option("--watch", "live", is_flag=True, help="refresh until interrupted")
@click.option("--local", is_flag=True, help="the state of `glacierd run --local`")
@click.option("--state-dir", default=None, type=click.Path(file_okay=False),
              help=f"with --local (default ./{DEFAULT_LOCAL_STATE})")
@click.pass_obj
def status(ctx: Context, as_json: bool, live: bool, local: bool, state_dir: str | None) -> None:
    """What glacierd is doing: daemon, queue, uploads, failures, jobs."""
    import json
    import time

    from glacierd import status as status_mod
    from glacierd.store.repository import Store

    startup_done()
    if local or ctx.local:
        db = (Path(state_dir).resolve() if state_dir else ctx.state_dir) / "glacierd.db"
        if not db.exists():
            raise click.ClickException(f"{db}: no state here; start `glacierd run --local` first")
        url = f"sqlite:///{db}"
    else:
        url = ctx.config.database_url
    store = Store.open(url, read_only=True)
    try:
        if as_json:  # piped (scripts): compact and built by the database; a terminal: indented
            if sys.stdout.isatty():
                click.echo(json.dumps(status_mod.collect(store), indent=2))
            else:
                click.echo(status_mod.to_json(store))
            return
        from rich.console import Console

        # Piped (a log, a journal, grep): wide enough that no line is folded at 80.
        console = Console() if sys.stdout.isatty() else Console(width=200)
        if not live:
            console.print(status_mod.render(status_mod.collect(store, all_files=False)))
            return
        from rich.live import Live

        with Live(status_mod.render(status_mod.collect(store, all_files=False)),
                  console=console, refresh_per_second=2) as view:
            while True:
                time.sleep(1)  # a refresh period, not synchronisation
                view.update(status_mod.render(status_mod.collect(store, all_files=False)))
    except KeyboardInterrupt:
        pass
    finally:
        store.close()


@cli.command()
@click.option("--prefix", default=None, help="only paths starting with this")
@click.pass_obj
def archives(ctx: Context, prefix: str | None) -> None:
    """List the catalog: every archived version of every file."""
    store = open_store(ctx, read_only=True)
    rows = store.archives(prefix)
    store.close()
    if not sys.stdout.isatty():  # piped: whole values, one archive a line, tab-separated
        for row in rows:
            click.echo("\t".join([shown(row.source_path), str(row.size),
                                  row.created_at.isoformat(), row.archive_id or "-"]))
        return
    print_table(("path", "size", "created", "archive id"),
                ((shown(row.source_path), f"{row.size:,}",
                  row.created_at.strftime("%Y-%m-%d %H:%M"), row.archive_id or "(empty file)")
                 for row in rows))


