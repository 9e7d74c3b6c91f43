"""Waiting for the fleet: a rollout gate across Lambda invocations.

After CreateJob (a Create, or a replacement), a gated resource stays in
progress while this module polls DescribeJob and judges the counts with
:mod:`.gate_rules`. One invocation waits until shortly before its own
deadline, then hands the event over to a new invocation of the same function
(an asynchronous Invoke whose payload is the event plus :data:`GATE_KEY`).

Exactly one invocation answers each event. The job carries a baton tag
(:data:`BATON_TAG`) naming the invocation that holds the gate: an invocation
claims it (write, wait ``settle_seconds``, read back) before it polls, and
checks it again before it acts on a verdict. A duplicated delivery of the
Create, or of a hand-over, finds the baton taken and stops without answering.
The baton ends as ``<chain>.done`` once the verdict is acted on.

Limits, by design: an invocation that crashes (no retry: the function's
``MaximumRetryAttempts`` is 0) leaves the event unanswered until
CloudFormation's ``ServiceTimeout``; two deliveries that claim the baton more
than ``settle_seconds`` apart *and* both before either wrote it could both
continue (Lambda delivers duplicates far closer together or far later).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from botocore.exceptions import ClientError

from . import gate_rules, physical_id
from .gate_api import GateApi, HandOverError
from .iot_api import DeadlineReachedError, IotApi, JobNotFoundError, error_code
from .lifecycle import JobRequest, JobResult, format_created_at
from .schema import OWNERSHIP_TAG_PREFIX

__all__ = ["BATON_TAG", "GATE_KEY", "GateOutcome", "GateRun", "GateState", "GateTiming", "resume", "start"]

logger = logging.getLogger(__name__)

#: The key of a hand-over event that carries the gate's state.
GATE_KEY = "CdkIotJobGate"
#: The job tag naming the invocation that holds the gate.
BATON_TAG = f"{OWNERSHIP_TAG_PREFIX}gate"
#: IoT's reasonCode on a job the gate canceled.
CANCEL_REASON_CODE = "ROLLOUT_GATE_FAILED"
_IOT_COMMENT_CHARS = 2028
# The stack is still in the operation that sent the event: keep waiting.
_WAITING_STACK_STATUSES = frozenset({"CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "IMPORT_IN_PROGRESS"})
_THROTTLED = frozenset({"ThrottlingException", "TooManyRequestsException", "LimitExceededException"})


@dataclass(frozen=True)
class GateTiming:
    """How a gate polls.

    Parameters
    ----------
    poll_seconds
        Between two DescribeJob polls. Default 30 s; doubled under throttling,
        up to ``max_poll_seconds``.
    max_poll_seconds
        The longest wait between polls. Default 300 s.
    settle_seconds
        Between writing the baton and reading it back. Default 2 s.
    """

    poll_seconds: float = 30.0
    max_poll_seconds: float = 300.0
    settle_seconds: float = 2.0


@dataclass(frozen=True)
class GateState:
    """What one invocation hands to the next (JSON in the hand-over event).

    Times are wall-clock seconds since the Unix epoch. ``baton`` is the baton
    the handing invocation held: its successor claims the gate only from it.
    """

    job_id: str
    job_arn: str
    chain: str
    seq: int
    baton: str
    started_at: float
    answer_by: float
    counted: int
    threshold_met_at: float | None = None

    def payload(self) -> dict[str, Any]:
        """The state as JSON-ready data."""
        return asdict(self)

    @classmethod
    def of(cls, raw: object) -> GateState:
        """The state a hand-over event carries.

        Raises
        ------
        ValueError
            When it is not a state this provider wrote.
        """
        if not isinstance(raw, Mapping):
            raise ValueError(f"{GATE_KEY} must be an object")
        try:
            met = raw.get("threshold_met_at")
            return cls(
                job_id=str(raw["job_id"]),
                job_arn=str(raw["job_arn"]),
                chain=str(raw["chain"]),
                seq=int(raw["seq"]),
                baton=str(raw["baton"]),
                started_at=float(raw["started_at"]),
                answer_by=float(raw["answer_by"]),
                counted=int(raw["counted"]),
                threshold_met_at=float(met) if met is not None else None,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{GATE_KEY} is not a gate state of this provider: {error}") from error


@dataclass(frozen=True)
class GateOutcome:
    """How the invocation ends.

    ``PASS`` and ``FAIL`` are answered to CloudFormation (``FAIL`` after the
    gate's failure action); ``HANDED_OVER`` and ``SUPERSEDED`` are not: another
    invocation holds the event. ``attributes`` are the job's final counts.
    """

    kind: Literal["PASS", "FAIL", "HANDED_OVER", "SUPERSEDED"]
    reason: str
    attributes: Mapping[str, str]


@dataclass(frozen=True)
class GateRun:
    """One invocation's part of a gate.

    ``event`` is the CloudFormation event (without :data:`GATE_KEY`);
    ``function_arn`` the function to hand over to; ``gate`` the parsed
    ``RolloutGate``.
    """

    request: JobRequest
    gate: gate_rules.GateConfig
    api: GateApi
    event: Mapping[str, Any]
    function_arn: str
    timing: GateTiming
    new_token: Callable[[], str] = lambda: uuid.uuid4().hex[:12]

    @property
    def iot(self) -> IotApi:
        return self.request.iot

    def now(self) -> float:
        return self.request.clock().timestamp()


def start(run: GateRun, job: JobResult, *, answer_by: float) -> GateOutcome:
    """Start the gate on the job this request created, and wait for it.

    ``answer_by`` is the wall-clock time after which CloudFormation no longer
    waits (less the time to answer).
    """
    chain = run.new_token()
    state = GateState(
        job_id=job.job_id,
        job_arn=job.job_arn,
        chain=chain,
        seq=0,
        baton="",
        started_at=run.now(),
        answer_by=answer_by,
        counted=0,
    )
    baton = _claim(run, state, expected=None)
    if baton is None:
        return GateOutcome("SUPERSEDED", "another invocation already waits for this job's gate", {})
    try:
        counted = run.gate.expected_targets or _count_targets(run)
    except (ClientError, JobNotFoundError) as error:
        return _finish(
            run,
            replace(state, baton=baton),
            baton,
            gate_rules.Verdict(
                "FAIL",
                f"the gate could not count the targeted things ({error}); set RolloutGate.ExpectedTargets "
                "or allow iot:ListThingsInThingGroup on the groups",
            ),
            None,
        )
    logger.info("gate started on job %s: %d targeted thing(s)", job.job_id, counted)
    return _watch(run, replace(state, baton=baton, counted=counted), baton)


def resume(run: GateRun, state: GateState) -> GateOutcome:
    """Continue the gate an earlier invocation handed over."""
    baton = _claim(run, state, expected=state.baton)
    if baton is None:
        return GateOutcome("SUPERSEDED", "the gate is no longer this invocation's", {})
    return _watch(run, state, baton)


def _claim(run: GateRun, state: GateState, *, expected: str | None) -> str | None:
    """Take the baton from ``expected`` (``None``: nobody yet); the new baton, or ``None`` if it was taken."""
    iot = run.iot
    try:
        current = iot.list_tags(state.job_arn).get(BATON_TAG)
        if current != expected:
            logger.info("the gate's baton is %r, not %r: another invocation holds the gate", current, expected)
            return None
        mine = f"{state.chain}.{state.seq}.{run.new_token()}"
        iot.tag_job(state.job_arn, {BATON_TAG: mine})
        run.request.sleep(run.timing.settle_seconds)
        if iot.list_tags(state.job_arn).get(BATON_TAG) != mine:
            logger.info("a duplicate invocation took the gate's baton: this one stops")
            return None
    except JobNotFoundError:
        # Deleted meanwhile (a Delete while the gate waits): the gate answers that.
        return f"{state.chain}.{state.seq}.gone"
    return mine


def _count_targets(run: GateRun) -> int:
    """The things the job targets now: things as listed, groups' members recursively."""
    things: set[str] = set()
    for target in run.request.properties.get("Targets", []):
        kind, _, name = str(target).rpartition(":")[2].partition("/")
        if kind == "thing":
            things.add(name)
        elif kind == "thinggroup":
            things.update(run.iot.group_things(name))
    return len(things)


def _watch(run: GateRun, state: GateState, baton: str) -> GateOutcome:
    """Poll until a verdict, or hand over before this invocation's deadline."""
    request = run.request
    poll = run.timing.poll_seconds
    while True:
        try:
            job = request.iot.describe_job(state.job_id)
        except ClientError as error:
            if error_code(error) not in _THROTTLED:
                verdict = gate_rules.Verdict("FAIL", f"DescribeJob failed while the gate waited: {error}")
                return _finish(run, state, baton, verdict, None)
            poll = min(poll * 2, run.timing.max_poll_seconds)
            logger.warning("DescribeJob is throttled: polling every %.0f s", poll)
            job = None
        else:
            verdict = _judge(run, state, job)
            state = replace(state, threshold_met_at=verdict.threshold_met_at)
            if verdict.kind != "WAIT":
                return _finish(run, state, baton, verdict, job)
            logger.info("gate waiting on job %s: %s", state.job_id, verdict.reason)
        now = run.now()
        timeout_at = state.started_at + run.gate.timeout_seconds
        wait = max(0.0, min(poll, timeout_at - now))
        if now + wait > state.answer_by:
            verdict = gate_rules.Verdict("FAIL", "CloudFormation stops waiting before the gate's next poll")
            return _finish(run, state, baton, verdict, job)
        if request.monotonic() + wait > request.deadline:
            return _hand_over(run, state, baton, job)
        request.sleep(wait)


def _judge(run: GateRun, state: GateState, job: Mapping[str, Any] | None) -> gate_rules.Verdict:
    stack_id = str(run.event.get("StackId", ""))
    stack_status = run.api.stack_status(stack_id) if physical_id.arn_parts(stack_id) else None
    if stack_status is not None and stack_status not in _WAITING_STACK_STATUSES:
        return gate_rules.Verdict(
            "FAIL", f"the stack is {stack_status}: CloudFormation stopped waiting (a cancel or a rollback)"
        )
    counts = gate_rules.Counts.of(job.get("jobProcessDetails") if job else None)
    total = gate_rules.denominator(counts, counted=state.counted, expected=run.gate.expected_targets)
    elapsed = run.now() - state.started_at
    previous = state.threshold_met_at - state.started_at if state.threshold_met_at is not None else None
    verdict = gate_rules.evaluate(
        run.gate,
        counts,
        total=total,
        job_status=job.get("status") if job else None,
        elapsed_seconds=elapsed,
        threshold_met_at=previous,
        reason_code=job.get("reasonCode") if job else None,
        comment=job.get("comment") if job else None,
        target_selection=str(run.request.properties.get("TargetSelection", "SNAPSHOT")),
    )
    met = verdict.threshold_met_at
    return replace(verdict, threshold_met_at=state.started_at + met if met is not None else None)


def _attributes(state: GateState, job: Mapping[str, Any] | None, run: GateRun) -> dict[str, str]:
    counts = gate_rules.Counts.of(job.get("jobProcessDetails") if job else None)
    total = gate_rules.denominator(counts, counted=state.counted, expected=run.gate.expected_targets)
    attributes = {**counts.attributes(), "TargetedThings": str(total)}
    if job is not None:
        # A later invocation knows the job only from DescribeJob.
        attributes["CreatedAt"] = format_created_at(job.get("createdAt"))
    return attributes


def _hand_over(run: GateRun, state: GateState, baton: str, job: Mapping[str, Any] | None) -> GateOutcome:
    successor = replace(state, seq=state.seq + 1, baton=baton)
    event = {**run.event, GATE_KEY: successor.payload()}
    try:
        run.api.invoke_async(run.function_arn, event)
    except HandOverError as error:
        verdict = gate_rules.Verdict("FAIL", f"the gate could not continue in a new invocation: {error}")
        return _finish(run, state, baton, verdict, job)
    logger.info("gate on job %s handed over to invocation %d", state.job_id, successor.seq)
    return GateOutcome("HANDED_OVER", "handed over to a new invocation", {})


def _finish(
    run: GateRun, state: GateState, baton: str, verdict: gate_rules.Verdict, job: Mapping[str, Any] | None
) -> GateOutcome:
    """Act on a verdict, unless the baton was taken meanwhile."""
    iot = run.iot
    try:
        if iot.list_tags(state.job_arn).get(BATON_TAG) != baton:
            return GateOutcome("SUPERSEDED", "another invocation took the gate", {})
        iot.tag_job(state.job_arn, {BATON_TAG: f"{state.chain}.done"})
    except JobNotFoundError:
        pass  # the job is gone: nobody else can hold its gate
    except (ClientError, DeadlineReachedError) as error:
        logger.warning("the gate's baton could not be checked: %s", error)
    attributes = _attributes(state, job, run)
    if verdict.kind == "PASS":
        logger.info("gate passed on job %s: %s", state.job_id, verdict.reason)
        return GateOutcome("PASS", verdict.reason, attributes)
    logger.warning("gate failed on job %s: %s", state.job_id, verdict.reason)
    done = _apply_failure_action(run, state, job, verdict.reason)
    return GateOutcome("FAIL", f"rollout gate failed: {verdict.reason}; {done}", attributes)


def _apply_failure_action(run: GateRun, state: GateState, job: Mapping[str, Any] | None, reason: str) -> str:
    """Cancel or delete the new job as ``OnFailure`` says; what was done, for the Reason."""
    action = run.gate.on_failure
    status = job.get("status") if job else None
    iot = run.iot
    try:
        if action == "DELETE":
            if status != "DELETION_IN_PROGRESS" and iot.describe_job(state.job_id) is not None:
                iot.delete_job(state.job_id, force=True, namespace_id=run.request.properties.get("NamespaceId"))
            return f"job {state.job_id} is being deleted (OnFailure DELETE)"
        if status in (None, "DELETION_IN_PROGRESS"):
            return f"job {state.job_id} is gone"
        if status != "CANCELED":
            iot.cancel_job(
                state.job_id,
                comment=f"Rollout gate failed: {reason}"[:_IOT_COMMENT_CHARS],
                reason_code=CANCEL_REASON_CODE,
                force=action == "CANCEL_FORCE",
            )
        forced = " with its in-progress executions" if action == "CANCEL_FORCE" else ""
        return f"job {state.job_id} canceled{forced} (OnFailure {action}); the rollback deletes it"
    except (ClientError, JobNotFoundError, DeadlineReachedError) as error:
        logger.error("the gate's failure action %s on job %s failed: %s", action, state.job_id, error)
        return f"OnFailure {action} on job {state.job_id} failed ({error}): the rollback deletes the job"
