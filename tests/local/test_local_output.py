"""What ``cdk-iot-job-local`` prints for a person (:mod:`cdk_iot_job_local.output`).

Rendered from constructed plans, events and results, at the widths a terminal
reports through ``COLUMNS``: no line is wider than the console, and an ARN too
long for its column folds onto the next lines of that column, every character
kept, instead of being cut.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest
from job_arns import JOB_ARN_PREFIX
from rich.console import Console

from cdk_iot_job_local import output
from cdk_iot_job_local.engine import PlannedChange, Progress, StackResult
from cdk_iot_job_local.state import ResourceState
from cdk_iot_job_local.template import Stack
from cdk_iot_job_local.virtual_time import TimeScale

if TYPE_CHECKING:
    from cdk_iot_job_local.runtime import LocalAws

STACK = "CdkIotJobDemo"
JOB_ID = "CdkIotJobDemo-FirmwareRollout76BDADD9-2dcab34fbd7b"
ARN = JOB_ARN_PREFIX + JOB_ID
GROUP_ARN = "arn:aws:iot:us-east-1:123456789012:thinggroup/demo-sensors-of-the-northern-hemisphere-fleet"
REASON = (
    "Received response status [FAILED] from custom resource. Message returned: "
    "JobExecutionsRolloutConfig.MaximumPerMinute '0' must be between 1 and 1000"
)
AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.fixture(params=[80, 120], ids=["80-columns", "120-columns"])
def width(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """The terminal width, told to rich as a terminal tells it: ``COLUMNS``."""
    columns: int = request.param
    monkeypatch.setenv("COLUMNS", str(columns))
    return columns


@pytest.fixture
def screen(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Console]:
    """A console on a string, as wide as ``width`` says, else wide enough for one line per row."""
    if "width" in request.fixturenames:
        request.getfixturevalue("width")
    else:
        monkeypatch.setenv("COLUMNS", "200")
    yield output.console(io.StringIO())


def printed(screen: Console) -> list[str]:
    # The console writes through a line trimmer that hands everything else to the StringIO.
    text = screen.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(text, str)
    return text.splitlines()


def column(lines: list[str], start: int, stop: int | None = None) -> str:
    """The text of one column of a table, its folded pieces joined again."""
    return "".join(line[start:stop].strip() for line in lines)


def row_value(lines: list[str], label: str, start: int) -> str:
    """The value of a labelled row whose value column starts at ``start``, its folded lines joined again."""
    [first] = [i for i, line in enumerate(lines) if line[:start].split()[:1] == [label]]
    end = first + 1
    while end < len(lines) and lines[end].strip() and not lines[end][:start].strip():
        end += 1  # a continuation line: nothing left of the value column
    return column(lines[first:end], start)


def assert_fits(lines: list[str], width: int) -> None:
    too_wide = [line for line in lines if len(line) > width]
    assert not too_wide, "\n".join(too_wide)


def a_plan() -> list[PlannedChange]:
    return [
        PlannedChange("Fleet", "AWS::IoT::ThingGroup", "replace", "ThingGroupName changed", "demo-sensors"),
        PlannedChange(
            "FirmwareRollout76BDADD9", "Custom::IotJob", "replace", "create-only Targets changed", ARN, job_id=JOB_ID
        ),
        PlannedChange("CanaryReboot3EE50568", "Custom::IotJob", "create", f"will fail: {REASON}", fails=True),
        PlannedChange("Role", "AWS::IAM::Role", "no change", physical_id="role-1"),
    ]


def a_deploy() -> StackResult:
    return StackResult(
        STACK,
        "UPDATE_ROLLBACK_COMPLETE",
        events=[
            Progress(STACK, "FirmwareRollout76BDADD9", "Custom::IotJob", "UPDATE_COMPLETE (replacement)", ARN),
            Progress(STACK, "CanaryReboot3EE50568", "Custom::IotJob", "CREATE_FAILED", "", f"{REASON} ({GROUP_ARN})"),
        ],
        resources={"FirmwareRollout76BDADD9": ResourceState("Custom::IotJob", ARN)},
        outputs={"FirmwareRolloutJobArn": ARN, "Region": "us-east-1"},
    )


JOBS = {JOB_ID: {"jobId": JOB_ID, "jobArn": ARN, "status": "IN_PROGRESS", "targets": [GROUP_ARN]}}


# --------------------------------------------------------------------- plan
def test_plan_fits_the_terminal_and_folds_arns_whole(width: int, screen: Console) -> None:
    output.print_plan(screen, STACK, a_plan())

    lines = printed(screen)
    assert_fits(lines, width)
    [header] = [line for line in lines if line.startswith("RESOURCE")]
    start, stop = header.index("PHYSICAL ID"), header.index("DETAIL") if "DETAIL" in header else None
    assert ARN in column(lines, start, stop)
    assert JOB_ID in column(lines, header.index("JOB ID"), start)


def test_plan_on_a_narrow_terminal_lists_the_details_under_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    narrow = output.console(io.StringIO())

    output.print_plan(narrow, STACK, a_plan())

    lines = printed(narrow)
    assert "DETAIL" not in lines[2]
    details = lines[lines.index("Details:") + 1 : -1]
    start = details[0].index("ThingGroupName changed")
    assert [line[:start].strip() for line in details if line[:start].strip()] == [
        "Fleet",
        "FirmwareRollout76BDADD9",
        "CanaryReboot3EE50568",
    ]
    assert f"will fail: {REASON}" in " ".join(line[start:].strip() for line in details)


def test_plan_on_a_wide_terminal_keeps_the_details_in_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    wide = output.console(io.StringIO())

    output.print_plan(wide, STACK, a_plan())

    lines = [line.rstrip() for line in printed(wide)]
    assert lines[2].split() == ["RESOURCE", "TYPE", "ACTION", "JOB", "ID", "PHYSICAL", "ID", "DETAIL"]
    assert "Details:" not in lines
    assert lines[5].endswith("create-only Targets changed")


def test_plan_folds_the_ids_before_the_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    narrow = output.console(io.StringIO())

    output.print_plan(narrow, STACK, a_plan())

    lines = printed(narrow)
    assert_fits(lines, 100)
    # the logical ids and types are whole on their rows; the job id and the ARN took the folds
    assert [line.split()[:3] for line in lines if line.startswith(("Fleet ", "FirmwareRollout"))] == [
        ["Fleet", "AWS::IoT::ThingGroup", "replace"],
        ["FirmwareRollout76BDADD9", "Custom::IotJob", "replace"],
    ]


def test_plan_names_the_resources_the_deploy_would_fail_at(screen: Console) -> None:
    output.print_plan(screen, STACK, a_plan())

    lines = printed(screen)
    assert lines[1] == f"Stack {STACK}: what the next deploy does"
    assert lines[-1] == "The deploy would fail at: CanaryReboot3EE50568"


def test_plan_leaves_out_unchanged_resources_other_than_jobs(screen: Console) -> None:
    output.print_plan(screen, STACK, a_plan())

    text = "\n".join(printed(screen))
    assert "Fleet" in text and "FirmwareRollout76BDADD9" in text
    assert "Role" not in text


def test_a_plan_without_changes_says_so(screen: Console) -> None:
    output.print_plan(screen, STACK, [PlannedChange("Role", "AWS::IAM::Role", "no change", physical_id="r")])

    assert printed(screen)[-1] == "  no changes"


# ------------------------------------------------------------------- events
def test_an_event_line_reads_like_cdk_deploy(screen: Console) -> None:
    output.print_event(screen, Progress(STACK, "Fleet", "AWS::IoT::ThingGroup", "CREATE_COMPLETE", "g"), AT)

    [line] = printed(screen)
    assert line.split() == ["05:06:07", "CREATE_COMPLETE", "AWS::IoT::ThingGroup", "Fleet"]


def test_event_time_is_utc(screen: Console) -> None:
    summer_in_berlin = datetime(2026, 7, 1, 14, 0, 0).astimezone()  # local time, whatever the zone
    output.print_event(screen, Progress(STACK, "Fleet", "AWS::IoT::ThingGroup", "CREATE_COMPLETE"), summer_in_berlin)

    assert printed(screen)[0].startswith(summer_in_berlin.astimezone(UTC).strftime("%H:%M:%S"))


def test_event_lines_printed_one_by_one_line_up(screen: Console) -> None:
    for logical_id, resource_type in [("Fleet", "AWS::IoT::ThingGroup"), ("FirmwareRollout76BDADD9", "Custom::IotJob")]:
        output.print_event(screen, Progress(STACK, logical_id, resource_type, "CREATE_COMPLETE", "x"), AT)

    first, second = printed(screen)
    assert first.index("Fleet") == second.index("FirmwareRollout76BDADD9")
    assert first.index("AWS::IoT::ThingGroup") == second.index("Custom::IotJob")


def test_a_failure_reason_wraps_within_the_terminal_and_prints_as_written(width: int, screen: Console) -> None:
    event = Progress(STACK, "CanaryReboot3EE50568", "Custom::IotJob", "CREATE_FAILED", "", f"{REASON} ({GROUP_ARN})")

    output.print_event(screen, event, AT)

    lines = printed(screen)
    assert_fits(lines, width)
    assert len(lines) > 1, "the reason continues on the next lines"
    start = lines[0].index("CanaryReboot3EE50568")
    assert GROUP_ARN in column(lines, start)
    # "[FAILED]" is text, not rich markup
    assert "status [FAILED] from" in " ".join(line[start:].strip() for line in lines)


# ------------------------------------------------------------------ results
def test_result_fits_the_terminal_and_folds_arns_whole(width: int, screen: Console) -> None:
    output.print_result(screen, a_deploy(), JOBS, 12.3)

    lines = printed(screen)
    assert_fits(lines, width)
    [job_id_line] = [line for line in lines if line.lstrip().startswith("JobId ")]
    assert row_value(lines, "ARN", job_id_line.index(JOB_ID)) == ARN
    assert row_value(lines, "Targets", job_id_line.index(JOB_ID)) == GROUP_ARN
    [output_line] = [line for line in lines if line.lstrip().startswith("FirmwareRolloutJobArn")]
    assert row_value(lines, "FirmwareRolloutJobArn", output_line.index("= ") + 2) == ARN
    # Table padding is not written: logs and diffs of the output stay clean.
    assert [line for line in lines if line != line.rstrip()] == []


def test_result_shows_each_job_as_iot_holds_it(screen: Console) -> None:
    output.print_result(screen, a_deploy(), JOBS, 12.3)

    lines = [line.rstrip() for line in printed(screen)]
    assert f"Stack {STACK}: UPDATE_ROLLBACK_COMPLETE (12.3 s)" in lines
    heading = lines.index("  FirmwareRollout76BDADD9  replace  UPDATE_COMPLETE (replacement)")
    card = [re.split(r"\s{2,}", line.strip()) for line in lines[heading + 1 : heading + 5]]
    assert card == [["JobId", JOB_ID], ["ARN", ARN], ["Targets", GROUP_ARN], ["IoT status", "IN_PROGRESS"]]


def test_result_lists_why_resources_failed(screen: Console) -> None:
    output.print_result(screen, a_deploy(), JOBS)

    lines = [line.rstrip() for line in printed(screen)]
    # the failed job has no job to describe: its heading only
    failed_heading = lines.index("  CanaryReboot3EE50568  create  CREATE_FAILED")
    assert lines[failed_heading + 1] == "Failed:"
    assert lines[failed_heading + 2].split()[:3] == ["CanaryReboot3EE50568", "CREATE_FAILED", "Received"]


def test_result_prints_the_outputs_as_name_equals_value(screen: Console) -> None:
    output.print_result(screen, a_deploy(), JOBS)

    lines = [line.rstrip() for line in printed(screen)]
    start = lines.index("Outputs:")
    assert [line.split() for line in lines[start + 1 :]] == [
        ["FirmwareRolloutJobArn", "=", ARN],
        ["Region", "=", "us-east-1"],
    ]


def test_a_destroyed_job_shows_the_job_it_deleted(screen: Console) -> None:
    result = StackResult(
        STACK, "DELETE_COMPLETE", [Progress(STACK, "Rollout", "Custom::IotJob", "DELETE_COMPLETE", ARN)]
    )

    output.print_result(screen, result, {})

    lines = [line.rstrip() for line in printed(screen)]
    heading = lines.index("  Rollout  delete  DELETE_COMPLETE")
    assert [line.split() for line in lines[heading + 1 :]] == [["JobId", JOB_ID], ["ARN", ARN]]


# -------------------------------------------------------------------- synth
def test_synth_off_a_terminal_prints_a_line_before_and_after(screen: Console) -> None:
    ticks = iter([100.0, 109.25])
    stacks = [Stack(name=name, outdir=Path("."), template={}) for name in ("A", "B")]

    def synth() -> list[Stack]:
        assert printed(screen) == ["Synthesizing python3 app.py ..."], "announced before it runs"
        return stacks

    assert output.synthesizing(screen, "python3 app.py", synth, clock=lambda: next(ticks)) == stacks
    assert printed(screen) == ["Synthesizing python3 app.py ...", "Synthesized A, B in 9.2 s"]


def test_synth_on_a_terminal_shows_a_spinner_then_the_result() -> None:
    stream = io.StringIO()
    screen = Console(file=stream, force_terminal=True, width=80, color_system=None)
    ticks = iter([0.0, 3.0])

    output.synthesizing(screen, "python3 app.py", lambda: [], clock=lambda: next(ticks))

    assert "Synthesized no stack in 3.0 s" in stream.getvalue()
    assert "\u280b Synthesizing python3 app.py ..." in stream.getvalue(), "a spinner frame, then the line is erased"


# ------------------------------------------------------------ rollout gates
GATE = {"MinSucceededPercent": "95", "MaxFailedPercent": "5", "TimeoutInMinutes": "30"}
GATE_ATTRIBUTES = {
    "Arn": ARN,
    "JobId": JOB_ID,
    "GateVerdict": "PASS",
    "TargetedThings": "100",
    "SucceededThings": "97",
    "FailedThings": "2",
    "RejectedThings": "0",
    "TimedOutThings": "1",
    "CanceledThings": "0",
    "RemovedThings": "0",
    "InProgressThings": "0",
    "QueuedThings": "0",
}


def a_gated_deploy() -> StackResult:
    job = ResourceState("Custom::IotJob", ARN, {"RolloutGate": GATE}, dict(GATE_ATTRIBUTES))
    return StackResult(
        STACK,
        "CREATE_COMPLETE",
        events=[Progress(STACK, "FirmwareRollout76BDADD9", "Custom::IotJob", "CREATE_COMPLETE", ARN)],
        resources={"FirmwareRollout76BDADD9": job},
    )


def test_a_gated_job_s_card_gives_the_final_counts(screen: Console) -> None:
    output.print_result(screen, a_gated_deploy(), JOBS)

    lines = [line.rstrip() for line in printed(screen)]
    [gate_line] = [line for line in lines if line.lstrip().startswith("Rollout gate")]
    assert re.split(r"\s{2,}", gate_line.strip()) == [
        "Rollout gate",
        "PASS: 97 of 100 succeeded, 2 failed, 1 timed out",
    ]


def test_a_job_without_a_gate_has_no_gate_row_nor_summary(screen: Console) -> None:
    output.print_result(screen, a_deploy(), JOBS)

    assert not [line for line in printed(screen) if "Rollout gate" in line]
    assert output.gate_summary(ResourceState("Custom::IotJob", ARN, {"Targets": [GROUP_ARN]})) is None


def test_the_gate_summary_holds_the_verdict_and_every_count() -> None:
    resource = a_gated_deploy().resources["FirmwareRollout76BDADD9"]

    assert output.gate_summary(resource) == {
        "verdict": "PASS",
        "targeted": 100,
        "succeeded": 97,
        "failed": 2,
        "rejected": 0,
        "timed_out": 1,
        "canceled": 0,
        "removed": 0,
        "in_progress": 0,
        "queued": 0,
    }


def test_a_gate_without_counts_answered_says_so() -> None:
    resource = ResourceState(
        "Custom::IotJob", ARN, {"RolloutGate": GATE}, {"GateVerdict": "NONE", "TargetedThings": ""}
    )

    summary = output.gate_summary(resource)

    assert summary is not None
    assert (summary["verdict"], summary["targeted"], summary["succeeded"]) == ("NONE", None, None)


class _Iot:
    """DescribeJob of the job the gate waits on, with the counts a fleet reached."""

    def describe_job(self, jobId: str) -> dict[str, Any]:  # boto3's parameter name
        assert jobId == JOB_ID
        details = {"numberOfSucceededThings": 40, "numberOfFailedThings": 3, "numberOfInProgressThings": 57}
        return {"job": {"jobId": jobId, "status": "IN_PROGRESS", "jobProcessDetails": details}}


class _Fake:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def jobs_tagged(self, key: str, value: str) -> list[str]:
        self.asked.append((key, value))
        return [ARN]


class _Aws:
    """What GateWatch uses of LocalAws: the IoT fake, clients and the time scale."""

    def __init__(self) -> None:
        self.fake = _Fake()
        self.time_scale = TimeScale(60)

    def client(self, service: str, *, account: str, region: str) -> _Iot:
        assert (service, account, region) == ("iot", "123456789012", "us-east-1")
        return _Iot()


def gated_event(request_type: str = "Create", gate: dict[str, str] | None = GATE) -> dict[str, Any]:
    properties: dict[str, Any] = {"Targets": [GROUP_ARN]}
    if gate is not None:
        properties["RolloutGate"] = gate
    return {
        "RequestType": request_type,
        "RequestId": "req-1",
        "LogicalResourceId": "FirmwareRollout76BDADD9",
        "ResourceProperties": properties,
    }


def test_while_a_gate_waits_a_terminal_shows_its_progress_and_time_left() -> None:
    # GIVEN a terminal, and a gate 10 real seconds (10 virtual minutes at 60) into its 30 minutes
    stream = io.StringIO()
    screen = Console(file=stream, force_terminal=True, width=120, color_system=None)
    aws = _Aws()
    ticks = iter([0.0, 0.0, 10.0, 10.0])
    watch = output.GateWatch(screen, cast("LocalAws", aws), clock=lambda: next(ticks))

    # WHEN the engine waits on the gated job's Create
    with watch(gated_event()) as on_wait:
        assert on_wait is not None
        on_wait()

    # THEN the line said how far the rollout is, and how long the gate has left
    shown = stream.getvalue()
    assert "40 succeeded, 3 failed, 57 in progress of 100; 20m 00s left" in shown
    # AND the job was the one the provider tagged with the event's RequestId
    assert aws.fake.asked == [("cdk-iot-job:request-id", "req-1")]


@pytest.mark.parametrize(
    ("terminal", "event"),
    [
        (False, gated_event()),  # a pipe, a log, --json: nothing while waiting
        (True, gated_event(gate=None)),  # no gate: nothing to show
        (True, gated_event("Delete")),  # a Delete never waits on the fleet
    ],
    ids=["off-a-terminal", "no-gate", "delete"],
)
def test_nothing_is_shown_while_waiting_off_a_terminal_or_without_a_gate(terminal: bool, event: dict[str, Any]) -> None:
    stream = io.StringIO()
    screen = Console(file=stream, force_terminal=terminal, width=120, color_system=None)
    aws = _Aws()

    with output.GateWatch(screen, cast("LocalAws", aws))(event) as on_wait:
        assert on_wait is None

    assert stream.getvalue() == ""
    assert aws.fake.asked == []
