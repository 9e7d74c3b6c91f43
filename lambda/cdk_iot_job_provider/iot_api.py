"""Thin layer over the boto3 IoT client: the only module that calls AWS.

Transient faults (throttling, 5xx, connection errors) are retried by
botocore's standard retry mode; the lifecycle code only sees the outcome. No
attempt starts after the request's deadline, and no retry wait that would end
after it is begun, so a throttling storm ends in a clean failure while there is
still time to answer CloudFormation.

Two objects, two lifetimes:

:class:`DeadlineClient`
    A boto3 IoT client, built once per region for the whole process (the
    Lambda container; :func:`client_for`), since building one costs 100 ms or
    more. Its deadline hooks (before every attempt, and in the retry backoff)
    are registered once, when it is built, and read the deadline from a
    thread-local holder of that client.
:class:`IotApi`
    One request's view of IoT: a client, the request's deadline and its
    monotonic clock. Each call sets the client's holder for its own duration
    (in its own thread), so requests never leave state behind on the shared
    client and no handler is registered per request.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError, PartialCredentialsError
from botocore.retries import quota, standard

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

    from mypy_boto3_iot import IoTClient

__all__ = [
    "CLIENT_CONFIG",
    "DeadlineClient",
    "DeadlineReachedError",
    "IotApi",
    "IotUnavailableError",
    "JobNotFoundError",
    "client_for",
    "environment_region",
    "error_code",
    "http_status",
    "new_client",
    "retry_attempts",
]

# Ten retries (eleven attempts) ride out a throttling burst on the low-TPS jobs API.
# One attempt lasts at most 20 s: one started by the deadline (25 s before the
# Lambda timeout) ends in time to answer CloudFormation.
_RETRIES = 10
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": _RETRIES},
    connect_timeout=5,
    read_timeout=15,
)
"""The IoT client's botocore configuration: standard retries, bounded attempts."""

_ENVIRONMENT_ERRORS = (NoRegionError, NoCredentialsError, PartialCredentialsError)


class JobNotFoundError(Exception):
    """The job does not exist (or no longer exists)."""


class IotUnavailableError(Exception):
    """IoT cannot be called at all from this environment (no region, no
    credentials, a malformed AWS_* variable): no request was sent."""


class DeadlineReachedError(Exception):
    """No time is left for another IoT request before the Lambda timeout."""


class _CallBounds(threading.local):
    """The deadline and clock of the call in progress on one client, per thread.

    Outside any :class:`IotApi` call there is no deadline.
    """

    def __init__(self) -> None:
        self.deadline = float("inf")
        self.monotonic: Callable[[], float] = time.monotonic

    def check(self, event_name: str = "", **_: Any) -> None:
        """``before-send`` hook: refuse an attempt that would start after the deadline."""
        if self.monotonic() > self.deadline:
            operation = event_name.rsplit(".", 1)[-1] or "request"
            raise DeadlineReachedError(f"no time left for IoT {operation} before the Lambda timeout")


@dataclass(frozen=True)
class DeadlineClient:
    """A boto3 IoT client whose attempts and retry waits stop at the caller's deadline.

    Build one with :func:`new_client` (or take the process's with
    :func:`client_for`); :class:`IotApi` sets the deadline for each call.
    """

    client: IoTClient
    _bounds: _CallBounds = field(repr=False, compare=False)

    @contextmanager
    def bounded(self, deadline: float, monotonic: Callable[[], float]) -> Iterator[IoTClient]:
        """The client, with ``deadline`` (a ``monotonic()`` value) in force in this thread meanwhile."""
        bounds = self._bounds
        previous = bounds.deadline, bounds.monotonic
        bounds.deadline, bounds.monotonic = deadline, monotonic
        try:
            yield self.client
        finally:
            bounds.deadline, bounds.monotonic = previous


