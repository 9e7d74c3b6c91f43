"""The local engine's checks before it changes anything, and the physical-id contract it reads.

* :func:`cdk_iot_job_local.job_ids.job_id_of`: only a plain job ARN names a
  job (issue 11: the physical id of a ``Custom::IotJob`` is its ARN; a failed
  Create answers ``create-failed:<RequestId>`` or ``<ARN>?request-id=<id>``).
* :func:`cdk_iot_job_local.validate.check_template`: an unsupported
  ``Fn::GetAtt`` attribute or intrinsic, in resource properties or Outputs, is
  refused in one line naming it.
* The command line: such a template makes ``plan`` and ``deploy`` exit 2 with
  that one line on stderr, no traceback, and no state written.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cdk_iot_job_local.job_ids import job_arn, job_id_of
from cdk_iot_job_local.template import Stack, UnsupportedTemplateError
from cdk_iot_job_local.validate import check_template

REPO = Path(__file__).resolve().parents[2]
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON if VENV_PYTHON.exists() else Path(sys.executable))
ARN = "arn:aws:iot:us-east-1:123456789012:job/fw-1"


# ------------------------------------------------------------ physical ids
@pytest.mark.parametrize(
    ("physical_id", "job_id"),
    [
        (ARN, "fw-1"),
        ("arn:aws-cn:iot:cn-north-1:123456789012:job/a_B-9", "a_B-9"),
        ("arn:aws-us-gov:iot:us-gov-west-1:123456789012:job/" + "x" * 64, "x" * 64),
        # what a failed Create answers: no job
        (f"{ARN}?request-id=0f8e", None),
        ("create-failed:0f8e-11", None),
        # a bare JobId (earlier provider versions), other ARNs, junk
        ("fw-1", None),
        ("arn:aws:iot:us-east-1:123456789012:thing/fw-1", None),
        ("arn:aws:iot:us-east-1:123456789012:job/" + "x" * 65, None),
        ("arn:aws:iot:us-east-1:123456789012:job/bad id", None),
        ("arn:aws:iot:us-east-1:12345:job/fw-1", None),
        ("", None),
        (None, None),
    ],
)
def test_only_a_plain_job_arn_names_a_job(physical_id: str | None, job_id: str | None) -> None:
    assert job_id_of(physical_id) == job_id


def test_job_arn_round_trips() -> None:
    arn = job_arn("fw-1", partition="aws", region="us-east-1", account="123456789012")
    assert arn == ARN and job_id_of(arn) == "fw-1"


# ------------------------------------------------------- template checks
def stack(resources: dict[str, Any], outputs: dict[str, Any] | None = None, **extra: Any) -> Stack:
    template: dict[str, Any] = {"Resources": resources, **extra}
    if outputs is not None:
        template["Outputs"] = outputs
    return Stack(name="Checked", outdir=Path("."), template=template)


JOB = {"Type": "Custom::IotJob", "Properties": {"ServiceToken": "arn", "Targets": [{"Fn::GetAtt": ["Group", "Arn"]}]}}
GROUP = {"Type": "AWS::IoT::ThingGroup", "Properties": {"ThingGroupName": "g"}}


def test_supported_intrinsics_and_attributes_pass() -> None:
    check_template(
        stack(
            {"Group": GROUP, "Job": JOB, "Other": {"Type": "Custom::Other", "Properties": {"ServiceToken": "arn"}}},
            {
                "Ref": {"Value": {"Ref": "Job"}},
                "Arn": {"Value": {"Fn::GetAtt": ["Job", "Arn"]}},
                "JobId": {"Value": {"Fn::GetAtt": "Job.JobId"}},
                "CreatedAt": {"Value": {"Fn::Sub": "${Job.CreatedAt} in ${AWS::Region}"}},
                "Split": {"Value": {"Fn::Select": [1, {"Fn::Split": ["/", {"Ref": "Job"}]}]}},
                "GroupId": {"Value": {"Fn::GetAtt": ["Group", "Id"]}, "Export": {"Name": {"Fn::Sub": "${Prefix}-id"}}},
                # another custom type answers whatever its provider sends
                "Anything": {"Value": {"Fn::GetAtt": ["Other", "Whatever"]}},
                "Imported": {"Value": {"Fn::ImportValue": "x"}},
                "Joined": {"Value": {"Fn::Join": ["", [{"Ref": "Prefix"}, {"Ref": "AWS::StackName"}]]}},
            },
            Parameters={"Prefix": {"Type": "String", "Default": "p"}},
        )
    )


@pytest.mark.parametrize(
    ("resources", "outputs", "message"),
    [
        (
            {"Group": GROUP, "Job": JOB},
            {"Old": {"Value": {"Fn::GetAtt": ["Job", "JobArn"]}}},
            "Outputs.Old: Fn::GetAtt Job.JobArn: Custom::IotJob has no attribute JobArn (has: Arn, CanceledThings, "
            "CreatedAt, FailedThings, GateVerdict, InProgressThings, JobId, QueuedThings, RejectedThings, "
            "RemovedThings, SucceededThings, TargetedThings, TimedOutThings)",
        ),
        (
            {"Group": GROUP, "Job": JOB},
            {"Sub": {"Value": {"Fn::Sub": "id ${Job.Status}"}}},
            "Outputs.Sub: Fn::GetAtt Job.Status: Custom::IotJob has no attribute Status",
        ),
        (
            {"Group": GROUP, "Job": JOB},
            {"If": {"Value": {"Fn::If": ["Cond", "a", "b"]}}},
            "Outputs.If: condition 'Cond' is not declared in Conditions",
        ),
        (
            {"Group": GROUP, "Job": {**JOB, "Properties": {**JOB["Properties"], "Description": {"Fn::Base64": "x"}}}},
            None,
            "Resources.Job.Properties: intrinsic Fn::Base64 is not supported by the local engine",
        ),
        (
            {"Group": GROUP, "Job": {**JOB, "Properties": {**JOB["Properties"], "Targets": [{"Fn::GetAtt": "G.Arn"}]}}},
            None,
            "Resources.Job.Properties: Fn::GetAtt G.Arn: no resource G",
        ),
        (
            {"Group": GROUP, "Job": {**JOB, "Properties": {**JOB["Properties"], "Targets": [{"Ref": "Nope"}]}}},
            None,
            "Resources.Job.Properties: Ref Nope names no resource or parameter",
        ),
        (
            {"Group": GROUP},
            {"Notif": {"Value": {"Ref": "AWS::NotificationARNs"}}},
            "Outputs.Notif: pseudo parameter AWS::NotificationARNs is not supported by the local engine",
        ),
        (
            {"Group": {**GROUP, "Properties": {"ThingGroupName": {"Fn::GetAtt": ["Group", "ThingGroupName"]}}}},
            None,
            "Fn::GetAtt Group.ThingGroupName: AWS::IoT::ThingGroup has no attribute ThingGroupName (has: Arn, Id)",
        ),
        ({"Group": GROUP}, {"Empty": {"Description": "no value"}}, "Outputs.Empty has no Value"),
    ],
)
def test_what_the_engine_cannot_honour_is_refused_in_one_line(
    resources: dict[str, Any], outputs: dict[str, Any] | None, message: str
) -> None:
    with pytest.raises(UnsupportedTemplateError) as caught:
        check_template(stack(resources, outputs))
    assert message in str(caught.value) and str(caught.value).startswith("stack Checked: ")
    assert "\n" not in str(caught.value)


# ----------------------------------------------------------- command line
BAD_OUTPUT = """\
Resources:
  Group:
    Type: AWS::IoT::ThingGroup
    Properties:
      ThingGroupName: checked-group
  Job:
    Type: Custom::IotJob
    Properties:
      ServiceToken: !ImportValue cdk-iot-job-ServiceToken
      Targets: [!GetAtt Group.Arn]
      Document: '{"operation":"x"}'
