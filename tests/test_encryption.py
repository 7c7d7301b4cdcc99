"""Encrypted uploads and restores (issue 15) on both backends, in-process against
the emulator: what lands in the vault or bucket is an age file that Debian's
``age`` decrypts to the file, with no path or name readable; the catalog keeps
the plaintext's size and SHA-256; restores decrypt and check; tampered
archives never give a file; the file keys leave the store when an upload ends."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from glacierd import age, description
from glacierd.backends import Backend
from glacierd.backends.s3 import S3Backend
from glacierd.backends.vault import VaultBackend
from glacierd.emulator import Emulator
from glacierd.encryption import EncryptingReader, Encryption, new_secrets
from glacierd.errors import RestoreError
from glacierd.glacier import limits, treehash
from glacierd.restorer import Restorer, RestoreSettings
from glacierd.s3.client import S3Client
from glacierd.store.repository import Adoption, Store
from glacierd.store.states import RestoreStatus
from glacierd.uploader import Uploader, UploadSettings
from tests.conftest import MIB, client_for, fast_policy, random_file, store_at_head

AGE = shutil.which("age")
needs_age = pytest.mark.skipif(AGE is None, reason="Debian's age is not installed "
                                                   "(.ci/run installs it)")


def age_decrypt(data: bytes, identity_file: Path) -> bytes:
    """Debian's age: the independent implementation."""
    done = subprocess.run([AGE or "age", "-d", "-i", str(identity_file)], input=data,
                          capture_output=True, check=True)
    return done.stdout


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, str, bytes]:
    identity, recipient = age.generate_identity()
    path = tmp_path / "identity.txt"
    path.write_text(f"# test key\n{identity}\n")
    return path, recipient, age.parse_identity(identity)


# --- the ciphertext, read by range --------------------------------------------------------

@needs_age
@pytest.mark.parametrize("size", [1, age.CHUNK, age.CHUNK + 1, 3 * MIB + 5])
def test_any_ranges_make_one_age_file_that_age_decrypts(tmp_path: Path, size: int,
                                                        keys: tuple[Path, str, bytes]) -> None:
    identity_file, recipient, _ = keys
    data = random_file(tmp_path / "f", size, seed=size % 13)
    secrets = new_secrets([age.parse_recipient(recipient)])
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        whole = EncryptingReader(fd, size, secrets)
        out = bytearray(whole.stored_size)
        assert whole.read_into(memoryview(out), 0) == len(out)
        assert whole.plaintext_sha256() == hashlib.sha256(data).hexdigest()
        # A resumed upload: a new reader, parts read out of order, odd boundaries.
        again = EncryptingReader(fd, size, secrets)
        pieces = list(limits.part_ranges(len(out), 100_003))
        copy = bytearray(len(out))
        for piece in reversed(pieces):
            view = memoryview(copy)[piece.offset:piece.offset + piece.length]
            assert again.read_into(view, piece.offset) == piece.length
        assert copy == out, "a part is the same bytes whenever it is made"
        assert again.plaintext_sha256() == hashlib.sha256(data).hexdigest()
    finally:
        os.close(fd)
    assert len(out) == age.ciphertext_size(size, len(secrets.header))
    assert age_decrypt(bytes(out), identity_file) == data


def test_a_file_that_shrinks_reads_short_and_is_never_hashed_whole(tmp_path: Path) -> None:
    from glacierd.glacier.parts import FileShrankError

    random_file(tmp_path / "f", 5 * age.CHUNK, seed=5)
    secrets = new_secrets([age.parse_recipient(age.generate_identity()[1])])
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        reader = EncryptingReader(fd, 5 * age.CHUNK, secrets)
        os.truncate(tmp_path / "f", 2 * age.CHUNK)
        view = memoryview(bytearray(reader.stored_size))
        assert reader.read_into(view, 0) < reader.stored_size  # the engine: FileShrankError
        with pytest.raises(FileShrankError):
            reader.plaintext_sha256()
    finally:
        os.close(fd)


