"""The calls a waiting rollout gate makes outside IoT: hand over, and ask how the stack is.

A gate outlives one Lambda invocation (15 minutes at most): the invocation
hands the event over to a new one with an asynchronous Invoke of its own
function. While it waits, it asks CloudFormation whether the stack is still
in the operation that sent the event, so a cancel or a rollback ends the wait.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from functools import cache
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from .iot_api import CLIENT_CONFIG
from .physical_id import arn_parts

__all__ = ["GateApi", "HandOverError", "default_gate_api"]

logger = logging.getLogger(__name__)

#: Lambda's limit on an asynchronous invocation's payload.
MAX_ASYNC_PAYLOAD_BYTES = 1024 * 1024


class HandOverError(Exception):
    """The next invocation could not be started."""


class GateApi:
    """Lambda and CloudFormation clients for a waiting gate, built on first use per region."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str | None], Any] = {}

    def _client(self, service: str, arn: str) -> Any:
        parts = arn_parts(arn)
        region = parts[2] if parts else None
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = boto3.client(service, config=CLIENT_CONFIG, region_name=region)  # type: ignore[call-overload]
        return self._clients[key]

    def invoke_async(self, function_arn: str, event: Mapping[str, Any]) -> None:
        """Start ``function_arn`` on ``event`` asynchronously (``InvocationType=Event``).

        Raises
        ------
        HandOverError
            When the payload is over Lambda's 1 MB or Lambda refused it.
        """
        payload = json.dumps(event, separators=(",", ":")).encode()
        if len(payload) > MAX_ASYNC_PAYLOAD_BYTES:
            raise HandOverError(f"the event is {len(payload)} bytes, over Lambda's 1 MB for an asynchronous invoke")
        try:
            response = self._client("lambda", function_arn).invoke(
                FunctionName=function_arn, InvocationType="Event", Payload=payload
            )
        except (ClientError, BotoCoreError) as error:
            raise HandOverError(f"invoking {function_arn} failed: {error}") from error
        if response.get("StatusCode") != 202:
            raise HandOverError(f"invoking {function_arn} answered HTTP {response.get('StatusCode')}, not 202")

    def stack_status(self, stack_id: str) -> str | None:
        """The stack's status (``UPDATE_ROLLBACK_IN_PROGRESS``, ...), or ``None`` when it cannot be read."""
        try:
            stacks = self._client("cloudformation", stack_id).describe_stacks(StackName=stack_id)["Stacks"]
        except (ClientError, BotoCoreError) as error:
            # Without the answer the gate still ends by its own rules and timeout.
            logger.info("the stack's status cannot be read: %s", error)
            return None
        return str(stacks[0]["StackStatus"]) if stacks else None


@cache
def default_gate_api() -> GateApi:
    """The process's gate clients, reused by every invocation."""
    return GateApi()
