"""``cdk-iot-job-local`` as a user runs it: separate processes, one state file.

The main sequence shares one ``--state`` file, so every step also proves that
the state (stacks, exports and moto's IoT data) survives between processes:

1. ``deploy`` of the default app (``cdk.json`` -> ``app.py``: the demo stack
   and ``IotJobProviderStack``);
2. ``plan`` of a copy of ``app.py`` with the job description edited
   (``update in place``), then its ``deploy``;
3. ``plan`` of a copy with the thing group renamed (``replace``);
4. ``deploy --template examples/cloudformation/iot-job.yaml``, which imports
   the provider stack's ``cdk-iot-job-ServiceToken``;
5. ``destroy`` of the provider stack while that export is in use (fails);
6. ``destroy --template`` and ``destroy`` of the app: no job left.

Independent cases (``--json`` on a fresh state, the usage errors, a deploy
that fails and rolls back) start in the background when the module starts, so
they overlap with the main sequence.

The edited apps are copies of ``app.py`` written to a temporary folder; the
commands run from the repository root so that ``cdk.json``'s context applies.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from job_arns import JOB_ARN_PREFIX, job_id_in

from cdk_iot_job_local import cli as cli_module
from cdk_iot_job_local.cli import main
from cdk_iot_job_local.fleet import DEFAULT_FLEET, Answer
from cdk_iot_job_local.state import State

REPO = Path(__file__).resolve().parents[2]
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON if VENV_PYTHON.exists() else Path(sys.executable))
TEMPLATE = "examples/cloudformation/iot-job.yaml"
EXPORT = "cdk-iot-job-ServiceToken"
DEMO = "CdkIotJobDemo"
FILE_DOCUMENT = "CdkIotJobFirmwareFile"
PROVIDER = "IotJobProviderStack"
TEMPLATE_STACK = "iot-job"  # from_template names the stack after the file
TIMEOUT = 180

DESCRIPTION = 'description="Sensor firmware 2.4.1"'
EDITED_DESCRIPTION = 'description="Sensor firmware 2.4.1, hotfix wave"'
GROUP_NAME = 'thing_group_name="demo-sensors"'
FAILING_JOB = """        reboot.node.add_dependency(sensor)

        # Passes synth (a token); at deploy the parameter's default 0 is rejected.
        rate = cdk.CfnParameter(self, "ThrottleRate", type="Number", default=0)
        IotJob(
            self,
            "Throttled",
            targets=[fleet.attr_arn],
            document={"operation": "inventory"},
            job_executions_rollout_config=JobExecutionsRolloutConfig(maximum_per_minute=rate.value_as_number),
            # A safe rollout otherwise, so the app's IotJobChecks pass at synth.
            abort_config=AbortConfig(
                criteria_list=[
                    AbortCriteria(
                        failure_type=JobExecutionFailureType.FAILED,
                        threshold_percentage=10,
                        min_number_of_executed_things=20,
                    )
                ]
            ),
            timeout_config=TimeoutConfig(in_progress_timeout_in_minutes=30),
        )
"""


@dataclass(frozen=True)
class Run:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __str__(self) -> str:
        return f"$ {' '.join(self.args)}\nexit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def _env() -> dict[str, str]:
    # Wide enough that no table row wraps, so each resource is one line to grep; rich honours
    # COLUMNS as a terminal's width (tests/local/test_local_output.py checks the narrow widths).
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "COLUMNS": "300"}
    env.pop("AWS_ENDPOINT_URL", None)
    env.pop("AWS_PROFILE", None)
    return env


def _command(*args: str) -> list[str]:
    return [PYTHON, "-m", "cdk_iot_job_local", *args]


def start(*args: str) -> subprocess.Popen[str]:
    """Start the command line in the background, from the repository root."""
    return subprocess.Popen(
        _command(*args), cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen[str]) -> Run:
    stdout, stderr = process.communicate(timeout=TIMEOUT)
    return Run([str(a) for a in process.args], process.returncode, stdout, stderr)  # type: ignore[union-attr]


def cli(*args: str) -> Run:
    return finish(start(*args))


def app_copy(folder: Path, name: str, old: str, new: str) -> str:
    """A copy of ``app.py`` with ``old`` replaced, as an ``--app`` command."""
    source = (REPO / "app.py").read_text()
    assert source.count(old) == 1, f"app.py no longer contains {old!r}"
    path = folder / name
    path.write_text(source.replace(old, new))
    # app.py reads its job document file next to itself.
    if not (folder / "examples").exists():
        (folder / "examples").symlink_to(REPO / "examples")
    return f"python3 {path}"


ISO_MS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def load_state(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def moto_iot(saved: dict[str, Any]) -> dict[str, Any]:
    """The IoT data (things, groups, jobs) of a saved state's moto snapshot: the default account and region."""
    iot: dict[str, Any] = saved["moto"]["accounts"]["123456789012"]["iot"]["us-east-1"]
    return iot


