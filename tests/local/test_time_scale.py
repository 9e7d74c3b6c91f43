"""The local time scale in the Lambda-like process (:mod:`cdk_iot_job_local.lambda_bootstrap`).

Under a :class:`~cdk_iot_job_local.virtual_time.TimeScale` a function's
timeout counts down in virtual time (a 300 s function lasts 5 s at 60), and
our provider's handler is built with scaled clocks and waits; in real time
nothing changes.
"""

from __future__ import annotations

import textwrap
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from provider_asset import bundle_provider_asset

from cdk_iot_job_local.fleet import FleetPolicy
from cdk_iot_job_local.iot_fake import StrictIotFake
from cdk_iot_job_local.lambda_bootstrap import PROVIDER_HANDLER, SCALE_VARIABLE
from cdk_iot_job_local.lambda_process import MIN_REAL_TIMEOUT_S, LambdaProcess, lambda_runtime_path
from cdk_iot_job_local.runtime import CustomResourceResponse, LocalAws
from cdk_iot_job_local.virtual_time import ENV_SCALE, TimeScale

pytestmark = pytest.mark.usefixtures("aws_env")

FUNCTION_TIMEOUT = 300.0
# Sleeps half a second of real time and says how much of its timeout the context says is left before and after.
CLOCK_SRC = """
import time


def handler(event, context):
    before = context.get_remaining_time_in_millis()
    time.sleep(event["seconds"])
    return {"before": before, "after": context.get_remaining_time_in_millis()}
"""


@pytest.fixture(scope="module")
def runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lambda_runtime_path(tmp_path_factory.mktemp("runtime"))


@pytest.fixture(scope="module")
def clock_asset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("clock-asset")
    (folder / "index.py").write_text(textwrap.dedent(CLOCK_SRC))
    return folder


def _elapsed_ms(asset: Path, runtime_dir: Path, time_scale: TimeScale | None) -> tuple[int, dict[str, Any]]:
    """Virtual milliseconds the context counted down during 0.5 s of real time."""
    with LambdaProcess(
        asset, "index.handler", runtime_path=runtime_dir, function_timeout=FUNCTION_TIMEOUT, time_scale=time_scale
    ) as process:
        reply = process.invoke({"seconds": 0.5})
    assert reply["ok"], reply
    result: dict[str, Any] = reply["result"]
    return result["before"] - result["after"], result


def test_the_bootstrap_reads_the_variable_the_time_scale_sets() -> None:
    assert SCALE_VARIABLE == ENV_SCALE


def test_under_scale_60_the_remaining_time_counts_down_60_times_faster(clock_asset: Path, runtime_dir: Path) -> None:
    elapsed, result = _elapsed_ms(clock_asset, runtime_dir, TimeScale(60))

    # Half a real second is 30 virtual seconds (slack for a slow machine either way).
    assert 25_000 <= elapsed <= 45_000, result
    assert result["before"] <= FUNCTION_TIMEOUT * 1000


def test_in_real_time_the_remaining_time_counts_down_in_real_time(clock_asset: Path, runtime_dir: Path) -> None:
    elapsed, result = _elapsed_ms(clock_asset, runtime_dir, None)

    assert 400 <= elapsed <= 5_000, result


@pytest.mark.parametrize(
    ("function_timeout", "time_scale", "kill_after"),
    [
        (300.0, None, 301.0),  # real time: the function timeout plus a second of grace, as before
        (300.0, TimeScale(60), 6.0),  # 300 virtual seconds are 5 real ones
        (3.0, TimeScale(60), MIN_REAL_TIMEOUT_S + 1),  # never less than a few real seconds
    ],
)
def test_the_parent_kills_an_overrunning_invocation_after_the_real_duration_of_its_timeout(
    runtime_dir: Path, clock_asset: Path, function_timeout: float, time_scale: TimeScale | None, kill_after: float
) -> None:
    process = LambdaProcess(
        clock_asset, "index.handler", runtime_path=runtime_dir, function_timeout=function_timeout, time_scale=time_scale
    )
    assert process.kill_after == pytest.approx(kill_after)


# --------------------------------------------------------------------------
# our provider under a time scale
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def provider_asset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bundle_provider_asset(tmp_path_factory.mktemp("provider") / "asset")


@pytest.fixture(scope="module")
def scaled_provider(provider_asset: Path) -> dict[str, Any]:
    """What the provider's process says of itself at scale 60 (one LocalAws at a time: it is closed)."""
    with LocalAws(time_scale=TimeScale(60)) as aws:
        return aws.provider(provider_asset, PROVIDER_HANDLER, FUNCTION_TIMEOUT).introspect()


def test_the_provider_is_built_with_the_scaled_clocks_and_waits(scaled_provider: dict[str, Any]) -> None:
    dependencies = scaled_provider["handler"]["dependencies"]

    assert scaled_provider["time_scale"] == 60.0
    assert dependencies["sleep"].endswith("TimeScale.sleep")
    assert dependencies["monotonic"].endswith("TimeScale.monotonic")
    assert dependencies["clock"].endswith("TimeScale.now")
    assert dependencies["send_response"].startswith("ResponseSender(")
    assert "TimeScale.sleep" in dependencies["send_response"]


