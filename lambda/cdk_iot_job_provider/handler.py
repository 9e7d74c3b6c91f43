"""Lambda entry point of the ``Custom::IotJob`` provider.

Each event is parsed, validated against the shared schema, then dispatched to
the job lifecycle. Anything raised becomes a FAILED response whose reason
names the property or the conflict.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from . import iot_api, lifecycle, schema
from .ownership import Owner
from .response import OneResponseCfnResource

__all__ = ["handler", "helper"]

logger = logging.getLogger(__name__)

# Stop waiting for deletions early enough to still answer CloudFormation.
_RESPONSE_RESERVE_SECONDS = 30.0
# IoT requests may still start a little later than waits: a wait that ends at
# its deadline is followed by one more request.
_LAST_REQUEST_MARGIN_SECONDS = 5.0


def _owner(event: dict[str, Any]) -> Owner:
    return Owner(
        str(event.get("StackId", "")), str(event.get("LogicalResourceId", "")), str(event.get("RequestId", ""))
    )


def _raw_properties(event: dict[str, Any], key: str = "ResourceProperties") -> dict[str, Any]:
    value = event.get(key)
    return value if isinstance(value, dict) else {}


def _fallback_physical_id(event: dict[str, Any]) -> str:
    return lifecycle.planned_job_id(_owner(event), _raw_properties(event))


def _arn_parts(arn: Any) -> list[str] | None:
    """``[partition, service, region, account, resource...]`` of a well-formed ARN."""
    parts = arn.split(":") if isinstance(arn, str) else []
    return parts[1:] if len(parts) > 5 and parts[0] == "arn" else None


def _region_of(arn: Any) -> str | None:
    parts = _arn_parts(arn)
    return (parts[2] or None) if parts else None


def _job_arn_prefix(context: Any) -> str | None:
    """``arn:<partition>:iot:<region>:<account>:job/``: jobs live where the function runs."""
    parts = _arn_parts(getattr(context, "invoked_function_arn", None))
    if not parts or parts[1] != "lambda" or not all(parts[:4]):
        return None
    partition, _, region, account = parts[:4]
    return f"arn:{partition}:iot:{region}:{account}:job/"


def _could_have_been_created(raw: Mapping[str, Any]) -> bool:
    """Whether a Create with these properties got as far as calling IoT."""
    try:
        schema.parse_properties(raw)
    except Exception:  # A Delete must never fail on its properties.
        return False
    return True


helper = OneResponseCfnResource(_fallback_physical_id)


def _request(event: dict[str, Any], context: Any, *, validate: bool = True) -> lifecycle.JobRequest:
    raw = _raw_properties(event)
    old_raw = _raw_properties(event, "OldResourceProperties")
    old: dict[str, Any] | None
    try:
        old = schema.parse_properties(old_raw) if old_raw else None
    except schema.InvalidPropertyError:
        old = None
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000.0 - _RESPONSE_RESERVE_SECONDS
    # Neither waits nor IoT requests may run into the time needed to answer.
    iot_api.set_deadline(deadline + _LAST_REQUEST_MARGIN_SECONDS)
    iot_api.set_fallback_region(_region_of(event.get("StackId")))
    return lifecycle.JobRequest(
        owner=_owner(event),
        properties=schema.parse_properties(raw) if validate else raw,
        physical_id=event.get("PhysicalResourceId"),
        old_properties=old,
        old_raw_properties=old_raw,
        deadline=deadline,
        job_arn_prefix=_job_arn_prefix(context),
    )


def _respond(result: lifecycle.JobResult) -> str:
    helper.Data.update(result.attributes())
    return result.job_id


@helper.create
def create(event: dict[str, Any], context: Any) -> str:
    """Create the job; the physical id is its JobId."""
    return _respond(lifecycle.create(_request(event, context)))


@helper.update
def update(event: dict[str, Any], context: Any) -> str:
    """Update in place, or return a new JobId when the job was replaced."""
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
            create_may_be_in_flight=_could_have_been_created(raw),
        )
    except iot_api.IotUnavailableError as error:
        # Failing would leave the stack in DELETE_FAILED or ROLLBACK_FAILED
        # until the environment is fixed; nothing was touched, so say so.
        logger.error("Delete could not reach IoT: %s", error)
        helper.Reason = f"{error}; job {request.physical_id} was not checked and, if it exists, is left as it is"
    return request.physical_id


def handler(event: dict[str, Any], context: Any) -> None:
    """The Lambda handler: answers CloudFormation exactly once per event."""
    helper(event, context)
