"""What storing, retrieving and deleting cost (pure): the figures glacierd tells
before money is spent.

``PRICES`` holds, for a Glacier vault and each S3 storage class glacierd
writes, AWS's published list prices for us-east-1 (``SOURCE`` says where and
when they were read). Other regions differ: ``[prices]`` in the config
overrides any figure (``with_overrides``).

What is billed beyond the bytes themselves:

* per-object overhead: a vault archive and an object in GLACIER or
  DEEP_ARCHIVE carry 32 KB at the class's rate (the index) and, in S3, 8 KB at
  S3 Standard's rate (the name and metadata); GLACIER_IR and STANDARD_IA bill
  an object smaller than 128 KB as 128 KB;
* requests: each PUT, multipart create, part and complete;
* a minimum storage duration: deleting earlier is charged as if the object had
  stayed (``early_deletion``);
* retrievals: per GB and per request, by tier (``retrieval_cost``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

GB = 1024**3
KB = 1024
VAULT = "VAULT"
"""A Glacier vault's archives, beside S3's storage classes."""
TIERS = ("Expedited", "Standard", "Bulk")

SOURCE = ("AWS list prices for us-east-1 (aws.amazon.com/s3/pricing and "
          "aws.amazon.com/s3/glacier/pricing), as read in December 2026")


@dataclass(frozen=True)
class ClassPrices:
    """One storage class's prices, in USD."""

    storage_gb_month: float
    minimum_days: int
    put_per_1000: float
    """PUT, multipart create, each part and complete (a vault's upload requests)."""
    overhead_class_kb: int = 0
    """Billed per object at this class's storage rate."""
    overhead_standard_kb: int = 0
    """Billed per object at S3 Standard's storage rate."""
    min_billable_kb: int = 0
    """A smaller object is billed as this size."""
    retrieval_per_gb: Mapping[str, float] = field(default_factory=dict)
    """By tier; a tier absent here is not offered."""
    retrieval_per_1000: Mapping[str, float] = field(default_factory=dict)
    delay: Mapping[str, str] = field(default_factory=dict)
    """AWS's typical time from a retrieval request to readable bytes, by tier."""


_GLACIER_DELAY = {"Expedited": "1-5 min", "Standard": "3-5 h", "Bulk": "5-12 h"}

PRICES: dict[str, ClassPrices] = {
    VAULT: ClassPrices(0.0036, 90, 0.05, overhead_class_kb=32,
                       retrieval_per_gb={"Expedited": 0.03, "Standard": 0.01, "Bulk": 0.0025},
                       retrieval_per_1000={"Expedited": 10.0, "Standard": 0.05, "Bulk": 0.025},
                       delay=_GLACIER_DELAY),
    "GLACIER": ClassPrices(0.0036, 90, 0.03, overhead_class_kb=32, overhead_standard_kb=8,
                           retrieval_per_gb={"Expedited": 0.03, "Standard": 0.01, "Bulk": 0.0},
                           retrieval_per_1000={"Expedited": 10.0, "Standard": 0.05,
                                               "Bulk": 0.0},
                           delay=_GLACIER_DELAY),
    "DEEP_ARCHIVE": ClassPrices(0.00099, 180, 0.05, overhead_class_kb=32,
                                overhead_standard_kb=8,
                                retrieval_per_gb={"Standard": 0.02, "Bulk": 0.0025},
                                retrieval_per_1000={"Standard": 0.10, "Bulk": 0.025},
                                delay={"Standard": "within 12 h", "Bulk": "within 48 h"}),
    "GLACIER_IR": ClassPrices(0.004, 90, 0.02, min_billable_kb=128,
                              retrieval_per_gb={"Standard": 0.03},
                              retrieval_per_1000={"Standard": 0.01},
                              delay={"Standard": "none: readable at once"}),
    "STANDARD_IA": ClassPrices(0.0125, 30, 0.01, min_billable_kb=128,
                               retrieval_per_gb={"Standard": 0.01},
                               retrieval_per_1000={"Standard": 0.001},
                               delay={"Standard": "none: readable at once"}),
    "STANDARD": ClassPrices(0.023, 0, 0.005, retrieval_per_gb={"Standard": 0.0},
                            retrieval_per_1000={"Standard": 0.0004},
                            delay={"Standard": "none: readable at once"}),
}
STANDARD_RATE = PRICES["STANDARD"].storage_gb_month

