"""The gate's mechanics on a virtual clock: polls, baton, hand-over, failure actions.

IoT here is a scripted stand-in: each DescribeJob returns the next scripted
job state, so every poll is accounted for. The fleet-level behaviour (real
executions, the asset in a Lambda-like process) is tests/system/test_gate.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cdk_iot_job_provider import gate_rules, rollout_gate
from cdk_iot_job_provider.gate_api import HandOverError
from cdk_iot_job_provider.iot_api import JobNotFoundError
from cdk_iot_job_provider.lifecycle import JobRequest, JobResult
from cdk_iot_job_provider.ownership import Owner
from cdk_iot_job_provider.rollout_gate import BATON_TAG, GATE_KEY, GateRun, GateState, GateTiming

JOB_ID = "canary-1"
JOB_ARN = f"arn:aws:iot:us-east-1:123456789012:job/{JOB_ID}"
STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/Fleet/1"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:provider"
START = datetime(2026, 12, 3, 12, 0, tzinfo=UTC).timestamp()


class Clock:
    """Virtual time: sleeping advances it, nothing else does."""

    def __init__(self) -> None:
        self.now = START
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now - START

    def clock(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


def job(status: str = "IN_PROGRESS", **numbers: int) -> dict[str, Any]:
    details = {f"numberOf{name}Things": value for name, value in numbers.items()}
    return {"jobId": JOB_ID, "jobArn": JOB_ARN, "status": status, "jobProcessDetails": details}


@dataclass
class ScriptedIot:
    """DescribeJob answers from ``script`` (the last entry repeats); tags are kept."""

    script: list[dict[str, Any] | Exception | None]
    tags: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    groups: dict[str, set[str]] = field(default_factory=dict)
    after_tag: Callable[[dict[str, str]], None] | None = None

    def describe_job(self, job_id: str) -> dict[str, Any] | None:
        self.calls.append(("describe_job", job_id))
        answer = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def list_tags(self, job_arn: str) -> dict[str, str]:
        self.calls.append(("list_tags", job_arn))
        if self.tags.get("gone"):
            raise JobNotFoundError("gone")
        return dict(self.tags)

    def tag_job(self, job_arn: str, tags: dict[str, str]) -> None:
        self.calls.append(("tag_job", dict(tags)))
        self.tags.update(tags)
        if self.after_tag:
            self.after_tag(self.tags)

    def group_things(self, group: str) -> set[str]:
        self.calls.append(("group_things", group))
        return self.groups[group]

    def cancel_job(self, job_id: str, **kwargs: Any) -> None:
        self.calls.append(("cancel_job", kwargs))

    def delete_job(self, job_id: str, **kwargs: Any) -> None:
        self.calls.append(("delete_job", kwargs))

    def named(self, name: str) -> list[Any]:
        return [argument for called, argument in self.calls if called == name]


@dataclass
class RecordingApi:
    statuses: list[str | None] = field(default_factory=lambda: ["CREATE_IN_PROGRESS"])
    handed_over: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    refuse: bool = False

    def invoke_async(self, function_arn: str, event: dict[str, Any]) -> None:
        if self.refuse:
            raise HandOverError("AccessDeniedException")
        self.handed_over.append((function_arn, event))

    def stack_status(self, stack_id: str) -> str | None:
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]


def gate_run(
    iot: ScriptedIot,
    clock: Clock,
    api: RecordingApi | None = None,
    *,
    deadline: float = 840.0,
    targets: list[str] | None = None,
    **gate: Any,
) -> GateRun:
    properties = {
        "Targets": targets or [f"arn:aws:iot:us-east-1:123456789012:thing/t{index}" for index in range(10)],
        "RolloutGate": {"MinSucceededPercent": 90, **gate},
    }
    request = JobRequest(
        owner=Owner(STACK_ID, "Canary", "request-1"),
        properties=properties,
        iot=iot,  # type: ignore[arg-type]
        deadline=deadline,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        clock=clock.clock,
    )
    tokens = count(1)
    return GateRun(
        request=request,
        gate=gate_rules.GateConfig.of(properties["RolloutGate"]),
        api=api or RecordingApi(),  # type: ignore[arg-type]
        event={"RequestType": "Create", "StackId": STACK_ID, "RequestId": "request-1", "ResponseURL": "https://cfn"},
        function_arn=FUNCTION_ARN,
        timing=GateTiming(poll_seconds=30, settle_seconds=2),
        new_token=lambda: f"n{next(tokens)}",
    )


def start(run: GateRun) -> rollout_gate.GateOutcome:
    return rollout_gate.start(run, JobResult(JOB_ID, JOB_ARN, created=True), answer_by=START + 3575)


def test_passes_once_the_threshold_holds_for_the_bake_time() -> None:
    iot = ScriptedIot([job(Queued=10), job(Succeeded=9, InProgress=1), job(Succeeded=10)])
    clock = Clock()

    outcome = start(gate_run(iot, clock, BakeTimeInMinutes=1))

    assert outcome.kind == "PASS"
    assert outcome.attributes["SucceededThings"] == "10"
    assert outcome.attributes["TargetedThings"] == "10"
    # Threshold met at the second poll (30 s), held for 60 s: PASS at the fourth poll.
    assert len(iot.named("describe_job")) == 4
    assert clock.sleeps == [2, 30, 30, 30]
    assert iot.tags[BATON_TAG] == "n1.done"
    assert not iot.named("cancel_job")


def test_fails_over_the_failure_maximum_and_cancels_the_new_job() -> None:
    iot = ScriptedIot([job(Queued=10), job(Succeeded=5, Failed=2, Queued=3)])

    outcome = start(gate_run(iot, Clock(), MaxFailedPercent=10))

    assert outcome.kind == "FAIL"
    assert "2 of 10 (20.0%) failed" in outcome.reason
    assert "job canary-1 canceled (OnFailure CANCEL)" in outcome.reason
    (cancel,) = iot.named("cancel_job")
    assert cancel["reason_code"] == "ROLLOUT_GATE_FAILED"
    assert cancel["force"] is False
    assert cancel["comment"].startswith("Rollout gate failed: 2 of 10 (20.0%) failed")


@pytest.mark.parametrize(
    ("action", "call", "arguments"),
    [("CANCEL_FORCE", "cancel_job", {"force": True}), ("DELETE", "delete_job", {"force": True})],
)
def test_failure_actions(action: str, call: str, arguments: dict[str, Any]) -> None:
    iot = ScriptedIot([job(Queued=10), job(Failed=10)])

    outcome = start(gate_run(iot, Clock(), OnFailure=action))

    assert outcome.kind == "FAIL"
    (made,) = iot.named(call)
    assert arguments.items() <= made.items()


def test_a_job_canceled_by_iot_fails_quoting_its_reason_and_is_not_canceled_again() -> None:
    aborted = {**job("CANCELED", Failed=6, Canceled=4), "reasonCode": "FAILED_THRESHOLD", "comment": "aborted"}
    iot = ScriptedIot([job(Queued=10), aborted])

    outcome = start(gate_run(iot, Clock()))

    assert outcome.kind == "FAIL"
    assert "the job was canceled (reasonCode FAILED_THRESHOLD: aborted)" in outcome.reason
    assert not iot.named("cancel_job")


def test_hands_over_before_the_invocations_deadline_with_the_gate_state() -> None:
    iot = ScriptedIot([job(Queued=10)])
    clock = Clock()
    api = RecordingApi()

    outcome = start(gate_run(iot, clock, api, deadline=100.0, BakeTimeInMinutes=5))

    assert outcome.kind == "HANDED_OVER"
    ((function, event),) = api.handed_over
    assert function == FUNCTION_ARN
    state = GateState.of(event[GATE_KEY])
    assert (state.seq, state.baton, state.counted, state.job_arn) == (1, "n1.0.n2", 10, JOB_ARN)
    assert state.started_at == START  # the gate's clock starts before the baton is claimed
    assert event["ResponseURL"] == "https://cfn"
    # Polls at 2, 32, 62 and 92 s: the next one (122 s) would pass the deadline.
    assert clock.monotonic() <= 100.0
    assert len(iot.named("describe_job")) == 4
    assert iot.tags[BATON_TAG] == "n1.0.n2"


def test_the_successor_takes_the_baton_and_carries_the_bake_on() -> None:
    iot = ScriptedIot([job(Succeeded=10)], tags={BATON_TAG: "chain.0.old"})
    clock = Clock()
    state = GateState(JOB_ID, JOB_ARN, "chain", 1, "chain.0.old", START - 600, START + 2000, 10, START - 100)

    outcome = rollout_gate.resume(gate_run(iot, clock, BakeTimeInMinutes=2), state)

    assert outcome.kind == "PASS"
    assert iot.named("tag_job")[0] == {BATON_TAG: "chain.1.n1"}
    # The threshold held since 100 s before; 20 s more after the first poll make 120 s.
    assert clock.sleeps == [2, 30]


@pytest.mark.parametrize(
    "tags",
    [{BATON_TAG: "chain.1.other"}, {BATON_TAG: "chain.done"}, {}],
    ids=["a duplicate took it", "the gate has answered", "no baton"],
)
def test_a_duplicated_hand_over_stops_without_polling(tags: dict[str, str]) -> None:
    iot = ScriptedIot([job(Succeeded=10)], tags=dict(tags))
    state = GateState(JOB_ID, JOB_ARN, "chain", 1, "chain.0.old", START, START + 2000, 10)

    outcome = rollout_gate.resume(gate_run(iot, Clock()), state)

    assert outcome.kind == "SUPERSEDED"
    assert not iot.named("describe_job")
    assert not iot.named("tag_job")


def test_a_duplicated_create_finds_the_gate_held_and_stays_silent() -> None:
    iot = ScriptedIot([job(Succeeded=10)], tags={BATON_TAG: "first.0.n9"})

    outcome = start(gate_run(iot, Clock()))

    assert outcome.kind == "SUPERSEDED"
    assert not iot.named("describe_job")


def test_of_two_simultaneous_claims_only_the_last_writer_goes_on() -> None:
    iot = ScriptedIot([job(Succeeded=10)])
    # Another delivery writes its baton while this one settles.
    iot.after_tag = lambda tags: tags.update({BATON_TAG: "twin.0.x"}) if tags[BATON_TAG] != "twin.0.x" else None

    outcome = start(gate_run(iot, Clock()))

    assert outcome.kind == "SUPERSEDED"
    assert not iot.named("describe_job")


def test_a_verdict_is_not_acted_on_when_the_baton_was_taken_meanwhile() -> None:
    iot = ScriptedIot([job(Queued=10), job(Failed=10)])
    run = gate_run(iot, Clock())
    original_describe = iot.describe_job

    def describe_then_lose_baton(job_id: str) -> dict[str, Any] | None:
        answer = original_describe(job_id)
        if answer and answer["jobProcessDetails"].get("numberOfFailedThings"):
            iot.tags[BATON_TAG] = "twin.0.x"
        return answer

    iot.describe_job = describe_then_lose_baton  # type: ignore[method-assign]

    outcome = start(run)

    assert outcome.kind == "SUPERSEDED"
    assert not iot.named("cancel_job")


def test_a_stack_rolling_back_ends_the_wait_within_one_poll() -> None:
    iot = ScriptedIot([job(Queued=10)])
    api = RecordingApi(statuses=["UPDATE_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS"])

    outcome = start(gate_run(iot, Clock(), api))

    assert outcome.kind == "FAIL"
    assert "the stack is UPDATE_ROLLBACK_IN_PROGRESS" in outcome.reason
    assert len(iot.named("describe_job")) == 2
    assert iot.named("cancel_job")


def test_a_delete_while_waiting_ends_the_wait_at_the_next_poll() -> None:
    iot = ScriptedIot([job(Queued=10), job("DELETION_IN_PROGRESS", Queued=10)])

    outcome = start(gate_run(iot, Clock()))

    assert outcome.kind == "FAIL"
    assert "deleted while the gate waited" in outcome.reason
    assert not iot.named("cancel_job")
    assert len(iot.named("describe_job")) == 2


def test_the_timeout_fails_with_the_stragglers_and_is_polled_on_time() -> None:
    iot = ScriptedIot([job(Queued=10), job(Succeeded=8, InProgress=2)])
    clock = Clock()

    outcome = start(gate_run(iot, clock, TimeoutInMinutes=1))

    assert outcome.kind == "FAIL"
    assert "the gate timed out after 1 min" in outcome.reason
    assert "2 thing(s) never answered" in outcome.reason
    # Polls at 2 and 32 s, then at the timeout itself, not a poll interval later.
    assert clock.now - START == pytest.approx(60)


def test_throttled_polls_back_off() -> None:
    throttled = ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "DescribeJob")
    iot = ScriptedIot([job(Queued=10), throttled, throttled, job(Succeeded=10)])
    clock = Clock()

    outcome = start(gate_run(iot, clock))

    assert outcome.kind == "PASS"
    assert clock.sleeps == [2, 30, 60, 120]


def test_a_refused_hand_over_fails_the_gate_and_cancels_the_job() -> None:
    iot = ScriptedIot([job(Queued=10)])

    outcome = start(gate_run(iot, Clock(), RecordingApi(refuse=True), deadline=10.0))

    assert outcome.kind == "FAIL"
    assert "the gate could not continue in a new invocation: AccessDeniedException" in outcome.reason
    assert iot.named("cancel_job")


def test_groups_are_counted_once_per_thing_and_expected_targets_wins() -> None:
    groups = {"canary": {"a", "b", "c"}, "lab": {"c", "d"}}
    targets = [
        "arn:aws:iot:us-east-1:123456789012:thinggroup/canary",
        "arn:aws:iot:us-east-1:123456789012:thinggroup/lab",
        "arn:aws:iot:us-east-1:123456789012:thing/a",
        "arn:aws:iot:us-east-1:123456789012:thing/e",
    ]
    counted = ScriptedIot([job("COMPLETED", Succeeded=5)], groups=groups)
    expected = ScriptedIot([job("COMPLETED", Succeeded=5)], groups=groups)

    by_count = start(gate_run(counted, Clock(), targets=targets))
    by_expectation = start(gate_run(expected, Clock(), targets=targets, ExpectedTargets=50))

    assert by_count.attributes["TargetedThings"] == "5"
    assert by_count.kind == "PASS"
    assert by_expectation.attributes["TargetedThings"] == "50"
    assert by_expectation.kind == "FAIL"
    assert "the job completed with 5 of 50 (10.0%) succeeded" in by_expectation.reason
    assert not expected.named("group_things")
