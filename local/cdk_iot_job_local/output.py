"""What ``cdk-iot-job-local`` prints for a person: plans, live resource events and results.

Everything is rendered with ``rich`` to the console's width (the terminal's,
or ``COLUMNS``): identifiers and ARNs fold onto the next line instead of being
cut, so a long job ARN stays whole and searchable, and no line is wider than
the console. Data is always passed as :class:`~rich.text.Text`, never as markup,
so a reason such as ``status [FAILED]`` prints as written.

While the engine waits on a resource with a ``RolloutGate``, a terminal shows
one live line for its job (:class:`GateWatch`): how many things succeeded,
failed and are in progress of how many, and the gate's time left. Off a
terminal nothing is printed while waiting. A gated job's card, and the
``--json`` document (:func:`gate_summary`), then give the final counts the
provider answered.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO, cast

from rich import box
from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.padding import Padding
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from cdk_iot_job_provider.gate_rules import COUNT_ATTRIBUTES, Counts, GateConfig
from cdk_iot_job_provider.ownership import REQUEST_TAG

from .job_ids import job_id_of
from .template import IOT_JOB_TYPE

if TYPE_CHECKING:
    from .engine import PlannedChange, Progress, StackResult
    from .runtime import LocalAws
    from .state import ResourceState
    from .template import Stack

__all__ = [
    "GateWatch",
    "JobSummary",
    "console",
    "fit_widths",
    "gate_summary",
    "job_summaries",
    "print_event",
    "print_plan",
    "print_result",
    "print_stack_start",
    "synthesizing",
]

_PADDING = re.compile(r" +\n")
#: Wide enough for ``CREATE_COMPLETE``; ``UPDATE_COMPLETE (replacement)`` wraps after its first word.
_STATUS_WIDTH = 15
_TIME_WIDTH = 8
#: The labels of a job's detail rows, and how wide their column is.
_DETAIL_LABELS = {
    "documentSource": "Document source",
    "presignedUrlConfig": "Presigned URL",
    "jobTemplateArn": "Job template",
}
_GATE_LABEL = "Rollout gate"
_LABEL_WIDTH = max(len(label) for label in (*_DETAIL_LABELS.values(), "IoT status", _GATE_LABEL))
#: The jobs as IoT describes them after the run, by JobId.
JobsById = Mapping[str, Mapping[str, object]]


def console(stream: TextIO) -> Console:
    """A console writing to ``stream`` at its terminal's width (``COLUMNS`` wins; 80 off a terminal)."""
    # markup and highlighting off: resource names and reasons are data, printed as given.
    return Console(file=cast("TextIO", _TrimmedLines(stream)), markup=False, highlight=False, emoji=False)