def new_client(region: str | None) -> DeadlineClient:
    """Build an IoT client for ``region`` and register its deadline hooks, once.

    Raises
    ------
    IotUnavailableError
        When boto3 cannot build the client (a malformed ``AWS_*`` variable).
    """
    try:
        client = boto3.client("iot", config=CLIENT_CONFIG, region_name=region)
    except Exception as error:
        raise IotUnavailableError(f"the IoT client cannot be created: {type(error).__name__}: {error}") from error
    bounds = _CallBounds()
    # Once per client, for every request that will use it: before every attempt, retries included ...
    client.meta.events.register_first("before-send.iot", bounds.check)
    # ... and before every retry wait.
    _retry_until_deadline(client, bounds)
    return DeadlineClient(client, bounds)


@cache
def client_for(region: str | None) -> DeadlineClient:
    """The process's IoT client for ``region``: built on first use, then reused by every request."""
    return new_client(region)


def environment_region(fallback: str | None = None) -> str | None:
    """The region IoT is called in: the environment's, else ``fallback``.

    botocore itself reads AWS_DEFAULT_REGION only; Lambda sets both. Lambda
    always sets AWS_REGION, but a missing one must not stop a rollback, so the
    handler passes the stack's region as ``fallback``.
    """
    return os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or fallback or None


