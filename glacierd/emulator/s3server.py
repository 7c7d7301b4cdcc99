"""The emulator's S3 face: path-style ``/{bucket}/{key}`` on the same server as
the vault API, chosen by the request's SigV4 scope (service ``s3``).

It answers what real clients send — boto3 and s3transfer, the aws-cli,
rclone — and refuses what S3 refuses, with S3's XML errors:

* SigV4 with service ``s3``: the canonical URI is the path as sent, the query
  re-encoded strictly; ``x-amz-content-sha256`` is required, either the body's
  hex SHA-256 (checked: ``XAmzContentSHA256Mismatch``) or ``UNSIGNED-PAYLOAD``;
  an unknown key is ``InvalidAccessKeyId``, a bad signature
  ``SignatureDoesNotMatch``, a skewed clock ``RequestTimeTooSkewed``;
* every ``x-amz-checksum-*`` and ``Content-MD5`` is checked (``BadDigest``);
* the rest (parts, conditional writes, restores) is ``s3state.S3State``'s.

Bodies are streamed to disk and hashed on the way, like the vault side's.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.utils
import hmac
import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit
from xml.sax.saxutils import escape

from glacierd.glacier import sigv4

from .faults import BEFORE, deliver
from .s3state import CHECKSUMS, BodyHasher, S3Body, S3Error, S3State, bad_request
from .store import new_id

if TYPE_CHECKING:
    from .server import GlacierRequestHandler

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
MAX_XML_BODY = 1024 * 1024
_BLOCK = 1024 * 1024
UNSIGNED = "UNSIGNED-PAYLOAD"


class _Drop(Exception):
    """Close the connection without an answer."""


def _xml(root: str, body: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{NS}">{body}</{root}>'
            ).encode()


def _el(name: str, value: object) -> str:
    return f"<{name}>{escape(str(value))}</{name}>"


def _http_date(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _strict_query(query: str) -> str:
    """The canonical query as AWS computes it: names and values decoded, then
    encoded with only unreserved characters left as they are, sorted."""
    pairs = [(quote(unquote(k), safe="-_.~"), quote(unquote(v), safe="-_.~"))
             for k, _, v in (p.partition("=") for p in query.split("&") if p)]
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class S3Request:
    """One S3 request on the emulator's handler."""

    def __init__(self, handler: GlacierRequestHandler, state: S3State) -> None:
        self.h = handler
        self.state = state
        self.request_id = new_id(16).upper()
        url = urlsplit(handler.path)
        self.raw_path = url.path
        self.raw_query = url.query
        self.query = dict(parse_qsl(url.query, keep_blank_values=True))
        bucket, _, key = url.path[1:].partition("/")
        self.bucket = unquote(bucket)
        self.key = unquote(key, errors="surrogateescape")
        self.method = handler.command
        self.body: S3Body | None = None

    # --- answers ---
    def send(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"",
             content_type: str | None = None) -> None:
        h = self.h
        h.send_response(status)
        h.send_header("x-amz-request-id", self.request_id)
        h.send_header("x-amz-id-2", self.request_id)
        if content_type:
            h.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if body and self.method != "HEAD":
            h.wfile.write(body)

    def send_error(self, err: S3Error) -> None:
        self.h.server.stats.add("errors", err.code)
        body = b"" if self.method == "HEAD" else _xml("Error", "".join([
            _el("Code", err.code), _el("Message", err.message),
            _el("Resource", err.resource or self.raw_path), _el("RequestId", self.request_id)]
        )).replace(f' xmlns="{NS}"'.encode(), b"")
        self.send(err.status, body=body, content_type="application/xml" if body else None)

    # --- the request ---
    def handle(self) -> None:
        h = self.h
        length = 0
        try:
            length = self._content_length()
            payload = self._authenticate()  # S3 asks who before it asks what
            operation = self._operation()
        except S3Error as err:
            self._drain(length)
            self.send_error(err)
            return
        fault = h.server.admit(operation)
        if fault in BEFORE:
            self._drain(length)
            self._before_fault(fault)
            return
        try:
            self._receive(length, payload)
            self._dispatch(operation, fault)
        except S3Error as err:
            self.send_error(err)
        except _Drop:
            h.close_connection = True
        except (ConnectionError, TimeoutError):
            h.close_connection = True
        finally:
            if self.body is not None:
                self.body.path.unlink(missing_ok=True)

    def _before_fault(self, fault: str | None) -> None:
        if fault == "drop-before":
            self.h.close_connection = True
            return
        if fault == "throttle":
            err = S3Error(503, "SlowDown", "Please reduce your request rate. (injected fault)")
        elif fault == "timeout":
            err = S3Error(400, "RequestTimeout", "Your socket connection to the server was "
                          "not read from or written to within the timeout period. (injected)")
        elif fault == "503":
            err = S3Error(503, "ServiceUnavailable", "Service unavailable (injected fault)")
        else:
            err = S3Error(500, "InternalError", "We encountered an internal error. Please try "
                          "again. (injected fault)")
        self.send_error(err)

    def _content_length(self) -> int:
        raw = self.h.headers.get("Content-Length")
        if raw is None:
            if self.h.headers.get("Transfer-Encoding"):
                raise S3Error(411, "MissingContentLength", "You must provide the "
                              "Content-Length HTTP header.")
            return 0
        if not raw.strip().isdigit():
            raise bad_request("InvalidArgument", f"Invalid Content-Length: {raw!r}")
        return int(raw)

    def _drain(self, length: int) -> None:
        if length > 64 * _BLOCK:
            self.h.close_connection = True
            return
        while length > 0:
            chunk = self.h.rfile.read(min(_BLOCK, length))
            if not chunk:
                self.h.close_connection = True
                return
            length -= len(chunk)

    def _operation(self) -> str:
        q, m = self.query, self.method
        if not self.bucket:
            if m == "GET":
                return "ListBuckets"
            raise S3Error(405, "MethodNotAllowed", "The specified method is not allowed "
                          "against this resource.")
        if not self.key:
            on_bucket: dict[tuple[str, str], str] = {
                ("PUT", ""): "CreateBucket", ("HEAD", ""): "HeadBucket",
                ("DELETE", ""): "DeleteBucket", ("GET", "uploads"): "ListMultipartUploads",
                ("GET", "location"): "GetBucketLocation",
                ("GET", "list-type"): "ListObjectsV2", ("GET", ""): "ListObjects"}
            flag = next((f for f in ("uploads", "location", "list-type") if f in q), "")
            if (m, flag) in on_bucket:
                return on_bucket[(m, flag)]
        else:
            if "uploadId" in q:
                table = {"PUT": "UploadPart", "GET": "ListParts",
                         "POST": "CompleteMultipartUpload", "DELETE": "AbortMultipartUpload"}
                if m in table:
                    return table[m]
            elif "uploads" in q and m == "POST":
                return "CreateMultipartUpload"
            elif "restore" in q and m == "POST":
                return "RestoreObject"
            elif "tagging" in q and m in ("PUT", "GET"):
                return "PutObjectTagging" if m == "PUT" else "GetObjectTagging"
            else:
                table = {"PUT": "PutObject", "GET": "GetObject", "HEAD": "HeadObject",
                         "DELETE": "DeleteObject"}
                if m in table:
                    if m == "PUT" and self.h.headers.get("x-amz-copy-source"):
                        raise S3Error(501, "NotImplemented", "CopyObject is not emulated")
                    return table[m]
        raise S3Error(501, "NotImplemented", f"{m} {self.raw_path}?{self.raw_query} is not "
                      "emulated")

    def _authenticate(self) -> str:
        """Check the signature; returns the declared payload hash."""
        h, server = self.h, self.h.server
        header = h.headers.get("Authorization")
        if not header:
            raise S3Error(403, "AccessDenied", "Access Denied")
        try:
            auth = sigv4.parse_authorization(header)
        except ValueError as exc:
            raise bad_request("AuthorizationHeaderMalformed", str(exc)) from None
        secret = server.credentials.get(auth.access_key)
        if secret is None:
            raise S3Error(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does "
                          "not exist in our records.")
        if auth.region != self.state.region:
            raise bad_request("AuthorizationHeaderMalformed", f"The authorization header is "
                              f"malformed; the region '{auth.region}' is wrong; expecting "
                              f"'{self.state.region}'")
        payload = h.headers.get("x-amz-content-sha256")
        if payload is None:
            raise bad_request("InvalidRequest", "Missing required header for this request: "
                              "x-amz-content-sha256")
        if payload.startswith("STREAMING-"):
            raise S3Error(501, "NotImplemented", "aws-chunked (streaming) payloads are not "
                          "emulated: send Content-Length and the payload's hash")
        if payload != UNSIGNED and (len(payload) != 64 or not all(
                c in "0123456789abcdef" for c in payload)):
            raise bad_request("InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
                              "or a valid sha256 value.")
        for required in ("host", "x-amz-date", "x-amz-content-sha256"):
            if required not in auth.signed_headers:
                raise S3Error(403, "AccessDenied", f"The {required} header must be signed")
        amz_date = h.headers.get("x-amz-date", "")
        try:
            when = dt.datetime.strptime(amz_date, sigv4.AMZ_DATE_FORMAT).replace(tzinfo=dt.UTC)
        except ValueError:
            raise S3Error(403, "AccessDenied", f"Invalid x-amz-date: {amz_date!r}") from None
        if abs(when.timestamp() - server.clock()) > 15 * 60:
            raise S3Error(403, "RequestTimeTooSkewed", "The difference between the request "
                          "time and the current time is too large.")
        if secret.token is not None and h.headers.get("x-amz-security-token") != secret.token:
            raise S3Error(403, "InvalidToken", "The provided token is malformed or otherwise "
                          "invalid.")
        signed: dict[str, list[str]] = {}
        for name in auth.signed_headers:
            values = h.headers.get_all(name)
            if not values:
                raise S3Error(403, "SignatureDoesNotMatch", f"Signed header {name!r} is not in "
                              "the request")
            signed[name] = [str(v) for v in values]
        key = sigv4.signing_key(secret.secret_key, auth.date_stamp, auth.region, auth.service)
        scope = sigv4.credential_scope(auth.date_stamp, auth.region, auth.service)
        for query in dict.fromkeys([_strict_query(self.raw_query), self.raw_query]):
            canonical = sigv4.canonical_request(
                self.method, self.raw_path + (f"?{query}" if query else ""), signed, payload,
                service="s3")
            expected = sigv4.signature(key, sigv4.string_to_sign(amz_date, scope, canonical))
            if hmac.compare_digest(expected, auth.signature):
                return payload
        raise S3Error(403, "SignatureDoesNotMatch", "The request signature we calculated does "
                      "not match the signature you provided. Check your key and signing "
                      "method.")

    def _receive(self, length: int, payload: str) -> None:
        """Stream the body to disk, checking every digest the request declares."""
        h = self.h
        wanted = {name for name in CHECKSUMS if h.headers.get(f"x-amz-checksum-{name}")}
        if "crc64nvme" in wanted:
            raise S3Error(501, "NotImplemented", "CRC64NVME checksums are not emulated")
        hasher = BodyHasher(wanted)
        fd, name = tempfile.mkstemp(dir=self.state.tmp_dir(), suffix=".s3body")
        received = 0
        buffer = memoryview(bytearray(_BLOCK))
        try:
            with os.fdopen(fd, "wb") as out:
                while received < length:
                    got = h.rfile.readinto(buffer[: min(_BLOCK, length - received)])
                    if not got:
                        break
                    out.write(buffer[:got])
                    hasher.update(buffer[:got])
                    received += got
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        if received != length:
            Path(name).unlink(missing_ok=True)
            raise _Drop()
        checksums = hasher.checksums()
        self.body = S3Body(Path(name), length, hasher.sha256.hexdigest(),
                           hasher.md5.hexdigest(), {k: checksums[k] for k in wanted})
        if payload != UNSIGNED and payload != self.body.sha256_hex:
            raise bad_request("XAmzContentSHA256Mismatch", "The provided "
                              "'x-amz-content-sha256' header does not match what was computed.")
        md5 = h.headers.get("Content-MD5")
        if md5 is not None:
            try:
                given = base64.b64decode(md5, validate=True)
            except (binascii.Error, ValueError):
                raise bad_request("InvalidDigest", "The Content-MD5 you specified was "
                                  "invalid.") from None
            if given.hex() != self.body.md5_hex:
                raise bad_request("BadDigest", "The Content-MD5 you specified did not match "
                                  "what we received.")
        for algorithm in wanted:
            if h.headers.get(f"x-amz-checksum-{algorithm}") != checksums[algorithm]:
                raise bad_request("BadDigest", f"The {algorithm.upper()} you specified did not "
                                  "match the calculated checksum.")

    def _small_body(self) -> bytes:
        if self.body is None or self.body.length == 0:
            return b""
        if self.body.length > MAX_XML_BODY:
            raise bad_request("MaxMessageLengthExceeded", "Your request was too big.")
        return self.body.path.read_bytes()

    def _parse(self) -> ET.Element:
        try:
            return ET.fromstring(self._small_body())
        except ET.ParseError:
            raise bad_request("MalformedXML", "The XML you provided was not well-formed or did "
                              "not validate against our published schema") from None

    def _metadata(self) -> dict[str, str]:
        out = {}
        total = 0
        for name, value in self.h.headers.items():
            if name.lower().startswith("x-amz-meta-"):
                out[name.lower()[len("x-amz-meta-"):]] = value
                total += len(name) - len("x-amz-meta-") + len(value)
        if total > 2048:
            raise bad_request("MetadataTooLarge", "Your metadata headers exceed the maximum "
                              "allowed metadata size.")
        return out

    # --- operations ---
    def _dispatch(self, operation: str, fault: str | None) -> None:
        state, q, hdr = self.state, self.query, self.h.headers
        b, k = self.bucket, self.key
        stats = self.h.server.stats
        status, headers, body = 200, {}, b""  # type: int, dict[str, str], bytes
        if operation == "ListBuckets":
            body = _xml("ListAllMyBucketsResult", "<Owner><ID>emulator</ID></Owner><Buckets>" +
                        "".join(f"<Bucket>{_el('Name', x['Name'])}"
                                f"{_el('CreationDate', x['CreationDate'])}</Bucket>"
                                for x in state.list_buckets()) + "</Buckets>")
        elif operation == "CreateBucket":
            if self._small_body():
                location = self._parse().find(f".//{{{NS}}}LocationConstraint")
                if location is None:
                    location = self._parse().find(".//LocationConstraint")
                if location is not None and (location.text or "") != state.region:
                    raise bad_request("IllegalLocationConstraintException", "The "
                                      f"{location.text!r} location constraint is incompatible "
                                      "with the region this request was sent to.")
            state.create_bucket(b)
            headers = {"Location": f"/{b}"}
        elif operation == "HeadBucket":
            state.head_bucket(b)
            headers = {"x-amz-bucket-region": state.region}
        elif operation == "GetBucketLocation":
            state.head_bucket(b)
            region = "" if state.region == "us-east-1" else state.region
            body = _xml("LocationConstraint", escape(region))
        elif operation == "DeleteBucket":
            state.delete_bucket(b)
            status = 204
        elif operation in ("ListObjectsV2", "ListObjects"):
            body = self._list_objects(operation == "ListObjectsV2")
        elif operation == "PutObject":
            assert self.body is not None
            meta = state.put_object(b, k, self.body, storage_class=_class(hdr),
                                    metadata=self._metadata(),
                                    content_type=hdr.get("Content-Type"),
                                    if_none_match=_if_none_match(hdr))
            stats.add("totals", "archive_bytes_received", self.body.length)
            stats.add("totals", "archives_created")
            headers = {"ETag": meta["ETag"], **_checksum_headers(meta["Checksum"])}
        elif operation in ("GetObject", "HeadObject"):
            self._get(operation == "GetObject", fault)
            return
        elif operation == "DeleteObject":
            state.delete_object(b, k)
            status = 204
        elif operation == "CreateMultipartUpload":
            algorithm = hdr.get("x-amz-checksum-algorithm")
            upload_id = state.create_upload(
                b, k, storage_class=_class(hdr), metadata=self._metadata(),
                algorithm=algorithm.lower() if algorithm else None,
                checksum_type=hdr.get("x-amz-checksum-type"),
                content_type=hdr.get("Content-Type"))
            if algorithm:
                headers = {"x-amz-checksum-algorithm": algorithm.upper()}
            body = _xml("InitiateMultipartUploadResult", _el("Bucket", b) + _el("Key", k) +
                        _el("UploadId", upload_id))
        elif operation == "UploadPart":
            assert self.body is not None
            part = state.upload_part(b, k, q["uploadId"], q.get("partNumber", ""), self.body)
            stats.add("totals", "part_bytes_received", self.body.length)
            headers = {"ETag": part["ETag"], **_checksum_headers(part["Checksums"])}
        elif operation == "ListParts":
            body = self._list_parts()
        elif operation == "CompleteMultipartUpload":
            body = self._complete()
        elif operation == "AbortMultipartUpload":
            state.abort_upload(b, k, q["uploadId"])
            status = 204
        elif operation == "ListMultipartUploads":
            body = self._list_uploads()
        elif operation == "PutObjectTagging":
            root = self._parse()
            tags = {}
            for tag in root.iter():
                if _local(tag.tag) == "Tag":
                    fields = {_local(c.tag): c.text or "" for c in tag}
                    tags[fields.get("Key", "")] = fields.get("Value", "")
            state.set_tags(b, k, tags)
        elif operation == "GetObjectTagging":
            body = _xml("Tagging", "<TagSet>" + "".join(
                f"<Tag>{_el('Key', name)}{_el('Value', value)}</Tag>"
                for name, value in state.tags(b, k).items()) + "</TagSet>")
        elif operation == "RestoreObject":
            root = self._parse()
            days = next((e.text for e in root.iter() if _local(e.tag) == "Days"), None)
            tier = next((e.text for e in root.iter() if _local(e.tag) == "Tier"), "Standard")
            if days is None or not days.strip().isdigit():
                raise bad_request("MalformedXML", "RestoreRequest needs Days")
            status = state.restore(b, k, int(days), tier or "Standard")
        if fault == "drop-after":
            raise _Drop()
        self.send(status, headers, body, "application/xml" if body else None)

    def _get(self, with_body: bool, fault: str | None) -> None:
        hdr = self.h.headers
        view = self.state.view(self.bucket, self.key, part_number=self.query.get("partNumber"),
                               byte_range=hdr.get("Range"), for_get=with_body)
        meta = view.meta
        headers = {"ETag": meta["ETag"], "Last-Modified": _http_date(meta["LastModified"]),
                   "Accept-Ranges": "bytes",
                   **{f"x-amz-meta-{n}": v for n, v in meta["Metadata"].items()}}
        if meta["StorageClass"] != "STANDARD":
            headers["x-amz-storage-class"] = meta["StorageClass"]
        restore = self.state.restore_header(meta)
        if restore:
            headers["x-amz-restore"] = restore
        if hdr.get("x-amz-checksum-mode", "").upper() == "ENABLED" and view.checksum:
            headers.update(_checksum_headers(view.checksum))
            headers["x-amz-checksum-type"] = (
                "COMPOSITE" if any("-" in v for v in view.checksum.values()) else "FULL_OBJECT")
        if view.part_count is not None:
            headers["x-amz-mp-parts-count"] = str(view.part_count)
        partial = hdr.get("Range") is not None or view.part_count is not None
        if partial:
            headers["Content-Range"] = f"bytes {view.first}-{view.last}/{meta['Size']}"
        length = view.last - view.first + 1
        h = self.h
        h.send_response(206 if partial and with_body else 200)
        h.send_header("x-amz-request-id", self.request_id)
        h.send_header("Content-Type", meta["ContentType"])
        for name, value in headers.items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(length))
        h.end_headers()
        if not with_body:
            return
        if fault == "drop-after":
            raise _Drop()
        sent = deliver(h.wfile.write, self.state.chunks(view), length, fault, h.server.faults,
                       lambda kind: h.server.stats.add("faults", kind))
        h.server.stats.add("totals", "job_output_bytes_sent", sent)
        if fault == "truncate":
            h.wfile.flush()
            raise _Drop()

    def _list_objects(self, v2: bool) -> bytes:
        q = self.query
        prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
        max_keys = _int(q.get("max-keys", "1000"), "max-keys", 0, 1000)
        if v2:
            token = q.get("continuation-token")
            start = _untoken(token) if token else q.get("start-after", "")
        else:
            start = q.get("marker", "")
        objects, prefixes, truncated, last = self.state.list_objects(
            self.bucket, prefix, delimiter, start, max_keys)
        encode = q.get("encoding-type") == "url"  # S3 then URL-encodes keys and prefixes
        shown = (lambda text: quote(text, safe="/")) if encode else (lambda text: text)
        items = "".join(
            "<Contents>" + _el("Key", shown(o["Key"])) +
            _el("LastModified", _iso(o["LastModified"])) +
            _el("ETag", o["ETag"]) + _el("Size", o["Size"]) +
            _el("StorageClass", o["StorageClass"]) + "</Contents>" for o in objects)
        items += "".join(f"<CommonPrefixes>{_el('Prefix', shown(p))}</CommonPrefixes>"
                         for p in prefixes)
        head = (_el("Name", self.bucket) + _el("Prefix", prefix) + _el("MaxKeys", max_keys) +
                (_el("Delimiter", delimiter) if delimiter else "") +
                (_el("EncodingType", "url") if encode else "") +
                _el("IsTruncated", "true" if truncated else "false"))
        if v2:
            head += _el("KeyCount", len(objects) + len(prefixes))
            if q.get("continuation-token"):
                head += _el("ContinuationToken", q["continuation-token"])
            if truncated:
                head += _el("NextContinuationToken", _token(last))
        else:
            head += _el("Marker", start)
            if truncated:
                head += _el("NextMarker", last)
        return _xml("ListBucketResult", head + items)

    def _list_parts(self) -> bytes:
        q = self.query
        marker = _int(q.get("part-number-marker", "0"), "part-number-marker", 0, 10_000)
        max_parts = _int(q.get("max-parts", "1000"), "max-parts", 1, 1000)
        doc, parts, truncated = self.state.list_parts(self.bucket, self.key, q["uploadId"],
                                                      marker, max_parts)
        items = "".join(
            "<Part>" + _el("PartNumber", n) + _el("LastModified", _iso(p["LastModified"])) +
            _el("ETag", p["ETag"]) + _el("Size", p["Size"]) +
            "".join(_el(f"Checksum{name.upper()}", value)
                    for name, value in p["Checksums"].items()
                    if name == doc["Algorithm"]) + "</Part>" for n, p in parts)
        head = (_el("Bucket", self.bucket) + _el("Key", self.key) +
                _el("UploadId", q["uploadId"]) + _el("PartNumberMarker", marker) +
                _el("MaxParts", max_parts) + _el("StorageClass", doc["StorageClass"]) +
                _el("IsTruncated", "true" if truncated else "false"))
        if doc["Algorithm"]:
            head += _el("ChecksumAlgorithm", doc["Algorithm"].upper())
        if parts:
            head += _el("NextPartNumberMarker", parts[-1][0])
        return _xml("ListPartsResult", head + items)

    def _list_uploads(self) -> bytes:
        q = self.query
        uploads = self.state.list_uploads(self.bucket, q.get("prefix", ""))
        key_marker, id_marker = q.get("key-marker", ""), q.get("upload-id-marker", "")
        if key_marker:
            uploads = [u for u in uploads if (u["Key"], u["UploadId"]) > (key_marker, id_marker)
                       or u["Key"] > key_marker]
        max_uploads = _int(q.get("max-uploads", "1000"), "max-uploads", 1, 1000)
        page, truncated = uploads[:max_uploads], len(uploads) > max_uploads
        items = "".join(
            "<Upload>" + _el("Key", u["Key"]) + _el("UploadId", u["UploadId"]) +
            _el("Initiated", _iso(u["Initiated"])) + _el("StorageClass", u["StorageClass"]) +
            "</Upload>" for u in page)
        head = (_el("Bucket", self.bucket) + _el("KeyMarker", key_marker) +
                _el("UploadIdMarker", id_marker) + _el("MaxUploads", max_uploads) +
                _el("IsTruncated", "true" if truncated else "false"))
        if truncated and page:
            head += _el("NextKeyMarker", page[-1]["Key"]) + _el("NextUploadIdMarker",
                                                                page[-1]["UploadId"])
        return _xml("ListMultipartUploadsResult", head + items)

    def _complete(self) -> bytes:
        root = self._parse()
        given = [{_local(c.tag): (c.text or "") for c in part}
                 for part in root if _local(part.tag) == "Part"]
        hdr = self.h.headers
        full = next(((name, hdr[f"x-amz-checksum-{name}"]) for name in CHECKSUMS
                     if hdr.get(f"x-amz-checksum-{name}")), None)
        meta = self.state.complete_upload(self.bucket, self.key, self.query["uploadId"], given,
                                          if_none_match=_if_none_match(hdr),
                                          full_checksum=full)
        stats = self.h.server.stats
        stats.add("totals", "archives_created")
        stats.add("totals", "uploads_completed")
        checks = "".join(_el(f"Checksum{name.upper()}", value)
                         for name, value in meta["Checksum"].items())
        return _xml("CompleteMultipartUploadResult",
                    _el("Location", f"/{self.bucket}/{quote(self.key)}") +
                    _el("Bucket", self.bucket) + _el("Key", self.key) +
                    _el("ETag", meta["ETag"]) + checks)


def _class(headers: Any) -> str:
    return str(headers.get("x-amz-storage-class") or "STANDARD")


def _if_none_match(headers: Any) -> bool:
    value = headers.get("If-None-Match")
    if value is None:
        return False
    if value.strip() != "*":
        raise S3Error(501, "NotImplemented", "If-None-Match accepts only *")
    return True


def _checksum_headers(checksums: dict[str, str]) -> dict[str, str]:
    return {f"x-amz-checksum-{name}": value for name, value in checksums.items()}


def _int(value: str, name: str, low: int, high: int) -> int:
    if not value.isdigit():
        raise bad_request("InvalidArgument", f"{name} must be an integer")
    return max(low, min(high, int(value)))


def _token(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode("utf-8", "surrogateescape")).decode()


def _untoken(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode("utf-8", "surrogateescape")
    except (binascii.Error, ValueError):
        raise bad_request("InvalidArgument", "The continuation token provided is "
                          "incorrect") from None

