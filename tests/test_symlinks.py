"""``follow_symlinks = false``: no file outside a watched folder is ever read, however
the folder's content is swapped after a file was queued."""

from __future__ import annotations

import os
from pathlib import Path

from glacierd.emulator import Emulator
from glacierd.safeopen import open_for_upload
from tests.test_daemon_schedule import T0, prepared_daemon

SECRET = b"a private key that must never leave the machine"


def _queue(daemon: object, path: Path) -> None:
    st = path.stat()
    daemon.store.file_seen(str(path), st.st_size, st.st_mtime_ns, st.st_ino)  # type: ignore[attr-defined]


def _secret_folder(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("f.txt", "g.txt"):
        (outside / name).write_bytes(SECRET)
        (outside / name).chmod(0o600)
    return outside


def _vault_bytes(emu: Emulator) -> list[int]:
    return [int(a["Size"]) for a in emu.state._archives("local")]  # type: ignore[arg-type]


def test_a_queued_files_folder_replaced_by_a_link_is_not_followed(tmp_path: Path) -> None:
    now = [T0]
    outside = _secret_folder(tmp_path)
    with Emulator(tmp_path / "emu") as emu, prepared_daemon(tmp_path, emu, now) as daemon:
        sub = tmp_path / "inbox" / "sub"
        sub.mkdir()
        (sub / "f.txt").write_text("an ordinary file")
        _queue(daemon, sub / "f.txt")
        (sub / "f.txt").unlink()
        sub.rmdir()
        sub.symlink_to(outside)  # no race needed: the folder itself is now a link
        daemon.drain()
        record = daemon.store.file(str(sub / "f.txt"))  # type: ignore[union-attr]
        assert _vault_bytes(emu) == [], "nothing from outside reached the vault"
        assert emu.stats()["part_bytes_received"] == 0
    assert record is not None and record.state == "gone" and "symbolic link" in (record.error or "")


def test_a_queued_file_swapped_for_a_link_is_not_followed(tmp_path: Path) -> None:
    now = [T0]
    outside = _secret_folder(tmp_path)
    with Emulator(tmp_path / "emu") as emu, prepared_daemon(tmp_path, emu, now) as daemon:
        victim = tmp_path / "inbox" / "g.txt"
        victim.write_text("an ordinary file")
        _queue(daemon, victim)
        victim.unlink()
        victim.symlink_to(outside / "g.txt")
        daemon.drain()
        assert _vault_bytes(emu) == []
        assert daemon.store.file(str(victim)).state == "gone"  # type: ignore[union-attr]


def test_the_daemon_reads_nothing_outside_its_watched_folders(tmp_path: Path) -> None:
    now = [T0]
    outside = _secret_folder(tmp_path)
    with Emulator(tmp_path / "emu") as emu, prepared_daemon(tmp_path, emu, now) as daemon:
        _queue(daemon, outside / "f.txt")  # queued somehow (an old state, a foreground upload)
        inside = tmp_path / "inbox" / "ok.txt"
        inside.write_text("mine to back up")
        _queue(daemon, inside)
        daemon.drain()
        assert _vault_bytes(emu) == [len("mine to back up")]
        assert daemon.store.file(str(outside / "f.txt")).state == "pending"  # type: ignore[union-attr]


def test_the_opener_refuses_links_anywhere_below_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "file").write_text("fine")
    fd, st = open_for_upload(str(root / "a" / "b" / "file"), root, False)
    assert os.read(fd, 10) == b"fine" and st.st_size == 4
    os.close(fd)
    outside = _secret_folder(tmp_path)
    (root / "a" / "link").symlink_to(outside)
    import pytest

    from glacierd.errors import NotAFileError

    with pytest.raises(NotAFileError, match="symbolic link"):
        open_for_upload(str(root / "a" / "link" / "f.txt"), root, False)
    fd, _st = open_for_upload(str(root / "a" / "link" / "f.txt"), root, True)  # configured
    assert os.read(fd, 100) == SECRET
    os.close(fd)
