"""``glacierd repack``: bundles rewritten without the files deleted from them."""

from __future__ import annotations

import click

from glacierd.cli import Context, cli, services
from glacierd.pathtext import shown


@cli.command()
@click.option("--min-dead", default=0.5, show_default=True, type=click.FloatRange(0.01, 1.0),
              help="repack a bundle once deleted files are this share of its bytes")
@click.option("--yes", is_flag=True, help="really do it (young bundles cost extra to delete)")
@click.pass_obj
def repack(ctx: Context, min_dead: float, yes: bool) -> None:
    """Rewrite bundles whose deleted files take up --min-dead of them: the files
    still alive, read again from disk, go into a new bundle; once it is archived,
    the old bundle is deleted (the minimum storage duration may charge for it)."""

    from glacierd import humanize, pricing, wiring
    from glacierd.hostname import this_host
    from glacierd.store.states import utcnow

    config = ctx.config
    store, target = services(ctx)
    try:
        candidates = store.bundles_to_repack(config.target, min_dead)
        if not candidates:
            click.echo(f"no bundle in {config.target} has {min_dead:.0%} or more of its bytes "
                       "in deleted files")
            return
        table = config.price_table()
        charges = 0.0
        for c in candidates:
            early = pricing.early_deletion(c.bundle.size, (utcnow() - c.bundle.created_at).days,
                                           config.storage_class, table)
            charges += early.charge_usd if early is not None else 0.0
            click.echo(f"bundle {c.bundle.archive_id}: {humanize.size(c.dead_bytes)} of "
                       f"{humanize.size(c.bundle.size)} deleted; "
                       f"{humanize.count(len(c.alive), 'file')} to repack"
                       + (f"; deleting it now is charged about ${early.charge_usd:.4f} "
                          f"({early.days_left} days of its minimum duration left)"
                          if early is not None else ""))
        if not yes:
            click.echo(f"would repack {humanize.count(len(candidates), 'bundle')}"
                       + (f" (early-deletion charges about ${charges:.4f})" if charges else "")
                       + "; add --yes to do it", err=True)
            raise click.exceptions.Exit(1)
        packer = wiring.make_packer(config, store, host=this_host(),
                                    root_of=lambda _path: None, now=utcnow,
                                    on_failure=lambda _record, _error: None)
        uploader = wiring.make_uploader(config, store, target.backend)
        failed = 0
        try:
            for c in candidates:
                made = packer.repack(c.alive) if c.alive else None
                if c.alive and made is None:
                    failed += 1
                    click.echo(f"bundle {c.bundle.archive_id}: not repacked: a file of it is "
                               "no longer on disk as it was packed (its bytes stay in the "
                               "bundle)", err=True)
                    continue
                if made is not None:
                    outcome = uploader.upload_path(made.path, root=packer.bundles_dir)
                    if outcome.status != "archived":
                        failed += 1
                        click.echo(f"{shown(made.path)}: {outcome.status}: {outcome.error}; "
                                   "the daemon uploads it later", err=True)
                        continue
                    packer.uploaded(made.path)
                    click.echo(f"repacked {humanize.count(len(c.alive), 'file')} of bundle "
                               f"{c.bundle.archive_id} into {outcome.archive_id}")
            for bundle in store.emptied_bundles(config.target):
                target.backend.delete(bundle)
                store.mark_archive_deleted(bundle)
                click.echo(f"deleted bundle {bundle}")
        finally:
            uploader.close()
        if failed:
            raise click.exceptions.Exit(1)
    finally:
        store.close()
