"""Thin layer over the boto3 IoT client: the only module that calls AWS.

Transient faults (throttling, 5xx, connection errors) are retried by
botocore's standard retry mode; the lifecycle code only sees the outcome. No
attempt starts after the invocation's deadline (:func:`set_deadline`), so a
throttling storm ends in a clean failure while there is still time to answer
CloudFormation.
"""

from __future__ import annotations

import os
import time
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError, PartialCredentialsError
from botocore.retries import quota, standard

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = [
    "DeadlineReachedError",
    "IotUnavailableError",
    "JobNotFoundError",
    "cancel_job",
    "create_job",
    "delete_job",
    "describe_job",
    "error_code",
    "http_status",
    "list_tags",
    "retry_attempts",
    "set_deadline",
    "set_fallback_region",
    "tag_job",
    "untag_job",
    "update_job",
]

# Ten retries (eleven attempts) ride out a throttling burst on the low-TPS jobs API.
# One attempt lasts at most 20 s: one started by the deadline (25 s before the
# Lambda timeout) ends in time to answer CloudFormation.
_RETRIES = 10
_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": _RETRIES},
    connect_timeout=5,
    read_timeout=15,
)
_ENVIRONMENT_ERRORS = (NoRegionError, NoCredentialsError, PartialCredentialsError)

_deadline = float("inf")
_fallback_region: str | None = None


class JobNotFoundError(Exception):
    """The job does not exist (or no longer exists)."""


class IotUnavailableError(Exception):
    """IoT cannot be called at all from this environment (no region, no
    credentials, a malformed AWS_* variable): no request was sent."""


class DeadlineReachedError(Exception):
    """No time is left for another IoT request before the Lambda timeout."""


def set_deadline(deadline: float) -> None:
    """Refuse to start IoT requests after ``deadline`` (a ``time.monotonic()`` value)."""
    global _deadline
    _deadline = deadline


def set_fallback_region(region: str | None) -> None:
    """The region to use when the environment names none (Lambda always sets
    AWS_REGION; a missing one must not stop a rollback)."""
    global _fallback_region
    _fallback_region = region or None


@cache
def _client_for(region: str | None) -> Any:
    try:
        client = boto3.client("iot", config=_CLIENT_CONFIG, region_name=region)
    except Exception as error:
        raise IotUnavailableError(f"the IoT client cannot be created: {type(error).__name__}: {error}") from error
    # Before every attempt, retries included.
    client.meta.events.register_first("before-send.iot", _refuse_after_deadline)
    _retry_until_deadline(client)
    return client


class _DeadlineBackoff(standard.ExponentialBackoff):
    """Botocore's standard backoff, except that a retry whose wait ends past the deadline is not taken.

    Throttling backoff grows to 20 s, so without this a wait begun before the
    deadline could end well after it, and after CloudFormation stopped waiting.
    """

    def delay_amount(self, context: Any) -> float:
        delay = float(super().delay_amount(context))
        if time.monotonic() + delay > _deadline:
            operation = context.operation_model.name if context.operation_model is not None else "request"
            raise DeadlineReachedError(
                f"no time left for IoT {operation} before the Lambda timeout: "
                f"{context.get_error_code() or 'no answer'} on attempt {context.attempt_number}, "
                f"and the next retry would start {delay:.1f} s later"
            )
        return delay


def _retry_until_deadline(client: Any) -> None:
    """Replace the client's standard retry handler with one using :class:`_DeadlineBackoff`."""
    service = client.meta.service_model.service_id.hyphenize()
    adapter = standard.RetryEventAdapter()
    throttling = standard.ThrottlingErrorDetector(adapter)
    retry_quota = standard.RetryQuotaChecker(quota.RetryQuota(), throttling)
    handler = standard.RetryHandler(
        retry_policy=standard.RetryPolicy(
            retry_checker=standard.StandardRetryConditions(max_attempts=_RETRIES + 1),
            retry_backoff=_DeadlineBackoff(service_name=service, throttling_detector=throttling),
        ),
        retry_event_adapter=adapter,
        retry_quota=retry_quota,  # type: ignore[arg-type]  # botocore passes a checker too; its stubs say RetryQuota
        service_name=service,
    )
    unique_id = f"retry-config-{service}"
    client.meta.events.unregister(f"needs-retry.{service}", unique_id=unique_id)
    client.meta.events.register(f"needs-retry.{service}", handler.needs_retry, unique_id=unique_id)
    client.meta.events.register(f"after-call.{service}", retry_quota.release_retry_quota)


