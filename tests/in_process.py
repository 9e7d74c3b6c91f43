"""The provider handler run in process, the way Lambda calls it.

:class:`Cfn` builds CloudFormation events, passes them to a provider handler
(``handler.make_handler`` with the test's ``Dependencies``) with a Lambda-like
context, and returns the one response CloudFormation received at the event's
ResponseURL (a local HTTPS endpoint).
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from cfn_events import event
from cfn_faults import FaultyCloudFormationEndpoint

from cdk_iot_job_provider.handler import Dependencies, make_handler

__all__ = ["Cfn", "LambdaContext"]


class LambdaContext:
    """The parts of Lambda's context object crhelper and the handler use."""

    function_name = "CdkIotJobProviderFunction"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:CdkIotJobProviderFunction"
    aws_request_id = "lambda-request"

    def __init__(self, seconds: float = 300.0) -> None:
        self._deadline = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


class Cfn:
    """Builds events and sends them through a handler made with ``dependencies``, like CloudFormation."""

    def __init__(self, endpoint: FaultyCloudFormationEndpoint, dependencies: Dependencies) -> None:
        self.endpoint = endpoint
        self.dependencies = dependencies
        self.handler = make_handler(dependencies)
        #: The Lambda context events get when none is given (default: a fresh 300 s one).
        self.context: LambdaContext | None = None

    def with_dependencies(self, **changes: Any) -> Cfn:
        """A ``Cfn`` on the same endpoint and context whose handler uses these dependencies changed."""
        changed = Cfn(self.endpoint, dataclasses.replace(self.dependencies, **changes))
        changed.context = self.context
        return changed

    def send(self, request_type: str, properties: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        url = self.endpoint.response_url(request_type.lower())
        built = event(request_type, properties, response_url=url, **kwargs)
        return self.deliver(built)

    def deliver(self, built: dict[str, Any], context: LambdaContext | None = None) -> dict[str, Any]:
        self.handler(built, context or self.context or LambdaContext())
        responses = self.endpoint.responses_for(built["ResponseURL"])
        assert len(responses) == 1, f"expected exactly one response, got {len(responses)}"
        body = responses[0]
        assert len(json.dumps(body).encode()) <= 4096
        assert body["PhysicalResourceId"]
        return dict(body)

    def create(self, properties: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self.send("Create", properties, **kwargs)
