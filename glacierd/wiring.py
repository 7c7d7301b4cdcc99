"""Building the parts from a config: the clients, the vault or bucket check, the
backend, the uploader.

Shared by the CLI commands and the daemon, so both make the same clients and
the same backend from the same config.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glacierd.backends import Backend
from glacierd.config import Config
from glacierd.errors import ConfigError
from glacierd.ratelimit import TokenBucket
from glacierd.store.repository import FileRecord, Store
from glacierd.uploader import FileProgress, Uploader, UploadSettings

if TYPE_CHECKING:
    # For types only: the packer (with the bundle format) is loaded by the daemon
    # alone, the restorer by what restores (make_packer, make_restorer).
    from glacierd.description import ArchiveInfo
    from glacierd.encryption import Encryption
    from glacierd.glacier import GlacierClient
    from glacierd.packer import Packer, PackSettings
    from glacierd.restorer import Restorer
    from glacierd.s3.client import S3Client


@dataclass(frozen=True)
class Target:
    """Where archives go, connected: the backend, and the client behind it for
    what only that service has (a vault's inventories; a bucket's listing)."""

    backend: Backend
    glacier: GlacierClient | None = None
    s3: S3Client | None = None


def _credentials(config: Config) -> tuple[str, str] | None:
    aws = config.aws
    if aws.access_key_id and aws.secret_access_key:
        return aws.access_key_id, aws.secret_access_key
    return None


def make_client(config: Config) -> GlacierClient:
    from glacierd.glacier import GlacierClient

    aws = config.aws
    return GlacierClient(aws.region, credentials=_credentials(config), profile=aws.profile,
                         endpoint_url=aws.endpoint_url, retries=config.upload.retries)


def make_s3_client(config: Config) -> S3Client:
    from glacierd.s3.client import S3Client

    aws = config.aws
    return S3Client(aws.region, credentials=_credentials(config), profile=aws.profile,
                    endpoint_url=aws.endpoint_url, retries=config.upload.retries)


def ensure_vault(client: GlacierClient, config: Config) -> None:
    """The vault must exist, or be created when ``[vault] create = true``."""
    from glacierd.glacier import ResourceNotFoundException

    try:
        client.describe_vault(config.vault.name)
    except ResourceNotFoundException:
        if not config.vault.create:
            raise ConfigError(
                f"{config.source}: [vault] name = {config.vault.name!r}: no such vault in "
                f"{config.aws.region}; create it, or set [vault] create = true"
            ) from None
        client.create_vault(config.vault.name)


def ensure_bucket(client: S3Client, config: Config) -> None:
    """The bucket must exist, or be created when ``[s3] create = true``."""
    assert config.s3 is not None
    if client.bucket_exists(config.s3.bucket):
        return
    if not config.s3.create:
        raise ConfigError(
            f"{config.source}: [s3] bucket = {config.s3.bucket!r}: no such bucket (or not "
            f"yours) in {config.aws.region}; create it, or set [s3] create = true")
    client.create_bucket(config.s3.bucket)


def connect(config: Config, *, glacier: GlacierClient | None = None,
            check: bool = True) -> Target:
    """The config's vault or bucket as a ``Target``; with ``check``, it must exist
    (or is created when the config says so). ``glacier``: a client to use (the
    embedded emulator's)."""
    if config.s3 is not None:
        from glacierd.backends.s3 import S3Backend

        s3 = make_s3_client(config)
        if check:
            ensure_bucket(s3, config)
        section = config.s3
        return Target(S3Backend(s3, section.bucket, prefix=section.prefix,
                                storage_class=section.storage_class,
                                restore_days=section.restore_days), s3=s3)
    from glacierd.backends.vault import VaultBackend

    client = glacier or make_client(config)
    if check:
        ensure_vault(client, config)
    return Target(VaultBackend(client, config.vault.name), glacier=client)


def _read_key_file(path: Path, where: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{where} = {str(path)!r}: cannot be read: "
                          f"{exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where} = {str(path)!r}: not a text file of age keys") from None


PASSPHRASE_VARIABLE = "GLACIERD_PASSPHRASE"
"""Where a daemon (or a script) gives the passphrase of a protected identity file."""

_OPENED: dict[tuple[str, int, int], list[bytes]] = {}
"""Identity files opened with a passphrase, by (path, mtime, size): scrypt costs a
second, and the daemon reads its config's keys at every poll."""


def _identities(path: Path, where: str) -> list[bytes]:
    """The identities of an identity file: age-keygen's text, or that text
    encrypted with a passphrase (``age -p``, or ``glacierd keygen --passphrase``),
    opened with ``$GLACIERD_PASSPHRASE`` or, at a terminal, a prompt."""
    import os
    import sys

    from glacierd import age

    try:
        raw = path.read_bytes()
        st = path.stat()
    except OSError as exc:
        raise ConfigError(f"{where} = {str(path)!r}: cannot be read: "
                          f"{exc.strerror or exc}") from None
    try:
        if not age.is_age_file(raw):
            return age.read_identities(raw.decode("utf-8"))
        key = (str(path), st.st_mtime_ns, st.st_size)
        if key in _OPENED:
            return _OPENED[key]
        given = os.environ.get(PASSPHRASE_VARIABLE)
        if given is None:
            if not sys.stdin.isatty():
                raise ConfigError(f"{where} = {str(path)!r} is protected by a passphrase: set "
                                  f"${PASSPHRASE_VARIABLE}, or run this at a terminal")
            import getpass

            given = getpass.getpass(f"Passphrase for {path}: ")
        plain = age.decrypt(age.dearmor(raw), [age.Passphrase(given.encode("utf-8"))])
        _OPENED[key] = age.read_identities(plain.decode("utf-8"))
        return _OPENED[key]
    except UnicodeDecodeError:
        raise ConfigError(f"{where} = {str(path)!r}: not a file of age keys") from None
    except age.AgeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def encryption(config: Config) -> Encryption | None:
    """The ``[encryption]`` keys, read and checked; None when the section is absent.

    Recipients come from ``recipients`` and ``recipients_file`` (one ``age1…`` a
    line, ``#`` comments, as ``age -R`` reads them); without either, from the
    identities (a restore host encrypts to its own key). ``ConfigError`` names
    the key or file at fault — never a key's secret part."""
    section = config.encryption
    if section is None:
        return None
    from glacierd import age
    from glacierd.encryption import Encryption

    where = f"{config.source}: [encryption]"
    texts = [(f"{where}.recipients[{i}]", r) for i, r in enumerate(section.recipients)]
    if section.recipients_file is not None:
        lines = _read_key_file(section.recipients_file, f"{where}.recipients_file")
        texts += [(f"{section.recipients_file}: line {n}", line.strip())
                  for n, line in enumerate(lines.splitlines(), 1)
                  if line.strip() and not line.lstrip().startswith("#")]
    recipients = []
    for name, text in texts:
        try:
            recipients.append(age.parse_recipient(text))
        except age.AgeError as exc:
            raise ConfigError(f"{name}: {exc}") from None
    identities: list[bytes] = []
    if section.identity_file is not None:
        identities = _identities(section.identity_file, f"{where}.identity_file")
    if not recipients:
        recipients = [age.parse_recipient(age.recipient_of(i)) for i in identities]
    if not recipients:
        raise ConfigError(f"{where}: no recipient (recipients_file is empty)")
    return Encryption(tuple(recipients), tuple(identities))


def unsealer(config: Config) -> Callable[[str, Sequence[str]], ArchiveInfo | None] | None:
    """What opens encrypted archives' descriptions, if an identity is configured."""
    keys = encryption(config)
    return keys.unseal if keys is not None and keys.can_decrypt else None


def upload_settings(config: Config) -> UploadSettings:
    return UploadSettings(part_size=config.upload.part_size,
                          concurrency=config.upload.concurrency,
                          follow_symlinks=config.upload.follow_symlinks,
                          lock_dir=config.state.dir / "locks",
                          encryption=encryption(config))


def make_limiter(config: Config) -> TokenBucket | None:
    limit = config.upload.bandwidth_limit
    return TokenBucket(limit) if limit else None


def make_uploader(config: Config, store: Store, backend: Backend,
                  on_progress: FileProgress | None = None) -> Uploader:
    return Uploader(store, backend, upload_settings(config), limiter=make_limiter(config),
                    on_progress=on_progress)


def make_restorer(config: Config, store: Store, backend: Backend,
                  **kw: Any) -> Restorer:
    from glacierd.restorer import Restorer, RestoreSettings

    r = config.restore
    keys = encryption(config)
    return Restorer(store, backend, RestoreSettings(
        restore_dir=config.restore_dir, tier=r.tier,
        segment_size=r.segment_mib * 2**20, max_concurrent_jobs=r.max_concurrent_jobs,
        concurrency=r.concurrency,
        lock_dir=config.state.dir / "locks",
        identities=keys.identities if keys is not None else ()), **kw)


def bundles_dir(config: Config) -> Path:
    """Where bundles are made and wait for their upload (``glacierd.packer``)."""
    return config.state.dir / "bundles"


def pack_settings(config: Config) -> PackSettings:
    """``[pack]``; no packing with ``[encryption]`` (a packed file is restored from a
    range of its bundle, and a range of an age file cannot be read alone)."""
    from glacierd.packer import PackSettings

    pack = config.pack
    threshold = pack.threshold if config.encryption is None else 0
    return PackSettings(threshold, pack.target_mib * 1024 * 1024,
                        dt.timedelta(seconds=pack.max_wait))


def make_packer(config: Config, store: Store, *, host: str,
                root_of: Callable[[str], str | None], now: Callable[[], dt.datetime],
                on_failure: Callable[[FileRecord, str], None]) -> Packer:
    from glacierd.packer import Packer

    return Packer(store, bundles_dir(config), pack_settings(config), host=host,
                  follow_symlinks=config.upload.follow_symlinks, root_of=root_of, now=now,
                  on_failure=on_failure)
