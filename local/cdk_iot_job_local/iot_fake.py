"""A stricter AWS IoT Jobs fake, layered on moto 5.2.5 by monkeypatching.

moto's IoT job support is looser than the real service. Tests that only pass
against loose behaviour prove little, so :class:`StrictIotFake` patches moto's
``IoTBackend``, ``FakeJob`` and ``IoTResponse`` classes to close these gaps
(real IoT behaviour / moto 5.2.5 alone / what the fake does):

UpdateJob
    Real: works. moto: ``NotImplementedError``. Fake: implemented for
    description, presignedUrlConfig, jobExecutionsRolloutConfig, abortConfig,
    timeoutConfig and jobExecutionsRetryConfig; omitted fields stay; bumps
    lastUpdatedAt.
CreateJob with an existing id
    Real: ResourceAlreadyExistsException (409). moto: silently overwrites.
    Fake: 409 whenever the id exists, also while it is DELETION_IN_PROGRESS
    (an id is reusable only once deletion has finished).
Delete/Cancel/Update/Describe/Tag of an unknown job
    Real: ResourceNotFoundException (404). moto: raw ``KeyError`` (500 over
    HTTP) for delete/cancel. Fake: 404.
New job status
    Real: IN_PROGRESS. moto: QUEUED (so delete without force passes). Fake:
    IN_PROGRESS.
DeleteJob
    Real: asynchronous. moto: immediate. Fake: a job that is not COMPLETED or
    CANCELED needs ``force=true`` (else InvalidStateTransitionException, 409);
    with 10 jobs of the account/region already deleting,
    LimitExceededException (410); otherwise the status becomes
    DELETION_IN_PROGRESS and the next ``deletion_polls`` DescribeJob calls on
    it still see that, after which the job, its executions and its tags are
    gone (``deletion_polls=0``: gone at once). Deterministic, no sleeps.
    While DELETION_IN_PROGRESS, the job's executions are no longer played.
Delete/Cancel/Update of a job being deleted
    Real: an error. moto: allowed. Fake: InvalidStateTransitionException (409).
CancelJob
    Real: status CANCELED; QUEUED executions CANCELED, and IN_PROGRESS ones
    too with ``force=true``. moto: status CANCELED, executions untouched.
    Fake: as real; keeps reasonCode, comment and force. A canceled job never
    becomes COMPLETED.
Job executions (CreateJob, DescribeJob's jobProcessDetails, ListJobs,
DescribeJobExecution, ListJobExecutionsForJob, ListJobExecutionsForThing)
    Real: one execution per targeted thing (thing groups expanded through
    their child groups); devices move them QUEUED, IN_PROGRESS, then
    SUCCEEDED, FAILED or REJECTED, or the in-progress timer makes them
    TIMED_OUT; the rollout rate paces notifications; abort criteria cancel
    the job; jobProcessDetails counts each status; a SNAPSHOT job is
    COMPLETED when every execution has ended; a CONTINUOUS job gives
    executions to things that join a targeted group; things deleted or
    removed from the targets while QUEUED or IN_PROGRESS are REMOVED.
    moto: one execution per target ARN (a group's too, never expanded),
    ``executionNumber`` always 123, statuses never change, jobProcessDetails
    a static stub, no numberOfTimedOutThings. Fake: all of the real
    behaviour, in :mod:`.job_executions` (its docstring lists the
    approximations: pacing, abort reasonCode, retries, scheduling). The
    devices are a :class:`~.fleet.FleetPolicy` (``fleet=``); without one
    nobody answers and executions stay QUEUED. Nothing runs in the
    background: a job's executions are played, in time order, up to the
    fake's clock whenever the job is read or changed (and every job of the
    account and region when a thing or group membership changes).
    processingTargets is present only while the job is IN_PROGRESS.
CancelJobExecution/DeleteJobExecution of an unknown execution
    Real: ResourceNotFoundException (404). moto: raw ``KeyError`` (500 over
    HTTP). Fake: 404.
Time
    Every time the fake writes (createdAt, lastUpdatedAt, completedAt,
    execution times) is read from its ``clock`` (real time by default, or the
    local engine's :class:`~.virtual_time.TimeScale`); moto reads the wall
    clock.
jobId pattern
    Real: ``^[a-zA-Z0-9_-]{1,64}$``. moto: checks the first character only.
    Fake: the whole pattern, else InvalidRequestException (400).
Targets (with ``check_targets=True``, as the local engine runs it)
    Real: each target is a thing or thing group ARN; IoT authorizes CreateJob
    on each target ARN. moto: any string. Fake: each target must be the ARN
    of a thing or thing group moto holds in the job's own account and region,
    else ResourceNotFoundException (404) naming the target. What IoT answers
    for a well-formed ARN of a thing that does not exist is **not
    documented**: CreateJob's reference lists both ResourceNotFoundException
    ("the specified resource does not exist") and InvalidRequestException;
    the fake picks the former. A malformed target (not an IoT thing or thing
    group ARN) answers InvalidRequestException (400). Off by default, so
    callers that target ARNs they never created keep working; a job whose
    target is deleted later stays, as in IoT.
document XOR documentSource
    Real: exactly one unless jobTemplateArn is given. moto: not checked.
    Fake: InvalidRequestException (400).
documentSource
    Real: CreateJob reads the S3 object (the caller needs s3:GetObject);
    GetJobDocument returns its content. moto: stores the URL, returns "".
    Fake: the https object URL must name an object in moto's S3, else
    InvalidRequestException; GetJobDocument returns the object's content
    (and ResourceNotFoundException for an unknown job).
Tags (CreateJob ``tags``, TagResource, UntagResource, ListTagsForResource)
    Real: supported. moto: ignored / not implemented. Fake: stored on the job
    (at most 50, else LimitExceededException 410); job ARNs only. The limit
    is checked on the merged set, so a rename done as TagResource(new key)
    then UntagResource(old key) on a job with 50 tags fails at the
    TagResource: untag first.
createdAt
    DescribeJob returns moto's ``createdAt`` (set at CreateJob, never
    changed by UpdateJob, CancelJob or tags), as IoT does.
namespaceId, jobTemplateArn, destinationPackageVersions
    moto drops them. Fake: stored and returned by DescribeJob (which already
    returned the six config fields). The job ARN stays ``...:job/<jobId>``.

The patches sit on moto's classes, so they apply to both ways of reaching moto
from a test:

* boto3 in-process under ``moto.mock_aws()``;
* boto3 in another process (or the same one) over HTTP to a
  ``moto.server.ThreadedMotoServer`` started in the test process; the server
  handles requests on threads of that process, which see the patched classes.

Extra per-job state lives on moto's ``FakeJob`` objects, which moto keys by
account and region, so several accounts and regions stay independent; the
executions are moto's own ``job_executions`` entries (of a subclass,
:class:`~.job_executions.SimulatedExecution`).

Examples
--------
In-process (install the fake around ``mock_aws``; order does not matter)::

    with mock_aws(), StrictIotFake(deletion_polls=1):
        run_handler(...)                  # boto3 inside sees the fake

With a fleet that answers, on a clock 60 times faster than real time::

    fleet = FleetPolicy.parse("succeed=0.9,fail=0.1,delay=1..5m,seed=3")
    with mock_aws(), StrictIotFake(fleet=fleet, clock=TimeScale(60)):
        ...                               # DescribeJob counts move a minute a second

Over HTTP (the server thread lives in the test process, so it is patched)::

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with StrictIotFake():
        subprocess.run([...], env={**os.environ,
                                   "AWS_ENDPOINT_URL": f"http://{host}:{port}"})
    server.stop()

Approximations (where the real service's exact choice is not documented):

* Deletion completes after a number of DescribeJob calls, not after time.
* DeleteJob/CancelJob/UpdateJob of a deleting job answer
  InvalidStateTransitionException; the docs say only "an error".
* CreateJob with a target that does not exist answers
  ResourceNotFoundException (``check_targets=True``); IoT's choice is not
  documented (see Targets above).
* More than 50 tags answers LimitExceededException (both CreateJob and
  TagResource list it); tags are stored as given, in insertion order.
* Tag operations on non-job ARNs answer InvalidRequestException, because
  neither moto nor this fake keeps tags for other IoT resources.
* ``lastUpdatedAt`` moves forward by at least 1 ms on every change, so a bump
  stays visible at the millisecond resolution of the wire format.
"""

