"""Applying an inventory to the catalog: the daemon's scheduled work and
``glacierd inventory`` / ``catalog rebuild`` share this.

A vault's inventory is a Glacier job (hours, a day's lag). A bucket's is its
listing, made at once (``list_bucket``): each of glacierd's objects gives its
description document (metadata) and tree hash (a tag), and the listing is
written in the vault inventory's JSON form, so one reconciliation serves both.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from glacierd import bundle, description, humanize, inventory
from glacierd.errors import InventoryError
from glacierd.glacier import GlacierClient
from glacierd.hostname import this_host
from glacierd.pathtext import shown
from glacierd.store.repository import Adoption, JobRecord, Store

if TYPE_CHECKING:
    from glacierd.s3.client import S3Client

log = logging.getLogger("glacierd.catalog")

ADOPT_BATCH = 500
"""Archives adopted (or events recorded) in one transaction: a rebuilt catalog of
a million archives is two thousand commits, not two million."""

T = TypeVar("T")


def _batches(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), ADOPT_BATCH):
        yield items[start:start + ADOPT_BATCH]


def apply_inventory(store: Store, vault: str, job_id: str, output: Path,
                    unseal: inventory.Unseal | None = None,
                    host: str | None = None) -> inventory.Reconciliation:
    """Reconcile a downloaded inventory with the catalog and record what it found.
    ``InventoryError`` when it cannot be read (the job is then fetched again).
    ``unseal``: opens encrypted archives' descriptions (with an identity).
    ``host``: this machine's name (default: its host name); another host's
    archives are adopted without being tied to this host's files."""
    host = host or this_host()
    try:
        inv = inventory.parse(output.read_bytes())
    except (OSError, inventory.UnreadableInventory) as exc:
        raise InventoryError(f"{output}: inventory job {job_id}: {exc}; it is fetched again "
                             "at the next poll") from None
    catalog = [inventory.CatalogEntry(archive_id, created, path)
               for archive_id, created, path in store.catalog_entries(vault)]
    unconfirmed = [inventory.PendingConfirmation(u.id, u.token, u.tree_hash, u.stored_size)
                   for u in store.unconfirmed_uploads() if u.tree_hash]
    result = inventory.reconcile(inv, catalog, unconfirmed, unseal)
    for pending, archive in result.confirmed:
        store.confirm_upload(pending.upload_row, archive.archive_id)
        log.info("confirmed upload %d as archive %s", pending.upload_row, archive.archive_id)
    problems = [("warning", "description-problem",
                 f"archive {archive.archive_id}: its description has out-of-range fields "
                 f"({', '.join(info.problems)}); they were ignored")
                for archive, info in result.adopt if info.problems]
    if problems:
        store.add_events(problems)
    adoptions = [Adoption(
        vault, archive.archive_id, archive.size, archive.tree_hash, archive.description,
        info.path, info.mtime_ns, archive.created,
        plain_size=info.size if archive.description.startswith(description.SEALED_PREFIX)
        else None,
        manifest_ids=tuple(result.manifests.get(info.token, [])),
        link_file=info.host == host, is_bundle=bundle.is_bundle_name(info.path),
        event=("info", "adopted", f"{shown(info.path)}: archive {archive.archive_id} found "
                                  "in the vault, added to the catalog"))
        for archive, info in result.adopt]
    for batch in _batches(adoptions):
        store.adopt_archives(batch)
    for missing in _batches(result.missing):
        store.add_events([
            ("warning", "missing-in-vault",
             f"{shown(entry.source_path)}: archive {entry.archive_id} is not in the "
             f"inventory of {inv.date:%Y-%m-%d}") for entry in missing])
    if result.sealed:
        store.event("warning", "sealed-archives",
                    f"{len(result.sealed)} encrypted archives of glacierd's were not added to "
                    "the catalog: no identity here opens their descriptions (set [encryption] "
                    "identity_file and rebuild)")
    for foreign in _batches(result.foreign):
        store.add_events([
            ("info", "foreign-archive",
             f"archive {archive.archive_id} ({humanize.size(archive.size)}) was not made by "
             f"glacierd: {archive.description[:80]!r}") for archive in foreign])
    store.add_inventory(vault, job_id, inv.date, len(inv.archives), inv.total_size, str(output))
    return result


def fetch_inventory(client: GlacierClient, store: Store, job: JobRecord, state_dir: Path,
                    now: dt.datetime,
                    unseal: inventory.Unseal | None = None) -> inventory.Reconciliation:
    """Download a finished inventory job's output (mode 0600) and apply it; the job
    counts as done only once its output was applied (else the next poll retries)."""
    dest = _inventory_file(state_dir, now, job.job_id[:16])
    client.download_job_output(job.vault, job.job_id, dest)
    os.chmod(dest, 0o600)
    result = apply_inventory(store, job.vault, job.job_id, dest, unseal)
    # Only now: a job marked done before its output was applied would never be retried.
    store.update_job(job.job_id, "Downloaded", output_path=str(dest))
    return result


def _inventory_file(state_dir: Path, now: dt.datetime, name: str) -> Path:
    folder = state_dir / "inventories"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder / f"{now:%Y%m%dT%H%M%SZ}-{name}.json"


def list_bucket(s3: S3Client, bucket: str, prefix: str, store: Store, state_dir: Path,
                now: dt.datetime,
                unseal: inventory.Unseal | None = None) -> inventory.Reconciliation:
    """A bucket's inventory from its listing (ListObjectsV2, then a HEAD and the
    tags of each of glacierd's objects), applied to the catalog."""
    import json

    from glacierd.s3 import errors as s3_errors
    from glacierd.s3 import naming

    archives = []
    for listed in s3.list_objects(bucket, prefix):
        key = listed.get("Key", "")
        description, tree_hash = "", ""
        if naming.owner(prefix, key) is not None:
            try:
                head = s3.head_object(bucket, key)
                description = head.metadata.get(naming.METADATA_NAME, "")
                tree_hash = head.metadata.get(naming.TREE_HASH_TAG) or s3.get_object_tagging(
                    bucket, key).get(naming.TREE_HASH_TAG, "")  # one PUT, or multipart
            except s3_errors.NotFound:
                continue  # deleted while listed
            if not tree_hash:  # Complete made it but the tag was not written yet
                log.warning("s3://%s/%s has no tree hash tag yet; left for the next listing",
                            bucket, key)
                continue
        archives.append({"ArchiveId": key, "ArchiveDescription": description,
                         "CreationDate": listed.get("LastModified") or now.isoformat(),
                         "Size": int(listed.get("Size") or 0), "SHA256TreeHash": tree_hash})
    dest = _inventory_file(state_dir, now, f"s3-{bucket}")
    doc = {"VaultARN": f"arn:aws:s3:::{bucket}/{prefix}",
           "InventoryDate": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "ArchiveList": archives}
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(doc, fh)
    return apply_inventory(store, bucket, f"s3-listing-{now:%Y%m%dT%H%M%S.%fZ}", dest, unseal)
