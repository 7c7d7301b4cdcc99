"""The restorer in-process, with the clock passed in."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from pathlib import Path

import pytest

from glacierd.backends.vault import VaultBackend
from glacierd.emulator import Emulator
from glacierd.glacier import InsufficientCapacityException
from glacierd.restorer import Restorer, RestoreSettings, pick_versions
from glacierd.store.repository import ArchiveRecord
from glacierd.uploader import Uploader, UploadSettings
from tests.conftest import MIB, client_for, random_file
from tests.test_uploader import open_store

T0 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def _archived(tmp_path: Path, emu: Emulator) -> tuple[Restorer, bytes, list[dt.datetime]]:
    client = client_for(emu)
    client.create_vault("v")
    store = open_store(tmp_path)
    (tmp_path / "src").mkdir()
    data = random_file(tmp_path / "src" / "f.bin", 2 * MIB + 5, seed=2)
    Uploader(store, VaultBackend(client, "v"), UploadSettings(part_size=MIB)).upload_path(
        tmp_path / "src" / "f.bin")
    now = [T0]
    restorer = Restorer(store, VaultBackend(client, "v"),
                        RestoreSettings(restore_dir=tmp_path / "out", segment_size=MIB),
                        now=lambda: now[0])
    return restorer, data, now


def test_an_expired_job_is_requested_again(tmp_path: Path) -> None:
    with Emulator(tmp_path / "emu", job_delay=3600) as emu:
        restorer, _data, now = _archived(tmp_path, emu)
        [record] = restorer.request(restorer.select([str(tmp_path / "src")]))
        first_job = record.job_id
        restorer.poll()
        assert restorer.store.restore(record.id).job_id == first_job, "still running: kept"
        now[0] = T0 + dt.timedelta(hours=25)
        restorer.poll()
        again = restorer.store.restore(record.id)
        assert again.job_id != first_job and again.status == "waiting"
        assert emu.stats()["requests"]["InitiateJob"] == 2


def test_expedited_without_capacity_suggests_standard(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    with Emulator(tmp_path / "emu") as emu:
        restorer, _data, _now = _archived(tmp_path, emu)

        def no_capacity(*args: object, **kw: object) -> str:
            raise InsufficientCapacityException("Not enough capacity", status=400)

        monkeypatch.setattr(restorer.backend.client, "initiate_archive_retrieval", no_capacity)
        [record] = restorer.request(restorer.select([str(tmp_path / "src")]), tier="Expedited")
        assert record.status == "failed"
        assert "--tier Standard" in (record.error or "")
        monkeypatch.undo()
        # Asking again resumes the same request rather than adding another.
        [again] = restorer.request(restorer.select([str(tmp_path / "src")]))
        assert again.id == record.id and again.status == "waiting"


def test_versions_are_picked_by_date_or_number() -> None:
    def arch(i: int, path: str, day: int) -> ArchiveRecord:
        return ArchiveRecord(i, f"a{i}", "v", 1, "h", path, 1, T0 + dt.timedelta(days=day))

    archives = [arch(1, "/f", 1), arch(2, "/f", 5), arch(3, "/f", 9), arch(4, "/g", 2)]
    assert [a.id for a in pick_versions(archives)] == [3, 4]
    assert [a.id for a in pick_versions(archives, version=1)] == [1, 4]
    assert [a.id for a in pick_versions(archives, before=T0 + dt.timedelta(days=6))] == [2, 4]
    assert [a.id for a in pick_versions(archives, version=3)] == [3]


def test_two_processes_never_download_or_initiate_the_same_restore(tmp_path: Path) -> None:
    """The daemon and `restore --wait` share a store: one claims the job, one downloads."""
    from glacierd import locks

    with Emulator(tmp_path / "emu") as emu:
        restorer, data, _now = _archived(tmp_path, emu)
        restorer.settings = dataclasses.replace(restorer.settings, lock_dir=tmp_path / "locks")
        [record] = restorer.request(restorer.select([str(tmp_path / "src")]))
        assert not restorer.store.claim_restore(record, T0), "already started: no second job"
        assert emu.stats()["requests"]["InitiateJob"] == 1
        partial = Path(record.partial_path)
        # "the other process" is downloading: it holds the restore's lock
        with locks.exclusive(tmp_path / "locks", f"restore {record.id}") as held:
            assert held
            left = restorer.download(restorer.store.restore(record.id))
            assert left.status == "waiting" and left.verified == ()
            assert emu.stats()["requests"].get("GetJobOutput", 0) == 0
        done = restorer.download(restorer.store.restore(record.id))
        assert done.status == "done" and Path(done.dest_path).read_bytes() == data
        again = restorer.download(restorer.store.restore(record.id))  # late second process
        assert again.status == "done" and not partial.exists()


def test_restored_files_get_their_recorded_mode_back(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The description records a file's permission bits (never set-id bits); a
    restore gives them back. Archives recorded before modes were (no "o") are 0600."""
    import stat

    from glacierd import description

    with Emulator(tmp_path / "emu") as emu:
        client = client_for(emu)
        client.create_vault("v")
        store = open_store(tmp_path)
        src = tmp_path / "src"
        src.mkdir()
        modes = {"script.sh": 0o755, "shared.txt": 0o640, "empty": 0o751, "setuid": 0o4755}
        contents = {}
        for name, mode in modes.items():
            if name == "empty":
                (src / name).write_bytes(b"")
                contents[name] = b""
            else:
                contents[name] = random_file(src / name, MIB + 3, seed=len(name))
            (src / name).chmod(mode)
        uploader = Uploader(store, VaultBackend(client, "v"), UploadSettings(part_size=MIB))
        for name in modes:
            assert uploader.upload_path(src / name).status == "archived"
        contents["old.bin"] = random_file(src / "old.bin", 1000, seed=9)
        (src / "old.bin").chmod(0o644)
        encode = description.encode

        def encode_as_before_modes(info: description.ArchiveInfo) -> str:
            return encode(dataclasses.replace(info, mode=None))

        monkeypatch.setattr(description, "encode", encode_as_before_modes)
        assert uploader.upload_path(src / "old.bin").status == "archived"
        monkeypatch.undo()

        restorer = Restorer(store, VaultBackend(client, "v"), RestoreSettings(
            restore_dir=tmp_path / "out", segment_size=MIB))
        records = restorer.request(restorer.select([str(src)]))
        deadline = time.monotonic() + 30
        while any(store.restore(r.id).status not in ("done", "failed") for r in records):
            assert time.monotonic() < deadline, "restores did not finish"
            restorer.poll()
        expected = {**{n: m & 0o777 for n, m in modes.items()}, "old.bin": 0o600}
        for record in records:
            dest = Path(store.restore(record.id).dest_path)
            name = dest.name
            assert dest.read_bytes() == contents[name], name
            assert stat.S_IMODE(dest.stat().st_mode) == expected[name], name
        assert sorted(Path(r.dest_path).name for r in records) == sorted(expected)


