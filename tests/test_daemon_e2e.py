"""The daemon end to end: a real ``glacierd run`` process, real files in a real
folder, the emulator as another process, ``glacierd status --json`` read back."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from glacierd.emulator import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, fetch_stats
from glacierd.glacier import GlacierClient, treehash
from tests.conftest import (
    MIB,
    aws_config,
    count_rows,
    emulator_process,
    fast_policy,
    query_state,
    random_file,
)
from tests.test_crash import archives_of

pytestmark = pytest.mark.slow


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.1)  # polling another process's state: there is no event to wait on


def write_config(tmp_path: Path, url: str, inbox: Path, *, extra_watch: str = "",
                 upload: str = "", grace: float = 30, vault_create: bool = True,
                 pack: str = "threshold = 0") -> Path:
    """A daemon's config; ``pack``: the [pack] section (by default no packing: these
    tests follow each file to its own archive)."""
    cfg = tmp_path / "glacierd.toml"
    base = aws_config(url, "daemon").replace("create = true",
                                             f"create = {str(vault_create).lower()}")
    cfg.write_text(base + f"""
[upload]
part_size_mib = 1
{upload}
[schedule]
drain_seconds = 0.5
settle_check_seconds = 0.2
[daemon]
shutdown_grace_seconds = {grace}
[pack]
{pack}
[[watch]]
path = "{inbox}"
exclude = ["*.iso"]
settle_seconds = 1.5
{extra_watch}
""")
    return cfg


def cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "glacierd.cli", "--config", str(cfg), *args],
                          capture_output=True, text=True, timeout=120)


@contextmanager
def daemon(cfg: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-m", "glacierd.cli", "--config", str(cfg), "run"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def file_states(state_db: Path) -> dict[str, str]:
    return {str(p): str(st) for p, st in query_state(state_db, "SELECT path, state FROM files")}


def acked_parts(state_db: Path) -> int:
    return count_rows(state_db, "parts")


def test_daemon_archives_what_lands_in_the_watched_folder(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "sub").mkdir(parents=True)
    before = random_file(inbox / "was-here-before.bin", 2 * MIB + 3, seed=1)
    with emulator_process(tmp_path / "emu") as url:
        cfg = write_config(tmp_path, url, inbox)
        assert cli(cfg, "db", "upgrade").returncode == 0
        state_db = tmp_path / "state" / "glacierd.db"
        with daemon(cfg) as proc:
            wait_until(lambda: file_states(state_db).get(str(inbox / "was-here-before.bin"))
                       == "archived", 60, "the file that was there at start")
            sub = random_file(inbox / "sub" / "nested.dat", 700_000, seed=2)
            random_file(inbox / "movie.iso", 100_000, seed=3)
            (inbox / "download.part").write_bytes(b"never taken")
            staging = tmp_path / "staging.tmp"
            renamed = random_file(staging, 300_000, seed=4)
            os.rename(staging, inbox / "renamed.bin")
            slow_path = inbox / "slowly.log"
            with open(slow_path, "wb") as fh:  # written over ~3 s, in pauses < settle time
                for i in range(10):
                    fh.write(bytes([i]) * 100_000)
                    fh.flush()
                    time.sleep(0.3)
            slow = slow_path.read_bytes()
            expected = {inbox / "was-here-before.bin": before, inbox / "sub" / "nested.dat": sub,
                        inbox / "renamed.bin": renamed, slow_path: slow}
            wait_until(lambda: all(file_states(state_db).get(str(p)) == "archived"
                                   for p in expected), 90, "all files archived")
            status = json.loads(cli(cfg, "status", "--json").stdout)
            assert proc.poll() is None
        listing = _inventory(url)
        stats = fetch_stats(url)
    assert status["daemon"]["running"] is True and status["daemon"]["pid"] == proc.pid
    by_path = {f["path"]: f for f in status["files"]}
    for path, data in expected.items():
        mine = archives_of(listing, path)
        assert len(mine) == 1, path
        assert mine[0]["SHA256TreeHash"] == treehash.tree_hash(data), path
        assert by_path[str(path)]["state"] == "archived"
        assert by_path[str(path)]["archive_id"] == mine[0]["ArchiveId"]
    assert str(inbox / "movie.iso") not in by_path
    assert str(inbox / "download.part") not in by_path
    assert not archives_of(listing, inbox / "movie.iso")
    assert stats["archives_created"] == 4, "each file exactly once"


def _inventory(url: str) -> list[dict[str, object]]:
    """The daemon vault's archives, through an inventory job (the emulator's jobs
    finish at once by default)."""
    client = GlacierClient("us-east-1", endpoint_url=url,
                           credentials=(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY),
                           retry_policy=fast_policy())
    job = client.initiate_inventory_job("daemon")
    with client.get_job_output("daemon", job) as out:
        doc = json.loads(out.read())
    listing: list[dict[str, object]] = doc["ArchiveList"]
    return listing


def test_sigkill_during_a_200mib_upload_resumes_to_one_archive(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    size = 200 * MIB
    with emulator_process(tmp_path / "emu") as url:
        cfg = write_config(tmp_path, url, inbox, upload='part_size_mib = 8\n'
                           'bandwidth_limit = "60M"')
        cfg.write_text(cfg.read_text().replace("part_size_mib = 1\n", "", 1))
        assert cli(cfg, "db", "upgrade").returncode == 0
        state_db = tmp_path / "state" / "glacierd.db"
        data = random_file(tmp_path / "big.bin", size, seed=200)
        os.rename(tmp_path / "big.bin", inbox / "big.bin")
        with daemon(cfg) as proc:
            wait_until(lambda: acked_parts(state_db) >= 4, 60, "some parts acknowledged")
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        acked_at_kill = acked_parts(state_db)
        assert acked_at_kill < size // (8 * MIB), "killed mid-upload"
        with daemon(cfg):
            wait_until(lambda: file_states(state_db).get(str(inbox / "big.bin")) == "archived",
                       120, "the upload to finish after the restart")
        stats = fetch_stats(url)
        mine = archives_of(_inventory(url), inbox / "big.bin")
    assert len(mine) == 1 and mine[0]["SHA256TreeHash"] == treehash.tree_hash(data)
    assert stats["archives_created"] == 1
    assert stats["part_bytes_received"] <= size + 4 * 8 * MIB, "resumed, not restarted"


def test_sigterm_mid_upload_exits_0_within_grace_and_resumes(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with emulator_process(tmp_path / "emu") as url:
        cfg = write_config(tmp_path, url, inbox, upload='bandwidth_limit = "4M"', grace=10)
        assert cli(cfg, "db", "upgrade").returncode == 0
        state_db = tmp_path / "state" / "glacierd.db"
        data = random_file(tmp_path / "f.bin", 40 * MIB, seed=40)
        os.rename(tmp_path / "f.bin", inbox / "f.bin")
        with daemon(cfg) as proc:
            wait_until(lambda: acked_parts(state_db) >= 2, 60, "parts acknowledged")
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
            assert time.monotonic() - started < 10 + 5, "within the grace period"
        acked = acked_parts(state_db)
        assert 2 <= acked < 40
        with daemon(cfg):
            wait_until(lambda: file_states(state_db).get(str(inbox / "f.bin")) == "archived",
                       120, "the upload to finish after the restart")
        stats = fetch_stats(url)
        mine = archives_of(_inventory(url), inbox / "f.bin")
    assert len(mine) == 1 and mine[0]["SHA256TreeHash"] == treehash.tree_hash(data)
    assert stats["part_bytes_received"] <= len(data) + 4 * MIB


def test_sd_notify_ready_status_watchdog_stopping(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    sock_path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(sock_path))
    listener.settimeout(30)
    messages: list[str] = []

    def listen() -> None:
        while True:
            try:
                messages.append(listener.recv(4096).decode())
            except (TimeoutError, OSError):
                return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    with emulator_process(tmp_path / "emu") as url:
        cfg = write_config(tmp_path, url, inbox)
        assert cli(cfg, "db", "upgrade").returncode == 0
        with daemon(cfg, env={"NOTIFY_SOCKET": str(sock_path),
                              "WATCHDOG_USEC": "1000000"}) as proc:
            wait_until(lambda: any("READY=1" in m for m in messages), 60, "READY=1")
            wait_until(lambda: any(m == "WATCHDOG=1" for m in messages), 10, "WATCHDOG=1")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        wait_until(lambda: any("STOPPING=1" in m for m in messages), 10, "STOPPING=1")
    listener.close()
    ready = next(m for m in messages if "READY=1" in m)
    assert "STATUS=" in ready and "archived" in ready
    assert any(m.startswith("STATUS=") for m in messages)


def test_second_daemon_refuses_and_names_the_first(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with emulator_process(tmp_path / "emu") as url:
        cfg = write_config(tmp_path, url, inbox)
        assert cli(cfg, "db", "upgrade").returncode == 0
        with daemon(cfg) as first:
            wait_until(lambda: json.loads(cli(cfg, "status", "--json").stdout)["daemon"]
                       ["running"], 60, "the first daemon")
            second = subprocess.run([sys.executable, "-m", "glacierd.cli", "--config", str(cfg),
                                     "run"], capture_output=True, text=True, timeout=60)
            assert second.returncode == 75
            assert f"pid {first.pid}" in second.stderr
            assert first.poll() is None


def test_daemon_refuses_bad_setups_with_the_key_named(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with emulator_process(tmp_path / "emu") as url:
        cfg = write_config(tmp_path, url, tmp_path / "missing")
        assert cli(cfg, "db", "upgrade").returncode == 0
        answer = cli(cfg, "run")
        assert answer.returncode == 78
        assert "glacierd.toml" in answer.stderr and "[[watch]] #1.path" in answer.stderr
        assert "no such folder" in answer.stderr
        no_vault = write_config(tmp_path, url, inbox, vault_create=False)
        answer = cli(no_vault, "run")
        assert answer.returncode == 78 and "no such vault" in answer.stderr
        (tmp_path / "blocker").write_text("a file where the state dir should be")
        blocked = write_config(tmp_path, url, inbox)
        blocked.write_text(blocked.read_text().replace('dir = "state"', 'dir = "blocker/state"'))
        answer = cli(blocked, "run")
        assert answer.returncode == 78 and "[state] dir" in answer.stderr
        assert "Traceback" not in answer.stderr


def test_reload_keeps_old_config_on_error_and_applies_a_good_one(tmp_path: Path) -> None:
    inbox, second = tmp_path / "inbox", tmp_path / "second"
    inbox.mkdir()
    second.mkdir()
    with emulator_process(tmp_path / "emu") as url:
        cfg = write_config(tmp_path, url, inbox)
        good = cfg.read_text()
        assert cli(cfg, "db", "upgrade").returncode == 0
        state_db = tmp_path / "state" / "glacierd.db"
        with daemon(cfg) as proc:
            wait_until(lambda: json.loads(cli(cfg, "status", "--json").stdout)["daemon"]
                       ["running"], 60, "the daemon")
            cfg.write_text(good + "\n[upload]\nbogus = 1\n")
            proc.send_signal(signal.SIGHUP)
            (inbox / "still.txt").write_text("the old config still works")
            wait_until(lambda: file_states(state_db).get(str(inbox / "still.txt")) == "archived",
                       60, "upload with the old config")
            cfg.write_text(good + f'\n[[watch]]\npath = "{second}"\nsettle_seconds = 0.5\n')
            proc.send_signal(signal.SIGHUP)
            wait_until(lambda: "reloaded" in _events(state_db), 30, "the reload")
            (second / "new.txt").write_text("seen after the reload")
            wait_until(lambda: file_states(state_db).get(str(second / "new.txt")) == "archived",
                       60, "upload from the new watch folder")
            assert proc.poll() is None
    events = _events(state_db)
    assert "reload-failed" in events and "reloaded" in events


def _events(state_db: Path) -> list[str]:
    return [str(kind) for (kind,) in query_state(state_db, "SELECT kind FROM events")]


def test_after_upload_delete_and_move(tmp_path: Path) -> None:
    inbox, drop, done = tmp_path / "inbox", tmp_path / "drop", tmp_path / "done"
    inbox.mkdir()
    drop.mkdir()
    with emulator_process(tmp_path / "emu") as url:
        cfg = write_config(tmp_path, url, inbox, extra_watch='after_upload = "delete"\n'
                           f'[[watch]]\npath = "{drop}"\nsettle_seconds = 0.5\n'
                           f'after_upload = "move:{done}"\n')
        assert cli(cfg, "db", "upgrade").returncode == 0
        with daemon(cfg):
            random_file(inbox / "gone.bin", 5000, seed=1)
            (drop / "sub").mkdir()
            kept = random_file(drop / "sub" / "kept.bin", 6000, seed=2)
            wait_until(lambda: not (inbox / "gone.bin").exists(), 60, "the delete")
            wait_until(lambda: (done / "sub" / "kept.bin").exists(), 60, "the move")
        listing = _inventory(url)
    assert (done / "sub" / "kept.bin").read_bytes() == kept
    assert len(archives_of(listing, inbox / "gone.bin")) == 1
    assert len(archives_of(listing, drop / "sub" / "kept.bin")) == 1


def _check_local_emulator_is_private(state: Path) -> None:
    """Its own keys (0600), not the public defaults; no test endpoints to anyone."""
    import urllib.error
    import urllib.request

    from glacierd.glacier import GlacierError

    published = json.loads((state / "local-endpoint.json").read_text())
    keys = state / "local-credentials.json"
    assert keys.stat().st_mode & 0o077 == 0
    assert (state / "emulator").stat().st_mode & 0o077 == 0, "the backed-up bytes: 0700"
    assert published["access_key"] != DEFAULT_ACCESS_KEY
    assert published["secret_key"] == json.loads(keys.read_text())["secret_key"]
    url = published["endpoint_url"]
    public = GlacierClient("us-east-1", endpoint_url=url, retry_policy=fast_policy(1),
                           credentials=(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY))
    with pytest.raises(GlacierError) as refused:
        public.list_vaults()
    assert refused.value.status == 403
    for secret in (None, DEFAULT_SECRET_KEY, published["secret_key"]):
        request = urllib.request.Request(
            f"{url}/__faults", method="POST", data=b'{"rate": 1.0}',
            headers={"Authorization": f"Bearer {secret}"} if secret else {})
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(request, timeout=10)
        assert answer.value.code in (400, 403, 404)
    mine = GlacierClient("us-east-1", endpoint_url=url, retry_policy=fast_policy(1),
                         credentials=(published["access_key"], published["secret_key"]))
    assert [v["VaultName"] for v in mine.list_vaults()] == ["local"], "no fault was injected"


def test_local_mode_round_trip_with_real_processes(tmp_path: Path) -> None:
    state, inbox = tmp_path / "state", tmp_path / "inbox"
    base = [sys.executable, "-m", "glacierd.cli"]
    local = [*base, "--local", "--state-dir", str(state)]
    refused = subprocess.run([*local, "restore", str(inbox)], capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode != 0 and "run --local" in refused.stderr
    inbox.mkdir()  # only the default ./inbox is created: a --watch folder must exist
    proc = subprocess.Popen([*base, "run", "--local", "--state-dir", str(state), "--watch",
                             str(inbox)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_until(lambda: (state / "local-endpoint.json").exists(), 60, "the local daemon")
        assert (state / "local-endpoint.json").stat().st_mode & 0o077 == 0
        _check_local_emulator_is_private(state)
        second = subprocess.run([*base, "run", "--local", "--state-dir", str(state)],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 75 and "Traceback" not in second.stderr
        assert (state / "local-endpoint.json").exists(), "the refused run left it alone"
        data = random_file(inbox / "notes.bin", 1500 * 1000, seed=11)
        wait_until(lambda: file_states(state / "glacierd.db").get(str(inbox / "notes.bin"))
                   == "archived", 60, "the upload")
        status = json.loads(subprocess.run([*local, "status", "--json"], capture_output=True,
                                           text=True, timeout=60).stdout)
        assert status["daemon"]["running"] and status["files"][0]["state"] == "archived"
        (inbox / "notes.bin").unlink()
        back = subprocess.run([*local, "restore", str(inbox), "--wait"], capture_output=True,
                              text=True, timeout=120)
        assert back.returncode == 0, back.stderr
        restored = tmp_path / "restored" / str(inbox / "notes.bin").lstrip("/")
        assert restored.read_bytes() == data
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert not (state / "local-endpoint.json").exists(), "removed when the daemon stops"
    assert proc.stderr is not None
    journal = proc.stderr.read()
    assert "glacierd stopped" in journal and "Adding job" not in journal, "a quiet journal"
    listing = subprocess.run([*local, "archives"], capture_output=True, text=True, timeout=60)
    assert str(inbox / "notes.bin") in listing.stdout, "the catalog needs no running daemon"
