"""Tests for the simulated fleet (cdk_iot_job_local/fleet.py) and the job executions the strict IoT fake plays
with it (cdk_iot_job_local/job_executions.py): policy specs, determinism, targets, statuses over time, abort
criteria, timeouts, pacing, CONTINUOUS jobs, CancelJob, execution numbers and the state file."""

from __future__ import annotations

import datetime
import json
import time
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from cdk_iot_job_local.fleet import DEFAULT_FLEET, Answer, FleetPolicy
from cdk_iot_job_local.iot_fake import StrictIotFake
from cdk_iot_job_local.job_executions import ABORT_REASON_CODE
from cdk_iot_job_local.moto_state import restore, snapshot
from cdk_iot_job_local.virtual_time import TimeScale

REGION = "us-east-1"
ACCOUNT = "123456789012"
# The environment of tests/local/conftest.py for each test; server_url is its moto server.
pytestmark = pytest.mark.usefixtures("aws_env")

NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})
START = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)


class ManualClock:
    """A clock that moves only when told, in virtual seconds since :data:`START`."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def now(self) -> datetime.datetime:
        return START + datetime.timedelta(seconds=self.seconds)

    def at(self, seconds: float) -> None:
        self.seconds = seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[StrictIotFake]:
    with StrictIotFake(clock=clock) as installed:
        yield installed


@pytest.fixture
def iot(fake: StrictIotFake) -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("iot", region_name=REGION, config=NO_RETRY)


def thing_arn(name: str) -> str:
    return f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{name}"


def group_arn(name: str) -> str:
    return f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/{name}"


def things(iot: Any, *names: str) -> list[str]:
    for name in names:
        iot.create_thing(thingName=name)
    return [thing_arn(name) for name in names]


def group(iot: Any, name: str, members: tuple[str, ...] = (), parent: str | None = None) -> str:
    params = {"parentGroupName": parent} if parent else {}
    arn: str = iot.create_thing_group(thingGroupName=name, **params)["thingGroupArn"]
    for member in members:
        iot.add_thing_to_thing_group(thingGroupName=name, thingName=member)
    return arn


def create(iot: Any, job_id: str, targets: list[str], **kwargs: Any) -> None:
    iot.create_job(jobId=job_id, targets=targets, document="{}", **kwargs)


def statuses(iot: Any, job_id: str) -> dict[str, str]:
    """Each thing's execution status, from ListJobExecutionsForJob."""
    listed = iot.list_job_executions_for_job(jobId=job_id)["executionSummaries"]
    return {e["thingArn"].rsplit("/", 1)[1]: e["jobExecutionSummary"]["status"] for e in listed}


def counts(iot: Any, job_id: str) -> dict[str, int]:
    """DescribeJob's non-zero jobProcessDetails counts, by short name (``{"Succeeded": 2}``)."""
    details = iot.describe_job(jobId=job_id)["job"]["jobProcessDetails"]
    return {
        key[len("numberOf") : -len("Things")]: value
        for key, value in details.items()
        if key.startswith("numberOf") and value
    }


# ------------------------------------------------------------------ policy
def test_a_spec_sets_fractions_delay_seed_and_per_thing_overrides() -> None:
    policy = FleetPolicy.parse("succeed=0.97,fail=0.03,delay=2..20s,seed=7", overrides={"Sensor-1": "fail@5s"})

    assert (policy.fractions, policy.delay, policy.seed) == ((0.97, 0.03, 0.0, 0.0), (2.0, 20.0), 7)
    assert policy.answer("any-job", "Sensor-1") == Answer("fail", 5.0)
    assert all(2.0 <= policy.answer("any-job", f"t{i}").delay_seconds <= 20.0 for i in range(200))


@pytest.mark.parametrize(
    ("delay", "seconds"),
    [("500ms", (0.5, 0.5)), ("3s", (3.0, 3.0)), ("1..2m", (60.0, 120.0)), ("250ms..1s", (0.25, 1.0))],
)
def test_delays_take_ms_s_and_m_units_and_single_values(delay: str, seconds: tuple[float, float]) -> None:
    assert FleetPolicy.parse(f"succeed=1,delay={delay}").delay == seconds


