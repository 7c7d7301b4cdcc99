"""The ``glacierd`` command. Errors become exit codes here and only here:
every ``GlacierError`` (config, store, Glacier, bad input) is printed as its
message and ends the process with its class's exit code, never a traceback.
"""

from __future__ import annotations

import gc
import importlib
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from glacierd import __version__
from glacierd.errors import GlacierdError
from glacierd.glacier.errors import GlacierError

if TYPE_CHECKING:
    from glacierd import config as config_mod

DEFAULT_CONFIG = "/etc/glacierd/config.toml"


DEFAULT_LOCAL_STATE = "glacierd-state"


LOCAL_ENDPOINT_FILE = "local-endpoint.json"


class Context:
    def __init__(self, config_path: str, log_level: str, log_level_given: bool,
                 local: bool = False, state_dir: str | None = None) -> None:
        self.config_path = config_path
        self.log_level = log_level
        self.log_level_given = log_level_given
        self.local = local
        self.state_dir = Path(state_dir or DEFAULT_LOCAL_STATE).resolve()
        self._config: config_mod.Config | None = None

    @property
    def config(self) -> config_mod.Config:
        if self._config is None:
            self._config = self._local_config() if self.local else self._load(need_vault=True)
        return self._config

    def _load(self, *, need_vault: bool) -> config_mod.Config:
        if not Path(self.config_path).exists():
            from glacierd.errors import ConfigError

            raise ConfigError(
                f"{self.config_path}: no such config file. Name one with --config FILE or "
                "$GLACIERD_CONFIG (config.example.toml shows every key), or try glacierd "
                "without an AWS account: `glacierd run --local`, then `glacierd --local "
                "status`")
        from glacierd import config as config_mod

        return config_mod.load(self.config_path, need_vault=need_vault)

    @property
    def database_url(self) -> str:
        """The state database; with --local it needs no running daemon, and a config
        file needs only its [state] section for it."""
        if self.local:
            return f"sqlite:///{self.state_dir / 'glacierd.db'}"
        if self._config is not None:
            return self._config.database_url
        return self._load(need_vault=False).database_url

    def _local_config(self) -> config_mod.Config:
        """The config of the `glacierd run --local` that is running on ``state_dir``."""
        import json

        from glacierd.daemon import local_config

        published = self.state_dir / LOCAL_ENDPOINT_FILE
        try:
            doc = json.loads(published.read_text())
        except (OSError, ValueError):
            raise click.ClickException(
                f"no `glacierd run --local` is running on {self.state_dir}: start it first "
                "(its emulator lives in that process)") from None
        return local_config(self.state_dir, [], doc["endpoint_url"], doc["access_key"],
                            doc["secret_key"], s3=bool(doc.get("s3")))


COMMANDS: dict[str, tuple[str, str]] = {
    "archives": ("backup_commands", "List the catalog: every archived version of every file."),
    "catalog": ("restore_commands", "The catalog of archives."),
    "cost": ("cost_commands", "Storage a month (per-object overhead included), the "
             "early-deletion liability, the overhead of small files, this month's write "
             "requests; priced with us-east-1 list prices unless [prices] says otherwise."),
    "db": ("backup_commands", "The state database."),
    "delete": ("restore_commands",
               "Delete archives from the vault: every version of PATH, or one archive id."),
    "forget": ("backup_commands", "Stop retrying failed files (PATHS, or --all-failed); a file "
               "that changes is queued again."),
    "inventory": ("restore_commands", "Show the last inventory; --refresh requests a new one "
                  "(of a bucket: its listing, at once)."),
    "jobs": ("restore_commands", "Glacier jobs glacierd started or follows."),
    "keygen": ("key_commands", "Make an age X25519 identity (for restores) and print its "
               "recipient (for the machines that upload)."),
    "migrate": ("migrate_commands", "Move a vault's archives into S3 objects: each archive "
                "retrieved, streamed in verified chunks into a multipart upload, checked "
                "against the inventory's tree hash before it is completed."),
    "repack": ("pack_commands", "Rewrite bundles whose deleted files take up --min-dead of "
               "them: the files still alive, read again from disk, go into a new bundle; once "
               "it is archived, the old bundle is deleted (the minimum storage duration may "
               "charge for it)."),
    "restore": ("restore_commands", "Bring archives back: files or folders from the catalog, "
                "or archive ids."),
    "retry": ("backup_commands",
              "Retry failed files now, in the foreground (all, or those under PATHS)."),
    "run": ("backup_commands",
            "Run the backup daemon: watch folders, upload what settles, follow jobs."),
    "status": ("backup_commands",
               "What glacierd is doing: daemon, queue, uploads, failures, jobs."),
    "upload": ("backup_commands", "Upload files (folders: everything below them), resumably."),
    "vaults": ("restore_commands", "Vaults: name, archive count, size, last inventory."),
    "verify": ("restore_commands", "Re-hash local files and compare with the catalog: "
               "unchanged, changed, missing; and name the files (known to glacierd, or in "
               "watched folders) with no backup."),
}
"""Each command's module and the start of its help (what ``glacierd --help``
lists): a command's module is imported only when the command runs or shows
its own help, so ``--help`` and ``status`` load no other command's imports. A
test keeps these texts equal to the commands' own."""


