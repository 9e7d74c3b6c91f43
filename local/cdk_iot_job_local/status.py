"""The jobs of a stack and how their rollouts stand: ``cdk-iot-job status`` and ``cdk-iot-job-local status``.

Collecting is kept apart from rendering:

* :func:`collect_stack` (a real account, through a CloudFormation and an IoT
  client) and :func:`collect_local` (a stack of the local engine's state, through
  an IoT client of its moto) turn API answers into a :class:`StackView`;
* :func:`render` turns a :class:`StackView` into a rich renderable for a person,
  :func:`to_json` into the ``--json`` document.

A rollout gate's verdict comes from the provider's own rules
(:func:`cdk_iot_job_provider.gate_rules.evaluate`), judged from one DescribeJob.
Nothing here remembers earlier polls except ``memory`` (``--watch`` carries it
from one poll to the next): without it, a bake time counts from this poll, or,
for a completed job, from the moment it completed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import yaml
from botocore.exceptions import ClientError
from rich import box
from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from cdk_iot_job_provider import schema
from cdk_iot_job_provider.gate_rules import Counts, GateConfig, denominator, evaluate
from cdk_iot_job_provider.ownership import LOGICAL_ID_TAG, STACK_TAG, Owner, generated_job_id

from .cfn_yaml import CfnYamlLoader
from .output import fit_widths
from .template import IOT_JOB_TYPE

if TYPE_CHECKING:
    from .state import StackState

__all__ = [
    "DELETED",
    "JOB_TYPES",
    "NO_JOB",
    "PENDING",
    "AccountClients",
    "GateMemory",
    "GateView",
    "JobView",
    "StackNotFoundError",
    "StackView",
    "collect_local",
    "collect_stack",
    "gate_config",
    "job_id_in",
    "render",
    "to_json",
]

#: The resource types shown: the provider's and the native one (which has no gate).
JOB_TYPES = (IOT_JOB_TYPE, "AWS::IoT::Job")
#: The status shown for a job IoT no longer holds.
DELETED = "DELETED"
#: The status of a resource that names no job (a failed Create).
NO_JOB = "NO_JOB"
#: The status of a resource being created whose job does not exist yet.
PENDING = "PENDING"
#: Statuses after which nothing changes any more: ``--watch`` stops when every job has one.
ENDED_STATUSES = frozenset({"COMPLETED", "CANCELED", DELETED, NO_JOB})
#: The verdict of a gate given by an intrinsic function: only the deploy knows it.
UNKNOWN = "unknown"
#: Per job ARN, the gate time from which the success threshold has held (``--watch`` carries it).
GateMemory = MutableMapping[str, float]

_IN_PROGRESS = ("CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS")
_JOB_IN_ARN = re.compile(r"job/([a-zA-Z0-9_-]{1,64})")
_JOB_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
# generated_job_id ends in a 12-character hash of the request; what comes before it is fixed per resource.
_GENERATED_HASH_LENGTH = 12
# A job created this long before CloudFormation's timestamp still counts as the operation's (clock skew).
_SKEW_SECONDS = 60.0
_FAILED = ("FAILED", "REJECTED", "TIMED_OUT")
_JSON_COUNTS = {
    "succeeded": "SUCCEEDED",
    "failed": "FAILED",
    "rejected": "REJECTED",
    "timedOut": "TIMED_OUT",
    "canceled": "CANCELED",
    "removed": "REMOVED",
    "inProgress": "IN_PROGRESS",
    "queued": "QUEUED",
}


class StackNotFoundError(Exception):
    """The stack does not exist (CloudFormation's ValidationError, as one line)."""


@dataclass(frozen=True)
class AccountClients:
    """The boto3 clients :func:`collect_stack` calls (injected, so tests can stub them)."""

    cloudformation: Any
    iot: Any


@dataclass(frozen=True)
class GateView:
    """A gate's verdict now: ``PASS``, ``FAIL``, ``WAIT`` or ``unknown``, and why."""

    verdict: str
    reason: str


#: A gate's verdict while its resource names no job.
_NO_JOB_VERDICTS = {
    PENDING: GateView("WAIT", "the provider has not created the job yet"),
    NO_JOB: GateView(UNKNOWN, "the resource names no job: its Create failed"),
}


@dataclass(frozen=True)
class JobView:
    """One job resource of a stack, as IoT holds its job now.

    ``status`` is IoT's job status, or :data:`DELETED`, :data:`NO_JOB` or
    :data:`PENDING`; ``targeted`` the number the progress is out of; ``gate``
    ``None`` for a job without a ``RolloutGate``.
    """

    logical_id: str
    resource_type: str
    job_id: str
    job_arn: str
    status: str
    counts: Counts
    targeted: int
    gate: GateView | None

    @property
    def ended(self) -> bool:
        """Whether the job's rollout can no longer change."""
        return self.status in ENDED_STATUSES


@dataclass(frozen=True)
class StackView:
    """A stack's jobs, in template order, as seen ``at``."""

    stack: str
    jobs: tuple[JobView, ...]
    at: datetime

    @property
    def ended(self) -> bool:
        """Whether every job has ended (a stack without jobs has)."""
        return all(job.ended for job in self.jobs)

    @property
    def failed(self) -> bool:
        """Whether any gate's verdict is FAIL."""
        return any(job.gate is not None and job.gate.verdict == "FAIL" for job in self.jobs)


# ----------------------------------------------------------------- parsing
def job_id_in(physical_id: str | None) -> str | None:
    """The JobId a job resource's physical id names, or ``None``.

    A job ARN (``...:job/<JobId>``), also with a failed Create's
    ``?request-id=`` suffix, or a bare JobId; a failed Create's
    ``create-failed:...`` names none.
    """
    if not physical_id:
        return None
    arn = physical_id.partition("?")[0]
    match = _JOB_IN_ARN.search(arn)
    if match is not None and arn.startswith("arn:"):
        return match.group(1)
    return arn if _JOB_ID.fullmatch(arn) else None


def _is_intrinsic(value: Any) -> bool:
    return isinstance(value, Mapping) and len(value) == 1 and any(k == "Ref" or k.startswith("Fn::") for k in value)


def _holds_intrinsic(value: Any) -> bool:
    if _is_intrinsic(value):
        return True
    if isinstance(value, Mapping):
        return any(_holds_intrinsic(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_intrinsic(item) for item in value)
    return False


def gate_config(properties: Mapping[str, Any] | None) -> GateConfig | str | None:
    """The resource's ``RolloutGate``: its config, why it cannot be known (a ``str``), or ``None`` without one.

    Parsed by the provider's schema, which coerces CloudFormation's strings;
    other properties given by intrinsic functions are skipped.
    """
    if not properties or "RolloutGate" not in properties:
        return None
    raw = properties["RolloutGate"]
    if _holds_intrinsic(raw):
        return "RolloutGate is given by an intrinsic function: only the deploy resolves it"
    try:
        parsed = schema.parse_properties(properties, is_unresolved=_is_intrinsic)["RolloutGate"]
    except schema.InvalidPropertyError:
        # Another property the template leaves to the deploy (a condition, say): the gate alone.
        try:
            parsed = schema.check("RolloutGate", raw)
        except schema.InvalidPropertyError as error:
            return f"RolloutGate cannot be read: {error}"
    return GateConfig.of(parsed)


def _template_body(body: Any) -> dict[str, Any]:
    """GetTemplate's ``TemplateBody``: botocore decodes JSON itself; YAML is left as text."""
    if isinstance(body, Mapping):
        return dict(body)
    try:
        loaded = json.loads(body)
    except ValueError:
        try:
            loaded = yaml.load(body, Loader=CfnYamlLoader)  # CfnYamlLoader is a SafeLoader
        except yaml.YAMLError as error:
            raise ValueError(f"the stack's template cannot be read: {error}") from error
    return loaded if isinstance(loaded, dict) else {}


# ---------------------------------------------------------------- judging
def _seconds_between(start: Any, end: Any) -> float | None:
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        return None
    return (end - start).total_seconds()


def _job_view(
    logical_id: str,
    resource_type: str,
    job_id: str | None,
    job: Mapping[str, Any] | None,
    *,
    gate: GateConfig | str | None,
    stored_targets: str | None,
    now: datetime,
    memory: GateMemory | None,
    missing: str = NO_JOB,
) -> JobView:
    """The view of one job from its DescribeJob ``job`` (``None``: gone, or no ``job_id``)."""
    counts = Counts.of(job.get("jobProcessDetails") if job else None)
    status = str(job.get("status", "")) if job else (DELETED if job_id else missing)
    arn = str(job.get("jobArn", "")) if job else ""
    expected = gate.expected_targets if isinstance(gate, GateConfig) else None
    if expected is not None:
        targeted = expected
    elif stored_targets and stored_targets.isdigit():
        targeted = int(stored_targets)
    else:
        targeted = denominator(counts, counted=0, expected=None)
    verdict: GateView | None = None
    if isinstance(gate, str):
        verdict = GateView(UNKNOWN, gate)
    elif gate is not None and job_id is not None:
        verdict = _judge(gate, counts, targeted, job, arn or job_id, now, memory)
    elif gate is not None:
        verdict = _NO_JOB_VERDICTS[status]
    return JobView(logical_id, resource_type, job_id or "", arn, status, counts, targeted, verdict)


def _judge(
    gate: GateConfig,
    counts: Counts,
    targeted: int,
    job: Mapping[str, Any] | None,
    key: str,
    now: datetime,
    memory: GateMemory | None,
) -> GateView:
    created = job.get("createdAt") if job else None
    elapsed = _seconds_between(created, now) or 0.0
    # The counts of a completed job are final: its threshold has held at least since it completed.
    completed = _seconds_between(created, job.get("completedAt")) if job and job.get("status") == "COMPLETED" else None
    remembered = memory.get(key) if memory is not None else None
    known = [seconds for seconds in (remembered, completed) if seconds is not None]
    met_at = min(known) if known else None
    verdict = evaluate(
        gate,
        counts,
        total=targeted,
        job_status=str(job["status"]) if job else None,
        elapsed_seconds=max(elapsed, 0.0),
        threshold_met_at=met_at,
        reason_code=job.get("reasonCode") if job else None,
        comment=job.get("comment") if job else None,
        target_selection=str(job.get("targetSelection") or "SNAPSHOT") if job else "SNAPSHOT",
    )
    if memory is not None:
        if verdict.threshold_met_at is None:
            memory.pop(key, None)
        else:
            memory[key] = verdict.threshold_met_at
    return GateView(verdict.kind, verdict.reason)


# ------------------------------------------------------ collecting: account
def _pages(call: Callable[..., Mapping[str, Any]], key: str, token: str, **params: Any) -> Iterator[Any]:
    """Every item under ``key`` of a paginated API, following ``token``."""
    while True:
        page = call(**params)
        yield from page.get(key, [])
        following = page.get(token)
        if not following:
            return
        params[token] = following


def _describe(iot: Any, job_id: str | None) -> dict[str, Any] | None:
    if job_id is None:
        return None
    try:
        return dict(iot.describe_job(jobId=job_id)["job"])
    except iot.exceptions.ResourceNotFoundException:
        return None


def _stack_name(stack: str) -> str:
    # A stack ARN: arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<uuid>.
    return stack.split("/")[1] if stack.startswith("arn:") and stack.count("/") >= 2 else stack


def _in_flight_job(
    iot: Any, stack: str, logical_id: str, properties: Mapping[str, Any], since: Any, held: str | None
) -> str | None:
    """The job a Create or replacement in progress has made, which CloudFormation cannot name yet.

    The provider answers (and CloudFormation learns the new physical id)
    only after the gate: until then the job is found as the provider named
    and tagged it, created since the operation started.
    """
    literal = properties.get("JobId")
    name = _stack_name(stack)
    # Without a JobId the provider generates <stack>-<logical id>-<hash of the request>.
    owner = Owner(f"arn:aws:cloudformation:::stack/{name}/-", logical_id, "")
    prefix = generated_job_id(owner)[:-_GENERATED_HASH_LENGTH]

    def named(job_id: str) -> bool:
        return job_id == literal if isinstance(literal, str) else job_id.startswith(prefix)

    candidates = [
        job
        for job in _pages(iot.list_jobs, "jobs", "nextToken", status="IN_PROGRESS")
        if named(str(job.get("jobId"))) and job.get("jobId") != held and _created_since(job, since)
    ]
    for job in sorted(candidates, key=lambda job: job.get("createdAt") or datetime.min.replace(tzinfo=UTC)):
        tags = {
            tag["Key"]: tag["Value"]
            for tag in _pages(iot.list_tags_for_resource, "tags", "nextToken", resourceArn=job["jobArn"])
        }
        if tags.get(LOGICAL_ID_TAG) == logical_id and _stack_name(tags.get(STACK_TAG, "")) == name:
            return str(job["jobId"])
    return None


def _created_since(job: Mapping[str, Any], since: Any) -> bool:
    gap = _seconds_between(since, job.get("createdAt"))
    return gap is None or gap >= -_SKEW_SECONDS


def collect_stack(
    stack: str, clients: AccountClients, *, now: datetime | None = None, memory: GateMemory | None = None
) -> StackView:
    """The jobs of a deployed stack, as its template describes them and IoT holds them.

    Parameters
    ----------
    stack
        The stack's name or ARN.
    clients
        CloudFormation (ListStackResources, GetTemplate) and IoT (DescribeJob;
        ListJobs and ListTagsForResource while a job resource is being created).
    now
        The time the gates are judged at (default: now).
    memory
        Carried between the polls of a watch (see :data:`GateMemory`).

    Raises
    ------
    StackNotFoundError
        The stack does not exist.
    """
    cloudformation = clients.cloudformation
    try:
        resources = list(
            _pages(cloudformation.list_stack_resources, "StackResourceSummaries", "NextToken", StackName=stack)
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ValidationError":
            raise StackNotFoundError(error.response["Error"].get("Message") or f"no stack {stack}") from error
        raise
    resources = [resource for resource in resources if resource.get("ResourceType") in JOB_TYPES]
    template: dict[str, Any] = {}
    if resources:
        body = cloudformation.get_template(StackName=stack, TemplateStage="Processed").get("TemplateBody", {})
        template = _template_body(body)
    declared = template.get("Resources") or {}
    moment = now or datetime.now(UTC)
    jobs = []
    for resource in resources:
        logical_id = str(resource["LogicalResourceId"])
        properties = (declared.get(logical_id) or {}).get("Properties") or {}
        resource_type = str(resource["ResourceType"])
        job_id = job_id_in(resource.get("PhysicalResourceId"))
        in_progress = resource_type == IOT_JOB_TYPE and resource.get("ResourceStatus") in _IN_PROGRESS
        if in_progress:
            since = resource.get("LastUpdatedTimestamp")
            job_id = _in_flight_job(clients.iot, stack, logical_id, properties, since, job_id) or job_id
        gate = gate_config(properties) if resource_type == IOT_JOB_TYPE else None
        jobs.append(
            _job_view(
                logical_id,
                resource_type,
                job_id,
                _describe(clients.iot, job_id),
                gate=gate,
                stored_targets=None,
                now=moment,
                memory=memory,
                missing=PENDING if in_progress else NO_JOB,
            )
        )
    return StackView(stack, tuple(jobs), moment)


# -------------------------------------------------------- collecting: local
def collect_local(
    stack: StackState, iot: Any, *, now: datetime | None = None, memory: GateMemory | None = None
) -> StackView:
    """The ``Custom::IotJob`` resources of a locally deployed stack, as its moto holds their jobs.

    The gate comes from the stored (resolved) properties, the number out of
    which from the stored ``TargetedThings`` attribute when the provider answered one.

    Parameters
    ----------
    stack
        The stack as the state file holds it.
    iot
        An IoT client of the local moto, in the stack's account and region.
    """
    moment = now or datetime.now(UTC)
    jobs = []
    for logical_id, resource in stack.resources.items():
        if resource.type != IOT_JOB_TYPE:
            continue
        job_id = job_id_in(resource.physical_id)
        jobs.append(
            _job_view(
                logical_id,
                resource.type,
                job_id,
                _describe(iot, job_id),
                gate=gate_config(resource.properties),
                stored_targets=resource.attributes.get("TargetedThings"),
                now=moment,
                memory=memory,
            )
        )
    return StackView(stack.name, tuple(jobs), moment)


# -------------------------------------------------------------------- JSON
def to_json(view: StackView) -> dict[str, Any]:
    """The ``--json`` document of one stack."""
    return {
        "stack": view.stack,
        "jobs": [
            {
                "logicalId": job.logical_id,
                "jobId": job.job_id,
                "jobArn": job.job_arn,
                "status": job.status,
                "counts": {name: job.counts[status] for name, status in _JSON_COUNTS.items()},
                "targeted": job.targeted,
                "gate": None if job.gate is None else {"verdict": job.gate.verdict, "reason": job.gate.reason},
            }
            for job in view.jobs
        ],
    }


# --------------------------------------------------------------- rendering
_HEADERS = ("RESOURCE", "JOB ID", "IOT STATUS", "PROGRESS", "GATE")
#: The columns that give up width first, the widest first: the ids fold, the progress wraps.
_LONG_COLUMNS = (0, 1, 3)
#: Between two columns: one space of padding and the box's blank divider.
_GAP = 2
_BAR_WIDTH = 20
#: The bar's segments: (statuses, character, style), left to right.
_SEGMENTS = (
    (("SUCCEEDED",), "█", "green"),
    (_FAILED, "█", "red"),
    (("IN_PROGRESS",), "▒", "yellow"),
    (("QUEUED",), "░", "cyan"),
)
_VERDICT_STYLES = {"PASS": "bold green", "FAIL": "bold red", "WAIT": "cyan", UNKNOWN: "yellow"}


def _status_style(status: str) -> str:
    if status in ("CANCELED", DELETED, NO_JOB):
        return "yellow"
    if status == "COMPLETED":
        return "green"
    return "cyan"


def _bar(job: JobView, width: int) -> Text:
    """Succeeded, failed, in progress and queued, each in proportion to ``targeted``; dots for the rest."""
    bar = Text()
    whole = max(job.targeted, 1)
    used = 0
    for statuses, char, style in _SEGMENTS:
        count = sum(job.counts[status] for status in statuses)
        cells = min(width - used, round(count * width / whole) or (1 if count else 0))
        bar.append(char * cells, style=style)
        used += cells
    bar.append("·" * (width - used), style="dim")
    return bar


def _tally(job: JobView) -> str:
    """The counts behind the bar, in words."""
    counts = job.counts
    parts = [
        f"{counts['SUCCEEDED']} succeeded",
        f"{sum(counts[status] for status in _FAILED)} failed",
        f"{counts['IN_PROGRESS']} in progress",
        f"{counts['QUEUED']} queued",
    ]
    parts += [f"{counts[status]} {status.lower()}" for status in ("CANCELED", "REMOVED") if counts[status]]
    return f"{', '.join(parts)} of {job.targeted}"


def _verdict(job: JobView) -> Text:
    if job.gate is None:
        return Text("no gate", style="dim")
    return Text(job.gate.verdict, style=_VERDICT_STYLES.get(job.gate.verdict, ""))


def _jobs_table(view: StackView, width: int) -> Table:
    tallies = [_tally(job) for job in view.jobs]
    rows = [
        [job.logical_id, job.job_id or "-", job.status, tally, str(_verdict(job))]
        for job, tally in zip(view.jobs, tallies, strict=True)
    ]
    naturals = [max(cell_len(text) for text in column) for column in zip(_HEADERS, *rows, strict=True)]
    naturals[3] = max(naturals[3], _BAR_WIDTH)
    widths = fit_widths(naturals, width - _GAP * (len(_HEADERS) - 1), _LONG_COLUMNS, floor=12)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0), header_style="bold")
    for header, column_width in zip(_HEADERS, widths, strict=True):
        # fold: an id too long for its column continues on the next line, whole; the counts wrap at spaces.
        table.add_column(header, width=column_width, overflow="fold")
    for job, tally in zip(view.jobs, tallies, strict=True):
        progress = _bar(job, min(_BAR_WIDTH, widths[3]))
        progress.append("\n" + tally)
        table.add_row(
            Text(job.logical_id, style="bold"),
            Text(job.job_id or "-"),
            Text(job.status, style=_status_style(job.status)),
            progress,
            _verdict(job),
        )
    return table


def _reasons(view: StackView) -> Table:
    grid = Table.grid(padding=(0, 1), collapse_padding=False)
    grid.add_column(style="bold", overflow="fold")
    grid.add_column(overflow="fold")
    for job in view.jobs:
        if job.gate is not None:
            text = Text.assemble((job.gate.verdict, _VERDICT_STYLES.get(job.gate.verdict, "")), f": {job.gate.reason}")
            grid.add_row(job.logical_id, text)
    return grid


def render(view: StackView, width: int, *, footer: str = "") -> RenderableType:
    """The stack's jobs as a table no wider than ``width``, then each gate's reason."""
    heading = Text.assemble(
        "Stack ", (view.stack, "bold"), f": {len(view.jobs)} job(s) at {view.at.astimezone(UTC):%H:%M:%S} UTC"
    )
    parts: list[RenderableType] = [heading]
    if not view.jobs:
        parts.append(Text("  no IoT jobs", style="dim"))
    else:
        parts.append(_jobs_table(view, width))
        if any(job.gate is not None for job in view.jobs):
            parts += [Text("Gates:", style="bold"), Padding(_reasons(view), (0, 0, 0, 2), expand=False)]
    if footer:
        parts.append(Text(footer, style="dim"))
    return Group(*parts)
