"""The daemon's HTTP face (``[http]``): ``/metrics`` for Prometheus, ``/healthz``
for probes, and a read-only status page (``/``, fed by ``/status.json``).

Everything shown is read from the store at request time, as ``glacierd
status`` reads it (``glacierd.status.collect``), plus the counters of this
process (``glacierd.metrics.PROCESS``). The exposition is written by the
official ``prometheus_client`` library from a collector made per scrape. The
server binds loopback unless the config says otherwise, and then requires a
bearer token (``Authorization: Bearer TOKEN``, or ``?token=`` for a browser);
requests are not logged, so the token never reaches a log.
"""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from glacierd import metrics, status
from glacierd.store.reader import Reader

ReaderFactory = Callable[[], Reader]


def _families(doc: dict[str, Any], tally: metrics.Tally, daemon_alive: bool) -> Iterator[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    up = GaugeMetricFamily("glacierd_daemon_up", "1 while the daemon runs and its heartbeat "
                                                 "is fresh")
    up.add_metric([], 1.0 if daemon_alive else 0.0)
    yield up
    files = GaugeMetricFamily("glacierd_files", "Files the store knows, by state",
                              labels=["state"])
    for state in ("pending", "uploading", "archived", "failed", "gone", "forgotten"):
        files.add_metric([state], float(doc["counts"].get(state, 0)))
    yield files
    summary = doc["summary"]
    for name, text, value in (
            ("glacierd_queue_files", "Files waiting to be uploaded", summary["queued_files"]),
            ("glacierd_queue_bytes", "Bytes waiting to be uploaded", summary["queued_bytes"]),
            ("glacierd_archived_bytes", "Bytes in live archives", summary["archived_bytes"]),
            ("glacierd_upload_rate_bytes_per_second", "Upload rate now", summary["rate_bps"]),
            ("glacierd_uploads_in_progress", "Uploads under way", len(doc["uploads"]))):
        gauge = GaugeMetricFamily(name, text)
        gauge.add_metric([], float(value))
        yield gauge
    cost = doc.get("cost")
    if cost:
        month = GaugeMetricFamily("glacierd_storage_cost_usd_per_month",
                                  "What the stored archives cost a month at list prices "
                                  "(per-object overhead included)", labels=["storage_class"])
        month.add_metric([cost["storage_class"]], float(cost["month_usd"]))
        yield month
    inventory = doc.get("last_inventory")
    if inventory and inventory.get("requested_at"):
        import datetime as dt

        when = GaugeMetricFamily("glacierd_last_inventory_timestamp_seconds",
                                 "When the last applied inventory was requested (Unix time)")
        when.add_metric([], dt.datetime.fromisoformat(inventory["requested_at"]).timestamp())
        yield when
    snapshot = tally.snapshot()
    for name, text in metrics.COUNTERS.items():
        rows = [(dict(labels), value) for (counted, labels), value in snapshot.items()
                if counted == name]
        names = sorted({k for labels, _ in rows for k in labels}) or (
            ["operation", "code"] if name == "request_errors" else [])
        family = CounterMetricFamily(f"glacierd_{name}", text, labels=names)
        for labels, value in rows:
            family.add_metric([labels.get(k, "") for k in names], value)
        if not rows and not names:
            family.add_metric([], 0.0)
        yield family


def metrics_text(doc: dict[str, Any], tally: metrics.Tally = metrics.PROCESS) -> bytes:
    """The Prometheus exposition of a status document (``status.collect``'s) and
    the process's counters."""
    from prometheus_client import CollectorRegistry, generate_latest

    class _Collector:
        def collect(self) -> Iterator[Any]:
            return _families(doc, tally, bool(doc["daemon"]["running"]))

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    return bytes(generate_latest(registry))


class StatusServer:
    """A small threaded HTTP server for one daemon; ``start`` binds, ``stop`` ends it."""

    def __init__(self, host: str, port: int, reader_factory: ReaderFactory, *,
                 token: str | None = None, tally: metrics.Tally = metrics.PROCESS,
                 priced: status.Priced | None = None) -> None:
        self._factory = reader_factory
        self._priced = priced
        self._token = token
        self._tally = tally
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass  # a query may carry the token: nothing is logged

            def do_GET(self) -> None:
                server._serve(self)

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        name="glacierd-http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def start(self) -> tuple[str, int]:
        self._thread.start()
        return self.address

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _allowed(self, handler: BaseHTTPRequestHandler, query: dict[str, list[str]]) -> bool:
        if self._token is None:
            return True
        given = handler.headers.get("Authorization", "").removeprefix("Bearer ").strip() or \
            (query.get("token") or [""])[0]
        return hmac.compare_digest(given.encode(), self._token.encode())

    def _document(self) -> dict[str, Any]:
        """The status document, read now (a reader per request: the store may be
        written meanwhile by the daemon's threads)."""
        reader = self._factory()
        try:
            return status.collect(reader, all_files=False, priced=self._priced)
        finally:
            reader.close()

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        query = parse_qs(parts.query)
        if not self._allowed(handler, query):
            self._send(handler, 401, "text/plain; charset=utf-8", b"a bearer token is needed\n",
                       {"WWW-Authenticate": "Bearer"})
            return
        try:
            if parts.path == "/metrics":
                self._send(handler, 200, "text/plain; version=0.0.4; charset=utf-8",
                           metrics_text(self._document(), self._tally))
            elif parts.path == "/healthz":
                alive = self._document()["daemon"]["running"]
                self._send(handler, 200 if alive else 503, "text/plain; charset=utf-8",
                           b"ok\n" if alive else b"the daemon's heartbeat is stale\n")
            elif parts.path == "/status.json":
                self._send(handler, 200, "application/json",
                           json.dumps(self._document()).encode())
            elif parts.path in ("/", "/index.html"):
                self._send(handler, 200, "text/html; charset=utf-8", PAGE.encode())
            else:
                self._send(handler, 404, "text/plain; charset=utf-8", b"not found\n")
        except Exception as exc:  # the store is busy or gone: say so, keep serving
            self._send(handler, 503, "text/plain; charset=utf-8",
                       f"{type(exc).__name__}: {exc}\n".encode())

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, code: int, kind: str, body: bytes,
              headers: dict[str, str] | None = None) -> None:
        handler.send_response(code)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>glacierd</title>
