"""The console-script entry point: garbage collection is off while a command
imports its modules and back on before it works on the store, so a long command
(the daemon, an upload of many files) still collects its garbage."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import pytest

from glacierd import cli
from glacierd.store.repository import Store
from tests.conftest import store_at_head


def test_entry_collects_again_once_the_command_opens_the_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    store_at_head(tmp_path).close()
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"""[aws]
access_key_id = "AKIDEXAMPLE"
secret_access_key = "not-a-real-secret"
[vault]
name = "v"
[state]
dir = "{tmp_path / 'state'}"
""")
    collecting_at_open: list[bool] = []
    real_open = Store.open.__func__  # type: ignore[attr-defined]

    def observed_open(klass: type[Store], url: str, **kw: bool) -> Store:
        collecting_at_open.append(gc.isenabled())
        return real_open(klass, url, **kw)  # type: ignore[no-any-return]

    monkeypatch.setattr(Store, "open", classmethod(observed_open))
    monkeypatch.setattr(sys, "argv", ["glacierd", "--config", str(cfg), "archives"])
    monkeypatch.setattr(cli, "_collection_deferred", False)  # restored after the test
    try:
        with pytest.raises(SystemExit) as finished:
            cli.entry()
        assert finished.value.code == 0
        assert collecting_at_open == [True]
        assert gc.isenabled()
    finally:
        gc.unfreeze()  # entry froze this test process's heap for its exit
        gc.enable()


def test_startup_done_is_a_no_op_unless_entry_deferred_collection() -> None:
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    cli.startup_done()
    assert gc.isenabled() and gc.get_freeze_count() == frozen