OVERRIDABLE = ("storage_gb_month", "minimum_days", "put_per_1000", "overhead_class_kb",
               "overhead_standard_kb", "min_billable_kb",
               *(f"retrieval_per_gb_{t}" for t in TIERS),
               *(f"retrieval_per_1000_{t}" for t in TIERS))
"""The keys ``[prices.CLASS]`` may set."""


def with_overrides(overrides: Mapping[str, Mapping[str, float]]) -> dict[str, ClassPrices]:
    """``PRICES`` with ``[prices]``'s figures: ``{class: {key: value}}``, keys from
    ``OVERRIDABLE``; ``ValueError`` names an unknown class or key."""
    table = dict(PRICES)
    for name, values in overrides.items():
        if name not in table:
            raise ValueError(f"unknown storage class {name!r} (known: {', '.join(table)})")
        prices = table[name]
        for key, value in values.items():
            if key not in OVERRIDABLE:
                raise ValueError(f"{name}.{key}: unknown price (known: {', '.join(OVERRIDABLE)})")
            if value < 0:
                raise ValueError(f"{name}.{key} = {value} must not be negative")
            if key.startswith("retrieval_per_gb_"):
                tier = key.removeprefix("retrieval_per_gb_")
                prices = replace(prices, retrieval_per_gb={**prices.retrieval_per_gb,
                                                           tier: float(value)})
            elif key.startswith("retrieval_per_1000_"):
                tier = key.removeprefix("retrieval_per_1000_")
                prices = replace(prices, retrieval_per_1000={**prices.retrieval_per_1000,
                                                             tier: float(value)})
            else:
                kind_of = type(getattr(prices, key))
                prices = replace(prices, **{key: kind_of(value)})
        table[name] = prices
    return table


def _prices(storage_class: str, table: Mapping[str, ClassPrices] | None) -> ClassPrices:
    return (table or PRICES).get(storage_class, PRICES["STANDARD"])


def object_overhead_month(storage_class: str,
                          table: Mapping[str, ClassPrices] | None = None) -> float:
    """USD a month that every object costs beyond its bytes (its index and name),
    before any minimum billable size."""
    p = _prices(storage_class, table)
    return (p.overhead_class_kb * KB / GB * p.storage_gb_month
            + p.overhead_standard_kb * KB / GB * _prices("STANDARD", table).storage_gb_month)


def billed_month(size: int, storage_class: str,
                 table: Mapping[str, ClassPrices] | None = None) -> tuple[float, float]:
    """(data, overhead) USD a month of one object of ``size`` bytes."""
    p = _prices(storage_class, table)
    padding = max(0, p.min_billable_kb * KB - size)
    return (size / GB * p.storage_gb_month,
            padding / GB * p.storage_gb_month + object_overhead_month(storage_class, table))


@dataclass(frozen=True)
class EarlyDeletion:
    storage_class: str
    days_left: int
    charge_usd: float


def early_deletion(size: int, age_days: int, storage_class: str,
                   table: Mapping[str, ClassPrices] | None = None) -> EarlyDeletion | None:
    """The pro-rated charge for deleting ``size`` bytes ``age_days`` after they
    were stored, or None when the minimum duration has passed."""
    p = _prices(storage_class, table)
    left = p.minimum_days - max(0, age_days)
    if left <= 0:
        return None
    data, overhead = billed_month(size, storage_class, table)
    return EarlyDeletion(storage_class, left, (data + overhead) * left / 30)


def retrieval_delay(storage_class: str, tier: str,
                    table: Mapping[str, ClassPrices] | None = None) -> str:
    """The typical delay of a retrieval: what ``restore`` tells the user to expect."""
    p = _prices(storage_class, table)
    if tier not in p.retrieval_per_gb:
        return "not offered" if storage_class in (VAULT, "GLACIER", "DEEP_ARCHIVE") else \
            "none: readable at once"
    return p.delay.get(tier, "")


