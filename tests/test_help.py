"""Help texts a person reads: every command's --help, plain text, no reST markup."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
from click.testing import CliRunner

from glacierd.cli import COMMANDS, cli, load_all_commands


def _commands(group: click.Group, prefix: list[str]) -> Iterator[list[str]]:
    yield prefix
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, [*prefix, name])
        else:
            yield [*prefix, name]


def test_the_command_list_shows_each_commands_own_help() -> None:
    """``glacierd --help`` lists commands it has not loaded from ``COMMANDS``:
    those texts must stay the commands' own."""
    group = load_all_commands()
    assert set(group.commands) == {*COMMANDS, "emulator"}
    for name, (module, text) in COMMANDS.items():
        command = group.commands[name]
        assert command.callback is not None
        assert command.callback.__module__ == f"glacierd.cli.{module}", name
        for limit in (45, 60, 200):
            assert (click.Command(name, help=text).get_short_help_str(limit)
                    == command.get_short_help_str(limit)), (name, limit)


def test_help_and_status_load_no_other_command() -> None:
    probe = ("import sys; from glacierd.cli import main; main(sys.argv[1:]); "
             "print(sorted(m for m in sys.modules if m.startswith('glacierd.cli.')))")
    for argv, loaded in ((["--help"], "[]"), (["status", "--help"],
                                               "['glacierd.cli.backup_commands'")):
        out = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True,
                             text=True, timeout=60).stdout
        assert out.splitlines()[-1].startswith(loaded), (argv, out.splitlines()[-1])
        assert "restore_commands" not in out.splitlines()[-1]


def test_no_help_text_has_rest_backticks() -> None:
    runner = CliRunner()
    for path in _commands(load_all_commands(), []):
        out = runner.invoke(cli, [*path, "--help"]).output
        assert "Usage:" in out or "usage:" in out, path
        assert "`" not in out, (path, [line for line in out.splitlines() if "`" in line])


def test_emulator_help_lists_its_options() -> None:
    out = subprocess.run([sys.executable, "-m", "glacierd.cli", "emulator", "--help"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for option in ("--data-dir", "--port", "--job-delay", "--fault-rate", "--test-endpoints"):
        assert option in out.stdout


def test_run_local_refuses_a_watch_folder_that_does_not_exist(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "glacierd.cli", "run", "--local", "--state-dir",
                          str(tmp_path / "s"), "--watch", str(tmp_path / "typo")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "typo" in out.stderr and "no such folder" in out.stderr
    assert not (tmp_path / "typo").exists()
