"""Commands for the way back and the catalog: `restore`, `inventory`, `catalog
rebuild`, `jobs`, `vaults`, `verify`, `delete`."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import click

from glacierd.cli import (
    Context,
    cli,
    open_store,
    parse_date,
    services,
)
from glacierd.cli.terminal import print_table, transfer_view
from glacierd.glacier.errors import GlacierError
from glacierd.pathtext import shown


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
    store, client = services(ctx)
    restorer = make_restorer(ctx.config, store, client)
    chosen = restorer.select(paths, archive_ids, before=parse_date(before), version=version)
    total = sum(a.size for a in chosen)
    click.echo(f"{len(chosen)} archives, {total:,} bytes to retrieve "
               f"(tier {tier or ctx.config.restore.tier})")
    if dry_run:
        for archive in chosen:
            click.echo(f"  {shown(archive.source_path)} ({archive.size:,} bytes)")
        return
    records = restorer.request(chosen, Path(to_dir) if to_dir else None, overwrite=overwrite,
                               tier=tier)
    failed = [r for r in records if r.status == "failed"]
    for record in failed:
        click.echo(f"failed {shown(record.source_path)}: {record.error}", err=True)
    if not wait:
        click.echo("requested; the daemon downloads them when Glacier is ready "
                   "(`glacierd status` shows progress), or run again with --wait")
        raise click.exceptions.Exit(1 if failed else 0)
    _wait_for_restores(restorer, [r.id for r in records])


def _wait_for_restores(restorer: Any, ids: list[int]) -> None:
    import time

    with transfer_view() as view:
        restorer.on_progress = view.progress
        while True:
            records = [restorer.store.restore(i) for i in ids]
            if all(r.status in ("done", "failed") for r in records):
                break
            restorer.poll()
            time.sleep(1)  # waiting for Glacier's jobs: a polling period
    failures = 0
    for record in records:
        if record.status == "done":
            click.echo(f"restored {shown(record.dest_path)}")
        else:
            failures += 1
            click.echo(f"failed {shown(record.source_path)}: {record.error}", err=True)
    if failures:
        raise click.exceptions.Exit(1)


@cli.command()
@click.option("--refresh", is_flag=True, help="request a new inventory")
@click.option("--wait", is_flag=True, help="wait for it, fetch it and reconcile the catalog")
@click.pass_obj
def inventory(ctx: Context, refresh: bool, wait: bool) -> None:
    """Show the last vault inventory; --refresh requests a new one."""
    store, client = services(ctx)
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
    store, client = services(ctx)
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
    store = open_store(ctx, read_only=True)
    print_table(("job id", "kind", "status", "created", "error"),
                ((job.job_id[:24] + "...", job.kind, job.status,
                  job.created_at.strftime("%Y-%m-%d %H:%M"), job.error or "")
                 for job in store.jobs(limit=200)))


@cli.command()
@click.pass_obj
def vaults(ctx: Context) -> None:
    """Vaults: name, archive count, size, last inventory."""
    from glacierd import wiring

    store = open_store(ctx, read_only=True)
    client = wiring.make_client(ctx.config)
    rows = []
    for vault in client.list_vaults():
        last = store.last_inventory(vault["VaultName"])
        rows.append((vault["VaultName"], str(vault.get("NumberOfArchives", "?")),
                     f"{vault.get('SizeInBytes', 0):,}",
                     last.inventory_date.strftime("%Y-%m-%d") if last else
                     (vault.get("LastInventoryDate") or "never")))
    print_table(("vault", "archives", "size", "last inventory"), rows)


@cli.command()
@click.argument("path", required=False)
@click.pass_obj
def verify(ctx: Context, path: str | None) -> None:
    """Re-hash local files and compare with the catalog: unchanged, changed, missing;
    and name the files (known to glacierd, or in watched folders) with no backup."""
    import os

    from glacierd.glacier.treehash import tree_hash_file
    from glacierd.restorer import pick_versions

    store = open_store(ctx, read_only=True)
    prefix = os.path.abspath(path) if path else None
    counts = {"unchanged": 0, "changed": 0, "missing": 0, "not backed up": 0}
    archived = pick_versions(store.archives(prefix))
    for archive in archived:
        local = Path(archive.source_path)
        if not local.is_file():
            state = "missing"
        elif local.stat().st_size != archive.size:
            state = "changed"
        else:
            state = "unchanged" if tree_hash_file(local) == archive.tree_hash else "changed"
        counts[state] += 1
        if state != "unchanged":
            click.echo(f"{state}\t{shown(archive.source_path)}")
    backed_up = {a.source_path for a in archived}
    unbacked = set(store.files_without_backup(prefix)) | {
        str(p) for p in _watched_files(ctx, prefix) if str(p) not in backed_up}
    for unsaved in sorted(p for p in unbacked if os.path.isfile(p)):
        counts["not backed up"] += 1
        click.echo(f"not backed up\t{shown(unsaved)}")
    store.close()
    click.echo(", ".join(f"{n} {state}" for state, n in counts.items()))
    if counts["changed"] or counts["missing"] or counts["not backed up"]:
        raise click.exceptions.Exit(1)


def _watched_files(ctx: Context, prefix: str | None) -> list[Path]:
    """Every file the config's watched folders hold (and would back up)."""
    import os

    from glacierd.watcher import wanted

    try:
        watches = ctx.config.watch
    except (click.ClickException, GlacierError):  # --local: no config file to read
        return []
    found = []
    for watch in watches:
        for root, _dirs, files in os.walk(watch.path):
            for name in files:
                candidate = Path(root) / name
                if (prefix is None or str(candidate).startswith(prefix)) and wanted(
                        watch, candidate):
                    found.append(candidate)
    return found


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
    store, client = services(ctx)
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
            raise RestoreError(f"{shown(full)}: no archive of it in the catalog")
    for archive in targets:
        age = utcnow() - archive.created_at
        if age.days < 90:
            click.echo(f"warning: {shown(archive.source_path)} was archived {age.days} days ago; "
                       "Glacier charges for deleting archives younger than 90 days", err=True)
    if not yes:
        click.echo(f"would delete {len(targets)} archives; add --yes to do it", err=True)
        raise click.exceptions.Exit(1)
    for archive in targets:
        assert archive.archive_id is not None
        with contextlib.suppress(ResourceNotFoundException):  # already gone: fine
            client.delete_archive(archive.vault, archive.archive_id)
        store.mark_archive_deleted(archive.archive_id)
        click.echo(f"deleted {shown(archive.source_path)} ({archive.archive_id[:16]}...)")


