"""AWS Signature Version 4, written out so the client needs no boto at run time.

The pure functions build the canonical request, the string to sign and the
signature exactly as AWS's published algorithm (and botocore) do for non-S3
services: the path is normalised and URI-encoded once more, every header but a
short hop-by-hop blacklist is signed, and the payload hash is taken from
``x-amz-content-sha256`` — Glacier always sends that header, which is what
lets a server check the signature before it has read a multi-GiB body.

``glacierd.glacier.auth.SigV4Auth`` plugs the same function into ``requests``
with an injectable clock, and the emulator reuses ``parse_authorization`` and ``signature`` to
verify what clients send.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"

# Hop-by-hop headers that proxies may rewrite, and headers AWS never signs.
UNSIGNED_HEADERS = frozenset(
    {
        "authorization",
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "x-amzn-trace-id",
    }
)


@dataclass(frozen=True)
class Credentials:
    """An access key pair, with a session token for temporary credentials.

    ``repr`` never shows the secret or the token, so a credentials object can
    end up in a log line or a traceback without leaking them.
    """

    access_key: str
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)
    expiry: dt.datetime | None = None


def amz_date(when: dt.datetime) -> str:
    """``when`` (aware, or naive UTC) in the basic ISO 8601 form SigV4 uses."""
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC)
    return when.strftime(AMZ_DATE_FORMAT)


def host_from_url(url: str) -> str:
    """The Host header value for ``url``: lower case, default port dropped."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(parts.scheme)
    if parts.port is not None and parts.port != default:
        host = f"{host}:{parts.port}"
    return host


def _normalize_path(path: str) -> str:
    """RFC 3986 dot-segment removal; AWS also folds repeated slashes."""
    if not path:
        return "/"
    out: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if out:
                out.pop()
        elif segment and segment != ".":
            out.append(segment)
    head = "/" if path.startswith("/") else ""
    tail = "/" if path.endswith("/") and out else ""
    return head + "/".join(out) + tail


def canonical_uri(path: str, service: str = "glacier") -> str:
    """The path as it goes into the canonical request. Every service but S3
    normalises it and URI-encodes it once more; S3 takes the path as sent (its
    keys are URI-encoded once, ``/`` kept, and may hold ``//`` or ``..``)."""
    if service == "s3":
        return path or "/"
    return quote(_normalize_path(path), safe="/~")


def canonical_query(query: str) -> str:
    """Sort the already-encoded ``key=value`` pairs of a query string."""
    if not query:
        return ""
    pairs = []
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        pairs.append((key, value))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _trim(value: str) -> str:
    return " ".join(value.split())


def headers_to_sign(url: str, headers: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Lower-cased headers that are signed, with Host added from the URL if absent."""
    selected: dict[str, list[str]] = {}
    for name, value in headers:
        lname = name.lower().strip()
        if lname not in UNSIGNED_HEADERS:
            selected.setdefault(lname, []).append(value)
    if "host" not in selected:
        selected["host"] = [host_from_url(url)]
    return selected


def canonical_request(
    method: str,
    url: str,
    signed: Mapping[str, list[str]],
    payload_sha256: str,
    service: str = "glacier",
) -> str:
    parts = urlsplit(url)
    names = sorted(signed)
    canonical_headers = "".join(
        f"{n}:{','.join(_trim(v) for v in signed[n])}\n" for n in names
    )
    return "\n".join(
        [
            method.upper(),
            canonical_uri(parts.path, service),
            canonical_query(parts.query),
            canonical_headers,
            ";".join(names),
            payload_sha256,
        ]
    )


def credential_scope(date_stamp: str, region: str, service: str) -> str:
    return f"{date_stamp}/{region}/{service}/aws4_request"


def string_to_sign(amz_datetime: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{amz_datetime}\n{scope}\n{digest}"


@functools.lru_cache(maxsize=8)
def signing_key(secret_key: str, date_stamp: str, region: str, service: str) -> bytes:
    """The day's key (four HMACs): the same for every request of a day, so kept."""
    key = ("AWS4" + secret_key).encode("utf-8")
    for part in (date_stamp, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def signature(key: bytes, to_sign: str) -> str:
    return hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def sign(
    method: str,
    url: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    payload_sha256: str,
    credentials: Credentials,
    region: str,
    service: str,
    timestamp: dt.datetime,
) -> dict[str, str]:
    """Return the headers to add to a request so that it is signed.

    ``headers`` are the request's headers as they will be sent (all but the
    blacklisted ones are signed); ``payload_sha256`` is the hex SHA-256 of the
    body, or the value of its ``x-amz-content-sha256`` header. The result holds
    ``X-Amz-Date``, ``X-Amz-Security-Token`` when the credentials carry a token,
    and ``Authorization``. Any existing Authorization or X-Amz-Date is ignored.
    """
    items = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    stamp = amz_date(timestamp)
    added: dict[str, str] = {"X-Amz-Date": stamp}
    if credentials.token:
        added["X-Amz-Security-Token"] = credentials.token
    replaced = {"x-amz-date", "x-amz-security-token"}
    kept = [(k, v) for k, v in items if k.lower() not in replaced]
    signed = headers_to_sign(url, [*kept, *added.items()])
    canonical = canonical_request(method, url, signed, payload_sha256, service)
    scope = credential_scope(stamp[:8], region, service)
    key = signing_key(credentials.secret_key, stamp[:8], region, service)
    sig = signature(key, string_to_sign(stamp, scope, canonical))
    added["Authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={';'.join(sorted(signed))}, Signature={sig}"
    )
    return added


@dataclass(frozen=True)
class ParsedAuthorization:
    access_key: str
    date_stamp: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str) -> ParsedAuthorization:
    """Split a SigV4 Authorization header; ``ValueError`` when it is not one."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise ValueError(f"unsupported authorization algorithm {algorithm!r}")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        key, sep, val = item.strip().partition("=")
        if not sep:
            raise ValueError(f"malformed authorization component {item.strip()!r}")
        fields[key] = val
    try:
        scope = fields["Credential"].split("/")
        signed = tuple(fields["SignedHeaders"].split(";"))
        sig = fields["Signature"]
    except KeyError as exc:
        raise ValueError(f"authorization header lacks {exc.args[0]}") from None
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise ValueError("malformed credential scope")
    return ParsedAuthorization(scope[0], scope[1], scope[2], scope[3], signed, sig)

