"""S3's errors, in the client library's one hierarchy: every request error is a
``GlacierError`` (the base of glacierd's AWS request errors), carrying S3's
code, message, the HTTP status and the request id.

S3 answers errors in XML (``<Error><Code>…</Code><Message>…</Message>
<RequestId>…</RequestId></Error>``), and a HEAD's error has no body: its
status says what it was.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from glacierd.glacier.errors import (
    AccessDeniedException,
    GlacierError,
    ServerError,
    ThrottlingException,
)


class S3Error(GlacierError):
    """S3 request failed."""


class NotFound(S3Error):
    """The bucket, key or upload does not exist."""


class NoSuchBucket(NotFound):
    """The bucket does not exist."""


class NoSuchKey(NotFound):
    """The key does not exist."""


class NoSuchUpload(NotFound):
    """The multipart upload does not exist (completed, aborted, or never made)."""


class PreconditionFailed(S3Error):
    """A condition (If-None-Match: *) did not hold: the key exists."""


class ConditionalRequestConflict(S3Error):
    """Another request on the same key raced this conditional one: start again."""


class InvalidObjectState(S3Error):
    """The object's storage class does not allow this (not restored, or no restore needed)."""


class RestoreAlreadyInProgress(S3Error):
    """A restore of this object is already under way."""


class BadDigest(S3Error):
    """The body does not match the checksum sent with it."""


class PartNumberIgnored(S3Error):
    """A GET of one part answered with other bytes (a peer that ignores
    ``partNumber``): fetch plain ranges instead."""


class InvalidPart(S3Error):
    """A part named in Complete is missing or does not match."""


class EntityTooSmall(S3Error):
    """A part other than the last is smaller than 5 MiB."""


class S3AccessDenied(S3Error, AccessDeniedException):
    """The request was refused: check the credentials and their permissions."""


class SlowDown(S3Error, ThrottlingException):
    """S3 asks to slow down."""


class S3ServerError(S3Error, ServerError):
    """S3 answered with a server error."""


_CODES: dict[str, type[S3Error]] = {
    "NoSuchBucket": NoSuchBucket, "NoSuchKey": NoSuchKey, "NoSuchUpload": NoSuchUpload,
    "PreconditionFailed": PreconditionFailed,
    "ConditionalRequestConflict": ConditionalRequestConflict,
    "InvalidObjectState": InvalidObjectState,
    "RestoreAlreadyInProgress": RestoreAlreadyInProgress, "BadDigest": BadDigest,
    "XAmzContentSHA256Mismatch": BadDigest, "InvalidPart": InvalidPart,
    "InvalidPartOrder": InvalidPart, "EntityTooSmall": EntityTooSmall,
    "AccessDenied": S3AccessDenied, "SignatureDoesNotMatch": S3AccessDenied,
    "InvalidAccessKeyId": S3AccessDenied, "RequestTimeTooSkewed": S3AccessDenied,
    "SlowDown": SlowDown, "InternalError": S3ServerError,
    "ServiceUnavailable": S3ServerError, "RequestTimeout": S3ServerError,
}
_BY_STATUS: dict[int, type[S3Error]] = {403: S3AccessDenied, 404: NotFound,
                                        412: PreconditionFailed, 503: SlowDown}


def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def error_fields(body: bytes) -> tuple[str | None, str | None, str | None]:
    """(code, message, request id) of an XML ``<Error>``, or Nones."""
    try:
        root = ET.fromstring(body) if body else None
    except ET.ParseError:
        return None, None, None
    if root is None or local_name(root.tag) != "Error":
        return None, None, None
    found = {local_name(child.tag): (child.text or "") for child in root}
    return found.get("Code") or None, found.get("Message") or None, found.get("RequestId")


def from_response(status: int, body: bytes, request_id: str | None) -> GlacierError:
    """An S3 error answer (or a 200 whose body is an ``<Error>``) as its class."""
    code, message, body_request_id = error_fields(body)
    if not message:
        snippet = body[:200].decode("utf-8", "replace").strip()
        message = (f"HTTP {status} with an unexpected body: {snippet!r}" if snippet
                   else f"HTTP {status} with no body")
    cls = _CODES.get(code or "") or _BY_STATUS.get(status) or (
        S3ServerError if status >= 500 else S3Error)
    return cls(message, code=code or f"HTTP{status}", status=status,
               request_id=request_id or body_request_id)
