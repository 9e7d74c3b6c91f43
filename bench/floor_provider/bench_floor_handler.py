"""The floor of a ``Custom::IotJob`` handler: the bare boto3 IoT calls an event needs, and one PUT.

Shipped to a :class:`~cdk_iot_job_local.lambda_process.LambdaProcess` exactly
like the provider (its folder plus boto3 only), so both sides run in the
same kind of process. No validation, no ownership checks, no retries of the
PUT:

The physical id is the job's ARN and the attributes are ``Arn``,
``CreatedAt`` and ``JobId``, as the provider answers (``Ref`` and
``Fn::GetAtt`` of ``AWS::IoT::Job``):

Create
    ``CreateJob`` with the event's targets, document, description, rollout
    rate and tags, ``jobId`` = ``floor-<LogicalResourceId>``, then
    ``DescribeJob`` for ``CreatedAt`` (CreateJob does not return it).
Update (in place)
    ``DescribeJob`` (the job's status and ``CreatedAt``, and whether it still
    exists), ``ListTagsForResource`` on its ARN (the ownership read: without
    it a handler could change a job that is not its resource's), then
    ``UpdateJob`` with the new description. With ``"BenchUpdateJobOnly"`` in
    the event, ``UpdateJob`` alone: no read at all, for reference.
Delete
    ``DeleteJob(force=True)``, then ``DescribeJob`` until the job is gone,
    sleeping between polls on the provider's schedule (0.5 s, doubling, at
    most 5 s), so the deletion wait is the same on both sides.

Every event then PUTs its response to ``ResponseURL`` with ``http.client``
over TLS (``ssl.create_default_context()``, as the provider does). The
handler returns its parts in milliseconds: ``iot_ms`` (the IoT calls, polls
excluded), ``poll_ms`` and ``polls`` (the deletion wait), ``put_ms``.
"""

from __future__ import annotations

import json
import os
import ssl
import time
from collections.abc import Mapping
from datetime import UTC
from http.client import HTTPSConnection
from typing import Any
from urllib.parse import urlsplit

import boto3

# lifecycle._FIRST_POLL_SECONDS and lifecycle._MAX_POLL_SECONDS of the provider.
FIRST_POLL_SECONDS = 0.5
MAX_POLL_SECONDS = 5.0

_iot = boto3.client("iot", region_name=os.environ["AWS_REGION"])


def _put_response(url: str, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    parts = urlsplit(url)
    connection = HTTPSConnection(parts.netloc, timeout=10, context=ssl.create_default_context())
    try:
        connection.request("PUT", f"{parts.path}?{parts.query}", body=payload, headers={"content-type": ""})
        connection.getresponse().read()
    finally:
        connection.close()


def _wait_until_deleted(job_id: str) -> int:
    """Poll DescribeJob until the job is gone; the number of polls."""
    delay = FIRST_POLL_SECONDS
    polls = 0
    while True:
        polls += 1
        try:
            _iot.describe_job(jobId=job_id)
        except _iot.exceptions.ResourceNotFoundException:
            return polls
        time.sleep(delay)
        delay = min(delay * 2, MAX_POLL_SECONDS)


def _attributes(job: Mapping[str, Any]) -> dict[str, str]:
    """``Arn``, ``CreatedAt`` (ISO 8601 UTC, milliseconds) and ``JobId`` of a described job."""
    created_at = job["createdAt"].astimezone(UTC)
    return {
        "Arn": job["jobArn"],
        "CreatedAt": created_at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{created_at.microsecond // 1000:03d}Z",
        "JobId": job["jobId"],
    }


def handler(event: dict[str, Any], context: Any) -> dict[str, float]:
    """Make the event's IoT calls, answer CloudFormation, return the parts' times."""
    started = time.perf_counter()
    request_type = event["RequestType"]
    properties = event["ResourceProperties"]
    physical_id = event.get("PhysicalResourceId")
    # The physical id is the job's ARN: its last part is the JobId.
    job_id = physical_id.rsplit("/", 1)[-1] if physical_id else f"floor-{event['LogicalResourceId']}"
    data: dict[str, str] = {}
    polls = 0
    poll_s = 0.0
    if request_type == "Create":
        _iot.create_job(
            jobId=job_id,
            targets=properties["Targets"],
            document=properties["Document"],
            description=properties["Description"],
            jobExecutionsRolloutConfig={
                "maximumPerMinute": int(properties["JobExecutionsRolloutConfig"]["MaximumPerMinute"])
            },
            tags=properties["Tags"],
        )
        data = _attributes(_iot.describe_job(jobId=job_id)["job"])
        physical_id = data["Arn"]
    elif request_type == "Update":
        if not event.get("BenchUpdateJobOnly"):
            job = _iot.describe_job(jobId=job_id)["job"]
            _iot.list_tags_for_resource(resourceArn=job["jobArn"])
            data = _attributes(job)
        _iot.update_job(jobId=job_id, description=properties["Description"])
    else:
        _iot.delete_job(jobId=job_id, force=True)
        polling = time.perf_counter()
        polls = _wait_until_deleted(job_id)
        poll_s = time.perf_counter() - polling
    answered = time.perf_counter()
    _put_response(
        event["ResponseURL"],
        {
            "Status": "SUCCESS",
            "PhysicalResourceId": physical_id,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Reason": "",
            "Data": data,
        },
    )
    done = time.perf_counter()
    return {
        "iot_ms": (answered - started - poll_s) * 1000,
        "poll_ms": poll_s * 1000,
        "polls": polls,
        "put_ms": (done - answered) * 1000,
    }
