"""A firmware rollout stack through the local CloudFormation engine, as ``deploy`` plays it.

GIVEN one embedded AWS (:class:`LocalAws`: moto with the strict IoT fake and
the provider in a Lambda-like process) and one :class:`State`, versions of a
``FirmwareFlow`` stack are synthesized in-process and deployed one after the
other. The stack has

* a thing group (``aws_iot.CfnThingGroup``) and a firmware bucket with a fixed
  name (``aws_s3.Bucket``; the engine creates both in moto);
* ``FirmwareUpdate``: its document is a file (``JobDocument.from_file``) whose
  presigned-URL placeholder names the firmware object by the bucket's literal
  name; the file goes up as an asset and the job gets a download role;
* ``Reboot``: the AWS managed ``AWS-Reboot:1.0`` template (which takes no
  parameters), targeting the group by name (``JobTarget.thing_group``);
* ``FetchTool``: the AWS managed ``AWS-Download-File:1.0`` template with its
  ``document_parameters``, targeting the group construct.

1. v1 is deployed; the jobs, the uploaded document, the download role and
   the provider's grants are read back from moto;
2. v2 adds ``Tags.of(stack).add("team", "fw")``: the jobs are tagged in place;
3. v3 changes that tag's value and drops the constructor's tag: tagged and
   untagged in place;
4. the stack is destroyed.

The tests run in file order and share the module's engine; each one is one
transition or one look at what a transition left.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from iot_faults import FaultyIotFake

from cdk_iot_job_local.assembly import from_assembly
from cdk_iot_job_local.engine import IOT_JOB_TYPE, LocalCloudFormation, StackResult
from cdk_iot_job_local.runtime import LocalAws
from cdk_iot_job_local.state import State
from cdk_iot_job_local.template import Stack

ACCOUNT = "123456789012"
REGION = "us-east-1"
STACK = "FirmwareFlow"
GROUP = "flow-gateways"
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "firmware-2.4.1.job.json"
# The object the fixture's placeholder names, literally.
FIRMWARE_BUCKET = "cdk-iot-job-test-firmware"
FIRMWARE_KEY = "fw/2.4.1.bin"
REBOOT_TEMPLATE_ARN = f"arn:aws:iot:{REGION}::jobtemplate/AWS-Reboot:1.0"
DOWNLOAD_TEMPLATE_ARN = f"arn:aws:iot:{REGION}::jobtemplate/AWS-Download-File:1.0"
DOWNLOAD_PARAMETERS = {"downloadUrl": "https://example.com/tools/diag.sh", "filePath": "/opt/diag.sh"}
OWNERSHIP_PREFIX = "cdk-iot-job:"
MUTATING = ("CreateJob", "UpdateJob", "DeleteJob", "CancelJob", "TagResource", "UntagResource")
JOBS = ("FirmwareUpdate", "Reboot", "FetchTool")
# The user tags each version puts on every job.
USER_TAGS = {
    1: {"FirmwareUpdate": {"purpose": "firmware"}, "Reboot": {}, "FetchTool": {}},
    2: {"FirmwareUpdate": {"purpose": "firmware", "team": "fw"}, "Reboot": {"team": "fw"}, "FetchTool": {"team": "fw"}},
    3: {"FirmwareUpdate": {"team": "platform"}, "Reboot": {"team": "platform"}, "FetchTool": {"team": "platform"}},
}


# --------------------------------------------------------------------------
# app versions, synthesized in-process
# --------------------------------------------------------------------------
def firmware_app(version: int, outdir: Path) -> Stack:
    """``FirmwareFlow`` as app version ``version`` (1..3) writes it."""
    import aws_cdk as cdk
    from aws_cdk import aws_iot as iot
    from aws_cdk import aws_s3 as s3

    from cdk_iot_job import IotJob, JobDocument, JobTarget, JobTemplate

    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, STACK)
    gateways = iot.CfnThingGroup(stack, "Gateways", thing_group_name=GROUP)
    s3.Bucket(stack, "Firmware", bucket_name=FIRMWARE_BUCKET, removal_policy=cdk.RemovalPolicy.DESTROY)
    IotJob(
        stack,
        "FirmwareUpdate",
        targets=[gateways],
        description="Gateway firmware 2.4.1",
        document=JobDocument.from_file(FIXTURE),
        tags={"purpose": "firmware"} if version < 3 else None,
    )
    reboot = IotJob(
        stack,
        "Reboot",
        targets=[JobTarget.thing_group(GROUP)],
        job_template=JobTemplate.managed("AWS-Reboot", "1.0"),
    )
    # A target by name brings no dependency: the group must exist first.
    reboot.node.add_dependency(gateways)
    IotJob(
        stack,
        "FetchTool",
        targets=[gateways],
        job_template=JobTemplate.managed("AWS-Download-File", "1.0"),
        document_parameters=DOWNLOAD_PARAMETERS,
    )
    if version == 2:
        cdk.Tags.of(stack).add("team", "fw")
    if version == 3:
        cdk.Tags.of(stack).add("team", "platform")
    app.synth()
    [synthesized] = [s for s in from_assembly(outdir) if s.name == STACK]
    return synthesized


def job_logical_id(stack: Stack, construct_id: str) -> str:
    [logical_id] = [name for name in stack.logical_ids(IOT_JOB_TYPE) if name.startswith(construct_id)]
    return logical_id


def the_document_asset(outdir: Path) -> tuple[bytes, str, str]:
    """The one file asset of the stack (its template aside): content, bucket and key, as deployed."""
    manifest = json.loads((outdir / f"{STACK}.assets.json").read_text())
    files = [
        entry
        for entry in manifest["files"].values()
        if entry["source"].get("packaging", "file") == "file" and entry["source"]["path"] != f"{STACK}.template.json"
    ]
    assert len(files) == 1, files
    [destination] = files[0]["destinations"].values()

    def concrete(text: str) -> str:
        return text.replace("${AWS::AccountId}", ACCOUNT).replace("${AWS::Region}", REGION)

    body = (outdir / files[0]["source"]["path"]).read_bytes()
    return body, concrete(destination["bucketName"]), concrete(destination["objectKey"])


# --------------------------------------------------------------------------
# the shared engine
# --------------------------------------------------------------------------
@dataclass
class World:
    aws: LocalAws
    state: State
    engine: LocalCloudFormation
    tmp: Path
    # What earlier transitions left behind, for later ones.
    seen: dict[str, Any] = field(default_factory=dict)

    @property
    def iot(self) -> Any:
        return self.aws.client("iot")

    @property
    def iam(self) -> Any:
        return self.aws.client("iam")

    def synth(self, version: int) -> tuple[Stack, Path]:
        outdir = self.tmp / f"cdk.out-{version}"
        return firmware_app(version, outdir), outdir

    def deploy(self, stack: Stack) -> tuple[StackResult, list[tuple[str, str | None]]]:
        """Deploy; returns the result and the mutating IoT calls it made."""
        mark = len(self.aws.fake.calls)
        result = self.engine.deploy(stack)
        return result, [call for call in self.aws.fake.calls[mark:] if call[0] in MUTATING]

    def need(self, key: str) -> Any:
        assert key in self.seen, f"{key!r} is unknown: the v1 deploy (test_1) did not succeed"
        return self.seen[key]

    def job(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self.iot.describe_job(jobId=job_id)["job"]
        return job

    def tags(self, job_id: str) -> dict[str, str]:
        arn = self.job(job_id)["jobArn"]
        return {tag["Key"]: tag["Value"] for tag in self.iot.list_tags_for_resource(resourceArn=arn)["tags"]}

    def job_ids(self) -> set[str]:
        return {job["jobId"] for job in self.iot.list_jobs()["jobs"]}

    def group_arn(self) -> str:
        return str(self.iot.describe_thing_group(thingGroupName=GROUP)["thingGroupArn"])

    def role_statements(self, role_name: str) -> list[dict[str, Any]]:
        """Every statement of the role's inline policies, as moto holds them."""
        statements: list[dict[str, Any]] = []
        for name in self.iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
            document = self.iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
            if isinstance(document, str):
                document = json.loads(document)
            statements.extend(document["Statement"])
        return statements


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("flow-capabilities")
    # The engine's fake (LocalAws's defaults), with a call log.
    with LocalAws(fake=FaultyIotFake(deletion_polls=1, check_targets=True)) as aws:
        # moto's backends live in this process: start from an empty account.
        request = urllib.request.Request(f"{aws.endpoint_url}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()
        state = State(path=tmp / "state.json")
        yield World(aws=aws, state=state, engine=LocalCloudFormation(aws, state), tmp=tmp)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --------------------------------------------------------------------------
# 1. deploy
# --------------------------------------------------------------------------
def test_1_deploy_creates_the_three_jobs(world: World) -> None:
    # GIVEN v1, never deployed
    stack, outdir = world.synth(1)
    logical = {name: job_logical_id(stack, name) for name in JOBS}

    # WHEN it is deployed
    result, mutations = world.deploy(stack)

    # THEN the stack is created with one CreateJob per job and nothing else
    assert result.status == "CREATE_COMPLETE", [event for event in result.events if "FAILED" in event.status]
    # Each physical id is the job's ARN, as Ref of AWS::IoT::Job.
    arns = {name: result.resources[logical[name]].physical_id for name in JOBS}
    job_ids = {name: arn.split(":job/", 1)[1] for name, arn in arns.items()}
    assert all(arn == f"arn:aws:iot:us-east-1:123456789012:job/{job_ids[name]}" for name, arn in arns.items())
    assert sorted(mutations) == sorted(("CreateJob", job_id) for job_id in job_ids.values())
    assert world.job_ids() == set(job_ids.values())
    for job_id in job_ids.values():
        assert world.job(job_id)["status"] == "IN_PROGRESS"
    world.seen.update(job_ids=job_ids, logical=logical, outdir_v1=outdir, resources_v1=result.resources)


def test_1_the_file_job_reads_its_document_from_the_uploaded_asset(world: World) -> None:
    job_id = world.need("job_ids")["FirmwareUpdate"]
    body, bucket, key = the_document_asset(world.need("outdir_v1"))
    assert body == FIXTURE.read_bytes()

    # The engine uploaded the asset to moto's S3 ...
    stored = world.aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert stored == body
    # ... and the job's DocumentSource is that object's URL, which IoT read.
    described = world.iot.describe_job(jobId=job_id)
    assert described["documentSource"] == f"https://s3.{REGION}.amazonaws.com/{bucket}/{key}"
    assert "document" not in described["job"]
    assert world.iot.get_job_document(jobId=job_id)["document"] == FIXTURE.read_text()


def test_1_the_file_job_presigns_with_the_generated_role_for_an_hour(world: World) -> None:
    job_id = world.need("job_ids")["FirmwareUpdate"]
    config = world.job(job_id)["presignedUrlConfig"]
    assert config["expiresInSec"] == 3600
    role_name = config["roleArn"].rsplit("/", 1)[-1]

    # The role exists in moto's IAM, assumable by IoT only, on behalf of the account
    role = world.iam.get_role(RoleName=role_name)["Role"]
    assert role["Arn"] == config["roleArn"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "iot.amazonaws.com"},
            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
        }
    ]
    # ... and it may read exactly the firmware object the document names
    assert world.iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"] == []
    assert world.role_statements(role_name) == [
        {"Action": "s3:GetObject", "Effect": "Allow", "Resource": f"arn:aws:s3:::{FIRMWARE_BUCKET}/{FIRMWARE_KEY}"}
    ]
    # ... which is in the stack's firmware bucket, made in moto under its fixed name
    world.aws.client("s3").head_bucket(Bucket=FIRMWARE_BUCKET)
    world.seen["presigned_role_arn"] = config["roleArn"]


