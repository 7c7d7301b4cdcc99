"""What storing and deleting cost (pure): the figures glacierd warns with.

Prices are AWS's published us-east-1 list prices per GB-month (December 2026);
other regions differ by a few percent. Deleting an archive or object younger
than its class's minimum storage duration is charged as if it had stayed
that long: ``early_deletion`` says how long is left and what that costs.
"""

from __future__ import annotations

from dataclasses import dataclass

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
