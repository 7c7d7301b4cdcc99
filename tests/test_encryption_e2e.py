"""Encrypted backups end to end with real processes (issue 15): ``glacierd upload``
with ``[encryption]`` killed with SIGKILL at random moments on a vault and on a
bucket, then restarted — one archive per file, the bytes re-sent within the
same bound as without encryption, and the archive still an age file that
Debian's ``age`` decrypts to the file. Then the commands a user runs with an
identity: ``restore --wait``, ``verify``, ``catalog rebuild`` on a new state
folder; and no secret in any output or file but the identity file."""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from glacierd import age, description
from glacierd.emulator import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, fetch_stats
from glacierd.glacier import GlacierClient, treehash
from tests.conftest import MIB, count_rows, emulator_process, fast_policy, random_file
from tests.test_crash import kill_at_random, run, vault_inventory, write_config
from tests.test_daemon_e2e import wait_until
from tests.test_s3_e2e import BUCKET, s3_client, s3_config

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("age") is None,
                                 reason="Debian's age is not installed (.ci/run installs it)")]


def _keys(tmp_path: Path) -> tuple[Path, str]:
    identity, recipient = age.generate_identity()
    key = tmp_path / "restore-key.txt"
    key.write_text(identity + "\n")
    key.chmod(0o600)
    return key, recipient


def _encrypt_to(cfg: Path, *, recipient: str | None = None,
                identity: Path | None = None) -> None:
    lines = ["[encryption]"]
    if recipient:
        lines.append(f'recipients = ["{recipient}"]')
    if identity:
        lines.append(f'identity_file = "{identity}"')
    cfg.write_text(cfg.read_text() + "\n" + "\n".join(lines) + "\n")


def _age_decrypt(data: bytes, key: Path) -> bytes:
    return subprocess.run(["age", "-d", "-i", str(key)], input=data, capture_output=True,
                          check=True).stdout


def _no_secret_in(texts: list[str], key: Path) -> None:
    secret = key.read_text().strip()
    for text in texts:
        assert secret not in text and "AGE-SECRET-KEY" not in text


def test_sigkills_during_an_encrypted_vault_upload(tmp_path: Path) -> None:
    size, part, concurrency = 24 * MIB + 11, MIB, 4
    data = random_file(tmp_path / "big.bin", size, seed=24)
    key, recipient = _keys(tmp_path)
    db = tmp_path / "state" / "glacierd.db"
    with emulator_process(tmp_path / "emu") as url:
        cfg = write_config(tmp_path, url, concurrency=concurrency, bandwidth="6M")
        _encrypt_to(cfg, recipient=recipient)  # the uploading daemon holds no identity
        assert run(cfg, "db", "upgrade").returncode == 0
        kills = kill_at_random(cfg, tmp_path / "big.bin", db, 5, random.Random(15), 0.4)
        assert kills >= 5, f"the upload finished after only {kills} kills"
        assert count_rows(db, "upload_ciphers") == 1, "the file key is kept until the end"
        final = run(cfg, "upload", str(tmp_path / "big.bin"))
        assert final.returncode == 0, final.stderr
        stats = fetch_stats(url)
        listing = vault_inventory(url)
        client = GlacierClient("us-east-1", endpoint_url=url,
                               credentials=(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY),
                               retry_policy=fast_policy())
        [entry] = listing
        archive_id = str(entry["ArchiveId"])
        job = client.initiate_archive_retrieval("crash", archive_id)
        wait_until(lambda: client.describe_job("crash", job)["StatusCode"] == "Succeeded",
                   30, "the retrieval job")
        with client.get_job_output("crash", job) as out:
            stored = out.read()
    stored_size = len(stored)
    print(f"kills={kills} part_bytes_received={stats['part_bytes_received']} "
          f"bound={stored_size + kills * concurrency * part}")
    assert stats["archives_created"] == 1
    assert stats["part_bytes_received"] <= stored_size + kills * concurrency * part, stats
    assert entry["SHA256TreeHash"] == treehash.tree_hash(stored)
    assert str(entry["ArchiveDescription"]).startswith(description.SEALED_PREFIX)
    assert "big.bin" not in str(entry["ArchiveDescription"])
    assert _age_decrypt(stored, key) == data
    assert count_rows(db, "upload_ciphers") == 0, "the file key left the store"
    assert db.stat().st_mode & 0o777 == 0o600


