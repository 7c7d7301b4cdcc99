"""Commands for the way back and the catalog: `restore`, `inventory`, `catalog
rebuild`, `jobs`, `vaults`, `verify`, `delete`."""

from __future__ import annotations

from collections.abc import Callable
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
from glacierd.cli.terminal import transfer_view
from glacierd.errors import GlacierdError
from glacierd.pathtext import shown


@cli.command()
@click.argument("paths", nargs=-1)
@click.option("--archive-id", "archive_ids", multiple=True, help="an archive id; repeatable")
@click.option("--tier", type=click.Choice(["Expedited", "Standard", "Bulk"]), default=None,
              help="retrieval tier (default: [restore] tier)")
@click.option("--to", "to_dir", type=click.Path(file_okay=False), default=None,
              help="restore folder (default: [restore] dir)")
@click.option("--strip", "strip", default=None,
              help="restore paths relative to this folder (default: the whole original path "
                   "below the restore folder)")
@click.option("--overwrite", is_flag=True, help="replace files that exist")
@click.option("--wait", is_flag=True, help="follow the jobs and download in the foreground")
@click.option("--dry-run", is_flag=True, help="show what would be retrieved, and stop")
@click.option("--json", "as_json", is_flag=True,
              help="--dry-run: one JSON document; --wait: one JSON object a line per file")
@click.option("--version", "version", type=int, default=None,
              help="the N-th version of each file (1 = oldest); default newest")
@click.option("--before", default=None, help="the newest version archived before this date")
@click.option("--host", default=None,
              help="the paths as this host archived them (another machine's files, from a "
                   "catalog rebuilt from the vault or bucket it backed up to)")
@click.pass_obj
def restore(ctx: Context, paths: tuple[str, ...], archive_ids: tuple[str, ...],
            tier: str | None, to_dir: str | None, strip: str | None, overwrite: bool,
            wait: bool, dry_run: bool, as_json: bool, version: int | None,
            before: str | None, host: str | None) -> None:
    """Bring archives back: files or folders from the catalog, or archive ids.

    Retrievals cost money: --dry-run shows how many archives and bytes first.
    Without --wait the daemon follows the jobs and downloads when they finish.
    Files land at the restore folder + their whole original path, unless --strip.
    """
    import json
    import os

    from glacierd import humanize, pricing
    from glacierd.status import daemon_running
    from glacierd.wiring import make_restorer

    if not paths and not archive_ids:
        raise click.UsageError("name paths to restore, or --archive-id")
    store, target = services(ctx)
    restorer = make_restorer(ctx.config, store, target.backend)
    restorer.strip = os.path.abspath(strip) if strip else None
    chosen = restorer.select(paths, archive_ids, before=parse_date(before), version=version,
                             host=host)
    total = sum(a.size for a in chosen)
    tier = tier or ctx.config.restore.tier
    storage_class = ctx.config.storage_class
    table = ctx.config.price_table()
    delay = pricing.retrieval_delay(storage_class, tier, table)
    sizes = retrieved_sizes(chosen, target.backend.retrieves_ranges)
    # Every tier the class offers, priced, before anything is requested.
    tiers = {t: {"usd": pricing.retrieval_cost(sizes, storage_class, t, table),
                 "typical_delay": pricing.retrieval_delay(storage_class, t, table)}
             for t in pricing.tiers_of(storage_class, table)}
    if dry_run and as_json:
        click.echo(json.dumps({"archives": len(chosen), "bytes": total, "tier": tier,
                               "typical_delay": delay, "tiers": tiers, "files": [
                                   {"path": shown(a.source_path), "size": a.size,
                                    "archive_id": a.archive_id} for a in chosen]}))
        return
    if not as_json:
        cost = pricing.retrieval_cost(sizes, storage_class, tier, table)
        click.echo(f"{humanize.count(len(chosen), 'archive')}, {humanize.size(total)} to "
                   f"retrieve (tier {tier}: {delay} typically"
                   + (f", about ${cost:.4f})" if cost is not None else ")"))
    if dry_run:
        for name, quote in tiers.items():
            click.echo(f"  tier {name}: about ${quote['usd']:.4f}, "
                       f"{quote['typical_delay']} typically")
        for archive in chosen:
            click.echo(f"  {shown(archive.source_path)} ({humanize.size(archive.size)})")
        return
    records = restorer.request(chosen, Path(to_dir) if to_dir else None, overwrite=overwrite,
                               tier=tier)
    failed = [r for r in records if r.status == "failed"]
    for record in failed:
        click.echo(f"failed {shown(record.source_path)}: {record.error}", err=True)
    if not wait:
        if daemon_running(store):
            click.echo("requested; the daemon downloads them when Glacier is ready "
                       "(`glacierd status` shows progress)")
        else:
            click.echo("requested. No glacierd daemon is running: nothing downloads until "
                       "it runs (`glacierd run`, or systemctl start glacierd), or until you run "
                       "this command again with --wait", err=True)
        raise click.exceptions.Exit(1 if failed else 0)
    _wait_for_restores(restorer, [r.id for r in records], as_json,
                       lambda t: f"{ctx.config.target}: typically ready "
                                 f"{pricing.retrieval_delay(storage_class, t)}")


