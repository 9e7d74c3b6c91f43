"""The CloudFormation response endpoint with faults on demand (tests only).

:class:`FaultyCloudFormationEndpoint` is
:class:`~cdk_iot_job_local.cfn_endpoint.CloudFormationEndpoint` (same URLs,
same TLS, same recording) that can also:

* answer the next requests with a given HTTP status (:meth:`~FaultyCloudFormationEndpoint.fail_next`);
* delay the reply to the next requests (:meth:`~FaultyCloudFormationEndpoint.stall_next`), after
  their body has been read and recorded;
* list the TLS handshakes that failed (:attr:`~FaultyCloudFormationEndpoint.handshake_errors`), to
  see that a client really refused the certificate;
* wait for responses (:meth:`~FaultyCloudFormationEndpoint.wait_for`), give an in-process client
  context trusting its CA (:meth:`~FaultyCloudFormationEndpoint.ssl_context`) and forget everything
  (:meth:`~FaultyCloudFormationEndpoint.reset`).
"""

from __future__ import annotations

import dataclasses
import ssl
import threading
import time
from typing import Any

from cdk_iot_job_local.cfn_endpoint import CloudFormationEndpoint, RecordedRequest

__all__ = ["FaultyCloudFormationEndpoint"]


class _Overrides:
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


class FaultyCloudFormationEndpoint(CloudFormationEndpoint):
    """The response endpoint, with status overrides, stalls and handshake errors.

    Examples
    --------
    >>> with FaultyCloudFormationEndpoint() as cfn:          # doctest: +SKIP
    ...     cfn.fail_next(count=2, status=500)
    ...     url = cfn.response_url("flaky")
    ...     # ... invoke the handler with {"ResponseURL": url, ...}
    ...     [*_, body] = cfn.wait_for(url, timeout=10, count=3)
    """

    def __init__(self) -> None:
        super().__init__()
        self._overrides = _Overrides()
        self._stopping = threading.Event()
        self._arrived = threading.Condition()
        self._handshake_errors: list[str] = []

    def start(self) -> FaultyCloudFormationEndpoint:
        """Start serving; returns ``self``.

        Returns
        -------
        FaultyCloudFormationEndpoint
            This endpoint, now listening.
        """
        self._stopping.clear()
        super().start()
        return self

    def stop(self) -> None:
        """Stop serving, release stalled requests and delete the CA file."""
        self._stopping.set()
        super().stop()

    def __enter__(self) -> FaultyCloudFormationEndpoint:
        return self.start()

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
        self._overrides.add_fail(count, status)

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
        self._overrides.add_stall(count, seconds)

    def reset(self) -> None:
        """Forget recorded requests, handshake errors and queued overrides."""
        self._overrides.clear()
        with self._lock:
            self._requests.clear()
        with self._arrived:
            self._handshake_errors.clear()

    # -- inspection --------------------------------------------------------
    def ssl_context(self) -> ssl.SSLContext:
        """Client context trusting only this endpoint's CA (for in-process use).

        Returns
        -------
        ssl.SSLContext
            A verifying client context.
        """
        return ssl.create_default_context(cafile=str(self.ca_pem_path))

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
        with self._arrived:
            while True:
                got = self.responses_for(url)
                if len(got) >= count:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(got)} of {count} response(s) arrived within {timeout}s")
                self._arrived.wait(left)

    @property
    def handshake_errors(self) -> list[str]:
        """Descriptions of TLS handshakes that failed (e.g. client rejected our cert)."""
        with self._arrived:
            return list(self._handshake_errors)

    # -- the hooks -----------------------------------------------------------
    def _received(self, request: RecordedRequest) -> RecordedRequest:
        status, stall = self._overrides.take()
        if status is not None:
            request = dataclasses.replace(request, reply_status=status)
        recorded = super()._received(request)
        with self._arrived:
            self._arrived.notify_all()
        if stall:
            # Interruptible so stop() never waits for a long stall.
            self._stopping.wait(stall)
        return recorded

    def _handshake_failed(self, exc: BaseException) -> None:
        with self._arrived:
            self._handshake_errors.append(f"{type(exc).__name__}: {exc}")
            self._arrived.notify_all()
