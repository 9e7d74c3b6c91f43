"""IotJob beyond the raw API, as a CDK user writes it and CloudFormation reads it.

Every accepted form of a target, a job template and a package version; job
documents from files, buckets and presigned-URL placeholders with the
least-privilege grants they bring; tags; and schedules. One app of small
stacks is built and synthesized once per module (one stack per case, so each
provider role holds only what that case grants); each test reads one behaviour
off it. Rejections are built in throwaway apps: a construct that raised is
left half-built in its scope.
"""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, CfnElement, CfnParameter, Duration, Stack, Tags
from aws_cdk import aws_iot as iot
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Annotations, Match, Template
from constructs import Construct

from cdk_iot_job import (
    IotJob,
    JobDocument,
    JobEndBehavior,
    JobTarget,
    JobTemplate,
    MaintenanceWindow,
    PresignedUrlConfig,
    SchedulingConfig,
)
from cdk_iot_job.provider import IotJobProvider
from cdk_iot_job_provider import schema

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FIRMWARE_JOB_FILE = FIXTURES / "firmware-2.4.1.job.json"
# The bucket and key the fixture's placeholder names, literally.
FIRMWARE_BUCKET = "cdk-iot-job-test-firmware"
FIRMWARE_KEY = "fw/2.4.1.bin"

CUSTOM_TYPE = "Custom::IotJob"
IOT = "iot.amazonaws.com"
THING_ARN = "arn:aws:iot:eu-west-1:123456789012:thing/sensor-001"
GROUP_ARN = "arn:aws:iot:eu-west-1:123456789012:thinggroup/sensors"
GIVEN_ROLE_ARN = "arn:aws:iam::123456789012:role/firmware-download"
PACKAGE_VERSION_ARN = "arn:aws:iot:eu-west-1:123456789012:package/gateway-fw/version/2.4.1"
CUSTOMER_TEMPLATE_ARN = "arn:aws:iot:eu-west-1:123456789012:jobtemplate/firmware-update"
MANAGED_DOWNLOAD_ARN = "arn:aws:iot:eu-west-1::jobtemplate/AWS-Download-File:1.0"
DOCUMENT_PARAMETERS = {"downloadUrl": "https://example.com/fw/2.4.1.bin", "filePath": "/tmp/fw.bin"}
STACK_ARN = "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}"
# What the presigned-URL role's trust policy must be, exactly.
IOT_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": IOT},
            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
        }
    ],
}
PASS_TO_IOT = {"StringEquals": {"iam:PassedToService": IOT}}


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def as_text(value: Any) -> str:
    """A CloudFormation string expression as Fn::Sub would spell it."""
    if isinstance(value, str):
        return value
    (function, argument), *rest = value.items()
    assert not rest, value
    if function == "Ref":
        return "${" + str(argument) + "}"
    if function == "Fn::GetAtt":
        return "${" + ".".join(argument) + "}"
    if function == "Fn::Sub":
        assert isinstance(argument, str), value
        return argument
    if function == "Fn::Join":
        delimiter, parts = argument
        return str(delimiter).join(as_text(part) for part in parts)
    raise AssertionError(f"unexpected intrinsic {function}")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def logical_id(construct: Construct) -> str:
    """The logical id of a CfnResource, or of a construct's primary resource."""
    resource = construct if isinstance(construct, CfnElement) else construct.node.default_child
    assert isinstance(resource, CfnElement), construct.node.path
    return Stack.of(construct).get_logical_id(resource)


def job_logical_id(job: IotJob) -> str:
    return Stack.of(job).get_logical_id(job.resource.node.default_child)  # type: ignore[arg-type]


def get_att_arn(construct: Construct, attribute: str = "Arn") -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id(construct), attribute]}


def fresh_stack() -> Stack:
    """A stack of its own app, for a construct that is expected to raise."""
    return Stack(App(), "Rejected")


