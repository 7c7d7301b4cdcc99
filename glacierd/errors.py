"""glacierd's own errors (config, store, restore, upload): one hierarchy, apart
from the client library's.

The client's ``GlacierError`` carries AWS's code, message and request id;
these carry what went wrong here and the exit code a command ends with. They
do not derive from ``GlacierError``, so ``except GlacierError`` (a failed
request) never swallows a database failure. As in borg, a class's docstring
is its default message; only the CLI's ``main()`` turns an error into an exit
code. Importing this module imports nothing else of glacierd.
"""

from __future__ import annotations

from typing import ClassVar


class GlacierdError(Exception):
    """glacierd failed."""

    exit_code: ClassVar[int] = 1

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip()
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class ConfigError(GlacierdError):
    """The configuration is invalid."""

    exit_code = 78  # EX_CONFIG


class StoreError(GlacierdError):
    """The state database cannot be used."""

    exit_code = 74  # EX_IOERR


class SchemaNotUpgradedError(StoreError):
    """The state database has not been created or upgraded: run `glacierd db upgrade`."""

    exit_code = 75


class SchemaTooNewError(StoreError):
    """The state database was written by a newer glacierd: upgrade glacierd."""

    exit_code = 75


class AlreadyRunningError(GlacierdError):
    """Another glacierd daemon is running on this state directory."""

    exit_code = 75  # EX_TEMPFAIL


class RestoreError(GlacierdError):
    """A restore cannot be done as asked."""

    exit_code = 65  # EX_DATAERR


class InventoryError(GlacierdError):
    """An inventory that cannot be read."""

    exit_code = 65  # EX_DATAERR


class MigrationError(GlacierdError):
    """A migration cannot go on as asked (a bad plan file, no inventory)."""

    exit_code = 65  # EX_DATAERR


class UploadError(GlacierdError):
    """An upload failed; it stays in the store and is retried."""


class FileChangedError(UploadError):
    """The file changed during its upload; the upload was abandoned and starts over."""


class UnreadableFileError(UploadError):
    """The file cannot be read."""

    exit_code = 66  # EX_NOINPUT


class NotAFileError(UnreadableFileError):
    """The path is gone, or is not a regular file: retrying cannot help."""


__all__ = [
    "AlreadyRunningError",
    "ConfigError",
    "FileChangedError",
    "GlacierdError",
    "NotAFileError",
    "RestoreError",
    "SchemaNotUpgradedError",
    "SchemaTooNewError",
    "StoreError",
    "UnreadableFileError",
    "UploadError",
]