def retrieved_sizes(chosen: list[Any], ranged: bool) -> list[int]:
    """What each retrieval of a restore of ``chosen`` brings back (what is billed):
    an archive whole (an empty file: nothing); packed files, one retrieval a
    bundle — the range holding them where the service retrieves ranges
    (``ranged``), else the whole bundle."""
    from glacierd.restorer import retrieval_ranges

    sizes = [a.size for a in chosen if a.archive_id and not a.packed]
    ranges = retrieval_ranges(chosen)
    spans = {a.bundle_archive_id: (ranges[a.id], a.bundle_size)
             for a in chosen if a.id in ranges}
    sizes += [(last - first + 1) if ranged else int(whole or 0)
              for (first, last), whole in spans.values()]
    return sizes


def _wait_for_restores(restorer: Any, ids: list[int], as_json: bool,
                       expect: Callable[[str], str]) -> None:
    """``expect(tier)``: where the bytes come from and when they are typically ready."""
    import json
    import time

    from glacierd import humanize

    records = [restorer.store.restore(i) for i in ids]
    told: set[str] = set()
    with transfer_view(len(records), sum(r.size for r in records)) as view:
        restorer.on_progress = view.progress
        try:
            while True:
                records = [restorer.store.restore(i) for i in ids]
                for r in records:
                    if r.status == "waiting" and r.job_id and r.job_id not in told:
                        told.add(r.job_id)
                        since = humanize.relative(r.job_requested_at, restorer.now())
                        where, _, when = expect(r.tier).partition(": ")
                        view.note(f"waiting for {where}: {shown(r.source_path)}: {r.tier} "
                                  f"retrieval requested {since}; {when} after the request")
                if all(r.status in ("done", "failed") for r in records):
                    break
                restorer.poll()
                if any(r.status in ("requested", "waiting")
                       for r in (restorer.store.restore(i) for i in ids)):
                    time.sleep(1)  # waiting for Glacier's jobs: a polling period
        except KeyboardInterrupt:
            view.note("interrupted: the jobs go on at Glacier; run the same command again to "
                      "resume (verified parts are kept)")
            raise click.exceptions.Exit(130) from None
        for record in records:
            view.finished("restored" if record.status == "done" else "failed",
                          record.dest_path, record.size)
        if not as_json:
            view.note(view.summary())
    failures = 0
    for record in records:
        if as_json:
            click.echo(json.dumps({"path": shown(record.source_path),
                                   "dest": shown(record.dest_path), "status": record.status,
                                   "size": record.size, "archive_id": record.archive_id,
                                   "error": record.error}))
        elif record.status == "done":
            click.echo(f"restored {shown(record.dest_path)}")
        else:
            click.echo(f"failed {shown(record.source_path)}: {record.error}", err=True)
        failures += record.status != "done"
    if failures:
        raise click.exceptions.Exit(1)


