"""``[http]``: ``/metrics`` parsed by prometheus_client's own parser with its
values checked against what was uploaded, ``/healthz``, the bearer token, and
the status page loaded in Debian's headless Chromium while a file uploads."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from glacierd import metrics, pricing
from glacierd.store.reader import open_reader
from glacierd.web import StatusServer
from tests.conftest import MIB, emulator_process, random_file, store_at_head
from tests.test_daemon_e2e import cli, daemon, file_states, wait_until, write_config


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_healthz_and_the_token(tmp_path: Path) -> None:
    store = store_at_head(tmp_path)
    for i in range(3):
        record = store.file_seen(f"/d/{i}.bin", 1000 + i, i, i)
        upload = store.set_upload_id(store.create_upload(record.id, "v", f"t{i}", "d", 2**20,
                                                         1000 + i, i, i), f"U{i}")
        store.part_acknowledged(upload, 0, 0, 1000 + i, "ab" * 32)
        store.finish_upload(store.set_completing(upload, "ab" * 32), f"A{i}")
    store.file_seen("/d/waiting.bin", 77, 9, 9)
    tally = metrics.Tally()
    tally.add("uploaded_bytes", 3003)
    tally.add("request_errors", operation="UploadPart", code="ServiceUnavailable")
    url = f"sqlite:///{tmp_path / 'state' / 'glacierd.db'}"
    server = StatusServer("127.0.0.1", 0, lambda: open_reader(url), tally=tally,
                          token="t" * 20, priced=("v", "VAULT", pricing.PRICES))
    host, port = server.start()
    base = f"http://{host}:{port}"
    try:
        assert requests.get(f"{base}/metrics", timeout=10).status_code == 401
        assert requests.get(f"{base}/metrics?token=wrong", timeout=10).status_code == 401
        got = requests.get(f"{base}/metrics", headers={"Authorization": "Bearer " + "t" * 20},
                           timeout=10)
        assert got.status_code == 200
        values = _samples(got.text)
        assert values[("glacierd_files", (("state", "archived"),))] == 3
        assert values[("glacierd_files", (("state", "pending"),))] == 1
        assert values[("glacierd_archived_bytes", ())] == 3003
        assert values[("glacierd_queue_files", ())] == 1
        assert values[("glacierd_uploaded_bytes_total", ())] == 3003
        assert values[("glacierd_request_errors_total", (("code", "ServiceUnavailable"),
                                                         ("operation", "UploadPart")))] == 1
        assert values[("glacierd_daemon_up", ())] == 0
        month = sum(sum(pricing.billed_month(1000 + i, "VAULT")) for i in range(3))
        assert values[("glacierd_storage_cost_usd_per_month", (("storage_class", "VAULT"),))] \
            == pytest.approx(month)
        health = requests.get(f"{base}/healthz?token={'t' * 20}", timeout=10)
        assert health.status_code == 503, "no daemon heartbeat in this store"
        doc = requests.get(f"{base}/status.json?token={'t' * 20}", timeout=10).json()
        assert doc["counts"] == {"archived": 3, "pending": 1}
    finally:
        server.stop()
        store.close()


def test_a_bad_listen_address_is_refused_by_name(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[vault]\nname = "v"\n[http]\nlisten = "0.0.0.0:9464"\n')
    done = cli(cfg, "status")
    assert done.returncode == 78 and "[http].listen = '0.0.0.0:9464'" in done.stderr
    assert "token" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_the_daemon_serves_metrics_and_a_page_chromium_shows(tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    small = {f"note-{i}.txt": random_file(inbox / f"note-{i}.txt", 5000 + i, seed=i)
             for i in range(3)}
    with emulator_process(tmp_path / "emu") as url:
        cfg = write_config(tmp_path, url, inbox, upload='bandwidth_limit = "3M"')
        cfg.write_text(cfg.read_text() + '\n[http]\nlisten = "127.0.0.1:0"\n')
        assert cli(cfg, "db", "upgrade").returncode == 0
        state_db = tmp_path / "state" / "glacierd.db"
        with daemon(cfg):
            wait_until(lambda: all(file_states(state_db).get(str(inbox / n)) == "archived"
                                   for n in small), 60, "the small files")
            big = random_file(inbox / "holiday-video.mp4", 24 * MIB, seed=24)
            wait_until(lambda: file_states(state_db).get(str(inbox / "holiday-video.mp4"))
                       == "uploading", 60, "the big file's upload")
            endpoint = json.loads((tmp_path / "state" / "http-endpoint.json").read_text())
            base = f"http://{endpoint['host']}:{endpoint['port']}"
            assert requests.get(f"{base}/healthz", timeout=10).status_code == 200
            if chromium is not None:  # .ci/run installs it; the page, as a phone shows it
                dom = subprocess.run(
                    [chromium, "--headless", "--no-sandbox", "--disable-gpu",
                     "--virtual-time-budget=4000", "--dump-dom", f"{base}/"],
                    capture_output=True, text=True, timeout=120).stdout
                shown = re.sub(r"<(script|style)\b.*?</\1>", "", dom, flags=re.S)[-3000:]
                assert "holiday-video.mp4" in dom, shown
                assert "% of 24.0 MiB" in dom, shown
                assert all(name in dom for name in small) and "running, pid" in dom
                assert "a month in VAULT" in dom, "the cost line"
                shot = tmp_path / "page.png"
                subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                                "--virtual-time-budget=4000", "--window-size=412,915",
                                f"--screenshot={shot}", f"{base}/"],
                               capture_output=True, timeout=120)
                assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
                assert shot.stat().st_size > 5000, "a page with something on it"
            wait_until(lambda: file_states(state_db).get(str(inbox / "holiday-video.mp4"))
                       == "archived", 120, "the big file")
            values = _samples(requests.get(f"{base}/metrics", timeout=10).text)
        total = len(big) + sum(len(d) for d in small.values())
        assert values[("glacierd_uploaded_bytes_total", ())] == total
        assert values[("glacierd_parts_sent_total", ())] == 24 + 3
        assert values[("glacierd_files", (("state", "archived"),))] == 4
        assert values[("glacierd_daemon_up", ())] == 1
        assert values[("glacierd_archived_bytes", ())] == total
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it): the "
                    "metrics were checked, the page was not")