class LazyGroup(click.Group):
    """A group whose commands (``COMMANDS``) load on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(f"glacierd.cli.{COMMANDS[cmd_name][0]}")
            _accept_local_after_the_command(self)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            loaded = self.commands.get(name)
            text = (loaded.get_short_help_str(limit) if loaded is not None
                    else click.Command(name, help=COMMANDS[name][1]).get_short_help_str(limit))
            rows.append((name, text))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def load_all_commands() -> click.Group:
    """Every command loaded (tests that walk them all; shell completion)."""
    for name in COMMANDS:
        cli.get_command(click.Context(cli), name)
    return cli


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="glacierd")
@click.option("--config", "config_path", envvar="GLACIERD_CONFIG", default=DEFAULT_CONFIG,
              show_default=True, help="config file (or $GLACIERD_CONFIG)")
@click.option("--log-level", default="WARNING", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
@click.option("--local", "local", is_flag=True,
              help="act on the running glacierd run --local instead of a config file")
@click.option("--state-dir", "state_dir", default=None, type=click.Path(file_okay=False),
              help=f"with --local (default ./{DEFAULT_LOCAL_STATE})")
@click.pass_context
def cli(ctx: click.Context, config_path: str, log_level: str, local: bool,
        state_dir: str | None) -> None:
    """glacierd: resumable backups to Amazon Glacier."""
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%Y-%m-%dT%H:%M:%S%z")  # ISO 8601, as in --json
    given = ctx.get_parameter_source("log_level") != click.core.ParameterSource.DEFAULT
    ctx.obj = Context(config_path, log_level, given, local, state_dir)


_collection_deferred = False


def startup_done() -> None:
    """A command has imported what it needs: collect garbage from here on.

    `entry` turns the cyclic collector off while Python imports requests,
    SQLAlchemy and the rest: those hundreds of thousands of objects live until
    exit, yet the collector would scan them over and over while they are built.
    Here they are frozen (never scanned again) and collection resumes, so a long
    command (the daemon, an upload of many files) collects its own garbage as
    usual. Every command that opens the store or runs for long calls this; a
    no-op when `main` is called directly (tests).
    """
    global _collection_deferred
    if _collection_deferred:
        _collection_deferred = False
        gc.freeze()
        gc.enable()


def open_store(ctx: Context, *, read_only: bool = False) -> Any:
    """The state store; ``read_only`` for commands that only read it (they work on
    a state folder they cannot write, and change nothing in the file)."""
    from glacierd.store.repository import Store

    startup_done()
    if ctx.local and not (ctx.state_dir / "glacierd.db").exists():
        raise click.ClickException(f"{ctx.state_dir}: no glacierd state here; start "
                                   "`glacierd run --local` first")
    return Store.open(ctx.database_url, read_only=read_only)


def services(ctx: Context) -> tuple[Any, Any]:
    """The store and the config's vault or bucket (``wiring.Target``), which exists."""
    from glacierd import wiring

    config = ctx.config  # with --local: fails here, clearly, if no local daemon runs
    store = open_store(ctx)
    return store, wiring.connect(config)


def parse_date(value: str | None) -> Any:
    import datetime as dt

    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-11-28 or "
                                 "2026-11-28T12:00") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


@cli.command(add_help_option=False,
             context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def emulator(ctx: click.Context) -> None:
    """Run the Glacier emulator for tests (--help lists its options)."""
    from glacierd.emulator.__main__ import main as emulator_main

    startup_done()
    raise click.exceptions.Exit(emulator_main(list(ctx.args), prog="glacierd emulator"))


def main(argv: list[str] | None = None) -> int:
    try:
        # Without standalone mode, click *returns* the code of an Exit it caught.
        code = cli.main(args=argv, prog_name="glacierd", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except GlacierdError as exc:  # ours: the message names the file, key or path at fault
        click.echo(f"glacierd: {exc.message}", err=True)
        return exc.exit_code
    except GlacierError as exc:
        # Glacier's own errors keep their code and request id.
        click.echo(f"glacierd: {exc if exc.status is not None else exc.message}", err=True)
        return exc.exit_code
    return 0


def entry() -> None:
    """The ``glacierd`` console script and ``python -m glacierd.cli``.

    Collection is deferred through start-up (see `startup_done`), and at exit
    everything is frozen so that the interpreter's final collection skips it:
    together about 0.15 s of a 0.6 s start (`python bench/upload.py`), which is
    most of what a short ``glacierd upload`` costs.
    """
    global _collection_deferred
    gc.disable()
    _collection_deferred = True
    code = main()
    gc.freeze()
    sys.exit(code)


def _set_local(click_ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
    if value:
        click_ctx.find_object(Context).local = True  # type: ignore[union-attr]
    return value


def _set_state_dir(click_ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
    if value:
        click_ctx.find_object(Context).state_dir = Path(value).resolve()  # type: ignore[union-attr]
    return value


def _accept_local_after_the_command(group: click.Group) -> None:
    """`glacierd archives --local` works like `glacierd --local archives`."""
    for command in group.commands.values():
        if isinstance(command, click.Group):
            _accept_local_after_the_command(command)
            continue
        if command.name == "emulator" or any("--local" in p.opts for p in command.params):
            continue  # `run` and `status` take it themselves; the emulator has its own
        command.params.append(click.Option(
            ["--local"], is_flag=True, expose_value=False, callback=_set_local,
            help="act on the running glacierd run --local (also before the command)"))
        command.params.append(click.Option(
            ["--state-dir"], default=None, expose_value=False, callback=_set_state_dir,
            type=click.Path(file_okay=False),
            help=f"with --local (default ./{DEFAULT_LOCAL_STATE})"))


_accept_local_after_the_command(cli)