def moto_jobs(path: Path) -> dict[str, dict[str, Any]]:
    """The IoT jobs of the state file's moto snapshot, by id."""
    return {job["jobId"]: job for job in moto_iot(load_state(path))["jobs"]}


def row(stdout: str, name: str) -> str:
    """The one plan table row of resource ``name`` (a logical id prefix)."""
    rows = [line for line in stdout.splitlines() if line.startswith(name)]
    assert len(rows) == 1, f"{name}: {rows}\n{stdout}"
    return rows[0]


def job_card(stdout: str, logical_id: str) -> dict[str, str]:
    """A job of the deploy's result: its heading (``action  status``) and its labelled lines."""
    lines = [line.rstrip() for line in stdout.splitlines()]
    [start] = [i for i, line in enumerate(lines) if line.startswith(f"  {logical_id}  ")]
    card = {"heading": lines[start].strip().removeprefix(logical_id).strip()}
    label = "heading"
    for line in lines[start + 1 :]:
        if not line.startswith("    "):
            break
        parts = re.split(r"\s{2,}", line.strip(), maxsplit=1)
        if len(parts) == 1:  # another value of the label above (a job's second target, say)
            card[label] += "\n" + parts[0]
            continue
        label, value = parts
        card[label] = value
    return card


def event_line(stdout: str, status: str, resource_type: str, logical_id: str) -> int:
    """Where the live event line of a resource is: ``HH:MM:SS  STATUS  TYPE  LOGICAL_ID``."""
    pattern = rf"^\d\d:\d\d:\d\d\s+{re.escape(status)}\s+{re.escape(resource_type)}\s+{logical_id}\s*$"
    found = re.search(pattern, stdout, re.MULTILINE)
    assert found, f"no event line {status} {resource_type} {logical_id}\n{stdout}"
    return found.start()


def job_logical_id(state: dict[str, Any], stack: str, prefix: str) -> str:
    [name] = [
        name
        for name, resource in state["stacks"][stack]["resources"].items()
        if resource["type"] == "Custom::IotJob" and name.startswith(prefix)
    ]
    return name


@dataclass
class Background:
    """Cases that do not depend on the main sequence, started at once."""

    json_deploy: subprocess.Popen[str]
    json_state: Path
    failing_deploy: subprocess.Popen[str]
    failing_state: Path
    missing_template: subprocess.Popen[str]
    unknown_stack: subprocess.Popen[str]
    results: dict[str, Run]

    def result(self, name: str) -> Run:
        if name not in self.results:
            self.results[name] = finish(getattr(self, name))
        return self.results[name]


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("local-cli")


@pytest.fixture(scope="module")
def background(tmp: Path) -> Iterator[Background]:
    json_state = tmp / "json" / "state.json"
    failing_state = tmp / "failing" / "state.json"
    failing_app = app_copy(tmp, "app_failing.py", "        reboot.node.add_dependency(sensor)\n", FAILING_JOB)
    # The cheap ones first; the two deploys overlap with the main sequence.
    cases = Background(
        missing_template=start("deploy", "--template", str(tmp / "nope.yaml"), "--state", str(tmp / "missing.json")),
        unknown_stack=start("plan", "--stack", "Nope", "--state", str(tmp / "unknown.json")),
        json_deploy=start("deploy", "--json", "--state", str(json_state)),
        json_state=json_state,
        failing_deploy=start("deploy", "--app", failing_app, "--stack", DEMO, "--state", str(failing_state)),
        failing_state=failing_state,
        results={},
    )
    yield cases
    for process in (cases.json_deploy, cases.failing_deploy, cases.missing_template, cases.unknown_stack):
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.fixture(scope="module")
def state(tmp: Path, background: Background) -> Path:
    """The main sequence's state file (the background cases are already running)."""
    return tmp / "main" / "state.json"


