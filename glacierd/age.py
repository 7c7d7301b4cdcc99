"""The age v1 file format (C2SP ``age``), written and read with the
``cryptography`` package's primitives: archives that Debian's ``age -d``
decrypts without glacierd, for decades.

An age file is a text header — the version line, one stanza per recipient
(here X25519: an ephemeral share and the 16-byte file key wrapped with
ChaCha20-Poly1305 under an HKDF of the shared secret), and a MAC over all of
it — followed by a 16-byte nonce and the payload in STREAM chunks: 64 KiB of
plaintext each, ChaCha20-Poly1305 under an HKDF of the file key and nonce,
with a 12-byte nonce of an 11-byte counter and a last-chunk flag.

What resumable uploads need from it: given the file key, the header and the
payload nonce (kept until the upload completes), every chunk's ciphertext is
a pure function of its plaintext and index (``PayloadCipher.seal``), so a
resumed part is encrypted byte for byte as before; ``ciphertext_size`` and
the chunk arithmetic (``CHUNK`` + ``TAG`` a chunk, after the header and nonce)
map part boundaries between the two.

Keys: ``age1…`` recipients and ``AGE-SECRET-KEY-1…`` identities (Bech32), as
``age-keygen`` writes them.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION_LINE = b"age-encryption.org/v1\n"
CHUNK = 64 * 1024
TAG = 16
NONCE = 16
X25519_INFO = b"age-encryption.org/v1/X25519"


class AgeError(ValueError):
    """Not an age file, not for these identities, or altered: nothing is returned."""


# --- Bech32 (BIP 173), for age1... and AGE-SECRET-KEY-1... -----------------------------

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _polymod(values: Iterable[int]) -> int:
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert(data: bytes | list[int], frm: int, to: int, pad: bool) -> list[int]:
    acc = bits = 0
    out = []
    for value in data:
        acc = (acc << frm) | value
        bits += frm
        while bits >= to:
            bits -= to
            out.append((acc >> bits) & ((1 << to) - 1))
    if pad and bits:
        out.append((acc << (to - bits)) & ((1 << to) - 1))
    elif not pad and (bits >= frm or (acc << (to - bits)) & ((1 << to) - 1)):
        raise AgeError("invalid Bech32 padding")
    return out


def bech32_encode(hrp: str, data: bytes) -> str:
    words = _convert(data, 8, 5, True)
    check = _polymod(_hrp_expand(hrp) + words + [0] * 6) ^ 1
    words += [(check >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[w] for w in words)


def bech32_decode(text: str) -> tuple[str, bytes]:
    if text.lower() != text and text.upper() != text:
        raise AgeError("mixed-case Bech32 key")
    lowered = text.lower()
    hrp, sep, rest = lowered.rpartition("1")
    if not sep or not hrp or len(rest) < 6 or any(c not in _CHARSET for c in rest):
        raise AgeError(f"not a Bech32 key: {text[:12]}...")
    words = [_CHARSET.index(c) for c in rest]
    if _polymod(_hrp_expand(hrp) + words) != 1:
        raise AgeError(f"bad checksum in key {text[:12]}...")
    return hrp, bytes(_convert(words[:-6], 5, 8, False))


# --- keys ----------------------------------------------------------------------------------

def generate_identity() -> tuple[str, str]:
    """A new X25519 identity: (``AGE-SECRET-KEY-1…``, its ``age1…`` recipient)."""
    secret = os.urandom(32)
    return (bech32_encode("age-secret-key-", secret).upper(),
            recipient_of(secret))


def recipient_of(secret: bytes) -> str:
    public = X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return bech32_encode("age", public)


def parse_recipient(text: str) -> bytes:
    hrp, key = bech32_decode(text.strip())
    if hrp != "age" or len(key) != 32:
        raise AgeError(f"{text.strip()[:16]}...: not an age X25519 recipient (age1...)")
    return key


def parse_identity(text: str) -> bytes:
    hrp, key = bech32_decode(text.strip())
    if hrp != "age-secret-key-" or len(key) != 32:
        raise AgeError("not an age X25519 identity (AGE-SECRET-KEY-1...)")
    return key


def read_identities(text: str) -> list[bytes]:
    """The identities of an identity file (``age-keygen``'s: comments allowed)."""
    keys = [parse_identity(line) for line in text.splitlines()
            if line.strip() and not line.startswith("#")]
    if not keys:
        raise AgeError("no identity (AGE-SECRET-KEY-1...) in the identity file")
    return keys


# --- the header ------------------------------------------------------------------------------

def _b64(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


def _unb64(text: bytes) -> bytes:
    if b"=" in text or b"\r" in text:
        raise AgeError("non-canonical base64 in the header")
    try:
        data = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except ValueError:
        raise AgeError("bad base64 in the header") from None
    if _b64(data) != text:
        raise AgeError("non-canonical base64 in the header")
    return data


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt or None, info=info).derive(ikm)


def _wrap_lines(body: bytes) -> bytes:
    encoded = _b64(body)
    lines = [encoded[i:i + 64] for i in range(0, len(encoded), 64)]
    if not lines or len(lines[-1]) == 64:
        lines.append(b"")
    return b"\n".join(lines) + b"\n"


def _x25519_stanza(file_key: bytes, recipient: bytes) -> bytes:
    ephemeral = X25519PrivateKey.generate()
    share = ephemeral.public_key().public_bytes(serialization.Encoding.Raw,
                                                serialization.PublicFormat.Raw)
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient))
    wrap = _hkdf(shared, share + recipient, X25519_INFO)
    body = ChaCha20Poly1305(wrap).encrypt(b"\x00" * 12, file_key, None)
    return b"-> X25519 " + _b64(share) + b"\n" + _wrap_lines(body)


