"""glacierd's errors above the client library: one hierarchy with it.

Every class derives from ``GlacierError`` so the CLI's ``main()`` turns any of
them into a message and an exit code the same way. As in borg, a class's
docstring is its default message and it carries its exit code.
"""

from __future__ import annotations

from glacierd.glacier.errors import GlacierError


class ConfigError(GlacierError):
    """The configuration is invalid."""

    exit_code = 78  # EX_CONFIG


class StoreError(GlacierError):
    """The state database cannot be used."""

    exit_code = 74  # EX_IOERR


class SchemaNotUpgradedError(StoreError):
    """The state database has not been created or upgraded: run `glacierd db upgrade`."""

    exit_code = 75


class SchemaTooNewError(StoreError):
    """The state database was written by a newer glacierd: upgrade glacierd."""

    exit_code = 75


class AlreadyRunningError(GlacierError):
    """Another glacierd daemon is running on this state directory."""

    exit_code = 75  # EX_TEMPFAIL


class RestoreError(GlacierError):
    """A restore cannot be done as asked."""

    exit_code = 65  # EX_DATAERR


class UploadError(GlacierError):
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
    "GlacierError",
    "NotAFileError",
    "RestoreError",
    "SchemaNotUpgradedError",
    "SchemaTooNewError",
    "StoreError",
    "UnreadableFileError",
    "UploadError",
]
