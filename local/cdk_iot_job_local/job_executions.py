"""Job executions for the strict IoT fake: one per targeted thing, played lazily on a clock.

moto 5.2.5 makes one execution per target ARN (a thing group's included),
numbers every one 123 and never changes their status. :mod:`.iot_fake` calls
these functions instead, on moto's own objects (``IoTBackend.job_executions``,
keyed by job id and thing name, so moto's DescribeJobExecution and
ListJobExecutionsFor{Job,Thing} answer from them):

* :func:`create_executions` gives each targeted thing an execution:
  thing targets, and the members of targeted thing groups, through child
  groups, without duplicates.
* :func:`advance` plays a job's executions, in time order, up to "now":
  ``QUEUED`` to ``IN_PROGRESS`` when the device is notified, then the
  fleet's answer (:class:`~.fleet.FleetPolicy`) or ``TIMED_OUT``; abort
  criteria, completion, and things that joined or left the targets.
  No thread runs in the background: the fake calls it whenever the job is
  read or changed.
* :func:`cancel_executions`, :func:`restore_executions` and
  :func:`process_details` serve CancelJob, the engine's state file and
  DescribeJob.

Without a fleet, executions are made and counted but never notified: they
stay ``QUEUED``, as with devices that are never online.

Approximations (what IoT does that the fake does not, or does not document):

* Pacing: the k-th execution made at CreateJob (k = 0, 1, ..., in thing-name
  order) is notified ``k / rate`` minutes after the job was created, where the
  rate is ``maximumPerMinute`` (1000 when absent, IoT's default) or, with an
  ``exponentialRate``, its ``baseRatePerMinute``: the rate never increases.
  Executions made later (a thing joining a CONTINUOUS job's group) are
  notified at once, as IoT's docs say ("created in near-real time").
* A notified device starts its execution at once (``IN_PROGRESS``); the
  in-progress timer (``timeoutConfig.inProgressTimeoutInMinutes``, read when
  the execution starts) then runs. An answer due at or after the timeout is
  too late: the execution is ``TIMED_OUT``. No step timers, no retries
  (``jobExecutionsRetryConfig`` is stored, not played), no scheduling
  (``schedulingConfig``): a job starts at CreateJob.
* Abort criteria: the docs say IoT checks them in order once at least
  ``minNumberOfExecutedThings`` executions have completed, and aborts when at
  least ``thresholdPercentage`` of the completed executions failed with the
  criterion's ``failureType`` (``ALL``: FAILED, REJECTED or TIMED_OUT)
  (AWS IoT Developer Guide, "Specify job configurations by using the AWS IoT
  Jobs API", Abort configuration). The fake checks after every completed
  execution. An abort cancels the job and its ``QUEUED`` executions;
  ``IN_PROGRESS`` ones go on and are still answered ("How job
  configurations work": "only QUEUED job executions are canceled"). The
  docs say IoT then sets "an automated comment and reasonCode to
  differentiate a user-driven cancellation from a job abort cancellation"
  (same page; also "Create and manage jobs by using the AWS CLI") but not
  their values: the fake's are :data:`ABORT_REASON_CODE` and a comment
  naming the criterion and the counts. Nothing should match on them.
* ``executionNumber`` counts per thing across the jobs of its account and
  region (1, 2, ...); numbers of jobs deleted before a state-file round trip
  may be handed out again.
* Things are matched by name: a thing deleted from, or no longer in, any
  targeted group while its execution is ``QUEUED`` or ``IN_PROGRESS`` gets
  ``REMOVED``, in SNAPSHOT and CONTINUOUS jobs alike (numberOfRemovedThings
  counts things "deleted or removed from the group that was a target of the
  job"). A thing that joins a targeted group gets an execution only in a
  CONTINUOUS job that is ``IN_PROGRESS``; one that comes back after its
  execution was ``REMOVED`` gets a new execution in its place.
* A thing ARN target naming no thing (possible with ``check_targets=False``)
  still gets an execution, as in moto; it is never ``REMOVED``.
* A SNAPSHOT job with no execution at all stays ``IN_PROGRESS`` (what IoT
  does for an empty target is not documented).
"""

from __future__ import annotations

import datetime
import heapq
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from moto.iot.models import FakeJob, FakeJobExecution, IoTBackend

from cdk_iot_job_provider.gate_rules import COUNT_KEYS as PROCESS_DETAIL_KEYS

from .fleet import FleetPolicy

