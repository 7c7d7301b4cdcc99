"""Building the parts from a config: the client, the vault check, the uploader.

Shared by the CLI commands and (later) the daemon, so both make the same
client from the same config.
"""

from __future__ import annotations

from glacierd.backends import Backend
from glacierd.backends.vault import VaultBackend
from glacierd.config import Config
from glacierd.errors import ConfigError
from glacierd.glacier import GlacierClient, ResourceNotFoundException
from glacierd.ratelimit import TokenBucket
from glacierd.store.repository import Store
from glacierd.uploader import FileProgress, Uploader, UploadSettings


def make_client(config: Config) -> GlacierClient:
    aws = config.aws
    credentials = None
    if aws.access_key_id and aws.secret_access_key:
        credentials = (aws.access_key_id, aws.secret_access_key)
    return GlacierClient(aws.region, credentials=credentials, profile=aws.profile,
                         endpoint_url=aws.endpoint_url, retries=config.upload.retries)


def ensure_vault(client: GlacierClient, config: Config) -> None:
    """The vault must exist, or be created when ``[vault] create = true``."""
    try:
        client.describe_vault(config.vault.name)
    except ResourceNotFoundException:
        if not config.vault.create:
            raise ConfigError(
                f"{config.source}: [vault] name = {config.vault.name!r}: no such vault in "
                f"{config.aws.region}; create it, or set [vault] create = true"
            ) from None
        client.create_vault(config.vault.name)


def make_backend(config: Config, client: GlacierClient) -> Backend:
    """Where the config says archives go: today, its [vault]."""
    return VaultBackend(client, config.vault.name)


def upload_settings(config: Config) -> UploadSettings:
    return UploadSettings(part_size=config.upload.part_size,
                          concurrency=config.upload.concurrency,
                          follow_symlinks=config.upload.follow_symlinks,
                          lock_dir=config.state.dir / "locks")


def make_limiter(config: Config) -> TokenBucket | None:
    limit = config.upload.bandwidth_limit
    return TokenBucket(limit) if limit else None


def make_uploader(config: Config, store: Store, client: GlacierClient,
                  on_progress: FileProgress | None = None) -> Uploader:
    return Uploader(store, make_backend(config, client), upload_settings(config),
                    limiter=make_limiter(config),
                    on_progress=on_progress)