@cli.command()
@click.option("--refresh", is_flag=True, help="request a new inventory")
@click.option("--wait", is_flag=True, help="wait for it, fetch it and reconcile the catalog")
@click.option("--json", "as_json", is_flag=True, help="one JSON document (see the README)")
@click.pass_obj
def inventory(ctx: Context, refresh: bool, wait: bool, as_json: bool) -> None:
    """Show the last inventory; --refresh requests a new one (of a bucket: its
    listing, at once)."""
    import json

    from glacierd import humanize

    store, target = services(ctx)
    vault = ctx.config.target
    job_id = None
    client = target.glacier
    if client is None:  # a bucket: the listing is the inventory, and it is quick
        if refresh or wait:
            _list_bucket(ctx, store, target)
    elif refresh:
        job_id = client.initiate_inventory_job(vault)
        store.add_job(job_id, vault, "inventory")
        if not as_json:
            click.echo(f"inventory requested (job {job_id}); Glacier takes about 4 h")
    if wait and client is not None:
        _wait_for_inventory(ctx, store, client)
    last = store.last_inventory(vault)
    if as_json:
        click.echo(json.dumps({"vault": vault, "requested_job_id": job_id, "last": {
            "date": last.inventory_date.isoformat(timespec="seconds"),
            "archives": last.archive_count, "bytes": last.total_size, "job_id": last.job_id,
            "fetched_at": last.fetched_at.isoformat(timespec="seconds")} if last else None}))
        return
    if last is None:
        click.echo("no inventory yet" + ("" if refresh else "; --refresh requests one"))
        return
    click.echo(f"last inventory of {vault}: {last.inventory_date:%Y-%m-%d %H:%M} UTC, "
               f"{humanize.count(last.archive_count, 'archive')}, "
               f"{humanize.size(last.total_size)}")


def _list_bucket(ctx: Context, store: Any, target: Any) -> None:
    from glacierd import catalog, wiring
    from glacierd.store.states import utcnow

    s3 = ctx.config.s3
    assert s3 is not None and target.s3 is not None
    result = catalog.list_bucket(target.s3, s3.bucket, s3.prefix, store, ctx.config.state.dir,
                                 utcnow(), wiring.unsealer(ctx.config))
    click.echo(f"listed s3://{s3.bucket}/{s3.prefix}: {len(result.adopt)} added to the catalog, "
               f"{len(result.foreign)} not glacierd's", err=True)
    _tell_sealed([result])


def _tell_sealed(results: list[Any]) -> None:
    """Encrypted archives a catalog could not take in: said, and listed."""
    sealed = [a for r in results for a in r.sealed]
    if not sealed:
        return
    click.echo(f"{len(sealed)} encrypted archives were not added: no identity opens their "
               "descriptions (set [encryption] identity_file to the key they were encrypted "
               "to, and run catalog rebuild again):", err=True)
    for archive in sealed:
        click.echo(f"  {archive.archive_id}  {archive.size} bytes  "
                   f"{archive.created:%Y-%m-%d %H:%M}", err=True)


def _wait_for_inventory(ctx: Context, store: Any, client: Any) -> None:
    import time

    from glacierd import wiring
    from glacierd.daemon import poll_inventories
    from glacierd.store.states import utcnow

    if not store.jobs(statuses=["InProgress"], kind="inventory"):
        raise click.ClickException("no inventory job is in progress: use --refresh")
    unseal = wiring.unsealer(ctx.config)
    while store.jobs(statuses=["InProgress"], kind="inventory"):
        _tell_sealed(poll_inventories(client, store, ctx.config.state.dir, utcnow(), unseal))
        if store.jobs(statuses=["InProgress"], kind="inventory"):
            time.sleep(1)  # waiting for Glacier's job: a polling period


def _read_bundle_indexes(ctx: Context, store: Any, backend: Any) -> None:
    """The files packed in the bundles the catalog now holds, from the bundles'
    own indexes (a retrieval each: this waits for them)."""
    import time

    from glacierd.bundleindex import BundleIndexer
    from glacierd.hostname import this_host

    indexer = BundleIndexer(store, backend, tier=ctx.config.restore.tier,
                            host=this_host())
    left = indexer.step()
    if left:
        click.echo(f"reading the index of {left} bundles (a retrieval each); waiting", err=True)
    while left:
        time.sleep(1)  # waiting for the service's retrievals: a polling period
        left = indexer.step()


@cli.group()
def catalog() -> None:
    """The catalog of archives."""