Outputs:
  JobArn:
    Value: !GetAtt Job.JobArn
"""
BAD_PROPERTY = BAD_OUTPUT.replace('Document: \'{"operation":"x"}\'', "Document: !Base64 x").replace(
    "!GetAtt Job.JobArn", "!Ref Job"
)


@pytest.mark.parametrize("command", ["plan", "deploy"])
@pytest.mark.parametrize(
    ("template", "named"),
    [
        (BAD_OUTPUT, "Outputs.JobArn: Fn::GetAtt Job.JobArn: Custom::IotJob has no attribute JobArn"),
        (BAD_PROPERTY, "Resources.Job.Properties: intrinsic Fn::Base64 is not supported"),
    ],
    ids=["output-attribute", "property-intrinsic"],
)
def test_the_command_line_exits_2_with_one_line_naming_it(
    tmp_path: Path, command: str, template: str, named: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(template)
    state = tmp_path / "state.json"
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    env.pop("AWS_ENDPOINT_URL", None)
    run = subprocess.run(
        [PYTHON, "-m", "cdk_iot_job_local", command, "--template", str(path), "--state", str(state)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2, run
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], run.stderr
    assert "Traceback" not in run.stderr and run.stdout == ""
    assert not state.exists(), "nothing was deployed or saved"
