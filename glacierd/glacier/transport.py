"""The one layer where HTTP becomes Glacier: signing, sending, retrying, and
turning every transport failure and error response into a ``GlacierError``.

Request bodies are ``Body`` objects that can be replayed: a retry re-sends the
very same bytes (the hashes were computed once, up front), and the bytes an
attempt had reported as sent are reported back as a negative delta before the
retry, so progress goes backwards honestly.

Retry safety is the caller's declaration (``Retry``): most Glacier calls are
idempotent; UploadArchive is not (a lost answer to a request that reached the
service could mean a second archive), so it is retried only when the request
provably did not take effect.
"""

from __future__ import annotations

import enum
import hashlib
import io
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Protocol
from urllib.parse import quote, urlencode

import requests
import requests.adapters
import urllib3.exceptions

from . import errors
from .auth import SigV4Auth
from .progress import ByteCounter, Pace, null_counter
from .retry import RetryPolicy
from .sigv4 import EMPTY_SHA256

log = logging.getLogger("glacierd.glacier")

API_VERSION = "2012-06-01"
_SEND_BLOCK = 256 * 1024  # progress (and the bandwidth limit) at least this often


class Retry(enum.Enum):
    """How a request may be retried after a transient failure."""

    ALWAYS = "always"
    """Idempotent: retried on any transient failure."""
    IF_NOT_PROCESSED = "if-not-processed"
    """Not idempotent: retried only when the request never reached the service
    (connection refused) or the service says it did not act on it (throttled,
    timed out reading the body). Otherwise ``OutcomeUnknownError``."""


class Body(Protocol):
    """A request body that can be sent again from its start."""

    length: int
    sha256: str

    def open(self) -> BinaryIO: ...


@dataclass(frozen=True)
class MemoryBody:
    data: bytes | bytearray | memoryview
    sha256: str

    @classmethod
    def of(cls, data: bytes) -> MemoryBody:
        """A small body whose SHA-256 is computed here."""
        return cls(data, hashlib.sha256(data).hexdigest())

    @property
    def length(self) -> int:
        return len(memoryview(self.data).cast("B"))

    def open(self) -> BinaryIO:
        # Not io.BytesIO: that would copy the whole part, doubling the memory
        # that concurrency x part_size is supposed to bound.
        return _ViewReader(memoryview(self.data).cast("B"))  # type: ignore[return-value]


class _ViewReader(io.RawIOBase):
    """Hands out slices of a memoryview: no byte is copied on the way to the socket
    (``socket.sendall`` takes a memoryview as it is)."""

    def __init__(self, view: memoryview) -> None:
        super().__init__()
        self._view = view
        self._pos = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> memoryview:
        end = len(self._view) if size is None or size < 0 else self._pos + size
        chunk = self._view[self._pos : end]
        self._pos += len(chunk)
        return chunk


@dataclass(frozen=True)
class FileBody:
    """``length`` bytes of a file from ``offset``, read lazily while sending."""

    path: str | os.PathLike[str]
    offset: int
    length: int
    sha256: str

    def open(self) -> BinaryIO:
        fh = open(self.path, "rb")  # noqa: SIM115 - closed by _CountingReader
        fh.seek(self.offset)
        return fh


