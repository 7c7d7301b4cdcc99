"""``glacierd cost``: what the vault or bucket costs, before more money is spent."""

from __future__ import annotations

import click

from glacierd.cli import Context, cli, open_store


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="one JSON document (see the README)")
@click.pass_obj
def cost(ctx: Context, as_json: bool) -> None:
    """Storage a month (per-object overhead included), the early-deletion
    liability, the overhead of small files, this month's write requests; priced
    with us-east-1 list prices unless [prices] says otherwise."""
    import json

    from glacierd import costs, humanize, pricing
    from glacierd.store.states import utcnow

    config = ctx.config
    store = open_store(ctx, read_only=True)
    try:
        table = config.price_table()
        note = pricing.SOURCE + (" with [prices] overrides"
                                       if config.prices.overrides() else "")
        report = costs.report(store, config.target, config.storage_class, table, utcnow(),
                              prices_note=note)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(report.as_dict()))
        return
    s = report.storage
    kind = "vault" if s.storage_class == "VAULT" else f"bucket ({s.storage_class})"
    click.echo(f"{kind} {report.target}: {humanize.count(s.objects, 'archive')}, "
               f"{humanize.size(s.bytes)}")
    click.echo(f"  storage: about ${s.month_usd:.4f} a month, of which ${s.overhead_usd:.4f} "
               "is per-archive overhead")
    if report.young_objects:
        click.echo(f"  early deletion: {humanize.count(report.young_objects, 'archive')} "
                   f"younger than {report.minimum_days} days; deleting them now would cost "
                   f"about ${report.early_deletion_usd:.4f}")
    else:
        click.echo(f"  early deletion: none (every archive is older than "
                   f"{report.minimum_days} days)")
    click.echo(f"  small files: {humanize.count(report.small_objects, 'archive')} under 1 MiB, "
               f"their overhead about ${report.small_overhead_usd:.4f} a month")
    if report.packed_files:
        click.echo(f"  packing: {humanize.count(report.packed_files, 'small file')} in "
                   f"bundles saves about ${report.packing_saved_usd:.4f} a month of "
                   "per-archive overhead")
    click.echo(f"  this month's uploads: {report.requests_this_month:,} write requests, about "
               f"${report.requests_usd:.4f}")
    click.echo(f"  prices: {report.prices}")
