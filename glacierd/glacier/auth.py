"""SigV4 for ``requests``: the one place the pure signer meets the HTTP library.

Kept apart from ``sigv4`` so that importing the signer (the emulator does, and
so does anything that only needs hashes) never imports ``requests``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import requests

from .sigv4 import EMPTY_SHA256, Credentials, sign

CredentialSource = Callable[[], Credentials]


class SigV4Auth(requests.auth.AuthBase):
    """Signs each ``requests`` request just before it is sent.

    ``credentials`` is a callable so that refreshed instance-role credentials
    are picked up on the next request (and on each retry); ``clock`` returns
    the signing time and is injected in tests. Requests must already carry
    ``x-amz-content-sha256``: bodies may be streams, and this class never reads
    them.
    """

    def __init__(
        self,
        credentials: CredentialSource,
        region: str,
        service: str = "glacier",
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self._credentials = credentials
        self.region = region
        self.service = service
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        payload = r.headers.get("x-amz-content-sha256")
        if payload is None:
            if r.body not in (None, b"", ""):
                raise ValueError("SigV4Auth needs x-amz-content-sha256 on requests with a body")
            payload = EMPTY_SHA256
            r.headers["x-amz-content-sha256"] = payload
        # Sign only what we control: requests adds Accept/Accept-Encoding and
        # Content-Length, which a proxy could legitimately alter.
        signed_source = [
            (k, v)
            for k, v in r.headers.items()
            if k.lower().startswith("x-amz-")
            or k.lower() in ("host", "content-type", "content-range", "range")
        ]
        added = sign(
            r.method or "GET",
            r.url or "",
            signed_source,
            payload,
            self._credentials(),
            self.region,
            self.service,
            self._clock(),
        )
        r.headers.update(added)
        return r