class _CountingReader(io.RawIOBase):
    """Feeds a body to http.client in blocks and counts what left.

    ``__len__`` lets requests set Content-Length (Glacier refuses chunked
    uploads). A body that ends early raises instead of sending a short request
    that the service would reject with a confusing checksum error.
    """

    def __init__(self, body: Body, counter: ByteCounter,
                 pace: Pace | None = None) -> None:
        super().__init__()
        self._source = body.open()
        self._remaining = body.length
        self._length = body.length
        self._counter = counter
        self._pace = pace
        self.sent = 0

    def __len__(self) -> int:
        return self._length

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        # requests' super_len subtracts tell() from len(); without it, it
        # would fall back to chunked transfer encoding.
        return self.sent

    def read(self, size: int | None = -1) -> bytes | memoryview:
        if self._remaining <= 0:
            return b""
        want = self._remaining if size is None or size < 0 else min(size, self._remaining)
        want = min(max(want, _SEND_BLOCK), self._remaining)
        if self._pace is not None:  # the bandwidth limit: wait before the block leaves
            self._pace(want)
        chunk = self._source.read(want)
        if not chunk:
            raise OSError(f"request body ended {self._remaining} bytes early (file shrank?)")
        self._remaining -= len(chunk)
        self.sent += len(chunk)
        self._counter(len(chunk))
        return chunk

    def close(self) -> None:
        self._source.close()
        super().close()


