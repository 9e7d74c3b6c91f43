"""The ``update_decision`` and ``lifecycle`` modules on their own, without the handler.

``decide_update`` is pure and read as a table. ``lifecycle.create``,
``update`` and ``delete`` get a :class:`~cdk_iot_job_provider.lifecycle.JobRequest`
built the way the handler builds one, from the ``aws`` fixture's IoT client
(moto with the strict IoT fake): the waits (``Timing``), the monotonic clock
and the wall clock are injected, so nothing sleeps and nothing is patched.
Each test reads what IoT ends up holding and what the lifecycle answers.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cfn_events import sample
from job_arns import JOB_ARN_PREFIX, arn

from cdk_iot_job_provider import lifecycle, schema
from cdk_iot_job_provider.iot_api import IotApi
from cdk_iot_job_provider.lifecycle import JobRequest, Timing
from cdk_iot_job_provider.ownership import (
    FINGERPRINT_TAG,
    LOGICAL_ID_TAG,
    REPLACES_TAG,
    REQUEST_TAG,
    STACK_TAG,
    Owner,
    generated_job_id,
)
from cdk_iot_job_provider.physical_id import may_have_created
from cdk_iot_job_provider.update_decision import UpdateDecision, decide_update

REGION = "us-east-1"
GROUP = "arn:aws:iot:us-east-1:123456789012:thinggroup/sensors"
OTHER_GROUP = "arn:aws:iot:us-east-1:123456789012:thinggroup/gateways"
STACK_ID = sample("create")["StackId"]
LOGICAL_ID = "FirmwareRollout76BDADD9"
NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
TIMING = Timing(first_poll_seconds=0.25, max_poll_seconds=0.5, in_flight_grace_seconds=2.5)
WRITES = ("CreateJob", "UpdateJob", "DeleteJob", "CancelJob", "TagResource", "UntagResource")

BASE: dict[str, Any] = {
    "Targets": [GROUP],
    "Document": '{"operation":"reboot"}',
    "Description": "Reboot the sensors",
    "JobExecutionsRolloutConfig": {"MaximumPerMinute": "50"},
    "Tags": [{"Key": "team", "Value": "firmware"}],
}


def props(**changes: Any) -> dict[str, Any]:
    """``BASE`` with some properties replaced (``None`` removes one), as CloudFormation sends them."""
    result = {**BASE, **changes}
    return {name: value for name, value in result.items() if value is not None}


@dataclass
class Clock:
    """The monotonic clock and the sleep of a request: sleeping moves the clock, nothing waits."""

    now: float = 0.0
    slept: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@dataclass
class Requests:
    """Builds :class:`JobRequest` objects the way the handler does, on the ``aws`` fixture's IoT."""

    aws: Any
    clock: Clock

    def __call__(
        self,
        properties: dict[str, Any],
        *,
        physical_id: str | None = None,
        old: dict[str, Any] | None = None,
        request_id: str = "request-1",
        logical_id: str = LOGICAL_ID,
        stack_id: str = STACK_ID,
        deadline: float = float("inf"),
        timing: Timing = TIMING,
        now: datetime = NOW,
    ) -> JobRequest:
        iot_client = self.aws.dependencies.iot_client
        return JobRequest(
            owner=Owner(stack_id, logical_id, request_id),
            properties=schema.parse_properties(properties),
            iot=IotApi(lambda: iot_client(REGION), monotonic=self.clock.monotonic),
            physical_id=physical_id,
            old_properties=schema.parse_properties(old) if old is not None else None,
            old_raw_properties=old or {},
            deadline=deadline,
            timing=timing,
            sleep=self.clock.sleep,
            monotonic=self.clock.monotonic,
            job_arn_prefix=JOB_ARN_PREFIX,
            clock=lambda: now,
        )


@pytest.fixture
def request_for(aws: Any, clock: Clock) -> Requests:
    return Requests(aws, clock)


def job(aws: Any, job_id: str) -> dict[str, Any]:
    return dict(aws.iot.describe_job(jobId=job_id)["job"])


def tags_of(aws: Any, job_id: str) -> dict[str, str]:
    tags = aws.iot.list_tags_for_resource(resourceArn=arn(job_id))["tags"]
    return {tag["Key"]: tag["Value"] for tag in tags}


def job_ids(aws: Any) -> list[str]:
    return sorted(listed["jobId"] for listed in aws.iot.list_jobs()["jobs"])