@dataclass
class Case:
    """One stack of the module's app, with its jobs and the constructs they use."""

    stack: Stack
    jobs: dict[str, IotJob] = field(default_factory=dict)
    errors: dict[str, Exception] = field(default_factory=dict)
    parts: dict[str, Any] = field(default_factory=dict)
    template: Template | None = None

    def add(self, name: str, **props: Any) -> None:
        """Build a job; a construction error is kept for the test that asks for the job."""
        try:
            self.jobs[name] = IotJob(self.stack, name, **props)
        except Exception as error:
            self.errors[name] = error
            self.stack.node.try_remove_child(name)

    def job(self, name: str) -> IotJob:
        if name in self.errors:
            raise self.errors[name]
        return self.jobs[name]

    @property
    def synthesized(self) -> Template:
        assert self.template is not None
        return self.template

    def resource(self, name: str) -> dict[str, Any]:
        resources = self.synthesized.find_resources(CUSTOM_TYPE)
        return dict(resources[job_logical_id(self.job(name))])

    def properties(self, name: str) -> dict[str, Any]:
        properties: dict[str, Any] = self.resource(name)["Properties"]
        return properties

    def provider_role_id(self) -> str:
        return logical_id(IotJobProvider.of(self.stack).role)

    def policies_of(self, role_id: str) -> list[dict[str, Any]]:
        """The AWS::IAM::Policy resources attached to a role of this stack."""
        return [
            policy["Properties"]
            for policy in self.synthesized.find_resources("AWS::IAM::Policy").values()
            if {"Ref": role_id} in policy["Properties"].get("Roles", [])
        ]

    def provider_statements(self) -> list[dict[str, Any]]:
        """Every statement the provider role is granted, inline or attached."""
        role_id = self.provider_role_id()
        role = self.synthesized.find_resources("AWS::IAM::Role")[role_id]["Properties"]
        statements = [s for policy in role.get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]
        for policy in self.policies_of(role_id):
            statements.extend(policy["PolicyDocument"]["Statement"])
        return statements

    def provider_statements_with(self, prefix: str) -> list[dict[str, Any]]:
        return [s for s in self.provider_statements() if any(a.startswith(prefix) for a in as_list(s["Action"]))]

    def roles_other_than_the_provider(self) -> dict[str, Any]:
        roles = dict(self.synthesized.find_resources("AWS::IAM::Role"))
        roles.pop(self.provider_role_id())
        return roles


@dataclass
class Built:
    app: App
    outdir: Path
    cases: dict[str, Case]

    def __getitem__(self, name: str) -> Case:
        return self.cases[name]


# ---------------------------------------------------------------------------
# The app under test
# ---------------------------------------------------------------------------

IN_ONE_DAY = datetime.now(UTC) + timedelta(days=1)
IN_TWO_DAYS = IN_ONE_DAY + timedelta(days=1)


def build_targets(case: Case) -> None:
    stack = case.stack
    device = iot.CfnThing(stack, "Device", thing_name="sensor-001")
    fleet = iot.CfnThingGroup(stack, "Fleet", thing_group_name="sensors")
    target = CfnParameter(stack, "TargetArn", type="String")
    case.parts.update(device=device, fleet=fleet, parameter=target)
    document = {"operation": "reboot"}
    case.add("ByArn", targets=[THING_ARN], document=document)
    case.add("ByToken", targets=[target.value_as_string], document=document)
    case.add("ByThing", targets=[device], document=document)
    case.add("ByGroup", targets=[fleet], document=document)
    case.add("Mixed", targets=[GROUP_ARN, device, fleet], document=document)
    case.add("Hundred", targets=[f"{GROUP_ARN}-{index}" for index in range(100)], document=document)
    case.add("NamedThing", targets=[JobTarget.thing("sensor-007")], document=document)
    case.add("NamedGroup", targets=[JobTarget.thing_group("gateways")], document=document)
    case.add("FromArn", targets=[JobTarget.from_arn(GROUP_ARN)], document=document)
    case.add("FromArnToken", targets=[JobTarget.from_arn(fleet.attr_arn)], document=document)


def build_templates(case: Case) -> None:
    stack = case.stack
    template = iot.CfnJobTemplate(
        stack,
        "UpdateTemplate",
        job_template_id="firmware-update",
        description="Firmware update",
        document='{"operation":"firmware-update"}',
    )
    case.parts["template"] = template
    case.add("ManagedVersioned", targets=[GROUP_ARN], job_template=JobTemplate.managed("AWS-Reboot", "1.0"))
    case.add("ManagedLatest", targets=[GROUP_ARN], job_template=JobTemplate.managed("Reboot"))
    case.add(
        "ManagedWithParameters",
        targets=[GROUP_ARN],
        job_template=JobTemplate.managed("AWS-Download-File", "1.0"),
        document_parameters=DOCUMENT_PARAMETERS,
    )
    case.add(
        "ManagedArnWithParameters",
        targets=[GROUP_ARN],
        job_template_arn=MANAGED_DOWNLOAD_ARN,
        document_parameters=DOCUMENT_PARAMETERS,
    )
    case.add("Customer", targets=[GROUP_ARN], job_template=template)
    case.add("CustomerArn", targets=[GROUP_ARN], job_template=CUSTOMER_TEMPLATE_ARN)


def build_packages(case: Case) -> None:
    version = iot.CfnSoftwarePackageVersion(case.stack, "GatewayFw", package_name="gateway-fw", version_name="2.4.1")
    case.parts["version"] = version
    case.add(
        "Packaged",
        targets=[GROUP_ARN],
        document={"operation": "install"},
        destination_package_versions=[PACKAGE_VERSION_ARN, version],
    )


def build_file_document(case: Case) -> None:
    case.add("FromFile", targets=[GROUP_ARN], document=JobDocument.from_file(FIRMWARE_JOB_FILE))


