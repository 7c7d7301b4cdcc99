"""The ``glacierd`` command. Errors become exit codes here and only here:
every ``GlacierError`` (config, store, Glacier, bad input) is printed as its
message and ends the process with its class's exit code, never a traceback.
"""

from __future__ import annotations

import contextlib
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


LOCAL_ENDPOINT_FILE = "local-endpoint.json"


class Context:
    def __init__(self, config_path: str, log_level: str, log_level_given: bool,
                 local: bool = False, state_dir: str | None = None) -> None:
        self.config_path = config_path
        self.log_level = log_level
        self.log_level_given = log_level_given
        self.local = local
        self.state_dir = Path(state_dir or DEFAULT_LOCAL_STATE).resolve()
        self._config: config_mod.Config | None = None

    @property
    def config(self) -> config_mod.Config:
        if self._config is None:
            self._config = self._local_config() if self.local else config_mod.load(
                self.config_path)
        return self._config

    @property
    def database_url(self) -> str:
        """The state database; with --local it needs no running daemon."""
        if self.local:
            return f"sqlite:///{self.state_dir / 'glacierd.db'}"
        return self.config.database_url

    def _local_config(self) -> config_mod.Config:
        """The config of the `glacierd run --local` that is running on ``state_dir``."""
        import json

        from glacierd.daemon import local_config

        published = self.state_dir / LOCAL_ENDPOINT_FILE
        try:
            doc = json.loads(published.read_text())
        except (OSError, ValueError):
            raise click.ClickException(
                f"no `glacierd run --local` is running on {self.state_dir}: start it first "
                "(its emulator lives in that process)") from None
        return local_config(self.state_dir, [], doc["endpoint_url"], doc["access_key"],
                            doc["secret_key"])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="glacierd")
@click.option("--config", "config_path", envvar="GLACIERD_CONFIG", default=DEFAULT_CONFIG,
              show_default=True, help="config file (or $GLACIERD_CONFIG)")
