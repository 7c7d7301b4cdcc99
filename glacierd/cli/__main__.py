"""``python -m glacierd.cli``."""

from glacierd.cli import entry

entry()
