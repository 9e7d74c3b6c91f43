"""Thin layer over the boto3 IoT client: the only module that calls AWS.

Transient faults (throttling, 5xx) are retried by botocore's standard retry
mode; the lifecycle code only sees the outcome.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = [
    "JobNotFoundError",
    "cancel_job",
    "create_job",
    "delete_job",
    "describe_job",
    "error_code",
    "list_tags",
    "tag_job",
    "untag_job",
    "update_job",
]

# Ten attempts ride out several throttles in a row on the low-TPS jobs API.
_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 10},
    connect_timeout=5,
    read_timeout=30,
)


class JobNotFoundError(Exception):
    """The job does not exist (or no longer exists)."""


@cache
def _client() -> Any:
    return boto3.client("iot", config=_CLIENT_CONFIG)


def error_code(error: ClientError) -> str:
    """The service's error code, e.g. ``ResourceAlreadyExistsException``."""
    return str(error.response.get("Error", {}).get("Code", ""))


def _call(operation: str, **kwargs: Any) -> Any:
    try:
        return getattr(_client(), operation)(**kwargs)
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            raise JobNotFoundError(str(error)) from error
        raise


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
