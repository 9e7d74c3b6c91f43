"""A local HTTPS stand-in for CloudFormation's pre-signed response URLs.

Custom-resource handlers report their outcome by PUTting a JSON document to
``event["ResponseURL"]`` (an S3 pre-signed URL).  :class:`CloudFormationEndpoint`
serves such URLs from ``https://127.0.0.1:<ephemeral port>`` with a certificate
issued by a throw-away ``trustme`` CA, so a handler running in a child process
verifies TLS normally once ``SSL_CERT_FILE`` points at :attr:`ca_pem_path`.

Every request is recorded (path, query, headers, raw body, parsed JSON) so
tests can assert e.g. *exactly one* response per event, the response status,
or the 4096-byte CloudFormation body limit.
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
    stalled_s : float
        Seconds the endpoint deliberately waited before replying.
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
    stalled_s: float
    received_at: float = field(compare=False)

    @property
    def target(self) -> str:
        """Request target as sent: ``path`` plus ``?query`` if any."""
        return f"{self.path}?{self.query}" if self.query else self.path


class _Behaviour:
    """Queue of one-shot overrides for the next requests (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fail: list[int] = []
        self._stall: list[float] = []

    def add_fail(self, count: int, status: int) -> None:
        with self._lock:
            self._fail.extend([status] * count)

    def add_stall(self, count: int, seconds: float) -> None:
        with self._lock:
            self._stall.extend([seconds] * count)

    def take(self) -> tuple[int | None, float]:
        with self._lock:
            status = self._fail.pop(0) if self._fail else None
            stall = self._stall.pop(0) if self._stall else 0.0
        return status, stall

    def clear(self) -> None:
        with self._lock:
            self._fail.clear()
            self._stall.clear()


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
            # A client that rejects our certificate ends up here; tests can
            # look at handshake_errors to see it really was refused.
            self.owner._record_handshake_error(exc)
            return
        try:
            _Handler(tls, client_address, self)
        finally:
            with contextlib.suppress(OSError):
                tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Client disconnects (e.g. a handler that gave up during a stall)
        # are expected; keep pytest output clean.
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
        override, stall = owner._behaviour.take()
        if override is not None:
            status = override
        elif self.command != "PUT":
            status = 405
        else:
            status = 200 if known else 403  # S3: SignatureDoesNotMatch
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        owner._record(
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
                stalled_s=stall,
                received_at=received_at,
            )
        )
        if stall:
            # Interruptible so stop() never waits for a long stall.
            owner._stopping.wait(stall)
        payload = b"" if status == 200 else b"<Error><Code>HarnessError</Code></Error>"
        self.send_response(status)
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
    bad signature) or an override was queued with :meth:`fail_next` /
    :meth:`stall_next`.

    Examples
    --------
    >>> with CloudFormationEndpoint() as cfn:                # doctest: +SKIP
    ...     url = cfn.response_url("create")
    ...     env = {"SSL_CERT_FILE": str(cfn.ca_pem_path)}
    ...     # ... invoke the handler with {"ResponseURL": url, ...}
    ...     [body] = cfn.wait_for(url, timeout=10)
    """

    def __init__(self) -> None:
        self.ca = trustme.CA()
        self._cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self._lock = threading.Condition()
        self._requests: list[RecordedRequest] = []
        self._handshake_errors: list[str] = []
        self._issued: dict[str, str] = {}  # path -> exact query
        self._behaviour = _Behaviour()
        self._stopping = threading.Event()
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
        self._stopping.clear()
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
        """Stop serving, release stalled requests and delete the CA file."""
        self._stopping.set()
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

    def ssl_context(self) -> ssl.SSLContext:
        """Client context trusting only this endpoint's CA (for in-process use).

        Returns
        -------
        ssl.SSLContext
            A verifying client context.
        """
        return ssl.create_default_context(cafile=str(self.ca_pem_path))

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

    # -- behaviour overrides ---------------------------------------------
    def fail_next(self, count: int = 1, status: int = 500) -> None:
        """Answer the next ``count`` requests with ``status`` (still recorded).

        Parameters
        ----------
        count : int
            Number of requests affected.
        status : int
            HTTP status to reply with, e.g. 500 or 403.
        """
        self._behaviour.add_fail(count, status)

    def stall_next(self, count: int = 1, seconds: float = 30.0) -> None:
        """Delay the reply to the next ``count`` requests by ``seconds``.

        The body is read and recorded *before* stalling, so a handler that
        times out while waiting for the reply still counts as having sent it.

        Parameters
        ----------
        count : int
            Number of requests affected.
        seconds : float
            Delay before replying (cut short by :meth:`stop`).
        """
        self._behaviour.add_stall(count, seconds)

    def reset(self) -> None:
        """Forget recorded requests, handshake errors and queued overrides."""
        self._behaviour.clear()
        with self._lock:
            self._requests.clear()
            self._handshake_errors.clear()

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

    def wait_for(self, url: str, timeout: float = 10.0, count: int = 1) -> list[Any]:
        """Block until at least ``count`` responses arrived at ``url``.

        Parameters
        ----------
        url : str
            A URL returned by :meth:`response_url`.
        timeout : float
            Seconds to wait.
        count : int
            Minimum number of responses.

        Returns
        -------
        list[Any]
            Same as :meth:`responses_for`.

        Raises
        ------
        TimeoutError
            If fewer than ``count`` responses arrived in time.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                got = self.responses_for(url)  # re-entrant: Condition wraps an RLock
                if len(got) >= count:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(got)} of {count} response(s) arrived within {timeout}s")
                self._lock.wait(left)

    @property
    def handshake_errors(self) -> list[str]:
        """Descriptions of TLS handshakes that failed (e.g. client rejected our cert)."""
        with self._lock:
            return list(self._handshake_errors)

    # -- server-side hooks -------------------------------------------------
    def _is_known(self, path: str, query: str) -> bool:
        with self._lock:
            return self._issued.get(path) == query

    def _record(self, req: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(req)
            self._lock.notify_all()

    def _record_handshake_error(self, exc: BaseException) -> None:
        with self._lock:
            self._handshake_errors.append(f"{type(exc).__name__}: {exc}")
            self._lock.notify_all()