def test_the_file_key_is_in_no_repr() -> None:
    secrets = new_secrets([age.parse_recipient(age.generate_identity()[1])])
    assert secrets.file_key.hex() not in repr(secrets)
    keys = Encryption((b"r" * 32,), (b"s" * 32,))
    assert "sss" not in repr(keys)


# --- both backends -------------------------------------------------------------------------

@dataclass
class Service:
    emu: Emulator
    backend: Backend
    kind: str

    def stored(self, archive_id: str) -> bytes:
        """The archive's bytes as the service holds them."""
        if self.kind == "vault":
            return self.emu.state.archive_bytes("v", archive_id)
        meta = self.emu.s3._object_meta("engine", archive_id)
        assert meta is not None
        return self.emu.s3._blob("engine", meta).read()

    def put_archive(self, data: bytes, text: str) -> str:
        """An archive written by someone with write access (not glacierd)."""
        if self.kind == "vault":
            assert isinstance(self.backend, VaultBackend)
            return self.backend.client.upload_archive("v", data, text)
        assert isinstance(self.backend, S3Backend)
        key = f"p/intruder/{hashlib.sha256(data).hexdigest()[:32]}.age"
        self.backend.client.put_object("engine", key, data,
                                       sha256=hashlib.sha256(data).hexdigest(),
                                       storage_class="STANDARD", metadata={"glacierd": text})
        return key


@contextmanager
def service(tmp_path: Path, kind: str) -> Iterator[Service]:
    with Emulator(tmp_path / "emu") as emu:
        backend: Backend
        if kind == "vault":
            client = client_for(emu)
            client.create_vault("v")
            backend = VaultBackend(client, "v")
        else:
            s3 = S3Client(emu.region, endpoint_url=emu.endpoint_url, credentials=emu.credentials,
                          retry_policy=fast_policy(attempts=3))
            s3.create_bucket("engine")
            backend = S3Backend(s3, "engine", prefix="p/", storage_class="DEEP_ARCHIVE")
        yield Service(emu, backend, kind)


def _upload(tmp_path: Path, svc: Service, store: Store, recipient: str,
            files: dict[str, int]) -> dict[str, tuple[bytes, str]]:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    keys = Encryption((age.parse_recipient(recipient),))  # no identity: an uploading daemon
    uploader = Uploader(store, svc.backend, UploadSettings(
        part_size=8 * MIB if svc.kind == "s3" else MIB, concurrency=3, encryption=keys))
    done = {}
    try:
        for name, size in files.items():
            data = random_file(src / name, size, seed=size % 101)
            os.chmod(src / name, 0o640)
            outcome = uploader.upload_path(src / name)
            assert outcome.status == "archived" and outcome.archive_id, outcome
            done[name] = (data, outcome.archive_id)
    finally:
        uploader.close()
    return done


def _restorer(tmp_path: Path, store: Store, svc: Service, identity: bytes | None) -> Restorer:
    return Restorer(store, svc.backend, RestoreSettings(
        restore_dir=tmp_path / "out", segment_size=MIB,
        identities=(identity,) if identity else ()))