def build_bucket_document(case: Case) -> None:
    bucket = s3.Bucket(case.stack, "Documents")
    case.parts["bucket"] = bucket
    case.add("FromBucket", targets=[GROUP_ARN], document=JobDocument.from_bucket(bucket, "jobs/reboot.json"))


def build_kms_document(case: Case) -> None:
    bucket = s3.Bucket(case.stack, "SealedDocuments", encryption=s3.BucketEncryption.KMS)
    case.parts["bucket"] = bucket
    case.add("FromSealedBucket", targets=[GROUP_ARN], document=JobDocument.from_bucket(bucket, "jobs/reboot.json"))


def firmware_document(bucket: s3.IBucket) -> dict[str, Any]:
    return {"operation": "firmware-update", "url": JobDocument.presigned_url(bucket, FIRMWARE_KEY)}


def build_presigned(case: Case) -> None:
    bucket = s3.Bucket(case.stack, "Firmware")
    case.parts["bucket"] = bucket
    case.add("Presigned", targets=[GROUP_ARN], document=JobDocument.from_object(firmware_document(bucket)))


def build_presigned_expiry(case: Case) -> None:
    bucket = s3.Bucket(case.stack, "Firmware")
    case.parts["bucket"] = bucket
    case.add(
        "ShortLived",
        targets=[GROUP_ARN],
        document=firmware_document(bucket),
        presigned_url_config=PresignedUrlConfig(expires_in_sec=600),
    )


def build_presigned_given_role(case: Case) -> None:
    bucket = s3.Bucket(case.stack, "Firmware")
    case.add(
        "GivenRole",
        targets=[GROUP_ARN],
        document=firmware_document(bucket),
        presigned_url_config=PresignedUrlConfig(role_arn=GIVEN_ROLE_ARN),
    )


def build_plain_placeholder(case: Case) -> None:
    placeholder = (
        f"${{aws:iot:s3-presigned-url-v2:https://s3.us-east-1.amazonaws.com/{FIRMWARE_BUCKET}/{FIRMWARE_KEY}}}"
    )
    case.add("PlainPlaceholder", targets=[GROUP_ARN], document={"operation": "firmware-update", "url": placeholder})


def build_tagged(case: Case) -> None:
    case.add("Tagged", targets=[GROUP_ARN], document={"operation": "reboot"}, tags={"owner": "alice"})
    Tags.of(case.stack).add("team", "fw")


def build_scheduled(case: Case) -> None:
    case.add(
        "Scheduled",
        targets=[GROUP_ARN],
        document={"operation": "reboot"},
        scheduling_config=SchedulingConfig(
            start_time=IN_ONE_DAY,
            end_time=IN_TWO_DAYS,
            end_behavior=JobEndBehavior.CANCEL,
            maintenance_windows=[
                MaintenanceWindow(start_time="cron(0 22 ? * SAT *)", duration_in_minutes=Duration.hours(2)),
                MaintenanceWindow(start_time="cron(0 2 ? * SUN *)", duration_in_minutes=Duration.minutes(1430)),
            ],
        ),
    )