def retrieval_usd(size: int, requests: int, storage_class: str, tier: str,
                  table: Mapping[str, ClassPrices] | None = None) -> float | None:
    """USD for retrieving ``size`` bytes in ``requests`` retrievals at ``tier``
    (None: the class does not offer it)."""
    p = _prices(storage_class, table)
    if tier not in p.retrieval_per_gb:
        return None
    return (size / GB * p.retrieval_per_gb[tier]
            + requests / 1000 * p.retrieval_per_1000.get(tier, 0.0))


def retrieval_cost(sizes: Iterable[int], storage_class: str, tier: str,
                   table: Mapping[str, ClassPrices] | None = None) -> float | None:
    """USD to retrieve these archives or objects at ``tier`` (None: not offered)."""
    sizes = list(sizes)
    return retrieval_usd(sum(sizes), len(sizes), storage_class, tier, table)


def tiers_of(storage_class: str, table: Mapping[str, ClassPrices] | None = None) -> list[str]:
    return [t for t in TIERS if t in _prices(storage_class, table).retrieval_per_gb]


# --- what is stored -------------------------------------------------------------------

@dataclass(frozen=True)
class StoredObject:
    size: int
    created_at: dt.datetime


@dataclass(frozen=True)
class StoredCost:
    """What a vault's or bucket's archives cost, as the catalog knows them."""

    storage_class: str
    objects: int
    bytes: int
    month_usd: float
    """Storage a month, overhead included."""
    overhead_usd: float
    """The part of ``month_usd`` that is per-object overhead."""
    early_deletion_usd: float
    """Deleting every object younger than the class's minimum now would cost this."""
    young_objects: int
    small_objects: int
    """Objects below the packing threshold."""
    small_overhead_usd: float
    """Their overhead a month: what packing them into bundles would mostly save."""


def stored_cost(objects: Iterable[StoredObject], storage_class: str, now: dt.datetime, *,
                small_below: int = 1024 * KB,
                table: Mapping[str, ClassPrices] | None = None) -> StoredCost:
    count = total = young = small = 0
    month = overhead = liability = small_overhead = 0.0
    for obj in objects:
        count += 1
        total += obj.size
        data, extra = billed_month(obj.size, storage_class, table)
        month += data + extra
        overhead += extra
        if obj.size < small_below:
            small += 1
            small_overhead += extra
        early = early_deletion(obj.size, (now - obj.created_at).days, storage_class, table)
        if early is not None:
            young += 1
            liability += early.charge_usd
    return StoredCost(storage_class, count, total, month, overhead, liability, young, small,
                      small_overhead)


# --- moving a vault ---------------------------------------------------------------------

@dataclass(frozen=True)
class MigrationEstimate:
    archives: int
    bytes: int
    retrieval_usd: dict[str, float]  # by tier
    requests: int  # S3 write requests (create, parts, complete, tag; or one PUT)
    requests_usd: float
    first_month_usd: float  # storage at the target class
    vault_month_usd: float  # what the vault costs a month now
    retrieval_time: dict[str, str]  # by tier


def migration_estimate(sizes: list[int], parts: list[int], storage_class: str,
                       table: Mapping[str, ClassPrices] | None = None) -> MigrationEstimate:
    """What moving archives of ``sizes`` (in ``parts`` S3 parts each; 1 means one
    PUT) costs: retrieval by tier, S3's requests, a month at the target class
    (overhead included)."""
    vault = _prices(VAULT, table)
    retrieval = {tier: cost for tier in TIERS
                 if (cost := retrieval_cost(sizes, VAULT, tier, table)) is not None}
    requests = sum(1 if n <= 1 else n + 3 for n in parts)  # create + parts + complete + tag
    return MigrationEstimate(
        archives=len(sizes), bytes=sum(sizes), retrieval_usd=retrieval, requests=requests,
        requests_usd=requests / 1000 * _prices(storage_class, table).put_per_1000,
        first_month_usd=sum(sum(billed_month(s, storage_class, table)) for s in sizes),
        vault_month_usd=sum(sum(billed_month(s, VAULT, table)) for s in sizes),
        retrieval_time=dict(vault.delay))
