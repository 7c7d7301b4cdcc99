"""What storing and deleting cost (pure): the figures glacierd warns with.

Prices are AWS's published us-east-1 list prices per GB-month (December 2026);
other regions differ by a few percent. Deleting an archive or object younger
than its class's minimum storage duration is charged as if it had stayed
that long: ``early_deletion`` says how long is left and what that costs.
"""

from __future__ import annotations

from dataclasses import dataclass

S3_STORAGE_CLASSES = ("DEEP_ARCHIVE", "GLACIER", "GLACIER_IR", "STANDARD_IA", "STANDARD")
"""The classes glacierd writes objects in (``[s3] storage_class``)."""

GB = 1024**3
VAULT = "VAULT"
"""A Glacier vault's archives, beside S3's storage classes."""

PER_GB_MONTH = {VAULT: 0.0036, "GLACIER": 0.0036, "DEEP_ARCHIVE": 0.00099,
                "GLACIER_IR": 0.004, "STANDARD_IA": 0.0125, "STANDARD": 0.023}
MINIMUM_DAYS = {VAULT: 90, "GLACIER": 90, "DEEP_ARCHIVE": 180, "GLACIER_IR": 90,
                "STANDARD_IA": 30, "STANDARD": 0}


@dataclass(frozen=True)
class EarlyDeletion:
    storage_class: str
    days_left: int
    charge_usd: float


def early_deletion(size: int, age_days: int, storage_class: str) -> EarlyDeletion | None:
    """The pro-rated charge for deleting ``size`` bytes ``age_days`` after they
    were stored, or None when the minimum duration has passed."""
    minimum = MINIMUM_DAYS.get(storage_class, 0)
    left = minimum - max(0, age_days)
    if left <= 0:
        return None
    charge = size / GB * PER_GB_MONTH.get(storage_class, 0.0) * left / 30
    return EarlyDeletion(storage_class, left, charge)


RETRIEVAL_DELAY = {
    VAULT: {"Expedited": "1-5 min", "Standard": "3-5 h", "Bulk": "5-12 h"},
    "GLACIER": {"Expedited": "1-5 min", "Standard": "3-5 h", "Bulk": "5-12 h"},
    "DEEP_ARCHIVE": {"Expedited": "not offered", "Standard": "within 12 h",
                     "Bulk": "within 48 h"},
}
"""AWS's typical time from a retrieval request to readable bytes, by class and tier."""


def retrieval_delay(storage_class: str, tier: str) -> str:
    """The typical delay of a retrieval: what ``restore`` tells the user to expect."""
    by_tier = RETRIEVAL_DELAY.get(storage_class)
    if by_tier is None:
        return "none: readable at once"  # GLACIER_IR, STANDARD_IA, STANDARD
    return by_tier.get(tier, "")


VAULT_RETRIEVAL = {"Expedited": (0.03, 10.00), "Standard": (0.01, 0.05),
                   "Bulk": (0.0025, 0.025)}
"""A vault's retrieval prices by tier: (USD per GB retrieved, USD per 1,000 requests)."""

S3_WRITE_REQUESTS = {"DEEP_ARCHIVE": 0.05, "GLACIER": 0.03, "GLACIER_IR": 0.02,
                     "STANDARD_IA": 0.01, "STANDARD": 0.005}
"""S3's price per 1,000 PUT, POST (multipart) and LIST requests, by class."""


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


def migration_estimate(sizes: list[int], parts: list[int], storage_class: str
                       ) -> MigrationEstimate:
    """What moving archives of ``sizes`` (in ``parts`` S3 parts each; 1 means one
    PUT) costs: retrieval by tier, S3's requests, a month at the target class."""
    total = sum(sizes)
    gb = total / GB
    retrieval = {tier: gb * per_gb + len(sizes) / 1000 * per_request
                 for tier, (per_gb, per_request) in VAULT_RETRIEVAL.items()}
    requests = sum(1 if n <= 1 else n + 3 for n in parts)  # create + parts + complete + tag
    return MigrationEstimate(
        archives=len(sizes), bytes=total, retrieval_usd=retrieval, requests=requests,
        requests_usd=requests / 1000 * S3_WRITE_REQUESTS.get(storage_class, 0.005),
        first_month_usd=gb * PER_GB_MONTH.get(storage_class, 0.0),
        vault_month_usd=gb * PER_GB_MONTH[VAULT],
        retrieval_time=dict(RETRIEVAL_DELAY[VAULT]))