BUILDERS: dict[str, Callable[[Case], None]] = {
    "Targets": build_targets,
    "Templates": build_templates,
    "Packages": build_packages,
    "FileDocument": build_file_document,
    "BucketDocument": build_bucket_document,
    "KmsDocument": build_kms_document,
    "Presigned": build_presigned,
    "PresignedExpiry": build_presigned_expiry,
    "PresignedGivenRole": build_presigned_given_role,
    "PlainPlaceholder": build_plain_placeholder,
    "Tagged": build_tagged,
    "Scheduled": build_scheduled,
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    outdir = tmp_path_factory.mktemp("capabilities.out")
    app = App(outdir=str(outdir))
    cases = {}
    for name, build in BUILDERS.items():
        case = Case(Stack(app, name))
        build(case)
        cases[name] = case
    app.synth()
    for case in cases.values():
        case.template = Template.from_stack(case.stack)
    return Built(app=app, outdir=outdir, cases=cases)


# ---------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------


def test_arn_string_target_renders_as_given_without_a_dependency(built: Built) -> None:
    resource = built["Targets"].resource("ByArn")
    assert resource["Properties"]["Targets"] == [THING_ARN]
    assert "DependsOn" not in resource


def test_token_target_renders_as_its_reference_without_a_dependency(built: Built) -> None:
    case = built["Targets"]
    resource = case.resource("ByToken")
    assert resource["Properties"]["Targets"] == [{"Ref": "TargetArn"}]
    assert "DependsOn" not in resource


def test_cfn_thing_target_renders_its_arn_and_the_job_depends_on_it(built: Built) -> None:
    case = built["Targets"]
    device = case.parts["device"]
    resource = case.resource("ByThing")
    # The Fn::GetAtt is the dependency: a DependsOn too would be redundant (cfn-lint W3005).
    assert resource["Properties"]["Targets"] == [get_att_arn(device)]
    assert "DependsOn" not in resource


def test_cfn_thing_group_target_renders_its_arn_and_the_job_depends_on_it(built: Built) -> None:
    case = built["Targets"]
    fleet = case.parts["fleet"]
    resource = case.resource("ByGroup")
    assert resource["Properties"]["Targets"] == [get_att_arn(fleet)]
    assert "DependsOn" not in resource


def test_mixed_targets_keep_their_order_and_depend_on_every_construct(built: Built) -> None:
    case = built["Targets"]
    device, fleet = case.parts["device"], case.parts["fleet"]
    resource = case.resource("Mixed")
    assert resource["Properties"]["Targets"] == [GROUP_ARN, get_att_arn(device), get_att_arn(fleet)]
    assert "DependsOn" not in resource


def test_one_hundred_targets_are_accepted(built: Built) -> None:
    assert len(built["Targets"].properties("Hundred")["Targets"]) == 100


@pytest.mark.parametrize(
    ("name", "kind", "resource_name"),
    [("NamedThing", "thing", "sensor-007"), ("NamedGroup", "thinggroup", "gateways")],
)
def test_named_target_becomes_an_arn_of_the_stack_partition_region_and_account(
    built: Built, name: str, kind: str, resource_name: str
) -> None:
    resource = built["Targets"].resource(name)
    [target] = resource["Properties"]["Targets"]
    assert set(target) == {"Fn::Join"}, target
    assert as_text(target) == f"{STACK_ARN}:{kind}/{resource_name}"
    assert "DependsOn" not in resource


def test_job_target_from_arn_renders_the_arn(built: Built) -> None:
    resource = built["Targets"].resource("FromArn")
    assert resource["Properties"]["Targets"] == [GROUP_ARN]
    assert "DependsOn" not in resource


def test_job_target_from_an_arn_token_renders_the_reference(built: Built) -> None:
    case = built["Targets"]
    assert case.properties("FromArnToken")["Targets"] == [get_att_arn(case.parts["fleet"])]


@pytest.mark.parametrize(
    ("targets", "rule"),
    [([], "at least 1 item(s) (got 0)"), ([GROUP_ARN] * 101, "at most 100 item(s) (got 101)")],
    ids=["none", "101"],
)
def test_target_count_outside_1_to_100_is_rejected_at_synth_naming_targets(targets: list[str], rule: str) -> None:
    with pytest.raises(schema.InvalidPropertyError) as caught:
        IotJob(fresh_stack(), "Job", targets=targets, document={"operation": "reboot"})
    assert str(caught.value).startswith("targets (Targets) ")
    assert rule in str(caught.value)


def test_101_targets_counting_constructs_are_rejected_at_synth() -> None:
    stack = fresh_stack()
    fleet = iot.CfnThingGroup(stack, "Fleet")
    with pytest.raises(schema.InvalidPropertyError, match=r"^targets \(Targets\) .*at most 100"):
        IotJob(stack, "Job", targets=[fleet] + [GROUP_ARN] * 100, document={"operation": "reboot"})


# ---------------------------------------------------------------------------
# Job templates
# ---------------------------------------------------------------------------


def managed_arn_text(name: str) -> str:
    return f"arn:${{AWS::Partition}}:iot:${{AWS::Region}}::jobtemplate/{name}"


@pytest.mark.parametrize(
    ("job", "template"),
    [("ManagedVersioned", "AWS-Reboot:1.0"), ("ManagedLatest", "AWS-Reboot")],
)
def test_managed_template_renders_the_aws_managed_arn_in_the_stack_partition_and_region(
    built: Built, job: str, template: str
) -> None:
    properties = built["Templates"].properties(job)
    assert as_text(properties["JobTemplateArn"]) == managed_arn_text(template)
    assert "Document" not in properties and "DocumentSource" not in properties
    assert "DocumentParameters" not in properties


def test_managed_template_takes_document_parameters(built: Built) -> None:
    properties = built["Templates"].properties("ManagedWithParameters")
    assert as_text(properties["JobTemplateArn"]) == managed_arn_text("AWS-Download-File:1.0")
    assert properties["DocumentParameters"] == DOCUMENT_PARAMETERS


def test_literal_managed_template_arn_takes_document_parameters(built: Built) -> None:
    properties = built["Templates"].properties("ManagedArnWithParameters")
    assert properties["JobTemplateArn"] == MANAGED_DOWNLOAD_ARN
    assert properties["DocumentParameters"] == DOCUMENT_PARAMETERS


@pytest.mark.parametrize(
    ("job", "template"),
    [
        ("ManagedVersioned", "AWS-Reboot:1.0"),
        ("ManagedLatest", "AWS-Reboot"),
        ("ManagedWithParameters", "AWS-Download-File:1.0"),
    ],
)
def test_provider_may_create_jobs_from_the_managed_template(built: Built, job: str, template: str) -> None:
    resources = {
        as_text(resource)
        for statement in built["Templates"].provider_statements_with("iot:CreateJob")
        for resource in as_list(statement["Resource"])
    }
    assert managed_arn_text(template) in resources


def test_cfn_job_template_renders_its_arn_and_the_job_depends_on_it(built: Built) -> None:
    case = built["Templates"]
    template = case.parts["template"]
    resource = case.resource("Customer")
    assert resource["Properties"]["JobTemplateArn"] == get_att_arn(template)
    assert "DependsOn" not in resource


def test_provider_may_create_jobs_from_the_cfn_job_template_and_a_customer_template_arn(built: Built) -> None:
    case = built["Templates"]
    resources = [
        resource
        for statement in case.provider_statements_with("iot:CreateJob")
        for resource in as_list(statement["Resource"])
    ]
    assert get_att_arn(case.parts["template"]) in resources
    assert CUSTOMER_TEMPLATE_ARN in resources
    assert case.properties("CustomerArn")["JobTemplateArn"] == CUSTOMER_TEMPLATE_ARN


def test_document_parameters_with_a_cfn_job_template_are_rejected() -> None:
    stack = fresh_stack()
    template = iot.CfnJobTemplate(stack, "Template", job_template_id="mine", description="d", document="{}")
    with pytest.raises(schema.InvalidPropertyError) as caught:
        IotJob(stack, "Job", targets=[GROUP_ARN], job_template=template, document_parameters={"a": "b"})
    assert "DocumentParameters" in str(caught.value) and "JobTemplateArn" in str(caught.value)


@pytest.mark.parametrize("form", ["job_template", "job_template_arn", "from_arn"])
def test_document_parameters_with_a_literal_customer_template_arn_are_rejected(form: str) -> None:
    template: Any = JobTemplate.from_arn(CUSTOMER_TEMPLATE_ARN) if form == "from_arn" else CUSTOMER_TEMPLATE_ARN
    kind = "job_template_arn" if form == "job_template_arn" else "job_template"
    with pytest.raises(schema.InvalidPropertyError) as caught:
        IotJob(fresh_stack(), "Job", targets=[GROUP_ARN], document_parameters={"a": "b"}, **{kind: template})
    message = str(caught.value)
    # The value is quoted, shortened to 60 characters.
    assert message.startswith(f"{kind} (JobTemplateArn) {CUSTOMER_TEMPLATE_ARN[:40]!r}"[:-1])
    assert "must be an AWS managed template ARN" in message and "DocumentParameters" in message


def test_job_template_fields_are_not_shadowed_by_its_factories() -> None:
    """The factory ``JobTemplate.managed(...)`` and a dataclass field must not share a name.

    Sharing it makes the factory the field's default (``JobTemplate(arn=...)``
    then carries a function as its flag), and type checkers reject every
    documented ``JobTemplate.managed("AWS-Reboot", "1.0")`` call of a typed
    (``py.typed``) user: mypy reports "bool" not callable.
    """
    for item in dataclasses.fields(JobTemplate):
        assert not callable(item.default), f"field {item.name!r} defaults to {item.default!r}"
    assert isinstance(JobTemplate.managed("AWS-Reboot", "1.0"), JobTemplate)


def test_job_template_and_job_template_arn_together_are_rejected() -> None:
    with pytest.raises(schema.InvalidPropertyError, match="job_template and job_template_arn"):
        IotJob(
            fresh_stack(),
            "Job",
            targets=[GROUP_ARN],
            job_template=JobTemplate.managed("AWS-Reboot", "1.0"),
            job_template_arn=MANAGED_DOWNLOAD_ARN,
        )


# ---------------------------------------------------------------------------
# Package versions
# ---------------------------------------------------------------------------


def test_package_versions_render_arns_and_the_construct_attribute(built: Built) -> None:
    case = built["Packages"]
    version = case.parts["version"]
    resource = case.resource("Packaged")
    assert resource["Properties"]["DestinationPackageVersions"] == [
        PACKAGE_VERSION_ARN,
        get_att_arn(version, "PackageVersionArn"),
    ]
    assert "DependsOn" not in resource


def test_provider_may_create_jobs_with_the_package_versions(built: Built) -> None:
    case = built["Packages"]
    resources = [
        resource
        for statement in case.provider_statements_with("iot:CreateJob")
        for resource in as_list(statement["Resource"])
    ]
    assert PACKAGE_VERSION_ARN in resources
    assert get_att_arn(case.parts["version"], "PackageVersionArn") in resources


# ---------------------------------------------------------------------------
# Documents: from a file, from a bucket
# ---------------------------------------------------------------------------


def file_assets(built: Built, stack_name: str) -> dict[str, Any]:
    """The stack's file assets other than its own template."""
    manifest = json.loads((built.outdir / f"{stack_name}.assets.json").read_text())
    return {
        asset_hash: entry
        for asset_hash, entry in manifest["files"].items()
        if entry["source"].get("packaging", "file") == "file"
        and entry["source"]["path"] != f"{stack_name}.template.json"
    }


def the_file_asset(built: Built) -> tuple[str, dict[str, Any]]:
    assets = file_assets(built, "FileDocument")
    assert len(assets) == 1, f"expected exactly one file asset, got {sorted(assets)}"
    return next(iter(assets.items()))


def test_from_file_uploads_exactly_one_file_asset_holding_the_file(built: Built) -> None:
    _, entry = the_file_asset(built)
    assert (built.outdir / entry["source"]["path"]).read_bytes() == FIRMWARE_JOB_FILE.read_bytes()


def test_from_file_sets_document_source_to_the_asset_https_url(built: Built) -> None:
    _, entry = the_file_asset(built)
    [destination] = entry["destinations"].values()
    properties = built["FileDocument"].properties("FromFile")
    assert "Document" not in properties
    assert as_text(properties["DocumentSource"]) == (
        f"https://s3.${{AWS::Region}}.${{AWS::URLSuffix}}/{destination['bucketName']}/{destination['objectKey']}"
    )


def s3_resources(case: Case) -> list[str]:
    statements = case.provider_statements_with("s3:")
    for statement in statements:
        assert as_list(statement["Action"]) == ["s3:GetObject"], statement
    return [as_text(resource) for statement in statements for resource in as_list(statement["Resource"])]


def test_provider_reads_exactly_the_asset_object_and_nothing_else_on_s3(built: Built) -> None:
    _, entry = the_file_asset(built)
    [destination] = entry["destinations"].values()
    assert s3_resources(built["FileDocument"]) == [
        f"arn:${{AWS::Partition}}:s3:::{destination['bucketName']}/{destination['objectKey']}"
    ]


def test_from_bucket_sets_document_source_to_the_object_url(built: Built) -> None:
    case = built["BucketDocument"]
    properties = case.properties("FromBucket")
    assert "Document" not in properties
    bucket = logical_id(case.parts["bucket"])
    assert as_text(properties["DocumentSource"]) == (
        f"https://s3.${{AWS::Region}}.${{AWS::URLSuffix}}/${{{bucket}}}/jobs/reboot.json"
    )


def test_provider_reads_exactly_the_bucket_object_and_nothing_else_on_s3(built: Built) -> None:
    case = built["BucketDocument"]
    bucket = logical_id(case.parts["bucket"])
    assert s3_resources(case) == [f"${{{bucket}.Arn}}/jobs/reboot.json"]
    assert case.provider_statements_with("kms:") == []


def test_kms_encrypted_document_bucket_lets_the_provider_decrypt_with_its_key(built: Built) -> None:
    case = built["KmsDocument"]
    bucket = case.parts["bucket"]
    key = logical_id(bucket.encryption_key)
    assert s3_resources(case) == [f"${{{logical_id(bucket)}.Arn}}/jobs/reboot.json"]
    [statement] = case.provider_statements_with("kms:")
    assert as_list(statement["Action"]) == ["kms:Decrypt"]
    assert as_list(statement["Resource"]) == [{"Fn::GetAtt": [key, "Arn"]}]


def test_document_jobs_without_placeholders_get_no_role_to_pass(built: Built) -> None:
    for name in ("BucketDocument", "KmsDocument"):
        case = built[name]
        assert case.provider_statements_with("iam:") == [], name
        assert case.roles_other_than_the_provider() == {}, name


# ---------------------------------------------------------------------------
# Documents: presigned-URL placeholders and the generated role
# ---------------------------------------------------------------------------


def generated_role_id(case: Case, job: str) -> str:
    role = case.job(job).presigned_url_role
    assert isinstance(role, Construct), f"{job} got no presigned-URL role"
    roles = case.roles_other_than_the_provider()
    assert list(roles) == [logical_id(role)], "exactly one role besides the provider's"
    return logical_id(role)


def assert_role_reads_exactly(case: Case, role_id: str, object_arn: Any) -> None:
    role = case.synthesized.find_resources("AWS::IAM::Role")[role_id]["Properties"]
    assert "Policies" not in role and "ManagedPolicyArns" not in role, role
    [policy] = case.policies_of(role_id)
    case.synthesized.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": [{"Ref": role_id}],
            "PolicyDocument": Match.object_equals(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Action": "s3:GetObject", "Effect": "Allow", "Resource": object_arn}],
                }
            ),
        },
    )
    assert policy["Roles"] == [{"Ref": role_id}]