# --------------------------------------------------------------------------
# the main sequence
# --------------------------------------------------------------------------
def test_1_deploy_of_the_default_app_creates_the_jobs(state: Path) -> None:
    # WHEN the app of cdk.json is deployed on a fresh state
    run = cli("deploy", "--state", str(state))

    # THEN both stacks are created and the table shows both jobs
    assert run.returncode == 0, run
    assert f"Stack {DEMO}: CREATE_COMPLETE" in run.stdout, run
    assert f"Stack {PROVIDER}: CREATE_COMPLETE" in run.stdout, run
    saved = load_state(state)
    # The default fleet answers every execution with a success within 10 virtual seconds (a sixth of
    # a second at the default time scale): the snapshot canary is done, a continuous job never is.
    jobs_by_status = (
        ("FirmwareRollout", "IN_PROGRESS"),
        ("CanaryReboot", "COMPLETED"),
        ("CanaryFirmware", "COMPLETED"),
    )
    for prefix, iot_status in jobs_by_status:
        logical_id = job_logical_id(saved, DEMO, prefix)
        job_id = job_id_in(saved["stacks"][DEMO]["resources"][logical_id]["physical_id"])
        card = job_card(run.stdout, logical_id)
        assert card["heading"] == "create  CREATE_COMPLETE", card
        assert card["JobId"] == job_id and card["ARN"] == JOB_ARN_PREFIX + job_id, card
        assert card["IoT status"] == iot_status, card
        # progress lines came first, under the stack's heading, as each resource completed
        event = event_line(run.stdout, "CREATE_COMPLETE", "Custom::IotJob", logical_id)
        assert run.stdout.index(f"{DEMO}: deploying") < event < run.stdout.index(f"Stack {DEMO}: CREATE_COMPLETE")
    # ... and the jobs are in moto, saved in the state for the next run
    jobs = moto_jobs(state)
    rollout = job_id_in(
        saved["stacks"][DEMO]["resources"][job_logical_id(saved, DEMO, "FirmwareRollout")]["physical_id"]
    )
    assert jobs[rollout]["status"] == "IN_PROGRESS"
    assert jobs[rollout]["description"] == "Sensor firmware 2.4.1"
    assert jobs[rollout]["targets"] == ["arn:aws:iot:us-east-1:123456789012:thinggroup/demo-sensors"]
    assert json.loads(jobs[rollout]["document"])["version"] == "2.4.1"
    # app.py's third stack holds the document-file job
    file_job = saved["stacks"][FILE_DOCUMENT]["resources"][job_logical_id(saved, FILE_DOCUMENT, "GatewayFirmware")]
    assert sorted(jobs) == sorted(
        [
            *(
                job_id_in(saved["stacks"][DEMO]["resources"][job_logical_id(saved, DEMO, p)]["physical_id"])
                for p in ("FirmwareRollout", "CanaryReboot", "CanaryFirmware")
            ),
            job_id_in(file_job["physical_id"]),
        ]
    )
    assert saved["stacks"][PROVIDER]["exports"][EXPORT].startswith("arn:aws:lambda:us-east-1:123456789012:function:")
    # the gated canary passed: its card shows the verdict, its outputs the final counts
    canary = job_logical_id(saved, DEMO, "CanaryFirmware")
    assert job_card(run.stdout, canary)["Rollout gate"].startswith("PASS"), job_card(run.stdout, canary)
    outputs = saved["stacks"][DEMO]["outputs"]
    assert (outputs["CanaryFirmwareVerdict"], outputs["CanaryFirmwareSucceeded"]) == ("PASS", "3")


def test_2_description_edit_is_planned_and_deployed_in_place(tmp: Path, state: Path) -> None:
    before = load_state(state)
    rollout = job_logical_id(before, DEMO, "FirmwareRollout")
    reboot = job_logical_id(before, DEMO, "CanaryReboot")
    job_id = job_id_in(before["stacks"][DEMO]["resources"][rollout]["physical_id"])
    edited = app_copy(tmp, "app_description.py", DESCRIPTION, EDITED_DESCRIPTION)

    # WHEN a second process plans the edited app
    run = cli("plan", "--app", edited, "--state", str(state))

    # THEN it reads the state and sees an in-place update of the rollout only
    assert run.returncode == 0, run
    line = row(run.stdout, rollout)
    assert "update in place" in line and "Description" in line and job_id in line, line
    assert "no change" in row(run.stdout, reboot)
    assert load_state(state) == before, "plan changes nothing"

    # WHEN it is deployed
    run = cli("deploy", "--app", edited, "--state", str(state))

    # THEN the job is updated in place: same JobId, new description
    assert run.returncode == 0, run
    assert f"Stack {DEMO}: UPDATE_COMPLETE" in run.stdout, run
    card = job_card(run.stdout, rollout)
    assert card["heading"] == "update  UPDATE_COMPLETE" and card["JobId"] == job_id, card
    after = load_state(state)
    assert after["stacks"][DEMO]["resources"][rollout]["physical_id"] == JOB_ARN_PREFIX + job_id
    jobs = moto_jobs(state)
    assert jobs[job_id]["description"] == "Sensor firmware 2.4.1, hotfix wave"
    assert jobs[job_id]["status"] == "IN_PROGRESS"
    assert len(jobs) == 4  # app.py's four jobs, no new one


