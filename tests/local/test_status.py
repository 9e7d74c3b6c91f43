"""Watching rollouts: ``cdk-iot-job status`` (a real account) and ``cdk-iot-job-local status``.

The account command runs against moto's IoT (a ``ThreadedMotoServer`` with the
strict IoT fake) and a botocore ``Stubber`` standing in for CloudFormation's
ListStackResources and GetTemplate. moto does not play job executions, so the
counts and states DescribeJob answers are set per test (``Fleet.answer``);
everything else (createdAt, ARNs, cancel reasons, tags) is moto's.
The local command runs on a state file written by deploying a small CDK app
through the local engine.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from job_arns import JOB_ARN_PREFIX

from cdk_iot_job_local import status_cli
from cdk_iot_job_local.iot_fake import StrictIotFake
from cdk_iot_job_local.status import AccountClients, collect_stack
from cdk_iot_job_provider.ownership import LOGICAL_ID_TAG, STACK_TAG, Owner, generated_job_id

pytestmark = pytest.mark.usefixtures("aws_env")

REGION = "us-east-1"
STACK = "Firmware"
STACK_ARN = f"arn:aws:cloudformation:{REGION}:123456789012:stack/{STACK}/6f1c2f10-0000-4000-8000-000000000000"
GROUP = f"arn:aws:iot:{REGION}:123456789012:thinggroup/sensors"
COUNT_KEYS = {
    "succeeded": "numberOfSucceededThings",
    "failed": "numberOfFailedThings",
    "rejected": "numberOfRejectedThings",
    "timed_out": "numberOfTimedOutThings",
    "canceled": "numberOfCanceledThings",
    "removed": "numberOfRemovedThings",
    "in_progress": "numberOfInProgressThings",
    "queued": "numberOfQueuedThings",
}
GATED = """\
Parameters:
  MinPercent:
    Type: Number
Resources:
  Rollout:
    Type: Custom::IotJob
    Properties:
      ServiceToken: !ImportValue cdk-iot-job-ServiceToken
      Targets: [!GetAtt Sensors.Arn]
      Document: '{{"operation":"firmware-update"}}'
      RolloutGate: {gate}
  Reboot:
    Type: AWS::IoT::Job
    Properties:
      Targets: [!GetAtt Sensors.Arn]
      Document: '{{"operation":"reboot"}}'