def assert_passes_only(case: Case, role_arn: Any) -> None:
    statements = case.provider_statements_with("iam:")
    assert statements == [{"Action": "iam:PassRole", "Condition": PASS_TO_IOT, "Effect": "Allow", "Resource": role_arn}]


def firmware_object_arn(case: Case) -> dict[str, Any]:
    return {"Fn::Join": ["", [get_att_arn(case.parts["bucket"]), f"/{FIRMWARE_KEY}"]]}


def test_placeholder_renders_the_presigned_url_of_the_bucket_object(built: Built) -> None:
    case = built["Presigned"]
    bucket = logical_id(case.parts["bucket"])
    document = as_text(case.properties("Presigned")["Document"])
    assert document == (
        '{"operation":"firmware-update","url":"${aws:iot:s3-presigned-url-v2:'
        f'https://s3.${{AWS::Region}}.${{AWS::URLSuffix}}/${{{bucket}}}/{FIRMWARE_KEY}}}"}}'
    )


def test_placeholder_role_is_assumed_only_by_iot_on_behalf_of_the_account(built: Built) -> None:
    case = built["Presigned"]
    role_id = generated_role_id(case, "Presigned")
    case.synthesized.has_resource_properties(
        "AWS::IAM::Role", {"AssumeRolePolicyDocument": Match.object_equals(IOT_TRUST_POLICY)}
    )
    role = case.synthesized.find_resources("AWS::IAM::Role")[role_id]["Properties"]
    assert role["AssumeRolePolicyDocument"] == IOT_TRUST_POLICY