from __future__ import annotations

import datetime
import re
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Protocol, cast

from moto.core.responses import ActionResult, EmptyResult
from moto.iot.exceptions import (
    InvalidRequestException,
    InvalidStateTransitionException,
    IoTClientError,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
)
from moto.iot.models import FakeJob, IoTBackend, iot_backends
from moto.iot.responses import IoTResponse

from . import job_executions
from .fleet import FleetPolicy
from .job_executions import Clock, SimulatedExecution
from .virtual_time import REAL_TIME

__all__ = ["JobExtras", "LimitExceededException", "StrictIotFake", "job_extras"]

JOB_ID_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}\Z")
DELETING = "DELETION_IN_PROGRESS"
MAX_TAGS = 50
_MISSING = object()


class LimitExceededException(IoTClientError):
    """IoT ``LimitExceededException`` (HTTP 410); moto has no such class."""

    def __init__(self, msg: str) -> None:
        self.code = 410
        super().__init__("LimitExceededException", msg)


@dataclass
class JobExtras:
    """What the fake records on a job beyond moto's ``FakeJob`` fields."""

    tags: list[dict[str, str]] = field(default_factory=list)
    namespace_id: str | None = None
    job_template_arn: str | None = None
    destination_package_versions: list[str] | None = None
    #: The body of the ``documentSource`` object at CreateJob, served by GetJobDocument.
    source_document: bytes | None = None
    #: DescribeJob calls left before a ``DELETION_IN_PROGRESS`` job is gone.
    deletion_polls_left: int = 0