def test_3_target_edit_is_planned_as_a_replacement(tmp: Path, state: Path) -> None:
    before = load_state(state)
    rollout = job_logical_id(before, DEMO, "FirmwareRollout")
    renamed = app_copy(tmp, "app_targets.py", GROUP_NAME, 'thing_group_name="demo-sensors-eu"')

    # WHEN a third process plans the app with the thing group renamed
    run = cli("plan", "--app", renamed, "--state", str(state))

    # THEN the rollout (and the group) would be replaced
    assert run.returncode == 0, run
    line = row(run.stdout, rollout)
    assert re.search(r"\breplace\b", line) and "Targets" in line, line
    assert "replace" in row(run.stdout, "Fleet ") and "ThingGroupName" in row(run.stdout, "Fleet "), run.stdout
    assert load_state(state) == before, "plan changes nothing"


def test_4_plain_cloudformation_template_deploys_after_the_provider_stack(state: Path) -> None:
    # GIVEN the provider stack exporting the service token is deployed (step 1)
    # WHEN the plain CloudFormation example is deployed
    run = cli("deploy", "--template", TEMPLATE, "--state", str(state))

    # THEN its job is created through the imported provider
    assert run.returncode == 0, run
    assert f"Stack {TEMPLATE_STACK}: CREATE_COMPLETE" in run.stdout, run
    saved = load_state(state)
    resources = saved["stacks"][TEMPLATE_STACK]["resources"]
    job_id = job_id_in(resources["Job"]["physical_id"])
    card = job_card(run.stdout, "Job")
    assert card["heading"] == "create  CREATE_COMPLETE" and card["ARN"] == JOB_ARN_PREFIX + job_id, card
    assert saved["stacks"][TEMPLATE_STACK]["imports"] == [EXPORT]
    outputs = saved["stacks"][TEMPLATE_STACK]["outputs"]
    assert outputs == {
        "JobRef": JOB_ARN_PREFIX + job_id,
        "JobArn": JOB_ARN_PREFIX + job_id,
        "JobId": job_id,
        "CreatedAt": resources["Job"]["attributes"]["CreatedAt"],
    }
    assert re.fullmatch(ISO_MS, outputs["CreatedAt"]), outputs
    # ... printed after the table, as name = value
    printed = run.stdout[run.stdout.index("Outputs:\n") :].splitlines()[1:5]
    assert sorted(line.split() for line in printed) == sorted([name, "=", value] for name, value in outputs.items()), (
        run
    )
    job = moto_jobs(state)[job_id]
    assert job["status"] == "IN_PROGRESS"
    assert job["targets"] == ["arn:aws:iot:us-east-1:123456789012:thinggroup/cfn-example-sensors"]
    assert json.loads(job["document"]) == {"operation": "firmware-update", "version": "1.0.0"}
    assert job["description"] == "Firmware 1.0.0 for the example sensors"
    assert job["targetSelection"] == "CONTINUOUS"
    assert {"Key": "example", "Value": "cloudformation"} in job["tags"]


def test_5_provider_stack_cannot_be_destroyed_while_its_export_is_imported(state: Path) -> None:
    before = load_state(state)

    # WHEN the provider stack is destroyed while the template stack imports its export
    run = cli("destroy", "--stack", PROVIDER, "--state", str(state))

    # THEN it fails, saying why, and nothing is deleted
    assert run.returncode != 0, run
    assert "DELETE_FAILED" in run.stdout, run
    assert EXPORT in run.output and TEMPLATE_STACK in run.output, run
    after = load_state(state)
    assert after["stacks"][PROVIDER]["resources"] == before["stacks"][PROVIDER]["resources"]
    assert moto_jobs(state).keys() == {job["jobId"] for job in moto_iot(before)["jobs"]}


