"""Rollout gates through the handler, run the way Lambda runs it, against a fleet that answers.

The provider runs from its bundled asset in Lambda-like processes
(:class:`~cdk_iot_job_local.runtime.LocalAws`) against the moto server with
the strict IoT fake, whose jobs have executions answered by a seeded
:class:`~cdk_iot_job_local.fleet.FleetPolicy`. Time runs 60 times faster
(:class:`~cdk_iot_job_local.virtual_time.TimeScale`): a 30 s poll takes half a
second, the provider's 300 s function timeout five seconds, so long gates
really span several invocations handed over by asynchronous self-invokes.

Every test reads the one response CloudFormation receives at the event's
ResponseURL and the jobs as IoT holds them afterwards.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cfn_events import event as cfn_event
from iot_faults import FaultyIotFake
from provider_asset import bundle_provider_asset

from cdk_iot_job_local.fleet import FleetPolicy
from cdk_iot_job_local.runtime import CustomResourceResponse, LocalAws
from cdk_iot_job_local.virtual_time import TimeScale

HANDLER = "cdk_iot_job_provider.handler.handler"
FUNCTION_TIMEOUT = 300.0
ACCOUNT, REGION = "123456789012", "us-east-1"
SCALE = 60.0
POLL_REAL_SECONDS = 30.0 / SCALE


@pytest.fixture(scope="module")
def clock() -> TimeScale:
    return TimeScale(SCALE)


@pytest.fixture(scope="module")
def aws(clock: TimeScale) -> Iterator[LocalAws]:
    fake = FaultyIotFake(deletion_polls=1, check_targets=True, clock=clock)
    with LocalAws(fake=fake, time_scale=clock) as local:
        yield local


@pytest.fixture(scope="module")
def asset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bundle_provider_asset(tmp_path_factory.mktemp("gate") / "asset")


@pytest.fixture
def iot(aws: LocalAws) -> Any:
    return aws.client("iot")


@pytest.fixture
def fleet(aws: LocalAws) -> Iterator[Callable[..., None]]:
    def use(spec: str, **overrides: str) -> None:
        aws.fake.fleet = FleetPolicy.parse(spec, overrides=overrides)

    yield use
    aws.fake.fleet = None


def group_of(iot: Any, size: int, *, prefix: str | None = None) -> tuple[str, list[str]]:
    """A thing group holding ``size`` new things: its ARN and the things' names."""
    prefix = prefix or f"g{uuid.uuid4().hex[:8]}"
    group_arn = iot.create_thing_group(thingGroupName=prefix)["thingGroupArn"]
    names = [f"{prefix}-{index:02d}" for index in range(size)]
    for name in names:
        iot.create_thing(thingName=name)
        iot.add_thing_to_thing_group(thingGroupName=prefix, thingName=name)
    return group_arn, names


def gated(targets: list[str], *, document: dict[str, Any] | None = None, **gate: Any) -> dict[str, Any]:
    """Job properties with a gate, and the ServiceTimeout the construct would set."""
    timeout = int(gate.get("TimeoutInMinutes", 30))
    return {
        "Targets": targets,
        "Document": json.dumps(document or {"operation": "firmware-update", "version": "2.5.0"}),
        "RolloutGate": {"MinSucceededPercent": 100, **gate},
        "ServiceTimeout": str(max(600, timeout * 60 + 300)),
    }


def send(aws: LocalAws, asset: Path, event: dict[str, Any]) -> tuple[CustomResourceResponse, str]:
    """Deliver ``event`` and wait for its invocations; the response and their log."""
    return aws.invoke(asset, HANDLER, event, timeout=FUNCTION_TIMEOUT)


def create_event(properties: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return cfn_event("Create", properties, response_url="replaced-by-invoke", **kwargs)


def job_id_in(physical_id: str) -> str:
    return physical_id.split("?")[0].rsplit("/", 1)[1]


def job_of(iot: Any, physical_id: str) -> dict[str, Any]:
    return dict(iot.describe_job(jobId=job_id_in(physical_id))["job"])


def responses_to(aws: LocalAws, request_id: str) -> list[dict[str, Any]]:
    """Every response CloudFormation received for the event ``request_id``, whatever its URL."""
    return [
        request.json
        for request in aws.endpoint.requests()
        if isinstance(request.json, dict) and request.json.get("RequestId") == request_id
    ]


def jobs_of_request(iot: Any, request_id: str) -> list[str]:
    found = []
    for summary in iot.list_jobs()["jobs"]:
        tags = iot.list_tags_for_resource(resourceArn=summary["jobArn"])["tags"]
        if {"Key": "cdk-iot-job:request-id", "Value": request_id} in tags:
            found.append(summary["jobId"])
    return found


def in_background(work: Callable[[], Any]) -> Callable[[], Any]:
    """Run ``work`` on a thread; the returned function waits for its result."""
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(value=work()), daemon=True)
    thread.start()

    def wait() -> Any:
        thread.join(timeout=120)
        assert not thread.is_alive(), "the event's invocations never finished"
        return result["value"]

    return wait


