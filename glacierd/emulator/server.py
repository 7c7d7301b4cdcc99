"""The emulator's HTTP face: routing, SigV4 verification, streamed bodies,
Glacier's wire format, fault injection and the ``/__`` test endpoints.

Every API request is authenticated the way Glacier does it: the signature is
recomputed from the request as received (the payload hash is the
``x-amz-content-sha256`` header, checked against the body once it has been
read), the credential scope must name this region and ``glacier``, and the
clock skew must be within 15 minutes. Upload bodies are streamed to disk and
hashed on the way, so a 4 GiB part needs no more than a buffer of memory.

Test endpoints, served only when the emulator is started for tests
(``test_endpoints``; ``--test-endpoints``), and then only to a request that
carries ``Authorization: Bearer SECRET_KEY`` of one of its credentials: the
embedded ``glacierd run --local`` serves none, so another local user can
neither read its counters nor inject faults into a user's backups.

* ``GET /__stats`` — counters as JSON; ``POST /__stats/reset`` zeroes them;
* ``POST /__faults`` — ``{"rate", "kinds", "corrupt_rate", "seed"}``;
* ``POST /__uploads/expire`` — ``{"upload_id"}``: make an upload vanish as
  after 24 h of inactivity;
* ``POST /__s3/restore/expire`` — ``{"bucket", "key"}``: a restored copy lapses.

S3 requests (path-style ``/{bucket}/{key}``, signed for service ``s3``) are
answered by ``s3server.S3Request``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from glacierd.glacier import sigv4, treehash

from .faults import BEFORE, FaultPlan, deliver
from .s3server import S3Request
from .s3state import S3State
from .store import ApiError, GlacierState, ReceivedBody, invalid, missing, new_id

log = logging.getLogger("glacierd.emulator")

API_VERSION = "2012-06-01"
MAX_SKEW_SECONDS = 15 * 60
MAX_JSON_BODY = 1024 * 1024
_BLOCK = 1024 * 1024
UPLOAD_OPERATIONS = frozenset({"UploadArchive", "UploadMultipartPart"})


@dataclass(frozen=True)
class Secret:
    secret_key: str
    token: str | None = None


class Stats:
    """What the emulator received and did, for tests to assert on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with getattr(self, "_lock", threading.Lock()):
            self.requests: Counter[str] = Counter()
            self.faults: Counter[str] = Counter()
            self.errors: Counter[str] = Counter()
            self.totals: Counter[str] = Counter()

    def add(self, group: str, key: str, amount: int = 1) -> None:
        with self._lock:
            getattr(self, group)[key] += amount

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": dict(self.requests),
                "faults": dict(self.faults),
                "errors": dict(self.errors),
                "part_bytes_received": self.totals["part_bytes_received"],
                "archive_bytes_received": self.totals["archive_bytes_received"],
                "archives_created": self.totals["archives_created"],
                "uploads_completed": self.totals["uploads_completed"],
                "job_output_bytes_sent": self.totals["job_output_bytes_sent"],
                "retrieved_bytes": self.totals["retrieved_bytes"],
            }


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        state: GlacierState,
        credentials: dict[str, Secret],
        faults: FaultPlan,
        clock: Callable[[], float],
        test_endpoints: bool = False,
    ) -> None:
        super().__init__(address, GlacierRequestHandler)
        self.test_endpoints = test_endpoints
        self.state = state
        self.s3 = S3State(state.root, region=state.region, job_delay=state.job_delay,
                          clock=clock)
        self.credentials = credentials
        self.faults = faults
        self.stats = Stats()
        self.clock = clock


    def admit(self, operation: str) -> str | None:
        """Count a request and draw its fault (None: none), for both faces."""
        self.stats.add("requests", operation)
        fault = self.faults.draw()
        if fault is not None:
            self.stats.add("faults", fault)
        return fault


class _Drop(Exception):
    """Close the connection without an answer."""


