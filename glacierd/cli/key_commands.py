"""``glacierd keygen``: age identities for encrypted backups."""

from __future__ import annotations

import click

from glacierd.cli import cli
from glacierd.errors import ConfigError


@cli.command()
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="where the identity goes (created 0600; an existing file is not touched)")
def keygen(out: str) -> None:
    """Make an age X25519 identity (for restores) and print its recipient (for the
    machines that upload). The identity is in age-keygen's format: Debian's age
    decrypts with it too."""
    import datetime as dt
    import os

    from glacierd import age

    identity, recipient = age.generate_identity()
    text = (f"# created: {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}\n"
            f"# public key: {recipient}\n{identity}\n")
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{out}: exists; an identity is never overwritten (choose another "
                          "--out)") from None
    except OSError as exc:
        raise ConfigError(f"{out}: cannot be created: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    click.echo(f"Public key: {recipient}", err=True)
    click.echo(recipient)