def _refuse_after_deadline(event_name: str = "", **_: Any) -> None:
    if time.monotonic() > _deadline:
        operation = event_name.rsplit(".", 1)[-1] or "request"
        raise DeadlineReachedError(f"no time left for IoT {operation} before the Lambda timeout")


def _client() -> Any:
    # botocore itself reads AWS_DEFAULT_REGION only; Lambda sets both.
    return _client_for(os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or _fallback_region)


def error_code(error: ClientError) -> str:
    """The service's error code, e.g. ``ResourceAlreadyExistsException``."""
    return str(error.response.get("Error", {}).get("Code", ""))


def http_status(error: ClientError) -> int:
    """The HTTP status of the last attempt (0 when unknown)."""
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def retry_attempts(error: ClientError) -> int:
    """How many times botocore retried before this error (-1 when unknown)."""
    return int(error.response.get("ResponseMetadata", {}).get("RetryAttempts", -1))


def _call(operation: str, **kwargs: Any) -> Any:
    try:
        return getattr(_client(), operation)(**kwargs)
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            raise JobNotFoundError(str(error)) from error
        raise
    except _ENVIRONMENT_ERRORS as error:
        raise IotUnavailableError(f"IoT cannot be called: {type(error).__name__}: {error}") from error


def create_job(request: Mapping[str, Any]) -> dict[str, str]:
    """Run CreateJob and return ``{"jobId": ..., "jobArn": ...}``."""
    response = _call("create_job", **request)
    return {"jobId": response["jobId"], "jobArn": response["jobArn"]}


def describe_job(job_id: str) -> dict[str, Any] | None:
    """The job's description, or ``None`` when no such job exists."""
    try:
        response = _call("describe_job", jobId=job_id)
    except JobNotFoundError:
        return None
    job: dict[str, Any] = response["job"]
    return job


def list_tags(job_arn: str) -> dict[str, str]:
    """All tags of the job, as a dict."""
    tags: dict[str, str] = {}
    kwargs: dict[str, Any] = {"resourceArn": job_arn}
    while True:
        response = _call("list_tags_for_resource", **kwargs)
        tags.update({tag["Key"]: tag.get("Value", "") for tag in response.get("tags", [])})
        if not response.get("nextToken"):
            return tags
        kwargs["nextToken"] = response["nextToken"]


def update_job(job_id: str, changes: Mapping[str, Any], namespace_id: str | None = None) -> None:
    """Run UpdateJob with the given updatable members."""
    extra = {"namespaceId": namespace_id} if namespace_id else {}
    _call("update_job", jobId=job_id, **changes, **extra)


def tag_job(job_arn: str, tags: Mapping[str, str]) -> None:
    """Add or overwrite tags."""
    _call("tag_resource", resourceArn=job_arn, tags=[{"Key": key, "Value": value} for key, value in tags.items()])


def untag_job(job_arn: str, keys: Iterable[str]) -> None:
    """Remove tags by key."""
    _call("untag_resource", resourceArn=job_arn, tagKeys=list(keys))


def cancel_job(job_id: str, *, comment: str) -> None:
    """Cancel the job; executions already in progress are left to finish."""
    _call("cancel_job", jobId=job_id, reasonCode="CLOUDFORMATION_DELETE", comment=comment, force=False)


def delete_job(job_id: str, *, force: bool, namespace_id: str | None = None) -> None:
    """Start the (asynchronous) deletion of the job."""
    extra = {"namespaceId": namespace_id} if namespace_id else {}
    _call("delete_job", jobId=job_id, force=force, **extra)