"""
# Strings, as CloudFormation hands them over: the provider's schema coerces them.
GATE = '{MinSucceededPercent: "90", MaxFailedPercent: "10", ExpectedTargets: "10"}'


# --------------------------------------------------------------------------
# IoT: moto with answers set per test
# --------------------------------------------------------------------------
@dataclass
class Fleet:
    """moto's IoT, with DescribeJob's counts and state set per job (moto plays no executions)."""

    iot: Any
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.iot.meta.events.register("after-call.iot.DescribeJob", self._patch)

    def _patch(self, parsed: dict[str, Any], **_: Any) -> None:
        job = parsed.get("job")
        if job is not None:
            job.update(self.answers.get(job["jobId"], {}))

    def job(self, name: str, **tags: str) -> str:
        """A new job (a unique id starting with ``name``) in moto; its id."""
        job_id = f"{name}-{uuid.uuid4().hex[:8]}"
        extra = {"tags": [{"Key": key, "Value": value} for key, value in tags.items()]} if tags else {}
        self.iot.create_job(jobId=job_id, targets=[GROUP], document="{}", **extra)
        return job_id

    def answer(self, job_id: str, status: str | None = None, /, **counts: int) -> None:
        """What DescribeJob says of ``job_id`` from now on: its status and counts (``succeeded=9``, ...)."""
        answer = self.answers.setdefault(job_id, {})
        if status is not None:
            answer["status"] = status
        if counts:
            answer["jobProcessDetails"] = {COUNT_KEYS[name]: count for name, count in counts.items()}

    def created_at(self, job_id: str) -> datetime:
        created: datetime = self.iot.describe_job(jobId=job_id)["job"]["createdAt"]
        return created


@pytest.fixture
def fleet(server_url: str) -> Iterator[Fleet]:
    with StrictIotFake(deletion_polls=0):
        yield Fleet(boto3.client("iot", region_name=REGION, endpoint_url=server_url))


# --------------------------------------------------------------------------
# CloudFormation: a Stubber
# --------------------------------------------------------------------------
def resource(
    logical_id: str, physical_id: str | None, resource_type: str = "Custom::IotJob", status: str = "CREATE_COMPLETE"
) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "LogicalResourceId": logical_id,
        "ResourceType": resource_type,
        "ResourceStatus": status,
        "LastUpdatedTimestamp": datetime.now(UTC) - timedelta(seconds=10),
    }
    if physical_id is not None:
        summary["PhysicalResourceId"] = physical_id
    return summary


def stubbed_stack(pages: list[list[dict[str, Any]]], template: str, *, looks: int = 1) -> Any:
    """A CloudFormation client answering ``looks`` times: the resources in ``pages``, then the template."""
    client = boto3.client("cloudformation", region_name=REGION)
    stubber = Stubber(client)
    for _ in range(looks):
        for index, page in enumerate(pages):
            expected = {"StackName": STACK, **({"NextToken": f"page-{index}"} if index else {})}
            answer = {
                "StackResourceSummaries": page,
                **({"NextToken": f"page-{index + 1}"} if index + 1 < len(pages) else {}),
            }
            stubber.add_response("list_stack_resources", answer, expected)
        stubber.add_response(
            "get_template", {"TemplateBody": template}, {"StackName": STACK, "TemplateStage": "Processed"}
        )
    stubber.activate()
    return client


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str
    sleeps: list[float]

    def json(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.out)
        return document

    def job(self, logical_id: str) -> dict[str, Any]:
        [job] = [job for job in self.json()["jobs"] if job["logicalId"] == logical_id]
        found: dict[str, Any] = job
        return found


def status(
    cloudformation: Any,
    fleet: Fleet,
    *args: str,
    now: datetime | None = None,
    between: Callable[[], None] | None = None,
) -> Run:
    """``cdk-iot-job status --stack Firmware ARGS``; ``between`` runs at each sleep of ``--watch``."""
    out, err, sleeps = io.StringIO(), io.StringIO(), []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if between is not None:
            between()

    code = status_cli.main(
        ["status", "--stack", STACK, *args],
        out=out,
        err=err,
        clients=lambda region: AccountClients(cloudformation, fleet.iot),
        sleep=sleep,
        now=(lambda: now) if now is not None else None,
    )
    return Run(code, out.getvalue(), err.getvalue(), sleeps)


def gated_stack(fleet: Fleet, gate: str = GATE, *, looks: int = 1) -> tuple[Any, str, str]:
    """The stack of ``GATED`` with a job for each resource: the client, and the gated and ungated job ids."""
    gated, plain = fleet.job("rollout"), fleet.job("reboot")
    pages = [
        [resource("Rollout", JOB_ARN_PREFIX + gated)],
        [resource("Reboot", JOB_ARN_PREFIX + plain, "AWS::IoT::Job")],
    ]
    return stubbed_stack(pages, GATED.format(gate=gate), looks=looks), gated, plain


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


# --------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------
@pytest.mark.usefixtures("wide")
def test_the_table_shows_a_gated_and_an_ungated_job_with_their_progress(fleet: Fleet) -> None:
    # GIVEN a gated job that reached its threshold, and a plain AWS::IoT::Job, on two pages of resources
    cloudformation, gated, plain = gated_stack(fleet)
    fleet.answer(gated, succeeded=9, failed=1)
    fleet.answer(plain, succeeded=1, in_progress=2, queued=1)

    run = status(cloudformation, fleet)

    assert run.code == 0, run
    lines = run.out.splitlines()
    [rollout] = [line for line in lines if line.startswith("Rollout ")]
    assert re.search(rf"^Rollout\s+{gated}\s+IN_PROGRESS\s+█+\s+PASS$", rollout), run.out
    [reboot] = [line for line in lines if line.startswith("Reboot ")]
    assert re.search(rf"^Reboot\s+{plain}\s+IN_PROGRESS\s+█+▒+░+\s+no gate$", reboot), run.out
    # The counts under each bar: the gate's ExpectedTargets, else the executions IoT counted.
    assert "9 succeeded, 1 failed, 0 in progress, 0 queued of 10" in run.out
    assert "1 succeeded, 0 failed, 2 in progress, 1 queued of 4" in run.out
    assert re.search(r"^  Rollout\s+PASS: 9 of 10 \(90\.0%\) succeeded", run.out, re.MULTILINE), run.out


@pytest.mark.parametrize(
    ("counts", "verdict", "reason", "code"),
    [
        ({"succeeded": 9, "failed": 1}, "PASS", "threshold held for the bake time", 0),
        ({"succeeded": 5, "failed": 3, "in_progress": 2}, "FAIL", "3 of 10 (30.0%) failed", 1),
        ({"succeeded": 2, "queued": 8}, "WAIT", "2 of 10 (20.0%) succeeded", 0),
    ],
    ids=["pass", "fail-exits-1", "wait"],
)
def test_the_gate_verdict_is_the_providers_and_a_fail_exits_1(
    fleet: Fleet, counts: dict[str, int], verdict: str, reason: str, code: int
) -> None:
    cloudformation, gated, _plain = gated_stack(fleet)
    fleet.answer(gated, **counts)

    run = status(cloudformation, fleet, "--json")

    assert run.code == code, run
    gate = run.job("Rollout")["gate"]
    assert gate["verdict"] == verdict and reason in gate["reason"], gate


def test_a_job_canceled_by_its_abort_criteria_fails_the_gate_naming_the_reason(fleet: Fleet) -> None:
    cloudformation, gated, _plain = gated_stack(fleet)
    fleet.iot.cancel_job(jobId=gated, reasonCode="FAILURE_THRESHOLD", comment="too many failures")
    fleet.answer(gated, succeeded=1, failed=6, canceled=3)

    run = status(cloudformation, fleet, "--json")

    assert run.code == 1, run
    job = run.job("Rollout")
    assert job["status"] == "CANCELED"
    assert "canceled (reasonCode FAILURE_THRESHOLD: too many failures)" in job["gate"]["reason"], job


def test_json_has_one_entry_per_job_with_every_count(fleet: Fleet) -> None:
    cloudformation, gated, plain = gated_stack(fleet)
    fleet.answer(gated, succeeded=4, failed=1, rejected=1, timed_out=1, canceled=0, removed=2, in_progress=2, queued=1)

    run = status(cloudformation, fleet, "--json")

    document = run.json()
    assert document["stack"] == STACK and [job["logicalId"] for job in document["jobs"]] == ["Rollout", "Reboot"]
    rollout = run.job("Rollout")
    assert set(rollout) == {"logicalId", "jobId", "jobArn", "status", "counts", "targeted", "gate"}
    assert (rollout["jobId"], rollout["jobArn"], rollout["status"]) == (gated, JOB_ARN_PREFIX + gated, "IN_PROGRESS")
    assert rollout["counts"] == {
        "succeeded": 4,
        "failed": 1,
        "rejected": 1,
        "timedOut": 1,
        "canceled": 0,
        "removed": 2,
        "inProgress": 2,
        "queued": 1,
    }
    assert rollout["targeted"] == 10 and set(rollout["gate"]) == {"verdict", "reason"}
    reboot = run.job("Reboot")
    assert reboot["jobId"] == plain and reboot["gate"] is None


def test_without_expected_targets_the_executions_less_the_removed_ones_are_the_total(fleet: Fleet) -> None:
    cloudformation, gated, _plain = gated_stack(fleet, '{MinSucceededPercent: "50"}')
    fleet.answer(gated, succeeded=3, queued=2, removed=4)

    run = status(cloudformation, fleet, "--json")

    rollout = run.job("Rollout")
    assert rollout["targeted"] == 5 and rollout["gate"]["verdict"] == "PASS", rollout


def test_a_gate_given_by_an_intrinsic_function_is_unknown(fleet: Fleet) -> None:
    cloudformation, gated, _plain = gated_stack(fleet, "{MinSucceededPercent: !Ref MinPercent}")
    fleet.answer(gated, succeeded=0, failed=10)

    run = status(cloudformation, fleet, "--json")

    assert run.code == 0, run
    gate = run.job("Rollout")["gate"]
    assert gate["verdict"] == "unknown" and "intrinsic function" in gate["reason"], gate


def test_a_completed_job_passes_its_bake_time_from_when_it_completed(fleet: Fleet) -> None:
    # GIVEN a job that completed a minute after it started, with a 10-minute bake and a 30-minute timeout
    cloudformation, gated, _plain = gated_stack(fleet, '{MinSucceededPercent: "90", BakeTimeInMinutes: "10"}')
    created = fleet.created_at(gated)
    fleet.answer(gated, "COMPLETED", succeeded=10)
    fleet.answers[gated]["completedAt"] = created + timedelta(minutes=1)

    # WHEN looked at 40 minutes later
    run = status(cloudformation, fleet, "--json", now=created + timedelta(minutes=40))

    # THEN the threshold has held since it completed: PASS, not a timeout
    assert run.code == 0, run
    assert run.job("Rollout")["gate"]["verdict"] == "PASS", run.out


def test_a_watch_remembers_since_when_the_threshold_has_held(fleet: Fleet) -> None:
    cloudformation, gated, _plain = gated_stack(fleet, '{MinSucceededPercent: "90", BakeTimeInMinutes: "10"}', looks=2)
    fleet.answer(gated, succeeded=10)
    created = fleet.created_at(gated)
    clients = AccountClients(cloudformation, fleet.iot)
    memory: dict[str, float] = {}

    first = collect_stack(STACK, clients, now=created + timedelta(minutes=1), memory=memory)
    second = collect_stack(STACK, clients, now=created + timedelta(minutes=12), memory=memory)

    assert first.jobs[0].gate is not None and first.jobs[0].gate.verdict == "WAIT"
    assert "baking for 600 s more" in first.jobs[0].gate.reason
    assert second.jobs[0].gate is not None and second.jobs[0].gate.verdict == "PASS", second.jobs[0].gate


def test_a_failed_creates_request_id_suffix_still_names_its_job(fleet: Fleet) -> None:
    job_id = fleet.job("rollout")
    fleet.iot.cancel_job(jobId=job_id)
    physical_id = f"{JOB_ARN_PREFIX}{job_id}?request-id=5f0c1e2d"
    cloudformation = stubbed_stack(
        [[resource("Rollout", physical_id, status="CREATE_FAILED")]], GATED.format(gate=GATE)
    )

    run = status(cloudformation, fleet, "--json")

    job = run.job("Rollout")
    assert (job["jobId"], job["jobArn"], job["status"]) == (job_id, JOB_ARN_PREFIX + job_id, "CANCELED"), job


def test_a_job_still_being_created_is_found_by_the_providers_name_and_tags(fleet: Fleet) -> None:
    # GIVEN a gated Create in progress: CloudFormation knows no physical id until the gate answers
    owner = Owner(STACK_ARN, "Rollout", "request-1")
    prefix = generated_job_id(owner)[:-12]
    other = fleet.job(prefix + "other", **{STACK_TAG: STACK_ARN.replace(STACK, "Firmware2"), LOGICAL_ID_TAG: "Rollout"})
    ours = fleet.job(prefix + "ours", **{STACK_TAG: STACK_ARN, LOGICAL_ID_TAG: "Rollout"})
    fleet.answer(ours, succeeded=2, queued=8)
    cloudformation = stubbed_stack([[resource("Rollout", None, status="CREATE_IN_PROGRESS")]], GATED.format(gate=GATE))

    run = status(cloudformation, fleet, "--json")

    job = run.job("Rollout")
    assert job["jobId"] == ours != other and job["gate"]["verdict"] == "WAIT", job


def test_a_gated_create_whose_job_does_not_exist_yet_is_pending_and_waits(fleet: Fleet) -> None:
    # A logical id of its own: no job of this module's moto carries its name.
    template = GATED.format(gate=GATE).replace("Rollout:", "Pending:")
    cloudformation = stubbed_stack([[resource("Pending", None, status="CREATE_IN_PROGRESS")]], template)

    run = status(cloudformation, fleet, "--json")

    assert run.code == 0, run
    job = run.job("Pending")
    assert (job["jobId"], job["status"], job["gate"]["verdict"]) == ("", "PENDING", "WAIT"), job


def test_a_deleted_job_of_a_json_template_shows_as_deleted(fleet: Fleet) -> None:
    template = {"Resources": {"Reboot": {"Type": "AWS::IoT::Job", "Properties": {"Targets": [GROUP]}}}}
    cloudformation = stubbed_stack(
        [[resource("Reboot", JOB_ARN_PREFIX + "gone-job", "AWS::IoT::Job")]], json.dumps(template)
    )

    run = status(cloudformation, fleet, "--json")

    assert run.code == 0 and run.job("Reboot")["status"] == "DELETED", run


# --------------------------------------------------------------------------
# --watch
# --------------------------------------------------------------------------
@pytest.mark.usefixtures("wide")
def test_watch_looks_again_until_every_job_has_ended(fleet: Fleet) -> None:
    # GIVEN two jobs in progress, which end while the watch sleeps
    cloudformation, gated, plain = gated_stack(fleet, looks=2)
    fleet.answer(gated, succeeded=5, queued=5)
    fleet.answer(plain, in_progress=1)

    def fleet_finishes() -> None:
        fleet.answer(gated, "COMPLETED", succeeded=10)
        fleet.iot.cancel_job(jobId=plain)

    # WHEN watched at the smallest interval
    run = status(cloudformation, fleet, "--watch", "--interval", "1", between=fleet_finishes)

    # THEN it looked twice and stopped; off a terminal each change is printed, the last without the footer
    assert run.code == 0 and run.sleeps == [1.0], run
    first, last = run.out.split("Ctrl-C to stop")
    assert re.search(r"^Rollout\s.*\sIN_PROGRESS\s.*\sWAIT$", first, re.MULTILINE), run.out
    assert re.search(r"^Rollout\s.*\sCOMPLETED\s.*\sPASS$", last, re.MULTILINE), run.out
    assert re.search(r"^Reboot\s.*\sCANCELED\s.*\sno gate$", last, re.MULTILINE), run.out


def test_ctrl_c_ends_a_watch_with_exit_0(fleet: Fleet) -> None:
    cloudformation, gated, _plain = gated_stack(fleet)
    fleet.answer(gated, succeeded=5, queued=5)

    def interrupt() -> None:
        raise KeyboardInterrupt

    run = status(cloudformation, fleet, "--watch", "--json", between=interrupt)

    assert run.code == 0 and run.sleeps == [30.0], run
    assert run.job("Rollout")["gate"]["verdict"] == "WAIT"


# --------------------------------------------------------------------------
# width
# --------------------------------------------------------------------------
def test_at_80_columns_the_table_fits_and_a_long_job_id_folds_whole(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    job_id = fleet.job("CdkIotJobDemo-FirmwareRolloutOfTheNorthernFleet76BDADD9")
    fleet.answer(job_id, succeeded=3, failed=1, in_progress=4, queued=2)
    template = GATED.format(gate=GATE).replace("Rollout:", "FirmwareRolloutOfTheNorthernFleet76BDADD9:")
    cloudformation = stubbed_stack(
        [[resource("FirmwareRolloutOfTheNorthernFleet76BDADD9", JOB_ARN_PREFIX + job_id)]], template
    )

    run = status(cloudformation, fleet)

    lines = run.out.splitlines()
    assert max(len(line) for line in lines) <= 80, run.out
    header = next(index for index, line in enumerate(lines) if line.startswith("RESOURCE"))
    start, stop = lines[header].index("JOB ID"), lines[header].index("IOT STATUS")
    rows = lines[header + 2 : lines.index("Gates:")]
    assert "".join(line[start:stop].strip() for line in rows) == job_id, run.out
    assert "".join(line[:start].strip() for line in rows) == "FirmwareRolloutOfTheNorthernFleet76BDADD9"


# --------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------
def test_an_unknown_stack_exits_2_with_one_line(fleet: Fleet) -> None:
    client = boto3.client("cloudformation", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_client_error(
        "list_stack_resources",
        service_error_code="ValidationError",
        service_message=f"Stack with id {STACK} does not exist",
        http_status_code=400,
        expected_params={"StackName": STACK},
    )
    stubber.activate()

    run = status(client, fleet)

    assert run.code == 2 and run.out == "", run
    assert run.err == f"error: Stack with id {STACK} does not exist\n"


def test_without_credentials_it_exits_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # Were credentials found after all, the call would still go no further than loopback.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")

    assert status_cli.main(["status", "--stack", STACK]) == 2

    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "error: Unable to locate credentials\n", captured


@pytest.mark.parametrize(
    ("argv", "usage"),
    [
        (["status"], "usage: cdk-iot-job status"),
        (["status", "--stack", "x", "--interval", "0.5"], "usage: cdk-iot-job status"),
        (["watch"], "usage: cdk-iot-job "),
    ],
    ids=["no-stack", "interval-under-1", "unknown-command"],
)
def test_bad_arguments_exit_2_with_the_usage(argv: list[str], usage: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        status_cli.main(argv)

    assert exited.value.code == 2
    assert capsys.readouterr().err.startswith(usage)


@pytest.mark.parametrize("argv", [["--help"], ["status", "--help"]], ids=["command", "status"])
def test_help_shows_the_exit_codes_and_examples(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        status_cli.main(argv)

    assert exited.value.code == 0
    text = capsys.readouterr().out
    codes = text[text.index("exit codes:") : text.index("examples:")]
    assert re.findall(r"^  (\d)  ", codes, re.MULTILINE) == ["0", "1", "2"]
    assert "a rollout gate's verdict is FAIL" in codes
    assert "cdk-iot-job status --stack Firmware --watch" in text


def test_status_help_describes_each_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        status_cli.main(["status", "--help"])

    text = capsys.readouterr().out
    for option in ("--stack NAME", "--watch", "--interval SECONDS", "--json", "--region R"):
        assert re.search(rf"^  {option}\s+\S", text, re.MULTILINE), option


def test_the_console_script_is_installed() -> None:
    script = shutil.which("cdk-iot-job", path=str(Path(status_cli.__file__).parents[2] / ".venv" / "bin"))

    assert script is not None and "cdk_iot_job_local.status_cli" in Path(script).read_text()


# --------------------------------------------------------------------------
# cdk-iot-job-local status
# --------------------------------------------------------------------------
LOCAL_STACK = "StatusStack"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state file holding ``StatusStack`` (a thing group and an ungated job), deployed by the local engine."""
    import aws_cdk as cdk
    from aws_cdk import aws_iot as iot

    from cdk_iot_job import IotJob
    from cdk_iot_job_local.assembly import from_assembly
    from cdk_iot_job_local.engine import LocalCloudFormation
    from cdk_iot_job_local.runtime import LocalAws
    from cdk_iot_job_local.state import State

    tmp = tmp_path_factory.mktemp("status")
    app = cdk.App(outdir=str(tmp / "cdk.out"))
    stack = cdk.Stack(app, LOCAL_STACK)
    group = iot.CfnThingGroup(stack, "Fleet", thing_group_name="status-fleet")
    IotJob(stack, "Rollout", targets=[group.attr_arn], document={"operation": "status"})
    app.synth()
    [template] = [s for s in from_assembly(tmp / "cdk.out") if s.name == LOCAL_STACK]
    state = State.load(tmp / "state.json")
    empty_moto()
    with LocalAws() as aws:
        result = LocalCloudFormation(aws, state).deploy(template)
        assert result.ok, result
        state.moto = aws.snapshot()
    state.save()
    return state.path


