"""glacierd on a shared PostgreSQL catalog (issue 17): the daemon runs on it as on
SQLite, and survives the database going away — every file archived once.

The server is stopped the hard way (``pg_ctl -m immediate``) right after files
were archived, on a server whose default is ``synchronous_commit = off``: before
glacierd set it on for its own sessions, the commits of the last archive were
lost and the file was uploaded a second time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from glacierd import description
from glacierd.emulator import fetch_stats
from glacierd.store.repository import Store
from tests.conftest import emulator_process, random_file
from tests.test_crash import vault_inventory
from tests.test_daemon_e2e import cli, daemon, wait_until, write_config

pytestmark = pytest.mark.slow


def _states(url: str) -> dict[str, str]:
    store = Store.open(url, read_only=True)
    try:
        return {r.path: r.state for r in (store.file(p) for p in _paths(store)) if r}
    finally:
        store.close()


def _paths(store: Store) -> list[str]:
    from sqlalchemy import text

    with store.engine.connect() as conn:
        return [str(p) for (p,) in conn.execute(text("SELECT path FROM files"))]


def test_the_daemon_on_postgresql_survives_a_database_restart(
        tmp_path: Path, postgres_server: object) -> None:
    url = postgres_server.new_database()  # type: ignore[attr-defined]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    first = {f"a{i}.bin": random_file(inbox / f"a{i}.bin", 300_000 + i, seed=i) for i in range(3)}
    with emulator_process(tmp_path / "emu") as emu_url:
        cfg = write_config(tmp_path, emu_url, inbox)
        cfg.write_text(cfg.read_text().replace("[state]", f'[state]\ndatabase_url = "{url}"', 1))
        assert cli(cfg, "db", "upgrade").returncode == 0
        with daemon(cfg) as proc:
            wait_until(lambda: set(_states(url).values()) == {"archived"}
                       and len(_states(url)) == 3, 60, "the first files, on PostgreSQL")
            postgres_server.restart()  # type: ignore[attr-defined]
            later = {f"b{i}.bin": random_file(inbox / f"b{i}.bin", 200_000 + i, seed=9 + i)
                     for i in range(2)}
            wait_until(lambda: len(_states(url)) == 5
                       and set(_states(url).values()) == {"archived"}, 90,
                       "the files that came after the restart")
            assert proc.poll() is None, "the daemon lived through it"
            status = json.loads(cli(cfg, "status", "--json").stdout)
            proc.terminate()
            _out, err = proc.communicate(timeout=60)
        listing = vault_inventory(emu_url, "daemon")
        stats = fetch_stats(emu_url)
    infos = [description.decode(str(a["ArchiveDescription"])) for a in listing]
    names = sorted(Path(i.path).name for i in infos if i is not None)
    assert names == sorted([*first, *later]), f"every file archived once; the daemon said:\n{err}"
    assert stats["archives_created"] == 5
    assert status["counts"] == {"archived": 5}


def test_host_a_s_files_restored_on_host_c_from_a_shared_vault(tmp_path: Path) -> None:
    """Two hosts back up to one vault, each with a catalog of its own, one path on
    both with other bytes; a third machine rebuilds its catalog from the vault
    and restores host A's version with --host (not B's, not whichever is newer),
    and ties neither host's archives to its own file at that path."""
    from glacierd import catalog
    from glacierd.backends.vault import VaultBackend
    from glacierd.emulator import Emulator
    from glacierd.restorer import Restorer, RestoreSettings
    from glacierd.store.states import utcnow
    from glacierd.uploader import Uploader, UploadSettings
    from tests.conftest import client_for, store_at_head

    shared = tmp_path / "etc" / "app.conf"
    shared.parent.mkdir()
    with Emulator(tmp_path / "emu") as emu:
        client = client_for(emu)
        client.create_vault("v")
        made = {}
        for host in ("alpha", "beta"):
            made[host] = random_file(shared, 4000 + len(host), seed=len(host))
            uploader = Uploader(store_at_head(tmp_path / host), VaultBackend(client, "v"),
                                UploadSettings(part_size=2**20, host=host))
            assert uploader.upload_path(shared).status == "archived"
            uploader.close()
        mine = store_at_head(tmp_path / "gamma")
        mine.file_seen(str(shared), 1, 1, 1)  # this machine has a file at that path too
        mine.add_job(client.initiate_inventory_job("v"), "v", "inventory")
        [job] = mine.jobs(kind="inventory")
        catalog.fetch_inventory(client, mine, job, tmp_path / "gamma", utcnow())
        assert {a.source_path for a in mine.archives(host="alpha")} == {str(shared)}
        assert len(mine.archives()) == 2
        gamma_file = mine.file(str(shared))
        assert gamma_file is not None
        latest, _unconfirmed, _open = mine.upload_state(gamma_file.id)
        assert latest is None, "another host's archive is not this host's file's backup"
        restorer = Restorer(mine, VaultBackend(client, "v"),
                            RestoreSettings(restore_dir=tmp_path / "out"))
        [record] = restorer.request(restorer.select([str(shared)], host="alpha"))
        restorer.poll()
        assert Path(record.dest_path).read_bytes() == made["alpha"]