def test_6_destroy_leaves_no_job_behind(state: Path) -> None:
    template_job = job_id_in(load_state(state)["stacks"][TEMPLATE_STACK]["resources"]["Job"]["physical_id"])

    # WHEN the template stack is destroyed
    run = cli("destroy", "--template", TEMPLATE, "--state", str(state))

    # THEN its job is gone, the app's are not
    assert run.returncode == 0, run
    assert f"Stack {TEMPLATE_STACK}: DELETE_COMPLETE" in run.stdout, run
    jobs = moto_jobs(state)
    assert template_job not in jobs and len(jobs) == 4
    assert TEMPLATE_STACK not in load_state(state)["stacks"]

    # WHEN the app is destroyed (the provider stack's export is free now)
    run = cli("destroy", "--state", str(state))

    # THEN both stacks are deleted and no job, thing or group is left
    assert run.returncode == 0, run
    assert f"Stack {DEMO}: DELETE_COMPLETE" in run.stdout, run
    assert f"Stack {PROVIDER}: DELETE_COMPLETE" in run.stdout, run
    saved = load_state(state)
    assert saved["stacks"] == {}
    assert moto_iot(saved) == {"things": [], "thing_groups": [], "jobs": []}


# --------------------------------------------------------------------------
# the background cases
# --------------------------------------------------------------------------
def test_deploy_json_reports_every_stack(background: Background) -> None:
    run = background.result("json_deploy")
    assert run.returncode == 0, run
    report = json.loads(run.stdout)
    statuses = {stack["stack"]: stack["status"] for stack in report["stacks"]}
    assert statuses == {DEMO: "CREATE_COMPLETE", FILE_DOCUMENT: "CREATE_COMPLETE", PROVIDER: "CREATE_COMPLETE"}
    [demo] = [stack for stack in report["stacks"] if stack["stack"] == DEMO]
    assert demo["ok"] is True
    jobs = {name: res for name, res in demo["resources"].items() if res["type"] == "Custom::IotJob"}
    assert len(jobs) == 3
    for resource in jobs.values():
        job_id = job_id_in(resource["physical_id"])
        assert resource["attributes"]["Arn"] == resource["physical_id"]
        assert resource["attributes"]["JobId"] == job_id
    # ... the stack's Outputs (Ref and GetAtt Arn of app.py's jobs are their ARNs) and each job as IoT holds it
    rollout = next(name for name in jobs if name.startswith("FirmwareRollout"))
    assert demo["outputs"]["FirmwareRolloutJobArn"] == jobs[rollout]["physical_id"]
    described = demo["jobs"][rollout]
    assert (
        described["jobId"] == job_id_in(jobs[rollout]["physical_id"])
        and described["jobArn"] == jobs[rollout]["physical_id"]
    )
    assert described["status"] == "IN_PROGRESS" and described["createdAt"]
    # the events of a --json run are in the document, not printed as progress lines
    assert [e["status"] for e in demo["events"] if e["resource_type"] == "Custom::IotJob"] == ["CREATE_COMPLETE"] * 3
    all_jobs = {
        job_id_in(res["physical_id"])
        for stack in report["stacks"]
        for res in stack["resources"].values()
        if res["type"] == "Custom::IotJob"
    }
    assert set(moto_jobs(background.json_state)) == all_jobs and len(all_jobs) == 4


def test_failing_deploy_rolls_back_and_exits_1(background: Background) -> None:
    # GIVEN app.py plus a job whose MaximumPerMinute is a parameter defaulting to 0
    # WHEN it is deployed on a fresh state
    run = background.result("failing_deploy")

    # THEN the deploy fails, is rolled back, and says which property is wrong
    assert run.returncode == 1, run
    assert f"Stack {DEMO}: ROLLBACK_COMPLETE" in run.stdout, run
    assert re.search(r"^\s+Throttled\w*\s+CREATE_FAILED\s+.*MaximumPerMinute", run.stdout, re.MULTILINE), run
    assert "CREATE_FAILED" in run.stdout
    # ... and the rollback deleted what the failed attempt created
    saved = load_state(background.failing_state)
    assert saved["stacks"][DEMO]["status"] == "ROLLBACK_COMPLETE"
    assert saved["stacks"][DEMO]["resources"] == {}
    assert moto_iot(saved)["jobs"] == []


def test_missing_template_is_a_usage_error(background: Background, tmp: Path) -> None:
    run = background.result("missing_template")
    assert run.returncode == 2, run
    assert "error:" in run.stderr and str(tmp / "nope.yaml") in run.stderr, run
    assert "Traceback" not in run.stderr, run
    assert not (tmp / "missing.json").exists()


