"""What Create, Update and Delete do to IoT jobs.

Decisions rest on the job as it is in IoT (its status and ownership tags), not
only on what the event claims, so that redelivered events and CloudFormation's
rollbacks converge instead of failing or touching someone else's job.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from . import iot_api, schema
from .ownership import FINGERPRINT_TAG, Owner, generated_job_id, is_job_id, may_be_generated_for, user_tags

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "JobConflictError",
    "JobRequest",
    "JobResult",
    "ReplacementError",
    "UpdateDecision",
    "create",
    "decide_update",
    "delete",
    "update",
]

logger = logging.getLogger(__name__)

DELETING = "DELETION_IN_PROGRESS"
TERMINAL = frozenset({"COMPLETED", "CANCELED"})
_FIRST_POLL_SECONDS = 0.5
_MAX_POLL_SECONDS = 5.0
_NO_SLOT_YET = frozenset({"LimitExceededException", "ThrottlingException"})
# How long a Delete looks again for a job a timed-out Create may still be creating.
_IN_FLIGHT_GRACE_SECONDS = 10.0


class JobConflictError(Exception):
    """The job cannot be created or changed without touching a job that is not ours."""


class ReplacementError(Exception):
    """Creating a replacement job failed; the message says what became of it."""


@dataclass(frozen=True)
class JobRequest:
    """One CloudFormation event, reduced to what the lifecycle needs.

    ``properties`` are parsed and valid. ``old_properties`` are the parsed
    previous properties on Update, or ``None`` when they are absent or invalid
    (a rollback sends back whatever failed). ``deadline`` is a
    ``time.monotonic()`` value by which waiting must stop. ``job_arn_prefix``
    (``arn:<partition>:iot:<region>:<account>:job/``, from the function's own
    ARN) lets a job's ARN be built without a DescribeJob.
    """

    owner: Owner
    properties: Mapping[str, Any]
    physical_id: str | None = None
    old_properties: Mapping[str, Any] | None = None
    old_raw_properties: Mapping[str, Any] = field(default_factory=dict)
    deadline: float = float("inf")
    sleep: Callable[[float], None] = time.sleep
    job_arn_prefix: str | None = None


@dataclass(frozen=True)
class JobResult:
    """The job a Create or Update leaves in place."""

    job_id: str
    job_arn: str

    def attributes(self) -> dict[str, str]:
        """``Fn::GetAtt`` attributes."""
        return {"JobId": self.job_id, "JobArn": self.job_arn, "Arn": self.job_arn}


def planned_job_id(owner: Owner, properties: Mapping[str, Any]) -> str:
    """The id Create uses: ``JobId`` when given, else a generated one."""
    job_id = properties.get("JobId")
    return str(job_id) if is_job_id(job_id) else generated_job_id(owner)


def create(request: JobRequest) -> JobResult:
    """Create the job, or find the one a redelivery of this event created."""
    return _create_job(request, planned_job_id(request.owner, request.properties))


@dataclass(frozen=True)
class UpdateDecision:
    """What an Update does to the job, by the provider's rules.

    ``action`` is ``none`` (nothing to do), ``update`` (in place),
    ``replace`` (a new job; ``new_job_id`` is the fixed id, or ``None`` for a
    generated one) or ``refuse`` (a replacement is needed but ``JobId`` is
    fixed and unchanged). ``changed`` names the properties that differ.
    """

    action: str
    reason: str
    changed: tuple[str, ...] = ()
    new_job_id: str | None = None


def decide_update(
    new: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    physical_id: str,
    *,
    old_job_id: Any = None,
    job_fingerprint: str | None = None,
) -> UpdateDecision:
    """Decide between no-op, in-place update, replacement and refusal.

    Pure: the provider calls it with the job's recorded fingerprint, and
    ``python -m cdk_iot_job.local plan`` calls it with the previous properties.

    Parameters
    ----------
    new, old
        Parsed new and previous properties (``old`` is ``None`` when absent or
        invalid, as in a rollback of a failed update).
    physical_id
        The job's current id.
    old_job_id
        The raw ``JobId`` of the previous properties, if any.
    job_fingerprint
        The create-only fingerprint recorded on the job; by default the one of
        ``old``.
    """
    wanted_id = new.get("JobId")
    if wanted_id is not None and wanted_id != physical_id:
        return UpdateDecision("replace", f"JobId changed from {physical_id} to {wanted_id}", ("JobId",), wanted_id)
    if wanted_id is None and old_job_id is not None and old_job_id == physical_id:
        return UpdateDecision("replace", "JobId removed: the provider generates a new one", ("JobId",))
    actual = job_fingerprint
    if actual is None and old is not None:
        actual = schema.create_only_fingerprint(old)
    if actual != schema.create_only_fingerprint(new):
        changed = _changed(new, old, schema.CREATE_ONLY_PROPERTIES - {"JobId"})
        names = ", ".join(changed) or "create-only properties"
        if wanted_id is not None:
            return UpdateDecision(
                "refuse",
                f"create-only {names} cannot change in place, and JobId '{physical_id}' is fixed: "
                "give the job a new JobId (or remove JobId to let the provider generate one) to replace it",
                changed,
            )
        return UpdateDecision("replace", f"create-only {names} changed", changed)
    changed = _changed(new, old, frozenset(schema.UPDATABLE_PROPERTIES))
    if old is not None and not changed:
        return UpdateDecision("none", "no property of the job changed")
    return UpdateDecision("update", "updatable " + (", ".join(changed) or "properties") + " changed", changed)


def _changed(new: Mapping[str, Any], old: Mapping[str, Any] | None, names: frozenset[str]) -> tuple[str, ...]:
    if old is None:
        return tuple(sorted(name for name in names if name in new))
    return tuple(sorted(name for name in names if new.get(name) != old.get(name)))


def update(request: JobRequest) -> JobResult:
    """Update the job in place, or replace it when a create-only property changed.

    Raises
    ------
    JobConflictError
        When a replacement is needed but ``JobId`` is fixed and unchanged, or
        the current job is not this resource's.
    """
    new = request.properties
    current_id = request.physical_id or ""
    old_job_id = request.old_raw_properties.get("JobId")
    decision = decide_update(new, request.old_properties, current_id, old_job_id=old_job_id)
    if decision.action == "replace" and "JobId" in decision.changed:
        logger.info("replacing %s: %s", current_id, decision.reason)
        return _replace(request, decision.new_job_id or generated_job_id(request.owner))

    job, tags = _current_job(request, current_id)
    if job is None:
        return _create_again(request, current_id)
    if not request.owner.owns(tags):
        raise JobConflictError(
            f"JobId '{current_id}' exists but was not created by this resource; it is left untouched"
        )

    # The job's own fingerprint is the truth; it also makes rollbacks converge in place.
    decision = decide_update(
        new, request.old_properties, current_id, old_job_id=old_job_id, job_fingerprint=tags.get(FINGERPRINT_TAG)
    )
    if decision.action == "refuse":
        raise JobConflictError(decision.reason)
    if decision.action == "replace":
        logger.info("replacing %s: %s", current_id, decision.reason)
        return _replace(request, generated_job_id(request.owner))
    try:
        _update_in_place(request, job, tags)
    except ClientError as error:
        if iot_api.error_code(error) != "InvalidStateTransitionException" or not _being_deleted(current_id):
            raise
        return _create_again(request, current_id)
    return JobResult(current_id, job["jobArn"])


def _current_job(request: JobRequest, job_id: str) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The job and its tags, or ``(None, {})`` when it is gone or being deleted."""
    if not is_job_id(job_id):
        return None, {}
    if request.job_arn_prefix:
        # One read instead of two: the tags tell both whether the job exists and
        # whose it is. A job being deleted refuses UpdateJob, handled by the caller.
        arn = request.job_arn_prefix + job_id
        try:
            return {"jobId": job_id, "jobArn": arn}, iot_api.list_tags(arn)
        except iot_api.JobNotFoundError:
            return None, {}
    job = iot_api.describe_job(job_id)
    if job is None or job.get("status") == DELETING:
        return None, {}
    return job, iot_api.list_tags(job["jobArn"])


