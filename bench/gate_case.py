"""Case 6: what a rollout gate costs: IoT calls per poll, invocations per gated hour, PASS latency.

The provider runs from its asset in Lambda-like processes against the moto
server and the local engine's fleet simulator, on a virtual clock
(:class:`~cdk_iot_job_local.virtual_time.TimeScale`), as ``cdk-iot-job-local``
runs it. IoT calls are counted on the fake's one override point (``_answer``).

* **Cost**: a gate whose devices never answer waits until its timeout; every
  DescribeJob is one poll, every hand-over one more invocation.
* **Latency**: every device answers at the same moment; the time from then to
  the PASS response is compared with one poll interval plus the bake time.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdk_iot_job_local.fleet import FleetPolicy
from cdk_iot_job_local.iot_fake import StrictIotFake
from cdk_iot_job_local.runtime import LocalAws
from cdk_iot_job_local.virtual_time import TimeScale

HANDLER = "cdk_iot_job_provider.handler.handler"
FUNCTION_TIMEOUT = 300.0
SERVICE_TOKEN = "arn:aws:lambda:us-east-1:123456789012:function:bench-provider"
STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/GateBench/1"
POLL_SECONDS = 30.0
SCALE = 60.0


class _CountingIotFake(StrictIotFake):
    """The engine's fake, counting each IoT operation it answers."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.counts: Counter[str] = Counter()

    def _answer(self, operation: str, response: Any, handler: Callable[[Any], Any]) -> Any:
        # The fake calls this holding its own lock: counting needs no other.
        self.counts[operation] += 1
        return super()._answer(operation, response, handler)


@dataclass(frozen=True)
class GateFigures:
    """What one gated Create cost, and how late its PASS came."""

    gate_minutes: float
    invocations: int
    polls: int
    iot_calls: dict[str, int]
    invocations_per_hour: float
    pass_latency_s: float
    poll_plus_bake_s: float


def _event(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "RequestType": "Create",
        "ServiceToken": SERVICE_TOKEN,
        "ResponseURL": "replaced",
        "StackId": STACK_ID,
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": "Canary",
        "ResourceType": "Custom::IotJob",
        "ResourceProperties": {"ServiceToken": SERVICE_TOKEN, **properties},
    }


def _properties(group_arn: str, timeout_minutes: int, bake_minutes: int) -> dict[str, Any]:
    return {
        "ServiceTimeout": str(max(600, timeout_minutes * 60 + 300)),
        "Targets": [group_arn],
        "Document": json.dumps({"operation": "firmware-update"}),
        "RolloutGate": {
            "MinSucceededPercent": "100",
            "TimeoutInMinutes": str(timeout_minutes),
            "BakeTimeInMinutes": str(bake_minutes),
        },
    }


def _group(aws: LocalAws, name: str, size: int) -> str:
    iot = aws.client("iot")
    arn = str(iot.create_thing_group(thingGroupName=name)["thingGroupArn"])
    for index in range(size):
        iot.create_thing(thingName=f"{name}-{index}")
        iot.add_thing_to_thing_group(thingGroupName=name, thingName=f"{name}-{index}")
    return arn


def measure_gate(asset_dir: Path, *, timeout_minutes: int = 55, bake_minutes: int = 5) -> GateFigures:
    """Run both gates on one embedded AWS and return the figures."""
    clock = TimeScale(SCALE)
    fake = _CountingIotFake(deletion_polls=1, check_targets=True, clock=clock)
    with LocalAws(fake=fake, time_scale=clock) as aws:
        # Cost: nobody answers, the gate waits its whole timeout.
        fake.fleet = FleetPolicy.parse("silent=1,delay=1s")
        silent = _group(aws, "bench-silent", 10)
        before = Counter(fake.counts)
        response, logs = aws.invoke(
            asset_dir, HANDLER, _event(_properties(silent, timeout_minutes, 0)), timeout=FUNCTION_TIMEOUT
        )
        assert response.status == "FAILED" and "timed out" in response.reason, response.reason
        calls = {name: count - before[name] for name, count in fake.counts.items() if count > before[name]}
        invocations = logs.count("handed over to invocation") + 1

        # Latency: every device succeeds 60 s after the job starts.
        fake.fleet = FleetPolicy.parse("succeed=1,delay=60s")
        answering = _group(aws, "bench-answering", 10)
        started = clock.time()
        response, _logs = aws.invoke(
            asset_dir, HANDLER, _event(_properties(answering, 30, bake_minutes)), timeout=FUNCTION_TIMEOUT
        )
        answered = clock.time()
        assert response.status == "SUCCESS", response.reason
    return GateFigures(
        gate_minutes=timeout_minutes,
        invocations=invocations,
        polls=calls.get("DescribeJob", 0),
        iot_calls=calls,
        invocations_per_hour=invocations * 60.0 / timeout_minutes,
        pass_latency_s=answered - (started + 60.0),
        poll_plus_bake_s=POLL_SECONDS + bake_minutes * 60.0,
    )