def test_unknown_stack_names_the_available_ones(background: Background, tmp: Path) -> None:
    run = background.result("unknown_stack")
    assert run.returncode == 2, run
    assert "Nope" in run.stderr and DEMO in run.stderr and PROVIDER in run.stderr, run
    assert "Traceback" not in run.stderr, run
    assert not (tmp / "unknown.json").exists()


# --------------------------------------------------------------------------
# the README's plain CloudFormation steps, on a fresh state
# --------------------------------------------------------------------------
def test_readme_steps_deploy_the_example_and_print_its_outputs(tmp: Path) -> None:
    state = tmp / "readme" / "state.json"

    # GIVEN the provider stack alone, deployed as the README shows
    run = cli("deploy", "--stack", PROVIDER, "--state", str(state))
    assert run.returncode == 0, run
    assert set(load_state(state)["stacks"]) == {PROVIDER}

    # WHEN the example template is deployed, as Custom::IotJob, with --json
    run = cli("deploy", "--template", TEMPLATE, "--json", "--state", str(state))

    # THEN its Outputs hold the job's ARN (Ref and GetAtt Arn), its JobId and an ISO 8601 UTC CreatedAt
    assert run.returncode == 0, run
    [stack] = json.loads(run.stdout)["stacks"]
    assert stack["status"] == "CREATE_COMPLETE" and stack["resources"]["Job"]["type"] == "Custom::IotJob"
    physical_id = stack["resources"]["Job"]["physical_id"]
    job_id = job_id_in(physical_id)
    outputs = stack["outputs"]
    assert outputs["JobRef"] == outputs["JobArn"] == physical_id == JOB_ARN_PREFIX + job_id
    assert outputs["JobId"] == job_id
    assert re.fullmatch(ISO_MS, outputs["CreatedAt"]), outputs
    # ... the same instant IoT reports for the job
    assert stack["jobs"]["Job"]["createdAt"].startswith(outputs["CreatedAt"][:19]), stack["jobs"]
    assert moto_jobs(state)[job_id]["status"] == "IN_PROGRESS"

    # ... and a second run plans nothing for it: the restored job keeps its createdAt
    run = cli("plan", "--template", TEMPLATE, "--json", "--state", str(state))
    assert run.returncode == 0, run
    [job] = [c for c in json.loads(run.stdout)["plan"][TEMPLATE_STACK] if c["logical_id"] == "Job"]
    assert (job["action"], job["job_id"], job["physical_id"]) == ("no change", job_id, physical_id)
    assert moto_jobs(state)[job_id]["createdAt"].startswith(outputs["CreatedAt"][:19])


# --------------------------------------------------------------------------
# help, exit codes, --stack-name and the missing extra (in process where they can be)
# --------------------------------------------------------------------------
EXAMPLE = (REPO / TEMPLATE).read_text()
FAILING_EXAMPLE = EXAMPLE.replace("MaximumPerMinute: 20", "MaximumPerMinute: 0")


def example(folder: Path, text: str = EXAMPLE, name: str = "fleet.yaml") -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


def test_help_describes_the_verbs_the_options_and_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])

    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: cdk-iot-job-local ")
    verbs = text[text.index("verbs:") :]
    assert re.search(r"^  plan\s+show what the next deploy does.*changes nothing$", verbs, re.MULTILINE | re.DOTALL)
    assert re.search(r"^  deploy\s+create or update the stacks", verbs, re.MULTILINE)
    assert re.search(r"^  destroy\s+delete the stacks", verbs, re.MULTILINE)
    for option in ("--app CMD", "--assembly DIR", "--template FILE", "--stack NAME", "--stack-name NAME"):
        assert re.search(rf"^  {option}\s+\S", text, re.MULTILINE), option
    for option in ("--state FILE", "--skip-unsupported", "--json"):
        assert re.search(rf"^  {option}\s+\S", text, re.MULTILINE), option
    assert "record custom resources the local engine cannot run as skipped" in " ".join(text.split())
    codes = text[text.index("exit codes:") :]
    assert re.findall(r"^  (\d)  ", codes, re.MULTILINE) == ["0", "1", "2"]
    assert "a change will fail" in codes and "bad arguments" in codes