def test_an_encrypted_bucket_end_to_end(tmp_path: Path) -> None:
    """Kills during the upload of a bucket's file; then a restore host (with the
    identity) restores, verifies and rebuilds its catalog; age reads the objects."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    contents = {"report 2026.pdf": random_file(data_dir / "report 2026.pdf", 40 * MIB + 7,
                                               seed=40),
                "note.txt": random_file(data_dir / "note.txt", 900, seed=9)}
    key, recipient = _keys(tmp_path)
    db = tmp_path / "state" / "glacierd.db"
    with emulator_process(tmp_path / "emu", "--job-delay", "0.3") as url:
        cfg = s3_config(tmp_path, url, concurrency=2, bandwidth="16M")
        _encrypt_to(cfg, recipient=recipient)
        assert run(cfg, "db", "upgrade").returncode == 0
        kills = kill_at_random(cfg, data_dir / "report 2026.pdf", db, 3, random.Random(8), 0.5)
        assert kills >= 3
        up = run(cfg, "upload", str(data_dir), "--json")
        assert up.returncode == 0, up.stderr
        stats = fetch_stats(url)
        frozen = s3_client(url)
        keys = [o["Key"] for o in frozen.list_objects(BUCKET, "backups/")]
        assert len(keys) == 2 and all(k.endswith(".age") for k in keys), keys
        assert all(re.fullmatch(r"backups/[^/]+/[0-9a-f]{32}\.age", k) for k in keys), keys
        big = max(keys, key=lambda k: frozen.head_object(BUCKET, k).size)
        stored_size = frozen.head_object(BUCKET, big).size
        assert stats["part_bytes_received"] <= stored_size + 900 + kills * 2 * 8 * MIB + 1000
        assert count_rows(db, "upload_ciphers") == 0

        # The restore host: the same bucket, the identity, a new state folder.
        restore_cfg = s3_config(tmp_path, url, state="state2")
        _encrypt_to(restore_cfg, identity=key)
        assert run(restore_cfg, "db", "upgrade").returncode == 0
        blind = s3_config(tmp_path, url, state="state3")
        _encrypt_to(blind, recipient=recipient)
        assert run(blind, "db", "upgrade").returncode == 0
        said = run(blind, "catalog", "rebuild")
        assert said.returncode == 0 and "2 encrypted archives were not added" in said.stderr
        assert all(k in said.stderr for k in keys), "it lists them"
        rebuilt = run(restore_cfg, "catalog", "rebuild")
        assert rebuilt.returncode == 0, rebuilt.stderr
        listing = json.loads(run(restore_cfg, "archives", "--json").stdout)
        assert {a["path"] for a in listing} == {str(data_dir / n) for n in contents}
        for name in contents:
            (data_dir / name).unlink()
        back = run(restore_cfg, "restore", str(data_dir), "--wait")
        assert back.returncode == 0, back.stderr
        for name, data in contents.items():
            restored = tmp_path / "restored" / str(data_dir / name).lstrip("/")
            assert restored.read_bytes() == data, name
            (data_dir / name).write_bytes(data)
        verify = run(cfg, "verify", str(data_dir))
        assert verify.returncode == 0 and "2 unchanged" in verify.stdout, verify.stdout
        (data_dir / "note.txt").write_bytes(b"y" * 900)  # same size, other bytes
        changed = run(cfg, "verify", str(data_dir))
        assert changed.returncode == 1 and "changed" in changed.stdout
        # Any copy of the object decrypts with age alone (a restored copy is readable).
        for k in keys:
            frozen.restore_object(BUCKET, k, 1, "Standard")
        for k in keys:
            wait_until(lambda k=k: frozen.head_object(BUCKET, k).restored, 30,  # type: ignore[misc]
                       f"the restore of {k}")
        plain = set()
        for k in keys:
            with frozen.get_object(BUCKET, k) as response:
                plain.add(hashlib.sha256(_age_decrypt(response.content, key)).hexdigest())
        assert plain == {hashlib.sha256(d).hexdigest() for d in contents.values()}
        status = run(cfg, "status", "--json")
        logs = [up.stdout, up.stderr, said.stdout, said.stderr, rebuilt.stdout, rebuilt.stderr,
                back.stdout, back.stderr, status.stdout]
        _no_secret_in([*logs, db.read_bytes().decode("latin-1")], key)
