"""Lambda entry point of the ``Custom::IotJob`` provider.

Each event is parsed, validated against the shared schema, then dispatched to
the job lifecycle. Anything raised becomes a FAILED response whose reason
names the property or the conflict.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from . import iot_api, lifecycle, physical_id, redaction, schema
from .ownership import Owner
from .response import MAX_PHYSICAL_ID_BYTES, OneResponseCfnResource

__all__ = ["handler", "helper"]

logger = logging.getLogger(__name__)

# Stop waiting for deletions early enough to still answer CloudFormation.
_RESPONSE_RESERVE_SECONDS = 30.0
# IoT requests may still start a little later than waits: a wait that ends at
# its deadline is followed by one more request.
_LAST_REQUEST_MARGIN_SECONDS = 5.0
# An IoT attempt lasts at most 20 s (iot_api), and the answer needs a moment:
# no request starts later than this before CloudFormation stops waiting.
_SERVICE_TIMEOUT_MARGIN_SECONDS = 25.0
_SERVICE_TIMEOUT_RANGE = range(1, 3601)

# What this event's CreateJob may have made: read by the failure and timeout paths.
_attempt = lifecycle.CreateAttempt()


def _owner(event: dict[str, Any]) -> Owner:
    return Owner(
        str(event.get("StackId", "")), str(event.get("LogicalResourceId", "")), str(event.get("RequestId", ""))
    )


def _raw_properties(event: dict[str, Any], key: str = "ResourceProperties") -> dict[str, Any]:
    value = event.get(key)
    return value if isinstance(value, dict) else {}


def _fallback_physical_id(event: dict[str, Any]) -> str:
    """The id to answer when the handler produced none: a failed Create, or a timeout."""
    request_id = str(event.get("RequestId", ""))
    if event.get("RequestType") != "Create":
        current = str(event.get("PhysicalResourceId") or "")
        # CloudFormation never sends an id over its limit, but must never get one back.
        fits = 0 < len(current.encode()) <= MAX_PHYSICAL_ID_BYTES
        return current if fits else physical_id.create_failed(request_id)
    if _attempt.job_arn:
        return physical_id.may_have_created(_attempt.job_arn, request_id)
    return physical_id.create_failed(request_id)


def _timeout_reason(event: dict[str, Any]) -> str:
    request_type = event.get("RequestType")
    if request_type == "Create":
        if _attempt.job_arn:
            return f"the provider timed out; job {_attempt.job_arn} may have been created: the rollback deletes it"
        return "the provider timed out before it created a job"
    if request_type == "Update":
        if _attempt.job_arn:
            return (
                f"the provider timed out; replacement job {_attempt.job_arn} may have been created: "
                "delete it if it exists"
            )
        return "the provider timed out before it created a replacement job"
    return f"the provider timed out while deleting job {event.get('PhysicalResourceId')}"


def _job_arn_prefix(event: dict[str, Any], context: Any) -> str | None:
    """Jobs live where the function runs; the stack's region and account otherwise."""
    return physical_id.arn_prefix(getattr(context, "invoked_function_arn", None), "lambda") or physical_id.arn_prefix(
        event.get("StackId"), "cloudformation"
    )


def _service_timeout(event: dict[str, Any]) -> float | None:
    """The resource's ``ServiceTimeout``: how long CloudFormation waits for the answer."""
    value = _raw_properties(event).get("ServiceTimeout")
    try:
        seconds = int(str(value))
    except ValueError:
        return None
    return float(seconds) if seconds in _SERVICE_TIMEOUT_RANGE else None


def _request_deadline(event: dict[str, Any], context: Any) -> float:
    """The ``time.monotonic()`` after which no IoT request may start.

    The earlier of the Lambda timeout and the resource's ServiceTimeout, each
    less the time an attempt and the answer take.
    """
    now = time.monotonic()
    deadline: float = (
        now
        + context.get_remaining_time_in_millis() / 1000.0
        - (_RESPONSE_RESERVE_SECONDS - _LAST_REQUEST_MARGIN_SECONDS)
    )
    service_timeout = _service_timeout(event)
    if service_timeout is not None:
        margin = min(_SERVICE_TIMEOUT_MARGIN_SECONDS, service_timeout / 2)
        deadline = min(deadline, now + service_timeout - margin)
    return deadline


helper = OneResponseCfnResource(_fallback_physical_id, _timeout_reason)


def _request(event: dict[str, Any], context: Any, *, validate: bool = True) -> lifecycle.JobRequest:
    raw = _raw_properties(event)
    old_raw = _raw_properties(event, "OldResourceProperties")
    old: dict[str, Any] | None
    try:
        old = schema.parse_properties(old_raw) if old_raw else None
    except schema.InvalidPropertyError:
        old = None
    request_deadline = _request_deadline(event, context)
    # Neither waits nor IoT requests may run into the time needed to answer.
    iot_api.set_deadline(request_deadline)
    stack_arn = physical_id.arn_parts(event.get("StackId"))
    iot_api.set_fallback_region(stack_arn[2] if stack_arn else None)
    return lifecycle.JobRequest(
        owner=_owner(event),
        properties=schema.parse_properties(raw) if validate else raw,
        physical_id=event.get("PhysicalResourceId"),
        old_properties=old,
        old_raw_properties=old_raw,
        deadline=request_deadline - _LAST_REQUEST_MARGIN_SECONDS,
        job_arn_prefix=_job_arn_prefix(event, context),
        attempt=_attempt,
    )


def _respond(result: lifecycle.JobResult) -> str:
    helper.Data.update(result.attributes())
    return result.job_arn


@helper.create
def create(event: dict[str, Any], context: Any) -> str:
    """Create the job; the physical id is its ARN."""
    return _respond(lifecycle.create(_request(event, context)))


@helper.update
def update(event: dict[str, Any], context: Any) -> str:
    """Update in place, or return a new job's ARN when the job was replaced."""
    return _respond(lifecycle.update(_request(event, context)))


@helper.delete
def delete(event: dict[str, Any], context: Any) -> str | None:
    """Delete or cancel the job this resource created; succeed otherwise."""
    # Never validate on Delete: a failed Create's rollback Delete carries the
    # same invalid properties, and must succeed.
    request = _request(event, context, validate=False)
    raw = request.properties
    namespace_id = raw.get("NamespaceId")
    try:
        helper.Reason = lifecycle.delete(
            request,
            cancel_only=raw.get("DeleteBehavior") == "CANCEL",
            namespace_id=namespace_id if isinstance(namespace_id, str) else None,
        )
    except iot_api.IotUnavailableError as error:
        # Failing would leave the stack in DELETE_FAILED or ROLLBACK_FAILED
        # until the environment is fixed; nothing was touched, so say so.
        logger.error("Delete could not reach IoT: %s", error)
        helper.Reason = f"{error}; job {request.physical_id} was not checked and, if it exists, is left as it is"
    return request.physical_id


def handler(event: dict[str, Any], context: Any) -> None:
    """The Lambda handler: answers CloudFormation exactly once per event."""
    _attempt.job_arn = None
    redaction.set_secrets(
        redaction.secret_values(_raw_properties(event))
        | redaction.secret_values(_raw_properties(event, "OldResourceProperties"))
        if isinstance(event, dict)
        else set()
    )
    helper(event, context)