@pytest.mark.parametrize(
    "argv",
    [["apply"], ["plan", "--nope"], ["plan", "--stack-name", "x"], ["plan", "--app", "a", "--template", "t.yaml"]],
    ids=["unknown-verb", "unknown-option", "stack-name-without-template", "two-sources"],
)
def test_bad_arguments_exit_2_with_the_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)

    assert exited.value.code == 2
    assert capsys.readouterr().err.startswith("usage: cdk-iot-job-local")


def test_plan_of_a_missing_template_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--template", str(tmp_path / "nope.yaml"), "--state", str(tmp_path / "s.json")]) == 2

    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and "nope.yaml" in captured.err and captured.out == ""


def test_plan_exits_0_when_every_change_can_be_deployed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")

    assert main(["plan", "--template", example(tmp_path), "--state", str(tmp_path / "s.json")]) == 0

    out = capsys.readouterr().out
    assert "Stack fleet: what the next deploy does" in out
    assert re.search(r"^Job\s+Custom::IotJob\s+create\s", out, re.MULTILINE), out
    assert "would fail" not in out
    assert not (tmp_path / "s.json").exists(), "plan changes nothing"


def test_plan_exits_1_when_a_change_will_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")

    assert main(["plan", "--template", example(tmp_path, FAILING_EXAMPLE), "--state", str(tmp_path / "s.json")]) == 1

    out = capsys.readouterr().out
    assert "will fail: " in row(out, "Job ") and "MaximumPerMinute" in row(out, "Job "), out
    assert out.rstrip().endswith("The deploy would fail at: Job")


def test_plan_json_says_whether_the_deploy_would_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template = example(tmp_path, FAILING_EXAMPLE)

    assert main(["plan", "--json", "--template", template, "--state", str(tmp_path / "s.json")]) == 1

    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    [job] = [change for change in report["plan"]["fleet"] if change["logical_id"] == "Job"]
    assert job["fails"] is True and job["detail"].startswith("will fail: ")


def test_stack_name_names_the_stack_of_a_template(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "plan",
        "--json",
        "--template",
        example(tmp_path),
        "--stack-name",
        "fleet-eu",
        "--state",
        str(tmp_path / "s"),
    ]

    assert main(argv) == 0

    report = json.loads(capsys.readouterr().out)
    assert list(report["plan"]) == ["fleet-eu"] and report["ok"] is True


# Refuses the named module as if it were not installed, then runs `python -m cdk_iot_job_local plan`.
WITHOUT = """
import importlib.abc, runpy, sys

class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == {module!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Missing())
sys.argv = ["cdk-iot-job-local", "plan"]
runpy.run_module("cdk_iot_job_local", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize(
    "module",
    ["moto", "rich", "yaml", "werkzeug"],
    ids=["extra-moto", "extra-rich", "extra-pyyaml", "dependency-of-moto"],
)
def test_without_the_local_extra_one_line_says_how_to_install_it(module: str) -> None:
    run = subprocess.run(
        [PYTHON, "-c", WITHOUT.format(module=module)],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert run.returncode == 2, run
    assert run.stdout == "" and "Traceback" not in run.stderr, run
    [line] = run.stderr.splitlines()
    assert f"missing: {module}" in line, line
    assert "pip install 'cdk-iot-job[local]'" in line and "pip install '.[local]'" in line, line


UNSUPPORTED = """\
Resources:
  Sensor:
    Type: AWS::IoT::Thing
    Properties:
      ThingName: unsupported-sensor
  Notify:
    Type: Custom::Notify
    Properties:
      ServiceToken: !GetAtt Sensor.Arn