def make_header(file_key: bytes, recipients: Sequence[bytes]) -> bytes:
    """The header (with its MAC) for ``recipients``' X25519 keys."""
    if not recipients:
        raise AgeError("no recipients")
    head = VERSION_LINE + b"".join(_x25519_stanza(file_key, r) for r in recipients) + b"---"
    mac = hmac.new(_hkdf(file_key, b"", b"header"), head, hashlib.sha256).digest()
    return head + b" " + _b64(mac) + b"\n"


def _split_header(data: bytes) -> tuple[list[tuple[list[bytes], bytes]], bytes, bytes, int]:
    """(stanzas as (arguments, body), the bytes the MAC covers, the MAC, header length)."""
    if not data.startswith(VERSION_LINE):
        raise AgeError("not an age v1 file (no age-encryption.org/v1 line)")
    pos = len(VERSION_LINE)
    stanzas: list[tuple[list[bytes], bytes]] = []
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            raise AgeError("the header is cut short")
        line = data[pos:end]
        if line.startswith(b"--- "):
            return stanzas, data[:pos + 3], _unb64(line[4:]), end + 1
        if not line.startswith(b"-> "):
            raise AgeError("malformed header line")
        args = line[3:].split(b" ")
        pos = end + 1
        body = b""
        while True:
            end = data.find(b"\n", pos)
            if end < 0 or end - pos > 64:
                raise AgeError("malformed stanza body")
            chunk = data[pos:end]
            body += chunk
            pos = end + 1
            if len(chunk) < 64:
                break
        stanzas.append((args, _unb64(body)))


class Passphrase(bytes):
    """A passphrase, given where identities go: it opens an scrypt stanza (``age
    -p``). Its repr shows nothing of it."""

    def __repr__(self) -> str:
        return "Passphrase(...)"


SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"
SCRYPT_LOG_N = 18
"""age's own work factor (2^18: about a second and 256 MiB here)."""
MAX_SCRYPT_LOG_N = 22


def _scrypt_key(passphrase: bytes, salt: bytes, log_n: int) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=SCRYPT_LABEL + salt, length=32, n=2**log_n, r=8, p=1).derive(passphrase)


def make_passphrase_header(file_key: bytes, passphrase: bytes,
                           log_n: int = SCRYPT_LOG_N) -> bytes:
    """The header (with its MAC) of a file encrypted with a passphrase (scrypt)."""
    salt = os.urandom(16)
    body = ChaCha20Poly1305(_scrypt_key(passphrase, salt, log_n)).encrypt(
        b"\x00" * 12, file_key, None)
    head = (VERSION_LINE + b"-> scrypt " + _b64(salt) + b" " + str(log_n).encode() + b"\n"
            + _wrap_lines(body) + b"---")
    mac = hmac.new(_hkdf(file_key, b"", b"header"), head, hashlib.sha256).digest()
    return head + b" " + _b64(mac) + b"\n"


