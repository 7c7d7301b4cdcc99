"""Transfer progress for foreground commands: live bars on a terminal, plain lines
when piped.

rich is imported only when bars are drawn: a piped or scheduled ``glacierd
upload`` (cron, scripts, the benchmark) does not pay for importing it, and its
lines are never wrapped at a guessed terminal width.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import click


class TransferView(Protocol):
    live: bool  # result lines share a terminal with the bars: keep them short

    def progress(self, path: str, done: int, total: int) -> None:
        """A file's bytes so far; may go down when a part is retried."""

    def result(self, text: str) -> None:
        """A finished file's line (stdout): above the bars on a terminal."""

    def problem(self, label: str, text: str) -> None:
        """A failure or warning (stderr), headed by ``label``."""


class _PlainView:
    live = False

    def progress(self, path: str, done: int, total: int) -> None:
        pass

    def result(self, text: str) -> None:
        click.echo(text)

    def problem(self, label: str, text: str) -> None:
        click.echo(f"{label} {text}", err=True)


class _BarsView:
    _COLOURS = {"failed": "red"}

    def __init__(self, bars: Any) -> None:
        self._bars = bars
        self._tasks: dict[str, Any] = {}
        self.live = sys.stdout.isatty()  # else results go, whole, to a file or a pipe

    def progress(self, path: str, done: int, total: int) -> None:
        task = self._tasks.get(path)
        if task is None:
            from rich.markup import escape

            from glacierd.pathtext import shown

            task = self._tasks[path] = self._bars.add_task(escape(shown(Path(path).name)),
                                                           total=total)
        self._bars.update(task, completed=done, total=total)

    def result(self, text: str) -> None:
        if self.live:  # the bars' terminal: print above them, not through them
            self._bars.console.print(text, highlight=False, markup=False)
        else:
            click.echo(text)

    def problem(self, label: str, text: str) -> None:
        from rich.text import Text

        line = Text(f"{label} ", style=self._COLOURS.get(label, "yellow"))
        line.append(text)
        self._bars.console.print(line, highlight=False)


@contextmanager
def transfer_view() -> Iterator[TransferView]:
    """Bars drawn on stderr when it is a terminal; otherwise plain lines."""
    if not sys.stderr.isatty():
        yield _PlainView()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as bars:
        yield _BarsView(bars)


def print_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """A table on stdout, drawn by rich (imported here, when one is printed)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from glacierd.pathtext import guard

    table = Table(*headers)
    for row in rows:  # plain text: a name like "[red]x" is not markup, an ESC is shown escaped
        table.add_row(*(Text(guard(cell)) for cell in row))
    Console().print(table)