class _TrimmedLines:
    """``stream`` without the spaces rich pads table lines with: logs and diffs stay clean."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(_PADDING.sub("\n", text))

    def __getattr__(self, name: str) -> Any:
        # isatty, fileno, flush, encoding: rich asks the real stream.
        return getattr(self._stream, name)


def _status_style(status: str) -> str:
    if "FAILED" in status:
        return "bold red"
    if "ROLLBACK" in status or "SKIPPED" in status:
        return "yellow"
    if "COMPLETE" in status or status == "NO_CHANGES":
        return "green"
    return "cyan"


# ------------------------------------------------------------------ synth
def synthesizing(
    screen: Console, command: str, synth: Callable[[], list[Stack]], clock: Callable[[], float] = time.monotonic
) -> list[Stack]:
    """Run ``synth`` (the app's synthesis, about 10 s) behind a live indicator.

    On a terminal a spinner turns while it runs; elsewhere (a log, CI) one line
    is printed before it. Either way one line after it names the stacks and
    the seconds it took.
    """
    started = clock()
    label = f"Synthesizing {command} ..."
    if screen.is_terminal:
        with screen.status(Text(label)):
            stacks = synth()
    else:
        # soft_wrap: one line per message, however long the command.
        screen.print(Text(label), soft_wrap=True)
        stacks = synth()
    names = ", ".join(stack.name for stack in stacks) or "no stack"
    screen.print(Text(f"Synthesized {names} in {clock() - started:.1f} s"), soft_wrap=True)
    return stacks


# ----------------------------------------------------------------- events
def print_stack_start(screen: Console, verb: str, stack: str) -> None:
    """The heading printed before a stack's events, as ``cdk deploy`` does."""
    screen.print()
    screen.print(Text.assemble((stack, "bold"), f": {verb}"))


def print_event(screen: Console, event: Progress, at: datetime | None = None) -> None:
    """One CloudFormation-style event line: time (UTC), status, type, logical id and reason.

    The columns have fixed widths for a given console width, so the lines of
    a deploy line up although each is printed on its own, as it happens.
    """
    moment = at or datetime.now(UTC)
    width = screen.width
    grid = Table.grid(padding=(0, 1), collapse_padding=False, expand=True)
    grid.add_column(width=_TIME_WIDTH, no_wrap=True)
    grid.add_column(width=_STATUS_WIDTH, overflow="fold")
    # Long enough for AWS::Lambda::Function at 80 columns, AWS::Lambda::EventInvokeConfig from 100.
    grid.add_column(width=max(14, min(30, (width - 38) // 2)), overflow="fold")
    grid.add_column(ratio=1, overflow="fold")
    subject = Text(event.logical_id, style="bold")
    if event.reason:
        subject.append(f" {event.reason}", style="red" if "FAILED" in event.status else "")
    grid.add_row(
        Text(moment.astimezone(UTC).strftime("%H:%M:%S"), style="dim"),
        Text(event.status, style=_status_style(event.status)),
        Text(event.resource_type),
        subject,
    )
    screen.print(grid)


# ------------------------------------------------------------------- plan
_PLAN_HEADERS = ("RESOURCE", "TYPE", "ACTION", "JOB ID", "PHYSICAL ID", "DETAIL")
#: The plan columns that give up width first: the action and detail wrap, the ids fold; names stay whole longer.
_PLAN_LONG_COLUMNS = (2, 3, 4, 5)
#: Between two plan columns: one space of padding and the box's blank divider.
_PLAN_GAP = 2
#: Narrower than this, the details leave the table for a list under it.
_DETAIL_MIN_WIDTH = 30


def fit_widths(naturals: list[int], available: int, first: Iterable[int], floor: int) -> list[int]:
    """Column widths that add up to at most ``available`` (when they can).

    The ``first`` columns shrink first, the widest of them one character at a
    time, down to ``floor``; then every column, down to 4.
    """
    widths = list(naturals)
    for candidates, minimum in ((list(first), floor), (list(range(len(widths))), 4)):
        while sum(widths) > available:
            shrinkable = [index for index in candidates if widths[index] > minimum]
            if not shrinkable:
                break
            widths[max(shrinkable, key=lambda index: widths[index])] -= 1
    return widths


def _plan_cells(change: PlannedChange) -> list[str]:
    return [
        change.logical_id,
        change.resource_type,
        change.action,
        change.job_id or "-",
        change.physical_id or "-",
        change.detail,
    ]


def _column_widths(headers: tuple[str, ...], rows: list[list[str]], width: int) -> list[int]:
    naturals = [max(cell_len(text) for text in column) for column in zip(headers, *rows, strict=True)]
    available = width - _PLAN_GAP * (len(headers) - 1)
    return fit_widths(naturals, available, [i for i in _PLAN_LONG_COLUMNS if i < len(headers)], floor=12)


def _plan_table(changes: list[PlannedChange], width: int) -> tuple[Table, bool]:
    """The plan as a table; and whether it holds the details (else they go under it)."""
    rows = [_plan_cells(change) for change in changes]
    headers: tuple[str, ...] = _PLAN_HEADERS
    widths = _column_widths(headers, rows, width)
    detail_fits = widths[-1] >= min(_DETAIL_MIN_WIDTH, max(cell_len(row[-1]) for row in rows))
    if not detail_fits:
        headers, rows = headers[:-1], [row[:-1] for row in rows]
        widths = _column_widths(headers, rows, width)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0), header_style="bold")
    for header, column_width in zip(headers, widths, strict=True):
        # fold: an id or ARN too long for its column continues on the next line, whole.
        table.add_column(header, width=column_width, overflow="fold")
    for change, cells in zip(changes, rows, strict=True):
        style = "red" if change.fails else ("dim" if change.action == "no change" else "")
        texts = [Text(cell) for cell in cells]
        texts[2].stylize("bold red" if change.fails else "")
        table.add_row(*texts, style=style)
    return table, detail_fits


def _details_list(changes: list[PlannedChange]) -> Table:
    table = Table.grid(padding=(0, 1), collapse_padding=False)
    table.add_column(style="bold", overflow="fold")
    table.add_column(overflow="fold")
    for change in changes:
        if change.detail:
            table.add_row(change.logical_id, Text(change.detail, style="red" if change.fails else ""))
    return table


def print_plan(screen: Console, stack: str, changes: list[PlannedChange]) -> None:
    """A stack's plan: every job, and every other resource the deploy changes."""
    screen.print()
    screen.print(Text.assemble("Stack ", (stack, "bold"), ": what the next deploy does"))
    shown = [change for change in changes if change.resource_type == IOT_JOB_TYPE or change.action != "no change"]
    if not shown:
        screen.print(Text("  no changes", style="dim"))
        return
    table, with_details = _plan_table(shown, screen.width)
    screen.print(table)
    if not with_details:
        screen.print(Text("Details:", style="bold"))
        screen.print(Padding(_details_list(shown), (0, 0, 0, 2), expand=False))
    failing = [change.logical_id for change in shown if change.fails]
    if failing:
        screen.print(Text(f"The deploy would fail at: {', '.join(failing)}", style="bold red"))


# ---------------------------------------------------------------- results
@dataclass(frozen=True)
class JobSummary:
    """One ``Custom::IotJob`` of a deploy or destroy, as the result table shows it (``""``: none)."""

    logical_id: str
    action: str
    status: str
    job_id: str
    job_arn: str
    targets: list[str]
    iot_status: str
    details: dict[str, str]
    #: The gated job's final counts (:func:`gate_summary`); empty for a job without a gate.
    gate: dict[str, Any] = field(default_factory=dict)


def _action(event: Progress | None) -> str:
    if event is None:
        return "no change"
    if "replacement" in event.status:
        return "replace"
    return event.status.split("_")[0].lower()


def _compact(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key}={item}" for key, item in sorted(value.items()))
    return str(value)


def _summary(
    name: str, first: Progress | None, resource: ResourceState | None, result: StackResult, jobs: JobsById
) -> JobSummary:
    # The job the stack holds now; for a deleted resource, the one its event names.
    arn = resource.physical_id if resource else (first.physical_id if first else "")
    job_id = job_id_of(arn)
    status = first.status if first else "UNCHANGED"
    # A replacement: the old job's Delete came in the cleanup phase. After a failed
    # update it was the new job's: the rollback's cleanup removed what the update made.
    if resource and any(
        e.logical_id == name and e.status == "DELETE_COMPLETE" and e.physical_id != resource.physical_id
        for e in result.events
    ):
        status += ", new job deleted" if status.endswith("_FAILED") else ", old job deleted"
    described = jobs.get(job_id) if job_id else None
    targets = described.get("targets") if described else None
    return JobSummary(
        logical_id=name,
        action=_action(first),
        status=status,
        job_id=job_id or "",
        job_arn=arn if job_id else "",
        targets=[str(target) for target in targets] if isinstance(targets, list) else [],
        iot_status=str(described.get("status") or "") if described else "",
        details={
            label: _compact(described[key]) for key, label in _DETAIL_LABELS.items() if described and described.get(key)
        },
        gate=(gate_summary(resource) or {}) if resource else {},
    )


def job_summaries(result: StackResult, jobs: JobsById) -> list[JobSummary]:
    """The stack's jobs: those it holds now, then those its events touched (deleted ones)."""
    first: dict[str, Progress] = {}
    for event in result.events:
        first.setdefault(event.logical_id, event)
    held = {name: resource for name, resource in result.resources.items() if resource.type == IOT_JOB_TYPE}
    touched = [name for name, event in first.items() if event.resource_type == IOT_JOB_TYPE]
    names = list(dict.fromkeys([*held, *touched]))
    return [_summary(name, first.get(name), held.get(name), result, jobs) for name in names]


def _job_card(job: JobSummary) -> RenderableType:
    """A job's heading (logical id, action, status), then its identifiers and IoT's view of it."""
    heading = Text.assemble(
        (job.logical_id, "bold"), "  ", job.action, "  ", (job.status, _status_style(job.status)), overflow="fold"
    )
    rows = Table.grid(padding=(0, 1), collapse_padding=False)
    rows.add_column(width=_LABEL_WIDTH, style="dim", no_wrap=True)
    rows.add_column(overflow="fold")
    facts = {
        "JobId": job.job_id,
        "ARN": job.job_arn,
        "Targets": "\n".join(job.targets),
        "IoT status": job.iot_status,
        **job.details,
        _GATE_LABEL: _gate_text(job.gate),
    }
    for label, value in facts.items():
        if value:  # a failed Create has no job to describe
            rows.add_row(label, value)
    return Group(heading, Padding(rows, (0, 0, 0, 2), expand=False))


def _outputs_table(outputs: Mapping[str, str]) -> Table:
    table = Table.grid(padding=(0, 1), collapse_padding=False)
    table.add_column(style="bold", overflow="fold")
    table.add_column()
    table.add_column(overflow="fold")
    for name, value in outputs.items():
        table.add_row(name, "=", value)
    return table


def _failures_table(events: Iterable[Progress]) -> Table:
    table = Table.grid(padding=(0, 1), collapse_padding=False)
    table.add_column(style="bold", overflow="fold")
    table.add_column(style="red", overflow="fold")
    table.add_column(overflow="fold")
    for event in events:
        table.add_row(event.logical_id, event.status, event.reason)
    return table


def print_result(screen: Console, result: StackResult, jobs: JobsById, seconds: float | None = None) -> None:
    """A stack's outcome: its status, each job, why resources failed, and its Outputs."""
    screen.print()
    took = f" ({seconds:.1f} s)" if seconds is not None else ""
    screen.print(
        Text.assemble("Stack ", (result.stack, "bold"), ": ", (result.status, _status_style(result.status)), took)
    )
    for job in job_summaries(result, jobs):
        screen.print(Padding(_job_card(job), (0, 0, 0, 2), expand=False))
    failed = [event for event in result.events if event.reason and event.status.endswith("FAILED")]
    if failed:
        screen.print(Text("Failed:", style="bold red"))
        screen.print(Padding(_failures_table(failed), (0, 0, 0, 2), expand=False))
    if result.outputs:
        screen.print(Text("Outputs:", style="bold"))
        screen.print(Padding(_outputs_table(result.outputs), (0, 0, 0, 2), expand=False))


# ------------------------------------------------------------- rollout gates
def _gate_of(properties: object) -> Mapping[str, Any] | None:
    gate = properties.get("RolloutGate") if isinstance(properties, Mapping) else None
    return gate if isinstance(gate, Mapping) else None


def _count(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None  # "" (no gate answered) or an attribute the provider did not send


def gate_summary(resource: ResourceState) -> dict[str, Any] | None:
    """A gated job's final counts, from the attributes its provider answered; ``None`` without a gate.

    Keys: ``verdict`` (``GateVerdict``: PASS, or NONE when no gate passed in
    the last operation), ``targeted`` (``TargetedThings``, the gate's
    denominator) and one per execution status (``succeeded``, ``failed``,
    ``rejected``, ``timed_out``, ``canceled``, ``removed``, ``in_progress``,
    ``queued``). A count the provider did not answer is ``None``.
    """
    if _gate_of(resource.properties) is None:
        return None
    attributes = resource.attributes
    summary: dict[str, Any] = {
        "verdict": attributes.get("GateVerdict") or None,
        "targeted": _count(attributes.get("TargetedThings")),
    }
    for status, attribute in COUNT_ATTRIBUTES.items():
        summary[status.lower()] = _count(attributes.get(attribute))
    return summary


def _gate_text(gate: Mapping[str, Any]) -> str:
    """``PASS: 97 of 100 succeeded, 3 failed`` and whichever other counts are not 0."""
    if not gate:
        return ""
    verdict = str(gate.get("verdict") or "no verdict")
    if gate.get("succeeded") is None:
        return verdict
    of = f" of {gate['targeted']}" if gate.get("targeted") is not None else ""
    parts = [f"{gate['succeeded']}{of} succeeded", f"{gate.get('failed') or 0} failed"]
    for key in ("rejected", "timed_out", "canceled", "removed", "in_progress", "queued"):
        if gate.get(key):
            parts.append(f"{gate[key]} {key.replace('_', ' ')}")
    return f"{verdict}: {', '.join(parts)}"


class GateWatch:
    """What the engine runs while it waits on a provider (a :data:`.delivery.Watcher`).

    For an event of a resource with a ``RolloutGate``, on a terminal, it keeps
    one live line while the engine waits: the job's succeeded, failed and in
    progress executions of the gate's denominator (``ExpectedTargets``, else
    every execution IoT counts), and the gate's time left on the local
    clock. The job is the one the provider tagged with the event's
    ``RequestId``; it is read with DescribeJob. The line goes away when the
    answer comes. Off a terminal, or for an event without a gate, nothing is
    shown.

    Parameters
    ----------
    screen
        Where the line is drawn.
    aws
        The embedded AWS: its IoT fake finds the job, its time scale says
        how fast the gate's time passes.
    clock
        Real seconds (``time.monotonic``).
    """

    def __init__(self, screen: Console, aws: LocalAws, clock: Callable[[], float] = time.monotonic) -> None:
        self._screen = screen
        self._aws = aws
        self._clock = clock

    @contextmanager
    def __call__(self, event: Mapping[str, Any]) -> Iterator[Callable[[], None] | None]:
        gate = _gate_of(event.get("ResourceProperties"))
        if gate is None or event.get("RequestType") == "Delete" or not self._screen.is_terminal:
            yield None
            return
        line = _GateLine(self._aws, event, GateConfig.of(gate), self._clock)
        with Live(line.render(), console=self._screen, transient=True, auto_refresh=False) as live:
            yield lambda: live.update(line.poll(), refresh=True)


class _GateLine:
    """One gated job's live line: found by the event's RequestId tag, read with DescribeJob."""

    def __init__(self, aws: LocalAws, event: Mapping[str, Any], config: GateConfig, clock: Callable[[], float]) -> None:
        self._aws = aws
        self._request_id = str(event.get("RequestId", ""))
        self._logical_id = str(event.get("LogicalResourceId", ""))
        self._config = config
        self._clock = clock
        self._started = clock()
        self._job_arn: str | None = None
        self._counts: Counts | None = None

    def poll(self) -> RenderableType:
        """Read the job's counts now, and render them."""
        try:
            if self._job_arn is None:
                found = self._aws.fake.jobs_tagged(REQUEST_TAG, self._request_id)
                self._job_arn = found[0] if found else None
            if self._job_arn is not None:
                _arn, _partition, _service, region, account, _resource = self._job_arn.split(":", 5)
                iot = self._aws.client("iot", account=account, region=region)
                job = iot.describe_job(jobId=job_id_of(self._job_arn) or "")["job"]
                self._counts = Counts.of(cast("Mapping[str, Any]", job.get("jobProcessDetails") or {}))
        except Exception:  # a live view never fails the deploy: the next poll tries again
            pass
        return self.render()

    def render(self) -> RenderableType:
        """The line, from the last counts read."""
        scale = self._aws.time_scale.scale if self._aws.time_scale is not None else 1.0
        left = max(0.0, self._config.timeout_seconds - (self._clock() - self._started) * scale)
        minutes, seconds = divmod(int(left), 60)
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True)
        grid.add_column(width=20, no_wrap=True)
        grid.add_column(overflow="fold")
        name = Text(self._logical_id, style="bold")
        counts = self._counts
        if counts is None:
            grid.add_row(name, "", Text(f"waiting for the job; {minutes}m {seconds:02d}s left", style="dim"))
            return grid
        total = self._config.expected_targets or counts.executions
        failed = sum(counts[status] for status in self._config.failure_types)
        text = Text.assemble(
            (f"{counts['SUCCEEDED']} succeeded", "green"),
            ", ",
            (f"{failed} failed", "red" if failed else ""),
            f", {counts['IN_PROGRESS'] + counts['QUEUED']} in progress of {total}",
            (f"; {minutes}m {seconds:02d}s left", "dim"),
        )
        grid.add_row(name, ProgressBar(total=max(total, 1), completed=counts["SUCCEEDED"], width=20), text)
        return grid
