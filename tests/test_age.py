"""glacierd's age v1 writer and reader against Debian's ``age`` binary, an
independent implementation (``.ci/run`` installs it; without it these skip)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from glacierd import age

AGE = shutil.which("age")
needs_age = pytest.mark.skipif(AGE is None or shutil.which("age-keygen") is None,
                               reason="Debian's age is not installed (.ci/run installs it)")


def _keygen(tmp_path: Path, name: str) -> tuple[Path, str]:
    key = tmp_path / name
    done = subprocess.run(["age-keygen", "-o", str(key)], capture_output=True, text=True,
                          check=True)
    recipient = done.stderr.strip().rsplit(" ", 1)[-1]
    return key, recipient


@needs_age
@pytest.mark.parametrize("size", [0, 1, age.CHUNK - 1, age.CHUNK, age.CHUNK + 1,
                                  3 * age.CHUNK, 200_000])
def test_what_we_write_age_decrypts(tmp_path: Path, size: int) -> None:
    key, recipient = _keygen(tmp_path, "k1")
    _other_key, other = _keygen(tmp_path, "k2")
    plaintext = os.urandom(size)
    (tmp_path / "f.age").write_bytes(age.encrypt(plaintext, [other, recipient]))
    done = subprocess.run([AGE or "age", "-d", "-i", str(key), str(tmp_path / "f.age")],
                          capture_output=True, check=True)
    assert done.stdout == plaintext


@needs_age
@pytest.mark.parametrize("size", [0, 5, age.CHUNK, 2 * age.CHUNK + 7])
def test_what_age_writes_we_decrypt(tmp_path: Path, size: int) -> None:
    key, recipient = _keygen(tmp_path, "k")
    plaintext = os.urandom(size)
    done = subprocess.run([AGE or "age", "-r", recipient], input=plaintext, capture_output=True,
                          check=True)
    assert age.decrypt(done.stdout, age.read_identities(key.read_text())) == plaintext


@needs_age
def test_our_keys_work_in_age(tmp_path: Path) -> None:
    identity, recipient = age.generate_identity()
    (tmp_path / "id").write_text(identity + "\n")
    (tmp_path / "f.age").write_bytes(age.encrypt(b"hello", [recipient]))
    done = subprocess.run([AGE or "age", "-d", "-i", str(tmp_path / "id"),
                           str(tmp_path / "f.age")], capture_output=True, check=True)
    assert done.stdout == b"hello"
    assert age.recipient_of(age.parse_identity(identity)) == recipient


def test_tampering_is_caught_never_a_wrong_plaintext() -> None:
    identity, recipient = age.generate_identity()
    ids = [age.parse_identity(identity)]
    data = age.encrypt(os.urandom(3 * age.CHUNK + 10), [recipient])
    assert len(data) == age.ciphertext_size(3 * age.CHUNK + 10, data.index(b"\n---") + 1 + 48)
    flipped = bytearray(data)
    flipped[-100] ^= 1
    for bad in (bytes(flipped), data[:-1], data[:-(age.CHUNK + age.TAG)],
                data + b"x", data.replace(b"X25519", b"X25518", 1)):
        with pytest.raises(age.AgeError):
            age.decrypt(bad, ids)
    other = age.parse_identity(age.generate_identity()[0])
    with pytest.raises(age.AgeError, match="no identity"):
        age.decrypt(data, [other])


def test_a_chunk_is_the_same_bytes_every_time() -> None:
    """A resumed part is encrypted byte for byte as before: the file key and nonce
    are kept; nothing else goes in."""
    cipher = age.PayloadCipher(b"k" * 16, b"n" * 16)
    again = age.PayloadCipher(b"k" * 16, b"n" * 16)
    chunk = os.urandom(age.CHUNK)
    assert cipher.seal(7, chunk, False) == again.seal(7, chunk, False)
    assert cipher.seal(7, chunk, False) != cipher.seal(7, chunk, True)
    assert cipher.open(7, cipher.seal(7, chunk, False), False) == chunk


def test_bech32_keys_are_checked() -> None:
    identity, recipient = age.generate_identity()
    with pytest.raises(age.AgeError):
        age.parse_recipient(recipient[:-1] + ("q" if recipient[-1] != "q" else "p"))
    with pytest.raises(age.AgeError):
        age.parse_recipient(identity)
    assert len(age.parse_recipient(recipient)) == 32


@needs_age
def test_glacierd_keygen_writes_an_identity_age_uses(tmp_path: Path) -> None:
    import sys

    key = tmp_path / "id.txt"
    made = subprocess.run([sys.executable, "-m", "glacierd.cli", "keygen", "--out", str(key)],
                          capture_output=True, text=True, check=True)
    recipient = made.stdout.strip()
    assert recipient.startswith("age1") and key.stat().st_mode & 0o777 == 0o600
    sealed = subprocess.run([AGE or "age", "-r", recipient], input=b"secret", capture_output=True,
                            check=True).stdout
    opened = subprocess.run([AGE or "age", "-d", "-i", str(key)], input=sealed,
                            capture_output=True, check=True)
    assert opened.stdout == b"secret"
    again = subprocess.run([sys.executable, "-m", "glacierd.cli", "keygen", "--out", str(key)],
                           capture_output=True, text=True)
    assert again.returncode == 78 and "never overwritten" in again.stderr
    assert "Traceback" not in again.stderr


@pytest.mark.parametrize("path", ["/home/ann/tax 2026.pdf", "/d/" + "é" * 600,
                                  "/bad/\udcff\udcfe name"])
def test_sealed_descriptions_hide_the_path_and_fit(path: str) -> None:
    from glacierd import description

    identity, recipient = age.generate_identity()
    _other_identity, other = age.generate_identity()
    info = description.ArchiveInfo(path=path, host="host-1", size=42, mtime_ns=7,
                                   token="c" * 32, mode=0o640)
    text = description.encode_sealed(info, lambda b: age.encrypt(b, [recipient, other]), 300)
    assert len(text) <= 1024 and text.isascii() and text.isprintable()
    assert "tax 2026" not in text and "/bad/" not in text  # (base64 has no space or "/")
    assert description.decode(text) is None, "not readable as a plain description"
    assert description.public_part(text) == description.PublicPart("host-1", "c" * 32, 300,
                                                                   True)
    ids = [age.parse_identity(identity)]
    back = description.decode_sealed(text, lambda b: age.decrypt(b, ids))
    assert back is not None and (back.size, back.mtime_ns, back.token, back.mode) == (
        42, 7, "c" * 32, 0o640)
    if len(path) < 100:
        assert back.path == path and not back.shortened
    else:
        digest = hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:16]
        assert back.shortened and back.path.endswith("...#" + digest)
    with pytest.raises(age.AgeError):
        description.decode_sealed(text, lambda b: age.decrypt(
            b, [age.parse_identity(age.generate_identity()[0])]))


def test_a_sealed_description_keeps_paths_of_360_bytes_whole() -> None:
    """One base64 layer over the age file: room for real paths, not only short ones."""
    from glacierd import description

    identity, recipient = age.generate_identity()
    path = "/srv/" + "/".join(["projekt-ünterlagen-2026"] * 16)[:350]
    assert len(path.encode()) >= 360
    info = description.ArchiveInfo(path=path, host="backup-host.example", size=2**40,
                                   mtime_ns=1_790_000_000_000_000_000, token="d" * 32,
                                   mode=0o644)
    text = description.encode_sealed(info, lambda b: age.encrypt(b, [recipient]), 2**40 + 99)
    assert len(text) <= 1024
    back = description.decode_sealed(text, lambda b: age.decrypt(
        b, [age.parse_identity(identity)]))
    assert back is not None and back.path == path and not back.shortened
