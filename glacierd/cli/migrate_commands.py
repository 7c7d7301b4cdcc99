"""``glacierd migrate``: move a vault into an S3 bucket, priced first, resumable."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from glacierd.cli import Context, cli, open_store, startup_done
from glacierd.errors import AlreadyRunningError, ConfigError, MigrationError
from glacierd.s3.classes import S3_STORAGE_CLASSES


@cli.command()
@click.option("--to-bucket", "bucket", required=True, help="the S3 bucket to move into")
@click.option("--prefix", default="", help="put every key under this prefix")
@click.option("--storage-class", type=click.Choice(S3_STORAGE_CLASSES), default="DEEP_ARCHIVE",
              show_default=True)
@click.option("--tier", type=click.Choice(["Bulk", "Standard", "Expedited"]), default="Bulk",
              show_default=True, help="retrieval tier (Bulk is the cheapest)")
@click.option("--max-jobs", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="retrieval jobs at once")
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True,
              help="chunks in flight (memory: concurrency x chunk size)")
@click.option("--vault", default=None, help="the vault (default: the config's [vault])")
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False), default=None,
              help="a reviewed plan (CSV archive_id,key) whose keys win")
@click.option("--write-plan", type=click.Path(dir_okay=False), default=None,
              help="write the plan as CSV for review (with --dry-run: and stop)")
@click.option("--dry-run", is_flag=True, help="price and time it; change nothing")
@click.option("--delete-source", is_flag=True,
              help="delete each archive from the vault once its object is verified")
@click.option("--inventory-max-age", type=float, default=7.0, show_default=True,
              help="days: an older inventory is requested anew")
@click.option("--s3-endpoint-url", default=None,
              help="another S3 endpoint than [aws] endpoint_url (a local peer)")
@click.option("--poll-seconds", type=float, default=60.0, show_default=True,
              help="how often to ask about jobs that are not ready")
@click.option("--json", "as_json", is_flag=True, help="the report as one JSON document")
@click.pass_obj
def migrate(ctx: Context, bucket: str, prefix: str, storage_class: str, tier: str,
            max_jobs: int, concurrency: int, vault: str | None, plan_file: str | None,
            write_plan: str | None, dry_run: bool, delete_source: bool,
            inventory_max_age: float, s3_endpoint_url: str | None, poll_seconds: float,
            as_json: bool) -> None:
    """Move a vault's archives into S3 objects: each archive retrieved, streamed
    in verified chunks into a multipart upload, checked against the inventory's
    tree hash before it is completed. A kill resumes where it stopped."""
    import json
    import time

    from glacierd import humanize, pricing, wiring
    from glacierd.migration import names
    from glacierd.migration.mover import Mover, MoveSettings, plan_rows
    from glacierd.store.migrations import MigrationLedger
    from glacierd.store.states import MigrationStatus

    config = ctx.config
    vault = vault or (config.vault.name if config.s3 is None else None)
    if not vault or vault.startswith("("):
        raise ConfigError(f"{config.source}: the vault to move: [vault] name, or --vault")
    startup_done()
    store = open_store(ctx)
    glacier = wiring.make_client(config)
    inv = _inventory(ctx, store, glacier, vault, inventory_max_age)
    archives = [names.SourceArchive(a.archive_id, a.description, a.created, a.size, a.tree_hash)
                for a in inv.archives]
    overrides: dict[str, str] = {}
    if plan_file:
        try:
            overrides = names.read_plan(Path(plan_file).read_text(encoding="utf-8"), plan_file)
        except (OSError, ValueError) as exc:
            raise MigrationError(f"{plan_file}: {getattr(exc, 'strerror', None) or exc}") \
                from None
    settings = MoveSettings(tier=tier, max_jobs=max_jobs, concurrency=concurrency,
                            part_size=config.upload.part_size, delete_source=delete_source,
                            lock_dir=config.state.dir / "locks")
    rows = plan_rows(prefix, archives, overrides, settings.part_size)
    if write_plan:
        Path(write_plan).write_text(names.write_plan(
            names.PlannedKey(r.archive_id, r.key, "") for r in rows), encoding="utf-8")
    if dry_run:
        fits = [r for r in rows if not r.too_large]
        estimate = pricing.migration_estimate(
            [r.size for r in fits], [-(-r.size // r.chunk_size) for r in fits], storage_class,
            config.price_table())
        _report_estimate(estimate, [r for r in rows if r.too_large], storage_class, as_json)
        return
    s3 = wiring.make_s3_client(config) if not s3_endpoint_url else _s3_at(config,
                                                                           s3_endpoint_url)
    if not s3.bucket_exists(bucket):
        raise ConfigError(f"--to-bucket {bucket}: no such bucket (or not yours); create it "
                          "first (aws s3 mb, or [s3] create with glacierd)")
    ledger = MigrationLedger(store)
    added = ledger.plan(vault, bucket, storage_class, tier, rows)
    retried = ledger.retry_failed()
    mover = Mover(ledger, glacier, vault, s3, settings)
    if not as_json:
        click.echo(f"{humanize.count(len(rows), 'archive')} in the plan ({added} new"
                   + (f", {retried} failed ones tried again" if retried else "")
                   + f") from the inventory of {inv.date:%Y-%m-%d}", err=True)
    copied = ledger.summary()["bytes_copied"]
    try:
        while mover.step():
            if mover.busy:
                raise AlreadyRunningError(
                    "another glacierd process (the daemon's [migrate], or another "
                    "glacierd migrate) is moving this vault; nothing was done here")
            copied, before = ledger.summary()["bytes_copied"], copied
            waiting = ledger.items([MigrationStatus.RETRIEVING])
            if waiting and copied == before:  # the step moved nothing: jobs not ready yet
                if not as_json:
                    click.echo(f"waiting for {humanize.count(len(waiting), 'retrieval job')} "
                               f"({tier}: {pricing.retrieval_delay(pricing.VAULT, tier)} "
                               "typically); Ctrl-C stops, the same command resumes", err=True)
                time.sleep(poll_seconds)  # Glacier's jobs: nothing to wait on but time
    except KeyboardInterrupt:
        mover.stopping.set()
        click.echo("interrupted: run the same command again and it resumes", err=True)
        raise click.exceptions.Exit(130) from None
    report = _report(ledger, tier, storage_class)
    if as_json:
        click.echo(json.dumps(report, default=str))
    else:
        click.echo(f"{report['done']} of {report['archives']} archives in s3://{bucket}/"
                   f"{prefix} ({humanize.size(report['bytes_done'])}); retrieval so far about "
                   f"${report['retrieval_usd']:.4f}")
        for item in ledger.items([MigrationStatus.FAILED]):
            click.echo(f"failed: {item.archive_id}: {item.error}", err=True)
        for item in ledger.items([MigrationStatus.TOO_LARGE]):
            click.echo(f"too large for one S3 object (5 TiB): {item.archive_id} "
                       f"({humanize.size(item.size)}): left in the vault", err=True)
    if report["failed"]:
        raise click.exceptions.Exit(1)


def _s3_at(config: Any, endpoint_url: str) -> Any:
    import dataclasses

    from glacierd import wiring

    aws = dataclasses.replace(config.aws, endpoint_url=endpoint_url)
    return wiring.make_s3_client(dataclasses.replace(config, aws=aws))


def _inventory(ctx: Context, store: Any, glacier: Any, vault: str, max_age_days: float) -> Any:
    """The newest inventory of ``vault`` in the store, requested (and waited for)
    when there is none or it is older than ``max_age_days``."""
    import time

    from glacierd import inventory
    from glacierd.daemon import poll_inventories
    from glacierd.store.states import utcnow

    last = store.last_inventory(vault)
    fresh = last is not None and utcnow() - last.fetched_at <= dt.timedelta(days=max_age_days)
    if not fresh:
        if not store.jobs(statuses=["InProgress"], kind="inventory"):
            job_id = glacier.initiate_inventory_job(vault)
            store.add_job(job_id, vault, "inventory")
            click.echo(f"inventory of {vault} requested (job {job_id}); Glacier takes about "
                       "4 h", err=True)
        while store.jobs(statuses=["InProgress"], kind="inventory"):
            poll_inventories(glacier, store, ctx.config.state.dir, utcnow())
            if store.jobs(statuses=["InProgress"], kind="inventory"):
                time.sleep(1)  # Glacier's job: nothing to wait on but time
        last = store.last_inventory(vault)
    if last is None:
        raise MigrationError(f"no inventory of {vault} could be fetched")
    try:
        return inventory.parse(Path(last.output_path).read_bytes())
    except (OSError, ValueError) as exc:
        raise MigrationError(f"{last.output_path}: the inventory cannot be read: {exc}") \
            from None


def _report_estimate(estimate: Any, too_large: list[Any], storage_class: str,
                     as_json: bool) -> None:
    import dataclasses
    import json

    from glacierd import humanize

    if as_json:
        doc = dataclasses.asdict(estimate)
        doc["too_large"] = [r.archive_id for r in too_large]
        click.echo(json.dumps(doc))
        return
    click.echo(f"{humanize.count(estimate.archives, 'archive')}, "
               f"{humanize.size(estimate.bytes)} to move into {storage_class}")
    for tier, usd in estimate.retrieval_usd.items():
        click.echo(f"  retrieval, {tier:<9} about ${usd:,.2f}, ready "
                   f"{estimate.retrieval_time[tier]} after each request")
    click.echo(f"  S3 requests: {estimate.requests:,} (about ${estimate.requests_usd:,.2f})")
    click.echo(f"  storage: about ${estimate.first_month_usd:,.2f} a month in {storage_class} "
               f"(the vault: ${estimate.vault_month_usd:,.2f} a month)")
    for row in too_large:
        click.echo(f"  too large for one S3 object (5 TiB), left in the vault: "
                   f"{row.archive_id} ({humanize.size(row.size)})")


def _report(ledger: Any, tier: str, storage_class: str) -> dict[str, Any]:
    from glacierd import pricing

    summary = ledger.summary()
    by = summary["by_status"]
    done = by.get("done", {"archives": 0, "bytes": 0})
    retrieval = pricing.retrieval_usd(summary["bytes_copied"], summary["jobs_requested"],
                                      pricing.VAULT, tier) or 0.0
    return {"archives": summary["archives"], "done": done["archives"],
            "bytes": summary["bytes"], "bytes_done": done["bytes"],
            "failed": by.get("failed", {"archives": 0})["archives"],
            "too_large": by.get("too-large", {"archives": 0})["archives"],
            "jobs_requested": summary["jobs_requested"], "retrieval_usd": retrieval,
            "storage_class": storage_class}