def _being_deleted(job_id: str) -> bool:
    job = iot_api.describe_job(job_id)
    return job is None or job.get("status") == DELETING


def _create_again(request: JobRequest, current_id: str) -> JobResult:
    logger.warning("job %s no longer exists: creating it again", current_id)
    return _create_job(request, request.properties.get("JobId") or generated_job_id(request.owner))


def delete(
    request: JobRequest, *, cancel_only: bool, namespace_id: str | None, create_may_be_in_flight: bool = False
) -> str:
    """Delete (or cancel) the job if this resource created it; otherwise do nothing.

    Succeeds for ids that never named a job, jobs already gone or being
    deleted, and jobs that belong to someone else, which are left untouched.

    Parameters
    ----------
    create_may_be_in_flight
        The properties were valid, so a Create that timed out may still be
        creating this job: when it is not there, keep looking for it during a
        grace period instead of leaving an orphan behind.

    Returns
    -------
    str
        What happened, for the response's Reason.
    """
    job_id = request.physical_id
    if not is_job_id(job_id):
        logger.info("physical id is not a job id: nothing to delete")
        return "the physical id names no job: nothing to delete"
    assert job_id is not None
    job = iot_api.describe_job(job_id)
    if job is None and create_may_be_in_flight and may_be_generated_for(request.owner, job_id, request.properties):
        job = _look_again_after_grace(request, job_id)
    if job is None:
        logger.info("job %s does not exist: nothing to delete", job_id)
        return f"job {job_id} does not exist: nothing to delete"
    try:
        tags = iot_api.list_tags(job["jobArn"])
    except iot_api.JobNotFoundError:
        return f"job {job_id} does not exist: nothing to delete"
    if not request.owner.owns(tags):
        logger.warning("job %s was not created by this resource: left untouched", job_id)
        return f"job {job_id} was not created by this resource: left untouched"
    status = job.get("status")
    if status != DELETING and cancel_only:
        if status not in TERMINAL:
            iot_api.cancel_job(job_id, comment="Canceled by CloudFormation stack deletion")
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
    grace_ends = min(time.monotonic() + _IN_FLIGHT_GRACE_SECONDS, request.deadline)
    logger.info(
        "job %s not found: looking again for %.0f s in case its Create is still running",
        job_id,
        grace_ends - time.monotonic(),
    )
    while (left := grace_ends - time.monotonic()) > 0:
        request.sleep(min(1.0, left))
        job = iot_api.describe_job(job_id)
        if job is not None:
            return job
    return None


