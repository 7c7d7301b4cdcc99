"""Small files packed into bundles (issue 16): one archive for many files, read
by standard tools, with the catalog mapping each file to its bytes."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

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
        _archive_id, data = bundles[0]
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            names = tar.getnames()
            assert names[0] == ".glacierd-bundle.json"
            for path, content in small.items():
                member = tar.extractfile(os.fsencode(str(path)).decode("utf-8", "surrogateescape")
                                         .lstrip("/"))
                assert member is not None and member.read() == content, path
        for path in small:
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


def _packed_vault(tmp_path: Path, emu: Emulator, count: int = 60,
                  size: int = 60 * KIB) -> tuple[Daemon, dict[Path, bytes]]:
    """A daemon whose ``count`` small files went up packed (about 3.6 MiB of
    bundle, in one bundle)."""
    now = [dt.datetime.now(dt.UTC)]
    daemon_cm = prepared_daemon(tmp_path, emu, now)
    daemon = daemon_cm.__enter__()
    _with_pack(daemon, threshold=128 * KIB, target_mib=16, max_wait=1)
    inbox = tmp_path / "inbox"
    files = {}
    for i in range(count):
        path = inbox / "mail" / f"{i:03d}.eml"
        path.parent.mkdir(exist_ok=True)
        files[path] = random_file(path, size - i, seed=i)
        os.chmod(path, 0o640 if i % 2 else 0o600)
        os.utime(path, ns=(1_600_000_000_123_456_789 + i, 1_600_000_000_123_456_789 + i))
    _queue(daemon, list(files))
    now[0] += dt.timedelta(seconds=2)
    daemon.drain()
    assert len(_bundles_in_vault(emu)) == 1
    return daemon, files


def _restore_now(daemon: Daemon, paths: list[str], to: Path) -> list[object]:
    from glacierd.wiring import make_restorer

    assert daemon.store is not None
    restorer = make_restorer(daemon.config, daemon.store, daemon.backend)
    records = restorer.request(restorer.select(paths), to)
    for _ in range(3):  # the emulator's jobs are ready at once: poll, download
        restorer.poll()
    return [daemon.store.restore(r.id) for r in records]


def test_one_packed_file_is_restored_from_a_megabyte_of_its_bundle(tmp_path: Path) -> None:
    with Emulator(tmp_path / "emu") as emu:
        daemon, files = _packed_vault(tmp_path, emu)
        try:
            [(_bundle_id, bundle_bytes)] = _bundles_in_vault(emu)
            assert len(bundle_bytes) > 3 * 1024 * KIB
            emu.reset_stats()
            wanted = tmp_path / "inbox" / "mail" / "031.eml"
            [record] = _restore_now(daemon, [str(wanted)], tmp_path / "out")
            assert record.status == "done", record.error  # type: ignore[attr-defined]
            restored = tmp_path / "out" / str(wanted).lstrip("/")
            assert restored.read_bytes() == files[wanted]
            st = restored.stat()
            assert (st.st_mode & 0o777, st.st_mtime_ns) == (0o640, 1_600_000_000_123_456_789 + 31)
            stats = emu.stats()
            assert stats["requests"]["InitiateJob"] == 1
            assert 0 < stats["retrieved_bytes"] <= 2 * 1024 * KIB, "a megabyte-aligned range"
            assert stats["job_output_bytes_sent"] == len(files[wanted]), "its bytes alone"

            emu.reset_stats()
            records = _restore_now(daemon, [str(tmp_path / "inbox" / "mail")], tmp_path / "all")
            assert {r.status for r in records} == {"done"}  # type: ignore[attr-defined]
            for path, content in files.items():
                assert (tmp_path / "all" / str(path).lstrip("/")).read_bytes() == content
            assert emu.stats()["requests"]["InitiateJob"] == 1, "one retrieval for the bundle"
        finally:
            assert daemon.lock is not None
            daemon.lock.release()


def test_deleting_packed_files_leaves_the_bundle_until_none_is_left(tmp_path: Path) -> None:
    from glacierd import status

    with Emulator(tmp_path / "emu") as emu:
        daemon, files = _packed_vault(tmp_path, emu, count=3, size=5000)
        try:
            store = daemon.store
            assert store is not None
            doc = status.collect(store, all_files=False)
            assert doc["packing"] == {"bundles": 1, "bundles_on_their_way": 0,
                                      "packed_files": 3, "packed_bytes": 5000 + 4999 + 4998,
                                      "reclaimable_bytes": 0}
            assert doc["counts"] == {"archived": 3}, "the bundle is not one of the user's files"
            entries = {a.source_path: a for a in store.archives(str(tmp_path))}
            first, second, third = (entries[str(p)] for p in files)
            assert store.mark_member_deleted(first.id) is None
            assert store.mark_member_deleted(second.id) is None
            packing = status.collect(store, all_files=False)["packing"]
            assert packing["reclaimable_bytes"] == 5000 + 4999
            assert packing["packed_files"] == 1
            bundle_id = store.mark_member_deleted(third.id)
            assert bundle_id == first.bundle_archive_id, "the last one empties the bundle"
            assert {f.state for f in map(store.file, map(str, files))} == {  # type: ignore[union-attr]
                "pending"}, "their backups are gone: queued again"
        finally:
            daemon.lock.release()


def test_cost_tells_what_packing_saved(tmp_path: Path) -> None:
    from glacierd import costs, pricing

    with Emulator(tmp_path / "emu") as emu:
        daemon, _files = _packed_vault(tmp_path, emu, count=5, size=3000)
        try:
            assert daemon.store is not None
            report = costs.report(daemon.store, "local", pricing.VAULT, pricing.PRICES,
                                  dt.datetime.now(dt.UTC))
            assert report.storage.objects == 1, "one archive: the bundle"
            assert report.packed_files == 5
            assert report.packing_saved_usd == 5 * pricing.object_overhead_month(
                pricing.VAULT, pricing.PRICES)
            assert report.small_objects == 1  # the bundle itself is under 1 MiB
        finally:
            daemon.lock.release()


def test_a_packed_file_in_a_bucket_comes_back_by_a_ranged_get(tmp_path: Path) -> None:
    """S3 restores whole objects: the bundle is restored once, each file read from
    it by a ranged GET of its bytes."""
    from glacierd.daemon import local_config
    from glacierd.store import schema
    from glacierd.store.db import create_store_engine
    from tests.conftest import client_for

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    files = {inbox / f"{i}.txt": random_file(inbox / f"{i}.txt", 1000 + i, seed=i)
             for i in range(20)}
    with Emulator(tmp_path / "emu") as emu:
        config = local_config(tmp_path / "state", [inbox], emu.endpoint_url,
                              emu.credentials.access_key, emu.credentials.secret_key, s3=True)
        config = replace(config, pack=PackSection(threshold=64 * KIB, max_wait=1))
        engine = create_store_engine(config.database_url)
        schema.upgrade(engine)
        engine.dispose()
        daemon = Daemon(config, client=client_for(emu), now=lambda: dt.datetime.now(dt.UTC)
                        + dt.timedelta(seconds=5))
        daemon.prepare()
        try:
            _queue(daemon, list(files))
            daemon.drain()
            assert daemon.store is not None
            assert {daemon.store.file(str(p)).state for p in files} == {  # type: ignore[union-attr]
                "archived"}
            keys = [o["Key"] for o in daemon.target.s3.list_objects("local")]  # type: ignore[union-attr]
            assert len(keys) == 1, keys
            emu.reset_stats()
            wanted = [str(p) for p in list(files)[3:6]]
            records = _restore_now(daemon, wanted, tmp_path / "out")
            assert {r.status for r in records} == {"done"}, [r.error for r in records]  # type: ignore[attr-defined]
            for path in wanted:
                assert (tmp_path / "out" / path.lstrip("/")).read_bytes() == files[Path(path)]
            stats = emu.stats()
            assert stats["requests"].get("RestoreObject", 0) <= 1
            assert stats["requests"]["GetObject"] == 3, "one ranged GET a file"
        finally:
            daemon.lock.release()


def _config_file(tmp_path: Path, emu: Emulator) -> Path:
    """A config file for the in-process emulator's vault and ``tmp_path/state``."""
    from tests.conftest import aws_config

    cfg = tmp_path / "glacierd.toml"
    cfg.write_text(aws_config(emu.endpoint_url, "local") + "[pack]\nthreshold = 131072\n")
    return cfg