__all__ = [
    "ABORT_REASON_CODE",
    "COUNT_KEYS",
    "Clock",
    "SimulatedExecution",
    "advance",
    "cancel_executions",
    "create_executions",
    "executions_of",
    "process_details",
    "reconcile",
    "restore_executions",
]

#: The fake's reasonCode on a job its abort criteria canceled (IoT's own value is not documented).
ABORT_REASON_CODE = "ABORT_CRITERIA_MET"

#: DescribeJob's jobProcessDetails member for each execution status (the provider reads the same).
COUNT_KEYS: Mapping[str, str] = PROCESS_DETAIL_KEYS

DELETING = "DELETION_IN_PROGRESS"
ACTIVE = frozenset({"QUEUED", "IN_PROGRESS"})
#: The statuses a device's answer (or its silence) ends in: what abort criteria count as "completed".
COMPLETED = frozenset({"SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT"})
_FAILURE_TYPES: Mapping[str, frozenset[str]] = {
    "FAILED": frozenset({"FAILED"}),
    "REJECTED": frozenset({"REJECTED"}),
    "TIMED_OUT": frozenset({"TIMED_OUT"}),
    "ALL": frozenset({"FAILED", "REJECTED", "TIMED_OUT"}),
}
#: IoT's rollout rate when a job sets none.
DEFAULT_RATE_PER_MINUTE = 1000
_NUMBERS_ATTRIBUTE = "strict_iot_fake_execution_numbers"
# A thing or thing group ARN; thing names may hold colons.
_TARGET = re.compile(r"arn:[^:]+:iot:[^:]*:[^:]*:(thing|thinggroup)/(.+)")


class Clock(Protocol):
    """What the fake reads time from: :class:`~.virtual_time.TimeScale` or a test's settable clock."""

    def now(self) -> datetime.datetime:
        """Now, as an aware UTC datetime."""
        ...


class SimulatedExecution(FakeJobExecution):
    """A moto job execution that the fake plays; moto's handlers serialize it.

    Parameters
    ----------
    job_id, thing_arn, thing_name
        Whose execution it is.
    execution_number
        Its number among the thing's executions.
    queued_at
        When it was made (naive UTC, as moto keeps times).
    initial
        Made at CreateJob, so paced by the rollout rate.
    tracked
        The thing existed when the execution was made, so its deletion makes the execution ``REMOVED``.
    """

    def __init__(
        self,
        job_id: str,
        thing_arn: str,
        thing_name: str,
        execution_number: int,
        queued_at: datetime.datetime,
        *,
        initial: bool,
        tracked: bool,
    ) -> None:
        super().__init__(job_id, thing_arn)
        self.thing_name = thing_name
        self.execution_number = execution_number
        self.version_number = 1
        self.queued_at = queued_at
        self.last_updated_at = queued_at
        self.started: datetime.datetime | None = None
        self.timeout_at: datetime.datetime | None = None
        self.seconds_left: int | None = None
        self.initial = initial
        self.tracked = tracked

    def set_status(self, status: str, when: datetime.datetime) -> None:
        """Move to ``status`` at ``when``."""
        self.status = status
        self.last_updated_at = max(when, self.last_updated_at)
        self.version_number += 1

    def to_get_dict(self) -> dict[str, Any]:
        """DescribeJobExecution's ``execution`` (``None`` members are left out on the wire)."""
        return {
            "jobId": self.job_id,
            "status": self.status,
            "forceCanceled": self.force_canceled,
            "statusDetails": {"detailsMap": self.status_details_map},
            "thingArn": self.thing_arn,
            "queuedAt": self.queued_at,
            "startedAt": self.started,
            "lastUpdatedAt": self.last_updated_at,
            "executionNumber": self.execution_number,
            "versionNumber": self.version_number,
            "approximateSecondsBeforeTimedOut": self.seconds_left,
        }

    def to_dict(self) -> dict[str, Any]:
        """A ListJobExecutionsFor{Job,Thing} summary."""
        return {
            "jobId": self.job_id,
            "thingArn": self.thing_arn,
            "jobExecutionSummary": {
                "status": self.status,
                "queuedAt": self.queued_at,
                "startedAt": self.started,
                "lastUpdatedAt": self.last_updated_at,
                "executionNumber": self.execution_number,
            },
        }


# ----------------------------------------------------------------- targets
@dataclass(frozen=True)
class _Target:
    name: str
    arn: str
    exists: bool


