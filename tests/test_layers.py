"""Layers that hold at run time: what the lower layers import, and errors that
stay in their own hierarchy."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from glacierd.emulator import Emulator
from glacierd.errors import ConfigError, GlacierdError, RestoreError, StoreError, UploadError
from glacierd.glacier.errors import GlacierError
from tests.conftest import aws_config, query_state


def _modules_after(code: str) -> set[str]:
    probe = code + "\nimport sys\nprint(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=60, check=True)
    return set(out.stdout.split())


def _configured(tmp_path: Path, emulator: Emulator, extra: str = "") -> Path:
    """A config for the emulator, its state in ``tmp_path / "state"``; ``extra``:
    sections added."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(aws_config(emulator.endpoint_url, "v").replace(
        'dir = "state"', f'dir = "{tmp_path / "state"}"') + extra)
    return cfg


def _glacierd(cfg: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "glacierd.cli", "--config", str(cfg), *args],
                   check=True, capture_output=True, timeout=60)


def test_the_pure_and_store_layers_do_not_import_requests() -> None:
    loaded = _modules_after("import glacierd.glacier.treehash, glacierd.glacier.sigv4, "
                            "glacierd.config, glacierd.description, glacierd.pathtext, "
                            "glacierd.store.repository, glacierd.readahead, glacierd.errors")
    assert "requests" not in loaded and "urllib3" not in loaded


def test_help_imports_neither_requests_nor_the_store() -> None:
    loaded = _modules_after("from glacierd.cli import main\nimport contextlib, io\n"
                            "with contextlib.redirect_stdout(io.StringIO()):\n"
                            "    main(['--help'])")
    assert "requests" not in loaded and "sqlalchemy" not in loaded


@pytest.mark.parametrize("ours", [ConfigError, StoreError, RestoreError, UploadError])
def test_glacierds_errors_are_not_the_clients(ours: type[GlacierdError]) -> None:
    assert not issubclass(ours, GlacierError)
    with pytest.raises(ours):  # `except GlacierError` (a failed request) lets it through
        try:
            raise ours("the state database is full")
        except GlacierError:
            pytest.fail("a database failure was taken for a failed request")


def test_the_restorer_sees_no_requests_exceptions() -> None:
    """Stream errors are wrapped by the client's one verified range fetch."""
    import glacierd.restorer

    assert "requests" not in vars(glacierd.restorer)


def test_the_bundle_format_and_the_totals_sql_are_pure() -> None:
    loaded = _modules_after("import glacierd.bundle, glacierd.store.totals")
    assert not {"requests", "sqlalchemy", "urllib3"} & loaded


def test_restoring_loads_no_daemon_and_no_watcher(tmp_path: Path,
                                                  emulator: Emulator) -> None:
    """``glacierd restore`` runs the restorer alone (``wiring.make_restorer``): the
    daemon's module, with the watcher and the drain, is not part of its start-up."""
    cfg = _configured(tmp_path, emulator)
    loaded = _modules_after(
        "from glacierd.cli import main\n"
        f"assert main(['--config', {str(cfg)!r}, 'db', 'upgrade']) == 0\n"
        f"main(['--config', {str(cfg)!r}, 'restore', '/nothing/here', '--dry-run'])")
    assert "glacierd.restorer" in loaded  # the command ran as far as its restorer
    assert not {"glacierd.daemon", "glacierd.watcher", "watchdog", "apscheduler"} & loaded


def test_the_store_states_are_pure_and_the_store_needs_no_orm() -> None:
    loaded = _modules_after("import glacierd.store.states")
    assert not {"sqlalchemy", "requests"} & loaded
    loaded = _modules_after("import glacierd.store.repository, glacierd.store.migrations, "
                            "glacierd.uploader, glacierd.wiring")
    assert "sqlalchemy" in loaded and "sqlalchemy.orm" not in loaded