def test_repack_rewrites_a_bundle_without_its_deleted_files(tmp_path: Path) -> None:
    from glacierd import status
    from glacierd.cli import main

    with Emulator(tmp_path / "emu") as emu:
        daemon, files = _packed_vault(tmp_path, emu, count=10, size=20 * KIB)
        try:
            store = daemon.store
            assert store is not None
            entries = [next(a for a in store.archives(str(p))) for p in files]
            old_bundle = entries[0].bundle_archive_id
            for entry in entries[:6]:
                assert store.mark_member_deleted(entry.id) is None
            cfg = _config_file(tmp_path, emu)
            assert main(["--config", str(cfg), "repack"]) == 1, "not without --yes"
            assert [b for b, _ in _bundles_in_vault(emu)] == [old_bundle]
            kept = list(files)[6:]
            os.utime(kept[0], ns=(1, 1))  # touched: not the version packed
            assert main(["--config", str(cfg), "repack", "--yes"]) == 1, "refused"
            assert [b for b, _ in _bundles_in_vault(emu)] == [old_bundle]
            os.utime(kept[0], ns=(1_600_000_000_123_456_789 + 6,) * 2)
            assert main(["--config", str(cfg), "repack", "--yes"]) == 0
            [(new_bundle, data)] = _bundles_in_vault(emu)
            assert new_bundle != old_bundle, "the old bundle is deleted from the vault"
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                assert len(tar.getnames()) == 1 + len(kept)
            now = {a.source_path: a for a in store.archives(str(tmp_path / "inbox"))}
            assert set(now) == {str(p) for p in kept}
            assert {a.bundle_archive_id for a in now.values()} == {new_bundle}
            assert status.collect(store, all_files=False)["packing"]["reclaimable_bytes"] == 0
            [record] = _restore_now(daemon, [str(kept[2])], tmp_path / "out")
            assert (tmp_path / "out" / str(kept[2]).lstrip("/")).read_bytes() == files[kept[2]]
            assert record.status == "done"  # type: ignore[attr-defined]
        finally:
            daemon.lock.release()


