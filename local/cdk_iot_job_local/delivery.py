"""Deliver one custom resource event to whatever runs it locally, as :mod:`.support` decided.

A provider function runs in a Lambda-like process from its kept asset folder,
with its ``Environment.Variables``, in the stack's account and region; CDK's
handlers and ``Custom::AWS`` calls run in-process. Whatever runs it, the
engine gets back what CloudFormation would have received. An in-process
answer is held to CloudFormation's 4096-byte limit on the response body, as a
provider's PUT is. While a provider keeps the resource in progress (a rollout
gate handing over from one invocation to the next), a :data:`Watcher` may
show what it waits for.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from cdk_iot_job_provider.response import MAX_BODY_BYTES

from . import aws_sdk_call, cdk_handlers
from .environment import Environment
from .runtime import CustomResourceResponse, LocalAws
from .state import ResourceState
from .support import Handling

__all__ = ["Watcher", "deliver"]

_DEFAULT_TIMEOUT = 3.0

Watcher = Callable[[Mapping[str, Any]], AbstractContextManager[Callable[[], None] | None]]
"""Given an event about to be sent to a provider function: a context that lasts while the engine
waits for its answer, yielding what to call about every 0.2 s meanwhile (``None``: nothing)."""


def deliver(
    aws: LocalAws,
    event: dict[str, Any],
    handling: Handling,
    *,
    environment: Environment,
    provider: ResourceState | None,
    assets_dir: Path,
    watcher: Watcher | None = None,
) -> CustomResourceResponse:
    """Send ``event`` and return the answer CloudFormation would get.

    Parameters
    ----------
    aws
        The embedded AWS.
    event
        The event (:func:`.events.custom_resource_event`).
    handling
        How the resource runs (:func:`.support.support_of`).
    environment
        The stack's account and region.
    provider
        For :attr:`Handling.PROVIDER`: the deployed function its ServiceToken names, if any.
    assets_dir
        Where functions' code folders are kept.
    watcher
        For a provider function: what to run while its invocations go on.
    """
    if handling is Handling.CDK:
        s3 = aws.client("s3", account=environment.account, region=environment.region)
        return _within_limit(event, cdk_handlers.handle(event, s3))
    if handling is Handling.AWS_SDK:
        answer = aws_sdk_call.handle(event, aws, account=environment.account, region=environment.region)
        return _within_limit(event, answer)
    if handling is not Handling.PROVIDER:
        raise ValueError(f"{event['LogicalResourceId']} is {handling}: no event is delivered")
    if provider is None or provider.asset is None:
        return CustomResourceResponse(
            "FAILED",
            str(event.get("PhysicalResourceId") or ""),
            f"ServiceToken {event.get('ServiceToken')!r} names no deployed provider function",
            {},
        )
    variables = _variables(provider.properties)
    with watcher(event) if watcher is not None else nullcontext(None) as on_wait:
        # Only when there are some: subclasses of LocalAws may override invoke() without these keywords.
        extra: dict[str, Any] = {"variables": variables} if variables else {}
        if on_wait is not None:
            extra["on_wait"] = on_wait
        response, _logs = aws.invoke(
            assets_dir / provider.asset,
            provider.handler or "index.handler",
            event,
            timeout=provider.timeout or _DEFAULT_TIMEOUT,
            **extra,
        )
    return response


def _variables(properties: Mapping[str, Any]) -> dict[str, str]:
    environment = properties.get("Environment") or {}
    variables = environment.get("Variables") if isinstance(environment, Mapping) else None
    return {str(key): str(value) for key, value in (variables or {}).items()}


def _within_limit(event: Mapping[str, Any], answer: CustomResourceResponse) -> CustomResourceResponse:
    body = {
        "Status": answer.status,
        "Reason": answer.reason,
        "PhysicalResourceId": answer.physical_id,
        "StackId": event.get("StackId"),
        "RequestId": event.get("RequestId"),
        "LogicalResourceId": event.get("LogicalResourceId"),
        "NoEcho": False,
        "Data": answer.data,
    }
    if len(json.dumps(body).encode()) <= MAX_BODY_BYTES:
        return answer
    # What CloudFormation answers a body over the limit (AwsCustomResource's outputPaths exist for this).
    return CustomResourceResponse("FAILED", answer.physical_id, "Response object is too long.", {})