def writes(aws: Any) -> list[tuple[str, str | None]]:
    return [call for call in aws.fake.calls if call[0] in WRITES]


def iso_millis(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- decide_update ------------------------------------------------------------


def parsed(**changes: Any) -> dict[str, Any]:
    return schema.parse_properties(props(**changes))


@pytest.mark.parametrize(
    ("new", "old", "kwargs", "decision"),
    [
        pytest.param(
            parsed(),
            parsed(),
            {},
            UpdateDecision("none", "no property of the job changed"),
            id="nothing-changed",
        ),
        pytest.param(
            parsed(Description="v2", TimeoutConfig={"InProgressTimeoutInMinutes": "60"}),
            parsed(),
            {},
            UpdateDecision("update", "updatable Description, TimeoutConfig changed", ("Description", "TimeoutConfig")),
            id="updatable-properties",
        ),
        pytest.param(
            parsed(Tags=None, DeleteBehavior="CANCEL"),
            parsed(),
            {},
            UpdateDecision("update", "updatable DeleteBehavior, Tags changed", ("DeleteBehavior", "Tags")),
            id="tags-and-delete-behavior-are-in-place-too",
        ),
        pytest.param(
            parsed(TargetSelection="SNAPSHOT"),
            parsed(),
            {},
            UpdateDecision("none", "no property of the job changed"),
            id="stating-the-default-target-selection",
        ),
        pytest.param(
            parsed(Description="v2"),
            None,
            {"job_fingerprint": schema.create_only_fingerprint(parsed())},
            UpdateDecision(
                "update",
                "updatable Description, JobExecutionsRolloutConfig, Tags changed",
                ("Description", "JobExecutionsRolloutConfig", "Tags"),
            ),
            id="old-properties-invalid-but-the-job-fingerprint-matches",
        ),
        pytest.param(
            parsed(),
            parsed(Targets=[OTHER_GROUP]),
            {"job_fingerprint": schema.create_only_fingerprint(parsed())},
            UpdateDecision("none", "no property of the job changed"),
            id="the-jobs-fingerprint-wins-over-old-properties",
        ),
        pytest.param(
            parsed(Targets=[OTHER_GROUP]),
            parsed(),
            {},
            UpdateDecision("replace", "create-only Targets changed", ("Targets",)),
            id="create-only-with-a-generated-id",
        ),
        pytest.param(
            parsed(Document='{"operation":"update"}', TargetSelection="CONTINUOUS", Description="v2"),
            parsed(),
            {},
            UpdateDecision("replace", "create-only Document, TargetSelection changed", ("Document", "TargetSelection")),
            id="several-create-only-and-an-updatable",
        ),
        pytest.param(
            parsed(JobId="fw-2"),
            parsed(JobId="fw-1"),
            {"old_job_id": "fw-1"},
            UpdateDecision("replace", "JobId changed from fw-1 to fw-2", ("JobId",), "fw-2"),
            id="job-id-changed",
        ),
        pytest.param(
            parsed(),
            parsed(JobId="fw-1"),
            {"old_job_id": "fw-1"},
            UpdateDecision("replace", "JobId removed: the provider generates a new one", ("JobId",)),
            id="job-id-removed",
        ),
        pytest.param(
            parsed(JobId="fw-1", Targets=[OTHER_GROUP]),
            parsed(JobId="fw-1"),
            {"old_job_id": "fw-1"},
            UpdateDecision(
                "refuse",
                "create-only Targets cannot change in place, and JobId 'fw-1' is fixed: give the job a new JobId "
                "(or remove JobId to let the provider generate one) to replace it",
                ("Targets",),
            ),
            id="create-only-under-a-fixed-id",
        ),
        pytest.param(
            parsed(),
            parsed(),
            {"job_fingerprint": "recorded-by-another-version"},
            UpdateDecision("replace", "the job's create-only properties (as recorded on it) changed"),
            id="fingerprint-differs-but-no-property-changed",
        ),
        pytest.param(
            parsed(JobId="fw-1"),
            parsed(JobId="fw-1"),
            {"old_job_id": "fw-1", "job_fingerprint": "recorded-by-another-version"},
            UpdateDecision(
                "refuse",
                "the job's create-only properties (as recorded on it) cannot change in place, and JobId 'fw-1' "
                "is fixed: give the job a new JobId (or remove JobId to let the provider generate one) to replace it",
            ),
            id="fingerprint-differs-under-a-fixed-id",
        ),
    ],
)
def test_an_update_is_a_no_op_in_place_a_replacement_or_refused_by_what_changed(
    new: dict[str, Any], old: dict[str, Any] | None, kwargs: dict[str, Any], decision: UpdateDecision
) -> None:
    assert decide_update(new, old, "fw-1", **kwargs) == decision


# --- create -------------------------------------------------------------------


def test_create_makes_the_job_iot_describes_and_answers_its_arn_id_and_creation_time(
    aws: Any, request_for: Requests
) -> None:
    result = lifecycle.create(request_for(props(JobId="reboot-1")))

    created = job(aws, "reboot-1")
    assert created["status"] == "IN_PROGRESS"
    assert created["targets"] == [GROUP]
    assert created["description"] == "Reboot the sensors"
    assert created["jobExecutionsRolloutConfig"] == {"maximumPerMinute": 50}
    assert aws.iot.get_job_document(jobId="reboot-1")["document"] == '{"operation":"reboot"}'
    assert result.attributes() == {
        "Arn": arn("reboot-1"),
        "JobId": "reboot-1",
        "CreatedAt": iso_millis(created["createdAt"]),
    }


def test_create_tags_the_job_with_the_user_tags_its_owner_and_its_create_only_fingerprint(
    aws: Any, request_for: Requests
) -> None:
    request = request_for(props(), request_id="create-request")

    result = lifecycle.create(request)

    assert result.job_id == generated_job_id(request.owner)
    assert tags_of(aws, result.job_id) == {
        "team": "firmware",
        STACK_TAG: STACK_ID,
        LOGICAL_ID_TAG: LOGICAL_ID,
        REQUEST_TAG: "create-request",
        FINGERPRINT_TAG: schema.create_only_fingerprint(request.properties),
    }


@pytest.mark.parametrize(("lead_minutes", "accepted"), [(29, False), (30, True)])
def test_create_checks_the_schedule_against_the_injected_clock(
    aws: Any, request_for: Requests, lead_minutes: int, accepted: bool
) -> None:
    start = (NOW + timedelta(minutes=lead_minutes)).strftime("%Y-%m-%dT%H:%M")
    request = request_for(props(JobId="scheduled", SchedulingConfig={"StartTime": start}))

    if accepted:
        lifecycle.create(request)
        assert job(aws, "scheduled")["schedulingConfig"]["startTime"] == start
    else:
        with pytest.raises(schema.InvalidPropertyError, match=rf"^SchedulingConfig.StartTime '{start}' must be"):
            lifecycle.create(request)
        assert aws.fake.count("CreateJob") == 0


# --- update -------------------------------------------------------------------


def test_update_in_place_changes_what_iot_holds_and_keeps_the_job(aws: Any, request_for: Requests) -> None:
    # GIVEN a job this resource created
    original = props(JobId="reboot-1")
    created = lifecycle.create(request_for(original))
    fingerprint = tags_of(aws, "reboot-1")[FINGERPRINT_TAG]
    aws.fake.reset()
    # WHEN updatable properties change
    changed = props(
        JobId="reboot-1",
        Description="Reboot the sensors, slowly",
        JobExecutionsRolloutConfig={"MaximumPerMinute": "5"},
        TimeoutConfig={"InProgressTimeoutInMinutes": "30"},
        Tags=[{"Key": "stage", "Value": "canary"}],
    )
    result = lifecycle.update(request_for(changed, physical_id=created.job_arn, old=original, request_id="update-1"))
    # THEN the same job holds the new values, and its ownership tags are as they were
    assert result == created
    updated = job(aws, "reboot-1")
    assert updated["description"] == "Reboot the sensors, slowly"
    assert updated["jobExecutionsRolloutConfig"] == {"maximumPerMinute": 5}
    assert updated["timeoutConfig"] == {"inProgressTimeoutInMinutes": 30}
    tags = tags_of(aws, "reboot-1")
    assert {key: value for key, value in tags.items() if not key.startswith("cdk-iot-job:")} == {"stage": "canary"}
    assert tags[REQUEST_TAG] == "request-1"
    assert tags[FINGERPRINT_TAG] == fingerprint
    assert [operation for operation, _ in writes(aws)] == ["UpdateJob", "UntagResource", "TagResource"]


def test_update_without_usable_old_properties_is_still_in_place_by_the_jobs_fingerprint(
    aws: Any, request_for: Requests
) -> None:
    # A rollback may send back old properties that failed validation: the job's own tags decide.
    created = lifecycle.create(request_for(props()))

    result = lifecycle.update(request_for(props(Description="v2"), physical_id=created.job_arn, old=None))

    assert result.job_arn == created.job_arn
    assert job(aws, created.job_id)["description"] == "v2"
    assert aws.fake.count("CreateJob") == 1


def test_update_that_drops_an_updatable_property_keeps_iots_value_and_says_so(
    aws: Any, request_for: Requests, caplog: pytest.LogCaptureFixture
) -> None:
    original = props()
    created = lifecycle.create(request_for(original))
    caplog.set_level(logging.WARNING, logger="cdk_iot_job_provider")

    lifecycle.update(request_for(props(Description=None), physical_id=created.job_arn, old=original))

    assert job(aws, created.job_id)["description"] == "Reboot the sensors"
    assert f"UpdateJob cannot clear Description: job {created.job_id} keeps its current value" in caplog.text


def test_a_create_only_change_replaces_the_job_and_leaves_the_old_one_for_cloudformations_cleanup(
    aws: Any, request_for: Requests
) -> None:
    # GIVEN a job this resource created
    original = props()
    old = lifecycle.create(request_for(original, request_id="create-request"))
    aws.fake.reset()
    # WHEN its targets change
    changed = props(Targets=[OTHER_GROUP])
    request = request_for(changed, physical_id=old.job_arn, old=original, request_id="update-request")
    new = lifecycle.update(request)
    # THEN a new job answers, made for this request, recording the job it replaces
    assert new.job_arn != old.job_arn
    assert new.job_id == generated_job_id(request.owner)
    assert job(aws, new.job_id)["targets"] == [OTHER_GROUP]
    assert tags_of(aws, new.job_id)[REPLACES_TAG] == old.job_id
    assert tags_of(aws, new.job_id)[REQUEST_TAG] == "update-request"
    # AND the old job is untouched: CloudFormation deletes it once the update succeeded
    assert job(aws, old.job_id)["status"] == "IN_PROGRESS"
    assert job(aws, old.job_id)["targets"] == [GROUP]
    assert writes(aws) == [("CreateJob", new.job_id)]


@pytest.mark.parametrize(
    ("original", "changed"),
    [
        pytest.param(props(), props(Targets=[OTHER_GROUP]), id="create-only-change-with-generated-ids"),
        pytest.param(props(JobId="fw-1"), props(JobId="fw-2"), id="job-id-change"),
    ],
)
def test_rolling_back_a_replacement_returns_to_the_replaced_job_without_a_new_one(
    aws: Any, request_for: Requests, original: dict[str, Any], changed: dict[str, Any]
) -> None:
    # GIVEN a replacement made by an Update that CloudFormation then rolls back
    old = lifecycle.create(request_for(original, request_id="create-request"))
    new = lifecycle.update(request_for(changed, physical_id=old.job_arn, old=original, request_id="update"))
    assert new.job_arn != old.job_arn
    aws.fake.reset()
    # WHEN the rollback Update asks for the original properties on the replacement
    back = lifecycle.update(request_for(original, physical_id=new.job_arn, old=changed, request_id="rollback"))
    # THEN the answer is the original job, as it was, and no job was created
    assert back == old
    assert writes(aws) == []
    assert job_ids(aws) == sorted([old.job_id, new.job_id])


# --- delete -------------------------------------------------------------------


def foreign(aws: Any, request_for: Requests) -> None:
    aws.iot.create_job(jobId="not-ours", targets=[GROUP], document="{}")


def another_resource(aws: Any, request_for: Requests) -> None:
    lifecycle.create(request_for(props(JobId="not-ours"), logical_id="OtherJob"))


def another_stack(aws: Any, request_for: Requests) -> None:
    other_stack = STACK_ID.replace("stack/FleetStack/", "stack/OtherStack/")
    lifecycle.create(request_for(props(JobId="not-ours"), stack_id=other_stack))


@pytest.mark.parametrize("make_job", [foreign, another_resource, another_stack])
def test_delete_of_a_job_this_resource_does_not_own_leaves_it_and_says_so(
    aws: Any, request_for: Requests, make_job: Any
) -> None:
    make_job(aws, request_for)
    aws.fake.reset()

    reason = lifecycle.delete(request_for(props(), physical_id=arn("not-ours")), cancel_only=False, namespace_id=None)

    assert reason == "job not-ours was not created by this resource: left untouched"
    assert job(aws, "not-ours")["status"] == "IN_PROGRESS"
    assert writes(aws) == []


def test_delete_polls_the_deletion_with_doubling_waits_up_to_the_longest(
    aws: Any, request_for: Requests, clock: Clock
) -> None:
    created = lifecycle.create(request_for(props()))
    aws.fake.deletion_polls = 4

    reason = lifecycle.delete(request_for(props(), physical_id=created.job_arn), cancel_only=False, namespace_id=None)

    assert reason == f"job {created.job_id} deleted"
    assert job_ids(aws) == []
    assert clock.slept == [0.25, 0.5, 0.5, 0.5]


def test_delete_that_outlives_its_deadline_answers_that_iot_finishes_it(
    aws: Any, request_for: Requests, clock: Clock
) -> None:
    created = lifecycle.create(request_for(props()))
    aws.fake.deletion_polls = 100

    request = request_for(props(), physical_id=created.job_arn, deadline=1.0)
    reason = lifecycle.delete(request, cancel_only=False, namespace_id=None)

    assert reason == (
        f"job {created.job_id} is still being deleted by IoT when the provider had to answer; "
        "the deletion cannot be stopped and finishes on its own"
    )
    assert clock.slept == [0.25, 0.5]  # a third wait would end after the deadline
    assert job(aws, created.job_id)["status"] == "DELETION_IN_PROGRESS"


def test_delete_waits_for_a_free_deletion_slot(aws: Any, request_for: Requests, clock: Clock) -> None:
    # GIVEN IoT's limit of jobs being deleted at once is reached until the provider has waited twice
    created = lifecycle.create(request_for(props()))
    aws.fake.deletion_polls = 0
    aws.fake.max_concurrent_deletions = 0

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if len(clock.slept) == 2:
            aws.fake.max_concurrent_deletions = 10

    request = request_for(props(), physical_id=created.job_arn)
    reason = lifecycle.delete(dataclasses.replace(request, sleep=sleep), cancel_only=False, namespace_id=None)

    assert reason == f"job {created.job_id} deleted"
    assert clock.slept == [0.25, 0.5]
    assert job_ids(aws) == []


def test_delete_of_a_failed_creates_id_looks_for_a_create_still_in_flight_during_the_grace(
    aws: Any, request_for: Requests, clock: Clock
) -> None:
    physical_id = may_have_created(arn("in-flight"), "create-request")

    reason = lifecycle.delete(request_for(props(), physical_id=physical_id), cancel_only=False, namespace_id=None)

    assert reason == "job in-flight does not exist: nothing to delete"
    assert clock.slept == [1.0, 1.0, 0.5]  # in_flight_grace_seconds=2.5, looked at after each wait
    assert aws.fake.count("DescribeJob", "in-flight") == 4


@pytest.mark.parametrize(
    ("failed_request", "reason", "left"),
    [
        ("create-request", "job in-flight deleted", []),
        ("another-request", "job in-flight was not created by the failed Create: left untouched", ["in-flight"]),
    ],
)
def test_delete_of_a_failed_creates_id_deletes_the_job_only_if_that_request_made_it(
    aws: Any, request_for: Requests, failed_request: str, reason: str, left: list[str]
) -> None:
    lifecycle.create(request_for(props(JobId="in-flight"), request_id="create-request"))
    physical_id = may_have_created(arn("in-flight"), failed_request)

    answer = lifecycle.delete(request_for(props(), physical_id=physical_id), cancel_only=False, namespace_id=None)

    assert answer == reason
    assert job_ids(aws) == left


@pytest.mark.parametrize(("canceled_before", "cancel_calls"), [(False, 1), (True, 0)])
def test_delete_with_cancel_only_cancels_an_active_job_and_keeps_it(
    aws: Any, request_for: Requests, canceled_before: bool, cancel_calls: int
) -> None:
    created = lifecycle.create(request_for(props()))
    if canceled_before:
        aws.iot.cancel_job(jobId=created.job_id)
    aws.fake.reset()

    reason = lifecycle.delete(request_for(props(), physical_id=created.job_arn), cancel_only=True, namespace_id=None)

    assert reason == f"job {created.job_id} canceled and kept (DeleteBehavior CANCEL)"
    assert job(aws, created.job_id)["status"] == "CANCELED"
    assert writes(aws) == [("CancelJob", created.job_id)] * cancel_calls
