"""Where each vault archive goes in the bucket (pure): the object key a
migration plans for it, from whatever its description says.

Descriptions are read in the formats tools wrote them:

* glacierd's own (``glacierd1 …``): the original path; the key is the one the
  S3 backend would give that upload (``s3.naming.object_key``), so a catalog
  rebuilt from the bucket finds it as if glacierd had uploaded it there;
* FastGlacier's XML, ``<m><v>4</v><p>BASE64 PATH</p><lm>DATE</lm></m>``;
* CloudBerry-style JSON with a ``Path`` (Windows paths: ``\\`` becomes ``/``,
  ``C:`` becomes ``C``);
* mt-aws-glacier's ``mt2 BASE64URL(JSON)`` (and ``mt1``) with ``filename``;
* anything else: the description itself, made safe as a key.

Names are decoded as UTF-8 (bytes that are not UTF-8 are escaped as
``\\xHH``, never mangled or dropped). An empty description becomes
``00undefined/ARCHIVE_ID``; a key planned twice gets the archive's creation
date, then a counter, appended.
"""

from __future__ import annotations

import base64
import binascii
import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from glacierd import description, pathtext
from glacierd.s3 import naming

MAX_KEY_BYTES = 1024


@dataclass(frozen=True)
class SourceArchive:
    """An archive as the vault's inventory lists it."""

    archive_id: str
    description: str
    created: dt.datetime
    size: int
    tree_hash: str


@dataclass(frozen=True)
class PlannedKey:
    archive_id: str
    key: str
    origin: str  # glacierd | fastglacier | cloudberry | mt-aws-glacier | raw | undefined


def _b64(text: str, *, urlsafe: bool = False) -> bytes | None:
    padded = text.strip() + "=" * (-len(text.strip()) % 4)
    try:
        if urlsafe:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None


def _text(raw: bytes) -> str:
    """Bytes of a name as text: UTF-8; other bytes kept as surrogates, which
    ``safe_key`` escapes as ``\\xHH``."""
    return raw.decode("utf-8", "surrogateescape")


_FASTGLACIER = re.compile(r"<m>.*<p>([A-Za-z0-9+/=]*)</p>.*</m>\Z", re.S)


def foreign_name(text: str) -> tuple[str, str] | None:
    """(name, origin) from another tool's description, or None."""
    match = _FASTGLACIER.match(text.strip())
    if match:
        raw = _b64(match.group(1))
        if raw:
            return _text(raw), "fastglacier"
    if text.startswith(("mt2 ", "mt1 ")):
        raw = _b64(text[4:], urlsafe=True)
        if raw:
            try:
                doc = json.loads(raw.decode("utf-8", "surrogateescape"))
            except ValueError:
                doc = None
            if isinstance(doc, dict) and isinstance(doc.get("filename"), str):
                return str(doc["filename"]), "mt-aws-glacier"
    if text.lstrip().startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("Path"), str) and doc["Path"]:
            path = doc["Path"].replace("\\", "/")
            path = re.sub(r"^([A-Za-z]):", r"\1", path)
            return path, "cloudberry"
    return None


def safe_key(name: str) -> str:
    """A name as an S3 key: no empty, ``.`` or ``..`` components, no leading
    ``/``, controls and undecodable bytes escaped (``pathtext``), at most about
    1,000 bytes."""
    parts = [pathtext.escape(p) for p in name.split("/") if p not in ("", ".", "..")]
    key = "/".join(parts)
    if len(key.encode()) > MAX_KEY_BYTES - 64:
        key = key.encode()[:MAX_KEY_BYTES - 64].decode("utf-8", "ignore")
    return key


def key_for(prefix: str, archive: SourceArchive) -> PlannedKey:
    if description.public_part(archive.description) is not None:  # sealed ones too
        return PlannedKey(archive.archive_id, naming.key_for(prefix, archive.description),
                          "glacierd")
    if not archive.description.strip():
        return PlannedKey(archive.archive_id, f"{prefix}00undefined/{archive.archive_id}",
                          "undefined")
    found = foreign_name(archive.description)
    name, origin = found if found else (archive.description, "raw")
    key = safe_key(name)
    if not key:
        return PlannedKey(archive.archive_id, f"{prefix}00undefined/{archive.archive_id}",
                          "undefined")
    return PlannedKey(archive.archive_id, prefix + key, origin)


def plan(prefix: str, archives: Iterable[SourceArchive],
         overrides: dict[str, str] | None = None) -> list[PlannedKey]:
    """A key for every archive, each key once: duplicates get the archive's
    creation date appended (then ``~2``, ``~3`` ...). ``overrides`` (archive id
    to key, from a reviewed plan file) win over the computed keys."""
    ordered = sorted(archives, key=lambda a: (a.created, a.archive_id))
    planned: list[PlannedKey] = []
    taken: set[str] = set()
    for archive in ordered:
        chosen = key_for(prefix, archive)
        if overrides and archive.archive_id in overrides:
            chosen = PlannedKey(archive.archive_id, overrides[archive.archive_id], "plan-file")
        key = chosen.key
        if key in taken:
            key = f"{chosen.key}~{archive.created:%Y%m%dT%H%M%SZ}"
            n = 2
            while key in taken:
                key = f"{chosen.key}~{archive.created:%Y%m%dT%H%M%SZ}~{n}"
                n += 1
        taken.add(key)
        planned.append(PlannedKey(archive.archive_id, key, chosen.origin))
    return planned


def write_plan(planned: Iterable[PlannedKey]) -> str:
    """The plan as CSV (``archive_id,key``), for a person to review and edit."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["archive_id", "key"])
    for p in planned:
        writer.writerow([p.archive_id, p.key])
    return out.getvalue()


def read_plan(text: str, where: str) -> dict[str, str]:
    """Overrides from a plan file: ``archive_id,key`` rows (a header row is fine).
    ``ValueError`` names the line that is wrong."""
    overrides: dict[str, str] = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or row == ["archive_id", "key"]:
            continue
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise ValueError(f"{where}: line {number}: expected archive_id,key")
        key = row[1].strip()
        if len(key.encode()) > MAX_KEY_BYTES or key.startswith("/"):
            raise ValueError(f"{where}: line {number}: {key[:60]!r} is not a valid S3 key")
        if key in overrides.values():
            raise ValueError(f"{where}: line {number}: key {key[:60]!r} is given twice")
        overrides[row[0].strip()] = key
    return overrides