def test_omitted_items_default_to_a_fleet_that_succeeds_within_ten_seconds() -> None:
    policy = FleetPolicy.parse("seed=3")
    assert (policy.fractions, policy.delay) == ((1.0, 0.0, 0.0, 0.0), (1.0, 10.0))
    assert (DEFAULT_FLEET.fractions, DEFAULT_FLEET.delay, DEFAULT_FLEET.seed) == ((1.0, 0.0, 0.0, 0.0), (1.0, 10.0), 0)


def test_describe_summarizes_the_policy_in_one_line() -> None:
    policy = FleetPolicy.parse(
        "succeed=0.97,fail=0.03,delay=2..20s,seed=7", overrides={"Sensor-1": "fail", "Sensor-2": "reject@1..2m"}
    )
    assert policy.describe() == (
        "fleet: 97% succeed, 3% fail; answers 2-20 s after start; seed 7; "
        "overrides: Sensor-1 fail, Sensor-2 reject@60..120s"
    )
    assert DEFAULT_FLEET.describe() == "fleet: 100% succeed; answers 1-10 s after start; seed 0"


@pytest.mark.parametrize(
    ("spec", "overrides", "message"),
    [
        ("succeed=0.9,fail=0.2", None, "fleet: succeed=0.9 and fail=0.2 sum to 1.1, not 1"),
        ("succeed=0.5,fail=0.2,reject=0.1", None, "fleet: succeed=0.5, fail=0.2 and reject=0.1 sum to 0.8, not 1"),
        ("silent=0.5", None, "fleet: silent=0.5 is 0.5, not 1"),
        ("succeed=1.5", None, "fleet: succeed=1.5 must be a fraction from 0 to 1"),
        ("fail=lots", None, "fleet: fail=lots is not a number"),
        ("sucess=1", None, "fleet: unknown key 'sucess'"),
        ("succeed", None, "fleet: 'succeed' is not key=value"),
        ("succeed=1,succeed=1", None, "fleet: succeed is given twice"),
        ("succeed=1,delay=20..2s", None, "fleet: delay '20..2s' ends before it starts"),
        ("succeed=1,delay=5", None, "fleet: delay '5' needs a unit"),
        ("succeed=1,delay=5h", None, "fleet: delay '5h' is not a duration"),
        ("succeed=1,seed=x", None, "fleet: seed=x is not an integer"),
        ("  ", None, "fleet: the spec is empty"),
        ("succeed=1", {"Sensor-1": "explode"}, "fleet: override Sensor-1='explode': the outcome must be one of"),
        ("succeed=1", {"Sensor-1": "fail@soon"}, "fleet: override Sensor-1 'soon' is not a duration"),
    ],
)
def test_a_bad_spec_is_refused_naming_the_problem(spec: str, overrides: Mapping[str, str] | None, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        FleetPolicy.parse(spec, overrides=overrides)
    assert str(raised.value).startswith(message)


def test_answers_depend_on_seed_job_and_thing_not_on_the_order_of_calls() -> None:
    names = [f"sensor-{i}" for i in range(200)]
    spec = "succeed=0.7,fail=0.2,reject=0.05,silent=0.05,seed="
    policy = FleetPolicy.parse(spec + "7")

    forward = [policy.answer("fw-1", name) for name in names]
    backward = [policy.answer("fw-1", name) for name in reversed(names)][::-1]
    again = [FleetPolicy.parse(spec + "7").answer("fw-1", name) for name in names]
    other_seed = [FleetPolicy.parse(spec + "8").answer("fw-1", name) for name in names]
    other_job = [policy.answer("fw-2", name) for name in names]

    assert forward == backward == again
    assert hash(policy) == hash(FleetPolicy.parse(spec + "7"))  # usable as a key, e.g. of a cache
    assert forward != other_seed and forward != other_job
    assert {answer.outcome for answer in forward} == {"succeed", "fail", "reject", "silent"}


def test_outcome_shares_follow_the_fractions() -> None:
    policy = FleetPolicy.parse("succeed=0.7,fail=0.3,seed=1")
    outcomes = [policy.answer("job", f"thing-{i}").outcome for i in range(2000)]
    assert 0.65 < outcomes.count("succeed") / len(outcomes) < 0.75
    assert outcomes.count("succeed") + outcomes.count("fail") == len(outcomes)


# ------------------------------------------------------------------ targets
def test_executions_cover_thing_targets_and_nested_group_members_once(iot: Any) -> None:
    # GIVEN a parent group, a child and a grandchild, sharing a member, and a thing outside them
    things(iot, "a", "b", "c", "d", "outsider")
    parent = group(iot, "parent", ("a",))
    group(iot, "child", ("a", "b"), parent="parent")
    group(iot, "grandchild", ("c",), parent="child")

    # WHEN a job targets the parent group and thing d (and thing a again)
    create(iot, "fw", [parent, thing_arn("d"), thing_arn("a")])

    # THEN each of a, b, c and d has exactly one execution, numbered 1; no group has one
    assert statuses(iot, "fw") == dict.fromkeys(["a", "b", "c", "d"], "QUEUED")
    numbers = {
        e["thingArn"]: e["jobExecutionSummary"]["executionNumber"]
        for e in iot.list_job_executions_for_job(jobId="fw")["executionSummaries"]
    }
    assert set(numbers.values()) == {1}
    assert counts(iot, "fw") == {"Queued": 4}


def test_without_a_fleet_executions_stay_queued_and_the_job_in_progress(iot: Any, clock: ManualClock) -> None:
    create(iot, "quiet", things(iot, "a", "b"), timeoutConfig={"inProgressTimeoutInMinutes": 1})
    clock.at(24 * 3600)
    job = iot.describe_job(jobId="quiet")["job"]
    assert job["status"] == "IN_PROGRESS"
    assert counts(iot, "quiet") == {"Queued": 2}


# --------------------------------------------------------------- over time
def test_counts_move_with_the_clock_until_a_snapshot_job_completes(
    iot: Any, fake: StrictIotFake, clock: ManualClock
) -> None:
    # GIVEN devices that all succeed 10 s after they start, notified 20 a minute (one each 3 s)
    fake.fleet = FleetPolicy.parse("succeed=1,delay=10s")
    create(iot, "fw", things(iot, "a", "b", "c"), jobExecutionsRolloutConfig={"maximumPerMinute": 20})

    # THEN each read sees the executions as they are at that moment
    assert counts(iot, "fw") == {"InProgress": 1, "Queued": 2}
    clock.at(6)
    assert counts(iot, "fw") == {"InProgress": 3}
    clock.at(12)
    assert counts(iot, "fw") == {"Succeeded": 1, "InProgress": 2}
    assert iot.describe_job(jobId="fw")["job"]["jobProcessDetails"]["processingTargets"] == [
        thing_arn(n) for n in "abc"
    ]

    # WHEN the last device has answered (at 6 + 10 s)
    clock.at(16)
    job = iot.describe_job(jobId="fw")["job"]

    # THEN the job is COMPLETED when the last execution ended, and no longer rolling out
    assert counts(iot, "fw") == {"Succeeded": 3}
    assert job["status"] == "COMPLETED"
    assert job["completedAt"] == START + datetime.timedelta(seconds=16)
    assert "processingTargets" not in job["jobProcessDetails"]
    assert [j["status"] for j in iot.list_jobs()["jobs"]] == ["COMPLETED"]


def test_a_completed_job_can_be_deleted_without_force_even_before_anyone_read_it(
    iot: Any, fake: StrictIotFake, clock: ManualClock
) -> None:
    fake.fleet = FleetPolicy.parse("succeed=1,delay=1s")
    create(iot, "fw", things(iot, "a"))
    clock.at(5)
    iot.delete_job(jobId="fw")  # no force: the fake saw it complete at 1 s
    assert iot.describe_job(jobId="fw")["job"]["status"] == "DELETION_IN_PROGRESS"


def test_per_thing_override_wins_over_the_fractions(iot: Any, fake: StrictIotFake, clock: ManualClock) -> None:
    fake.fleet = FleetPolicy.parse("succeed=1,delay=1s", overrides={"b": "reject@3s", "c": "fail"})
    create(iot, "fw", things(iot, "a", "b", "c"))
    clock.at(2)
    assert statuses(iot, "fw") == {"a": "SUCCEEDED", "b": "IN_PROGRESS", "c": "FAILED"}
    clock.at(4)  # b, notified second, started at 0.06 s (IoT's default rate: 1000 a minute)
    assert statuses(iot, "fw") == {"a": "SUCCEEDED", "b": "REJECTED", "c": "FAILED"}


def test_the_same_fleet_gives_the_same_deploy_the_same_result(clock: ManualClock) -> None:
    def deploy(order: list[str]) -> dict[str, str]:
        clock.at(0)
        policy = FleetPolicy.parse("succeed=0.6,fail=0.2,reject=0.2,delay=1..30s,seed=11")
        with StrictIotFake(fleet=policy, clock=clock), mock_aws():
            iot = boto3.client("iot", region_name=REGION, config=NO_RETRY)
            things(iot, *order)
            create(iot, "fw", [group(iot, "fleet", tuple(order))])
            clock.at(60)
            return statuses(iot, "fw")

    names = [f"sensor-{i:02}" for i in range(30)]
    first, second = deploy(names), deploy(list(reversed(names)))
    assert first == second
    assert set(first.values()) == {"SUCCEEDED", "FAILED", "REJECTED"}


# ---------------------------------------------------------------- timeouts
def test_executions_still_in_progress_when_the_timer_runs_out_time_out(
    iot: Any, fake: StrictIotFake, clock: ManualClock
) -> None:
    # GIVEN a silent device, one that answers after the 1-minute timeout and one that answers in time
    fake.fleet = FleetPolicy.parse("succeed=1,delay=30s", overrides={"mute": "silent", "slow": "succeed@2m"})
    create(iot, "fw", things(iot, "fast", "mute", "slow"), timeoutConfig={"inProgressTimeoutInMinutes": 1})

    clock.at(50)
    execution = iot.describe_job_execution(jobId="fw", thingName="mute")["execution"]
    assert execution["status"] == "IN_PROGRESS"
    assert 9 <= execution["approximateSecondsBeforeTimedOut"] <= 10

    clock.at(61)
    assert statuses(iot, "fw") == {"fast": "SUCCEEDED", "mute": "TIMED_OUT", "slow": "TIMED_OUT"}
    assert counts(iot, "fw") == {"Succeeded": 1, "TimedOut": 2}
    assert iot.describe_job(jobId="fw")["job"]["status"] == "COMPLETED"


# ----------------------------------------------------------------- pacing
def test_maximum_per_minute_paces_when_devices_are_notified(iot: Any, fake: StrictIotFake, clock: ManualClock) -> None:
    # GIVEN five devices that take an hour, notified 2 a minute
    fake.fleet = FleetPolicy.parse("succeed=1,delay=60m")
    create(iot, "fw", things(iot, "a", "b", "c", "d", "e"), jobExecutionsRolloutConfig={"maximumPerMinute": 2})

    # THEN the k-th (in thing-name order) starts k/2 minutes after the job
    seen = []
    for second in (0, 29, 30, 119, 120):
        clock.at(second)
        seen.append(counts(iot, "fw").get("InProgress", 0))
    assert seen == [1, 1, 2, 4, 5]
    started = {
        name: iot.describe_job_execution(jobId="fw", thingName=name)["execution"]["startedAt"] for name in "abcde"
    }
    assert started == {name: START + datetime.timedelta(seconds=30 * k) for k, name in enumerate("abcde")}


def test_an_exponential_rate_paces_at_its_base_rate(iot: Any, fake: StrictIotFake, clock: ManualClock) -> None:
    fake.fleet = FleetPolicy.parse("succeed=1,delay=60m")
    rollout = {
        "maximumPerMinute": 1000,
        "exponentialRate": {
            "baseRatePerMinute": 1,
            "incrementFactor": 2,
            "rateIncreaseCriteria": {"numberOfNotifiedThings": 1},
        },
    }
    create(iot, "fw", things(iot, "a", "b", "c"), jobExecutionsRolloutConfig=rollout)
    clock.at(90)
    assert counts(iot, "fw") == {"InProgress": 2, "Queued": 1}


# ------------------------------------------------------------------ abort
ABORT = {
    "criteriaList": [
        {"failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 50, "minNumberOfExecutedThings": 2}
    ]
}


@pytest.mark.parametrize("reads", [(100, 400), (400,)], ids=["watched", "read-once"])
def test_abort_criteria_cancel_the_job_and_its_queued_executions_while_in_progress_ones_continue(
    iot: Any, fake: StrictIotFake, clock: ManualClock, reads: tuple[int, ...]
) -> None:
    # GIVEN one device notified every 30 s: a and c fail 1 s after starting, b succeeds after 5 minutes
    fake.fleet = FleetPolicy.parse("succeed=1,delay=5m", overrides={"a": "fail@1s", "c": "fail@1s"})
    create(
        iot,
        "fw",
        things(iot, "a", "b", "c", "d", "e"),
        jobExecutionsRolloutConfig={"maximumPerMinute": 2},
        abortConfig=ABORT,
    )

    # WHEN c fails at 61 s (2 of 2 completed executions FAILED), read at any later times
    for second in reads:
        clock.at(second)
        statuses(iot, "fw")

    # THEN the job was canceled at 61 s with IoT's own reason, d and e never started, b went on and succeeded
    job = iot.describe_job(jobId="fw")["job"]
    assert (job["status"], job["reasonCode"]) == ("CANCELED", ABORT_REASON_CODE)
    assert "2 of 2 completed executions" in job["comment"] and "FAILED" in job["comment"]
    assert job["forceCanceled"] is False
    assert statuses(iot, "fw") == {"a": "FAILED", "b": "SUCCEEDED", "c": "FAILED", "d": "CANCELED", "e": "CANCELED"}
    canceled = iot.describe_job_execution(jobId="fw", thingName="d")["execution"]
    assert canceled["lastUpdatedAt"] == START + datetime.timedelta(seconds=61)
    assert "startedAt" not in canceled
    assert counts(iot, "fw") == {"Succeeded": 1, "Failed": 2, "Canceled": 2}


def test_abort_criteria_wait_for_the_minimum_number_of_completed_executions(
    iot: Any, fake: StrictIotFake, clock: ManualClock
) -> None:
    fake.fleet = FleetPolicy.parse("succeed=1,delay=5m", overrides={"a": "fail@1s"})
    create(iot, "fw", things(iot, "a", "b", "c"), abortConfig=ABORT)
    clock.at(60)
    assert iot.describe_job(jobId="fw")["job"]["status"] == "IN_PROGRESS"  # 1 of 1 failed, but 2 are needed
    assert statuses(iot, "fw") == {"a": "FAILED", "b": "IN_PROGRESS", "c": "IN_PROGRESS"}


def test_abort_criteria_of_type_all_count_rejected_and_timed_out_together(
    iot: Any, fake: StrictIotFake, clock: ManualClock
) -> None:
    # GIVEN a rejects at 1 s, c and d succeed at 5 s, b never answers and times out at 60 s
    fake.fleet = FleetPolicy.parse("succeed=1,delay=5s", overrides={"a": "reject@1s", "b": "silent"})
    criteria = [{"failureType": "ALL", "action": "CANCEL", "thresholdPercentage": 50, "minNumberOfExecutedThings": 3}]
    create(
        iot,
        "fw",
        things(iot, "a", "b", "c", "d"),
        abortConfig={"criteriaList": criteria},
        timeoutConfig={"inProgressTimeoutInMinutes": 1},
    )

    # THEN 1 of 3 failed at 5 s (33%): no abort yet
    clock.at(30)
    assert iot.describe_job(jobId="fw")["job"]["status"] == "IN_PROGRESS"
    # and with b's timeout, 2 of 4 (50%, REJECTED and TIMED_OUT together) abort the job
    clock.at(61)
    job = iot.describe_job(jobId="fw")["job"]
    assert (job["status"], job["reasonCode"]) == ("CANCELED", ABORT_REASON_CODE)
    assert "2 of 4 completed executions" in job["comment"]


# ---------------------------------------------------------------- CancelJob
@pytest.mark.parametrize("force", [False, True])
def test_cancel_job_cancels_queued_executions_and_in_progress_ones_only_with_force(
    iot: Any, fake: StrictIotFake, clock: ManualClock, force: bool
) -> None:
    # GIVEN a IN_PROGRESS, b and c QUEUED (one device a minute)
    fake.fleet = FleetPolicy.parse("succeed=1,delay=30s")
    create(iot, "fw", things(iot, "a", "b", "c"), jobExecutionsRolloutConfig={"maximumPerMinute": 1})
    clock.at(5)

    iot.cancel_job(jobId="fw", reasonCode="SUPERSEDED", comment="by fw-2", force=force)
    clock.at(3600)

    # THEN a succeeds unless forced; the job stays CANCELED with its reason, never COMPLETED
    expected_a = "CANCELED" if force else "SUCCEEDED"
    assert statuses(iot, "fw") == {"a": expected_a, "b": "CANCELED", "c": "CANCELED"}
    job = iot.describe_job(jobId="fw")["job"]
    assert (job["status"], job["reasonCode"], job["comment"], job["forceCanceled"]) == (
        "CANCELED",
        "SUPERSEDED",
        "by fw-2",
        force,
    )
    assert iot.describe_job_execution(jobId="fw", thingName="a")["execution"]["forceCanceled"] is force


# ----------------------------------------------------------- CONTINUOUS jobs
def test_a_continuous_job_gives_joiners_executions_and_removes_things_that_leave(
    iot: Any, fake: StrictIotFake, clock: ManualClock
) -> None:
    # GIVEN a CONTINUOUS and a SNAPSHOT job on a group of a and b, whose devices take an hour
    fake.fleet = FleetPolicy.parse("succeed=1,delay=60m")
    things(iot, "a", "b", "c")
    fleet = group(iot, "fleet", ("a", "b"))
    create(iot, "always", [fleet], targetSelection="CONTINUOUS")
    create(iot, "once", [fleet], targetSelection="SNAPSHOT")

    # WHEN c joins at 10 s, b leaves at 20 s and a is deleted at 30 s
    clock.at(10)
    iot.add_thing_to_thing_group(thingGroupName="fleet", thingName="c")
    clock.at(20)
    iot.remove_thing_from_thing_group(thingGroupName="fleet", thingName="b")
    clock.at(30)
    iot.delete_thing(thingName="a")
    clock.at(40)

    # THEN the CONTINUOUS job gave c an execution when it joined; both jobs removed a and b
    assert statuses(iot, "always") == {"a": "REMOVED", "b": "REMOVED", "c": "IN_PROGRESS"}
    joined = iot.describe_job_execution(jobId="always", thingName="c")["execution"]
    assert joined["queuedAt"] == joined["startedAt"] == START + datetime.timedelta(seconds=10)
    removed = iot.describe_job_execution(jobId="always", thingName="b")["execution"]
    assert removed["lastUpdatedAt"] == START + datetime.timedelta(seconds=20)
    assert counts(iot, "always") == {"Removed": 2, "InProgress": 1}
    assert statuses(iot, "once") == {"a": "REMOVED", "b": "REMOVED"}
    assert iot.describe_job(jobId="always")["job"]["status"] == "IN_PROGRESS"  # never completes by itself
    # and the SNAPSHOT job, left with no active execution, is COMPLETED
    assert iot.describe_job(jobId="once")["job"]["status"] == "COMPLETED"


# ------------------------------------------------------- execution numbers
def test_execution_numbers_count_per_thing_across_jobs(iot: Any) -> None:
    create(iot, "first", things(iot, "a", "b"))
    create(iot, "second", [thing_arn("a")])

    assert iot.describe_job_execution(jobId="second", thingName="a", executionNumber=2)["execution"]["status"] == (
        "QUEUED"
    )
    listed = iot.list_job_executions_for_thing(thingName="a")["executionSummaries"]
    assert sorted((e["jobId"], e["jobExecutionSummary"]["executionNumber"]) for e in listed) == [
        ("first", 1),
        ("second", 2),
    ]
    with pytest.raises(ClientError) as raised:
        iot.describe_job_execution(jobId="second", thingName="a", executionNumber=123)
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_cancel_job_execution_of_an_unknown_execution_is_not_found(iot: Any) -> None:
    create(iot, "fw", things(iot, "a"))
    with pytest.raises(ClientError) as raised:
        iot.cancel_job_execution(jobId="fw", thingName="nobody")
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


# --------------------------------------------------------- tags and clocks
def test_jobs_tagged_lists_live_jobs_carrying_the_tag(iot: Any, fake: StrictIotFake) -> None:
    targets = things(iot, "a")
    tag = "cdk-iot-job:request-id"
    for job_id, request in (("one", "r-1"), ("two", "r-1"), ("three", "r-2"), ("gone", "r-1")):
        create(iot, job_id, targets, tags=[{"Key": tag, "Value": request}])
    iot.delete_job(jobId="gone", force=True)

    assert fake.jobs_tagged(tag, "r-1") == [f"arn:aws:iot:{REGION}:{ACCOUNT}:job/{j}" for j in ("one", "two")]
    assert fake.jobs_tagged(tag, "r-3") == []


def test_a_time_scale_plays_minutes_of_fleet_in_a_fraction_of_a_second() -> None:
    # GIVEN ten virtual hours a real second: devices answering 1 to 10 minutes after starting
    clock = TimeScale(36000)
    with StrictIotFake(fleet=FleetPolicy.parse("succeed=1,delay=1..10m"), clock=clock), mock_aws():
        iot = boto3.client("iot", region_name=REGION, config=NO_RETRY)
        targets = things(iot, "a", "b", "c")
        before = clock.time()
        create(iot, "fw", targets)
        time.sleep(clock.real_seconds(11 * 60))  # 0.018 s
        job = iot.describe_job(jobId="fw")["job"]
    assert (job["status"], counts_of(job)) == ("COMPLETED", {"Succeeded": 3})
    # the job's times are the virtual clock's
    assert before - 1 <= job["createdAt"].timestamp() <= job["completedAt"].timestamp() <= clock.time()


def counts_of(job: Mapping[str, Any]) -> dict[str, int]:
    details = job["jobProcessDetails"]
    return {k[len("numberOf") : -len("Things")]: v for k, v in details.items() if k.startswith("numberOf") and v}


# ------------------------------------------------------------- state file
def reset(url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")).close()


def test_executions_survive_a_snapshot_and_restore_and_play_on(server_url: str) -> None:
    # GIVEN a job half-way through its rollout: a and b IN_PROGRESS, c QUEUED, on a server's moto
    clock = ManualClock()
    reset(server_url)
    fleet = FleetPolicy.parse("succeed=1,delay=90s")
    with StrictIotFake(fleet=fleet, clock=clock):
        iot = boto3.client("iot", region_name=REGION, endpoint_url=server_url, config=NO_RETRY)
        create(iot, "fw", things(iot, "a", "b", "c"), jobExecutionsRolloutConfig={"maximumPerMinute": 1})
        clock.at(70)
        before = {e: iot.describe_job_execution(jobId="fw", thingName=e)["execution"] for e in "abc"}
        saved = json.loads(json.dumps(snapshot(None, endpoint_url=server_url, region=REGION)))

        # WHEN the state is restored into a fresh moto
        reset(server_url)
        restore(saved, endpoint_url=server_url, region=REGION)

        # THEN the executions are as they were, and the fleet goes on from there
        after = {e: iot.describe_job_execution(jobId="fw", thingName=e)["execution"] for e in "abc"}
        keys = ("status", "executionNumber", "queuedAt", "startedAt", "lastUpdatedAt")
        assert [[a.get(k) for k in keys] for a in after.values()] == [[b.get(k) for k in keys] for b in before.values()]
        assert counts(iot, "fw") == {"InProgress": 2, "Queued": 1}
        clock.at(95)  # a answers at 90 s, c is notified at 120 s
        assert statuses(iot, "fw") == {"a": "SUCCEEDED", "b": "IN_PROGRESS", "c": "QUEUED"}
        clock.at(300)
        assert iot.describe_job(jobId="fw")["job"]["status"] == "COMPLETED"
        # numbering goes on too
        create(iot, "fw-2", [thing_arn("a")])
        assert iot.describe_job_execution(jobId="fw-2", thingName="a")["execution"]["executionNumber"] == 2
    reset(server_url)
