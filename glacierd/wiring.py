"""Building the parts from a config: the clients, the vault or bucket check, the
backend, the uploader.

Shared by the CLI commands and the daemon, so both make the same clients and
the same backend from the same config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from glacierd.backends import Backend
from glacierd.config import Config
from glacierd.errors import ConfigError
from glacierd.ratelimit import TokenBucket
from glacierd.store.repository import Store
from glacierd.uploader import FileProgress, Uploader, UploadSettings

if TYPE_CHECKING:
    from glacierd.glacier import GlacierClient
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


def upload_settings(config: Config) -> UploadSettings:
    return UploadSettings(part_size=config.upload.part_size,
                          concurrency=config.upload.concurrency,
                          follow_symlinks=config.upload.follow_symlinks,
                          lock_dir=config.state.dir / "locks")


def make_limiter(config: Config) -> TokenBucket | None:
    limit = config.upload.bandwidth_limit
    return TokenBucket(limit) if limit else None


def make_uploader(config: Config, store: Store, backend: Backend,
                  on_progress: FileProgress | None = None) -> Uploader:
    return Uploader(store, backend, upload_settings(config), limiter=make_limiter(config),
                    on_progress=on_progress)
