"""The ``glacierd`` command. Errors become exit codes here and only here.

Later issues add ``run``, ``status``, ``upload``, ``restore`` and the rest;
this module wires commands to the layers below and turns every
``GlacierError`` into its message and exit code, never a traceback.
"""

from __future__ import annotations

import sys

import click

from glacierd import __version__
from glacierd.glacier.errors import GlacierError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="glacierd")
def cli() -> None:
    """glacierd: resumable backups to Amazon Glacier."""


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def emulator(ctx: click.Context) -> None:
    """Run the Glacier emulator (same options as ``python -m glacierd.emulator``)."""
    from glacierd.emulator.__main__ import main as emulator_main

    sys.exit(emulator_main(list(ctx.args)))


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="glacierd", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except GlacierError as exc:
        click.echo(f"glacierd: {exc}", err=True)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