_EXTRAS_ATTRIBUTE = "strict_iot_fake_extras"


def job_extras(job: FakeJob) -> JobExtras:
    """The fake's own fields of a moto ``job``, kept on the job object so they live and die with it.

    A job moto created before the fake was installed gets the defaults.
    """
    extras = vars(job).get(_EXTRAS_ATTRIBUTE)
    if not isinstance(extras, JobExtras):
        extras = vars(job)[_EXTRAS_ATTRIBUTE] = JobExtras()
    return extras


class _StrictBackend(Protocol):
    """``IoTBackend``'s job and tag methods as :meth:`StrictIotFake._patches` replaces them.

    moto's own signatures lack CreateJob's tags, namespace and template parameters,
    and moto has no UpdateJob or job tagging; the response handlers below only run
    while the fake is installed, so they see the backend through this protocol.
    """

    def create_job(
        self,
        *,
        job_id: str,
        targets: list[str],
        document_source: str | None,
        document: str | None,
        description: str | None,
        presigned_url_config: dict[str, Any] | None,
        target_selection: str | None,
        job_executions_rollout_config: dict[str, Any] | None,
        document_parameters: dict[str, str] | None,
        abort_config: dict[str, Any] | None,
        job_execution_retry_config: dict[str, Any] | None,
        scheduling_config: dict[str, Any] | None,
        timeout_config: dict[str, Any] | None,
        tags: list[dict[str, str]] | None,
        namespace_id: str | None,
        job_template_arn: str | None,
        destination_package_versions: list[str] | None,
    ) -> tuple[str, str, str | None]: ...

    def update_job(
        self,
        *,
        job_id: str,
        description: str | None,
        presigned_url_config: dict[str, Any] | None,
        job_executions_rollout_config: dict[str, Any] | None,
        abort_config: dict[str, Any] | None,
        timeout_config: dict[str, Any] | None,
        job_executions_retry_config: dict[str, Any] | None,
    ) -> None: ...

    def describe_job(self, job_id: str) -> FakeJob: ...

    def tag_resource(self, *, resource_arn: str, tags: list[dict[str, str]]) -> None: ...

    def untag_resource(self, *, resource_arn: str, tag_keys: list[str]) -> None: ...

    def list_tags_for_resource(self, *, resource_arn: str) -> list[dict[str, str]]: ...


def _backend(response: IoTResponse) -> _StrictBackend:
    """The response's backend, with the fake's methods (see :class:`_StrictBackend`)."""
    return cast(_StrictBackend, response.iot_backend)