def test_two_hosts_share_one_catalog_through_sigkills(tmp_path: Path,
                                                      postgres_server: object) -> None:
    """Two daemons of two hosts (``$GLACIERD_HOST``), each with its own folder,
    on one PostgreSQL catalog and one vault, each killed in the middle of an
    upload and started again: every file archived once, by its own host, and
    `status --all-hosts` tells both."""
    import os
    import signal
    import subprocess
    import sys

    url = postgres_server.new_database()  # type: ignore[attr-defined]
    files: dict[str, dict[Path, bytes]] = {}
    with emulator_process(tmp_path / "emu") as emu_url:
        cfgs = {}
        for n, host in enumerate(("alpha", "beta")):
            inbox = tmp_path / host / "inbox"
            inbox.mkdir(parents=True)
            files[host] = {inbox / f"{i}.bin": random_file(inbox / f"{i}.bin",
                                                           1_500_000 + 7 * i, seed=10 * n + i)
                           for i in range(3)}
            cfg = write_config(tmp_path / host, emu_url, inbox)
            cfg.write_text(cfg.read_text().replace("[state]", f'[state]\ndatabase_url = "{url}"',
                                                   1))
            cfgs[host] = cfg
        assert cli(cfgs["alpha"], "db", "upgrade").returncode == 0

        def run(host: str, fault: str | None) -> subprocess.Popen[str]:
            # PYTHONFAULTHANDLER: a daemon that would not stop is made to tell where it is
            env = {**os.environ, "GLACIERD_HOST": host, "PYTHONFAULTHANDLER": "1"}
            if fault:
                env["GLACIERD_FAULT_POINT"] = fault
            # its log to a file: a pipe nobody reads fills up and stops the daemon
            log = open(tmp_path / f"{host}.log", "a")  # noqa: SIM115 (closed with the test)
            return subprocess.Popen([sys.executable, "-m", "glacierd.cli", "--config",
                                     str(cfgs[host]), "run"], stdout=log, stderr=log,
                                    text=True, env=env)

        killed = [run("alpha", "after-part-2xx:2"), run("beta", "after-part-2xx:3")]
        try:
            for proc in killed:
                proc.wait(timeout=90)
                assert proc.returncode == -9, (tmp_path / "alpha.log").read_text() + (
                    tmp_path / "beta.log").read_text()
        finally:  # a failed assertion must not leave the other daemon running
            for proc in killed:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=30)
        survivors = [run("alpha", None), run("beta", None)]
        try:
            hosts: dict[str, dict[str, object]] = {}

            def both_done() -> bool:
                out = cli(cfgs["alpha"], "status", "--all-hosts", "--json")
                hosts.update({h["host"]: h for h in json.loads(out.stdout)})
                return all(hosts.get(h, {}).get("counts") == {"archived": 3}
                           for h in ("alpha", "beta"))

            wait_until(both_done, 120, "both hosts' files archived")
            assert all(hosts[h]["daemon"]["running"] for h in ("alpha", "beta"))  # type: ignore[index]
        finally:
            for proc in survivors:
                proc.terminate()
            stuck = []
            for proc, host in zip(survivors, ("alpha", "beta"), strict=True):
                try:
                    proc.wait(timeout=90)
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGABRT)  # the faulthandler prints every thread
                    proc.wait(timeout=30)
                    stuck.append((tmp_path / f"{host}.log").read_text()[-6000:])
            assert not stuck, "a daemon did not stop on SIGTERM:\n" + "\n".join(stuck)
        listing = vault_inventory(emu_url, "daemon")
    made = sorted((i.host, i.path) for i in (description.decode(str(a["ArchiveDescription"]))
                                             for a in listing) if i is not None)
    assert made == sorted((host, str(p)) for host in files for p in files[host]), \
        "every file archived once, by its own host"


def test_a_second_daemon_of_the_same_host_name_is_refused(tmp_path: Path,
                                                          postgres_server: object) -> None:
    """Two machines that call themselves by one name would take each other's files:
    the second daemon is refused while the first holds the host's lock, and starts
    once the first is gone (its lock goes with its session, even killed)."""
    import os
    import subprocess
    import sys

    url = postgres_server.new_database()  # type: ignore[attr-defined]
    with emulator_process(tmp_path / "emu") as emu_url:
        cfgs = []
        for machine in ("one", "two"):
            (tmp_path / machine / "inbox").mkdir(parents=True)
            cfg = write_config(tmp_path / machine, emu_url, tmp_path / machine / "inbox")
            cfg.write_text(cfg.read_text().replace("[state]", f'[state]\nurl = "{url}"', 1))
            cfgs.append(cfg)
        assert cli(cfgs[0], "db", "upgrade").returncode == 0
        env = {**os.environ, "GLACIERD_HOST": "twin"}
        log = open(tmp_path / "daemons.log", "a")  # noqa: SIM115 (a pipe would fill up)
        first = subprocess.Popen([sys.executable, "-m", "glacierd.cli", "--config",
                                  str(cfgs[0]), "run"], stdout=log, stderr=log, text=True,
                                 env=env)
        try:
            wait_until(lambda: json.loads(cli(cfgs[0], "status", "--all-hosts", "--json")
                                          .stdout or "[]") != [], 60, "the first daemon up")
            second = subprocess.run([sys.executable, "-m", "glacierd.cli", "--config",
                                     str(cfgs[1]), "run"], capture_output=True, text=True,
                                    env=env, timeout=60)
            assert second.returncode == 75, second.stderr
            assert "'twin' is already running" in second.stderr
            assert "Traceback" not in second.stderr
        finally:
            first.kill()
            first.wait(timeout=30)
        again = subprocess.Popen([sys.executable, "-m", "glacierd.cli", "--config",
                                  str(cfgs[1]), "run"], stdout=log, stderr=log, text=True,
                                 env=env)
        try:
            def its_pid() -> object:
                done = subprocess.run([sys.executable, "-m", "glacierd.cli", "--config",
                                       str(cfgs[1]), "status", "--json", "--summary"],
                                      capture_output=True, text=True, env=env, timeout=60)
                return json.loads(done.stdout)["daemon"]["pid"]

            wait_until(lambda: its_pid() == again.pid, 60,
                       "the second machine's daemon, once the first is gone")
        finally:
            again.terminate()
            again.wait(timeout=60)
