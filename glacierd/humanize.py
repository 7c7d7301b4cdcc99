"""Numbers and times as people read them (pure).

One unit system everywhere a person reads a size: binary units with one
decimal (``1.5 MiB``); exact byte counts stay in ``--json``. Times in tables
are relative ("3 min ago", "in 2 h"); ``--json`` and logs keep ISO 8601.
"""

from __future__ import annotations

import datetime as dt

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def size(n: float) -> str:
    """``512 B``, ``1.0 KiB``, ``1.5 MiB`` ... (binary units, one decimal)."""
    if abs(n) < 1024:
        return f"{n:.0f} B"
    for unit in _UNITS:
        n /= 1024
        if abs(n) < 1024 or unit == _UNITS[-1]:
            return f"{n:.1f} {unit}"
    raise AssertionError("unreachable")


def rate(bytes_per_second: float) -> str:
    return f"{size(bytes_per_second)}/s"


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``1 archive``, ``2 archives``, ``0 files``."""
    return f"{n:,} {noun if n == 1 else (plural or noun + 's')}"


def duration(seconds: float) -> str:
    """``0.4 s``, ``45 s``, ``3 min``, ``2 h 5 min``, ``3 d 4 h``: two units at most."""
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    days, hours = divmod(hours, 24)
    return f"{days} d" + (f" {hours} h" if hours else "")


def relative(when: dt.datetime | None, now: dt.datetime) -> str:
    """``3 min ago``, ``in 2 h``, ``just now``; ``-`` for no time."""
    if when is None:
        return "-"
    delta = (when - now).total_seconds()
    if abs(delta) < 1:
        return "just now"
    return f"in {duration(delta)}" if delta > 0 else f"{duration(-delta)} ago"


def middle_cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, cut in the middle so that the end
    (a path's file name) stays whole whenever it fits."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    name = text.rsplit("/", 1)[-1]
    tail = name if len(name) < width - 1 else text[-(width - 1) // 2:]
    if tail is name and "/" in text:
        tail = "/" + name if len(name) + 2 <= width else name
    head = text[: max(0, width - 1 - len(tail))]
    return head + "…" + tail
