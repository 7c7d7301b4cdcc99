"""Transfer progress for foreground commands: live bars on a terminal, plain lines
when piped; in both, a summary at the end.

rich is imported only when bars are drawn: a piped or scheduled ``glacierd
upload`` (cron, scripts, the benchmark) does not pay for importing it, and its
lines are never wrapped at a guessed terminal width.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from glacierd import humanize
from glacierd.pathtext import guard, shown


class TransferView:
    """Per-file progress, overall progress (files done of total, bytes, rate, ETA),
    results, problems and the closing summary. Plain lines when piped."""

    live = False  # result lines share a terminal with the bars: keep them short

    def __init__(self, files: int = 0, total_bytes: int = 0,
                 clock: Any = time.monotonic) -> None:
        self.files, self.total_bytes = files, total_bytes
        self.counts: dict[str, int] = {}
        self.bytes_done = 0  # of files archived or restored (not skipped)
        self._current: dict[str, int] = {}  # bytes so far of files under way
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._clock = clock
        self.started = clock()

    # --- what the uploader and restorer call ------------------------------------

    def progress(self, path: str, done: int, total: int) -> None:
        """A file's bytes so far; may go down when a part is retried. The first call
        of a file says where it starts: above 0 (bytes acknowledged or verified
        before an interruption), it resumes."""
        with self._lock:
            first = path not in self._seen
            self._seen.add(path)
            self._current[path] = done
        if first and 0 < done < total:
            self.note(f"resuming {shown(path)} at {humanize.size(done)} of "
                      f"{humanize.size(total)}")
        self._draw(path, done, total)

    def finished(self, status: str, path: str, size: int) -> None:
        """A file is done (archived, skipped, restored, failed ...): it counts."""
        with self._lock:
            self.counts[status] = self.counts.get(status, 0) + 1
            self._current.pop(path, None)
            self.bytes_done += size if status in ("archived", "restored") else 0
        self._draw(path, size, size)

    def result(self, text: str) -> None:
        """A finished file's line (stdout)."""
        click.echo(text)

    def problem(self, label: str, text: str) -> None:
        """A failure or warning (stderr), headed by ``label``."""
        click.echo(f"{label} {text}", err=True)

    def note(self, text: str) -> None:
        click.echo(text, err=True)

    def summary(self) -> str:
        """``3 archived, 1 skipped, 1 failed; 12.0 MiB in 4 s (3.0 MiB/s)``."""
        elapsed = max(self._clock() - self.started, 1e-9)
        parts = ", ".join(f"{n:,} {status}" for status, n in sorted(self.counts.items()))
        return (f"{parts or 'nothing done'}; {humanize.size(self.bytes_done)} in "
                f"{humanize.duration(elapsed)} ({humanize.rate(self.bytes_done / elapsed)})")

    def _draw(self, path: str, done: int, total: int) -> None:
        pass


class _BarsView(TransferView):
    _COLOURS = {"failed": "red"}

    def __init__(self, bars: Any, files: int, total_bytes: int) -> None:
        super().__init__(files, total_bytes)
        self._bars = bars
        self._tasks: dict[str, Any] = {}
        self._overall = bars.add_task(self._overall_text(), total=total_bytes or None)
        self.live = sys.stdout.isatty()  # else results go, whole, to a file or a pipe

    def _overall_text(self) -> str:
        done = sum(self.counts.values())
        return f"all: {done:,} of {self.files:,} files" if self.files else f"all: {done:,} files"

    def _draw(self, path: str, done: int, total: int) -> None:
        task = self._tasks.get(path)
        if task is None:
            from rich.markup import escape

            name = humanize.middle_cut(shown(Path(path).name), 40)
            task = self._tasks[path] = self._bars.add_task(escape(name), total=total)
        self._bars.update(task, completed=done, total=total)
        with self._lock:
            overall = self.bytes_done + sum(self._current.values())
        self._bars.update(self._overall, completed=overall, description=self._overall_text())

    def finished(self, status: str, path: str, size: int) -> None:
        super().finished(status, path, size)
        task = self._tasks.pop(path, None)
        if task is not None:
            self._bars.remove_task(task)

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

    def note(self, text: str) -> None:
        self._bars.console.print(text, highlight=False, markup=False)


def _binary_columns() -> tuple[Any, ...]:
    from rich.progress import BarColumn, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class Bytes(ProgressColumn):
        def render(self, task: Any) -> Text:
            total = humanize.size(task.total) if task.total is not None else "?"
            return Text(f"{humanize.size(task.completed)} / {total}")

    class Speed(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(humanize.rate(task.speed) if task.speed else "-")

    return (TextColumn("{task.description}"), BarColumn(), Bytes(), Speed(),
            TimeRemainingColumn())


@contextmanager
def transfer_view(files: int = 0, total_bytes: int = 0) -> Iterator[TransferView]:
    """Bars drawn on stderr when it is a terminal; otherwise plain lines."""
    if not sys.stderr.isatty():
        yield TransferView(files, total_bytes)
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(*_binary_columns(), console=Console(stderr=True), transient=False) as bars:
        yield _BarsView(bars, files, total_bytes)


def print_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """A table on stdout, drawn by rich (imported here, when one is printed). A
    ``path`` column that does not fit is cut in the middle, keeping file names."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    cells = [[guard(cell) for cell in row] for row in rows]
    if "path" in headers and cells:
        col = list(headers).index("path")
        others = sum(max(len(headers[i]), *(len(r[i]) for r in cells)) + 3
                     for i in range(len(headers)) if i != col)
        room = max(16, console.width - others - 4)
        for row in cells:
            row[col] = humanize.middle_cut(row[col], room)
    table = Table()
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in cells:  # plain text: a name like "[red]x" is not markup, an ESC is shown escaped
        table.add_row(*(Text(cell) for cell in row))
    console.print(table)
