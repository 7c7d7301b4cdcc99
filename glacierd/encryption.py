"""Uploads and restores in the age format (issue 15): what the uploader and the
restorer need of ``glacierd.age``.

* ``Encryption``: the configured keys. Recipients (``age1…``) are all an
  uploading daemon needs; identities only where restores run or a catalog is
  rebuilt.
* ``new_secrets``: one upload's file key, header and payload nonce. Made once,
  before the upload's first part, and kept in the store until the upload ends
  (then deleted), so that a resumed part is encrypted byte for byte as before.
* ``EncryptingReader``: any byte range of the age file, made on demand from
  the plaintext file, so the part engine reads ciphertext parts exactly as it
  reads plain ones. Ranges map to 64 KiB STREAM chunks. A chunk that straddles
  two parts is encrypted once for each, to the same bytes. The reader also
  keeps the plaintext's SHA-256 (for the catalog) as the chunks go by in
  order, and reads only what it skipped (the parts acknowledged before a
  resume).
* ``OrderedDecryption``: a restore's decryption while it downloads, segment by
  verified segment, with the plaintext's size and SHA-256.

Secrets are never in a repr, a log line or an exception message.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from glacierd import age, description
from glacierd.glacier.limits import PartRange
from glacierd.glacier.parts import FileShrankError
from glacierd.store.repository import CipherRecord

__all__ = ["AgeError", "EncryptingReader", "Encryption", "OrderedDecryption", "new_secrets",
           "stored_size"]

AgeError = age.AgeError


def new_secrets(recipients: Sequence[bytes]) -> CipherRecord:
    """A new upload's age parameters: a random file key and payload nonce, and
    the header that wraps the key for each recipient."""
    file_key = os.urandom(16)
    return CipherRecord(file_key, age.make_header(file_key, recipients), os.urandom(age.NONCE))


def stored_size(cipher: CipherRecord, plaintext_size: int) -> int:
    """The archive's size in the service: the whole age file's."""
    return age.ciphertext_size(plaintext_size, len(cipher.header))


@dataclass(frozen=True)
class Encryption:
    """The ``[encryption]`` keys, parsed. ``identities`` may be empty (an
    uploading daemon); ``recipients`` may not."""

    recipients: tuple[bytes, ...]
    identities: tuple[bytes, ...] = field(default=(), repr=False)

    def new_secrets(self) -> CipherRecord:
        return new_secrets(self.recipients)

    def seal_description(self, info: description.ArchiveInfo,
                         stored_size: int) -> description.Sealed:
        """The sealed description, and the manifests its path needs (if too long)."""
        return description.seal(info, lambda doc: age.encrypt_to(doc, self.recipients),
                                stored_size, lambda: uuid.uuid4().hex)

    @property
    def can_decrypt(self) -> bool:
        return bool(self.identities)

    def unseal(self, text: str,
               manifests: Iterable[str] = ()) -> description.ArchiveInfo | None:
        """The info of a sealed description, its whole path from ``manifests`` (the
        descriptions of its manifest archives) when it had to be shortened; None
        without an identity, for a description that is not sealed, or one no
        identity here opens."""
        if not self.identities:
            return None

        def open_blob(blob: bytes) -> bytes:
            return age.decrypt(blob, self.identities)

        try:
            info = description.decode_sealed(text, open_blob)
            if info is not None and info.manifests:
                info = description.with_manifests(info, manifests, open_blob)
            return info
        except AgeError:
            return None


class EncryptingReader:
    """The age file of the plaintext open as ``fd`` (``size`` bytes), read by range."""

    def __init__(self, fd: int, size: int, secrets: CipherRecord) -> None:
        self._fd = fd
        self._size = size
        self._prefix = secrets.header + secrets.nonce
        self._cipher = age.PayloadCipher(secrets.file_key, secrets.nonce)
        self._chunks = age.chunk_count(size)
        self._sha256 = hashlib.sha256()
        self._hashed = 0  # chunks fed to the plaintext SHA-256, in order
        self._lock = threading.Lock()

    @property
    def stored_size(self) -> int:
        return len(self._prefix) + self._size + self._chunks * age.TAG

    def _plain(self, index: int) -> bytes:
        start = index * age.CHUNK
        want = min(age.CHUNK, self._size - start)
        data = os.pread(self._fd, want, start)
        if len(data) != want:
            raise EOFError  # the file shrank: the caller reads short
        return data

    def _hash_through(self, index: int, plain: bytes | None) -> None:
        """Feed the SHA-256 up to chunk ``index`` (whose plaintext is ``plain``)."""
        with self._lock:
            while self._hashed < index:  # skipped chunks (acknowledged before a resume)
                self._sha256.update(self._plain(self._hashed))
                self._hashed += 1
            if self._hashed == index and plain is not None:
                self._sha256.update(plain)
                self._hashed += 1

    def read_into(self, view: memoryview, offset: int) -> int:
        """Fill ``view`` with the age file's bytes from ``offset``; fewer (what
        could be made) if the plaintext file is shorter than it was."""
        filled = 0
        want = len(view)
        if offset < len(self._prefix):
            head = self._prefix[offset:offset + want]
            view[:len(head)] = head
            filled = len(head)
        step = age.CHUNK + age.TAG
        base = len(self._prefix)
        while filled < want:
            position = offset + filled - base
            index, within = divmod(position, step)
            if index >= self._chunks:
                break
            try:
                plain = self._plain(index)
                self._hash_through(index, plain)
            except EOFError:
                break
            sealed = self._cipher.seal(index, plain, index == self._chunks - 1)
            take = min(len(sealed) - within, want - filled)
            view[filled:filled + take] = sealed[within:within + take]
            filled += take
        return filled

    def plaintext_sha256(self) -> str:
        """The SHA-256 of the whole plaintext (reading the chunks not yet seen);
        ``FileShrankError`` if the file is shorter than when the upload began."""
        try:
            self._hash_through(self._chunks, None)
        except EOFError:
            raise FileShrankError("the file shrank while it was being hashed") from None
        return self._sha256.hexdigest()


@dataclass(frozen=True)
class Decrypted:
    size: int
    sha256: str


class OrderedDecryption:
    """A restore's decryption, while it downloads: each segment of the age file,
    once verified against the service's hashes, is decrypted as soon as every
    segment before it is (``advance``), into the plaintext partial file, with
    the plaintext's SHA-256 kept as it goes. ``finish`` authenticates the last
    chunk. ``AgeError`` at the first chunk that does not authenticate; the
    caller then deletes both partial files."""

    def __init__(self, cipher_fd: int, plain_path: Path, segments: Sequence[PartRange],
                 identities: Sequence[bytes]) -> None:
        self._fd = cipher_fd
        self._segments = segments
        self._next = 0
        self._decoder = age.StreamDecoder(identities)
        self._sha256 = hashlib.sha256()
        self._out = os.open(plain_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)

    def _write(self, plain: bytes) -> None:
        self._sha256.update(plain)
        view = memoryview(plain)
        while view:
            view = view[os.write(self._out, view):]

    def advance(self, verified: Container[int]) -> None:
        """Decrypt the segments that now follow, verified, on the part done."""
        while self._next < len(self._segments) and self._next in verified:
            seg = self._segments[self._next]
            for offset in range(seg.offset, seg.offset + seg.length, BLOCK):
                block = os.pread(self._fd, min(BLOCK, seg.offset + seg.length - offset), offset)
                for plain in self._decoder.feed(block):
                    self._write(plain)
            self._next += 1

    def finish(self) -> Decrypted:
        """After every segment: the last chunk, then the file synced and closed."""
        self._write(self._decoder.finish())
        os.fsync(self._out)
        self.close()
        return Decrypted(self._decoder.plaintext_size, self._sha256.hexdigest())

    def close(self) -> None:
        if self._out >= 0:
            os.close(self._out)
            self._out = -1


BLOCK = 1024 * 1024