class _DeadlineBackoff(standard.ExponentialBackoff):
    """Botocore's standard backoff, except that a retry whose wait ends past the deadline is not taken.

    Throttling backoff grows to 20 s, so without this a wait begun before the
    deadline could end well after it, and after CloudFormation stopped waiting.
    """

    def __init__(self, bounds: _CallBounds, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._bounds = bounds

    def delay_amount(self, context: Any) -> float:
        delay = float(super().delay_amount(context))
        if self._bounds.monotonic() + delay > self._bounds.deadline:
            operation = context.operation_model.name if context.operation_model is not None else "request"
            raise DeadlineReachedError(
                f"no time left for IoT {operation} before the Lambda timeout: "
                f"{context.get_error_code() or 'no answer'} on attempt {context.attempt_number}, "
                f"and the next retry would start {delay:.1f} s later"
            )
        return delay


def _retry_until_deadline(client: IoTClient, bounds: _CallBounds) -> None:
    """Replace the client's standard retry handler with one using :class:`_DeadlineBackoff`."""
    service = client.meta.service_model.service_id.hyphenize()
    adapter = standard.RetryEventAdapter()
    throttling = standard.ThrottlingErrorDetector(adapter)
    retry_quota = standard.RetryQuotaChecker(quota.RetryQuota(), throttling)
    handler = standard.RetryHandler(
        retry_policy=standard.RetryPolicy(
            retry_checker=standard.StandardRetryConditions(max_attempts=_RETRIES + 1),
            retry_backoff=_DeadlineBackoff(bounds, service_name=service, throttling_detector=throttling),
        ),
        retry_event_adapter=adapter,
        retry_quota=retry_quota,  # type: ignore[arg-type]  # botocore passes a checker too; its stubs say RetryQuota
        service_name=service,
    )
    unique_id = f"retry-config-{service}"
    client.meta.events.unregister(f"needs-retry.{service}", unique_id=unique_id)
    # needs-retry handlers answer the delay; the stubs type every handler as returning None.
    client.meta.events.register(
        f"needs-retry.{service}",
        handler.needs_retry,  # type: ignore[arg-type]
        unique_id=unique_id,
    )
    client.meta.events.register(f"after-call.{service}", retry_quota.release_retry_quota)


def error_code(error: ClientError) -> str:
    """The service's error code, e.g. ``ResourceAlreadyExistsException``."""
    return str(error.response.get("Error", {}).get("Code", ""))


def http_status(error: ClientError) -> int:
    """The HTTP status of the last attempt (0 when unknown)."""
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def retry_attempts(error: ClientError) -> int:
    """How many times botocore retried before this error (-1 when unknown)."""
    return int(error.response.get("ResponseMetadata", {}).get("RetryAttempts", -1))


class IotApi:
    """The IoT job calls of one request, none started after its deadline.

    Parameters
    ----------
    client
        Gives the client to call (usually ``lambda: client_for(region)``). It
        is called at the first IoT call, not before: an environment where no
        client can be built fails that call with :class:`IotUnavailableError`,
        after everything the request checks without IoT.
    deadline
        The ``monotonic()`` value after which no attempt, and no retry wait
        that would end later, is begun (:class:`DeadlineReachedError`).
    monotonic
        The clock ``deadline`` is read on.
    """

    def __init__(
        self,
        client: Callable[[], DeadlineClient],
        deadline: float = float("inf"),
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._get_client = client
        self._client: DeadlineClient | None = None
        self.deadline = deadline
        self.monotonic = monotonic

    def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            if self._client is None:
                self._client = self._get_client()
            with self._client.bounded(self.deadline, self.monotonic) as client:
                return getattr(client, operation)(**kwargs)
        except ClientError as error:
            if error_code(error) == "ResourceNotFoundException":
                raise JobNotFoundError(str(error)) from error
            raise
        except _ENVIRONMENT_ERRORS as error:
            raise IotUnavailableError(f"IoT cannot be called: {type(error).__name__}: {error}") from error

    def create_job(self, request: Mapping[str, Any]) -> dict[str, str]:
        """Run CreateJob and return ``{"jobId": ..., "jobArn": ...}``."""
        response = self._call("create_job", **request)
        return {"jobId": response["jobId"], "jobArn": response["jobArn"]}

    def describe_job(self, job_id: str) -> dict[str, Any] | None:
        """The job's description, or ``None`` when no such job exists."""
        try:
            response = self._call("describe_job", jobId=job_id)
        except JobNotFoundError:
            return None
        job: dict[str, Any] = response["job"]
        return job

    def list_tags(self, job_arn: str) -> dict[str, str]:
        """All tags of the job, as a dict."""
        tags: dict[str, str] = {}
        kwargs: dict[str, Any] = {"resourceArn": job_arn}
        while True:
            response = self._call("list_tags_for_resource", **kwargs)
            tags.update({tag["Key"]: tag.get("Value", "") for tag in response.get("tags", [])})
            if not response.get("nextToken"):
                return tags
            kwargs["nextToken"] = response["nextToken"]

    def update_job(self, job_id: str, changes: Mapping[str, Any], namespace_id: str | None = None) -> None:
        """Run UpdateJob with the given updatable members."""
        extra = {"namespaceId": namespace_id} if namespace_id else {}
        self._call("update_job", jobId=job_id, **changes, **extra)

    def tag_job(self, job_arn: str, tags: Mapping[str, str]) -> None:
        """Add or overwrite tags."""
        self._call(
            "tag_resource", resourceArn=job_arn, tags=[{"Key": key, "Value": value} for key, value in tags.items()]
        )

    def untag_job(self, job_arn: str, keys: Iterable[str]) -> None:
        """Remove tags by key."""
        self._call("untag_resource", resourceArn=job_arn, tagKeys=list(keys))

    def cancel_job(
        self, job_id: str, *, comment: str, reason_code: str = "CLOUDFORMATION_DELETE", force: bool = False
    ) -> None:
        """Cancel the job; executions already in progress are left to finish unless ``force``."""
        self._call("cancel_job", jobId=job_id, reasonCode=reason_code, comment=comment, force=force)

    def group_things(self, group_name: str) -> set[str]:
        """The names of the things in a thing group and, recursively, in its child groups."""
        things: set[str] = set()
        kwargs: dict[str, Any] = {"thingGroupName": group_name, "recursive": True, "maxResults": 250}
        while True:
            response = self._call("list_things_in_thing_group", **kwargs)
            things.update(response.get("things", []))
            if not response.get("nextToken"):
                return things
            kwargs["nextToken"] = response["nextToken"]

    def delete_job(self, job_id: str, *, force: bool, namespace_id: str | None = None) -> None:
        """Start the (asynchronous) deletion of the job."""
        extra = {"namespaceId": namespace_id} if namespace_id else {}
        self._call("delete_job", jobId=job_id, force=force, **extra)