def _expand(backend: IoTBackend, targets: Iterable[str]) -> dict[str, _Target]:
    """The things the targets name, by thing name: thing ARNs, and groups' members through child groups."""
    children: dict[str, list[Any]] = {}
    for group in backend.thing_groups.values():
        if group.parent_group_name:
            children.setdefault(group.parent_group_name, []).append(group)
    found: dict[str, _Target] = {}
    for target in targets or []:
        match = _TARGET.fullmatch(target) if isinstance(target, str) else None
        kind, name = match.groups() if match is not None else ("", "")
        if kind == "thing":
            found.setdefault(name, _Target(name, target, target in backend.things))
        elif kind == "thinggroup" and target in backend.thing_groups:
            pending, seen = [backend.thing_groups[target]], set[str]()
            while pending:
                group = pending.pop()
                if group.arn in seen:
                    continue
                seen.add(group.arn)
                # moto's DeleteThing leaves the thing in its groups: only things that still exist count.
                for arn in group.things:
                    thing = backend.things.get(arn)
                    if thing is not None:
                        found.setdefault(thing.thing_name, _Target(thing.thing_name, arn, True))
                pending.extend(children.get(group.thing_group_name, []))
    return found


def executions_of(backend: IoTBackend, job_id: str) -> list[FakeJobExecution]:
    """The job's executions, as moto holds them (the fake's and any moto made before it was installed)."""
    return [execution for (owner, _), execution in backend.job_executions.items() if owner == job_id]


def _next_number(backend: IoTBackend, thing_name: str) -> int:
    numbers: dict[str, int] = vars(backend).setdefault(_NUMBERS_ATTRIBUTE, {})
    numbers[thing_name] = numbers.get(thing_name, 0) + 1
    return numbers[thing_name]


def _add(
    backend: IoTBackend, job: FakeJob, target: _Target, when: datetime.datetime, *, initial: bool
) -> SimulatedExecution:
    execution = SimulatedExecution(
        job.job_id,
        target.arn,
        target.name,
        _next_number(backend, target.name),
        when,
        initial=initial,
        tracked=target.exists,
    )
    backend.job_executions[(job.job_id, target.name)] = execution
    return execution


def create_executions(backend: IoTBackend, job: FakeJob, now: datetime.datetime) -> None:
    """Replace what moto made for a new job with one execution per targeted thing.

    Parameters
    ----------
    backend
        The job's backend.
    job
        The job CreateJob just made.
    now
        CreateJob's time (naive UTC): the executions' ``queuedAt``.
    """
    for key in [key for key in backend.job_executions if key[0] == job.job_id]:
        del backend.job_executions[key]  # moto's: one per target ARN, groups included
    for _, target in sorted(_expand(backend, job.targets).items()):
        _add(backend, job, target, now, initial=True)
    job.job_process_details = process_details(job, executions_of(backend, job.job_id))


# ---------------------------------------------------------------- playing
def advance(backend: IoTBackend, job: FakeJob, now: datetime.datetime, fleet: FleetPolicy | None) -> None:
    """Play the job's executions up to ``now``, then look at its targets again.

    Events (a notification, an answer, a timeout) are applied one at a time
    in time order, each at its own time, and abort criteria are checked
    after each completed execution; events that are already applied are not
    seen again, so calling this twice with the same ``now`` changes nothing.

    Parameters
    ----------
    backend
        The job's backend.
    job
        The job; a job being deleted is left alone.
    now
        The fake's clock (naive UTC).
    fleet
        How devices answer; ``None``: nobody is notified.
    """
    if job.status == DELETING:
        return
    executions = executions_of(backend, job.job_id)
    _play(job, executions, now, fleet)
    reconcile(backend, job, now)
    executions = executions_of(backend, job.job_id)
    _complete_if_done(job, executions)
    for execution in executions:
        if isinstance(execution, SimulatedExecution):
            left = None
            if execution.status == "IN_PROGRESS" and execution.timeout_at is not None:
                left = max(0, int((execution.timeout_at - now).total_seconds()))
            execution.seconds_left = left
    job.job_process_details = process_details(job, executions)


@dataclass(frozen=True, order=True)
class _Event:
    when: datetime.datetime
    thing: str
    status: str  # the execution's status after the event
    expects: str  # its status before it: an event that finds another is stale