def test_a_restore_and_the_daemon_never_download_one_archive_together(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second process arrives between the first one's rename and its DONE record:
    it leaves the restore alone (no second download, no second 'restored')."""
    import glacierd.restorer as restorer_mod

    with Emulator(tmp_path / "emu") as emu:
        restorer, data, _now = _archived(tmp_path, emu)
        settings = dataclasses.replace(restorer.settings, lock_dir=tmp_path / "locks")
        first = Restorer(restorer.store, restorer.backend, settings, now=restorer.now)
        second = Restorer(restorer.store, VaultBackend(client_for(emu), "v"), settings,
                          now=restorer.now)
        [record] = first.request(first.select([str(tmp_path / "src")]), overwrite=True)
        real_fsync_dir = restorer_mod.fsync_dir
        served: list[int] = []

        def in_the_window(folder: Path) -> None:
            before = emu.stats()["job_output_bytes_sent"]
            second.poll()  # the daemon's poll, while the first holds the restore
            served.append(emu.stats()["job_output_bytes_sent"] - before)
            real_fsync_dir(folder)

        monkeypatch.setattr(restorer_mod, "fsync_dir", in_the_window)
        first.poll()
        done = first.store.restore(record.id)
        events = [kind for kind, _ in first.store.events()]
    assert done.status == "done" and Path(done.dest_path).read_bytes() == data
    assert served == [0], "the second process downloaded nothing"
    assert events.count("restored") == 1 and "restore-failed" not in events


def test_a_restore_pointing_at_a_job_the_store_never_recorded_still_finishes(
        tmp_path: Path) -> None:
    """An older glacierd could be killed between recording a restore's job id and
    inserting the job row; that restore still completes."""
    from sqlalchemy import delete

    from glacierd.store.tables import jobs

    with Emulator(tmp_path / "emu") as emu:
        restorer, data, _now = _archived(tmp_path, emu)
        [record] = restorer.request(restorer.select([str(tmp_path / "src")]))
        assert [j.job_id for j in restorer.store.jobs()] == [record.job_id], "one transaction"
        with restorer.store._core_tx() as conn:
            conn.execute(delete(jobs))
        restorer.poll()
        done = restorer.store.restore(record.id)
    assert done.status == "done" and Path(done.dest_path).read_bytes() == data