class StrictIotFake:
    """Patch moto so IoT job operations behave like the real service.

    Parameters
    ----------
    deletion_polls : int, default 2
        How many DescribeJob calls on a deleted job still see
        ``DELETION_IN_PROGRESS``; the job is gone right after the last of them.
        ``0`` deletes immediately. May be changed while installed.
    max_concurrent_deletions : int, default 10
        Jobs per account and region that may be ``DELETION_IN_PROGRESS``.
    check_targets : bool, default False
        Whether CreateJob's targets must be things or thing groups moto holds
        in the job's account and region. May be changed while installed.
    fleet : FleetPolicy, optional
        How the simulated devices answer job executions
        (:mod:`~cdk_iot_job_local.fleet`). ``None`` (the default): nobody
        answers, executions stay ``QUEUED``. May be changed while installed.
    clock : Clock, optional
        Where every time the fake writes comes from (``createdAt``,
        ``lastUpdatedAt``, execution times) and what executions are played up
        to: a :class:`~cdk_iot_job_local.virtual_time.TimeScale` or any object
        whose ``now()`` answers an aware UTC datetime. Real time by default.

    Notes
    -----
    Only one instance may be installed at a time. ``install``/``uninstall``
    can be repeated; ``uninstall`` restores moto's attributes exactly. Every
    request of a patched operation goes through :meth:`_answer`, which a
    subclass may override.
    """

    _installed: ClassVar[StrictIotFake | None] = None
    _install_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        *,
        deletion_polls: int = 2,
        max_concurrent_deletions: int = 10,
        check_targets: bool = False,
        fleet: FleetPolicy | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.deletion_polls = deletion_polls
        self.max_concurrent_deletions = max_concurrent_deletions
        self.check_targets = check_targets
        self.fleet = fleet
        self.clock: Clock = clock if clock is not None else REAL_TIME
        # RLock: backend methods take it and are called from handlers holding it.
        self._lock = threading.RLock()
        self._saved: dict[tuple[type, str], Any] = {}

    # ------------------------------------------------------------------ public
    def install(self) -> StrictIotFake:
        """Apply the patches to moto's classes.

        Returns
        -------
        StrictIotFake
            ``self``, for chaining.

        Raises
        ------
        RuntimeError
            If another ``StrictIotFake`` is installed.
        """
        with StrictIotFake._install_lock:
            if StrictIotFake._installed is self:
                return self
            if StrictIotFake._installed is not None:
                raise RuntimeError("another StrictIotFake is already installed")
            for (cls, name), value in self._patches().items():
                self._saved[(cls, name)] = cls.__dict__.get(name, _MISSING)
                setattr(cls, name, value)
            StrictIotFake._installed = self
        return self

    def uninstall(self) -> None:
        """Restore moto's original attributes; a no-op if not installed."""
        with StrictIotFake._install_lock:
            if StrictIotFake._installed is not self:
                return
            for (cls, name), original in self._saved.items():
                if original is _MISSING:
                    delattr(cls, name)
                else:
                    setattr(cls, name, original)
            self._saved.clear()
            StrictIotFake._installed = None

    @property
    def installed(self) -> bool:
        """Whether this instance's patches are in place."""
        return StrictIotFake._installed is self

    def jobs_tagged(self, key: str, value: str) -> list[str]:
        """ARNs of the jobs, in every account and region, that carry the tag ``key`` = ``value``.

        Jobs being deleted are left out. For the local engine's live progress:
        the provider tags each job with ``cdk-iot-job:request-id``.

        Parameters
        ----------
        key, value
            The tag.

        Returns
        -------
        list[str]
            Sorted job ARNs.
        """
        with self._lock:
            found = []
            for regions in list(iot_backends.values()):
                for backend in list(regions.values()):
                    for job in list(backend.jobs.values()):
                        tags = job_extras(job).tags
                        if job.status != DELETING and any(t["Key"] == key and t.get("Value") == value for t in tags):
                            found.append(job.job_arn)
            return sorted(found)

    def restore_executions(self, backend: IoTBackend, job_id: str, records: list[dict[str, Any]]) -> None:
        """Put back a job's executions as a state file recorded them (see :func:`.job_executions.restore_executions`).

        Parameters
        ----------
        backend
            moto's IoT backend of the job's account and region.
        job_id
            The job, already created again.
        records
            One per execution: ``thingName``, ``status``, ``executionNumber``
            and the ``queuedAt``, ``startedAt`` and ``lastUpdatedAt`` times
            (naive UTC datetimes).
        """
        with self._lock:
            job_executions.restore_executions(backend, _get_job(backend, job_id), records)

    def _now(self) -> datetime.datetime:
        """The clock's now, as moto keeps times: naive UTC."""
        now = self.clock.now()
        if now.tzinfo is not None:
            now = now.astimezone(datetime.UTC).replace(tzinfo=None)
        return now

    def _advance(self, backend: IoTBackend, job: FakeJob) -> None:
        """Play the job's executions up to now (the caller holds the lock)."""
        job_executions.advance(backend, job, self._now(), self.fleet)

    def _advance_all(self, backend: IoTBackend) -> None:
        for job in list(backend.jobs.values()):
            self._advance(backend, job)

    def __enter__(self) -> StrictIotFake:
        return self.install()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.uninstall()

    # -------------------------------------------------------------- patching
    def _patches(self) -> dict[tuple[type, str], Any]:
        fake = self

        def backend_method(impl: Callable[..., Any]) -> Callable[..., Any]:
            # A plain function, so it binds to the backend like moto's methods.
            def method(backend: IoTBackend, *args: Any, **kwargs: Any) -> Any:
                with fake._lock:
                    return impl(backend, *args, **kwargs)

            method.__name__ = impl.__name__.lstrip("_")
            return method

        patches: dict[tuple[type, str], Any] = {(FakeJob, "JOB_ID_REGEX"): JOB_ID_RE}
        for impl in (
            self._create_job,
            self._describe_job,
            self._update_job,
            self._delete_job,
            self._cancel_job,
            self._tag_resource,
            self._untag_resource,
            self._list_tags_for_resource,
            self._get_job_document,
            self._list_jobs,
            self._describe_job_execution,
            self._list_job_executions_for_job,
            self._list_job_executions_for_thing,
            self._cancel_job_execution,
            self._delete_job_execution,
            # Membership changes: executions of things that leave a job's targets are REMOVED,
            # joiners of a CONTINUOUS job get one, at the time of the change.
            self._membership_change("add_thing_to_thing_group"),
            self._membership_change("remove_thing_from_thing_group"),
            self._membership_change("delete_thing"),
            self._membership_change("delete_thing_group"),
        ):
            patches[(IoTBackend, impl.__name__.lstrip("_"))] = backend_method(impl)

        # moto dispatches an operation to IoTResponse.<snake_case name>.
        handlers: dict[str, Callable[[IoTResponse], Any]] = {
            "CreateJob": _create_job_response,
            "UpdateJob": _update_job_response,
            "DescribeJob": _describe_job_response,
            # moto's own handlers already call the (patched) backend methods.
            "DeleteJob": IoTResponse.delete_job,
            "CancelJob": IoTResponse.cancel_job,
            "TagResource": _tag_resource_response,
            "UntagResource": _untag_resource_response,
            "ListTagsForResource": _list_tags_response,
        }
        for operation, handler in handlers.items():
            name = re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()
            patches[(IoTResponse, name)] = self._entry(operation, name, handler)
        return patches

    def _answer(self, operation: str, response: IoTResponse, handler: Callable[[IoTResponse], Any]) -> Any:
        """Answer one request of ``operation`` with ``handler``; the caller holds the fake's lock.

        Every request of a patched operation passes here, one at a time, so an
        override sees them in the order the fake answers them.

        Parameters
        ----------
        operation : str
            Botocore operation name, e.g. ``"CreateJob"``.
        response : IoTResponse
            moto's response object for the request (its parameters and headers).
        handler : Callable[[IoTResponse], Any]
            The fake's response handler of ``operation``.

        Returns
        -------
        Any
            What ``handler`` returns; an error it raises becomes the error response.
        """
        return handler(response)

    def _entry(self, operation: str, name: str, handler: Callable[[IoTResponse], Any]) -> Callable[[IoTResponse], Any]:
        """Wrap a response handler so it runs through :meth:`_answer` under the fake's lock."""
        fake = self

        def entry(response: IoTResponse) -> Any:
            with fake._lock:
                return fake._answer(operation, response, handler)

        entry.__name__ = name
        return entry

    # --------------------------------------------------------- backend logic
    def _create_job(
        self,
        backend: IoTBackend,
        job_id: str,
        targets: list[str],
        document_source: str | None,
        document: str | None,
        description: str | None,
        presigned_url_config: dict[str, Any] | None,
        target_selection: str | None,
        job_executions_rollout_config: dict[str, Any] | None,
        document_parameters: dict[str, str] | None,
        abort_config: dict[str, Any] | None,
        job_execution_retry_config: dict[str, Any] | None,
        scheduling_config: dict[str, Any] | None,
        timeout_config: dict[str, Any] | None,
        tags: list[dict[str, str]] | None = None,
        namespace_id: str | None = None,
        job_template_arn: str | None = None,
        destination_package_versions: list[str] | None = None,
    ) -> tuple[str, str, str | None]:
        if not isinstance(job_id, str) or not JOB_ID_RE.match(job_id):
            raise InvalidRequestException(f"jobId must match [a-zA-Z0-9_-]{{1,64}}: {job_id!r}")
        if job_template_arn is None and (document is None) == (document_source is None):
            raise InvalidRequestException("Exactly one of document or documentSource must be specified")
        if job_id in backend.jobs:
            existing = backend.jobs[job_id]
            raise ResourceAlreadyExistsException(f"Job {job_id} already exists", job_id, existing.job_arn)
        if document_source is not None and _s3_object(backend, document_source) is None:
            raise InvalidRequestException(f"documentSource {document_source} is not a readable S3 object")
        if self.check_targets:
            _check_targets(backend, targets)
        tags = _checked_tags([], tags or [])
        # moto's own IoTBackend.create_job, as install() saved it.
        create: Callable[..., tuple[str, str, str | None]] = self._saved[(IoTBackend, "create_job")]
        result = create(
            backend,
            job_id=job_id,
            targets=targets,
            document_source=document_source,
            document=document,
            description=description,
            presigned_url_config=presigned_url_config,
            target_selection=target_selection,
            job_executions_rollout_config=job_executions_rollout_config,
            document_parameters=document_parameters,
            abort_config=abort_config,
            job_execution_retry_config=job_execution_retry_config,
            scheduling_config=scheduling_config,
            timeout_config=timeout_config,
        )
        job = backend.jobs[job_id]
        job.status = "IN_PROGRESS"
        job.created_at = job.last_updated_at = self._now()
        job_executions.create_executions(backend, job, job.created_at)
        extras = job_extras(job)
        extras.tags = tags
        extras.namespace_id = namespace_id
        extras.job_template_arn = job_template_arn
        extras.destination_package_versions = destination_package_versions
        extras.source_document = _s3_object(backend, document_source) if document_source is not None else None
        return result

    def _get_job_document(self, backend: IoTBackend, job_id: str) -> Any:
        job = _get_job(backend, job_id)
        source = job_extras(job).source_document
        text = job.document if job.document is not None else (source or b"").decode()
        return types.SimpleNamespace(document=text)

    def _describe_job(self, backend: IoTBackend, job_id: str) -> FakeJob:
        job = _get_job(backend, job_id)
        self._advance(backend, job)
        if job.status == DELETING:
            extras = job_extras(job)
            extras.deletion_polls_left -= 1
            if extras.deletion_polls_left <= 0:
                _forget(backend, job_id)  # this caller still sees DELETION_IN_PROGRESS
        return job

    def _update_job(
        self,
        backend: IoTBackend,
        job_id: str,
        description: str | None = None,
        presigned_url_config: dict[str, Any] | None = None,
        job_executions_rollout_config: dict[str, Any] | None = None,
        abort_config: dict[str, Any] | None = None,
        timeout_config: dict[str, Any] | None = None,
        job_executions_retry_config: dict[str, Any] | None = None,
    ) -> None:
        job = _get_job(backend, job_id)
        self._advance(backend, job)  # what happened before the change happened under the old settings
        if job.status == DELETING:
            raise InvalidStateTransitionException(f"Job {job_id} is being deleted and cannot be updated")
        changes = {
            "description": description,
            "presigned_url_config": presigned_url_config,
            "job_executions_rollout_config": job_executions_rollout_config,
            "abort_config": abort_config,
            "timeout_config": timeout_config,
            "job_execution_retry_config": job_executions_retry_config,
        }
        for attr, value in changes.items():
            if value is not None:  # UpdateJob leaves omitted fields unchanged
                setattr(job, attr, value)
        _touch(job, self._now())

    def _delete_job(self, backend: IoTBackend, job_id: str, force: bool | None = False) -> None:
        job = _get_job(backend, job_id)
        self._advance(backend, job)  # it may have completed since it was last read
        if job.status == DELETING:
            raise InvalidStateTransitionException(f"Job {job_id} is already being deleted")
        if job.status not in ("COMPLETED", "CANCELED") and not force:
            raise InvalidStateTransitionException(f"Job {job_id} is {job.status}; deleting it requires force=true")
        deleting = sum(1 for j in backend.jobs.values() if j.status == DELETING)
        if deleting >= self.max_concurrent_deletions:
            raise LimitExceededException(
                f"Only {self.max_concurrent_deletions} jobs may be in status {DELETING} at the same time"
            )
        if self.deletion_polls <= 0:
            _forget(backend, job_id)
            return
        job.status = DELETING
        job_extras(job).deletion_polls_left = self.deletion_polls
        _touch(job, self._now())

    def _cancel_job(
        self,
        backend: IoTBackend,
        job_id: str,
        reason_code: str | None = None,
        comment: str | None = None,
        force: bool | None = None,
    ) -> FakeJob:
        job = _get_job(backend, job_id)
        self._advance(backend, job)
        if job.status == DELETING:
            raise InvalidStateTransitionException(f"Job {job_id} is being deleted and cannot be canceled")
        if reason_code is not None:
            job.reason_code = reason_code
        if comment is not None:
            job.comment = comment
        if force is not None:
            job.force = force
        job.status = "CANCELED"
        now = self._now()
        _touch(job, now)
        job_executions.cancel_executions(backend, job, now, force=bool(force))
        return job

    # Job executions: moto's own methods answer, from executions played up to now.
    def _original(self, name: str) -> Callable[..., Any]:
        """moto's own ``IoTBackend`` method, as install() saved it."""
        original: Callable[..., Any] = self._saved[(IoTBackend, name)]
        return original

    def _list_jobs(self, backend: IoTBackend, *args: Any, **kwargs: Any) -> Any:
        self._advance_all(backend)  # ListJobs shows each job's status
        return self._original("list_jobs")(backend, *args, **kwargs)

    def _describe_job_execution(
        self, backend: IoTBackend, job_id: str, thing_name: str, execution_number: int | None = None
    ) -> Any:
        if job_id in backend.jobs:
            self._advance(backend, backend.jobs[job_id])
        return self._original("describe_job_execution")(backend, job_id, thing_name, execution_number)

    def _list_job_executions_for_job(self, backend: IoTBackend, *args: Any, **kwargs: Any) -> Any:
        job_id = kwargs["job_id"] if "job_id" in kwargs else args[0]
        self._advance(backend, _get_job(backend, job_id))
        return self._original("list_job_executions_for_job")(backend, *args, **kwargs)

    def _list_job_executions_for_thing(self, backend: IoTBackend, *args: Any, **kwargs: Any) -> Any:
        self._advance_all(backend)
        return self._original("list_job_executions_for_thing")(backend, *args, **kwargs)

    def _cancel_job_execution(self, backend: IoTBackend, job_id: str, thing_name: str, force: bool | None) -> None:
        execution = self._execution(backend, job_id, thing_name)
        before = execution.status
        self._original("cancel_job_execution")(backend, job_id, thing_name, force)
        if isinstance(execution, SimulatedExecution) and execution.status != before:
            execution.set_status(execution.status, self._now())
        self._advance(backend, backend.jobs[job_id])

    def _delete_job_execution(
        self, backend: IoTBackend, job_id: str, thing_name: str, execution_number: int, force: bool | None
    ) -> None:
        self._execution(backend, job_id, thing_name)
        self._original("delete_job_execution")(backend, job_id, thing_name, execution_number, force)
        self._advance(backend, backend.jobs[job_id])

    def _execution(self, backend: IoTBackend, job_id: str, thing_name: str) -> Any:
        """The execution, played up to now; ResourceNotFoundException where moto raises a raw KeyError."""
        self._advance(backend, _get_job(backend, job_id))
        execution = backend.job_executions.get((job_id, thing_name))
        if execution is None:
            raise ResourceNotFoundException(f"No execution of job {job_id} on thing {thing_name}")
        return execution

    def _membership_change(self, name: str) -> Callable[..., Any]:
        """moto's ``name``, with every job played up to the change and matched to its targets after it."""

        def change(backend: IoTBackend, *args: Any, **kwargs: Any) -> Any:
            self._advance_all(backend)
            result = self._original(name)(backend, *args, **kwargs)
            now = self._now()
            for job in list(backend.jobs.values()):
                job_executions.reconcile(backend, job, now)
            self._advance_all(backend)  # counts, and a SNAPSHOT job whose last active thing left
            return result

        change.__name__ = name
        return change

    def _tag_resource(self, backend: IoTBackend, resource_arn: str, tags: list[dict[str, str]]) -> None:
        job = _job_by_arn(backend, resource_arn)
        extras = job_extras(job)
        extras.tags = _checked_tags(extras.tags, tags)

    def _untag_resource(self, backend: IoTBackend, resource_arn: str, tag_keys: list[str]) -> None:
        job, doomed = _job_by_arn(backend, resource_arn), set(tag_keys)
        extras = job_extras(job)
        extras.tags = [t for t in extras.tags if t["Key"] not in doomed]

    def _list_tags_for_resource(self, backend: IoTBackend, resource_arn: str) -> list[dict[str, str]]:
        return list(job_extras(_job_by_arn(backend, resource_arn)).tags)


