"""glacierd's configuration: TOML, validated strictly.

Each section is a frozen dataclass; its fields are the keys it accepts, with
their types and defaults. An unknown section or key, a wrong type or a value
out of range is a ``ConfigError`` naming the file and the key — nothing falls
back silently. Later sections are added by declaring another dataclass and
registering it in ``SECTIONS``; ``config.example.toml`` documents every key.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glacierd.errors import ConfigError
from glacierd.glacier.limits import MAX_PART_SIZE, MIB, is_valid_part_size
from glacierd.s3.classes import S3_STORAGE_CLASSES

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_VAULT = re.compile(r"^[A-Za-z0-9_.\-]{1,255}$")


def parse_rate(value: object, where: str) -> int | None:
    """``bandwidth_limit``: bytes a second, as an int or a string like ``"8M"``."""
    if value is None or value in ("", "unlimited", 0):
        return None
    if isinstance(value, bool):
        raise ConfigError(f"{where} must be a number of bytes a second like 500000 or '8M'")
    if isinstance(value, int):
        if value < 1:
            raise ConfigError(f"{where} must be positive, not {value}")
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            amount = int(float(match.group(1)) * _UNITS[match.group(2).upper()])
            if amount >= 1:
                return amount
    raise ConfigError(f"{where} = {value!r} is not a rate like 500000, '512K', '8M' or '1G'")


def parse_size(value: object, where: str) -> int:
    """A size in bytes: a whole number, or a string like ``"512K"``, ``"1 MiB"``; 0 is 0."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            return int(float(match.group(1)) * _UNITS[match.group(2).upper()])
    raise ConfigError(f"{where} = {value!r} is not a size like 1048576, '512K' or '1 MiB'")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: object, where: str) -> float | None:
    """A duration: seconds as a number, or a string like ``"90s"``, ``"15m"``, ``"7d"``."""
    if value is None or value in ("", "never", "off"):
        return None
    if isinstance(value, bool):
        raise ConfigError(f"{where} must be a duration like 3600, '15m' or '7d'")
    if isinstance(value, int | float):
        if value <= 0:
            raise ConfigError(f"{where} must be positive, not {value}")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match and float(match.group(1)) > 0:
            return float(match.group(1)) * _SECONDS[match.group(2)]
    raise ConfigError(f"{where} = {value!r} is not a duration like 3600, '90s', '15m', '12h' "
                      "or '7d'")


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


@dataclass(frozen=True)
class AwsSection:
    region: str = "us-east-1"
    endpoint_url: str | None = None
    profile: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)

    def validate(self, where: str) -> None:
        _check(bool(self.region.strip()), f"{where}.region must not be empty")
        if self.endpoint_url is not None:
            _check(self.endpoint_url.startswith(("http://", "https://")),
                   f"{where}.endpoint_url must start with http:// or https://")
        _check((self.access_key_id is None) == (self.secret_access_key is None),
               f"{where}: access_key_id and secret_access_key go together")
        _check(not (self.profile and self.access_key_id),
               f"{where}: give either profile or access_key_id/secret_access_key, not both")


@dataclass(frozen=True)
class VaultSection:
    name: str
    create: bool = False

    def validate(self, where: str) -> None:
        _check(bool(_VAULT.match(self.name)),
               f"{where}.name = {self.name!r} is not a valid vault name "
               "(1-255 of a-z A-Z 0-9 _ - .)")


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")


@dataclass(frozen=True)
class S3Section:
    """An S3 bucket in one of the Glacier storage classes (the alternative to [vault])."""

    bucket: str
    prefix: str = ""
    storage_class: str = "DEEP_ARCHIVE"
    restore_days: int = 1
    create: bool = False

    def validate(self, where: str) -> None:
        _check(bool(_BUCKET.match(self.bucket)) and ".." not in self.bucket,
               f"{where}.bucket = {self.bucket!r} is not a valid bucket name "
               "(3-63 of a-z 0-9 . -, starting and ending with a letter or digit)")
        _check(self.storage_class in S3_STORAGE_CLASSES,
               f"{where}.storage_class = {self.storage_class!r} must be one of "
               f"{', '.join(S3_STORAGE_CLASSES)}")
        _check(1 <= self.restore_days <= 30000,
               f"{where}.restore_days must be from 1 to 30000")
        _check(not self.prefix.startswith("/") and len(self.prefix.encode()) <= 256,
               f"{where}.prefix must not start with / and must be at most 256 bytes")


