"""What this process has done, counted as it happens (pure): the counters that
``/metrics`` exposes beside the store's own figures (``glacierd.web``).

A ``Tally`` is a set of named counters with labels, safe across threads.
``PROCESS`` is the process's: the uploader counts parts and bytes sent, the
restorer bytes restored, the client's transport every error answer by its
code (``glacierd.glacier.transport.ERROR_OBSERVERS``). Cheap to import and to
count: nothing here knows Prometheus.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

Labels = tuple[tuple[str, str], ...]


class Tally:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, Labels], float] = {}

    def add(self, name: str, amount: float = 1, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._values[key] = self._values.get(key, 0) + amount

    def snapshot(self) -> Mapping[tuple[str, Labels], float]:
        with self._lock:
            return dict(self._values)

    def value(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._values.get((name, tuple(sorted(labels.items()))), 0)


PROCESS = Tally()


def count_request_error(operation: str, code: str) -> None:
    """A transport error observer (``glacier.transport.ERROR_OBSERVERS``)."""
    PROCESS.add("request_errors", operation=operation, code=code)

COUNTERS = {
    "uploaded_bytes": "Bytes of parts the service acknowledged (this process)",
    "parts_sent": "Parts the service acknowledged (this process)",
    "restored_bytes": "Bytes of restores downloaded and verified (this process)",
    "request_errors": "Error answers and transport failures, by operation and code "
                      "(retried or not)",
}
"""The counters ``/metrics`` shows (each as ``glacierd_NAME_total``)."""