def test_1_the_provider_may_pass_that_role_and_read_that_document_only(world: World) -> None:
    role_arn = world.need("presigned_role_arn")
    _, bucket, key = the_document_asset(world.need("outdir_v1"))
    [provider_role] = [
        resource.physical_id
        for logical_id, resource in world.need("resources_v1").items()
        if resource.type == "AWS::IAM::Role" and logical_id.startswith("CdkIotJobProviderRole")
    ]
    statements = world.role_statements(provider_role)
    assert [s for s in statements if any(a.startswith("iam:") for a in as_list(s["Action"]))] == [
        {
            "Action": "iam:PassRole",
            "Condition": {"StringEquals": {"iam:PassedToService": "iot.amazonaws.com"}},
            "Effect": "Allow",
            "Resource": role_arn,
        }
    ]
    assert [s for s in statements if any(a.startswith("s3:") for a in as_list(s["Action"]))] == [
        {"Action": "s3:GetObject", "Effect": "Allow", "Resource": f"arn:aws:s3:::{bucket}/{key}"}
    ]


def test_1_the_managed_template_jobs_name_their_templates_and_parameters(world: World) -> None:
    job_ids = world.need("job_ids")
    reboot = world.iot.describe_job(jobId=job_ids["Reboot"])
    assert reboot["job"]["jobTemplateArn"] == REBOOT_TEMPLATE_ARN
    assert "documentParameters" not in reboot["job"] and "documentSource" not in reboot
    fetch = world.job(job_ids["FetchTool"])
    assert fetch["jobTemplateArn"] == DOWNLOAD_TEMPLATE_ARN
    assert fetch["documentParameters"] == DOWNLOAD_PARAMETERS