@dataclass(frozen=True)
class MigrateSection:
    """The daemon moves the vault into a bucket in the background (``glacierd migrate``)."""

    to_bucket: str
    prefix: str = ""
    storage_class: str = "DEEP_ARCHIVE"
    tier: str = "Bulk"
    max_jobs: int = 10
    concurrency: int = 4
    delete_source: bool = False

    def validate(self, where: str) -> None:
        _check(bool(_BUCKET.match(self.to_bucket)) and ".." not in self.to_bucket,
               f"{where}.to_bucket = {self.to_bucket!r} is not a valid bucket name")
        _check(self.storage_class in S3_STORAGE_CLASSES,
               f"{where}.storage_class = {self.storage_class!r} must be one of "
               f"{', '.join(S3_STORAGE_CLASSES)}")
        _check(self.tier in ("Bulk", "Standard", "Expedited"),
               f"{where}.tier = {self.tier!r} must be Bulk, Standard or Expedited")
        _check(1 <= self.max_jobs <= 1000, f"{where}.max_jobs must be from 1 to 1000")
        _check(1 <= self.concurrency <= 64, f"{where}.concurrency must be from 1 to 64")


@dataclass(frozen=True)
class EncryptionSection:
    """Client-side encryption in the age format (issue 15): new uploads are
    encrypted to the recipients; restores and catalog rebuilds need an identity.
    Keys are read (and checked) when the config is used (``glacierd.wiring``)."""

    recipients: list[str] = field(default_factory=list)
    recipients_file: Path | None = None
    identity_file: Path | None = None

    def validate(self, where: str) -> None:
        _check(bool(self.recipients or self.recipients_file or self.identity_file),
               f"{where}: give recipients, recipients_file or identity_file")
        for i, text in enumerate(self.recipients):
            _check(text.strip().lower().startswith("age1"),
                   f"{where}.recipients[{i}] = {text[:20]!r} is not an age recipient (age1...)")


@dataclass(frozen=True)
class PricesSection:
    """Price overrides for another region or a negotiated rate, per class:
    ``DEEP_ARCHIVE = { storage_gb_month = 0.0018 }`` (keys: ``pricing.OVERRIDABLE``).
    The built-in figures are us-east-1's list prices (``glacierd/pricing.py``)."""

    VAULT: dict[str, float] = field(default_factory=dict)
    GLACIER: dict[str, float] = field(default_factory=dict)
    DEEP_ARCHIVE: dict[str, float] = field(default_factory=dict)
    GLACIER_IR: dict[str, float] = field(default_factory=dict)
    STANDARD_IA: dict[str, float] = field(default_factory=dict)
    STANDARD: dict[str, float] = field(default_factory=dict)

    def overrides(self) -> dict[str, dict[str, float]]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name)}

    def validate(self, where: str) -> None:
        from glacierd import pricing

        try:
            pricing.with_overrides(self.overrides())
        except ValueError as exc:
            raise ConfigError(f"{where}.{exc}") from None


_LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class HttpSection:
    """``/metrics`` (Prometheus), ``/healthz`` and a read-only status page, served
    by the daemon. Loopback unless told; elsewhere a bearer token is required."""

    listen: str = "127.0.0.1:9464"
    token: str | None = field(default=None, repr=False)

    @property
    def address(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)

    def validate(self, where: str) -> None:
        host, sep, port = self.listen.rpartition(":")
        _check(bool(sep and host and port.isdigit() and int(port) <= 65535),
               f"{where}.listen = {self.listen!r} must be HOST:PORT, like 127.0.0.1:9464")
        if host.strip("[]") not in _LOOPBACK:
            _check(self.token is not None and len(self.token) >= 16,
                   f"{where}.listen = {self.listen!r} is reachable from other machines: set "
                   "token (16 characters at least); clients send it as a bearer token")


