"""crhelper's ``CfnResource`` with a response contract CloudFormation can rely on.

crhelper 2.0.12 can answer an event twice (its timeout timer and the main
thread both send), retries the PUT forever without a socket timeout, keeps the
*tail* of long reasons (losing the property name), and invents random physical
ids. This subclass sends exactly one bounded response per event, keeps the
head of the reason, never exceeds CloudFormation's 4096-byte body limit and
falls back to a deterministic physical id.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from dataclasses import dataclass
from http.client import HTTPSConnection
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from crhelper import CfnResource, resource_helper

from . import redaction

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["DEFAULT_SENDER", "MAX_BODY_BYTES", "OneResponseCfnResource", "ResponseSender", "send_response"]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 4096
MAX_REASON_CHARS = 1024
MAX_PHYSICAL_ID_BYTES = 1024
_ATTEMPTS = 4
SOCKET_TIMEOUT_SECONDS = 10.0
_REQUIRED_EVENT_KEYS = ("RequestType", "StackId", "RequestId", "LogicalResourceId")


def send_response(
    url: str,
    body: dict[str, Any],
    *,
    sleep: Callable[[float], None] | None = None,
    socket_timeout_seconds: float = SOCKET_TIMEOUT_SECONDS,
) -> bool:
    """PUT the response to the pre-signed URL, a bounded number of times.

    Returns whether CloudFormation accepted it. Never logs the URL: it is a
    credential for the stack's response.

    Parameters
    ----------
    url
        The event's ``ResponseURL``.
    body
        The response, at most 4096 bytes as JSON.
    sleep
        Waits 1, 2, then 4 s between attempts; ``time.sleep`` by default.
    socket_timeout_seconds
        How long one attempt may wait on the socket. Default 10 s.
    """
    payload = json.dumps(body).encode()
    parts = urlsplit(url)
    path = urlunsplit(("", "", parts.path, parts.query, ""))
    context = ssl.create_default_context()
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            connection = HTTPSConnection(parts.netloc, timeout=socket_timeout_seconds, context=context)
            try:
                connection.request(
                    "PUT", path, body=payload, headers={"content-type": "", "content-length": str(len(payload))}
                )
                status = connection.getresponse().status
            finally:
                connection.close()
        except (OSError, ValueError) as error:
            logger.warning(
                "sending the response failed (attempt %d of %d): %s", attempt, _ATTEMPTS, type(error).__name__
            )
        else:
            if status < 500:
                if status >= 300:
                    logger.error("CloudFormation refused the response with HTTP %d", status)
                return 200 <= status < 300
            logger.warning("CloudFormation answered HTTP %d (attempt %d of %d)", status, attempt, _ATTEMPTS)
        if attempt < _ATTEMPTS:
            (sleep or time.sleep)(2 ** (attempt - 1))
    logger.error("gave up sending the response after %d attempts", _ATTEMPTS)
    return False


@dataclass(frozen=True)
class ResponseSender:
    """:func:`send_response` with its waits fixed: how :class:`OneResponseCfnResource` answers.

    Parameters
    ----------
    socket_timeout_seconds
        How long one attempt may wait on the socket. Default 10 s.
    sleep
        Waits between attempts. Default ``time.sleep``.
    """

    socket_timeout_seconds: float = SOCKET_TIMEOUT_SECONDS
    sleep: Callable[[float], None] = time.sleep

    def __call__(self, url: str, body: dict[str, Any]) -> bool:
        """PUT ``body`` to ``url``; whether CloudFormation accepted it."""
        return send_response(url, body, sleep=self.sleep, socket_timeout_seconds=self.socket_timeout_seconds)


DEFAULT_SENDER = ResponseSender()
"""Production's sender: a 10 s socket timeout, real waits between attempts."""


def _fit_body(body: dict[str, Any]) -> dict[str, Any]:
    """Shrink Reason, then Data, until the body fits CloudFormation's limit.

    The Reason keeps the longest start that fits, measured in encoded bytes: a
    character may take up to 6 once JSON-escaped, so counting characters would
    cut far more than needed (or all of it) from a reason in another script.
    """
    if _size(body) <= MAX_BODY_BYTES:
        return body
    reason = str(body.get("Reason", ""))
    if reason and _size({**body, "Reason": "..."}) > MAX_BODY_BYTES:
        # Not even a shortened reason fits beside Data: Data goes first, the reason names the property.
        body = {**body, "Data": {}}
    if reason and _size(body) > MAX_BODY_BYTES:
        body = {**body, "Reason": reason[: _longest_start(body, reason)] + "..."}
    if _size(body) > MAX_BODY_BYTES:
        body = {**body, "Data": {}}
    return body


def _size(body: dict[str, Any]) -> int:
    return len(json.dumps(body).encode())