# ------------------------------------------------------------------ helpers
_S3_URL = re.compile(
    r"https://(?:s3[.-](?:[a-z0-9-]+\.)?amazonaws\.com(?:\.cn)?/(?P<path_bucket>[^/]+)/(?P<path_key>.+)"
    r"|(?P<host_bucket>[^./]+)\.s3[.-](?:[a-z0-9-]+\.)?amazonaws\.com(?:\.cn)?/(?P<host_key>.+))"
)


def _s3_object(backend: IoTBackend, url: str) -> bytes | None:
    """The body of the S3 object an https object URL names, from moto's S3."""
    from moto.s3.models import s3_backends

    match = _S3_URL.fullmatch(url)
    if match is None:
        return None
    bucket = match.group("path_bucket") or match.group("host_bucket")
    key = match.group("path_key") or match.group("host_key")
    try:
        found = s3_backends[backend.account_id]["aws"].get_object(bucket, key)
    except Exception:  # moto raises its own errors for a missing bucket
        return None
    return bytes(found.value) if found is not None else None


_TARGET_ARN = re.compile(r"arn:aws[a-z-]*:iot:[a-z0-9-]+:\d{12}:(?:thing|thinggroup)/[a-zA-Z0-9:_-]+")


def _check_targets(backend: IoTBackend, targets: list[str]) -> None:
    """Each target must be a thing or thing group of the backend's own account and region."""
    known = {thing.arn for thing in backend.things.values()}
    known.update(group.arn for group in backend.thing_groups.values())
    for target in targets or []:
        if not isinstance(target, str) or not _TARGET_ARN.fullmatch(target):
            raise InvalidRequestException(f"target {target!r} is not a thing or thing group ARN")
        if target not in known:
            # Another account's or region's ARN is unknown here too: moto keys backends by both.
            raise ResourceNotFoundException(
                f"target {target} does not exist in account {backend.account_id}, region {backend.region_name}"
            )