def test_uploading_a_file_loads_no_orm(tmp_path: Path, emulator: Emulator) -> None:
    """``glacierd upload``'s store calls are Core statements and the driver's cursor
    (``store.direct``): importing SQLAlchemy's ORM (and mapping classes), about
    0.15 s of start-up, is not part of it. Two parts, so every per-part call runs,
    and long enough for its progress to be written."""
    # 1 MiB parts; 1.5 s at 1 MiB/s, so its progress is written too (once a second)
    cfg = _configured(tmp_path, emulator,
                      '[upload]\npart_size_mib = 1\nbandwidth_limit = "1M"\n')
    data = tmp_path / "two-parts"
    data.write_bytes(bytes(range(256)) * (6 * 1024))  # 1.5 MiB: two 1 MiB parts
    _glacierd(cfg, "db", "upgrade")
    loaded = _modules_after(
        "from glacierd.cli import main\n"
        f"assert main(['--config', {str(cfg)!r}, 'upload', {str(data)!r}]) == 0")
    assert "glacierd.uploader" in loaded
    assert "sqlalchemy.orm" not in loaded
    # nor the daemon's packer (with the bundle format, tarfile) or the restorer
    assert not {"glacierd.packer", "glacierd.bundle", "glacierd.restorer"} & loaded
    [(archive_id, parts)] = query_state(
        tmp_path / "state" / "glacierd.db",
        "SELECT a.archive_id, count(p.id) FROM archives a JOIN parts p "
        "ON p.upload_id = a.upload_id GROUP BY a.id")
    assert parts == 2
    assert emulator.state.archive_bytes("v", str(archive_id)) == data.read_bytes()


def test_restoring_a_file_loads_no_orm(tmp_path: Path, emulator: Emulator) -> None:
    """``glacierd restore --wait``'s store calls (the choice of archives, the
    restore's rows, its job, its segments, the events) are Core statements: no
    ``sqlalchemy.orm`` either."""
    cfg = _configured(tmp_path, emulator, "[restore]\nsegment_mib = 1\n")
    data = tmp_path / "data" / "f.bin"
    data.parent.mkdir()
    body = bytes(range(256)) * (10 * 1024)  # 2.5 MiB: three segments
    data.write_bytes(body)
    _glacierd(cfg, "db", "upgrade")
    _glacierd(cfg, "upload", str(data))
    data.unlink()
    loaded = _modules_after(
        "from glacierd.cli import main\n"
        f"assert main(['--config', {str(cfg)!r}, 'restore', {str(data)!r}, '--wait', "
        f"'--to', {str(tmp_path / 'back')!r}]) == 0")
    assert "glacierd.restorer" in loaded
    assert "sqlalchemy.orm" not in loaded
    assert (tmp_path / "back" / data.relative_to("/")).read_bytes() == body
    [(segments, status)] = query_state(
        tmp_path / "state" / "glacierd.db",
        "SELECT count(s.id), r.status FROM restores r JOIN restore_segments s "
        "ON s.restore_id = r.id GROUP BY r.id")
    assert (segments, status) == (3, "done")


def test_the_daemon_archives_a_file_without_the_orm(tmp_path: Path,
                                                    emulator: Emulator) -> None:
    """``glacierd run`` from start to stop (start-up scan, settle, drain, upload,
    heartbeat, folder problems, jobs, shutdown): every store call on Core."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.txt").write_bytes(b"a small file")
    cfg = _configured(tmp_path, emulator, f"""
[schedule]
drain_seconds = 0.2
settle_check_seconds = 0.2
[pack]
threshold = 0
[[watch]]
path = "{inbox}"
settle_seconds = 0.5
""")
    _glacierd(cfg, "db", "upgrade")
    loaded = tmp_path / "modules.txt"
    probe = ("import atexit, sys\n"
             f"atexit.register(lambda: open({str(loaded)!r}, 'w').write(' '.join(sys.modules)))\n"
             "from glacierd.cli import main\n"
             f"sys.exit(main(['--config', {str(cfg)!r}, 'run']))")
    proc = subprocess.Popen([sys.executable, "-c", probe], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while query_state(tmp_path / "state" / "glacierd.db",
                          "SELECT count(*) FROM archives") != [(1,)]:
            assert time.monotonic() < deadline, "the file was not archived"
            time.sleep(0.1)  # polling another process's store: there is no event
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    modules = set(loaded.read_text().split())
    assert "glacierd.daemon" in modules and "sqlalchemy" in modules
    assert "sqlalchemy.orm" not in modules
