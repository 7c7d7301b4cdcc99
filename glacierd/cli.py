"""The ``glacierd`` command. Errors become exit codes here and only here:
every ``GlacierError`` (config, store, Glacier, bad input) is printed as its
message and ends the process with its class's exit code, never a traceback.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from glacierd import __version__
from glacierd import config as config_mod
from glacierd.glacier.errors import GlacierError

DEFAULT_CONFIG = "/etc/glacierd/config.toml"


DEFAULT_LOCAL_STATE = "glacierd-state"


class Context:
    def __init__(self, config_path: str, log_level: str, log_level_given: bool) -> None:
        self.config_path = config_path
        self.log_level = log_level
        self.log_level_given = log_level_given
        self._config: config_mod.Config | None = None

    @property
    def config(self) -> config_mod.Config:
        if self._config is None:
            self._config = config_mod.load(self.config_path)
        return self._config


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="glacierd")
@click.option("--config", "config_path", envvar="GLACIERD_CONFIG", default=DEFAULT_CONFIG,
              show_default=True, help="config file (or $GLACIERD_CONFIG)")
@click.option("--log-level", default="WARNING", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
@click.pass_context
def cli(ctx: click.Context, config_path: str, log_level: str) -> None:
    """glacierd: resumable backups to Amazon Glacier."""
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    given = ctx.get_parameter_source("log_level") != click.core.ParameterSource.DEFAULT
    ctx.obj = Context(config_path, log_level, given)


def _open_store(ctx: Context) -> Any:
    from glacierd.store.repository import Store

    return Store.open(ctx.config.database_url)


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
    from glacierd import wiring
    from glacierd.uploader import uploadable_files

    config = ctx.config
    store = _open_store(ctx)
    client = wiring.make_client(config)
    wiring.ensure_vault(client, config)
    files = uploadable_files(list(paths), config.upload.follow_symlinks)
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    failures = 0
    with Progress(*columns, console=console, transient=False,
                  disable=not console.is_terminal) as bars:
        tasks: dict[str, TaskID] = {}

        def on_progress(path: str, done: int, total: int) -> None:
            task = tasks.get(path)
            if task is None:
                task = tasks[path] = bars.add_task(Path(path).name, total=total)
            bars.update(task, completed=done, total=total)

        uploader = wiring.make_uploader(config, store, client, on_progress)
        for path in files:
            outcome = uploader.upload_path(path)
            if outcome.status == "failed":
                failures += 1
                console.print(f"[red]failed[/red] {outcome.error}")
            elif outcome.status == "unconfirmed":
                console.print(f"[yellow]unconfirmed[/yellow] {outcome.path}: {outcome.error}")
            else:
                click.echo(f"{outcome.status} {outcome.path} {outcome.archive_id or '-'}")
    store.close()
    if failures:
        raise click.exceptions.Exit(1)


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
    from glacierd.daemon import Daemon

    if not local:
        if watch_dirs or state_dir:
            raise click.UsageError("--watch and --state-dir go with --local; otherwise the "
                                   "config file says what to watch and where state goes")
        config = ctx.config
        _apply_log_level(ctx, config.daemon.log_level)
        raise click.exceptions.Exit(Daemon(config).run())
    _run_local(ctx, watch_dirs, state_dir)


def _apply_log_level(ctx: Context, level: str) -> None:
    if not ctx.log_level_given:
        logging.getLogger().setLevel(level.upper())


def _run_local(ctx: Context, watch_dirs: tuple[str, ...], state_dir: str | None) -> None:
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
    emulator = Emulator(state / "emulator").start()
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
        code = Daemon(config, client=client, reload=lambda: config).run()
    finally:
        emulator.stop()
    raise click.exceptions.Exit(code)


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

    if local:
        db = Path(state_dir or DEFAULT_LOCAL_STATE).resolve() / "glacierd.db"
        if not db.exists():
            raise click.ClickException(f"{db}: no state here; start `glacierd run --local` first")
        url = f"sqlite:///{db}"
    else:
        url = ctx.config.database_url
    store = Store.open(url)
    try:
        if as_json:  # compact when piped: 100,000 files serialise twice as fast
            indent = 2 if sys.stdout.isatty() else None
            click.echo(json.dumps(status_mod.collect(store), indent=indent))
            return
        console = Console()
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
    store = _open_store(ctx)
    rows = store.archives(prefix)
    store.close()
    console = Console()
    if not console.is_terminal:  # piped: whole values, one archive a line, tab-separated
        for row in rows:
            click.echo("\t".join([row.source_path, str(row.size), row.created_at.isoformat(),
                                  row.archive_id or "-"]))
        return
    table = Table("path", "size", "created", "archive id")
    for row in rows:
        table.add_row(row.source_path, f"{row.size:,}", row.created_at.strftime("%Y-%m-%d %H:%M"),
                      row.archive_id or "(empty file)")
    console.print(table)


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def emulator(ctx: click.Context) -> None:
    """Run the Glacier emulator (same options as ``python -m glacierd.emulator``)."""
    from glacierd.emulator.__main__ import main as emulator_main

    raise click.exceptions.Exit(emulator_main(list(ctx.args)))


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="glacierd", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except GlacierError as exc:
        # Glacier's own errors keep their code and request id; ours are their message.
        click.echo(f"glacierd: {exc if exc.status is not None else exc.message}", err=True)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