def _scrypt_file_key(stanzas: list[tuple[list[bytes], bytes]],
                     passphrases: Sequence[bytes]) -> bytes:
    if len(stanzas) != 1:
        raise AgeError("an scrypt stanza must be the only one in the header")
    args, body = stanzas[0]
    if len(args) != 3 or not args[2].isdigit() or len(body) != 32:
        raise AgeError("malformed scrypt stanza")
    salt, log_n = _unb64(args[1]), int(args[2])
    if len(salt) != 16 or args[2] != str(log_n).encode() or log_n < 1:
        raise AgeError("malformed scrypt stanza")
    if log_n > MAX_SCRYPT_LOG_N:
        raise AgeError(f"the passphrase's work factor 2^{log_n} is beyond 2^{MAX_SCRYPT_LOG_N}")
    for passphrase in passphrases:
        try:
            return ChaCha20Poly1305(_scrypt_key(passphrase, salt, log_n)).decrypt(
                b"\x00" * 12, body, None)
        except Exception:  # InvalidTag: another passphrase
            continue
    raise AgeError("the passphrase does not open this file")


def _file_key(stanzas: list[tuple[list[bytes], bytes]], identities: Sequence[bytes]) -> bytes:
    if any(args[0] == b"scrypt" for args, _ in stanzas):
        passphrases = [i for i in identities if isinstance(i, Passphrase)]
        if not passphrases:
            raise AgeError("this file is encrypted with a passphrase, and none was given")
        return _scrypt_file_key(stanzas, passphrases)
    identities = [i for i in identities if not isinstance(i, Passphrase)]
    for args, body in stanzas:
        if args[0] != b"X25519" or len(args) != 2 or len(body) != 32:
            continue
        share = _unb64(args[1])
        if len(share) != 32:
            raise AgeError("malformed X25519 stanza")
        for secret in identities:
            private = X25519PrivateKey.from_private_bytes(secret)
            try:
                shared = private.exchange(X25519PublicKey.from_public_bytes(share))
            except ValueError:
                raise AgeError("malformed X25519 share") from None
            public = private.public_key().public_bytes(serialization.Encoding.Raw,
                                                       serialization.PublicFormat.Raw)
            wrap = _hkdf(shared, share + public, X25519_INFO)
            try:
                return ChaCha20Poly1305(wrap).decrypt(b"\x00" * 12, body, None)
            except Exception:  # InvalidTag: not for this identity
                continue
    raise AgeError("no identity matches any recipient of this file")


# --- the payload -------------------------------------------------------------------------------

@dataclass(frozen=True)
class PayloadCipher:
    """The STREAM cipher of one file: chunk ``i``'s ciphertext depends on the file
    key, the nonce, ``i`` and whether it is the last — nothing else."""

    file_key: bytes = field(repr=False)
    nonce: bytes

    @functools.cached_property
    def _aead(self) -> ChaCha20Poly1305:
        return ChaCha20Poly1305(_hkdf(self.file_key, self.nonce, b"payload"))

    @staticmethod
    def _chunk_nonce(index: int, last: bool) -> bytes:
        return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")

    def seal(self, index: int, plaintext: bytes | memoryview, last: bool) -> bytes:
        return self._aead.encrypt(self._chunk_nonce(index, last), bytes(plaintext), None)

    def open(self, index: int, ciphertext: bytes, last: bool) -> bytes:
        try:
            return self._aead.decrypt(self._chunk_nonce(index, last), ciphertext, None)
        except Exception:  # InvalidTag
            raise AgeError(f"chunk {index} does not authenticate: the archive was "
                           "altered or cut short") from None