def test_1_every_job_targets_the_real_thing_group(world: World) -> None:
    job_ids = world.need("job_ids")
    group_arn = world.group_arn()
    assert group_arn == f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/{GROUP}"
    for name, job_id in job_ids.items():
        assert world.job(job_id)["targets"] == [group_arn], name


def test_1_jobs_carry_their_user_tags_and_the_ownership_tags(world: World) -> None:
    ownership: dict[str, dict[str, str]] = {}
    for name, job_id in world.need("job_ids").items():
        tags = world.tags(job_id)
        user = {key: value for key, value in tags.items() if not key.startswith(OWNERSHIP_PREFIX)}
        assert user == USER_TAGS[1][name], name
        ownership[name] = {key: value for key, value in tags.items() if key.startswith(OWNERSHIP_PREFIX)}
        assert len(ownership[name]) == 4, (name, tags)
    world.seen["ownership"] = ownership


# --------------------------------------------------------------------------
# 2. and 3. tag changes: in place (v2 adds one, v3 changes it and drops another)
# --------------------------------------------------------------------------
@pytest.mark.parametrize("version", [2, 3])
def test_2_tag_change_updates_the_jobs_in_place(world: World, version: int) -> None:
    job_ids, logical = world.need("job_ids"), world.need("logical")
    arns = {name: world.job(job_id)["jobArn"] for name, job_id in job_ids.items()}

    # WHEN the version with other tags is deployed
    stack, _ = world.synth(version)
    result, mutations = world.deploy(stack)

    # THEN the stack is updated, every job keeps its id ...
    assert result.status == "UPDATE_COMPLETE", [event for event in result.events if "FAILED" in event.status]
    assert {name: result.resources[logical[name]].physical_id.split(":job/", 1)[1] for name in JOBS} == job_ids
    assert world.job_ids() == set(job_ids.values())
    # ... only TagResource (and UntagResource for a dropped tag) touched them ...
    expected = [("TagResource", arn) for arn in arns.values()]
    if version == 3:
        expected.append(("UntagResource", arns["FirmwareUpdate"]))  # "purpose" is gone
    assert sorted(mutations) == sorted(expected)
    # ... and each holds the new user tags next to its unchanged ownership tags
    for name, job_id in job_ids.items():
        tags = world.tags(job_id)
        user = {key: value for key, value in tags.items() if not key.startswith(OWNERSHIP_PREFIX)}
        assert user == USER_TAGS[version][name], name
        assert {k: v for k, v in tags.items() if k.startswith(OWNERSHIP_PREFIX)} == world.need("ownership")[name]
        assert world.job(job_id)["status"] == "IN_PROGRESS"


# --------------------------------------------------------------------------
# 4. destroy
# --------------------------------------------------------------------------
def test_3_destroy_leaves_no_job_and_no_download_role(world: World) -> None:
    role_name = world.need("presigned_role_arn").rsplit("/", 1)[-1]

    result = world.engine.destroy(STACK)

    assert result.status == "DELETE_COMPLETE"
    assert world.job_ids() == set()
    for job_id in world.need("job_ids").values():
        with pytest.raises(ClientError) as caught:
            world.iot.describe_job(jobId=job_id)
        assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as caught:
        world.iam.get_role(RoleName=role_name)
    assert caught.value.response["Error"]["Code"] == "NoSuchEntity"
    assert STACK not in world.state.stacks
