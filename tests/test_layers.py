"""Layers that hold at run time: what the lower layers import, and errors that
stay in their own hierarchy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from glacierd.emulator import Emulator
from glacierd.errors import ConfigError, GlacierdError, RestoreError, StoreError, UploadError
from glacierd.glacier.errors import GlacierError
from tests.conftest import aws_config


def _modules_after(code: str) -> set[str]:
    probe = code + "\nimport sys\nprint(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=60, check=True)
    return set(out.stdout.split())


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
    cfg = tmp_path / "c.toml"
    cfg.write_text(aws_config(emulator.endpoint_url, "v").replace(
        'dir = "state"', f'dir = "{tmp_path / "state"}"'))
    loaded = _modules_after(
        "from glacierd.cli import main\n"
        f"assert main(['--config', {str(cfg)!r}, 'db', 'upgrade']) == 0\n"
        f"main(['--config', {str(cfg)!r}, 'restore', '/nothing/here', '--dry-run'])")
    assert "glacierd.restorer" in loaded  # the command ran as far as its restorer
    assert not {"glacierd.daemon", "glacierd.watcher", "watchdog", "apscheduler"} & loaded