<style>
 body { font: 15px/1.4 system-ui, sans-serif; margin: 1em; color: #222; max-width: 60em; }
 h1 { font-size: 1.3em; margin: 0 0 .3em; } h2 { font-size: 1.05em; margin: 1.2em 0 .3em; }
 .up { color: #176b2c; } .down { color: #a35200; }
 table { border-collapse: collapse; width: 100%; } td, th { padding: .2em .4em;
 text-align: left; border-bottom: 1px solid #ddd; vertical-align: top; }
 td.path { word-break: break-all; } progress { width: 8em; } .muted { color: #777; }
</style></head>
<body>
<h1>glacierd <span id="daemon" class="muted">…</span></h1>
<div id="counts" class="muted"></div>
<h2>Uploading</h2><table id="uploads"></table>
<h2>Failures</h2><table id="failures"></table>
<h2>Recently archived</h2><table id="recent"></table>
<h2>Restores</h2><table id="restores"></table>
<p class="muted">Read-only; refreshed every 2 s. <span id="updated"></span></p>
<script>
const token = new URLSearchParams(location.search).get("token");
const size = b => { const u = ["B","KiB","MiB","GiB","TiB"]; let i = 0;
  while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
  return (i ? b.toFixed(1) : b) + " " + u[i]; };
function rows(id, head, items, cells) {
  const t = document.getElementById(id); t.textContent = "";
  if (!items.length) { t.innerHTML = '<tr><td class="muted">none</td></tr>'; return; }
  const h = t.insertRow(); for (const c of head) { const th = document.createElement("th");
    th.textContent = c; h.appendChild(th); }
  for (const item of items) { const r = t.insertRow();
    for (const c of cells(item)) { const td = r.insertCell();
      if (c instanceof Node) td.appendChild(c); else td.textContent = c;
      if (td.cellIndex === 0) td.className = "path"; } }
}
async function refresh() {
  try {
    const r = await fetch("status.json" + (token ? "?token=" + encodeURIComponent(token) : ""));
    const d = await r.json();
    const dm = document.getElementById("daemon");
    dm.textContent = d.daemon.running ? "running, pid " + d.daemon.pid + ", archiving to "
      + d.daemon.vault : "not running";
    dm.className = d.daemon.running ? "up" : "down";
    document.getElementById("counts").textContent = Object.entries(d.counts)
      .map(([k, v]) => v + " " + k).join(", ") + "; " + size(d.summary.archived_bytes)
      + " archived" + (d.summary.queued_files ? ", " + size(d.summary.queued_bytes)
      + " queued" : "") + (d.cost && d.cost.objects ? "; about $" + d.cost.month_usd.toFixed(4)
      + " a month in " + d.cost.storage_class : "");
    rows("uploads", ["file", "progress", "done"], d.uploads, u => {
      const p = document.createElement("progress"); p.max = u.size || 1;
      p.value = u.bytes_acked + u.bytes_in_flight;
      const pct = Math.floor(100 * (u.bytes_acked + u.bytes_in_flight) / (u.size || 1));
      return [u.path, p, pct + "% of " + size(u.size)]; });
    rows("failures", ["file", "error"], d.failures, f => [f.path, f.error || ""]);
    rows("recent", ["file", "size"], d.recent, a => [a.path, size(a.size)]);
    rows("restores", ["file", "status"], d.restores, x => [x.path, x.status]);
    document.getElementById("updated").textContent = "Updated " +
      new Date().toLocaleTimeString() + ".";
  } catch (e) {
    document.getElementById("updated").textContent = "Cannot reach glacierd: " + e;
  }
}
refresh(); setInterval(refresh, 2000);
</script>
</body></html>
"""
