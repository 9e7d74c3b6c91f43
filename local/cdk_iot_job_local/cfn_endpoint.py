"""A local HTTPS stand-in for CloudFormation's pre-signed response URLs.

Custom-resource handlers report their outcome by PUTting a JSON document to
``event["ResponseURL"]`` (an S3 pre-signed URL).  :class:`CloudFormationEndpoint`
serves such URLs from ``https://127.0.0.1:<ephemeral port>`` with a certificate
issued by a throw-away ``trustme`` CA, so a handler running in a child process
verifies TLS normally once ``SSL_CERT_FILE`` points at :attr:`ca_pem_path`.

Every request is recorded (path, query, headers, raw body, parsed JSON), so
the engine reads what a provider PUT to the URL of each event
(:meth:`CloudFormationEndpoint.responses_for`).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import secrets
import ssl
import tempfile
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme

__all__ = ["CloudFormationEndpoint", "RecordedRequest"]

# Far above CloudFormation's 4096-byte limit so oversize bodies are still
# recorded in full; only pathological bodies get truncated.
MAX_RECORDED_BODY = 1024 * 1024


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request received by the endpoint.

    Attributes
    ----------
    method : str
        HTTP method, e.g. ``"PUT"``.
    path : str
        URL path, still percent-encoded as sent.
    query : str
        Raw query string (without ``?``).
    headers : dict[str, str]
        Request headers, names lower-cased.
    body : bytes
        Raw body (at most ``MAX_RECORDED_BODY`` bytes, see ``truncated``).
    body_size : int
        Number of body bytes the client sent.
    truncated : bool
        True if ``body`` holds only the first ``MAX_RECORDED_BODY`` bytes.
    json : Any
        Body parsed as JSON, or None if it is not valid JSON.
    known_url : bool
        True if path *and* query exactly match a URL from ``response_url``
        (S3 would reject anything else as a signature mismatch).
    reply_status : int
        Status code the endpoint answered with.
    received_at : float
        ``time.monotonic()`` when the body had been read completely.
    """

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    body_size: int
    truncated: bool
    json: Any
    known_url: bool
    reply_status: int
    received_at: float = field(compare=False)

    @property
    def target(self) -> str:
        """Request target as sent: ``path`` plus ``?query`` if any."""
        return f"{self.path}?{self.query}" if self.query else self.path


