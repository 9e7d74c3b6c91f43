"""Case 4, event latency: the provider's Create, in-place Update and Delete against the floor.

One embedded AWS (:class:`~cdk_iot_job_local.runtime.LocalAws`: moto on
loopback with the strict IoT fake, ``deletion_polls=1``, and the local HTTPS
stand-in for CloudFormation's response URLs) serves two warm
:class:`~cdk_iot_job_local.lambda_process.LambdaProcess` children started
alike (asset folder plus boto3 only on ``sys.path``, the same environment):
the provider from its asset, and ``floor_provider/bench_floor_handler.py``.
Each repetition sends both a Create, an Update that changes the Description
(in place) and a Delete, alternating which side goes first. Both sides answer
the job's ARN as the physical id and ``Arn``, ``CreatedAt`` and ``JobId`` as
attributes, so both make the same IoT calls: CreateJob then DescribeJob on
Create; DescribeJob, ListTagsForResource and UpdateJob on Update. The times are
the children's own handler durations (``duration_ms`` of the bootstrap,
response PUT included); two warm-up cycles per side are not counted.
Deletion polls are counted from a call log kept by the fake (``DescribeJob``
after ``DeleteJob``, :class:`CallLoggingIotFake`); their time is the floor's,
on the same schedule.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moto.iot.responses import IoTResponse
from stats import Summary, summarize

from cdk_iot_job_local.iot_fake import StrictIotFake
from cdk_iot_job_local.lambda_process import LambdaProcess, lambda_runtime_path
from cdk_iot_job_local.runtime import DEFAULT_ACCOUNT as ACCOUNT
from cdk_iot_job_local.runtime import DEFAULT_REGION as REGION
from cdk_iot_job_local.runtime import LocalAws

__all__ = ["EVENT_TYPES", "EventResults", "measure_events"]

EVENT_TYPES = ("Create", "Update", "Delete")
PROVIDER_HANDLER = "cdk_iot_job_provider.handler.handler"
FLOOR_HANDLER = "bench_floor_handler.handler"
FLOOR_DIR = Path(__file__).resolve().parent / "floor_provider"
FUNCTION_TIMEOUT_S = 300.0
WARM_UP_CYCLES = 2
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/BenchEvents/{uuid.uuid4()}"
SERVICE_TOKEN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:bench-provider"
TARGET_GROUP = "bench-fleet"
TARGET_ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/{TARGET_GROUP}"
JOB_ARN_PREFIX = f"arn:aws:iot:{REGION}:{ACCOUNT}:job/"


@dataclass
class SideTimes:
    """Per event type, the handler durations of one side (ms)."""

    total_ms: dict[str, list[float]] = field(default_factory=lambda: {kind: [] for kind in EVENT_TYPES})
    iot_calls: dict[str, list[int]] = field(default_factory=lambda: {kind: [] for kind in EVENT_TYPES})
    polls: list[int] = field(default_factory=list)
    #: The floor only: an in-place Update making UpdateJob alone, without the ownership read.
    update_job_only_ms: list[float] = field(default_factory=list)


@dataclass
class EventResults:
    """What case 4 measured; the floor's parts come from the floor handler itself."""

    provider: SideTimes
    floor: SideTimes
    floor_iot_ms: dict[str, list[float]]
    floor_put_ms: list[float]
    floor_poll_ms: list[float]
    repetitions: int

    def provider_summary(self, kind: str) -> Summary:
        """The provider's handler time for ``kind`` (ms)."""
        return summarize(self.provider.total_ms[kind])

    def floor_summary(self, kind: str) -> Summary:
        """The floor's handler time for ``kind`` (ms), PUT and, for Delete, polls included."""
        return summarize(self.floor.total_ms[kind])