@dataclass(frozen=True)
class StateSection:
    dir: Path = Path("/var/lib/glacierd")
    database_url: str | None = field(default=None, repr=False)  # may hold a password
    url: str | None = field(default=None, repr=False)
    """Another name for ``database_url`` (the one the fleet's documentation uses)."""

    def validate(self, where: str) -> None:
        _check(not (self.url and self.database_url),
               f"{where}: give url or database_url, not both")

    @property
    def database(self) -> str | None:
        return self.database_url or self.url


@dataclass(frozen=True)
class UploadSection:
    part_size_mib: int = 16
    concurrency: int = 4
    bandwidth_limit: int | None = field(default=None, metadata={"parse": parse_rate})
    retries: int = 7
    follow_symlinks: bool = False

    @property
    def part_size(self) -> int:
        return self.part_size_mib * MIB

    def validate(self, where: str) -> None:
        _check(is_valid_part_size(self.part_size_mib * MIB),
               f"{where}.part_size_mib = {self.part_size_mib} must be a power of two from 1 "
               f"to {MAX_PART_SIZE // MIB}")
        _check(1 <= self.concurrency <= 64, f"{where}.concurrency must be from 1 to 64")
        _check(0 <= self.retries <= 50, f"{where}.retries must be from 0 to 50")


DEFAULT_IGNORES = ("*.part", "*.tmp", "~*", ".*.swp", ".#*", "*.glacierd-partial")


@dataclass(frozen=True)
class WatchSection:
    path: Path
    recursive: bool = True
    include: list[str] = field(default_factory=lambda: ["*"])
    exclude: list[str] = field(default_factory=list)
    settle_seconds: float = 10.0
    after_upload: str = "keep"
    ignore_temporary: bool = True

    def validate(self, where: str) -> None:
        _check(self.settle_seconds >= 0, f"{where}.settle_seconds must not be negative")
        ok = self.after_upload in ("keep", "delete") or (
            self.after_upload.startswith("move:") and len(self.after_upload) > 5)
        _check(ok, f"{where}.after_upload = {self.after_upload!r} must be keep, delete or "
                   "move:DIR")

    @property
    def move_to(self) -> Path | None:
        if not self.after_upload.startswith("move:"):
            return None
        target = Path(self.after_upload[5:]).expanduser()
        return target if target.is_absolute() else self.path / target


@dataclass(frozen=True)
class RestoreSection:
    dir: Path | None = None  # None: STATE_DIR/restored (a folder the daemon may write)
    tier: str = "Standard"
    segment_mib: int = 64
    max_concurrent_jobs: int = 10
    concurrency: int = 4

    def validate(self, where: str) -> None:
        _check(1 <= self.concurrency <= 64, f"{where}.concurrency must be from 1 to 64")
        _check(self.tier in ("Expedited", "Standard", "Bulk"),
               f"{where}.tier = {self.tier!r} must be Expedited, Standard or Bulk")
        _check(is_valid_part_size(self.segment_mib * MIB),
               f"{where}.segment_mib = {self.segment_mib} must be a power of two from 1 to 4096")
        _check(1 <= self.max_concurrent_jobs <= 1000,
               f"{where}.max_concurrent_jobs must be from 1 to 1000")


@dataclass(frozen=True)
class ScheduleSection:
    drain_seconds: float = 2.0
    settle_check_seconds: float = 1.0
    rescan_seconds: float = field(default=3600.0, metadata={"parse": parse_duration})
    job_poll_seconds: float = field(default=900.0, metadata={"parse": parse_duration})
    inventory_every: float | None = field(default=7 * 86400.0,
                                          metadata={"parse": parse_duration})
    housekeeping_seconds: float = field(default=3600.0, metadata={"parse": parse_duration})
    keep_events_days: int = 30

    def validate(self, where: str) -> None:
        _check(self.drain_seconds > 0 and self.settle_check_seconds > 0,
               f"{where}: drain_seconds and settle_check_seconds must be positive")
        _check(self.keep_events_days >= 1, f"{where}.keep_events_days must be at least 1")


