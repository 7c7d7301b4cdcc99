"""Finding AWS credentials, in the order the AWS SDKs use.

1. keys passed explicitly;
2. ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (+ ``AWS_SESSION_TOKEN``);
3. the shared credentials file (``AWS_SHARED_CREDENTIALS_FILE``, default
   ``~/.aws/credentials``), profile ``AWS_PROFILE`` or ``default``;
4. the config file (``AWS_CONFIG_FILE``, default ``~/.aws/config``), section
   ``[profile NAME]`` or ``[default]``;
5. EC2 instance-role credentials over IMDSv2 (endpoint from
   ``AWS_EC2_METADATA_SERVICE_ENDPOINT``; off with
   ``AWS_EC2_METADATA_DISABLED=true``), refreshed before they expire.

The result is a *credential source*: a callable returning the credentials to
sign the next request with, so that refreshed role credentials reach every
request, retries included. When nothing is found, ``CredentialsError`` says
where it looked and what it found there; secrets are never part of a message.
"""

from __future__ import annotations

import configparser
import datetime as dt
import json
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import requests

from .errors import CredentialsError
from .sigv4 import Credentials

DEFAULT_IMDS_ENDPOINT = "http://169.254.169.254"
IMDS_TOKEN_TTL_SECONDS = 21600
IMDS_TIMEOUT_SECONDS = 1.0
# Refresh role credentials this long before they expire; AWS rotates them
# about 5 minutes before expiry, and a long part upload must not straddle it.
REFRESH_MARGIN = dt.timedelta(minutes=10)

CredentialSource = Callable[[], Credentials]
Clock = Callable[[], dt.datetime]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class StaticSource:
    """Credentials that never change (explicit keys, env, files)."""

    def __init__(self, credentials: Credentials, origin: str) -> None:
        self.credentials = credentials
        self.origin = origin

    def __call__(self) -> Credentials:
        return self.credentials

    def __repr__(self) -> str:
        return f"StaticSource({self.credentials.access_key!r} from {self.origin})"


def _profile_section(parser: configparser.RawConfigParser, names: list[str]) -> Mapping[str, str]:
    for name in names:
        if parser.has_section(name):
            return dict(parser.items(name))
    return {}


def _keys_from(section: Mapping[str, str]) -> Credentials | None:
    key = section.get("aws_access_key_id", "").strip()
    secret = section.get("aws_secret_access_key", "").strip()
    if not key or not secret:
        return None
    token = section.get("aws_session_token", "").strip() or None
    return Credentials(key, secret, token)


def _from_ini(path: Path, sections: list[str], notes: list[str], label: str) -> Credentials | None:
    if not path.is_file():
        notes.append(f"{label} {path} (no such file)")
        return None
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"{label} {path} cannot be read: {exc}") from exc
    section = _profile_section(parser, sections)
    if not section:
        notes.append(f"{label} {path} (no section {sections[0]!r})")
        return None
    creds = _keys_from(section)
    if creds is None:
        notes.append(f"{label} {path} (section {sections[0]!r} has no key pair)")
    return creds


