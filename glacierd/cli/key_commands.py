"""``glacierd keygen``: age identities for encrypted backups."""

from __future__ import annotations

import click

from glacierd.cli import cli
from glacierd.errors import ConfigError


@cli.command()
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="where the identity goes (created 0600; an existing file is not touched)")
@click.option("--passphrase", is_flag=True,
              help="protect it with a passphrase (asked twice, or $GLACIERD_PASSPHRASE), as "
                   "age -p does; glacierd and age ask for it when they use it")
def keygen(out: str, passphrase: bool) -> None:
    """Make an age X25519 identity (for restores) and print its recipient (for the
    machines that upload). The identity is in age-keygen's format: Debian's age
    decrypts with it too (with --passphrase, "age -d KEY" gives that text)."""
    import datetime as dt
    import os

    from glacierd import age
    from glacierd.wiring import PASSPHRASE_VARIABLE

    identity, recipient = age.generate_identity()
    text = (f"# created: {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}\n"
            f"# public key: {recipient}\n{identity}\n")
    content = text.encode("ascii")
    if passphrase:
        given = os.environ.get(PASSPHRASE_VARIABLE) or click.prompt(
            "Passphrase", hide_input=True, confirmation_prompt=True, err=True)
        if len(given) < 8:
            raise ConfigError("the passphrase must be 8 characters at least")
        content = age.encrypt_with_passphrase(content, given.encode("utf-8"))
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{out}: exists; an identity is never overwritten (choose another "
                          "--out)") from None
    except OSError as exc:
        raise ConfigError(f"{out}: cannot be created: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)
        fh.flush()
        os.fsync(fh.fileno())
    click.echo(f"Public key: {recipient}", err=True)
    click.echo(recipient)