def test_placeholder_role_policy_is_exactly_get_object_on_the_firmware_object(built: Built) -> None:
    case = built["Presigned"]
    assert_role_reads_exactly(case, generated_role_id(case, "Presigned"), firmware_object_arn(case))


def test_placeholder_job_uses_the_generated_role_with_a_3600_second_expiry(built: Built) -> None:
    case = built["Presigned"]
    role_id = generated_role_id(case, "Presigned")
    assert case.properties("Presigned")["PresignedUrlConfig"] == {
        "RoleArn": {"Fn::GetAtt": [role_id, "Arn"]},
        "ExpiresInSec": 3600,
    }


def test_provider_may_pass_exactly_the_generated_role_to_iot(built: Built) -> None:
    case = built["Presigned"]
    assert_passes_only(case, {"Fn::GetAtt": [generated_role_id(case, "Presigned"), "Arn"]})
    assert case.provider_statements_with("s3:") == [], "the provider itself reads no firmware"


def test_expiry_without_a_role_keeps_the_expiry_and_adds_the_generated_role(built: Built) -> None:
    case = built["PresignedExpiry"]
    role_id = generated_role_id(case, "ShortLived")
    assert case.properties("ShortLived")["PresignedUrlConfig"] == {
        "RoleArn": {"Fn::GetAtt": [role_id, "Arn"]},
        "ExpiresInSec": 600,
    }
    assert_role_reads_exactly(case, role_id, firmware_object_arn(case))
    assert_passes_only(case, {"Fn::GetAtt": [role_id, "Arn"]})