@dataclass(frozen=True)
class PackSection:
    """Small files packed into bundles (``glacierd.packer``)."""

    threshold: int = field(default=MIB, metadata={"parse": parse_size})
    target_mib: int = 128
    max_wait: float = field(default=600.0, metadata={"parse": parse_duration})

    MAX_THRESHOLD = 64 * MIB
    """A member is read whole into memory, and restored by one ranged request."""

    def validate(self, where: str) -> None:
        _check(0 <= self.threshold <= self.MAX_THRESHOLD,
               f"{where}.threshold = {self.threshold} must be from 0 (no packing) to 64 MiB")
        _check(1 <= self.target_mib <= 4096,
               f"{where}.target_mib = {self.target_mib} must be from 1 to 4096")
        _check(self.threshold < self.target_mib * MIB,
               f"{where}: threshold must be below target_mib")
        _check(self.max_wait is not None, f"{where}.max_wait must be a duration like '10m'")


@dataclass(frozen=True)
class DaemonSection:
    log_level: str = "INFO"
    shutdown_grace_seconds: float = 30.0

    def validate(self, where: str) -> None:
        _check(self.log_level.upper() in ("DEBUG", "INFO", "WARNING", "ERROR"),
               f"{where}.log_level = {self.log_level!r} must be DEBUG, INFO, WARNING or ERROR")
        _check(self.shutdown_grace_seconds >= 0,
               f"{where}.shutdown_grace_seconds must not be negative")


@dataclass(frozen=True)
class Config:
    aws: AwsSection
    vault: VaultSection
    state: StateSection
    upload: UploadSection
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    restore: RestoreSection = field(default_factory=RestoreSection)
    daemon: DaemonSection = field(default_factory=DaemonSection)
    watch: tuple[WatchSection, ...] = ()
    source: Path | None = None
    s3: S3Section | None = None
    migrate: MigrateSection | None = None
    encryption: EncryptionSection | None = None
    prices: PricesSection = field(default_factory=PricesSection)
    pack: PackSection = field(default_factory=PackSection)
    http: HttpSection | None = None

    @property
    def target(self) -> str:
        """Where archives go, as status and logs name it: the vault or the bucket."""
        return self.s3.bucket if self.s3 is not None else self.vault.name

    @property
    def storage_class(self) -> str:
        """The target's class, as ``glacierd.pricing`` names it."""
        return self.s3.storage_class if self.s3 is not None else "VAULT"

    def price_table(self) -> dict[str, Any]:
        """``glacierd.pricing.PRICES`` with ``[prices]``'s overrides."""
        from glacierd import pricing

        return pricing.with_overrides(self.prices.overrides())

    @property
    def database_url(self) -> str:
        return self.state.database or f"sqlite:///{self.state.dir / 'glacierd.db'}"

    @property
    def restore_dir(self) -> Path:
        """``[restore] dir``, or ``restored`` in the state folder: under systemd the
        daemon may write there (the config's folder is read-only to it)."""
        return self.restore.dir or self.state.dir / "restored"


SECTIONS: dict[str, tuple[type[Any], bool]] = {
    # name: (dataclass, required)
    "aws": (AwsSection, False),
    "vault": (VaultSection, True),
    "s3": (S3Section, False),
    "migrate": (MigrateSection, False),
    "encryption": (EncryptionSection, False),
    "state": (StateSection, False),
    "upload": (UploadSection, False),
    "schedule": (ScheduleSection, False),
    "restore": (RestoreSection, False),
    "daemon": (DaemonSection, False),
    "prices": (PricesSection, False),
    "http": (HttpSection, False),
    "pack": (PackSection, False),
}
OPTIONAL_SECTIONS = frozenset({"s3", "migrate", "encryption", "http"})
"""Sections that are None when absent (they have keys without defaults)."""
LIST_SECTIONS: dict[str, type[Any]] = {
    # [[name]]: arrays of tables
    "watch": WatchSection,
}


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp)).replace("NoneType", "nothing")