@catalog.command("rebuild")
@click.pass_obj
def catalog_rebuild(ctx: Context) -> None:
    """Rebuild the catalog from the vault's inventory (requests one if needed) or
    from the bucket's listing."""
    store, target = services(ctx)
    client = target.glacier
    if client is None:
        _list_bucket(ctx, store, target)
    else:
        vault = ctx.config.vault.name
        if not store.jobs(statuses=["InProgress"], kind="inventory"):
            job_id = client.initiate_inventory_job(vault)
            store.add_job(job_id, vault, "inventory")
            click.echo(f"inventory requested (job {job_id}); waiting for it")
        _wait_for_inventory(ctx, store, client)
    _read_bundle_indexes(ctx, store, target.backend)
    archives, paths = store.catalog_size()
    click.echo(f"catalog has {archives} archives of {paths} files")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="a JSON array (see the README)")
@click.option("--long", "long", is_flag=True, help="one block a job, its id whole")
@click.pass_obj
def jobs(ctx: Context, as_json: bool, long: bool) -> None:
    """Glacier jobs glacierd started or follows."""
    from glacierd.cli import listing

    store = open_store(ctx, read_only=True)
    rows = [{"kind": j.kind, "status": j.status, "tier": j.tier, "created_at": j.created_at,
             "error": j.error, "job_id": j.job_id, "archive_id": j.archive_id,
             "vault": j.vault} for j in store.jobs(limit=200)]
    store.close()
    listing.show(rows, [
        listing.Column("kind", "kind"), listing.Column("status", "status"),
        listing.Column("tier", "tier", lambda v: v or "-"),
        listing.Column("created_at", "started", listing.when),
        listing.Column("error", "error", lambda v: v or ""),
        listing.Column("job_id", "job id", is_id=True)], as_json=as_json, long=long,
        empty="no Glacier jobs")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="a JSON array (see the README)")
@click.pass_obj
def vaults(ctx: Context, as_json: bool) -> None:
    """Vaults: name, archive count, size, last inventory."""
    from glacierd import humanize, wiring
    from glacierd.cli import listing

    store = open_store(ctx, read_only=True)
    client = wiring.make_client(ctx.config)
    rows = []
    for vault in client.list_vaults():
        last = store.last_inventory(vault["VaultName"])
        rows.append({"vault": vault["VaultName"],
                     "archives": vault.get("NumberOfArchives"),
                     "size": vault.get("SizeInBytes"),
                     "last_inventory": last.inventory_date if last else
                     vault.get("LastInventoryDate")})
    store.close()
    listing.show(rows, [
        listing.Column("vault", "vault"),
        listing.Column("archives", "archives",
                       lambda n: humanize.count(n, "archive") if n is not None else "?"),
        listing.Column("size", "size", listing.size),
        listing.Column("last_inventory", "last inventory",
                       lambda v: listing.when(v) if v else "never")],
        as_json=as_json, long=False, empty="no vaults in this region")


@cli.command()
@click.argument("path", required=False)
@click.option("--json", "as_json", is_flag=True, help="one JSON document (see the README)")
@click.pass_obj
def verify(ctx: Context, path: str | None, as_json: bool) -> None:
    """Re-hash local files and compare with the catalog: unchanged, changed, missing;
    and name the files (known to glacierd, or in watched folders) with no backup."""
    import json
    import os

    from glacierd.glacier.treehash import tree_hash_file
    from glacierd.restorer import pick_versions, sha256_file

    store = open_store(ctx, read_only=True)
    prefix = os.path.abspath(path) if path else None
    found: list[tuple[str, str]] = []  # (state, path)
    archived = pick_versions(store.archives(prefix))
    for archive in archived:
        local = Path(archive.source_path)
        if not local.is_file():
            state = "missing"
        elif local.stat().st_size != archive.file_size:
            state = "changed"
        elif archive.encrypted:  # the catalog's hashes of the plaintext (none: adopted)
            state = ("unchanged" if archive.plain_sha256 is None
                     or sha256_file(local) == archive.plain_sha256 else "changed")
        else:
            state = "unchanged" if tree_hash_file(local) == archive.tree_hash else "changed"
        found.append((state, archive.source_path))
    backed_up = {a.source_path for a in archived}
    unbacked = set(store.files_without_backup(prefix)) | {
        str(p) for p in _watched_files(ctx, prefix) if str(p) not in backed_up}
    found += [("not backed up", p) for p in sorted(unbacked) if os.path.isfile(p)]
    store.close()
    counts = {state: sum(1 for s, _ in found if s == state)
              for state in ("unchanged", "changed", "missing", "not backed up")}
    if as_json:
        click.echo(json.dumps({
            "counts": {k.replace(" ", "_"): n for k, n in counts.items()},
            "files": [{"path": shown(p), "state": s.replace(" ", "_")} for s, p in found]}))
    else:
        for state, local_path in found:
            if state != "unchanged":
                click.echo(f"{state}\t{shown(local_path)}")
        click.echo(", ".join(f"{n} {state}" for state, n in counts.items()))
    if counts["changed"] or counts["missing"] or counts["not backed up"]:
        raise click.exceptions.Exit(1)