@needs_age
@pytest.mark.parametrize("kind", ["vault", "s3"])
def test_encrypted_uploads_are_age_files_without_names_and_restore(
        tmp_path: Path, kind: str, keys: tuple[Path, str, bytes]) -> None:
    identity_file, recipient, identity = keys
    files = {"tax 2026.pdf": 70_000, "tiny": 1, "big.bin": 20 * MIB + 1}
    with service(tmp_path, kind) as svc:
        store = store_at_head(tmp_path)
        done = _upload(tmp_path, svc, store, recipient, files)
        for name, (data, archive_id) in done.items():
            stored = svc.stored(archive_id)
            assert age_decrypt(stored, identity_file) == data, name
            archive = store.archive_by_id(archive_id)
            assert archive is not None
            # The service checks the ciphertext; the catalog also knows the plaintext.
            assert (archive.size, archive.tree_hash) == (len(stored),
                                                         treehash.tree_hash(stored))
            assert (archive.plain_size, archive.plain_sha256) == (
                len(data), hashlib.sha256(data).hexdigest())
            if kind == "s3":  # a key names no file (a vault's archive id is the service's)
                assert re.fullmatch(r"p/[^/]+/[0-9a-f]{32}\.age", archive_id), archive_id
        db = tmp_path / "state" / "glacierd.db"
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT count(*) FROM upload_ciphers").fetchone() == (0,), \
                "file keys leave the store when their upload ends"
            texts = [t for (t,) in conn.execute("SELECT description FROM archives")]
        assert all(t.startswith(description.SEALED_PREFIX) and "tax 2026" not in t for t in texts)
        if kind == "s3":
            heads = [svc.backend.client.head_object("engine", a)  # type: ignore[attr-defined]
                     for _d, a in done.values()]
            assert all("tax 2026" not in str(h.metadata) for h in heads)

        # Without the identity: refused, naming the archive, nothing requested.
        with pytest.raises(RestoreError, match=r"encrypted.*identity_file"):
            locked = _restorer(tmp_path, store, svc, None)
            locked.request(locked.select([str(tmp_path / "src")]))
        restorer = _restorer(tmp_path, store, svc, identity)
        records = restorer.request(restorer.select([str(tmp_path / "src")]))
        restorer.poll()
        for record in records:
            final = store.restore(record.id)
            assert final.status == RestoreStatus.DONE, final.error
        out = tmp_path / "out" / str(tmp_path / "src").lstrip("/")
        for name, (data, _archive_id) in done.items():
            assert (out / name).read_bytes() == data
            assert (out / name).stat().st_mode & 0o777 == 0o640, "the sealed mode came back"
        assert not [p for p in out.iterdir() if "glacierd-partial" in p.name]


@pytest.mark.parametrize("kind", ["vault", "s3"])
@pytest.mark.parametrize("damage", ["flipped byte", "truncated", "swapped header",
                                    "altered header"])