def _coerce(value: Any, tp: Any, where: str, base: Path) -> Any:
    """Check ``value`` against the field type ``tp``; Paths are resolved against ``base``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where, base)
            except ConfigError:
                continue
        names = " or ".join(_type_name(o) for o in options if o is not type(None))
        raise ConfigError(f"{where} must be {names}, not {type(value).__name__} {value!r}")
    if origin is dict:
        _key, item = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table like {{ key = value }}, not {value!r}")
        return {str(k): _coerce(v, item, f"{where}.{k}", base) for k, v in value.items()}
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, not {value!r}")
        return [_coerce(v, item, f"{where}[{i}]", base) for i, v in enumerate(value)]
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, not {value!r}")
        return float(value)
    if tp is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where} must be a path (a string), not {value!r}")
        path = Path(value).expanduser()
        return path if path.is_absolute() else (base / path)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, not {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be a whole number, not {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, not {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {tp!r}")  # a programming error


def build_section(cls: type[Any], table: Any, where: str, base: Path) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table ([{where.split(': ', 1)[-1]}])")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(fields)})")
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        key = f"{where}.{name}"
        if name not in table:
            no_default = (spec.default is dataclasses.MISSING
                          and spec.default_factory is dataclasses.MISSING)
            if no_default:
                raise ConfigError(f"{key} is required")
            continue
        parse: Callable[[Any, str], Any] | None = spec.metadata.get("parse")
        values[name] = parse(table[name], key) if parse else _coerce(table[name], hints[name],
                                                                       key, base)
    section = cls(**values)
    section.validate(where)
    return section


NO_VAULT = VaultSection(name="(no [vault] section)")
"""The vault of a config read for a command that needs only ``[state]``."""


def from_dict(doc: dict[str, Any], source: Path | None = None, *,
              need_vault: bool = True) -> Config:
    """``need_vault``: False for commands that only read the state store (``status``,
    ``archives``, ``jobs``): a config with only ``[state]`` serves them."""
    name = str(source) if source else "<config>"
    base = source.parent if source else Path.cwd()
    known = [*SECTIONS, *LIST_SECTIONS]
    unknown = sorted(set(doc) - set(known))
    if unknown:
        raise ConfigError(f"{name}: unknown section [{unknown[0]}] (known: {', '.join(known)})")
    if "vault" in doc and "s3" in doc:
        raise ConfigError(f"{name}: give either [vault] (a Glacier vault) or [s3] (a bucket), "
                          "not both")
    sections: dict[str, Any] = {}
    for section, (cls, required) in SECTIONS.items():
        if section not in doc:
            if section == "vault" and (not need_vault or "s3" in doc):
                sections[section] = NO_VAULT
                continue
            if section == "vault" and required:
                raise ConfigError(f"{name}: a [vault] or an [s3] section is required")
            if section in OPTIONAL_SECTIONS:
                continue
            if required:
                raise ConfigError(f"{name}: section [{section}] is required")
            table: Any = {}
        else:
            table = doc[section]
        sections[section] = build_section(cls, table, f"{name}: [{section}]", base)
    for section, cls in LIST_SECTIONS.items():
        tables = doc.get(section, [])
        if not isinstance(tables, list):
            raise ConfigError(f"{name}: [{section}] must be written [[{section}]] (a list)")
        sections[section] = tuple(
            build_section(cls, table, f"{name}: [[{section}]] #{i + 1}", base)
            for i, table in enumerate(tables))
    return Config(source=source, **sections)


def load(path: str | Path, *, need_vault: bool = True) -> Config:
    """Read and validate a config file; ``ConfigError`` says what is wrong and where."""
    source = Path(path)
    try:
        with open(source, "rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such config file") from None
    except PermissionError:
        raise ConfigError(f"{source}: permission denied") from None
    except IsADirectoryError:
        raise ConfigError(f"{source}: is a directory, not a config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    return from_dict(doc, source.resolve(), need_vault=need_vault)
