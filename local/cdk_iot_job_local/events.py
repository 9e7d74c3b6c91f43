"""CloudFormation custom resource events, shaped as CloudFormation sends them."""

from __future__ import annotations

import uuid
from typing import Any

__all__ = ["custom_resource_event", "stringify"]


def stringify(value: Any) -> Any:
    """Properties as CloudFormation delivers them: every scalar a string.

    Numbers become ``"50"``/``"25.5"`` and booleans ``"true"``/``"false"``.
    """
    if isinstance(value, dict):
        return {key: stringify(item) for key, item in value.items()}
    if isinstance(value, list):
        return [stringify(item) for item in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def custom_resource_event(
    request_type: str,
    *,
    stack_id: str,
    logical_id: str,
    resource_type: str,
    properties: dict[str, Any],
    physical_id: str | None = None,
    old_properties: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One Create, Update or Delete event, without its ``ResponseURL`` (the deliverer adds one).

    ``PhysicalResourceId`` is only in Update and Delete events, and
    ``OldResourceProperties`` only in Updates, when given.
    """
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": properties.get("ServiceToken"),
        "StackId": stack_id,
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": logical_id,
        "ResourceType": resource_type,
        "ResourceProperties": stringify(properties),
    }
    if physical_id is not None:
        event["PhysicalResourceId"] = physical_id
    if old_properties is not None:
        event["OldResourceProperties"] = stringify(old_properties)
    return event