def test_a_tampered_archive_never_gives_a_file(tmp_path: Path, kind: str, damage: str,
                                               keys: tuple[Path, str, bytes]) -> None:
    """Someone with write access to the vault or bucket puts a damaged copy of an
    archive, with its description; a catalog rebuild adopts it (the service's
    hashes match the damaged bytes). Its restore must fail, leaving no file."""
    _identity_file, recipient, identity = keys
    with service(tmp_path, kind) as svc:
        store = store_at_head(tmp_path)
        [(data, archive_id)] = _upload(tmp_path, svc, store, recipient,
                                       {"f.bin": 3 * age.CHUNK + 9}).values()
        good = svc.stored(archive_id)
        header_end = good.index(b"\n---") + 1
        header_end = good.index(b"\n", header_end) + 1
        if damage == "flipped byte":
            bad = bytearray(good)
            bad[-100] ^= 0x01
            tampered = bytes(bad)
        elif damage == "truncated":
            tampered = good[:-(age.CHUNK // 2)]
        elif damage == "swapped header":  # another file's valid header, same recipient
            other = age.encrypt(b"x" * 10, [recipient])
            tampered = other[:other.index(b"\n", other.index(b"\n---") + 1) + 1] + \
                good[header_end:]
        else:
            tampered = good.replace(b"X25519 ", b"X25519  ", 1)
        with sqlite3.connect(tmp_path / "state" / "glacierd.db") as conn:
            (text,) = conn.execute("SELECT description FROM archives WHERE archive_id = ?",
                                   (archive_id,)).fetchone()
        bad_id = svc.put_archive(tampered, text)
        store.adopt_archives([Adoption(
            svc.backend.name, bad_id, len(tampered), treehash.tree_hash(tampered), text,
            "/elsewhere/f.bin", 0,
            store.archive_by_id(archive_id).created_at,  # type: ignore[union-attr]
            plain_size=len(data))])
        restorer = _restorer(tmp_path, store, svc, identity)
        [record] = restorer.request(restorer.select(archive_ids=[bad_id]))
        restorer.poll()
        final = store.restore(record.id)
        assert final.status == RestoreStatus.FAILED
        assert final.error and "does not decrypt" in final.error and bad_id in final.error
        out = tmp_path / "out"
        left = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
        assert left == [], "no file, not even a partial one"


@pytest.mark.parametrize("kind", ["vault", "s3"])
def test_the_catalog_is_rebuilt_with_the_identity_and_lists_what_it_cannot_open(
        tmp_path: Path, kind: str, keys: tuple[Path, str, bytes]) -> None:
    from glacierd import catalog, inventory
    from glacierd.store.states import utcnow

    _identity_file, recipient, identity = keys
    with service(tmp_path, kind) as svc:
        first = store_at_head(tmp_path / "a")
        done = _upload(tmp_path, svc, first, recipient, {"one": 5000, "two": 9 * MIB})

        def rebuild(where: Path, unseal: inventory.Unseal | None) -> tuple[Store, int]:
            store = store_at_head(where)
            if kind == "s3":
                result = catalog.list_bucket(svc.backend.client,  # type: ignore[attr-defined]
                                             "engine", "p/", store, where, utcnow(), unseal)
            else:
                client = svc.backend.client  # type: ignore[attr-defined]
                job = client.initiate_inventory_job("v")
                store.add_job(job, "v", "inventory")
                [record] = store.jobs(kind="inventory")
                result = catalog.fetch_inventory(client, store, record, where, utcnow(), unseal)
            return store, len(result.sealed)

        blind, sealed = rebuild(tmp_path / "b", None)
        assert sealed == 2 and blind.archives() == []
        store, sealed = rebuild(tmp_path / "c", Encryption((), (identity,)).unseal)
        assert sealed == 0
        found = {a.source_path: a for a in store.archives()}
        for name, (data, archive_id) in done.items():
            entry = found[str(tmp_path / "src" / name)]
            assert (entry.archive_id, entry.plain_size) == (archive_id, len(data))
        restorer = _restorer(tmp_path, store, svc, identity)
        [record] = restorer.request(restorer.select([str(tmp_path / "src" / "two")]))
        restorer.poll()
        assert store.restore(record.id).status == RestoreStatus.DONE
        assert Path(record.dest_path).read_bytes() == done["two"][0]
        learnt = store.archive_by_id(done["two"][1])
        assert learnt is not None and learnt.plain_sha256 == hashlib.sha256(
            done["two"][0]).hexdigest(), "an adopted archive's plaintext hash, once known"
        # A rerun after a kill between the rename and the DONE record finds it in place.
        again = restorer.request(restorer.select([str(tmp_path / "src" / "two")]))
        assert store.restore(again[0].id).status == RestoreStatus.DONE


@pytest.mark.parametrize("kind", ["vault", "s3"])
def test_a_path_too_long_to_seal_comes_back_whole_through_its_manifests(
        tmp_path: Path, kind: str, keys: tuple[Path, str, bytes]) -> None:
    """A 1,700-byte path does not fit a sealed description: its pieces go into
    manifest archives, which a catalog rebuild (with the identity) joins, from
    the inventory alone; they are deleted with the archive."""
    from glacierd import catalog
    from glacierd.store.states import utcnow

    _identity_file, recipient, identity = keys
    deep = tmp_path / "src"
    for i in range(8):
        deep = deep / (f"{i}-" + "ä" * 60 + "-verzeichnis-mit-langem-namen-" + "x" * 60)
    deep.mkdir(parents=True)
    with service(tmp_path, kind) as svc:
        store = store_at_head(tmp_path / "a")
        keys_only = Encryption((age.parse_recipient(recipient),))
        uploader = Uploader(store, svc.backend, UploadSettings(
            part_size=8 * MIB if kind == "s3" else MIB, encryption=keys_only))
        data = random_file(deep / "file.bin", 5000, seed=1)
        outcome = uploader.upload_path(deep / "file.bin")
        uploader.close()
        assert outcome.status == "archived" and outcome.archive_id
        assert len(str(deep / "file.bin").encode()) > 1700
        manifests = store.manifests_of(outcome.archive_id)
        assert len(manifests) >= 2

        def rebuild(where: Path, with_identity: bool) -> Store:
            fresh = store_at_head(where)
            unseal = Encryption((), (identity,)).unseal if with_identity else None
            if kind == "s3":
                catalog.list_bucket(svc.backend.client,  # type: ignore[attr-defined]
                                    "engine", "p/", fresh, where, utcnow(), unseal)
            else:
                client = svc.backend.client  # type: ignore[attr-defined]
                fresh.add_job(client.initiate_inventory_job("v"), "v", "inventory")
                [job] = fresh.jobs(kind="inventory")
                catalog.fetch_inventory(client, fresh, job, where, utcnow(), unseal)
            return fresh

        blind = rebuild(tmp_path / "b", False)
        assert blind.archives() == [], "without the identity nothing is adopted"
        rebuilt = rebuild(tmp_path / "c", True)
        [entry] = rebuilt.archives()
        assert entry.source_path == str(deep / "file.bin"), "the whole path, from the manifests"
        assert sorted(rebuilt.manifests_of(outcome.archive_id)) == sorted(manifests)
        restorer = _restorer(tmp_path, rebuilt, svc, identity)
        [record] = restorer.request(restorer.select(archive_ids=[outcome.archive_id]))
        restorer.poll()
        assert Path(rebuilt.restore(record.id).dest_path).read_bytes() == data
        # Deleting the archive deletes its manifests (the CLI's delete does this).
        for archive_id in [outcome.archive_id, *rebuilt.manifests_of(outcome.archive_id)]:
            svc.backend.delete(archive_id)
        assert rebuild(tmp_path / "d", True).archives() == []


def test_a_restore_decrypts_while_it_downloads_and_resumes(
        tmp_path: Path, keys: tuple[Path, str, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    """Each verified segment is decrypted as soon as those before it are: when the
    download stops halfway, the plaintext of the verified part is already there;
    the same restore, asked again, finishes the rest."""
    from glacierd.glacier import TransportError

    _identity_file, recipient, identity = keys
    with service(tmp_path, "vault") as svc:
        store = store_at_head(tmp_path)
        [(data, archive_id)] = _upload(tmp_path, svc, store, recipient,
                                       {"f.bin": 6 * MIB + 5}).values()
        real_fetch = svc.backend.fetch
        cut = [3 * MIB]

        def flaky(ticket: str, object_id: str, first: int, last: int, *args: object,
                  **kw: object) -> str:
            if first >= cut[0]:
                raise TransportError("the line went down")
            return real_fetch(ticket, object_id, first, last, *args, **kw)  # type: ignore[arg-type]

        monkeypatch.setattr(svc.backend, "fetch", flaky)
        restorer = Restorer(store, svc.backend, RestoreSettings(
            restore_dir=tmp_path / "out", segment_size=MIB, concurrency=1,
            identities=(identity,)))
        [record] = restorer.request(restorer.select(archive_ids=[archive_id]))
        restorer.poll()
        stopped = store.restore(record.id)
        assert stopped.status == RestoreStatus.FAILED and len(stopped.verified) == 3
        plain = Path(stopped.plain_partial_path).read_bytes()
        # Three verified MiB of age file: all but the chunks the third one cuts.
        assert len(plain) > 2 * MIB and data.startswith(plain), "decrypted while downloading"
        cut[0] = 1 << 62
        [again] = restorer.request(restorer.select(archive_ids=[archive_id]))
        restorer.poll()
        assert store.restore(again.id).status == RestoreStatus.DONE
        assert Path(again.dest_path).read_bytes() == data
        assert not Path(again.plain_partial_path).exists()