@click.option("--log-level", default="WARNING", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
@click.option("--local", "local", is_flag=True,
              help="act on the running `glacierd run --local` instead of a config file")
@click.option("--state-dir", "state_dir", default=None, type=click.Path(file_okay=False),
              help=f"with --local (default ./{DEFAULT_LOCAL_STATE})")
@click.pass_context
def cli(ctx: click.Context, config_path: str, log_level: str, local: bool,
        state_dir: str | None) -> None:
    """glacierd: resumable backups to Amazon Glacier."""
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    given = ctx.get_parameter_source("log_level") != click.core.ParameterSource.DEFAULT
    ctx.obj = Context(config_path, log_level, given, local, state_dir)


def _open_store(ctx: Context) -> Any:
    from glacierd.store.repository import Store

    if ctx.local and not (ctx.state_dir / "glacierd.db").exists():
        raise click.ClickException(f"{ctx.state_dir}: no glacierd state here; start "
                                   "`glacierd run --local` first")
    return Store.open(ctx.database_url)


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
            elif outcome.status == "busy":
                console.print(f"[yellow]busy[/yellow] {outcome.path}: {outcome.error}")
            elif outcome.status == "unconfirmed":
                console.print(f"[yellow]unconfirmed[/yellow] {outcome.path}: {outcome.error}")
            elif console.is_terminal:  # above the live bars, not through them
                bars.console.print(f"{outcome.status} {outcome.path}", highlight=False)
            else:  # piped: one line a file, whole archive id
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

    local = local or ctx.local
    if state_dir is None and ctx.local:
        state_dir = str(ctx.state_dir)
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
        # Libraries' own INFO lines are noise in a daemon's journal.
        for noisy in ("alembic", "apscheduler", "watchdog"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


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
        code = Daemon(config, client=client, reload=lambda: config,
                      on_ready=lambda: _publish_local_endpoint(state, emulator)).run()
    finally:
        (state / LOCAL_ENDPOINT_FILE).unlink(missing_ok=True)
        emulator.stop()
    raise click.exceptions.Exit(code)


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

    if local or ctx.local:
        db = (Path(state_dir).resolve() if state_dir else ctx.state_dir) / "glacierd.db"
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


def _services(ctx: Context) -> tuple[Any, Any]:
    """The store and a client whose vault exists."""
    from glacierd import wiring

    config = ctx.config  # with --local: fails here, clearly, if no local daemon runs
    store = _open_store(ctx)
    client = wiring.make_client(config)
    wiring.ensure_vault(client, config)
    return store, client


def _parse_date(value: str | None) -> Any:
    import datetime as dt

    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-11-28 or "
                                 "2026-11-28T12:00") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


@cli.command()
@click.argument("paths", nargs=-1)
@click.option("--archive-id", "archive_ids", multiple=True, help="an archive id; repeatable")
@click.option("--tier", type=click.Choice(["Expedited", "Standard", "Bulk"]), default=None,
              help="retrieval tier (default: [restore] tier)")
@click.option("--to", "to_dir", type=click.Path(file_okay=False), default=None,
              help="restore folder (default: [restore] dir)")
@click.option("--overwrite", is_flag=True, help="replace files that exist")
@click.option("--wait", is_flag=True, help="follow the jobs and download in the foreground")
@click.option("--dry-run", is_flag=True, help="show what would be retrieved, and stop")
@click.option("--version", "version", type=int, default=None,
              help="the N-th version of each file (1 = oldest); default newest")
@click.option("--before", default=None, help="the newest version archived before this date")
@click.pass_obj
def restore(ctx: Context, paths: tuple[str, ...], archive_ids: tuple[str, ...],
            tier: str | None, to_dir: str | None, overwrite: bool, wait: bool, dry_run: bool,
            version: int | None, before: str | None) -> None:
    """Bring archives back: files or folders from the catalog, or archive ids.

    Retrievals cost money: --dry-run shows how many archives and bytes first.
    Without --wait the daemon follows the jobs and downloads when they finish.
    """
    from glacierd.daemon import make_restorer

    if not paths and not archive_ids:
        raise click.UsageError("name paths to restore, or --archive-id")
    store, client = _services(ctx)
    restorer = make_restorer(ctx.config, store, client)
    chosen = restorer.select(paths, archive_ids, before=_parse_date(before), version=version)
    total = sum(a.size for a in chosen)
    click.echo(f"{len(chosen)} archives, {total:,} bytes to retrieve "
               f"(tier {tier or ctx.config.restore.tier})")
    if dry_run:
        for archive in chosen:
            click.echo(f"  {archive.source_path} ({archive.size:,} bytes)")
        return
    records = restorer.request(chosen, Path(to_dir) if to_dir else None, overwrite=overwrite,
                               tier=tier)
    failed = [r for r in records if r.status == "failed"]
    for record in failed:
        click.echo(f"failed {record.source_path}: {record.error}", err=True)
    if not wait:
        click.echo("requested; the daemon downloads them when Glacier is ready "
                   "(`glacierd status` shows progress), or run again with --wait")
        raise click.exceptions.Exit(1 if failed else 0)
    _wait_for_restores(restorer, [r.id for r in records])


def _wait_for_restores(restorer: Any, ids: list[int]) -> None:
    import time

    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=not console.is_terminal) as bars:
        tasks: dict[str, TaskID] = {}

        def on_progress(path: str, done: int, total: int) -> None:
            if path not in tasks:
                tasks[path] = bars.add_task(Path(path).name, total=total)
            bars.update(tasks[path], completed=done, total=total)

        restorer.on_progress = on_progress
        while True:
            records = [restorer.store.restore(i) for i in ids]
            if all(r.status in ("done", "failed") for r in records):
                break
            restorer.poll()
            time.sleep(1)  # waiting for Glacier's jobs: a polling period
    failures = 0
    for record in records:
        if record.status == "done":
            click.echo(f"restored {record.dest_path}")
        else:
            failures += 1
            click.echo(f"failed {record.source_path}: {record.error}", err=True)
    if failures:
        raise click.exceptions.Exit(1)


@cli.command()
@click.option("--refresh", is_flag=True, help="request a new inventory")
@click.option("--wait", is_flag=True, help="wait for it, fetch it and reconcile the catalog")
@click.pass_obj
def inventory(ctx: Context, refresh: bool, wait: bool) -> None:
    """Show the last vault inventory; --refresh requests a new one."""
    store, client = _services(ctx)
    vault = ctx.config.vault.name
    if refresh:
        job_id = client.initiate_inventory_job(vault)
        store.add_job(job_id, vault, "inventory")
        click.echo(f"inventory requested (job {job_id}); it takes hours on Glacier")
    if wait:
        _wait_for_inventory(ctx, store, client)
    last = store.last_inventory(vault)
    if last is None:
        click.echo("no inventory yet" + ("" if refresh else "; --refresh requests one"))
        return
    click.echo(f"last inventory of {vault}: {last.inventory_date:%Y-%m-%d %H:%M} UTC, "
               f"{last.archive_count} archives, {last.total_size:,} bytes")


def _wait_for_inventory(ctx: Context, store: Any, client: Any) -> None:
    import time

    from glacierd.daemon import poll_inventories
    from glacierd.store.models import utcnow

    if not store.jobs(statuses=["InProgress"], kind="inventory"):
        raise click.ClickException("no inventory job is in progress: use --refresh")
    while store.jobs(statuses=["InProgress"], kind="inventory"):
        poll_inventories(client, store, ctx.config.state.dir, utcnow())
        if store.jobs(statuses=["InProgress"], kind="inventory"):
            time.sleep(1)  # waiting for Glacier's job: a polling period


@cli.group()
def catalog() -> None:
    """The catalog of archives."""