def test_the_scaled_provider_keeps_the_other_dependencies_at_their_defaults(scaled_provider: dict[str, Any]) -> None:
    dependencies = scaled_provider["handler"]["dependencies"]

    assert dependencies["iot_client"].endswith("iot_api.client_for")
    assert dependencies["timing"].startswith("Timing(")
    assert dependencies["reserve"].startswith("Reserve(")


def test_in_real_time_the_provider_is_the_module_s_handler(provider_asset: Path) -> None:
    with LocalAws() as aws:
        info = aws.provider(provider_asset, PROVIDER_HANDLER, FUNCTION_TIMEOUT).introspect()

    assert info["time_scale"] == 1.0
    assert info["handler"]["dependencies"]["sleep"] == "time.sleep"
    assert info["handler"]["dependencies"]["monotonic"] == "time.monotonic"


def test_a_scaled_provider_handles_an_event_through_its_scaled_dependencies(provider_asset: Path) -> None:
    # GIVEN a 300 s provider at scale 60, and an event it cannot even parse
    with LocalAws(time_scale=TimeScale(60)) as aws:
        started = time.monotonic()
        response, _logs = aws.invoke(
            provider_asset,
            PROVIDER_HANDLER,
            {
                "RequestType": "Create",
                "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/scaled/1",
                "LogicalResourceId": "Job",
                "ResourceType": "Custom::IotJob",
                "ResourceProperties": {"ServiceToken": "x", "Targets": "not a list"},
            },
            timeout=FUNCTION_TIMEOUT,
        )

    # THEN it answers (FAILED, naming the property) as in real time
    assert response.status == "FAILED"
    assert "Targets" in response.reason
    assert time.monotonic() - started < 30


GATED_FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:gated-provider"
GATED_STACK = "arn:aws:cloudformation:us-east-1:123456789012:stack/gated/1"


def _gated_create(
    provider_asset: Path, fleet: str, gate: dict[str, str], on_wait: Callable[[LocalAws], None] | None = None
) -> tuple[CustomResourceResponse, str, float]:
    """A gated Create of a job for three things, at scale 60; the response, the logs and the real seconds."""
    clock = TimeScale(60)
    fake = StrictIotFake(deletion_polls=1, check_targets=True, fleet=FleetPolicy.parse(fleet), clock=clock)
    with LocalAws(fake=fake, time_scale=clock) as aws:
        urllib.request.urlopen(  # moto's backends live in this process: an empty account
            urllib.request.Request(f"{aws.endpoint_url}/moto-api/reset", method="POST"), timeout=10
        ).close()
        iot = aws.client("iot")
        things = [iot.create_thing(thingName=f"gate-sensor-{n}")["thingArn"] for n in range(3)]
        aws.stack_status[GATED_STACK] = "CREATE_IN_PROGRESS"
        event = {
            "RequestType": "Create",
            "ServiceToken": GATED_FUNCTION,
            "StackId": GATED_STACK,
            "RequestId": str(uuid.uuid4()),
            "LogicalResourceId": "GatedJob",
            "ResourceType": "Custom::IotJob",
            "ResourceProperties": {
                "ServiceToken": GATED_FUNCTION,
                "ServiceTimeout": "1200",
                "Targets": things,
                "Document": '{"operation":"reboot"}',
                "RolloutGate": gate,
            },
        }
        extra: dict[str, Any] = {"on_wait": lambda: on_wait(aws)} if on_wait is not None else {}
        started = time.monotonic()
        # A 2-minute function: a gate longer than that hands over to new invocations.
        response, logs = aws.invoke(provider_asset, PROVIDER_HANDLER, event, timeout=120, **extra)
        return response, logs, time.monotonic() - started


def test_a_gated_create_passes_across_hand_overs_in_seconds_at_scale_60(provider_asset: Path) -> None:
    # GIVEN things that all succeed 10 to 60 virtual seconds after their execution starts, and a gate
    # that bakes 3 minutes
    gate = {"MinSucceededPercent": "100", "BakeTimeInMinutes": "3", "TimeoutInMinutes": "15"}

    # WHEN CloudFormation sends the Create
    response, logs, took = _gated_create(provider_asset, "succeed=1,delay=10..60s,seed=3", gate)

    # THEN the gate passed with every thing succeeded, after several invocations, in seconds
    assert response.status == "SUCCESS", (response, logs)
    assert response.data["GateVerdict"] == "PASS"
    assert (response.data["SucceededThings"], response.data["TargetedThings"]) == ("3", "3")
    assert "handed over to invocation" in logs
    assert took < 60


def test_a_gate_stops_waiting_when_its_stack_is_no_longer_in_progress(provider_asset: Path) -> None:
    # GIVEN things that never answer, and a gate that would wait 15 minutes for them
    gate = {"MinSucceededPercent": "100", "TimeoutInMinutes": "15"}

    def cancel(aws: LocalAws) -> None:
        # WHEN the stack is canceled while the gate waits (DescribeStacks answers what the registry holds)
        aws.stack_status[GATED_STACK] = "ROLLBACK_IN_PROGRESS"

    response, logs, took = _gated_create(provider_asset, "silent=1", gate, on_wait=cancel)

    # THEN the provider stopped waiting and answered FAILED, long before the gate's timeout
    assert response.status == "FAILED", (response, logs)
    assert "the stack is ROLLBACK_IN_PROGRESS" in response.reason
    assert took < 15 * 60 / 60
