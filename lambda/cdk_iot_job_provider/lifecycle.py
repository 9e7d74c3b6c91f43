"""What Create, Update and Delete do to IoT jobs.

Decisions rest on the job as it is in IoT (its status and ownership tags), not
only on what the event claims, so that redelivered events and CloudFormation's
rollbacks converge instead of failing or touching someone else's job.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from . import schema
from .gate_rules import Counts
from .iot_api import IotApi, IotUnavailableError, JobNotFoundError, error_code, http_status, retry_attempts
from .ownership import FINGERPRINT_TAG, REPLACES_TAG, REQUEST_TAG, Owner, generated_job_id, is_job_id, user_tags
from .physical_id import JobRef, job_arn, parse_physical_id
from .update_decision import UpdateDecision, decide_update

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "CreateAttempt",
    "JobConflictError",
    "JobRequest",
    "JobResult",
    "ReplacementError",
    "Timing",
    "UpdateDecision",
    "create",
    "decide_update",
    "delete",
    "update",
    "utc_now",
]

logger = logging.getLogger(__name__)

DELETING = "DELETION_IN_PROGRESS"
TERMINAL = frozenset({"COMPLETED", "CANCELED"})
_NO_SLOT_YET = frozenset({"LimitExceededException", "ThrottlingException"})


class JobConflictError(Exception):
    """The job cannot be created or changed without touching a job that is not ours."""


class ReplacementError(Exception):
    """Creating a replacement job failed; the message says what became of it."""


@dataclass
class CreateAttempt:
    """The job a Create's CreateJob may have made, while its outcome is unknown.

    Set just before CreateJob is sent and cleared when IoT definitely made no
    job for this request, so a failed or timed-out Create answers a physical
    id that names a job only when this request may have created it.
    """

    job_arn: str | None = None


def utc_now() -> datetime:
    """The wall clock the schedule rules are checked against: now, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Timing:
    """How the lifecycle waits: deletion polls and the in-flight grace.

    Parameters
    ----------
    first_poll_seconds
        The first wait between polls of a deletion (or for a deletion slot);
        each later wait doubles, up to ``max_poll_seconds``. Default 0.5 s.
    max_poll_seconds
        The longest wait between two polls. Default 5 s.
    in_flight_grace_seconds
        How long a Delete of a failed Create's id looks again for the job that
        Create may still be creating. Default 10 s.
    """

    first_poll_seconds: float = 0.5
    max_poll_seconds: float = 5.0
    in_flight_grace_seconds: float = 10.0


@dataclass(frozen=True)
class JobRequest:
    """One CloudFormation event, reduced to what the lifecycle needs.

    ``properties`` are parsed and valid. ``old_properties`` are the parsed
    previous properties on Update, or ``None`` when they are absent or invalid
    (a rollback sends back whatever failed). ``iot`` makes the IoT calls, none
    after its own deadline. ``deadline`` is a ``monotonic()`` value by which
    waiting must stop; ``timing`` says how to wait, and ``sleep`` waits.
    ``job_arn_prefix`` (``arn:<partition>:iot:<region>:<account>:job/``, where
    the provider works) builds job ARNs and tells which physical ids name jobs
    of ours. ``clock`` is the wall clock of the schedule rules.
    """

    owner: Owner
    properties: Mapping[str, Any]
    iot: IotApi
    physical_id: str | None = None
    old_properties: Mapping[str, Any] | None = None
    old_raw_properties: Mapping[str, Any] = field(default_factory=dict)
    deadline: float = float("inf")
    timing: Timing = field(default_factory=Timing)
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    job_arn_prefix: str | None = None
    attempt: CreateAttempt = field(default_factory=CreateAttempt)
    clock: Callable[[], datetime] = utc_now

    def job_ref(self) -> JobRef | None:
        """The job the event's physical id names, if it names one of ours."""
        return parse_physical_id(self.physical_id, self.job_arn_prefix)


