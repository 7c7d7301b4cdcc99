"""What the vault or bucket costs, from the catalog (``glacierd cost``, the cost
line of ``glacierd status``): the store's figures priced by ``glacierd.pricing``.

Storage a month and its per-object overhead come from the running totals (a
few rows at a million archives); the early-deletion liability reads only the archives still
within their class's minimum duration; the write requests of this month come
from the uploads and parts the store recorded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from glacierd import pricing
from glacierd.store import totals
from glacierd.store.reader import Reader, running_totals

if TYPE_CHECKING:
    from glacierd.store.repository import Store

SMALL_FILE = 1024 * 1024
"""Below this an archive's overhead is a noticeable part of its cost: what
packing into bundles is for."""


@dataclass(frozen=True)
class MonthlyStorage:
    storage_class: str
    objects: int
    bytes: int
    month_usd: float
    overhead_usd: float


@dataclass(frozen=True)
class CostReport:
    target: str
    storage: MonthlyStorage
    minimum_days: int
    young_objects: int
    early_deletion_usd: float
    small_objects: int
    small_overhead_usd: float
    requests_this_month: int
    requests_usd: float
    prices: str
    packed_files: int = 0
    """Files packed into bundles: each would have been an archive of its own."""
    packing_saved_usd: float = 0.0
    """Their per-archive overhead a month, which packing saved (bundles count as
    archives in ``storage``: their own overhead is there)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def monthly(reader: Reader, target: str, storage_class: str,
            table: Mapping[str, pricing.ClassPrices], *,
            kept: totals.Totals | None = None) -> MonthlyStorage:
    """The live archives of ``target`` a month, from the catalog's running totals
    (``kept``, read if not given; ``glacierd status`` and ``glacierd cost`` share
    it). Only a minimum billable size other than 0 or 128 KB needs a scan."""
    p = table[storage_class]
    floor = p.min_billable_kb * pricing.KB
    objects, size, small, small_bytes = (kept if kept is not None else running_totals(reader)
                                         ).get((totals.ARCHIVES, target), (0, 0, 0, 0))
    padding = small * floor - small_bytes if floor == totals.SMALL_BYTES else 0
    if floor not in (0, totals.SMALL_BYTES):
        padding = int(reader.rows(
            "SELECT coalesce(sum(CASE WHEN size < :floor THEN :floor - size ELSE 0 END), 0) "
            "FROM archives WHERE vault = :vault AND archive_id IS NOT NULL "
            "AND deleted_at IS NULL", {"floor": floor, "vault": target})[0][0])
    overhead = (objects * pricing.object_overhead_month(storage_class, table)
                + padding / pricing.GB * p.storage_gb_month)
    return MonthlyStorage(storage_class, objects, size,
                          size / pricing.GB * p.storage_gb_month + overhead, overhead)


def report(store: Store, target: str, storage_class: str,
           table: Mapping[str, pricing.ClassPrices], now: dt.datetime, *,
           prices_note: str = pricing.SOURCE) -> CostReport:
    from glacierd.store.reader import EngineReader

    p = table[storage_class]
    reader = EngineReader(store.engine, store.url)
    kept = running_totals(reader)
    storage = monthly(reader, target, storage_class, table, kept=kept)
    packed = kept.get((totals.PACKED, target), (0, 0, 0, 0))
    # as archives of their own, each would add its overhead, and pad to the class's minimum
    padding = (packed[2] * p.min_billable_kb * pricing.KB - packed[3]
               if p.min_billable_kb * pricing.KB == totals.SMALL_BYTES else 0)
    saved = (packed[0] * pricing.object_overhead_month(storage_class, table)
             + padding / pricing.GB * p.storage_gb_month)
    young = [pricing.StoredObject(size, created) for size, created in
             store.archives_since(target, now - dt.timedelta(days=p.minimum_days))]
    early = pricing.stored_cost(young, storage_class, now, table=table)
    small = store.small_archives(target, SMALL_FILE)
    small_overhead = small * pricing.object_overhead_month(storage_class, table)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    single, multipart, parts = store.requests_since(target, month_start)
    # A multipart upload: create (initiate), its parts, complete; S3 also tags it.
    per_upload = 2 if storage_class == pricing.VAULT else 3
    requests = single + multipart * per_upload + parts
    return CostReport(target, storage, p.minimum_days, early.young_objects,
                      early.early_deletion_usd, small, small_overhead, requests,
                      requests / 1000 * p.put_per_1000, prices_note, packed[0], saved)
