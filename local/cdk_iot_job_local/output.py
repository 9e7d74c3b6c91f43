"""What ``cdk-iot-job-local`` prints for a person: plans, live resource events and results.

Everything is rendered with ``rich`` to the console's width (the terminal's,
or ``COLUMNS``): identifiers and ARNs fold onto the next line instead of being
cut, so a long job ARN stays whole and searchable, and no line is wider than
the console. Data is always passed as :class:`~rich.text.Text`, never as markup,
so a reason such as ``status [FAILED]`` prints as written.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO, cast

from rich import box
from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from .job_ids import job_id_of
from .template import IOT_JOB_TYPE

if TYPE_CHECKING:
    from .engine import PlannedChange, Progress, StackResult
    from .state import ResourceState
    from .template import Stack

__all__ = [
    "JobSummary",
    "console",
    "fit_widths",
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
_LABEL_WIDTH = max(len(label) for label in (*_DETAIL_LABELS.values(), "IoT status"))
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
    # A replacement: the old job's Delete came in the cleanup phase.
    if resource and any(
        e.logical_id == name and e.status == "DELETE_COMPLETE" and e.physical_id != resource.physical_id
        for e in result.events
    ):
        status += ", old job deleted"
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