def local_state(deployed: Path, folder: Path, **changes: Any) -> Path:
    """A copy of the deployed state; ``changes`` are merged into the job resource's stored fields."""
    data = json.loads(deployed.read_text())
    resources = data["stacks"][LOCAL_STACK]["resources"]
    [job] = [item for item in resources.values() if item["type"] == "Custom::IotJob"]
    for name, value in changes.items():
        job[name].update(value)
    path = folder / "state.json"
    path.write_text(json.dumps(data))
    return path


def empty_moto() -> None:
    """Forget what moto holds: its backends live in this process, a command's own process starts empty."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


def local_status(*args: str, capsys: pytest.CaptureFixture[str]) -> Run:
    from cdk_iot_job_local import cli

    empty_moto()
    code = cli.main(["status", *args])
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err, [])


def test_local_status_shows_the_deployed_job(deployed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = local_status(LOCAL_STACK, "--json", "--state", str(deployed), capsys=capsys)

    assert run.code == 0, run
    [stack] = run.json()["stacks"]
    [job] = stack["jobs"]
    assert stack["stack"] == LOCAL_STACK and job["logicalId"].startswith("Rollout"), stack
    assert job["jobArn"] == JOB_ARN_PREFIX + job["jobId"] and job["status"] == "IN_PROGRESS", job
    assert job["gate"] is None


def test_local_status_prints_the_table_of_every_deployed_stack(
    deployed: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")

    run = local_status("--state", str(deployed), capsys=capsys)

    assert run.code == 0, run
    assert f"Stack {LOCAL_STACK}: 1 job(s) at " in run.out
    assert re.search(r"^Rollout\w*\s+\S+\s+IN_PROGRESS\s+\S+\s+no gate$", run.out, re.MULTILINE), run.out


@pytest.mark.parametrize(
    ("targeted", "verdict", "code"), [("5", "PASS", 0), ("0", "FAIL", 1)], ids=["pass", "no-things-fails"]
)
def test_local_status_judges_the_stored_gate_out_of_the_stored_targeted_things(
    deployed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], targeted: str, verdict: str, code: int
) -> None:
    # GIVEN the stored properties and attributes of a gated job (as the engine stores them: strings)
    state = local_state(
        deployed,
        tmp_path,
        properties={"RolloutGate": {"MinSucceededPercent": "0"}},
        attributes={"TargetedThings": targeted},
    )

    run = local_status(LOCAL_STACK, "--json", "--state", str(state), capsys=capsys)

    assert run.code == code, run
    [job] = run.json()["stacks"][0]["jobs"]
    assert job["targeted"] == int(targeted) and job["gate"]["verdict"] == verdict, job


def test_local_status_of_an_unknown_stack_exits_2(deployed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = local_status("Nope", "--state", str(deployed), capsys=capsys)

    assert run.code == 2 and run.out == "", run
    assert run.err == f"error: no deployed stack named Nope (have: {LOCAL_STACK})\n"


def test_stacks_are_named_with_stack_for_the_other_verbs(capsys: pytest.CaptureFixture[str]) -> None:
    from cdk_iot_job_local import cli

    with pytest.raises(SystemExit) as exited:
        cli.main(["plan", LOCAL_STACK])

    assert exited.value.code == 2
    assert "stacks are named with --stack, except for status" in capsys.readouterr().err