def _never_processed(exc: requests.RequestException) -> bool:
    """True when the request certainly did not reach the service."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        inner = getattr(reason, "reason", reason)
        return isinstance(inner, urllib3.exceptions.NewConnectionError)
    return False


_TRANSPORT_ERRORS = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    ConnectionError,
    OSError,
)


@dataclass(frozen=True)
class Wire:
    """What differs between AWS services on the wire, for ``Transport``: how a
    request's path is built from its segments, the headers every request
    carries, where the request id is, and how an error answer is read."""

    service: str  # for messages: "Glacier", "S3"
    path: Callable[[Sequence[str]], str]
    headers: Mapping[str, str]
    request_id_header: str
    error: Callable[[int, bytes, str | None], errors.GlacierError]


ERROR_OBSERVERS: list[Callable[[str, str], None]] = []
"""Called with (operation, error code) for every error answer or transport
failure, retried or not: how a process counts them (glacierd's ``/metrics``)."""


def glacier_wire(account_id: str = "-") -> Wire:
    def path(segments: Sequence[str]) -> str:
        return "/".join(quote(s, safe="") for s in (account_id, *segments))

    return Wire("Glacier", path, {"x-amz-glacier-version": API_VERSION}, "x-amzn-RequestId",
                errors.from_response)


class Transport:
    """Sends signed requests with retries. Thread-safe. Glacier's wire unless told.

    ``session`` and ``policy`` are injectable; tests pass a policy whose sleep
    records instead of waiting. This is the one place where transport failures
    (``requests`` and ``urllib3`` exceptions) become ``TransportError``.
    """

    def __init__(
        self,
        endpoint_url: str,
        auth: SigV4Auth,
        *,
        account_id: str = "-",
        wire: Wire | None = None,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        policy: RetryPolicy | None = None,
        session: requests.Session | None = None,
        pool_size: int = 16,
    ) -> None:
        self.endpoint_url = endpoint_url.rstrip("/")
        self.account_id = account_id
        self.wire = wire or glacier_wire(account_id)
        self.timeout = (connect_timeout, timeout)
        self.policy = policy or RetryPolicy()
        self._auth = auth
        self._local = threading.local()
        self._session_factory = session
        self._pool_size = pool_size

    @property
    def session(self) -> requests.Session:
        # One session per thread: requests' Session is not documented as thread-safe.
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            if self._session_factory is not None:
                session = self._session_factory
            else:
                session = requests.Session()
                adapter = requests.adapters.HTTPAdapter(
                    pool_connections=2, pool_maxsize=self._pool_size, max_retries=0
                )
                session.mount("http://", adapter)
                session.mount("https://", adapter)
            session.trust_env = False
            self._local.session = session
        return session

    def _send(self, method: str, url: str, headers: dict[str, str],
              body: _CountingReader | None) -> requests.Response:
        """One attempt, straight to the session's adapter. ``Session.request``
        would merge settings, cookies and hooks that an AWS API never uses, and
        parse again the URL built here: about a third of a small request's CPU.
        The adapter is still where urllib3's failures become requests'."""
        prepared = requests.PreparedRequest()
        prepared.method = method
        prepared.url = url
        prepared.headers = requests.structures.CaseInsensitiveDict(headers)
        prepared.body = body  # type: ignore[assignment]  # a stream, which requests sends
        prepared.hooks = {"response": []}
        self._auth(prepared)
        session = self.session
        return session.get_adapter(url).send(
            prepared, stream=True, timeout=self.timeout,
            verify=True if session.verify is None else session.verify,
            cert=session.cert, proxies={})

    def url(self, *segments: str, query: Mapping[str, str] | None = None) -> str:
        url = f"{self.endpoint_url}/{self.wire.path(segments)}"
        if query:
            url += "?" + urlencode(sorted(query.items()), quote_via=quote, safe="")
        return url

    def request(
        self,
        method: str,
        segments: Iterable[str],
        *,
        operation: str,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Body | None = None,
        expect: tuple[int, ...] = (200,),
        retry: Retry = Retry.ALWAYS,
        counter: ByteCounter = null_counter,
        pace: Pace | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """Send one operation and return its successful response.

        For ``stream=False`` the whole response body has been read (a short
        read counts as a transient failure and is retried). For
        ``stream=True`` the caller reads the body and handles short reads.
        """
        url = self.url(*segments, query=query)
        attempt = 0
        while True:
            reader: _CountingReader | None = None
            succeeded = False
            try:
                send_headers = {
                    **self.wire.headers,
                    "x-amz-content-sha256": body.sha256 if body is not None else EMPTY_SHA256,
                    **(headers or {}),
                }
                if body is not None:
                    reader = _CountingReader(body, counter, pace)
                    send_headers["Content-Length"] = str(body.length)
                elif method not in ("GET", "HEAD"):
                    send_headers["Content-Length"] = "0"
                response = self._send(method, url, send_headers, reader)
                request_id = response.headers.get(self.wire.request_id_header)
                if response.status_code in expect:
                    if not stream:
                        _ = response.content  # may raise on a short read
                    log.debug(
                        "%s %s -> %s (request id %s)",
                        operation, method, response.status_code, request_id,
                    )
                    succeeded = True
                    return response
                error = self.wire.error(response.status_code, response.content, request_id)
                response.close()
            except errors.GlacierError:
                raise
            except _TRANSPORT_ERRORS as exc:
                if retry is Retry.IF_NOT_PROCESSED and not (
                    isinstance(exc, requests.RequestException) and _never_processed(exc)
                ):
                    raise errors.OutcomeUnknownError(
                        f"{operation}: the connection failed after the request was sent "
                        f"({type(exc).__name__}); it may or may not have taken effect"
                    ) from exc
                error = errors.TransportError(f"{operation}: {type(exc).__name__}: {exc}")
            finally:
                if reader is not None:
                    reader.close()
                    if not succeeded and reader.sent:
                        counter(-reader.sent)  # the next attempt, if any, re-reports
            for observe in ERROR_OBSERVERS:
                observe(operation, error.code or type(error).__name__)
            if not error.retryable or (
                retry is Retry.IF_NOT_PROCESSED
                and not isinstance(
                    error,
                    errors.ThrottlingException
                    | errors.RequestTimeoutException
                    | errors.TransportError,
                )
            ):
                if retry is Retry.IF_NOT_PROCESSED and error.status and error.status >= 500:
                    raise errors.OutcomeUnknownError(
                        f"{operation}: {self.wire.service} answered {error}; the request may or "
                        "may not have taken effect, so it is not retried",
                        code=error.code,
                        status=error.status,
                        request_id=error.request_id,
                    ) from error
                raise error
            attempt += 1
            if attempt >= self.policy.max_attempts:
                log.warning("%s %s failed after %d attempts: %s", operation, method, attempt, error)
                raise error
            delay = self.policy.wait(attempt - 1)
            log.info(
                "%s %s: %s; retry %d/%d after %.2fs",
                operation, method, error, attempt, self.policy.max_attempts - 1, delay,
            )