def _watched_files(ctx: Context, prefix: str | None) -> list[Path]:
    """Every file the config's watched folders hold (and would back up)."""
    import os

    from glacierd.watcher import wanted

    try:
        watches = ctx.config.watch
    except (click.ClickException, GlacierdError):  # --local: no config file to read
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
    from glacierd import pricing
    from glacierd.errors import RestoreError
    from glacierd.store.states import utcnow

    if bool(path) == bool(archive_id):
        raise click.UsageError("give either a PATH (a file or a folder) or --archive-id")
    from glacierd import humanize

    store, target = services(ctx)
    if archive_id:
        found = store.archive_by_id(archive_id)
        if found is None:
            raise RestoreError(f"archive id {archive_id}: not in the catalog")
        targets = [found]
    else:
        import os

        full = os.path.abspath(str(path))
        below = full.rstrip("/") + "/"
        targets = [a for a in store.archives(full) if (a.archive_id or a.packed) and (
            a.source_path == full or a.source_path.startswith(below))]
        if not targets:
            raise RestoreError(f"{shown(full)}: no archive at or below it in the catalog")
    elsewhere = [a for a in targets if a.vault != ctx.config.target]
    for archive in elsewhere:  # the config now names another vault or bucket
        click.echo(f"skipped {shown(archive.source_path)}: archive {archive.archive_id} is in "
                   f"{archive.vault}, not {ctx.config.target}", err=True)
    targets = [a for a in targets if a.vault == ctx.config.target]
    storage_class = ctx.config.storage_class
    table = ctx.config.price_table()
    charges = 0.0
    for archive in targets:
        if archive.packed:  # nothing is deleted in the service (unless its bundle empties)
            continue
        early = pricing.early_deletion(archive.size, (utcnow() - archive.created_at).days,
                                       storage_class, table)
        if early is None:
            continue
        charges += early.charge_usd
        kind = "a vault" if storage_class == pricing.VAULT else storage_class
        click.echo(f"warning: {shown(archive.source_path)} was archived "
                   f"{humanize.relative(archive.created_at, utcnow())}; {kind} keeps it "
                   f"{table[storage_class].minimum_days} days at least: deleting it now is "
                   f"charged as {early.days_left} more days (about ${early.charge_usd:.4f})",
                   err=True)
    if charges:
        click.echo(f"early-deletion charges in all: about ${charges:.4f}", err=True)
    files = len({a.source_path for a in targets})
    what = (f"{humanize.count(len(targets), 'archive')} of {humanize.count(files, 'file')} "
            f"({humanize.size(sum(a.size for a in targets))})")
    if not yes:
        click.echo(f"would delete {what}; add --yes to do it", err=True)
        raise click.exceptions.Exit(1)
    for archive in targets:
        if archive.packed:
            emptied = store.mark_member_deleted(archive.id)
            click.echo(f"deleted {shown(archive.source_path)} from the catalog; its bytes stay "
                       f"in bundle {archive.bundle_archive_id} until it is repacked")
            if emptied is not None:  # no file of it is left: the bundle goes whole
                bundle = store.archive_by_id(emptied)
                target.backend.delete(emptied)
                store.mark_archive_deleted(emptied)
                early = pricing.early_deletion(
                    bundle.size, (utcnow() - bundle.created_at).days, storage_class,
                    table) if bundle is not None else None
                click.echo(f"deleted bundle {emptied}: none of its files is left"
                           + (f" (early-deletion charge about ${early.charge_usd:.4f})"
                              if early is not None else ""))
            continue
        assert archive.archive_id is not None
        target.backend.delete(archive.archive_id)  # one already gone is fine
        for manifest in store.manifests_of(archive.archive_id):  # a long path's pieces
            target.backend.delete(manifest)
        store.mark_archive_deleted(archive.archive_id)
        click.echo(f"deleted {shown(archive.source_path)} {archive.archive_id}")