def test_a_catalog_rebuilt_from_the_vault_learns_packed_files_from_bundles(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The vault alone: an inventory names the bundles, a ranged retrieval of each
    one's first megabytes gives its index, and the files restore byte for byte."""
    from glacierd import pricing
    from glacierd.cli import main
    from glacierd.glacier import limits

    with Emulator(tmp_path / "emu") as emu:
        # 400 files: an index of about 80 KiB; the first megabyte holds it
        (tmp_path / "first").mkdir()
        daemon, files = _packed_vault(tmp_path / "first", emu, count=400, size=3 * KIB)
        daemon.lock.release()
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        cfg = _config_file(elsewhere, emu)
        assert main(["--config", str(cfg), "db", "upgrade"]) == 0
        emu.reset_stats()
        assert main(["--config", str(cfg), "catalog", "rebuild"]) == 0
        stats = emu.stats()
        assert stats["requests"]["InitiateJob"] == 2, "the inventory, one bundle's index"
        assert stats["retrieved_bytes"] == 1024 * KIB
        from glacierd.store.repository import Store

        store = Store.open(f"sqlite:///{elsewhere / 'state' / 'glacierd.db'}")
        try:
            listed = {a.source_path: a for a in store.archives()}
            assert set(listed) == {str(p) for p in files}, "the files, not the bundle"
            some = sorted(files)[::97]
            for path in some:
                assert listed[str(path)].plain_sha256 == hashlib.sha256(files[path]).hexdigest()
        finally:
            store.close()
        capsys.readouterr()
        assert main(["--config", str(cfg), "restore", *map(str, some), "--dry-run",
                     "--json"]) == 0
        quote = json.loads(capsys.readouterr().out)
        spans = [(listed[str(p)].member_offset or 0, (listed[str(p)].member_offset or 0)
                  + listed[str(p)].size) for p in some]
        first, last = limits.aligned_range(min(a for a, _ in spans), max(b for _, b in spans),
                                           listed[str(some[0])].bundle_size or 0)
        assert quote["tiers"]["Standard"]["usd"] == pricing.retrieval_cost(
            [last - first + 1], pricing.VAULT, "Standard"), "one ranged retrieval"
        out = elsewhere / "out"
        assert main(["--config", str(cfg), "restore", *map(str, some), "--to", str(out),
                     "--wait"]) == 0
        for path in some:
            assert (out / str(path).lstrip("/")).read_bytes() == files[path]
