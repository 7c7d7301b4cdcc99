"""Small files packed into bundles (issue 16): one archive for many files, read
by standard tools, with the catalog mapping each file to its bytes."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import tarfile
from dataclasses import replace
from pathlib import Path

from glacierd import description
from glacierd.config import PackSection
from glacierd.daemon import Daemon
from glacierd.emulator import Emulator
from tests.conftest import random_file
from tests.test_daemon_schedule import prepared_daemon

KIB = 1024


def _with_pack(daemon: Daemon, **pack: object) -> None:
    daemon.config = replace(daemon.config, pack=PackSection(**pack))  # type: ignore[arg-type]
    daemon.packer = daemon._make_packer(daemon.config)


def _queue(daemon: Daemon, paths: list[Path]) -> None:
    assert daemon.store is not None
    daemon.store.files_seen([(str(p), p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_ino)
                             for p in paths])


def _bundles_in_vault(emu: Emulator, vault: str = "local") -> list[tuple[str, bytes]]:
    """(archive id, bytes) of each bundle archive the vault holds."""
    out = []
    for meta in emu.state._archives(vault):
        archive_id = str(meta["ArchiveId"])
        info = description.decode(str(meta["ArchiveDescription"]))
        if info is not None and os.path.basename(info.path).startswith("glacierd-bundle-"):
            out.append((archive_id, emu.state.archive_bytes(vault, archive_id)))
    return out


def test_small_files_go_up_in_one_bundle_that_tar_reads(tmp_path: Path) -> None:
    now = [dt.datetime.now(dt.UTC)]
    with Emulator(tmp_path / "emu") as emu, prepared_daemon(tmp_path, emu, now) as daemon:
        _with_pack(daemon, threshold=64 * KIB, target_mib=1, max_wait=600)
        inbox = tmp_path / "inbox"
        small = {inbox / f"note-{i:02d}.txt": random_file(inbox / f"note-{i:02d}.txt",
                                                          100 + 997 * i, seed=i)
                 for i in range(40)}
        (inbox / "weird \udcff name").write_bytes(b"bytes of a name that is not UTF-8")
        small[inbox / "weird \udcff name"] = b"bytes of a name that is not UTF-8"
        big = random_file(inbox / "big.bin", 200 * KIB, seed=99)
        _queue(daemon, [*small, inbox / "big.bin"])
        daemon.drain()  # under the target and nothing waited 10 minutes: only the big one
        assert daemon.store is not None
        states = {f: daemon.store.file(str(f)).state for f in small}  # type: ignore[union-attr]
        assert set(states.values()) == {"pending"}
        assert daemon.store.file(str(inbox / "big.bin")).state == "archived"  # type: ignore[union-attr]
        assert _bundles_in_vault(emu) == []
        now[0] += dt.timedelta(minutes=11)
        daemon.drain()
        bundles = _bundles_in_vault(emu)
        assert len(bundles) == 1, "one archive for all the small files"
        archive_id, data = bundles[0]
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            names = tar.getnames()
            assert names[0] == ".glacierd-bundle.json"
            for path, content in small.items():
                member = tar.extractfile(os.fsencode(str(path)).decode("utf-8", "surrogateescape")
                                         .lstrip("/"))
                assert member is not None and member.read() == content, path
        for path, content in small.items():
            record = daemon.store.file(str(path))
            assert record is not None and record.state == "archived", path
        listed = {a.source_path: a for a in daemon.store.archives(str(inbox))}
        for path, content in small.items():
            entry = listed[str(path)]
            assert entry.archive_id is None and entry.plain_sha256 == hashlib.sha256(
                content).hexdigest()
        assert list((daemon.bundles_dir).iterdir()) == [], "the local bundle is deleted"
        big_archive = listed[str(inbox / "big.bin")]
        assert emu.state.archive_bytes("local", str(big_archive.archive_id)) == big