def _play(job: FakeJob, executions: list[FakeJobExecution], now: datetime.datetime, fleet: FleetPolicy | None) -> None:
    simulated = {e.thing_name: e for e in executions if isinstance(e, SimulatedExecution)}
    slots = _rollout_slots(job, simulated.values())
    heap = [event for e in simulated.values() if (event := _next_event(job, e, slots, fleet)) is not None]
    heapq.heapify(heap)
    while heap and heap[0].when <= now:
        event = heapq.heappop(heap)
        execution = simulated[event.thing]
        if execution.status != event.expects:
            continue  # canceled by an abort since it was scheduled
        if event.status == "IN_PROGRESS":
            execution.started = event.when
            minutes = (job.timeout_config or {}).get("inProgressTimeoutInMinutes")
            execution.timeout_at = event.when + datetime.timedelta(minutes=float(minutes)) if minutes else None
        execution.set_status(event.status, event.when)
        follow = _next_event(job, execution, slots, fleet)
        if follow is not None:
            heapq.heappush(heap, follow)
        if event.status in COMPLETED and job.status == "IN_PROGRESS":
            _abort_if_met(job, executions, event.when)


def _rollout_slots(job: FakeJob, executions: Iterable[SimulatedExecution]) -> dict[str, datetime.datetime]:
    """When each execution made at CreateJob may be notified: the k-th, k/rate minutes after the job began."""
    config = job.job_executions_rollout_config or {}
    exponential = config.get("exponentialRate") or {}
    rate = float(exponential.get("baseRatePerMinute") or config.get("maximumPerMinute") or DEFAULT_RATE_PER_MINUTE)
    initial = sorted((e.queued_at, e.thing_name) for e in executions if e.initial)
    return {name: job.created_at + datetime.timedelta(minutes=k / rate) for k, (_, name) in enumerate(initial)}


def _next_event(
    job: FakeJob, execution: SimulatedExecution, slots: Mapping[str, datetime.datetime], fleet: FleetPolicy | None
) -> _Event | None:
    if execution.status == "QUEUED":
        if fleet is None or job.status != "IN_PROGRESS":
            return None
        when = max(execution.queued_at, slots.get(execution.thing_name, execution.queued_at))
        return _Event(when, execution.thing_name, "IN_PROGRESS", "QUEUED")
    if execution.status != "IN_PROGRESS" or execution.started is None:
        return None
    timeout = execution.timeout_at
    if fleet is not None:
        answer = fleet.answer(job.job_id, execution.thing_name)
        if answer.status is not None:
            when = execution.started + datetime.timedelta(seconds=answer.delay_seconds)
            if timeout is None or when < timeout:
                return _Event(when, execution.thing_name, answer.status, "IN_PROGRESS")
    if timeout is not None:
        return _Event(timeout, execution.thing_name, "TIMED_OUT", "IN_PROGRESS")
    return None


def _abort_if_met(job: FakeJob, executions: list[FakeJobExecution], when: datetime.datetime) -> None:
    completed = [e.status for e in executions if e.status in COMPLETED]
    for criterion in (job.abort_config or {}).get("criteriaList") or []:
        failure_type = str(criterion.get("failureType", "ALL"))
        counted = _FAILURE_TYPES.get(failure_type, _FAILURE_TYPES["ALL"])
        failures = sum(1 for status in completed if status in counted)
        threshold = float(criterion.get("thresholdPercentage", 100))
        least = int(criterion.get("minNumberOfExecutedThings", 1))
        if len(completed) >= least and failures and failures * 100 >= threshold * len(completed):
            share = failures * 100 / len(completed)
            job.status = "CANCELED"
            job.reason_code = ABORT_REASON_CODE
            job.comment = (
                f"Job aborted: {failures} of {len(completed)} completed executions ({share:.2f}%) were "
                f"{failure_type}, at least the {threshold:g}% of the abort criteria "
                f"(minNumberOfExecutedThings {least})"
            )
            job.last_updated_at = max(when, job.last_updated_at)
            for execution in executions:
                if execution.status == "QUEUED":
                    _set(execution, "CANCELED", when)
            return


def _set(execution: FakeJobExecution, status: str, when: datetime.datetime) -> None:
    if isinstance(execution, SimulatedExecution):
        execution.set_status(status, when)
    else:
        execution.status = status
        execution.last_updated_at = when


def reconcile(backend: IoTBackend, job: FakeJob, now: datetime.datetime) -> None:
    """Match the job's executions to its targets now: departed things ``REMOVED``, joiners of a CONTINUOUS job queued.

    Parameters
    ----------
    backend
        The job's backend.
    job
        The job.
    now
        The fake's clock (naive UTC): the time of the changes.
    """
    if job.status == DELETING:
        return
    targets = _expand(backend, job.targets)
    current: dict[str, SimulatedExecution] = {}
    for execution in executions_of(backend, job.job_id):
        if not isinstance(execution, SimulatedExecution):
            continue
        current[execution.thing_name] = execution
        target = targets.get(execution.thing_name)
        if execution.tracked and execution.status in ACTIVE and (target is None or not target.exists):
            execution.set_status("REMOVED", now)
    if job.target_selection != "CONTINUOUS" or job.status != "IN_PROGRESS":
        return
    for name, target in sorted(targets.items()):
        known = current.get(name)
        if target.exists and (known is None or known.status == "REMOVED"):
            _add(backend, job, target, now, initial=False)


