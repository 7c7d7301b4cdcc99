"""The daemon's signals as events, installed before anything slow happens.

``glacierd run`` spends the better part of a second importing its code and
opening the store before the daemon's loop runs. A SIGTERM in that time (a
``systemctl stop`` right after a start) must still end the process cleanly:
with Python's default action it dies with status -15, which systemd reports
as a failure. So the CLI installs these handlers first thing, and the daemon
reads the same events from start-up to shutdown. Cheap to import on purpose.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

log = logging.getLogger("glacierd.daemon")


class DaemonSignals:
    """SIGTERM/SIGINT set ``stop``; SIGHUP sets ``reload``."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.reload = threading.Event()
        self.installed = False

    def install(self) -> DaemonSignals:
        """Take the signals (only the main thread can; elsewhere a no-op)."""
        if self.installed or threading.current_thread() is not threading.main_thread():
            return self
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, self._hup)
        self.installed = True
        return self

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        self.stop.set()

    def _hup(self, _signum: int, _frame: FrameType | None) -> None:
        self.reload.set()
