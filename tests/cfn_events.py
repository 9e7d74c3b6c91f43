"""CloudFormation custom resource events, shaped as CloudFormation sends them.

Built from the JSON samples in ``tests/events/``. Every scalar property is
turned into a string, as CloudFormation does (``50`` arrives as ``"50"``).
"""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

from cdk_iot_job_local.events import stringify

EVENTS_DIR = Path(__file__).parent / "events"
SERVICE_TOKEN = "arn:aws:lambda:us-east-1:123456789012:function:CdkIotJobDemo-CdkIotJobProviderFunction"


def sample(name: str) -> dict[str, Any]:
    """A sample event from ``tests/events/<name>.json``."""
    event: dict[str, Any] = json.loads((EVENTS_DIR / f"{name}.json").read_text())
    return event


def sample_properties() -> dict[str, Any]:
    """The Create sample's properties, without the framework properties."""
    props = copy.deepcopy(sample("create")["ResourceProperties"])
    props.pop("ServiceToken")
    props.pop("ServiceTimeout")
    return props


def event(
    request_type: str,
    properties: dict[str, Any],
    *,
    response_url: str,
    physical_id: str | None = None,
    old_properties: dict[str, Any] | None = None,
    logical_id: str | None = None,
    stack_id: str | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """One event of ``request_type`` carrying ``properties``.

    ``ServiceToken`` and ``ServiceTimeout`` are added to the properties, and
    ``RequestId`` is fresh unless given (a redelivery reuses the same one).
    """
    built = sample(request_type.lower())
    built["ResponseURL"] = response_url
    built["RequestId"] = request_id or str(uuid.uuid4())
    if logical_id is not None:
        built["LogicalResourceId"] = logical_id
    if stack_id is not None:
        built["StackId"] = stack_id
    framework = {"ServiceToken": SERVICE_TOKEN, "ServiceTimeout": "600"}
    built["ResourceProperties"] = {**framework, **stringify(properties)}
    if request_type == "Create":
        built.pop("PhysicalResourceId", None)
    else:
        assert physical_id is not None, "Update and Delete carry a PhysicalResourceId"
        built["PhysicalResourceId"] = physical_id
    if request_type == "Update":
        assert old_properties is not None, "Update carries OldResourceProperties"
        built["OldResourceProperties"] = {**framework, **stringify(old_properties)}
    return built
