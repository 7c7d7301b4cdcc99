"""One way to print a listing (``archives``, ``jobs``, ``vaults``, ``verify`` ...):

* ``--json``: a JSON array of objects with exact values (bytes, ISO 8601 times,
  whole ids), documented in the README;
* piped: one line a row, tab-separated, exact values (for ``cut``/``awk``);
* a terminal: a table for people — binary units, relative times, paths cut in
  the middle when they must be, and no ids (they do not fit: ``--long`` prints
  each row as a block with its id whole on a line of its own).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import click

from glacierd import humanize
from glacierd.pathtext import guard


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    human: Callable[[Any], str] = str
    is_id: bool = False  # whole in --json, piped and --long; left out of the table


def size(value: Any) -> str:
    return humanize.size(value) if isinstance(value, int | float) else str(value or "-")


def when(value: Any) -> str:
    if not value:
        return "-"
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
    return humanize.relative(moment, dt.datetime.now(dt.UTC))


def _exact(value: Any) -> Any:
    return value.isoformat(timespec="seconds") if isinstance(value, dt.datetime) else value


def show(rows: Iterable[dict[str, Any]], columns: Sequence[Column], *, as_json: bool,
         long: bool, empty: str = "nothing to list") -> None:
    """Print ``rows``. For ``--json`` and a pipe they are written as they come (a
    listing of a million rows in constant memory); the JSON is what ``json.dumps``
    would write of the whole list. A terminal's table needs them all first."""
    if as_json and not sys.stdout.isatty():
        out = sys.stdout
        out.write("[")
        for i, row in enumerate(rows):
            out.write((", " if i else "") + json.dumps({k: _exact(v) for k, v in row.items()}))
        out.write("]\n")
        return
    if as_json:
        doc = [{k: _exact(v) for k, v in row.items()} for row in rows]
        click.echo(json.dumps(doc, indent=2))
        return
    if not sys.stdout.isatty():
        for row in rows:
            click.echo("\t".join(guard(str(_exact(row[c.key]) if row[c.key] is not None
                                           else "-")) for c in columns))
        return
    rows = list(rows)
    if not rows:
        click.echo(empty)
        return
    if long:
        for row in rows:
            first, *rest = columns
            click.echo(guard(first.human(row[first.key])))
            for column in rest:
                click.echo(f"  {column.header}: {guard(column.human(row[column.key]))}")
        return
    from glacierd.cli.terminal import print_table

    shown = [c for c in columns if not c.is_id]
    print_table([c.header for c in shown],
                ([c.human(row[c.key]) for c in shown] for row in rows))
    if len(shown) < len(columns):
        click.echo("(--long shows whole ids, --json everything)", err=True)