def _complete_if_done(job: FakeJob, executions: list[FakeJobExecution]) -> None:
    if job.status != "IN_PROGRESS" or job.target_selection == "CONTINUOUS" or not executions:
        return
    if any(e.status in ACTIVE for e in executions):
        return
    done = max(e.last_updated_at for e in executions)
    job.status = "COMPLETED"
    job.completed_at = done  # type: ignore[assignment]  # moto declares it None
    job.last_updated_at = max(done, job.last_updated_at)


def cancel_executions(backend: IoTBackend, job: FakeJob, now: datetime.datetime, *, force: bool) -> None:
    """CancelJob's effect on executions: ``QUEUED`` ones ``CANCELED``, ``IN_PROGRESS`` ones too with ``force``.

    Parameters
    ----------
    backend
        The job's backend.
    job
        The job just canceled.
    now
        The fake's clock (naive UTC).
    force
        CancelJob's ``force``.
    """
    doomed = {"QUEUED", "IN_PROGRESS"} if force else {"QUEUED"}
    executions = executions_of(backend, job.job_id)
    for execution in executions:
        if execution.status in doomed:
            if execution.status == "IN_PROGRESS":
                execution.force_canceled = True
            _set(execution, "CANCELED", now)
    job.job_process_details = process_details(job, executions)


def process_details(job: FakeJob, executions: Iterable[FakeJobExecution]) -> dict[str, Any]:
    """DescribeJob's ``jobProcessDetails``: a count per execution status, and the targets while rolling out."""
    details: dict[str, Any] = dict.fromkeys(COUNT_KEYS.values(), 0)
    for execution in executions:
        key = COUNT_KEYS.get(execution.status)
        if key is not None:
            details[key] += 1
    if job.status == "IN_PROGRESS":
        details["processingTargets"] = list(job.targets or [])
    return details


# --------------------------------------------------------------- restoring
def restore_executions(backend: IoTBackend, job: FakeJob, records: Iterable[Mapping[str, Any]]) -> None:
    """Put back the executions a state file recorded, in place of those CreateJob made again.

    Parameters
    ----------
    backend
        The job's backend.
    job
        The job, created again (with its ``createdAt`` and status put back).
    records
        ``thingName``, ``status``, ``executionNumber``, ``queuedAt``,
        ``lastUpdatedAt`` and, once started, ``startedAt`` (naive UTC
        datetimes) of each execution.
    """
    restored: set[str] = set()
    for key in [key for key in backend.job_executions if key[0] == job.job_id]:
        del backend.job_executions[key]
        restored.add(key[1])
    targets = _expand(backend, job.targets)
    numbers: dict[str, int] = vars(backend).setdefault(_NUMBERS_ATTRIBUTE, {})
    minutes = (job.timeout_config or {}).get("inProgressTimeoutInMinutes")
    for record in records:
        name = str(record["thingName"])
        target = targets.get(name) or _Target(name, _thing_arn(job, name), False)
        queued_at: datetime.datetime = record["queuedAt"]
        # Made at CreateJob, so paced: queued when the job was created (the wire keeps milliseconds).
        initial = abs((queued_at - job.created_at).total_seconds()) < 1
        execution = SimulatedExecution(
            job.job_id,
            target.arn,
            name,
            int(record["executionNumber"]),
            queued_at,
            initial=initial,
            tracked=target.exists,
        )
        execution.status = str(record["status"])
        execution.last_updated_at = record.get("lastUpdatedAt") or queued_at
        execution.started = record.get("startedAt")
        if execution.started is not None and minutes:
            execution.timeout_at = execution.started + datetime.timedelta(minutes=float(minutes))
        backend.job_executions[(job.job_id, name)] = execution
        restored.add(name)
    # CreateJob counted the fresh executions it made: count again from what each thing now has.
    for name in restored:
        numbers[name] = max(
            (e.execution_number for (_, thing), e in backend.job_executions.items() if thing == name), default=0
        )
    job.job_process_details = process_details(job, executions_of(backend, job.job_id))


def _thing_arn(job: FakeJob, name: str) -> str:
    return job.job_arn.rsplit(":", 1)[0] + f":thing/{name}"
