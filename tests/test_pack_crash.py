"""SIGKILLs while bundles are built and uploaded (issue 16): a real ``glacierd
run`` killed at each point of a bundle's life, then left to finish; every file
ends archived once, restorable byte for byte, and a file changed after it was
packed ends archived in its new version."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from glacierd import description
from glacierd.emulator.store import GlacierState
from tests.conftest import emulator_process, random_file
from tests.test_daemon_e2e import cli, file_states, wait_until, write_config

pytestmark = pytest.mark.slow

KIB = 1024
PACK = """
threshold = 65536
target_mib = 1
max_wait = 1
"""


def _bundles(data_dir: Path, vault: str = "daemon") -> list[dict[str, object]]:
    """The index of every bundle in the vault, read from the emulator's own files
    (what a ``tar -x`` of each bundle's first member gives)."""
    state = GlacierState(data_dir)
    out = []
    for meta in state._archives(vault):
        info = description.decode(str(meta["ArchiveDescription"]))
        if info is None or not os.path.basename(info.path).startswith("glacierd-bundle-"):
            continue
        data = state.archive_bytes(vault, str(meta["ArchiveId"]))
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            index = tar.extractfile(".glacierd-bundle.json")
            assert index is not None
            doc = json.loads(index.read())
            for member in doc["members"]:
                entry = tar.extractfile(member["path"].lstrip("/"))
                assert entry is not None
                assert hashlib.sha256(entry.read()).hexdigest() == member["sha256"]
        out.append(doc)
    return out


def _killed_at(cfg: Path, fault: str) -> None:
    """``glacierd run`` until it kills itself at ``fault``."""
    env = {**os.environ, "GLACIERD_FAULT_POINT": fault}
    proc = subprocess.Popen([sys.executable, "-m", "glacierd.cli", "--config", str(cfg), "run"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -9, (fault, proc.returncode, proc.stderr.read() if proc.stderr
                                   else "")


def test_bundles_survive_sigkill_at_every_step(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    files = {inbox / f"{i:03d}.msg": random_file(inbox / f"{i:03d}.msg", 2 * KIB + 97 * i,
                                                 seed=i) for i in range(150)}
    with emulator_process(tmp_path / "emu") as url:
        cfg = write_config(tmp_path, url, inbox, pack=PACK)
        assert cli(cfg, "db", "upgrade").returncode == 0
        state_db = tmp_path / "state" / "glacierd.db"
        _killed_at(cfg, "bundle-spooled")
        _killed_at(cfg, "bundle-written")
        _killed_at(cfg, "bundle-committed")
        packed = [p for p, st in file_states(state_db).items() if st == "packed"]
        assert packed, "the first bundle's files are packed"
        changed = Path(packed[0])
        files[changed] = random_file(changed, 3 * KIB + 1, seed=1000)  # after it was packed
        _killed_at(cfg, "after-part-2xx:1")
        _killed_at(cfg, "after-complete")
        log = open(tmp_path / "daemon.log", "w")  # noqa: SIM115 (a pipe nobody reads fills)
        proc = subprocess.Popen([sys.executable, "-m", "glacierd.cli", "--config", str(cfg),
                                 "run"], stdout=log, stderr=log, text=True)
        try:
            wait_until(lambda: all(file_states(state_db).get(str(p)) == "archived"
                                   for p in files), 120, "every file archived")
            wait_until(lambda: not os.listdir(tmp_path / "state" / "bundles"), 30,
                       "the local bundles deleted")
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        bundles = _bundles(tmp_path / "emu")
        seen: dict[str, list[str]] = {}
        for doc in bundles:
            for member in doc["members"]:  # type: ignore[attr-defined]
                seen.setdefault(member["path"], []).append(member["sha256"])
        for path, content in files.items():
            digest = hashlib.sha256(content).hexdigest()
            if path == changed:  # its packed version, then its new one
                assert len(seen[str(path)]) == 2 and seen[str(path)][-1] == digest
            else:
                assert seen[str(path)] == [digest], f"{path} archived once"
        assert len(bundles) <= 4, [len(d["members"]) for d in bundles]  # type: ignore[arg-type]
        out = tmp_path / "restored"
        back = subprocess.run([sys.executable, "-m", "glacierd.cli", "--config", str(cfg),
                               "restore", str(inbox), "--to", str(out), "--wait"],
                              capture_output=True, text=True, timeout=300)
        assert back.returncode == 0, back.stderr
        for path, content in files.items():
            assert (out / str(path).lstrip("/")).read_bytes() == content, path