def test_given_role_means_no_generated_role_and_pass_role_on_the_given_role_only(built: Built) -> None:
    case = built["PresignedGivenRole"]
    assert case.job("GivenRole").presigned_url_role is None
    assert case.roles_other_than_the_provider() == {}
    assert case.properties("GivenRole")["PresignedUrlConfig"] == {"RoleArn": GIVEN_ROLE_ARN}
    assert_passes_only(case, GIVEN_ROLE_ARN)


def test_plain_dict_with_a_literal_placeholder_gets_the_role_too(built: Built) -> None:
    case = built["PlainPlaceholder"]
    role_id = generated_role_id(case, "PlainPlaceholder")
    assert case.properties("PlainPlaceholder")["PresignedUrlConfig"] == {
        "RoleArn": {"Fn::GetAtt": [role_id, "Arn"]},
        "ExpiresInSec": 3600,
    }
    object_arn = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":s3:::{FIRMWARE_BUCKET}/{FIRMWARE_KEY}"]]}
    assert_role_reads_exactly(case, role_id, object_arn)
    assert_passes_only(case, {"Fn::GetAtt": [role_id, "Arn"]})


def test_file_document_with_a_placeholder_gets_a_role_for_the_firmware_object(built: Built) -> None:
    case = built["FileDocument"]
    role_id = generated_role_id(case, "FromFile")
    assert case.properties("FromFile")["PresignedUrlConfig"] == {
        "RoleArn": {"Fn::GetAtt": [role_id, "Arn"]},
        "ExpiresInSec": 3600,
    }
    object_arn = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":s3:::{FIRMWARE_BUCKET}/{FIRMWARE_KEY}"]]}
    assert_role_reads_exactly(case, role_id, object_arn)
    assert_passes_only(case, {"Fn::GetAtt": [role_id, "Arn"]})


def test_the_fixture_names_the_firmware_object_literally() -> None:
    url = json.loads(FIRMWARE_JOB_FILE.read_text())["url"]
    assert (
        url == f"${{aws:iot:s3-presigned-url-v2:https://s3.us-east-1.amazonaws.com/{FIRMWARE_BUCKET}/{FIRMWARE_KEY}}}"
    )


