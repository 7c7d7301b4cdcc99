"""File names as text that is lossless, printable and one line (pure).

Linux allows any bytes but ``/`` and NUL in a name. Python gives names that
are not UTF-8 back as text with lone surrogates (``surrogateescape``), which
neither UTF-8 nor a database nor a terminal can take, and a name may hold a
newline, a tab or a terminal escape sequence that would break a log line or
act on a terminal. ``escape`` turns any such text into printable text:

* ``\\`` becomes ``\\\\``;
* a byte that is not UTF-8 (a surrogate U+DC80-U+DCFF) becomes ``\\xHH`` (HH >= 80);
* a C0 control or DEL becomes ``\\n``, ``\\t``, ``\\r`` or ``\\xHH`` (HH < 80);
* C1 controls, other lone surrogates, line and paragraph separators, and the
  invisible format characters (soft hyphen, zero-width characters, the
  bidirectional marks and overrides that reorder what a terminal shows, the
  byte order mark) become ``\\uXXXX``.

The set is fixed here, not taken from the running Python's Unicode tables, so
that a name is stored the same way by every Python version.

Every other character stays as it is, so a UTF-8 name reads as itself.
``unescape`` is the exact inverse: the store keeps paths in this form (so a
SQL ``LIKE`` prefix and a JSON document built by the database work on it as
on any text) and the same form is what a person or a script sees.
``guard`` makes free text (messages that quote paths) safe the same way,
without the backslash rule: it is for showing, not for reading back.
"""

from __future__ import annotations

import os
import re

_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
_HIDDEN = ("\x00-\x1f\x7f-\x9f\xad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f"
           "\ud800-\udfff\ufeff\ufff9-\ufffb")
_NEEDS = re.compile(f"[\\\\{_HIDDEN}]")
_NEEDS_GUARD = re.compile(f"[{_HIDDEN}]")
_ESCAPE = re.compile(r"\\(\\|n|t|r|x[0-9a-f]{2}|u[0-9a-f]{4})")


def _one(char: str) -> str:
    code = ord(char)
    if char == "\\":
        return "\\\\"
    if char in _NAMED:
        return _NAMED[char]
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"


def escape(text: str) -> str:
    """Lossless, printable, one-line form of a path (identity for plain names)."""
    if not _NEEDS.search(text):
        return text
    return _NEEDS.sub(lambda m: _one(m.group()), text)


def guard(text: str) -> str:
    """Free text made safe to print and to store (controls and odd bytes escaped)."""
    if not _NEEDS_GUARD.search(text):
        return text
    return _NEEDS_GUARD.sub(lambda m: _one(m.group()), text)


def _back(match: re.Match[str]) -> str:
    body = match.group(1)
    if body == "\\":
        return "\\"
    if body in ("n", "t", "r"):
        return {"n": "\n", "t": "\t", "r": "\r"}[body]
    code = int(body[1:], 16)
    if body[0] == "x" and code >= 0x80:
        return chr(0xDC00 + code)  # the surrogate-escaped byte
    return chr(code)


def unescape(text: str) -> str:
    """The path ``escape`` was given."""
    if "\\" not in text:
        return text
    return _ESCAPE.sub(_back, text)


_TOKEN = re.compile(r"\\(?:\\|n|t|r|x[0-9a-f]{2}|u[0-9a-f]{4})|.", re.DOTALL)


def cut(escaped: str, limit: int) -> str:
    """The longest head of an escaped text, at most ``limit`` characters, that
    does not cut an escape in two."""
    if len(escaped) <= limit:
        return escaped
    end = 0
    for match in _TOKEN.finditer(escaped):
        if match.end() > limit:
            break
        end = match.end()
    return escaped[:end]


def shown(path: str | os.PathLike[str]) -> str:
    """A path as a person or a script sees it: ``escape`` of its text."""
    return escape(os.fspath(path))


def is_plain(text: str) -> bool:
    """True when ``escape`` leaves the text as it is."""
    return not _NEEDS.search(text)