class InstanceRoleSource:
    """EC2 instance-role credentials over IMDSv2, refreshed before they expire.

    Thread-safe: concurrent uploads share one source, and only one of them
    fetches when a refresh is due. If a refresh fails while the old
    credentials are still valid, the old ones are used and the refresh is
    tried again on the next call.
    """

    def __init__(
        self,
        endpoint: str = DEFAULT_IMDS_ENDPOINT,
        *,
        session: requests.Session | None = None,
        clock: Clock = _utcnow,
        timeout: float = IMDS_TIMEOUT_SECONDS,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._session = session or requests.Session()
        self._clock = clock
        self._timeout = timeout
        self._lock = threading.Lock()
        self._current: Credentials | None = None

    def _fetch(self) -> Credentials:
        token = self._session.put(
            f"{self.endpoint}/latest/api/token",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": str(IMDS_TOKEN_TTL_SECONDS)},
            timeout=self._timeout,
        )
        token.raise_for_status()
        headers = {"X-aws-ec2-metadata-token": token.text}
        base = f"{self.endpoint}/latest/meta-data/iam/security-credentials/"
        roles = self._session.get(base, headers=headers, timeout=self._timeout)
        roles.raise_for_status()
        role = roles.text.strip().splitlines()[0] if roles.text.strip() else ""
        if not role:
            raise CredentialsError(f"the instance metadata at {self.endpoint} lists no IAM role")
        answer = self._session.get(base + role, headers=headers, timeout=self._timeout)
        answer.raise_for_status()
        doc = json.loads(answer.text)
        if doc.get("Code", "Success") != "Success":
            raise CredentialsError(
                f"the instance metadata at {self.endpoint} refused role {role!r}: {doc.get('Code')}"
            )
        expiry = dt.datetime.fromisoformat(doc["Expiration"].replace("Z", "+00:00"))
        return Credentials(doc["AccessKeyId"], doc["SecretAccessKey"], doc.get("Token"), expiry)

    def _due(self) -> bool:
        current = self._current
        if current is None:
            return True
        return current.expiry is not None and current.expiry - self._clock() <= REFRESH_MARGIN

    def __call__(self) -> Credentials:
        if not self._due():
            assert self._current is not None
            return self._current
        with self._lock:
            if not self._due():
                assert self._current is not None
                return self._current
            try:
                self._current = self._fetch()
            except (requests.RequestException, ValueError, KeyError) as exc:
                still_valid = (
                    self._current is not None
                    and self._current.expiry is not None
                    and self._current.expiry > self._clock()
                )
                if not still_valid:
                    raise CredentialsError(
                        f"instance-role credentials from {self.endpoint} could not be "
                        f"fetched: {type(exc).__name__}: {exc}"
                    ) from exc
            assert self._current is not None
            return self._current


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def resolve_credentials(
    credentials: Credentials | tuple[str, str] | tuple[str, str, str] | None = None,
    *,
    profile: str | None = None,
    environ: Mapping[str, str] | None = None,
    imds_endpoint: str | None = None,
) -> CredentialSource:
    """Find credentials as described in the module docstring.

    ``profile`` (or ``AWS_PROFILE``) names a profile; when it is given, the
    environment's keys are skipped, as the AWS CLI does. Raises
    ``CredentialsError`` listing each place looked at.
    """
    env = os.environ if environ is None else environ
    if credentials is not None:
        if isinstance(credentials, tuple):
            credentials = Credentials(*credentials)
        if not credentials.access_key or not credentials.secret_key:
            raise CredentialsError("explicit credentials need both an access key and a secret key")
        return StaticSource(credentials, "explicit arguments")

    notes: list[str] = ["explicit arguments (none given)"]
    profile_name = profile or env.get("AWS_PROFILE") or None
    if profile_name is None:
        key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
        if key and secret:
            token = env.get("AWS_SESSION_TOKEN") or None
            return StaticSource(Credentials(key, secret, token), "environment")
        notes.append("environment variables AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (not set)")
    name = profile_name or "default"

    home = Path(env.get("HOME") or Path.home())
    shared = Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or home / ".aws" / "credentials")
    found = _from_ini(shared, [name], notes, "shared credentials file")
    if found:
        return StaticSource(found, f"{shared} [{name}]")
    config = Path(env.get("AWS_CONFIG_FILE") or home / ".aws" / "config")
    sections = [name] if name == "default" else [f"profile {name}", name]
    found = _from_ini(config, sections, notes, "config file")
    if found:
        return StaticSource(found, f"{config} [{sections[0]}]")

    if profile_name is not None:
        raise CredentialsError(
            f"profile {profile_name!r} has no credentials. Looked in: " + "; ".join(notes)
        )
    if _truthy(env.get("AWS_EC2_METADATA_DISABLED")):
        notes.append("EC2 instance metadata (disabled by AWS_EC2_METADATA_DISABLED)")
    else:
        endpoint = imds_endpoint or env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or (
            DEFAULT_IMDS_ENDPOINT
        )
        source = InstanceRoleSource(endpoint)
        try:
            source()
            return source
        except CredentialsError as exc:
            notes.append(f"EC2 instance metadata at {endpoint} ({exc.message})")
    raise CredentialsError("No AWS credentials found. Looked in: " + "; ".join(notes))