def _replace(request: JobRequest, job_id: str) -> JobResult:
    """Create the replacement job; if that fails, leave no job CloudFormation cannot see.

    A failed Update keeps the old physical id, so a replacement job that was
    created anyway (a timeout after IoT accepted CreateJob) would be an orphan:
    delete it when this request created it, else name it in the error.
    """
    try:
        return _create_job(request, job_id)
    except Exception as error:
        raise ReplacementError(f"{error} ({_discard_replacement(request, job_id)})") from error


def _discard_replacement(request: JobRequest, job_id: str) -> str:
    try:
        job = iot_api.describe_job(job_id)
        if job is None:
            return f"no replacement job {job_id} was left behind"
        if not request.owner.created(iot_api.list_tags(job["jobArn"])):
            return f"job {job_id} is not this request's and was left untouched"
        iot_api.delete_job(job_id, force=True)
    except Exception as cleanup_error:
        logger.error("replacement job %s may exist and could not be checked: %s", job_id, cleanup_error)
        return f"replacement job {job_id} may exist: delete it if it does"
    logger.warning("deleted replacement job %s: the Update that created it failed", job_id)
    return f"replacement job {job_id} was deleted again"


def _create_job(request: JobRequest, job_id: str) -> JobResult:
    props = request.properties
    fingerprint = schema.create_only_fingerprint(props)
    api_request = schema.to_api(props)
    api_request["jobId"] = job_id
    tags = {**{tag["Key"]: tag["Value"] for tag in props.get("Tags", [])}, **request.owner.tags(fingerprint)}
    api_request["tags"] = [{"Key": key, "Value": value} for key, value in tags.items()]
    try:
        created = iot_api.create_job(api_request)
    except ClientError as error:
        if iot_api.error_code(error) != "ResourceAlreadyExistsException":
            raise
        return _resolve_existing(request, job_id, api_request)
    logger.info("created job %s", job_id)
    return JobResult(created["jobId"], created["jobArn"])