@dataclass(frozen=True)
class JobResult:
    """The job a Create or Update leaves in place.

    ``created_at`` is empty only for a job deleted outside the stack.
    ``created`` tells whether this request created the job (a Create, or a
    replacement), which is when a rollout gate applies. ``counts`` are
    DescribeJob's execution counts when the job was last read.
    """

    job_id: str
    job_arn: str
    created_at: str = ""
    # How the job was reached and what it counted then: not part of which job it is.
    created: bool = field(default=False, compare=False)
    counts: Counts = field(default_factory=Counts, compare=False)

    def attributes(self, *, gated: bool = False) -> dict[str, str]:
        """``Fn::GetAtt`` attributes.

        ``Arn`` and ``CreatedAt`` as ``AWS::IoT::Job``, plus ``JobId``. A
        resource with a ``RolloutGate`` also gets the execution counts
        (``SucceededThings``, ...), ``TargetedThings`` (here the executions
        less REMOVED; a gate that ran answers its denominator) and
        ``GateVerdict`` (``NONE``: no gate ran in this operation).
        """
        attributes = {"Arn": self.job_arn, "CreatedAt": self.created_at, "JobId": self.job_id}
        if gated:
            targeted = self.counts.executions - self.counts["REMOVED"]
            attributes.update({**self.counts.attributes(), "TargetedThings": str(targeted), "GateVerdict": "NONE"})
        return attributes

    @classmethod
    def of(cls, job: Mapping[str, Any], *, created: bool = False) -> JobResult:
        """The result for a job as DescribeJob returned it."""
        return cls(
            str(job["jobId"]),
            str(job["jobArn"]),
            format_created_at(job.get("createdAt")),
            created=created,
            counts=Counts.of(job.get("jobProcessDetails")),
        )


def format_created_at(value: Any) -> str:
    """DescribeJob's ``createdAt`` as ISO 8601 UTC with milliseconds: ``2026-12-02T18:45:08.123Z``."""
    if not isinstance(value, datetime):
        return ""
    utc = value.astimezone(UTC) if value.tzinfo else value
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def planned_job_id(owner: Owner, properties: Mapping[str, Any]) -> str:
    """The id Create uses: ``JobId`` when given, else a generated one."""
    job_id = properties.get("JobId")
    return str(job_id) if is_job_id(job_id) else generated_job_id(owner)


def create(request: JobRequest) -> JobResult:
    """Create the job, or find the one a redelivery of this event created.

    Raises
    ------
    schema.InvalidPropertyError
        When the schedule breaks CreateJob's rules relative to now.
    """
    problems = schema.schedule_problems(request.properties, request.clock())
    if problems:
        raise schema.InvalidPropertyError("; ".join(problems))
    return _create_job(request, planned_job_id(request.owner, request.properties))


def update(request: JobRequest) -> JobResult:
    """Update the job in place, or replace it when a create-only property changed.

    A job deleted outside the stack is never created again by an in-place
    change: the Update succeeds without a job, and says so in the log. An
    Update that asks for the create-only properties of the job this one
    replaced (CloudFormation rolling back a replacement) returns that job
    while it still exists and is this resource's.

    Raises
    ------
    JobConflictError
        When a replacement is needed but ``JobId`` is fixed and unchanged, or
        the current job is not this resource's.
    """
    new = request.properties
    ref = request.job_ref()
    current_id = ref.job_id if ref else ""
    job, tags = _current_job(request.iot, ref.job_id if ref else None)
    owned = job is not None and request.owner.owns(tags)
    # The job's own fingerprint is the truth; it also makes rollbacks converge in place.
    decision = decide_update(
        new,
        request.old_properties,
        current_id,
        old_job_id=request.old_raw_properties.get("JobId"),
        job_fingerprint=tags.get(FINGERPRINT_TAG) if owned else None,
    )
    if decision.action == "refuse":
        raise JobConflictError(decision.reason)
    if decision.action == "replace":
        replaced = _replaced_job(request, tags, decision) if owned else None
        if replaced is not None:
            logger.info("returning to job %s, which %s replaced: %s", replaced.job_id, current_id, decision.reason)
            return replaced
        logger.info("replacing %s: %s", current_id or request.physical_id, decision.reason)
        return _replace(request, decision.new_job_id or generated_job_id(request.owner), replaces=current_id)
    if job is None:
        return _left_deleted(request, ref)
    if not owned:
        raise JobConflictError(
            f"JobId '{current_id}' exists but was not created by this resource; it is left untouched"
        )
    try:
        _update_in_place(request, job, tags)
    except ClientError as error:
        if error_code(error) != "InvalidStateTransitionException" or not _being_deleted(request.iot, current_id):
            raise
        return _left_deleted(request, ref, JobResult.of(job).created_at)
    return JobResult.of(job)


