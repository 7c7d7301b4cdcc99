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


@dataclass(frozen=True)
class StateSection:
    dir: Path = Path("/var/lib/glacierd")
    database_url: str | None = None

    def validate(self, where: str) -> None:
        pass


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


@dataclass(frozen=True)
class Config:
    aws: AwsSection
    vault: VaultSection
    state: StateSection
    upload: UploadSection
    source: Path | None = None

    @property
    def database_url(self) -> str:
        return self.state.database_url or f"sqlite:///{self.state.dir / 'glacierd.db'}"


SECTIONS: dict[str, tuple[type[Any], bool]] = {
    # name: (dataclass, required)
    "aws": (AwsSection, False),
    "vault": (VaultSection, True),
    "state": (StateSection, False),
    "upload": (UploadSection, False),
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


def from_dict(doc: dict[str, Any], source: Path | None = None) -> Config:
    name = str(source) if source else "<config>"
    base = source.parent if source else Path.cwd()
    unknown = sorted(set(doc) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{name}: unknown section [{unknown[0]}] (known: {', '.join(SECTIONS)})")
    sections: dict[str, Any] = {}
    for section, (cls, required) in SECTIONS.items():
        if section not in doc:
            if required:
                raise ConfigError(f"{name}: section [{section}] is required")
            table: Any = {}
        else:
            table = doc[section]
        sections[section] = build_section(cls, table, f"{name}: [{section}]", base)
    return Config(source=source, **sections)


def load(path: str | Path) -> Config:
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
    return from_dict(doc, source.resolve())