def _resolve_existing(request: JobRequest, job_id: str, api_request: Mapping[str, Any]) -> JobResult:
    """CreateJob found the id taken: our own redelivery, a deletion in progress, or a conflict."""
    job = iot_api.describe_job(job_id)
    if job is not None and job.get("status") != DELETING:
        tags = iot_api.list_tags(job["jobArn"])
        if request.owner.created(tags):
            logger.info("job %s was already created by this request", job_id)
            return JobResult(job_id, job["jobArn"])
        if request.owner.owns(tags):
            raise JobConflictError(
                f"JobId '{job_id}' already exists from an earlier request of this resource and is not "
                "adopted; give the job a new JobId (the existing job is left untouched)"
            )
        raise JobConflictError(
            f"JobId '{job_id}' already exists and was not created by this resource; "
            "choose another JobId (the existing job is left untouched)"
        )
    if job is not None:
        logger.info("JobId %s is still being deleted: waiting before creating it", job_id)
        _wait_until_deleted(request, job_id)
    created = iot_api.create_job(api_request)
    return JobResult(created["jobId"], created["jobArn"])


def _update_in_place(request: JobRequest, job: Mapping[str, Any], tags: Mapping[str, str]) -> None:
    new = request.properties
    old = request.old_properties
    job_id = str(job["jobId"])
    changed = [name for name in schema.UPDATABLE_API_PROPERTIES if old is None or new.get(name) != old.get(name)]
    present = [name for name in schema.UPDATABLE_API_PROPERTIES if name in new]
    if any(name in new for name in changed):
        iot_api.update_job(job_id, schema.to_api(new, present), new.get("NamespaceId"))
        logger.info("updated job %s: %s", job_id, ", ".join(name for name in changed if name in new))
    removed = [name for name in changed if name not in new and old is not None]
    if removed:
        logger.warning("UpdateJob cannot clear %s: job %s keeps its current value", ", ".join(removed), job_id)
    _sync_tags(job, tags, new.get("Tags", []))


def _sync_tags(job: Mapping[str, Any], tags: Mapping[str, str], wanted_tags: list[dict[str, str]]) -> None:
    current = user_tags(tags)
    wanted = {tag["Key"]: tag["Value"] for tag in wanted_tags}
    to_set = {key: value for key, value in wanted.items() if current.get(key) != value}
    to_remove = sorted(set(current) - set(wanted))
    if to_set:
        iot_api.tag_job(job["jobArn"], to_set)
    if to_remove:
        iot_api.untag_job(job["jobArn"], to_remove)


def _start_deletion(request: JobRequest, job_id: str, *, force: bool, namespace_id: str | None) -> None:
    delay = _FIRST_POLL_SECONDS
    while True:
        try:
            iot_api.delete_job(job_id, force=force, namespace_id=namespace_id)
            logger.info("deleting job %s (force=%s)", job_id, force)
            return
        except iot_api.JobNotFoundError:
            return
        except ClientError as error:
            # At most 10 jobs may be deleting at once: wait for a slot. botocore
            # already retried it like throttling, so its last try may be either.
            if iot_api.error_code(error) not in _NO_SLOT_YET or time.monotonic() + delay > request.deadline:
                raise
        request.sleep(delay)
        delay = min(delay * 2, _MAX_POLL_SECONDS)


def _wait_until_deleted(request: JobRequest, job_id: str) -> bool:
    """Poll until the job is gone; ``False`` when the wait budget ran out first."""
    delay = _FIRST_POLL_SECONDS
    while True:
        job = iot_api.describe_job(job_id)
        if job is None:
            logger.info("job %s deleted", job_id)
            return True
        if time.monotonic() + delay > request.deadline:
            # The deletion cannot be stopped any more; IoT finishes it on its own.
            logger.warning("job %s is still being deleted when the wait budget ran out", job_id)
            return False
        request.sleep(delay)
        delay = min(delay * 2, _MAX_POLL_SECONDS)