def _get_job(backend: IoTBackend, job_id: str) -> FakeJob:
    job = backend.jobs.get(job_id)
    if job is None:
        raise ResourceNotFoundException(f"Job {job_id} does not exist")
    return job


def _job_by_arn(backend: IoTBackend, arn: str) -> FakeJob:
    if ":job/" not in (arn or ""):
        # moto has no tags for other IoT resources; say so instead of faking it.
        raise InvalidRequestException(f"StrictIotFake supports tags on job ARNs only: {arn}")
    for job in backend.jobs.values():
        if job.job_arn == arn:
            return job
    raise ResourceNotFoundException(f"Resource {arn} does not exist")


def _forget(backend: IoTBackend, job_id: str) -> None:
    """Finish a deletion: the job, its executions and its tags go."""
    del backend.jobs[job_id]
    for key in [k for k in backend.job_executions if k[0] == job_id]:
        del backend.job_executions[key]


def _touch(job: FakeJob, now: datetime.datetime) -> None:
    # At least 1 ms later: the wire format has millisecond resolution.
    job.last_updated_at = max(now, job.last_updated_at + datetime.timedelta(milliseconds=1))


def _checked_tags(current: list[dict[str, str]], new: list[dict[str, str]]) -> list[dict[str, str]]:
    """Merge ``new`` into ``current`` (same key overwrites), enforcing limits."""
    merged = {t["Key"]: t for t in current}
    for tag in new:
        key, value = tag.get("Key"), tag.get("Value", "")
        if not isinstance(key, str) or not 1 <= len(key) <= 128 or len(value or "") > 256:
            raise InvalidRequestException(f"Invalid tag {tag!r}")
        merged[key] = dict(tag)  # stored as given; a Value may be omitted
    if len(merged) > MAX_TAGS:
        raise LimitExceededException(f"A resource can have at most {MAX_TAGS} tags")
    return list(merged.values())