def _longest_start(body: dict[str, Any], reason: str) -> int:
    """The most characters of ``reason`` that, with ``...``, keep ``body`` within the limit."""
    low, high = 0, len(reason)
    while low < high:
        middle = (low + high + 1) // 2
        if _size({**body, "Reason": reason[:middle] + "..."}) <= MAX_BODY_BYTES:
            low = middle
        else:
            high = middle - 1
    return low


class _NoPollingClients:
    """Stands in for boto3 while crhelper initialises (it only builds polling clients)."""

    @staticmethod
    def client(*_args: Any, **_kwargs: Any) -> None:
        return None


class OneResponseCfnResource(CfnResource):
    """``CfnResource`` that sends exactly one response per event.

    Parameters
    ----------
    fallback_physical_id
        Gives the physical id to report when the handler produced none (a
        failed Create, or a timeout): deterministic, never crhelper's random one.
    timeout_reason
        Gives the Reason to send when crhelper's timer fires.
    send
        Sends the one response (default: a :class:`ResponseSender` with a 10 s
        socket timeout that really sleeps between attempts). crhelper's own
        unbounded sender is never used.
    """

    def __init__(
        self,
        fallback_physical_id: Callable[[dict[str, Any]], str],
        timeout_reason: Callable[[dict[str, Any]], str],
        *,
        send: Callable[[str, dict[str, Any]], bool] = DEFAULT_SENDER,
    ) -> None:
        # INFO: DEBUG would log the event (ResponseURL, job documents).
        # No sleep on Delete: crhelper's default waits two minutes per Delete.
        # Without its polling clients: we never poll, they cost cold start, and
        # a failure to build them (no region) would fail every event, Deletes too.
        real_boto3 = resource_helper.boto3  # type: ignore[attr-defined]
        resource_helper.boto3 = _NoPollingClients  # type: ignore[attr-defined]
        try:
            super().__init__(log_level="INFO", sleep_on_delete=0)
        finally:
            resource_helper.boto3 = real_boto3  # type: ignore[attr-defined]
        self._fallback_physical_id = fallback_physical_id
        self._timeout_reason = timeout_reason
        self._response_sender = send
        redaction.install()
        self._response_lock = threading.Lock()
        self._responded = True

    def __call__(self, event: dict[str, Any], context: Any) -> None:
        # Reset per-event state first, so a malformed event can never reuse
        # the previous event's ResponseURL.
        with self._response_lock:
            self._responded = False
        self._event = event if isinstance(event, dict) else {}
        self._response_url = self._event.get("ResponseURL", "")
        self.PhysicalResourceId = ""
        self.Data = {}
        missing = [key for key in _REQUIRED_EVENT_KEYS if not isinstance(self._event.get(key), str)]
        if missing:
            self._send("FAILED", f"the event lacks {', '.join(missing)}")
            return
        super().__call__(self._event, context)

    def withhold(self) -> None:
        """Send no response for this event: another invocation holds it (a rollout gate's hand-over)."""
        with self._response_lock:
            self._responded = True

    def _timeout(self) -> None:
        """crhelper's timer, 0.5 s before the Lambda timeout: name the job that may exist."""
        logger.error("the invocation is about to time out: answering FAILED")
        self._send("FAILED", self._timeout_reason(self._event))

    def generate_physical_id(self, event: dict[str, Any]) -> str:
        """Used by crhelper when a Create failed; never random."""
        return self._fallback_physical_id(event)

    def _send(self, status: str | None = None, reason: str = "", *_ignored: Any) -> None:
        with self._response_lock:
            if self._responded:
                return
            self._responded = True
        event = self._event
        physical_id = str(self.PhysicalResourceId or event.get("PhysicalResourceId") or "")
        if not physical_id or len(physical_id.encode()) > MAX_PHYSICAL_ID_BYTES:
            # CloudFormation never sends an id over its own limit, but must never get one back.
            physical_id = self._fallback_physical_id(event)
        body: dict[str, Any] = {
            "Status": status or self.Status or "FAILED",
            "PhysicalResourceId": physical_id,
            "StackId": str(event.get("StackId", "")),
            "RequestId": str(event.get("RequestId", "")),
            "LogicalResourceId": str(event.get("LogicalResourceId", "")),
            "Reason": redaction.redact(str(reason if status else self.Reason))[:MAX_REASON_CHARS],
            "Data": self.Data if isinstance(self.Data, dict) else {},
            "NoEcho": False,
        }
        if body["Status"] == "FAILED" and not body["Reason"]:
            body["Reason"] = "the provider failed without a reason; see its log"
        if not self._response_url:
            logger.error("the event has no ResponseURL: no response can be sent")
            return
        self._response_sender(self._response_url, _fit_body(body))