def chunk_count(plaintext_size: int) -> int:
    """STREAM chunks of a payload: an empty one still has one (empty, last) chunk."""
    return max(1, -(-plaintext_size // CHUNK))


def ciphertext_size(plaintext_size: int, header_size: int) -> int:
    """Bytes of an age file whose header is ``header_size`` bytes long."""
    return header_size + NONCE + plaintext_size + chunk_count(plaintext_size) * TAG


def encrypt(plaintext: bytes, recipients: Sequence[str]) -> bytes:
    """A whole age file (small data: descriptions, tests) for ``age1…`` recipients."""
    return encrypt_to(plaintext, [parse_recipient(r) for r in recipients])


def encrypt_to(plaintext: bytes, recipients: Sequence[bytes]) -> bytes:
    """A whole age file for recipients' X25519 keys (``parse_recipient``'s)."""
    file_key = os.urandom(16)
    return _encrypt_payload(plaintext, file_key, make_header(file_key, recipients))


def encrypt_with_passphrase(plaintext: bytes, passphrase: bytes,
                            log_n: int = SCRYPT_LOG_N) -> bytes:
    """A whole age file that ``age -d`` opens with the passphrase (as ``age -p``)."""
    file_key = os.urandom(16)
    return _encrypt_payload(plaintext, file_key,
                            make_passphrase_header(file_key, passphrase, log_n))


ARMOR_BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
ARMOR_END = b"-----END AGE ENCRYPTED FILE-----"


def is_age_file(data: bytes) -> bool:
    """Does ``data`` begin like an age file (binary or armored)?"""
    return data.startswith(VERSION_LINE) or data.lstrip().startswith(ARMOR_BEGIN)


def dearmor(data: bytes) -> bytes:
    """An armored age file (``age -a``) as the binary one; binary data as it is."""
    text = data.strip()
    if not text.startswith(ARMOR_BEGIN):
        return data
    if not text.endswith(ARMOR_END):
        raise AgeError("the armored file is cut short")
    body = b"".join(text[len(ARMOR_BEGIN):-len(ARMOR_END)].split())
    try:
        return base64.b64decode(body, validate=True)
    except ValueError:
        raise AgeError("bad base64 in the armored file") from None


def _encrypt_payload(plaintext: bytes, file_key: bytes, header: bytes) -> bytes:
    cipher = PayloadCipher(file_key, os.urandom(NONCE))
    out = [header, cipher.nonce]
    count = chunk_count(len(plaintext))
    for i in range(count):
        out.append(cipher.seal(i, plaintext[i * CHUNK:(i + 1) * CHUNK], i == count - 1))
    return b"".join(out)


def decrypt(data: bytes, identities: Sequence[bytes]) -> bytes:
    """The plaintext of a whole age file; ``AgeError`` if it is not for these
    identities (or passphrases), or was altered, truncated or extended."""
    decoder = StreamDecoder(identities)
    return b"".join([*decoder.feed(data), decoder.finish()])

MAX_HEADER = 1 << 20
"""A header longer than this is refused (thousands of recipients): nothing real."""


def open_header(data: bytes, identities: Sequence[bytes]) -> tuple[bytes, int]:
    """(file key, header length) of the age file that starts with ``data``, its
    MAC checked; ``AgeError`` if it is cut short, altered or not for these
    identities."""
    stanzas, covered, mac, header_len = _split_header(data)
    file_key = _file_key(stanzas, identities)
    expected = hmac.new(_hkdf(file_key, b"", b"header"), covered, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, mac):
        raise AgeError("the header's MAC does not match: the header was altered")
    return file_key, header_len


class StreamDecoder:
    """Decrypts an age file fed in order, in pieces of any size (a restore feeds
    each verified stretch as it lands): ``feed`` returns the plaintext of the
    chunks now known not to be the last, ``finish`` that of the last one.
    Memory: the header and one chunk.

    ``AgeError`` as soon as anything does not authenticate, is cut short or goes
    on after the last chunk: a caller must then discard the plaintext it got (a
    restore writes to a partial file it deletes)."""

    def __init__(self, identities: Sequence[bytes]) -> None:
        self._identities = identities
        self._buffer = bytearray()
        self._cipher: PayloadCipher | None = None
        self._file_key: bytes | None = None
        self._index = 0
        self.plaintext_size = 0

    def _start(self) -> bool:
        """Open the header and the nonce once they are all here."""
        if self._file_key is None:
            head = bytes(self._buffer[:MAX_HEADER + 1024])
            mark = head.find(b"\n--- ")
            if mark < 0 or head.find(b"\n", mark + 5) < 0:
                if len(self._buffer) > MAX_HEADER:
                    raise AgeError("the header is longer than any age file's")
                return False
            self._file_key, header_len = open_header(head, self._identities)
            del self._buffer[:header_len]
        if len(self._buffer) < NONCE:
            return False
        self._cipher = PayloadCipher(self._file_key, bytes(self._buffer[:NONCE]))
        del self._buffer[:NONCE]
        return True

    def feed(self, data: bytes | memoryview) -> list[bytes]:
        self._buffer += data
        if self._cipher is None and not self._start():
            return []
        assert self._cipher is not None
        step = CHUNK + TAG
        out = []
        while len(self._buffer) > step:  # a byte beyond a full chunk: it is not the last
            out.append(self._cipher.open(self._index, bytes(self._buffer[:step]), False))
            del self._buffer[:step]
            self._index += 1
        self.plaintext_size += sum(len(p) for p in out)
        return out

    def finish(self) -> bytes:
        """The last chunk's plaintext: everything fed must end there."""
        if self._cipher is None and not self._start():
            raise AgeError("the header or the payload is cut short")
        assert self._cipher is not None
        if len(self._buffer) < TAG:
            raise AgeError("the payload is cut short")
        plain = self._cipher.open(self._index, bytes(self._buffer), True)
        if not plain and self._index > 0:
            raise AgeError("an empty final chunk after data: not a valid age file")
        self._buffer.clear()
        self.plaintext_size += len(plain)
        return plain