class _TLSServer(http.server.ThreadingHTTPServer):
    """Threading HTTP server that does the TLS handshake per connection thread.

    Wrapping the listening socket would run handshakes inside ``accept()`` on
    the single serving thread, so one stuck or rejecting client could block
    everybody; here the handshake happens in the request's own thread.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: CloudFormationEndpoint, ctx: ssl.SSLContext) -> None:
        self.owner = owner
        self.ssl_context = ctx
        super().__init__(("127.0.0.1", 0), _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(10)
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            # A client that rejects our certificate ends up here.
            self.owner._handshake_failed(exc)
            return
        try:
            _Handler(tls, client_address, self)
        finally:
            with contextlib.suppress(OSError):
                tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Client disconnects (e.g. a handler that gave up waiting for the
        # reply) are expected; keep the output clean.
        pass


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _TLSServer
    protocol_version = "HTTP/1.1"
    timeout = 10

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> tuple[bytes, int, bool]:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, MAX_RECORDED_BODY))
        rest = length - len(body)
        while rest > 0:  # drain, but do not keep, anything beyond the cap
            chunk = self.rfile.read(min(rest, 65536))
            if not chunk:
                break
            rest -= len(chunk)
        return body, length, length > MAX_RECORDED_BODY

    def _read_chunked(self) -> tuple[bytes, int, bool]:
        parts: list[bytes] = []
        kept = total = 0
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                break
            chunk = self.rfile.read(size)
            self.rfile.readline()
            total += len(chunk)
            if kept < MAX_RECORDED_BODY:
                parts.append(chunk[: MAX_RECORDED_BODY - kept])
                kept += len(parts[-1])
        return b"".join(parts), total, total > MAX_RECORDED_BODY

    def _handle(self) -> None:
        body, size, truncated = self._read_body()
        received_at = time.monotonic()
        path, _, query = self.path.partition("?")
        owner = self.server.owner
        known = owner._is_known(path, query)
        if self.command != "PUT":
            status = 405
        elif known:
            status = 200
        else:
            status = 403  # S3: SignatureDoesNotMatch
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        request = owner._received(
            RecordedRequest(
                method=self.command,
                path=path,
                query=query,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                body_size=size,
                truncated=truncated,
                json=parsed,
                known_url=known,
                reply_status=status,
                received_at=received_at,
            )
        )
        payload = b"" if request.reply_status == 200 else b"<Error><Code>HarnessError</Code></Error>"
        self.send_response(request.reply_status)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)
        self.close_connection = True

    do_PUT = _handle
    do_POST = _handle
    do_GET = _handle


class CloudFormationEndpoint:
    """Threaded HTTPS server standing in for CloudFormation response URLs.

    Use as a context manager (or call :meth:`start` / :meth:`stop`).  All PUTs
    are answered ``200`` unless the URL is unknown (``403``, as S3 would for a
    bad signature); other methods ``405``.  Each request is recorded and
    answered through :meth:`_received`, which a subclass may override.

    Examples
    --------
    >>> with CloudFormationEndpoint() as cfn:                # doctest: +SKIP
    ...     url = cfn.response_url("create")
    ...     env = {"SSL_CERT_FILE": str(cfn.ca_pem_path)}
    ...     # ... invoke the handler with {"ResponseURL": url, ...}
    ...     [body] = cfn.responses_for(url)
    """

    def __init__(self) -> None:
        self.ca = trustme.CA()
        self._cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._issued: dict[str, str] = {}  # path -> exact query
        self._server: _TLSServer | None = None
        self._thread: threading.Thread | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self._ca_pem: Path | None = None

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> CloudFormationEndpoint:
        """Start serving; returns ``self``.

        Returns
        -------
        CloudFormationEndpoint
            This endpoint, now listening.
        """
        if self._server is not None:
            return self
        self._tmpdir = tempfile.TemporaryDirectory(prefix="cfn-endpoint-")
        self._ca_pem = Path(self._tmpdir.name) / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self._ca_pem))
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(ctx)
        self._server = _TLSServer(self, ctx)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="cfn-endpoint",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and delete the CA file."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __enter__(self) -> CloudFormationEndpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addressing --------------------------------------------------------
    @property
    def port(self) -> int:
        """TCP port the server listens on (after :meth:`start`)."""
        if self._server is None:
            raise RuntimeError("endpoint not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``https://127.0.0.1:<port>``."""
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_pem_path(self) -> Path:
        """PEM file holding only the trustme CA; use as ``SSL_CERT_FILE``."""
        if self._ca_pem is None:
            raise RuntimeError("endpoint not started")
        return self._ca_pem

    def response_url(self, name: str) -> str:
        """Issue a unique pre-signed-looking response URL.

        Parameters
        ----------
        name : str
            Human-readable label, e.g. the logical id or ``"create"``; it is
            percent-encoded into the path together with a random suffix.

        Returns
        -------
        str
            ``https://127.0.0.1:<port>/<name>-<uuid>?X-Amz-...&X-Amz-Signature=<hex>``.
            The signature is random per URL, so tests can assert it never
            shows up in logs (see :meth:`signature_of`).
        """
        key = urllib.parse.quote(f"{name}-{uuid.uuid4().hex}", safe="")
        path = f"/{key}"
        query = urllib.parse.urlencode(
            {
                "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
                "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
                "X-Amz-SignedHeaders": "host",
                "X-Amz-Expires": "7200",
                "X-Amz-Credential": "AKIAHARNESS/20240101/us-east-1/s3/aws4_request",
                "X-Amz-Signature": secrets.token_hex(32),
            }
        )
        with self._lock:
            self._issued[path] = query
        return f"{self.base_url}{path}?{query}"

    @staticmethod
    def signature_of(url: str) -> str:
        """Return the ``X-Amz-Signature`` value of a URL from :meth:`response_url`.

        Parameters
        ----------
        url : str
            A response URL.

        Returns
        -------
        str
            The secret part that must never be logged.
        """
        return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["X-Amz-Signature"][0]

    # -- inspection --------------------------------------------------------
    def requests(self) -> list[RecordedRequest]:
        """All requests received so far, in arrival order.

        Returns
        -------
        list[RecordedRequest]
            A snapshot copy.
        """
        with self._lock:
            return list(self._requests)

    def requests_for(self, url: str) -> list[RecordedRequest]:
        """PUT requests whose path and query exactly match ``url``.

        Parameters
        ----------
        url : str
            A URL returned by :meth:`response_url`.

        Returns
        -------
        list[RecordedRequest]
            Matching requests, in arrival order.
        """
        parts = urllib.parse.urlsplit(url)
        with self._lock:
            return [r for r in self._requests if r.method == "PUT" and r.path == parts.path and r.query == parts.query]

    def responses_for(self, url: str) -> list[Any]:
        """Parsed JSON bodies PUT to ``url`` (one entry per request).

        Parameters
        ----------
        url : str
            A URL returned by :meth:`response_url`.

        Returns
        -------
        list[Any]
            Parsed bodies (``None`` for a body that is not JSON).  A correct
            handler produces exactly one entry per event.
        """
        return [r.json for r in self.requests_for(url)]

    # -- server-side hooks -------------------------------------------------
    def _is_known(self, path: str, query: str) -> bool:
        with self._lock:
            return self._issued.get(path) == query

    def _received(self, request: RecordedRequest) -> RecordedRequest:
        """Record ``request``, read completely; the client is answered ``reply_status`` of the result.

        Runs on the request's own thread before the reply is sent. A subclass
        may override it to answer with another status or later.

        Parameters
        ----------
        request : RecordedRequest
            The request, with the status the endpoint's rules give it.

        Returns
        -------
        RecordedRequest
            The request as recorded.
        """
        with self._lock:
            self._requests.append(request)
        return request

    def _handshake_failed(self, exc: BaseException) -> None:
        """Called with the error of each TLS handshake that failed; the connection is dropped.

        Parameters
        ----------
        exc : BaseException
            The ``ssl.SSLError`` or ``OSError`` of the handshake.
        """