# ---------------------------------------------------- IoTResponse handlers
def _create_job_response(self: IoTResponse) -> ActionResult:
    job_arn, job_id, description = _backend(self).create_job(
        job_id=self._get_param("jobId"),
        targets=self._get_param("targets"),
        document_source=self._get_param("documentSource"),
        document=self._get_param("document"),
        description=self._get_param("description"),
        presigned_url_config=self._get_param("presignedUrlConfig"),
        target_selection=self._get_param("targetSelection"),
        job_executions_rollout_config=self._get_param("jobExecutionsRolloutConfig"),
        document_parameters=self._get_param("documentParameters"),
        abort_config=self._get_param("abortConfig"),
        job_execution_retry_config=self._get_param("jobExecutionsRetryConfig"),
        scheduling_config=self._get_param("schedulingConfig"),
        timeout_config=self._get_param("timeoutConfig"),
        tags=self._get_param("tags"),
        namespace_id=self._get_param("namespaceId"),
        job_template_arn=self._get_param("jobTemplateArn"),
        destination_package_versions=self._get_param("destinationPackageVersions"),
    )
    return ActionResult({"jobArn": job_arn, "jobId": job_id, "description": description})


def _update_job_response(self: IoTResponse) -> EmptyResult:
    _backend(self).update_job(
        job_id=self._get_param("jobId"),
        description=self._get_param("description"),
        presigned_url_config=self._get_param("presignedUrlConfig"),
        job_executions_rollout_config=self._get_param("jobExecutionsRolloutConfig"),
        abort_config=self._get_param("abortConfig"),
        timeout_config=self._get_param("timeoutConfig"),
        job_executions_retry_config=self._get_param("jobExecutionsRetryConfig"),
    )
    return EmptyResult()


