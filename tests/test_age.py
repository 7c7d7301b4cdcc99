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


# --- passphrases (scrypt), as `age -p` writes and reads them --------------------------------

def _in_a_terminal(tmp_path: Path, command: str, answers: list[tuple[str, str]]) -> None:
    """Run ``command`` in a tmux terminal (age reads passphrases only from one),
    typing each answer once its prompt shows, until the command has ended."""
    import time

    from tests.test_terminal import _screen

    ended = tmp_path / "command-ended"
    tmux = ["tmux", "-L", f"glacierd-age-{os.getpid()}-{len(answers)}"]
    subprocess.run([*tmux, "new-session", "-d", "-s", "age", "-x", "120", "-y", "20",
                    f"{command} && touch {ended}; sleep 30"], check=True, timeout=30,
                   env={**os.environ, "TERM": "xterm"})
    try:
        for prompt, answer in answers:
            _screen(tmux, "age", prompt)
            subprocess.run([*tmux, "send-keys", "-t", "age", answer, "Enter"], check=True,
                           timeout=10)
        deadline = time.monotonic() + 60
        while not ended.exists():
            assert time.monotonic() < deadline, _screen(tmux, "age", "", 1)
            time.sleep(0.1)  # another process's end: nothing to wait on but its mark
    finally:
        subprocess.run([*tmux, "kill-server"], timeout=10)


needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


@needs_age
@needs_tmux
def test_age_opens_what_we_seal_with_a_passphrase(tmp_path: Path) -> None:
    plaintext = os.urandom(100_000)
    (tmp_path / "f.age").write_bytes(age.encrypt_with_passphrase(plaintext, b"correct horse"))
    _in_a_terminal(tmp_path, f"{AGE} -d -o {tmp_path / 'out'} {tmp_path / 'f.age'}",
                   [("passphrase", "correct horse")])
    assert (tmp_path / "out").read_bytes() == plaintext


@needs_age
@needs_tmux
def test_we_open_what_age_seals_with_a_passphrase(tmp_path: Path) -> None:
    plaintext = os.urandom(70_000)
    (tmp_path / "plain").write_bytes(plaintext)
    _in_a_terminal(tmp_path, f"{AGE} -p -o {tmp_path / 'f.age'} {tmp_path / 'plain'}",
                   [("passphrase", "battery staple"), ("onfirm", "battery staple")])
    data = (tmp_path / "f.age").read_bytes()
    assert age.decrypt(data, [age.Passphrase(b"battery staple")]) == plaintext
    with pytest.raises(age.AgeError, match="passphrase does not open"):
        age.decrypt(data, [age.Passphrase(b"battery stable")])
    with pytest.raises(age.AgeError, match="none was given"):
        age.decrypt(data, [age.parse_identity(age.generate_identity()[0])])


def test_a_passphrase_protected_identity_file_for_restores(tmp_path: Path) -> None:
    """`glacierd keygen --passphrase` writes the identity sealed with a passphrase;
    the config's identity_file opens with $GLACIERD_PASSPHRASE, and without it
    (no terminal) the message names the file."""
    import sys

    from glacierd import config, wiring
    from glacierd.errors import ConfigError

    env = {**os.environ, "GLACIERD_PASSPHRASE": "a long passphrase"}
    done = subprocess.run([sys.executable, "-m", "glacierd.cli", "keygen", "--passphrase",
                           "--out", str(tmp_path / "key.age")], capture_output=True,
                          text=True, env=env, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    recipient = done.stdout.strip()
    sealed = (tmp_path / "key.age").read_bytes()
    assert age.is_age_file(sealed) and b"AGE-SECRET-KEY" not in sealed
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[vault]\nname = "v"\n[state]\ndir = "{tmp_path}/state"\n'
                   f'[encryption]\nidentity_file = "{tmp_path}/key.age"\n')
    loaded = config.load(cfg)
    os.environ["GLACIERD_PASSPHRASE"] = "a long passphrase"
    try:
        keys = wiring.encryption(loaded)
    finally:
        del os.environ["GLACIERD_PASSPHRASE"]
    assert keys is not None and keys.can_decrypt
    assert keys.recipients == (age.parse_recipient(recipient),)
    wiring._OPENED.clear()
    assert not sys.stdin.isatty()  # (pytest's stdin): no prompt, a message
    with pytest.raises(ConfigError, match=r"key\.age' is protected by a passphrase: set "
                                          r"\$GLACIERD_PASSPHRASE"):
        wiring.encryption(loaded)
    os.environ["GLACIERD_PASSPHRASE"] = "not the passphrase"
    try:
        with pytest.raises(ConfigError, match="passphrase does not open"):
            wiring.encryption(loaded)
    finally:
        del os.environ["GLACIERD_PASSPHRASE"]