def _properties(description: str) -> dict[str, Any]:
    # As CloudFormation sends them: every scalar a string.
    return {
        "ServiceToken": SERVICE_TOKEN,
        "ServiceTimeout": "600",
        "Targets": [TARGET_ARN],
        "Document": json.dumps(
            {"operation": "firmware-update", "url": "https://firmware.example.com/fw.bin", "version": "2.4.1"},
            separators=(",", ":"),
            sort_keys=True,
        ),
        "Description": description,
        "JobExecutionsRolloutConfig": {"MaximumPerMinute": "50"},
        "Tags": [{"Key": "team", "Value": "firmware"}, {"Key": "wave", "Value": "wave-1"}],
    }


def _event(
    aws: LocalAws, request_type: str, logical_id: str, physical_id: str | None, description: str, old_description: str
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": SERVICE_TOKEN,
        "ResponseURL": aws.endpoint.response_url(logical_id),
        "StackId": STACK_ID,
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": logical_id,
        "ResourceType": "Custom::IotJob",
        "ResourceProperties": _properties(description),
    }
    if physical_id is not None:
        event["PhysicalResourceId"] = physical_id
    if request_type == "Update":
        event["OldResourceProperties"] = _properties(old_description)
    return event


def _send(aws: LocalAws, process: LambdaProcess, event: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Invoke once; the child's reply and the one response CloudFormation received (SUCCESS, or raise)."""
    reply = process.invoke(event, timeout=FUNCTION_TIMEOUT_S + 30)
    responses = aws.endpoint.responses_for(event["ResponseURL"])
    if not reply["ok"] or len(responses) != 1 or responses[0].get("Status") != "SUCCESS":
        raise RuntimeError(f"{event['RequestType']} did not succeed: {reply.get('error')} {responses}\n{reply['logs']}")
    return reply, responses[0]


def _job_id(physical_id: str) -> str:
    """The JobId of a job's ARN (both sides answer the ARN, as ``Ref`` of ``AWS::IoT::Job``)."""
    return physical_id.removeprefix(JOB_ARN_PREFIX)


def _check_response(step: str, physical_id: str, response: dict[str, Any]) -> None:
    """Both sides answer alike: the job's ARN, and on Create and Update its attributes."""
    if not physical_id.startswith(JOB_ARN_PREFIX):
        raise RuntimeError(f"{step} answered {physical_id!r}, not a job ARN")
    data = response.get("Data") or {}
    if step in ("Create", "Update") and (
        set(data) != {"Arn", "CreatedAt", "JobId"}
        or (data["Arn"], data["JobId"]) != (physical_id, _job_id(physical_id))
    ):
        raise RuntimeError(f"{step} answered the attributes {data!r} for {physical_id}")


class CallLoggingIotFake(StrictIotFake):
    """The engine's strict IoT fake, logging ``(operation, jobId or resourceArn)`` of each call."""

    def __init__(self) -> None:
        super().__init__(deletion_polls=1, check_targets=True)
        self.calls: list[tuple[str, str | None]] = []

    def _answer(self, operation: str, response: IoTResponse, handler: Callable[[IoTResponse], Any]) -> Any:
        key = "resourceArn" if operation in ("TagResource", "UntagResource", "ListTagsForResource") else "jobId"
        self.calls.append((operation, response._get_param(key)))
        return super()._answer(operation, response, handler)


def _calls(aws: LocalAws) -> list[tuple[str, str | None]]:
    """The call log of the fake :func:`measure_events` gives ``aws``."""
    assert isinstance(aws.fake, CallLoggingIotFake)
    return aws.fake.calls


def _polls_after_delete(aws: LocalAws, job_id: str, calls_before: int) -> int:
    """DescribeJob calls on ``job_id`` after its DeleteJob, in the fake's log since ``calls_before``."""
    calls = _calls(aws)[calls_before:]
    operations = [operation for operation, target in calls if target == job_id]
    if "DeleteJob" not in operations:
        raise RuntimeError(f"no DeleteJob on {job_id}")
    return operations[operations.index("DeleteJob") :].count("DescribeJob")


def _cycle(
    aws: LocalAws, process: LambdaProcess, logical_id: str, side: SideTimes | None, floor_parts: EventResults | None
) -> None:
    """Create, update in place and delete one job on one side; record unless warming up (``side`` None)."""
    physical_id: str | None = None
    steps = [("Create", "v1"), ("Update", "v2")]
    if floor_parts is not None:
        steps.append(("UpdateJobOnly", "v3"))
    steps.append(("Delete", steps[-1][1]))
    old_description = "v1"
    for step, version in steps:
        request_type = "Update" if step == "UpdateJobOnly" else step
        description = f"Sensor firmware 2.4.1, {version}"
        old = f"Sensor firmware 2.4.1, {old_description}"
        event = _event(aws, request_type, logical_id, physical_id, description, old)
        old_description = version
        if step == "UpdateJobOnly":
            event["BenchUpdateJobOnly"] = True
        calls_before = len(_calls(aws))
        reply, response = _send(aws, process, event)
        physical_id = str(response["PhysicalResourceId"])
        _check_response(request_type if step != "UpdateJobOnly" else step, physical_id, response)
        if side is None:
            continue
        if step == "UpdateJobOnly":
            side.update_job_only_ms.append(float(reply["duration_ms"]))
            continue
        side.total_ms[request_type].append(float(reply["duration_ms"]))
        side.iot_calls[request_type].append(len(_calls(aws)) - calls_before)
        if request_type == "Delete":
            side.polls.append(_polls_after_delete(aws, _job_id(physical_id), calls_before))
        if floor_parts is not None:
            parts = reply["result"]
            floor_parts.floor_iot_ms[request_type].append(float(parts["iot_ms"]))
            floor_parts.floor_put_ms.append(float(parts["put_ms"]))
            if request_type == "Delete":
                floor_parts.floor_poll_ms.append(float(parts["poll_ms"]))


def measure_events(provider_asset: Path, repetitions: int, *, warm_up_cycles: int = WARM_UP_CYCLES) -> EventResults:
    """Run case 4: ``repetitions`` Create/Update/Delete cycles per side, interleaved, after warm-up cycles."""
    results = EventResults(
        provider=SideTimes(),
        floor=SideTimes(),
        floor_iot_ms={kind: [] for kind in EVENT_TYPES},
        floor_put_ms=[],
        floor_poll_ms=[],
        repetitions=repetitions,
    )
    with tempfile.TemporaryDirectory(prefix="bench-events-") as scratch, LocalAws(fake=CallLoggingIotFake()) as aws:
        # The jobs' target, as a stack would have made it (IoT requires it to exist).
        aws.client("iot").create_thing_group(thingGroupName=TARGET_GROUP)
        runtime = lambda_runtime_path(Path(scratch))
        env = {
            "AWS_ENDPOINT_URL": aws.endpoint_url,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "SSL_CERT_FILE": str(aws.endpoint.ca_pem_path),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        provider = LambdaProcess(
            provider_asset, PROVIDER_HANDLER, env, runtime_path=runtime, function_timeout=FUNCTION_TIMEOUT_S
        )
        floor = LambdaProcess(FLOOR_DIR, FLOOR_HANDLER, env, runtime_path=runtime, function_timeout=FUNCTION_TIMEOUT_S)
        with provider, floor:
            for process in (provider, floor):
                if process.init_error:
                    raise RuntimeError(f"{process.handler} failed to load: {process.init_error}\n{process.logs()}")
            for cycle in range(warm_up_cycles):
                _cycle(aws, provider, f"WarmUp{cycle}", None, None)
                _cycle(aws, floor, f"WarmUp{cycle}", None, None)
            _calls(aws).clear()
            for repetition in range(repetitions):
                order = [(provider, results.provider, None), (floor, results.floor, results)]
                if repetition % 2:
                    order.reverse()
                for process, side, floor_parts in order:
                    _cycle(aws, process, f"BenchJob{repetition}", side, floor_parts)
                    process.clear_logs()
    return results