def _describe_job_response(self: IoTResponse) -> ActionResult:
    job = _backend(self).describe_job(job_id=self._get_param("jobId"))
    extras = job_extras(job)
    # moto's fields plus the three it drops; the serializer skips None values.
    return ActionResult(
        {
            "documentSource": job.document_source,
            "job": {
                "jobArn": job.job_arn,
                "jobId": job.job_id,
                "targetSelection": job.target_selection,
                "status": job.status,
                "forceCanceled": job.force,
                "reasonCode": job.reason_code,
                "comment": job.comment,
                "targets": job.targets,
                "description": job.description,
                "presignedUrlConfig": job.presigned_url_config,
                "jobExecutionsRolloutConfig": job.job_executions_rollout_config,
                "abortConfig": job.abort_config,
                "createdAt": job.created_at,
                "lastUpdatedAt": job.last_updated_at,
                "completedAt": job.completed_at,
                "jobProcessDetails": job.job_process_details,
                "timeoutConfig": job.timeout_config,
                "namespaceId": extras.namespace_id,
                "jobTemplateArn": extras.job_template_arn,
                "jobExecutionsRetryConfig": job.job_execution_retry_config,
                "documentParameters": job.document_parameters,
                "schedulingConfig": job.scheduling_config,
                "destinationPackageVersions": extras.destination_package_versions,
            },
        }
    )


def _tag_resource_response(self: IoTResponse) -> EmptyResult:
    _backend(self).tag_resource(resource_arn=self._get_param("resourceArn"), tags=self._get_param("tags") or [])
    return EmptyResult()


def _untag_resource_response(self: IoTResponse) -> EmptyResult:
    _backend(self).untag_resource(
        resource_arn=self._get_param("resourceArn"), tag_keys=self._get_param("tagKeys") or []
    )
    return EmptyResult()


def _list_tags_response(self: IoTResponse) -> ActionResult:
    tags = _backend(self).list_tags_for_resource(resource_arn=self._get_param("resourceArn"))
    return ActionResult({"tags": tags})