def route(method: str, parts: list[str]) -> tuple[str, dict[str, str]]:
    """Map a method and path segments (after the account id) to an operation."""
    n = len(parts)
    if n == 1 and parts[0] == "vaults" and method == "GET":
        return "ListVaults", {}
    if n >= 2 and parts[0] == "vaults":
        v = {"vault": parts[1]}
        if n == 2:
            ops = {"PUT": "CreateVault", "GET": "DescribeVault", "DELETE": "DeleteVault"}
            if method in ops:
                return ops[method], v
        elif parts[2] == "archives":
            if n == 3 and method == "POST":
                return "UploadArchive", v
            if n == 4 and method == "DELETE":
                return "DeleteArchive", {**v, "archive_id": parts[3]}
        elif parts[2] == "multipart-uploads":
            if n == 3:
                ops = {"POST": "InitiateMultipartUpload", "GET": "ListMultipartUploads"}
                if method in ops:
                    return ops[method], v
            elif n == 4:
                ops = {"PUT": "UploadMultipartPart", "POST": "CompleteMultipartUpload",
                       "DELETE": "AbortMultipartUpload", "GET": "ListParts"}
                if method in ops:
                    return ops[method], {**v, "upload_id": parts[3]}
        elif parts[2] == "jobs":
            if n == 3:
                ops = {"POST": "InitiateJob", "GET": "ListJobs"}
                if method in ops:
                    return ops[method], v
            elif n == 4 and method == "GET":
                return "DescribeJob", {**v, "job_id": parts[3]}
            elif n == 5 and parts[4] == "output" and method == "GET":
                return "GetJobOutput", {**v, "job_id": parts[3]}
        elif parts[2] == "notification-configuration" and n == 3:
            ops = {"PUT": "SetVaultNotifications", "GET": "GetVaultNotifications",
                   "DELETE": "DeleteVaultNotifications"}
            if method in ops:
                return ops[method], v
        elif parts[2] == "tags" and n == 3:
            if method == "GET":
                return "ListTagsForVault", v
            if method == "POST":
                return "VaultTags", v
    raise ApiError(404, "ResourceNotFoundException",
                   f"No such operation: {method} /{'/'.join(parts)}")


class GlacierRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "glacierd-emulator"
    timeout = 120
    disable_nagle_algorithm = True
    """An answer's headers and body are two writes: with Nagle's algorithm the body
    waited for the client's delayed ACK, 40 ms on every answer with a body."""
    server: EmulatorHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    # --- plumbing ----------------------------------------------------------------

    def do_GET(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def _is_s3(self, path: str) -> bool:
        """S3 or the vault API: the signature's scope says; unsigned, the path does."""
        auth = self.headers.get("Authorization", "")
        if "/s3/aws4_request" in auth:
            return True
        if "/glacier/aws4_request" in auth:
            return False
        first = path.split("/")[1] if path.count("/") >= 1 else ""
        return first not in ("-", self.server.state.account_id)

    def _content_length(self) -> int:
        raw = self.headers.get("Content-Length")
        if raw is None:
            if self.headers.get("Transfer-Encoding"):
                raise ApiError(411, "MissingContentLength",
                               "Content-Length is required (chunked bodies are not accepted)")
            return 0
        if not raw.strip().isdigit():
            raise invalid(f"Invalid Content-Length: {raw!r}")
        return int(raw)

    def _drain(self, length: int) -> None:
        """Read and discard a body so the connection stays usable (or close it)."""
        if length > 64 * _BLOCK:
            self.close_connection = True
            return
        while length > 0:
            chunk = self.rfile.read(min(_BLOCK, length))
            if not chunk:
                self.close_connection = True
                return
            length -= len(chunk)

    def _send(self, status: int, request_id: str, headers: dict[str, str] | None = None,
              body: bytes = b"", *, content_type: str | None = None) -> None:
        self.send_response(status)
        self.send_header("x-amzn-RequestId", request_id)
        if content_type:
            self.send_header("Content-Type", content_type)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _send_json(self, status: int, request_id: str, doc: Any,
                   headers: dict[str, str] | None = None) -> None:
        self._send(status, request_id, headers, json.dumps(doc).encode("utf-8"),
                   content_type="application/json")

    def _send_error(self, err: ApiError, request_id: str) -> None:
        self.server.stats.add("errors", err.code)
        self._send_json(err.status, request_id,
                        {"code": err.code, "message": err.message, "type": err.type})

    # --- the request ---------------------------------------------------------------

    def _handle(self) -> None:
        url = urlsplit(self.path)
        if url.path.startswith("/__") and self.server.test_endpoints:
            self._control(url.path)
            return
        if self._is_s3(url.path):
            S3Request(self, self.server.s3).handle()
            return
        request_id = new_id(52)
        length = 0
        try:
            length = self._content_length()
            segments = [unquote(s) for s in url.path.split("/")[1:]]
            if not segments or segments[0] not in ("-", self.server.state.account_id):
                raise ApiError(403, "AccessDeniedException",
                               f"Account {segments[0] if segments else ''!r} does not match "
                               "the credentials")
            operation, params = route(self.command, segments[1:])
        except ApiError as err:
            self._drain(length)
            self._send_error(err, request_id)
            return
        fault = self.server.admit(operation)
        if fault in BEFORE:
            self._drain(length)
            self._before_fault(fault, request_id)
            return
        body: ReceivedBody | None = None
        try:
            json_body = self._authenticate_and_read(operation, url.path, url.query, length)
            if operation in UPLOAD_OPERATIONS:
                body = self._receive_upload(operation, params, length)
            query = dict(parse_qsl(url.query, keep_blank_values=True))
            self._dispatch(operation, params, query, json_body, body, request_id, fault)
        except ApiError as err:
            self._send_error(err, request_id)
        except _Drop:
            self.close_connection = True
        except (ConnectionError, TimeoutError) as exc:
            log.debug("%s: client went away: %s", operation, exc)
            self.close_connection = True
        finally:
            if body is not None:
                body.path.unlink(missing_ok=True)

    def _before_fault(self, fault: str | None, request_id: str) -> None:
        if fault == "drop-before":
            self.close_connection = True
            return
        if fault == "throttle":
            err = ApiError(400, "ThrottlingException", "Rate exceeded (injected fault)")
        elif fault == "timeout":
            err = ApiError(408, "RequestTimeoutException", "Request timed out (injected fault)")
        elif fault == "503":
            err = ApiError(503, "ServiceUnavailableException",
                           "Service unavailable (injected fault)", "Server")
        else:
            err = ApiError(500, "ServiceUnavailableException",
                           "Internal failure (injected fault)", "Server")
        self._send_error(err, request_id)

    def _authenticate_and_read(self, operation: str, path: str, query: str,
                               length: int) -> Any:
        """Check version and signature; read and return a small JSON body, if any."""
        version = self.headers.get("x-amz-glacier-version")
        payload_header = self.headers.get("x-amz-content-sha256")
        raw: bytes | None = None
        if operation not in UPLOAD_OPERATIONS:
            if length > MAX_JSON_BODY:
                self._drain(length)
                raise invalid(f"The request body is too large for {operation}")
            raw = self.rfile.read(length) if length else b""
            if len(raw) != length:
                raise _Drop()
        if version is None:
            raise missing("Required header x-amz-glacier-version is missing")
        if version != API_VERSION:
            raise invalid(f"Invalid x-amz-glacier-version: {version!r}; expected {API_VERSION}")
        if operation in UPLOAD_OPERATIONS and payload_header is None:
            self._drain(length)
            raise missing("Required header x-amz-content-sha256 is missing")
        payload_hash = payload_header or hashlib.sha256(raw or b"").hexdigest()
        try:
            self._verify_signature(path, query, payload_hash)
        except ApiError:
            if raw is None:
                self._drain(length)
            raise
        if raw is not None:
            if payload_header and payload_header != hashlib.sha256(raw).hexdigest():
                raise invalid("x-amz-content-sha256 does not match the body")
            if raw:
                try:
                    return json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, ValueError):
                    raise invalid(f"The body of {operation} is not valid JSON") from None
        return None

    def _verify_signature(self, path: str, query: str, payload_hash: str) -> None:
        header = self.headers.get("Authorization")
        if not header:
            raise ApiError(403, "MissingAuthenticationTokenException",
                           "Missing Authentication Token")
        try:
            auth = sigv4.parse_authorization(header)
        except ValueError as exc:
            raise ApiError(403, "IncompleteSignatureException", str(exc)) from None
        secret = self.server.credentials.get(auth.access_key)
        if secret is None:
            raise ApiError(403, "UnrecognizedClientException",
                           "The security token included in the request is invalid.")
        if auth.service != "glacier":
            raise ApiError(403, "InvalidSignatureException",
                           f"Credential should be scoped to correct service: 'glacier', not "
                           f"{auth.service!r}.")
        if auth.region != self.server.state.region:
            raise ApiError(403, "InvalidSignatureException",
                           f"Credential should be scoped to a valid region, not "
                           f"'{auth.region}'. This endpoint is {self.server.state.region}.")
        for required in ("host", "x-amz-date"):
            if required not in auth.signed_headers:
                raise ApiError(403, "IncompleteSignatureException",
                               f"The {required} header must be signed")
        amz_date = self.headers.get("x-amz-date", "")
        try:
            when = dt.datetime.strptime(amz_date, sigv4.AMZ_DATE_FORMAT).replace(tzinfo=dt.UTC)
        except ValueError:
            raise ApiError(403, "IncompleteSignatureException",
                           f"Invalid x-amz-date: {amz_date!r}") from None
        skew = abs(when.timestamp() - self.server.clock())
        if skew > MAX_SKEW_SECONDS:
            raise ApiError(403, "InvalidSignatureException",
                           f"Signature expired: {amz_date} is more than 15 minutes from the "
                           "server's time")
        if amz_date[:8] != auth.date_stamp:
            raise ApiError(403, "InvalidSignatureException",
                           "The credential scope's date does not match x-amz-date")
        if secret.token is not None and (
            self.headers.get("x-amz-security-token") != secret.token
            or "x-amz-security-token" not in auth.signed_headers
        ):
            raise ApiError(403, "UnrecognizedClientException",
                           "The security token included in the request is invalid.")
        signed: dict[str, list[str]] = {}
        for name in auth.signed_headers:
            values = self.headers.get_all(name)
            if not values:
                raise ApiError(403, "InvalidSignatureException",
                               f"Signed header {name!r} is not in the request")
            signed[name] = [str(v) for v in values]
        target = path + (f"?{query}" if query else "")
        canonical = sigv4.canonical_request(self.command, target, signed, payload_hash)
        scope = sigv4.credential_scope(auth.date_stamp, auth.region, auth.service)
        key = sigv4.signing_key(secret.secret_key, auth.date_stamp, auth.region, auth.service)
        expected = sigv4.signature(key, sigv4.string_to_sign(amz_date, scope, canonical))
        if not hmac.compare_digest(expected, auth.signature):
            raise ApiError(403, "InvalidSignatureException",
                           "The request signature we calculated does not match the signature "
                           "you provided. Check your AWS Secret Access Key and signing method.")

    def _receive_upload(self, operation: str, params: dict[str, str],
                        length: int) -> ReceivedBody:
        """Validate an upload's headers, then stream its body to disk, hashing it."""
        state = self.server.state
        if operation == "UploadMultipartPart":
            try:
                state.check_part_request(params["vault"], params["upload_id"],
                                         self.headers.get("Content-Range"), length)
            except ApiError:
                self._drain(length)
                raise
        fd, name = tempfile.mkstemp(dir=state.tmp_dir(), suffix=".body")
        hasher = treehash.TreeHasher(linear=True, keep_leaves=True)
        received = 0
        buffer = memoryview(bytearray(_BLOCK))  # reused: no allocation per read
        try:
            with os.fdopen(fd, "wb") as out:
                while received < length:
                    got = self.rfile.readinto(buffer[: min(_BLOCK, length - received)])
                    if not got:
                        break
                    chunk = buffer[:got]
                    out.write(chunk)
                    hasher.update(chunk)
                    received += got
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        counter = "part_bytes_received" if operation == "UploadMultipartPart" else (
            "archive_bytes_received"
        )
        self.server.stats.add("totals", counter, received)
        if received != length:
            Path(name).unlink(missing_ok=True)
            raise _Drop()  # the client went away mid-body
        body = ReceivedBody(Path(name), length, hasher.linear_hexdigest(), hasher.hexdigest(),
                            hasher.leaf_digests())
        if body.sha256 != self.headers.get("x-amz-content-sha256"):
            raise invalid("x-amz-content-sha256 does not match the body")
        return body

    # --- operations ----------------------------------------------------------------

    def _dispatch(self, operation: str, p: dict[str, str], query: dict[str, str],
                  doc: Any, body: ReceivedBody | None, request_id: str,
                  fault: str | None) -> None:
        state = self.server.state
        stats = self.server.stats
        acct = state.account_id
        vault = p.get("vault", "")
        status, headers, answer = 204, {}, None  # type: int, dict[str, str], Any
        if operation == "ListVaults":
            status, answer = 200, state.list_vaults(query.get("marker"), query.get("limit"))
        elif operation == "CreateVault":
            state.create_vault(_valid_vault_name(vault))
            status, headers = 201, {"Location": f"/{acct}/vaults/{vault}"}
        elif operation == "DescribeVault":
            status, answer = 200, state.describe_vault(vault)
        elif operation == "DeleteVault":
            state.delete_vault(vault)
        elif operation == "UploadArchive":
            assert body is not None
            description = self.headers.get("x-amz-archive-description", "")
            _check_description(description)
            archive_id = state.upload_archive(vault, body, self.headers.get(
                "x-amz-sha256-tree-hash"), description)
            stats.add("totals", "archives_created")
            status, headers = 201, {
                "Location": f"/{acct}/vaults/{vault}/archives/{archive_id}",
                "x-amz-archive-id": archive_id,
                "x-amz-sha256-tree-hash": body.tree_hash,
            }
        elif operation == "DeleteArchive":
            state.delete_archive(vault, p["archive_id"])
        elif operation == "InitiateMultipartUpload":
            description = self.headers.get("x-amz-archive-description", "")
            _check_description(description)
            upload_id = state.initiate_upload(vault, self.headers.get("x-amz-part-size"),
                                              description)
            status, headers = 201, {
                "Location": f"/{acct}/vaults/{vault}/multipart-uploads/{upload_id}",
                "x-amz-multipart-upload-id": upload_id,
            }
        elif operation == "UploadMultipartPart":
            assert body is not None
            first, _ = state.check_part_request(vault, p["upload_id"],
                                                self.headers.get("Content-Range"), body.length)
            tree = state.upload_part(vault, p["upload_id"], first, body,
                                     self.headers.get("x-amz-sha256-tree-hash"))
            headers = {"x-amz-sha256-tree-hash": tree}
        elif operation == "ListParts":
            status, answer = 200, state.list_parts(vault, p["upload_id"], query.get("marker"),
                                                   query.get("limit"))
        elif operation == "ListMultipartUploads":
            status, answer = 200, state.list_uploads(vault, query.get("marker"),
                                                     query.get("limit"))
        elif operation == "CompleteMultipartUpload":
            before = state.upload_is_completed(vault, p["upload_id"])
            tree_hash = self.headers.get("x-amz-sha256-tree-hash")
            archive_id = state.complete_upload(vault, p["upload_id"],
                                               self.headers.get("x-amz-archive-size"), tree_hash)
            if not before:
                stats.add("totals", "archives_created")
                stats.add("totals", "uploads_completed")
            status, headers = 201, {
                "Location": f"/{acct}/vaults/{vault}/archives/{archive_id}",
                "x-amz-archive-id": archive_id,
                "x-amz-sha256-tree-hash": tree_hash or "",
            }
        elif operation == "AbortMultipartUpload":
            state.abort_upload(vault, p["upload_id"])
        elif operation == "InitiateJob":
            job_id = state.initiate_job(vault, doc)
            retrieved = state.describe_job(vault, job_id).get("RetrievalByteRange")
            if retrieved:  # what a retrieval makes readable (and bills): its range
                first, last = (int(x) for x in str(retrieved).split("-"))
                self.server.stats.add("totals", "retrieved_bytes", last - first + 1)
            status, headers = 202, {
                "Location": f"/{acct}/vaults/{vault}/jobs/{job_id}",
                "x-amz-job-id": job_id,
            }
        elif operation == "ListJobs":
            status, answer = 200, state.list_jobs(vault, query)
        elif operation == "DescribeJob":
            status, answer = 200, state.describe_job(vault, p["job_id"])
        elif operation == "GetJobOutput":
            self._job_output(vault, p["job_id"], request_id, fault)
            return
        elif operation == "SetVaultNotifications":
            state.set_notifications(vault, doc)
        elif operation == "GetVaultNotifications":
            status, answer = 200, state.get_notifications(vault)
        elif operation == "DeleteVaultNotifications":
            state.delete_notifications(vault)
        elif operation == "ListTagsForVault":
            status, answer = 200, state.list_tags(vault)
        elif operation == "VaultTags":
            action = query.get("operation")
            if action == "add":
                state.add_tags(vault, doc)
            elif action == "remove":
                state.remove_tags(vault, doc)
            else:
                raise invalid(f"Invalid tags operation: {action!r}; expected add or remove")
        if fault == "drop-after":
            raise _Drop()
        if answer is None:
            if fault == "truncate":
                raise _Drop()
            self._send(status, request_id, headers)
            return
        payload = json.dumps(answer).encode("utf-8")
        if fault == "truncate":
            self._send_truncated(status, request_id, headers, payload, "application/json")
            return
        self._send(status, request_id, headers, payload, content_type="application/json")

    def _send_truncated(self, status: int, request_id: str, headers: dict[str, str],
                        payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("x-amzn-RequestId", request_id)
        self.send_header("Content-Type", content_type)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload[: len(payload) // 2])
        self.wfile.flush()
        raise _Drop()

    def _job_output(self, vault: str, job_id: str, request_id: str, fault: str | None) -> None:
        source = self.server.state.job_output(vault, job_id)
        total = source.length
        range_header = self.headers.get("Range")
        first, last = 0, total - 1
        status = 200
        if range_header:
            first, last = _parse_range(range_header, total)
            status = 206
        headers = {"Accept-Ranges": "bytes"}
        if status == 206:
            headers["Content-Range"] = f"bytes {first}-{last}/{total}"
        tree = source.range_tree_hash(first, last) if total else None
        if tree:
            headers["x-amz-sha256-tree-hash"] = tree
        if source.archive_description is not None:
            headers["x-amz-archive-description"] = source.archive_description
        if fault == "drop-after":
            raise _Drop()
        length = last - first + 1 if total else 0
        self.send_response(status)
        self.send_header("x-amzn-RequestId", request_id)
        self.send_header("Content-Type", source.content_type)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        sent = deliver(self.wfile.write, source.chunks(first, last) if length else iter(()),
                       length, fault, self.server.faults,
                       lambda kind: self.server.stats.add("faults", kind),
                       lambda: source.send(self.connection, first, last))
        self.server.stats.add("totals", "job_output_bytes_sent", sent)
        if fault == "truncate":
            self.wfile.flush()
            raise _Drop()

    # --- test endpoints ----------------------------------------------------------

    def _control(self, path: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        request_id = new_id(52)
        try:
            given = self.headers.get("Authorization", "").removeprefix("Bearer ").encode()
            if not any(hmac.compare_digest(given, secret.secret_key.encode())
                       for secret in self.server.credentials.values()):
                raise ApiError(403, "AccessDeniedException",
                               "test endpoints need Authorization: Bearer SECRET_KEY")
            doc = json.loads(raw) if raw else {}
            if path == "/__stats" and self.command == "GET":
                self._send_json(200, request_id, self.server.stats.snapshot())
            elif path == "/__stats/reset" and self.command == "POST":
                self.server.stats.reset()
                self._send(204, request_id)
            elif path == "/__faults" and self.command == "POST":
                self.server.faults.configure(
                    float(doc.get("rate", 0.0)),
                    tuple(doc.get("kinds") or ()),
                    float(doc.get("corrupt_rate", 0.0)),
                    doc.get("seed"),
                )
                self._send(204, request_id)
            elif path == "/__s3/restore/expire" and self.command == "POST":
                self.server.s3.expire_restore(str(doc["bucket"]), str(doc["key"]))
                self._send(204, request_id)
            elif path == "/__jobs/expire" and self.command == "POST":
                self.server.state.expire_job(str(doc["job_id"]))
                self._send(204, request_id)
            elif path == "/__uploads/expire" and self.command == "POST":
                self.server.state.expire_upload(str(doc["upload_id"]))
                self._send(204, request_id)
            else:
                raise ApiError(404, "ResourceNotFoundException", f"no test endpoint {path}")
        except ApiError as err:
            self._send_error(err, request_id)
        except (ValueError, KeyError, TypeError) as exc:
            self._send_error(invalid(f"bad test request: {exc}"), request_id)


def _parse_range(value: str, total: int) -> tuple[int, int]:
    unit, _, spec = value.strip().partition("=")
    first_s, sep, last_s = spec.partition("-")
    try:
        if unit != "bytes" or not sep:
            raise ValueError
        first = int(first_s)
        last = int(last_s) if last_s.strip() else total - 1
    except ValueError:
        raise invalid(f"Invalid Range header: {value!r}; expected bytes=FIRST-LAST") from None
    if first < 0 or last < first or first >= total:
        raise invalid(f"Invalid Range {value!r} for output of {total} bytes")
    return first, min(last, total - 1)


def _valid_vault_name(name: str) -> str:
    ok = 1 <= len(name) <= 255 and all(c.isascii() and (c.isalnum() or c in "_-.") for c in name)
    if not ok:
        raise invalid(f"Invalid vault name: {name!r}")
    return name


def _check_description(description: str) -> None:
    if len(description) > 1024 or any(not 0x20 <= ord(c) <= 0x7E for c in description):
        raise invalid("Invalid archive description: at most 1024 printable ASCII characters")