def _current_job(iot: IotApi, job_id: str | None) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The job and its tags, or ``(None, {})`` when it is gone or being deleted."""
    if job_id is None:
        return None, {}
    job = iot.describe_job(job_id)
    if job is None or job.get("status") == DELETING:
        return None, {}
    try:
        return job, iot.list_tags(job["jobArn"])
    except JobNotFoundError:
        return None, {}


def _replaced_job(request: JobRequest, tags: Mapping[str, str], decision: UpdateDecision) -> JobResult | None:
    """The job the current one replaced, when the Update asks for exactly that job back."""
    replaced_id = tags.get(REPLACES_TAG)
    if not is_job_id(replaced_id) or decision.new_job_id not in (None, replaced_id):
        return None
    assert replaced_id is not None
    job, replaced_tags = _current_job(request.iot, replaced_id)
    if job is None or not request.owner.owns(replaced_tags):
        return None
    if replaced_tags.get(FINGERPRINT_TAG) != schema.create_only_fingerprint(request.properties):
        return None
    # A replacement never changes the job it replaces: it is as the stack left it.
    return JobResult.of(job)


def _being_deleted(iot: IotApi, job_id: str) -> bool:
    job = iot.describe_job(job_id)
    return job is None or job.get("status") == DELETING


def _left_deleted(request: JobRequest, ref: JobRef | None, created_at: str = "") -> JobResult:
    """Answer for a job deleted outside the stack: never sent to the fleet again."""
    logger.warning(
        "job %s was deleted outside the stack: it is not created again and the Update changes nothing; "
        "to send it again, change JobId or a create-only property (a replacement)",
        ref.job_id if ref else request.physical_id,
    )
    if ref is None:
        return JobResult("", str(request.physical_id or ""), created_at)
    return JobResult(ref.job_id, ref.job_arn, created_at)


def delete(request: JobRequest, *, cancel_only: bool, namespace_id: str | None) -> str:
    """Delete (or cancel) the job if this resource created it; otherwise do nothing.

    Succeeds for ids that name no job of ours, jobs already gone or being
    deleted, and jobs that belong to someone else, which are left untouched.
    A failed Create's id (``<job ARN>?request-id=...``) deletes the job only if
    that request created it; while the job is not there yet, the Create may
    still be running, so it is looked for again during a grace period.

    Returns
    -------
    str
        What happened, for the response's Reason.
    """
    ref = request.job_ref()
    if ref is None:
        logger.info("the physical id names no job of this provider: nothing to delete")
        return "the physical id names no job: nothing to delete"
    job_id = ref.job_id
    job = request.iot.describe_job(job_id)
    if job is None and ref.created_by is not None:
        job = _look_again_after_grace(request, job_id)
    if job is None:
        logger.info("job %s does not exist: nothing to delete", job_id)
        return f"job {job_id} does not exist: nothing to delete"
    try:
        tags = request.iot.list_tags(job["jobArn"])
    except JobNotFoundError:
        return f"job {job_id} does not exist: nothing to delete"
    if not request.owner.owns(tags):
        logger.warning("job %s was not created by this resource: left untouched", job_id)
        return f"job {job_id} was not created by this resource: left untouched"
    if ref.created_by is not None and tags.get(REQUEST_TAG) != ref.created_by:
        logger.warning("job %s was not created by the failed Create: left untouched", job_id)
        return f"job {job_id} was not created by the failed Create: left untouched"
    status = job.get("status")
    if status != DELETING and cancel_only:
        if status not in TERMINAL:
            request.iot.cancel_job(job_id, comment="Canceled by CloudFormation stack deletion")
        logger.info("job %s canceled, not deleted (DeleteBehavior CANCEL)", job_id)
        return f"job {job_id} canceled and kept (DeleteBehavior CANCEL)"
    if status != DELETING:
        _start_deletion(request, job_id, force=status not in TERMINAL, namespace_id=namespace_id)
    if _wait_until_deleted(request, job_id):
        return f"job {job_id} deleted"
    return (
        f"job {job_id} is still being deleted by IoT when the provider had to answer; "
        "the deletion cannot be stopped and finishes on its own"
    )


def _look_again_after_grace(request: JobRequest, job_id: str) -> dict[str, Any] | None:
    """Poll for a job a Create that timed out may still be creating."""
    grace_ends = min(request.monotonic() + request.timing.in_flight_grace_seconds, request.deadline)
    logger.info(
        "job %s not found: looking again for %.0f s in case its Create is still running",
        job_id,
        grace_ends - request.monotonic(),
    )
    while (left := grace_ends - request.monotonic()) > 0:
        request.sleep(min(1.0, left))
        job = request.iot.describe_job(job_id)
        if job is not None:
            return job
    return None


def _replace(request: JobRequest, job_id: str, *, replaces: str) -> JobResult:
    """Create the replacement job; if that fails, leave no job CloudFormation cannot see.

    A failed Update keeps the old physical id, so a replacement job that was
    created anyway (a timeout after IoT accepted CreateJob) would be an orphan:
    delete it when this request created it, else name it in the error.
    """
    try:
        return _create_job(request, job_id, replaces=replaces)
    except Exception as error:
        raise ReplacementError(f"{error} ({_discard_replacement(request, job_id)})") from error


def _discard_replacement(request: JobRequest, job_id: str) -> str:
    try:
        job = request.iot.describe_job(job_id)
        if job is None:
            return f"no replacement job {job_id} was left behind"
        if not request.owner.created(request.iot.list_tags(job["jobArn"])):
            return f"job {job_id} is not this request's and was left untouched"
        request.iot.delete_job(job_id, force=True)
    except Exception as cleanup_error:
        logger.error("replacement job %s may exist and could not be checked: %s", job_id, cleanup_error)
        return f"replacement job {job_id} may exist: delete it if it does"
    logger.warning("deleted replacement job %s: the Update that created it failed", job_id)
    return f"replacement job {job_id} was deleted again"


def _create_job(request: JobRequest, job_id: str, *, replaces: str | None = None) -> JobResult:
    props = request.properties
    fingerprint = schema.create_only_fingerprint(props)
    api_request = schema.to_api(props)
    api_request["jobId"] = job_id
    tags = {**{tag["Key"]: tag["Value"] for tag in props.get("Tags", [])}, **request.owner.tags(fingerprint, replaces)}
    api_request["tags"] = [{"Key": key, "Value": value} for key, value in tags.items()]
    try:
        _send_create_job(request, job_id, api_request)
    except ClientError as error:
        if error_code(error) != "ResourceAlreadyExistsException":
            raise
        return _resolve_existing(request, job_id, api_request)
    logger.info("created job %s", job_id)
    return _created(request.iot, job_id)


def _send_create_job(request: JobRequest, job_id: str, api_request: Mapping[str, Any]) -> None:
    """CreateJob, keeping :class:`CreateAttempt` true to what IoT may have done."""
    if request.job_arn_prefix:
        request.attempt.job_arn = job_arn(request.job_arn_prefix, job_id)
    try:
        request.iot.create_job(api_request)
    except IotUnavailableError:
        request.attempt.job_arn = None  # no request was sent
        raise
    except ClientError as error:
        # One attempt answered with a client error: IoT made no job for it.
        # After retries, an earlier attempt may have been cut off after IoT made it.
        if 400 <= http_status(error) < 500 and retry_attempts(error) == 0:
            request.attempt.job_arn = None
        raise


def _created(iot: IotApi, job_id: str) -> JobResult:
    job = iot.describe_job(job_id)
    if job is None:
        # Only a deletion racing the Create gets here; CreatedAt is unknown.
        raise JobConflictError(f"job {job_id} was deleted right after it was created")
    return JobResult.of(job, created=True)


def _resolve_existing(request: JobRequest, job_id: str, api_request: Mapping[str, Any]) -> JobResult:
    """CreateJob found the id taken: our own redelivery, a deletion in progress, or a conflict."""
    job = request.iot.describe_job(job_id)
    if job is not None and job.get("status") != DELETING:
        tags = request.iot.list_tags(job["jobArn"])
        if request.owner.created(tags):
            logger.info("job %s was already created by this request", job_id)
            return JobResult.of(job, created=True)
        # The job is someone else's, or kept from an earlier request: this
        # request made none, so its failure must not point a rollback at it.
        request.attempt.job_arn = None
        if request.owner.owns(tags):
            raise JobConflictError(
                f"JobId '{job_id}' already exists from an earlier request of this resource (a job kept by "
                "DeletionPolicy Retain or DeleteBehavior CANCEL) and is not adopted; give the job a new JobId "
                "(the existing job is left untouched)"
            )
        raise JobConflictError(
            f"JobId '{job_id}' already exists and was not created by this resource; "
            "choose another JobId (the existing job is left untouched)"
        )
    if job is not None:
        logger.info("JobId %s is still being deleted: waiting before creating it", job_id)
        _wait_until_deleted(request, job_id)
    _send_create_job(request, job_id, api_request)
    logger.info("created job %s", job_id)
    return _created(request.iot, job_id)


def _update_in_place(request: JobRequest, job: Mapping[str, Any], tags: Mapping[str, str]) -> None:
    new = request.properties
    old = request.old_properties
    job_id = str(job["jobId"])
    changed = [name for name in schema.UPDATABLE_API_PROPERTIES if old is None or new.get(name) != old.get(name)]
    present = [name for name in schema.UPDATABLE_API_PROPERTIES if name in new]
    if any(name in new for name in changed):
        request.iot.update_job(job_id, schema.to_api(new, present), new.get("NamespaceId"))
        logger.info("updated job %s: %s", job_id, ", ".join(name for name in changed if name in new))
    removed = [name for name in changed if name not in new and old is not None]
    if removed:
        logger.warning("UpdateJob cannot clear %s: job %s keeps its current value", ", ".join(removed), job_id)
    _sync_tags(request.iot, job, tags, new.get("Tags", []))


def _sync_tags(iot: IotApi, job: Mapping[str, Any], tags: Mapping[str, str], wanted_tags: list[dict[str, str]]) -> None:
    current = user_tags(tags)
    wanted = {tag["Key"]: tag["Value"] for tag in wanted_tags}
    to_set = {key: value for key, value in wanted.items() if current.get(key) != value}
    to_remove = sorted(set(current) - set(wanted))
    # Untag first: a rename at IoT's 50-tag limit must not pass through 51.
    if to_remove:
        iot.untag_job(job["jobArn"], to_remove)
    if to_set:
        iot.tag_job(job["jobArn"], to_set)


def _start_deletion(request: JobRequest, job_id: str, *, force: bool, namespace_id: str | None) -> None:
    delay = request.timing.first_poll_seconds
    while True:
        try:
            request.iot.delete_job(job_id, force=force, namespace_id=namespace_id)
            logger.info("deleting job %s (force=%s)", job_id, force)
            return
        except JobNotFoundError:
            return
        except ClientError as error:
            # At most 10 jobs may be deleting at once: wait for a slot. botocore
            # already retried it like throttling, so its last try may be either.
            if error_code(error) not in _NO_SLOT_YET or request.monotonic() + delay > request.deadline:
                raise
        request.sleep(delay)
        delay = min(delay * 2, request.timing.max_poll_seconds)


def _wait_until_deleted(request: JobRequest, job_id: str) -> bool:
    """Poll until the job is gone; ``False`` when the wait budget ran out first."""
    delay = request.timing.first_poll_seconds
    while True:
        job = request.iot.describe_job(job_id)
        if job is None:
            logger.info("job %s deleted", job_id)
            return True
        if request.monotonic() + delay > request.deadline:
            # The deletion cannot be stopped any more; IoT finishes it on its own.
            logger.warning("job %s is still being deleted when the wait budget ran out", job_id)
            return False
        request.sleep(delay)
        delay = min(delay * 2, request.timing.max_poll_seconds)
