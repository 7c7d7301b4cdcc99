"""Hostile or broken input from the vault: one bad archive never stops the rest,
and bytes are never accepted without something to check them against."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest

from glacierd import catalog, description, status
from glacierd.emulator import Emulator
from glacierd.glacier import GlacierClient, UnverifiedOutputError
from tests.conftest import MIB, random_file_bytes
from tests.test_daemon_schedule import T0, prepared_daemon


def _glacierd_description(doc: dict[str, object]) -> str:
    raw = json.dumps(doc, separators=(",", ":")).encode()
    return description.PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


HOSTILE = {
    "huge-mtime": {"p": "/x/huge-mtime", "h": "h", "s": 1, "m": 10**30, "u": "t1"},
    "negative-mtime": {"p": "/x/negative-mtime", "h": "h", "s": 1, "m": -(10**30), "u": "t2"},
    "huge-size": {"p": "/x/huge-size", "h": "h", "s": 10**30, "m": 1, "u": "t3"},
    "huge-mode": {"p": "/x/huge-mode", "h": "h", "s": 1, "m": 1, "u": "t4", "o": 10**30},
    "escape": {"p": "/x/\x1b[2J\x1b]0;owned\x07", "h": "h", "s": 1, "m": 1, "u": "t5"},
}


def _as_a_terminal_shows(renderable: object) -> str:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=200, force_terminal=True, color_system=None)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_out_of_range_fields_are_dropped_not_raised() -> None:
    for doc in HOSTILE.values():
        info = description.decode(_glacierd_description(doc))
        assert info is not None and 0 <= info.size < 2**63 and -(2**63) <= info.mtime_ns < 2**63
    info = description.decode(_glacierd_description(HOSTILE["huge-mtime"]))
    assert info is not None and info.mtime_ns == 0 and info.problems == (f"m={10**30}",)
    assert description.decode(description.PREFIX + "e30") is None, "not even a path"


def test_one_bad_archive_never_stops_inventory_processing(tmp_path: Path) -> None:
    now = [T0]
    with Emulator(tmp_path / "emu") as emu, prepared_daemon(tmp_path, emu, now) as daemon:
        assert daemon.store is not None
        for name, doc in HOSTILE.items():
            daemon.target.glacier.upload_archive("local", name.encode(), _glacierd_description(doc))
        good = description.encode(description.ArchiveInfo("/x/good", "h", 4, 5, "t9"))
        daemon.target.glacier.upload_archive("local", b"good", good)
        daemon.maybe_request_inventory()
        daemon.poll_jobs()
        [job] = daemon.store.jobs(kind="inventory")
        adopted = {a.source_path for a in daemon.store.archives()}
        events = daemon.store.events()
        screen = _as_a_terminal_shows(status.render(status.collect(daemon.store)))
    assert job.status == "Downloaded"
    assert adopted == {"/x/good", *(str(d["p"]) for d in HOSTILE.values())}
    assert sum(1 for kind, _ in events if kind == "description-problem") == 4
    assert "\x1b" not in screen and "\x07" not in screen, "no escape sequence reaches a terminal"
    assert "/x/\\x1b[2J\\x1b]0;owned\\x07" in screen, "shown escaped, on one line"


def test_an_inventory_is_marked_done_only_once_applied(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    now = [T0]
    with Emulator(tmp_path / "emu") as emu, prepared_daemon(tmp_path, emu, now) as daemon:
        assert daemon.store is not None
        daemon.maybe_request_inventory()

        def broken(*_a: object, **_k: object) -> None:
            raise RuntimeError("disk trouble while applying")

        monkeypatch.setattr(catalog, "apply_inventory", broken)
        with pytest.raises(RuntimeError):
            daemon.poll_jobs()
        assert daemon.store.jobs(kind="inventory")[0].status == "InProgress", "tried again"
        monkeypatch.undo()
        daemon.poll_jobs()
        assert daemon.store.jobs(kind="inventory")[0].status == "Downloaded"


def test_job_output_without_metadata_is_verified_or_refused(client: GlacierClient,
                                                           tmp_path: Path) -> None:
    client.create_vault("v")
    data = random_file_bytes(3 * MIB + 5, seed=10)
    archive_id = client.upload_archive("v", data)
    job = client.initiate_archive_retrieval("v", archive_id)
    real_describe, real_get = client.describe_job, client.get_job_output

    def describe_without_metadata(vault: str, job_id: str) -> dict[str, object]:
        return {**real_describe(vault, job_id), "ArchiveSizeInBytes": 0, "SHA256TreeHash": None,
                "RetrievalByteRange": None}

    client.describe_job = describe_without_metadata  # type: ignore[method-assign,assignment]
    out = tmp_path / "out"
    out.mkdir()
    client.download_job_output("v", job, out / "checked.bin")
    assert (out / "checked.bin").read_bytes() == data, "checked against the answer's hash"

    def answer_without_hash(*args: object, **kw: object) -> object:
        out = real_get(*args, **kw)  # type: ignore[arg-type]
        out.tree_hash = None
        return out

    client.get_job_output = answer_without_hash  # type: ignore[method-assign,assignment]
    with pytest.raises(UnverifiedOutputError, match="could not be verified"):
        client.download_job_output("v", job, out / "unchecked.bin")
    assert sorted(p.name for p in out.iterdir()) == ["checked.bin"], "nothing half-written"