"""


def test_plan_flags_a_custom_resource_the_engine_cannot_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")

    assert main(["plan", "--template", example(tmp_path, UNSUPPORTED), "--state", str(tmp_path / "s.json")]) == 1

    assert re.search(r"^Notify\s+Custom::Notify\s+not supported locally\s", capsys.readouterr().out, re.MULTILINE)


def test_deploy_refuses_a_custom_resource_the_engine_cannot_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "s.json"

    assert main(["deploy", "--template", example(tmp_path, UNSUPPORTED), "--state", str(state)]) == 2

    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert line.startswith("error: ") and "Notify" in line and "--skip-unsupported" in line, line
    assert "deploying" not in captured.out and not state.exists(), "nothing was deployed or saved"


def test_skip_unsupported_deploys_the_rest_and_records_it_as_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    state = tmp_path / "s.json"
    argv = ["deploy", "--skip-unsupported", "--template", example(tmp_path, UNSUPPORTED), "--state", str(state)]

    assert main(argv) == 0

    out = capsys.readouterr().out
    event_line(out, "CREATE_COMPLETE", "AWS::IoT::Thing", "Sensor")
    event_line(out, "CREATE_SKIPPED", "Custom::Notify", r"Notify\s.*")
    assert "Stack fleet: CREATE_COMPLETE" in out
    assert set(load_state(state)["stacks"]["fleet"]["resources"]) == {"Sensor", "Notify"}


# --------------------------------------------------------------------------
# the simulated fleet and the time scale
# --------------------------------------------------------------------------
def test_help_says_what_the_fleet_and_time_scale_flags_do(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])

    text = capsys.readouterr().out
    for option in ("--fleet SPEC", "--fleet-thing NAME=OUTCOME[@DELAY]", "--time-scale N"):
        assert re.search(rf"^  {re.escape(option)}\s*\S", text, re.MULTILINE), option
    words = " ".join(text.split())
    assert (
        "local only: N virtual seconds per real second; a 10-minute bake takes 10 s at 60; "
        "it has no effect in Lambda (default: 60)"
    ) in words
    assert "succeed=0.97,fail=0.03,delay=2..20s,seed=7" in words


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["deploy", "--time-scale", "0"], "--time-scale"),
        (["deploy", "--time-scale", "fast"], "--time-scale"),
        (["deploy", "--time-scale", "inf"], "--time-scale"),
        (["deploy", "--fleet", "succeed=0.9,fail=0.2"], "--fleet"),
        (["deploy", "--fleet", "win=1"], "--fleet"),
        (["deploy", "--fleet-thing", "Sensor-1"], "--fleet-thing"),
        (["deploy", "--fleet-thing", "Sensor-1=explode"], "--fleet-thing"),
        (["deploy", "--fleet-thing", "Sensor-1=fail@soon"], "--fleet-thing"),
        (["deploy", "--fleet-thing", "S=fail", "--fleet-thing", "S=succeed"], "--fleet-thing"),
        (["destroy", "--fleet", "succeed=1"], "--fleet"),
    ],
    ids=[
        "zero-scale",
        "scale-not-a-number",
        "infinite-scale",
        "fractions-over-1",
        "unknown-fleet-key",
        "thing-without-outcome",
        "unknown-outcome",
        "bad-delay",
        "thing-twice",
        "fleet-on-destroy",
    ],
)
def test_bad_fleet_and_time_scale_values_exit_2_naming_the_flag(
    argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)

    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: cdk-iot-job-local")
    assert flag in err.splitlines()[-1], err


def test_the_fleet_flags_make_the_fleet_the_fake_answers_with() -> None:
    args = cli_module._parser().parse_args(
        ["deploy", "--fleet", "succeed=0.5,fail=0.5,delay=1..2s,seed=7", "--fleet-thing", "Sensor-1=reject@3s"]
    )

    aws = cli_module._local_aws(args, State(path=Path("unused.json")))

    fleet = aws.fake.fleet
    assert fleet is not None
    assert (fleet.fractions, fleet.delay, fleet.seed) == ((0.5, 0.5, 0.0, 0.0), (1.0, 2.0), 7)
    assert fleet.answer("job-1", "Sensor-1") == Answer("reject", 3.0)


def test_without_fleet_flags_every_device_succeeds_as_the_default_fleet_says() -> None:
    arguments = cli_module._parser().parse_args(["deploy", "--fleet-thing", "Sensor-9=silent"])
    aws = cli_module._local_aws(arguments, State(path=Path("unused.json")))

    fleet = aws.fake.fleet
    assert fleet is not None
    assert (fleet.fractions, fleet.delay, fleet.seed) == (DEFAULT_FLEET.fractions, DEFAULT_FLEET.delay, 0)
    assert fleet.answer("job-1", "Sensor-9").outcome == "silent"
    assert fleet.answer("job-1", "Sensor-1").outcome == "succeed"


def test_the_engine_and_its_providers_share_one_clock_at_the_time_scale() -> None:
    default = cli_module._local_aws(cli_module._parser().parse_args(["deploy"]), State(path=Path("unused.json")))
    real = cli_module._local_aws(
        cli_module._parser().parse_args(["deploy", "--time-scale", "1"]), State(path=Path("unused.json"))
    )

    assert default.time_scale is not None and default.time_scale.scale == 60.0
    assert default.fake.clock is default.time_scale
    assert real.time_scale is None, "scale 1 is real time: the providers get no clock variables"