# ---------------------------------------------------------------------------
# Tags
# ---------------------------------------------------------------------------


def test_tags_of_the_stack_reach_the_job_alongside_its_own_tags(built: Built) -> None:
    assert built["Tagged"].properties("Tagged")["Tags"] == [
        {"Key": "owner", "Value": "alice"},
        {"Key": "team", "Value": "fw"},
    ]


@pytest.mark.parametrize("key", ["aws:owner", "AWS:owner", "cdk-iot-job:stack-id", "cdk-iot-job:anything"])
def test_reserved_tag_key_in_the_constructor_is_rejected_naming_it(key: str) -> None:
    with pytest.raises(schema.InvalidPropertyError) as caught:
        IotJob(fresh_stack(), "Job", targets=[GROUP_ARN], document={"operation": "reboot"}, tags={key: "x"})
    assert str(caught.value).startswith("tags (Tags[0].Key) ") and repr(key) in str(caught.value)


@pytest.mark.parametrize("key", ["aws:owner", "cdk-iot-job:stack-id"])
def test_reserved_tag_key_from_tags_of_is_rejected_at_synth(key: str) -> None:
    """Tags.of(...) is how most tags reach the job; the reserved prefixes are known at synth there too.

    Today such a key passes synth into the template and only the provider
    rejects the resource at deploy time.
    """
    app = App()
    stack = Stack(app, "TaggedLater")
    IotJob(stack, "Job", targets=[GROUP_ARN], document={"operation": "reboot"})
    Tags.of(stack).add(key, "x")
    # A validation error, whatever jsii wraps it in, that names the key.
    with pytest.raises(Exception, match=key):
        app.synth()


# ---------------------------------------------------------------------------
# Scheduling
# ---------------------------------------------------------------------------


def utc_minutes(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def test_schedule_renders_utc_times_the_end_behavior_and_windows_in_minutes(built: Built) -> None:
    assert built["Scheduled"].properties("Scheduled")["SchedulingConfig"] == {
        "StartTime": utc_minutes(IN_ONE_DAY),
        "EndTime": utc_minutes(IN_TWO_DAYS),
        "EndBehavior": "CANCEL",
        "MaintenanceWindows": [
            {"StartTime": "cron(0 22 ? * SAT *)", "DurationInMinutes": 120},
            {"StartTime": "cron(0 2 ? * SUN *)", "DurationInMinutes": 1430},
        ],
    }


def _schedule_error(config: SchedulingConfig) -> str:
    with pytest.raises(schema.InvalidPropertyError) as caught:
        IotJob(fresh_stack(), "Job", targets=[GROUP_ARN], document={"operation": "reboot"}, scheduling_config=config)
    return str(caught.value)


def _schedule_warnings(config: SchedulingConfig) -> list[str]:
    stack = fresh_stack()
    IotJob(stack, "Job", targets=[GROUP_ARN], document={"operation": "reboot"}, scheduling_config=config)
    messages = Annotations.from_stack(stack).find_warning("*", Match.string_like_regexp("SchedulingConfig"))
    return [str(message.entry.data) for message in messages]


@pytest.mark.parametrize(
    ("start", "rule"),
    [
        (timedelta(minutes=10), "at least 30 minutes from now"),
        (timedelta(days=-30), "at least 30 minutes from now"),
        (timedelta(days=366), "at most one year from now"),
    ],
    ids=["ten-minutes-ahead", "passed", "over-a-year-ahead"],
)
def test_a_schedule_start_that_is_not_creatable_now_still_synthesizes_with_a_warning(
    start: timedelta, rule: str
) -> None:
    # A schedule that passed must not block unrelated later deploys of the app:
    # the provider enforces the rule when it creates the job.
    [warning] = _schedule_warnings(SchedulingConfig(start_time=datetime.now(UTC) + start))
    assert warning.startswith("scheduling_config.start_time (SchedulingConfig.StartTime) ") and rule in warning
    assert "when the job is created" in warning


def test_end_ten_minutes_after_start_is_rejected() -> None:
    start = datetime.now(UTC) + timedelta(days=1)
    message = _schedule_error(SchedulingConfig(start_time=start, end_time=start + timedelta(minutes=10)))
    assert message.startswith("scheduling_config.end_time (SchedulingConfig.EndTime) ")
    assert "at least 30 minutes after StartTime" in message


def test_maintenance_window_of_24_hours_is_rejected() -> None:
    window = MaintenanceWindow(start_time="cron(0 22 ? * SAT *)", duration_in_minutes=Duration.hours(24))
    message = _schedule_error(SchedulingConfig(maintenance_windows=[window]))
    assert message.startswith(
        "scheduling_config.maintenance_windows[0].duration_in_minutes "
        "(SchedulingConfig.MaintenanceWindows[0].DurationInMinutes) 1440 "
    )
    assert "at most 1430" in message
