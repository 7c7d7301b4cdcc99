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


class Context:
    def __init__(self, config_path: str, log_level: str) -> None:
        self.config_path = config_path
        self.log_level = log_level
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
    ctx.obj = Context(config_path, log_level)


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