@catalog.command("rebuild")
@click.pass_obj
def catalog_rebuild(ctx: Context) -> None:
    """Rebuild the catalog from the vault's inventory (requests one if needed)."""
    store, client = _services(ctx)
    vault = ctx.config.vault.name
    if not store.jobs(statuses=["InProgress"], kind="inventory"):
        job_id = client.initiate_inventory_job(vault)
        store.add_job(job_id, vault, "inventory")
        click.echo(f"inventory requested (job {job_id}); waiting for it")
    _wait_for_inventory(ctx, store, client)
    archives = store.archives()
    click.echo(f"catalog has {len(archives)} archives of {len({a.source_path for a in archives})}"
               " files")


@cli.command()
@click.pass_obj
def jobs(ctx: Context) -> None:
    """Glacier jobs glacierd started or follows."""
    store = _open_store(ctx)
    table = Table("job id", "kind", "status", "created", "error")
    for job in store.jobs(limit=200):
        table.add_row(job.job_id[:24] + "...", job.kind, job.status,
                      job.created_at.strftime("%Y-%m-%d %H:%M"), job.error or "")
    Console().print(table)


@cli.command()
@click.pass_obj
def vaults(ctx: Context) -> None:
    """Vaults: name, archive count, size, last inventory."""
    from glacierd import wiring

    store = _open_store(ctx)
    client = wiring.make_client(ctx.config)
    table = Table("vault", "archives", "size", "last inventory")
    for vault in client.list_vaults():
        last = store.last_inventory(vault["VaultName"])
        table.add_row(vault["VaultName"], str(vault.get("NumberOfArchives", "?")),
                      f"{vault.get('SizeInBytes', 0):,}",
                      last.inventory_date.strftime("%Y-%m-%d") if last else
                      (vault.get("LastInventoryDate") or "never"))
    Console().print(table)


@cli.command()
@click.argument("path", required=False)
@click.pass_obj
def verify(ctx: Context, path: str | None) -> None:
    """Re-hash local files and compare with the catalog: unchanged, changed, missing."""
    import os

    from glacierd.glacier.treehash import tree_hash_file
    from glacierd.restorer import pick_versions

    store = _open_store(ctx)
    prefix = os.path.abspath(path) if path else None
    counts = {"unchanged": 0, "changed": 0, "missing": 0}
    for archive in pick_versions(store.archives(prefix)):
        local = Path(archive.source_path)
        if not local.is_file():
            state = "missing"
        elif local.stat().st_size != archive.size:
            state = "changed"
        else:
            state = "unchanged" if tree_hash_file(local) == archive.tree_hash else "changed"
        counts[state] += 1
        if state != "unchanged":
            click.echo(f"{state}\t{archive.source_path}")
    click.echo(", ".join(f"{n} {state}" for state, n in counts.items()))
    if counts["changed"] or counts["missing"]:
        raise click.exceptions.Exit(1)


@cli.command()
@click.argument("path", required=False)
@click.option("--archive-id", default=None)
@click.option("--yes", is_flag=True, help="really delete (archives under 90 days cost extra)")
@click.pass_obj
def delete(ctx: Context, path: str | None, archive_id: str | None, yes: bool) -> None:
    """Delete archives from the vault: every version of PATH, or one archive id."""
    from glacierd.errors import RestoreError
    from glacierd.glacier import ResourceNotFoundException
    from glacierd.store.models import utcnow

    if bool(path) == bool(archive_id):
        raise click.UsageError("give either a PATH or --archive-id")
    store, client = _services(ctx)
    if archive_id:
        found = store.archive_by_id(archive_id)
        if found is None:
            raise RestoreError(f"archive id {archive_id}: not in the catalog")
        targets = [found]
    else:
        import os

        full = os.path.abspath(str(path))
        targets = [a for a in store.archives(full) if a.source_path == full and a.archive_id]
        if not targets:
            raise RestoreError(f"{path}: no archive of it in the catalog")
    for archive in targets:
        age = utcnow() - archive.created_at
        if age.days < 90:
            click.echo(f"warning: {archive.source_path} was archived {age.days} days ago; "
                       "Glacier charges for deleting archives younger than 90 days", err=True)
    if not yes:
        click.echo(f"would delete {len(targets)} archives; add --yes to do it", err=True)
        raise click.exceptions.Exit(1)
    for archive in targets:
        assert archive.archive_id is not None
        with contextlib.suppress(ResourceNotFoundException):  # already gone: fine
            client.delete_archive(archive.vault, archive.archive_id)
        store.mark_archive_deleted(archive.archive_id)
        click.echo(f"deleted {archive.source_path} ({archive.archive_id[:16]}...)")


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def emulator(ctx: click.Context) -> None:
    """Run the Glacier emulator (same options as ``python -m glacierd.emulator``)."""
    from glacierd.emulator.__main__ import main as emulator_main

    raise click.exceptions.Exit(emulator_main(list(ctx.args)))


def main(argv: list[str] | None = None) -> int:
    try:
        # Without standalone mode, click *returns* the code of an Exit it caught.
        code = cli.main(args=argv, prog_name="glacierd", standalone_mode=False)
        return code if isinstance(code, int) else 0
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
