"""Reading a vault inventory and reconciling it with the catalog (pure).

Glacier's inventory lags (it is refreshed about once a day), so an archive
missing from it is flagged only when the inventory is more than a day newer
than the archive. Three findings:

* ``adopt`` — archives in the vault the catalog lacks whose description is
  glacierd's (a catalog rebuild, or a Complete whose answer was lost);
* ``foreign`` — archives with someone else's description, listed only;
* ``sealed`` — glacierd's encrypted archives whose description no identity at
  hand opens (adopted by a rebuild with ``[encryption] identity_file``);
* ``missing`` — catalog entries the vault should have listed but did not;
* ``confirmed`` — unconfirmed uploads (docs/design.md invariant 5) found in the vault,
  matched by upload token, tree hash and size.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from glacierd.description import ArchiveInfo, manifest_piece, public_part
from glacierd.description import decode as decode_description

Unseal = Callable[[str, Sequence[str]], ArchiveInfo | None]
"""Opens a sealed description, with the descriptions of its manifest archives
(``Encryption.unseal``); None if it cannot."""

LAG = dt.timedelta(days=1)


@dataclass(frozen=True)
class InventoryArchive:
    archive_id: str
    description: str
    created: dt.datetime
    size: int
    tree_hash: str

    @property
    def info(self) -> ArchiveInfo | None:
        return decode_description(self.description)


@dataclass(frozen=True)
class Inventory:
    vault_arn: str
    date: dt.datetime
    archives: tuple[InventoryArchive, ...]

    @property
    def total_size(self) -> int:
        return sum(a.size for a in self.archives)


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)


class UnreadableInventory(ValueError):
    """Not an inventory in Glacier's JSON form (damaged in transit, or another format)."""


def parse(raw: bytes | str) -> Inventory:
    """An inventory in Glacier's JSON format; ``UnreadableInventory`` says what is wrong.

    Glacier sends no tree hash for an inventory, so a damaged one is caught here."""
    try:
        doc: dict[str, Any] = json.loads(raw)
        archives = tuple(
            InventoryArchive(str(a["ArchiveId"]), str(a.get("ArchiveDescription") or ""),
                             parse_time(str(a["CreationDate"])), int(a["Size"]),
                             str(a["SHA256TreeHash"]))
            for a in doc.get("ArchiveList") or [])
        return Inventory(str(doc.get("VaultARN", "")), parse_time(str(doc["InventoryDate"])),
                         archives)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UnreadableInventory(f"not a Glacier inventory: {type(exc).__name__}: "
                                  f"{str(exc)[:120]}") from None


@dataclass(frozen=True)
class CatalogEntry:
    archive_id: str
    created: dt.datetime
    source_path: str


@dataclass(frozen=True)
class PendingConfirmation:
    upload_row: int
    token: str
    tree_hash: str
    size: int


@dataclass
class Reconciliation:
    adopt: list[tuple[InventoryArchive, ArchiveInfo]] = field(default_factory=list)
    foreign: list[InventoryArchive] = field(default_factory=list)
    sealed: list[InventoryArchive] = field(default_factory=list)
    manifests: dict[str, list[str]] = field(default_factory=dict)
    """The manifest archives' ids, by the token of the archive they belong to."""
    missing: list[CatalogEntry] = field(default_factory=list)
    confirmed: list[tuple[PendingConfirmation, InventoryArchive]] = field(default_factory=list)


def reconcile(inventory: Inventory, catalog: Iterable[CatalogEntry],
              unconfirmed: Iterable[PendingConfirmation],
              unseal: Unseal | None = None) -> Reconciliation:
    result = Reconciliation()
    known = {c.archive_id: c for c in catalog}
    by_token: dict[str, PendingConfirmation] = {u.token: u for u in unconfirmed}
    listed = set()
    pieces: dict[str, list[InventoryArchive]] = {}
    for archive in inventory.archives:
        piece = manifest_piece(archive.description)
        if piece is not None:  # a piece of another archive's path: not a file
            pieces.setdefault(piece.owner, []).append(archive)
    result.manifests = {owner: [a.archive_id for a in found] for owner, found in pieces.items()}
    for archive in inventory.archives:
        listed.add(archive.archive_id)
        if archive.archive_id in known or manifest_piece(archive.description) is not None:
            continue
        public = public_part(archive.description)
        pending = by_token.get(public.token) if public else None
        if pending and (pending.tree_hash, pending.size) == (archive.tree_hash, archive.size):
            result.confirmed.append((pending, archive))
            continue
        if public is None:
            result.foreign.append(archive)
            continue
        info = archive.info if not public.sealed else (
            unseal(archive.description, [m.description for m in pieces.get(public.token, [])])
            if unseal is not None else None)
        if info is not None:
            result.adopt.append((archive, info))
        else:
            result.sealed.append(archive)
    for entry in known.values():
        if entry.archive_id not in listed and inventory.date - entry.created > LAG:
            result.missing.append(entry)
    return result