def wait_for(condition: Callable[[], Any], *, seconds: float = 30.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("the condition never held")


def baton_of(iot: Any, job_id: str) -> str | None:
    arn = iot.describe_job(jobId=job_id)["job"]["jobArn"]
    tags = {tag["Key"]: tag["Value"] for tag in iot.list_tags_for_resource(resourceArn=arn)["tags"]}
    return tags.get("cdk-iot-job:gate")


def test_pass_after_the_bake_answers_success_with_the_final_counts(aws: LocalAws, asset: Path, iot: Any, fleet) -> None:
    group, _names = group_of(iot, 10)
    fleet("succeed=1,delay=5..40s,seed=1")
    # An 8-minute bake outlasts one invocation (300 s): the gate is handed over.
    event = create_event(gated([group], BakeTimeInMinutes=8, TimeoutInMinutes=20))

    started = time.monotonic()
    response, logs = send(aws, asset, event)
    elapsed_virtual = (time.monotonic() - started) * SCALE

    assert response.status == "SUCCESS", response.reason
    assert response.data["GateVerdict"] == "PASS"
    assert (response.data["SucceededThings"], response.data["TargetedThings"]) == ("10", "10")
    assert response.data["FailedThings"] == "0"
    assert response.data["CreatedAt"].endswith("Z")
    assert response.physical_id == response.data["Arn"]
    assert job_of(iot, response.physical_id)["status"] == "COMPLETED"
    assert "handed over to invocation 1" in logs
    assert len(responses_to(aws, event["RequestId"])) == 1
    # The threshold is met by about 40 s (pacing included); PASS follows within the bake and a poll.
    assert 8 * 60 <= elapsed_virtual <= 60 + 8 * 60 + 30 + 60


def test_failures_over_the_maximum_fail_and_the_rollback_deletes_the_new_job(
    aws: LocalAws, asset: Path, iot: Any, fleet
) -> None:
    group, _names = group_of(iot, 20)
    fleet("succeed=0.7,fail=0.3,delay=5..30s,seed=4")
    event = create_event(gated([group], MinSucceededPercent=90, MaxFailedPercent=10, TimeoutInMinutes=10))

    response, _logs = send(aws, asset, event)

    assert response.status == "FAILED"
    assert response.reason.startswith("rollout gate failed: ")
    assert "failed (FAILED+REJECTED+TIMED_OUT), over the maximum of 10%" in response.reason
    assert response.physical_id.endswith(f"?request-id={event['RequestId']}")
    job = job_of(iot, response.physical_id)
    assert job["status"] == "CANCELED"
    assert job["reasonCode"] == "ROLLOUT_GATE_FAILED"
    assert response.data["FailedThings"] != "0"
    # CloudFormation's rollback Delete of the id the Create answered deletes exactly that job.
    rollback = cfn_event("Delete", event["ResourceProperties"], response_url="x", physical_id=response.physical_id)
    deleted, _logs = send(aws, asset, rollback)
    assert deleted.status == "SUCCESS", deleted.reason
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_job(jobId=job["jobId"])


def test_a_job_aborted_by_iot_fails_the_gate_quoting_the_reason_code(
    aws: LocalAws, asset: Path, iot: Any, fleet
) -> None:
    group, _names = group_of(iot, 10)
    fleet("succeed=0.5,fail=0.5,delay=5..20s,seed=2")
    properties = gated([group], MinSucceededPercent=50, TimeoutInMinutes=10)
    properties["AbortConfig"] = {
        "CriteriaList": [
            {"FailureType": "FAILED", "Action": "CANCEL", "ThresholdPercentage": 20, "MinNumberOfExecutedThings": 4}
        ]
    }
    properties["JobExecutionsRolloutConfig"] = {"MaximumPerMinute": 2}

    response, _logs = send(aws, asset, create_event(properties))

    assert response.status == "FAILED"
    job = job_of(iot, response.physical_id)
    assert job["status"] == "CANCELED"
    assert f"the job was canceled (reasonCode {job['reasonCode']}: {job['comment']})" in response.reason
    assert job["reasonCode"] != "ROLLOUT_GATE_FAILED"  # IoT's abort, not the gate's cancel


def test_the_timeout_fails_the_gate_naming_the_stragglers(aws: LocalAws, asset: Path, iot: Any, fleet) -> None:
    group, names = group_of(iot, 6)
    fleet("succeed=1,delay=5..10s,seed=3", **{names[0]: "silent", names[1]: "silent"})

    response, _logs = send(aws, asset, create_event(gated([group], MinSucceededPercent=90, TimeoutInMinutes=3)))

    assert response.status == "FAILED"
    assert "the gate timed out after 3 min" in response.reason
    assert "2 thing(s) never answered" in response.reason
    assert job_of(iot, response.physical_id)["status"] == "CANCELED"


def test_success_becomes_unreachable_before_the_timeout(aws: LocalAws, asset: Path, iot: Any, fleet) -> None:
    group, names = group_of(iot, 5)
    fleet("succeed=1,delay=5..10s,seed=5", **{names[0]: "reject@5s"})

    started = time.monotonic()
    response, _logs = send(aws, asset, create_event(gated([group], MinSucceededPercent=100, TimeoutInMinutes=30)))

    assert response.status == "FAILED"
    assert "success is unreachable: 1 of 5 things ended without succeeding" in response.reason
    assert (time.monotonic() - started) * SCALE < 5 * 60  # long before the 30-minute timeout


def test_a_continuous_job_waits_for_a_thing_that_joins_and_stays_in_progress(
    aws: LocalAws, asset: Path, iot: Any, fleet
) -> None:
    group, _names = group_of(iot, 3)
    group_name = group.rsplit("/", 1)[1]
    fleet("succeed=1,delay=2..5s,seed=6")
    properties = {**gated([group], BakeTimeInMinutes=3, TimeoutInMinutes=15), "TargetSelection": "CONTINUOUS"}
    event = create_event(properties)

    answer = in_background(lambda: send(aws, asset, event))
    job_id = wait_for(lambda: jobs_of_request(iot, event["RequestId"]))[0]
    # While the gate bakes, a device joins the group.
    iot.create_thing(thingName=f"{group_name}-late")
    iot.add_thing_to_thing_group(thingGroupName=group_name, thingName=f"{group_name}-late")
    response, _logs = answer()

    assert response.status == "SUCCESS", response.reason
    assert (response.data["TargetedThings"], response.data["SucceededThings"]) == ("4", "4")
    assert iot.describe_job(jobId=job_id)["job"]["status"] == "IN_PROGRESS"


def test_removed_things_leave_the_denominator(aws: LocalAws, asset: Path, iot: Any, fleet) -> None:
    group, names = group_of(iot, 4)
    group_name = group.rsplit("/", 1)[1]
    fleet("succeed=1,delay=2..5s,seed=7", **{names[3]: "silent"})
    event = create_event(gated([group], MinSucceededPercent=100, BakeTimeInMinutes=1, TimeoutInMinutes=15))

    answer = in_background(lambda: send(aws, asset, event))
    job_id = wait_for(lambda: jobs_of_request(iot, event["RequestId"]))[0]
    wait_for(lambda: baton_of(iot, job_id))
    iot.remove_thing_from_thing_group(thingGroupName=group_name, thingName=names[3])
    response, _logs = answer()

    assert response.status == "SUCCESS", response.reason
    assert (response.data["TargetedThings"], response.data["RemovedThings"]) == ("3", "1")


def test_a_failing_gated_replacement_leaves_the_old_job_and_the_rollback_deletes_the_new_one(
    aws: LocalAws, asset: Path, iot: Any, fleet
) -> None:
    group, _names = group_of(iot, 5)
    fleet("succeed=1,delay=2..5s,seed=8")
    old_properties = gated([group], TimeoutInMinutes=10)
    created, _logs = send(aws, asset, create_event(old_properties))
    assert created.status == "SUCCESS", created.reason
    old_job = job_of(iot, created.physical_id)

    fleet("succeed=0.2,fail=0.8,delay=2..5s,seed=8")
    new_properties = gated([group], document={"operation": "firmware-update", "version": "2.6.0"}, MaxFailedPercent=0)
    update = cfn_event(
        "Update", new_properties, response_url="x", physical_id=created.physical_id, old_properties=old_properties
    )
    failed, _logs = send(aws, asset, update)

    assert failed.status == "FAILED"
    assert failed.physical_id.endswith(f"?request-id={update['RequestId']}")
    new_job = job_of(iot, failed.physical_id)
    assert new_job["jobId"] != old_job["jobId"]
    assert new_job["status"] == "CANCELED"
    assert job_of(iot, created.physical_id) == old_job  # untouched
    # CloudFormation's rollback: the old properties back on the old job, then the new job's Delete.
    back = cfn_event(
        "Update", old_properties, response_url="x", physical_id=created.physical_id, old_properties=new_properties
    )
    restored, _logs = send(aws, asset, back)
    assert (restored.status, restored.physical_id) == ("SUCCESS", created.physical_id)
    cleanup = cfn_event("Delete", new_properties, response_url="x", physical_id=failed.physical_id)
    assert send(aws, asset, cleanup)[0].status == "SUCCESS"
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_job(jobId=new_job["jobId"])
    assert job_of(iot, created.physical_id)["status"] == old_job["status"]


def test_a_duplicate_create_while_the_gate_waits_makes_one_job_and_one_response(
    aws: LocalAws, asset: Path, iot: Any, fleet
) -> None:
    group, _names = group_of(iot, 4)
    fleet("succeed=1,delay=2..5s,seed=9")
    event = create_event(gated([group], BakeTimeInMinutes=4, TimeoutInMinutes=15))

    first = in_background(lambda: send(aws, asset, event))
    job_id = wait_for(lambda: jobs_of_request(iot, event["RequestId"]))[0]
    wait_for(lambda: baton_of(iot, job_id))
    duplicate, duplicate_logs = send(aws, asset, dict(event))
    response, _logs = first()

    assert response.status == "SUCCESS", response.reason
    assert jobs_of_request(iot, event["RequestId"]) == [job_id]
    assert len(responses_to(aws, event["RequestId"])) == 1
    assert "another invocation already waits for this job's gate" in duplicate_logs
    assert duplicate.reason.startswith("no response")  # the duplicate itself sent nothing


def test_a_delete_while_the_gate_waits_ends_the_wait_within_one_poll(
    aws: LocalAws, asset: Path, iot: Any, fleet
) -> None:
    group, names = group_of(iot, 3)
    fleet("succeed=1,delay=2..5s,seed=10", **{names[0]: "silent"})
    event = create_event(gated([group], TimeoutInMinutes=30))

    create = in_background(lambda: send(aws, asset, event))
    job_id = wait_for(lambda: jobs_of_request(iot, event["RequestId"]))[0]
    wait_for(lambda: baton_of(iot, job_id))
    job_arn = iot.describe_job(jobId=job_id)["job"]["jobArn"]
    delete = cfn_event(
        "Delete",
        event["ResourceProperties"],
        response_url="x",
        physical_id=f"{job_arn}?request-id={event['RequestId']}",
    )
    deleted, _logs = send(aws, asset, delete)
    deleted_at = time.monotonic()
    response, _logs = create()

    assert deleted.status == "SUCCESS", deleted.reason
    assert response.status == "FAILED"
    assert "the job was deleted while the gate waited" in response.reason
    # The Create's answer came within one poll (30 s virtual) of the Delete, plus a little real slack.
    answered_at = max(
        request.received_at
        for request in aws.endpoint.requests()
        if request.json and request.json.get("RequestId") == event["RequestId"]
    )
    assert answered_at - deleted_at < POLL_REAL_SECONDS + 1.0
    assert len(responses_to(aws, event["RequestId"])) == 1


def test_a_document_over_8_kb_is_handed_over_whole(aws: LocalAws, asset: Path, iot: Any, fleet) -> None:
    group, _names = group_of(iot, 3)
    fleet("succeed=1,delay=2..5s,seed=11")
    document = {"operation": "firmware-update", "manifest": [f"part-{index:04d}-" + "x" * 80 for index in range(100)]}
    properties = gated([group], document=document, BakeTimeInMinutes=6, TimeoutInMinutes=15)
    assert len(properties["Document"]) > 8192

    response, logs = send(aws, asset, create_event(properties))

    assert response.status == "SUCCESS", response.reason
    assert "handed over to invocation 1" in logs
    assert json.loads(iot.get_job_document(jobId=job_id_in(response.physical_id))["document"]) == document
