"""The one error hierarchy of glacierd's Glacier client.

Every failure a caller can see is a ``GlacierError``. Errors the service
returned carry its ``code``, ``message``, ``type`` (Client/Server), the HTTP
``status`` and the ``request_id`` to quote to AWS support. Errors raised before
any request (bad input, missing credentials) or after the transport gave up
have no status and no request id.

As in borg, each class's docstring is its default message, and each class
carries the exit code a command-line tool should end with; only the CLI's
``main()`` turns an error into an exit code.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar


class GlacierError(Exception):
    """Glacier request failed."""

    exit_code: ClassVar[int] = 2
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        type: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        self.message = message or (self.__doc__ or "").strip()
        self.code = code or type_name(self)
        self.type = type
        self.status = status
        self.request_id = request_id
        super().__init__(self.message)

    def __str__(self) -> str:
        parts = [f"{self.code}: {self.message}"]
        if self.status is not None:
            parts.append(f"(HTTP {self.status}")
            parts[-1] += f", request id {self.request_id})" if self.request_id else ")"
        return " ".join(parts)


def type_name(err: Exception) -> str:
    return type(err).__name__


# --- errors the service returns ------------------------------------------------


class ResourceNotFoundException(GlacierError):
    """The vault, archive, upload or job does not exist."""


class InvalidParameterValueException(GlacierError):
    """A parameter of the request is invalid."""


class MissingParameterValueException(GlacierError):
    """A required header or parameter is missing."""


class LimitExceededException(GlacierError):
    """A request would exceed a Glacier limit."""


class PolicyEnforcedException(GlacierError):
    """The retrieval would exceed the vault's data retrieval policy."""


class InsufficientCapacityException(GlacierError):
    """There is not enough capacity for this Expedited retrieval; try the Standard tier."""


class AccessDeniedException(GlacierError):
    """The request was refused: check the credentials and their permissions."""

    exit_code = 3


class InvalidSignatureException(AccessDeniedException):
    """The request signature does not match: check the secret key and the clock."""


class UnrecognizedClientException(AccessDeniedException):
    """The access key or security token is not valid."""


class ThrottlingException(GlacierError):
    """Glacier is throttling requests."""

    retryable = True


class RequestTimeoutException(GlacierError):
    """Glacier timed out waiting for the request body."""

    retryable = True


class ServiceUnavailableException(GlacierError):
    """Glacier is temporarily unavailable."""

    retryable = True


class ServerError(GlacierError):
    """Glacier answered with a server error."""

    retryable = True


# --- errors raised on this side -------------------------------------------------


class InvalidInputError(GlacierError, ValueError):
    """The request was not sent: an argument is invalid."""

    exit_code = 64  # EX_USAGE


class CredentialsError(GlacierError):
    """No AWS credentials were found."""

    exit_code = 3


class TransportError(GlacierError):
    """The connection to Glacier failed."""

    retryable = True


class OutcomeUnknownError(TransportError):
    """The connection failed after the request was sent: it may or may not have taken effect."""

    retryable = False


class ChecksumMismatchError(GlacierError):
    """Downloaded bytes do not match the tree hash Glacier sent for them."""

    retryable = True


class UnverifiedOutputError(GlacierError):
    """Downloaded bytes could not be checked: neither the job nor the answer gave a
    size or a hash to check them against."""


SERVICE_ERRORS: dict[str, type[GlacierError]] = {
    cls.__name__: cls
    for cls in (
        ResourceNotFoundException,
        InvalidParameterValueException,
        MissingParameterValueException,
        LimitExceededException,
        PolicyEnforcedException,
        InsufficientCapacityException,
        AccessDeniedException,
        InvalidSignatureException,
        UnrecognizedClientException,
        ThrottlingException,
        RequestTimeoutException,
        ServiceUnavailableException,
    )
}


def from_response(status: int, body: bytes, request_id: str | None) -> GlacierError:
    """Turn an error response into the matching ``GlacierError`` subclass.

    A body that is not Glacier's JSON (an HTML page from a proxy, a truncated
    answer) still yields a clear error naming the status and the start of the
    body, never a JSON decoding traceback.
    """
    code: str | None = None
    message: str | None = None
    err_type: str | None = None
    try:
        doc: Any = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, ValueError):
        doc = None
    if isinstance(doc, dict):
        code = _str_or_none(doc.get("code") or doc.get("Code") or doc.get("__type"))
        message = _str_or_none(doc.get("message") or doc.get("Message"))
        err_type = _str_or_none(doc.get("type") or doc.get("Type"))
    if code and "#" in code:
        code = code.rsplit("#", 1)[1]
    if not message:
        snippet = body[:200].decode("utf-8", "replace").strip()
        message = f"HTTP {status} with an unexpected body: {snippet!r}" if snippet else (
            f"HTTP {status} with an empty body"
        )
    cls = SERVICE_ERRORS.get(code or "")
    if cls is None:
        if status == 408:
            cls = RequestTimeoutException
        elif status == 429:
            cls = ThrottlingException
        elif status >= 500:
            cls = ServerError
        elif status == 403:
            cls = AccessDeniedException
        elif status == 404:
            cls = ResourceNotFoundException
        else:
            cls = GlacierError
    return cls(
        message,
        code=code or f"HTTP{status}",
        type=err_type,
        status=status,
        request_id=request_id,
    )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
