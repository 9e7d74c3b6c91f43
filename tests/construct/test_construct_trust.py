"""Trust boundaries in IAM: no value becomes an IAM wildcard, and ownership tags back the job grants.

* ``*`` and ``?`` in an S3 bucket or key (``JobDocument.from_bucket``,
  presigned-URL placeholders made or written by hand, ``document_source``), in
  a presigned-URL role ARN, a job template or package version ARN, or in an
  ``IotJobProviderStack`` option are refused when the app is built, naming the
  property; the shared schema refuses them again at deploy time, so the
  provider never creates such a job either. Messages about a document never
  quote it.
* The provider may create a job only with its ``cdk-iot-job:stack-id``
  ownership tag (``aws:RequestTag``), and change or remove only jobs carrying it
  (``aws:ResourceTag``).
* ``IotJobProviderStack``'s options grant exactly what a plain CloudFormation
  template's ``DocumentSource``, ``JobTemplateArn`` and
  ``DestinationPackageVersions`` need.

One app holds the stacks that are synthesized (a jobs stack and two provider
stacks), synthesized once per module with cdk-nag's packs as validation plugins.
Constructs expected to raise are built in a scratch stack that is never
synthesized.
"""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import contextlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack, Validations
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from cdk_iot_job import (
    IotJob,
    IotJobProviderStack,
    JobDocument,
    JobTemplate,
    PresignedUrlConfig,
)
from cdk_iot_job.provider import IotJobProvider
from cdk_iot_job_provider import schema
from cdk_iot_job_provider.ownership import STACK_TAG, Owner

ACCOUNT = "123456789012"
REGION = "us-east-1"
GROUP_ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/sensors"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/firmware-download"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
TEMPLATE_ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}:jobtemplate/firmware-update"
PACKAGE_VERSION_ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}:package/gateway-fw/version/2.4.1"
SECRET = "s3cr3t-token-9f8e7d"
WILDCARD_RULE = "must not contain '*' or '?': it would become an IAM wildcard"
PLACEHOLDER_RULE = "presigned-URL placeholder whose URL has '*' or '?'"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

OWNED_JOB_ACTIONS = {"iot:UpdateJob", "iot:CancelJob", "iot:DeleteJob", "iot:UntagResource"}
JOB_CARRIES_OWNERSHIP_TAG = {"Null": {f"aws:ResourceTag/{STACK_TAG}": "false"}}
REQUEST_CARRIES_OWNERSHIP_TAG = {"Null": {f"aws:RequestTag/{STACK_TAG}": "false"}}


def placeholder(url: str) -> str:
    return "${aws:iot:s3-presigned-url-v2:" + url + "}"


# ---------------------------------------------------------------------------
# The synthesized app
# ---------------------------------------------------------------------------


@dataclass
class Synthesized:
    app: App
    templates: dict[str, dict[str, Any]]
    report: dict[str, Any]
    providers: dict[str, IotJobProvider]

    def statements(self, stack: str) -> list[dict[str, Any]]:
        """Every statement granted to the provider role of ``stack``."""
        template = self.templates[stack]
        role_id = Stack.of(self.providers[stack]).resolve(self.providers[stack].role.role_name)["Ref"]
        return [
            statement
            for policy in template["Resources"].values()
            if policy["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in policy["Properties"].get("Roles", [])
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        ]

    def statements_with(self, stack: str, action: str) -> list[dict[str, Any]]:
        return [statement for statement in self.statements(stack) if action in as_list(statement["Action"])]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def text(value: Any) -> str:
    """A resource as text: literals kept, ``Ref`` of pseudo parameters as ``<AWS::X>``."""
    if isinstance(value, str):
        return value
    if set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(text(part) for part in parts)
    if set(value) == {"Ref"}:
        return f"<{value['Ref']}>"
    return json.dumps(value, sort_keys=True)


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    outdir = tmp_path_factory.mktemp("trust.out")
    app = App(outdir=str(outdir))
    jobs = Stack(app, "TrustJobs")
    IotJob(jobs, "Plain", targets=[GROUP_ARN], document={"operation": "reboot"})
    IotJob(
        jobs,
        "WithGrants",
        targets=[GROUP_ARN],
        document={"operation": "reboot"},
        presigned_url_config=PresignedUrlConfig(role_arn=ROLE_ARN),
        job_template_arn=TEMPLATE_ARN,
        destination_package_versions=[PACKAGE_VERSION_ARN],
    )
    options = IotJobProviderStack(
        app,
        "TrustProviderOptions",
        export_name="TrustProviderOptions-ServiceToken",
        pass_role_arns=[ROLE_ARN],
        document_source_buckets=["firmware-jobs/documents/", "reboot-jobs"],
        document_source_key_arns=[KEY_ARN],
        job_template_arns=[TEMPLATE_ARN, JobTemplate.managed("AWS-Reboot", "1.0")],
        package_version_arns=[PACKAGE_VERSION_ARN],
        env=Environment(account=ACCOUNT, region=REGION),
    )
    bare = IotJobProviderStack(app, "TrustProviderBare", export_name="TrustProviderBare-ServiceToken")
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    # A failed validation raises; the findings are in the report, and asserted below.
    with contextlib.suppress(RuntimeError):
        app.synth()
    report_path = outdir / "validation-report.json"
    assert report_path.is_file(), "synth wrote no validation report"
    names = ("TrustJobs", "TrustProviderOptions", "TrustProviderBare")
    templates = {name: json.loads((outdir / f"{name}.template.json").read_text()) for name in names}
    providers = {
        "TrustJobs": IotJobProvider.of(jobs),
        "TrustProviderOptions": options.provider,
        "TrustProviderBare": bare.provider,
    }
    return Synthesized(app, templates, json.loads(report_path.read_text()), providers)


@pytest.fixture(scope="module")
def scratch() -> Callable[[str], Stack]:
    """A stack of its own app per call, never synthesized, for constructs expected to raise."""
    app = App()
    counter = iter(range(1_000_000))

    def new(name: str) -> Stack:
        return Stack(app, f"{name}{next(counter)}")

    return new


# ---------------------------------------------------------------------------
# Wildcards refused at synth
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["jobs/*.json", "jobs/reboot?.json"])
def test_from_bucket_key_with_a_wildcard_is_refused(scratch: Callable[[str], Stack], key: str) -> None:
    bucket = s3.Bucket.from_bucket_name(scratch("FromBucketKey"), "Bucket", "firmware-bucket")
    with pytest.raises(schema.InvalidPropertyError) as caught:
        JobDocument.from_bucket(bucket, key)
    assert str(caught.value) == f"DocumentSource: S3 object key {key!r} {WILDCARD_RULE}"


@pytest.mark.parametrize(
    "make",
    [
        lambda scope: s3.Bucket.from_bucket_arn(scope, "Bucket", "arn:aws:s3:::firmware-*"),
        lambda scope: s3.Bucket.from_bucket_name(scope, "Bucket", "firmware-?"),
        lambda scope: s3.Bucket.from_bucket_attributes(scope, "Bucket", bucket_name="firmware-*"),
    ],
    ids=["from-arn", "from-name", "from-attributes"],
)
def test_a_wildcard_bucket_never_reaches_a_document(
    scratch: Callable[[str], Stack], make: Callable[[Stack], s3.IBucket]
) -> None:
    # aws-cdk-lib refuses such names when the bucket is imported (InvalidBucketNameValue); the
    # construct checks the bucket's literal name and ARN again in from_bucket and presigned_url.
    with pytest.raises((RuntimeError, ValueError), match=r"(?i)bucket name|IAM wildcard"):
        JobDocument.from_bucket(make(scratch("WildcardBucket")), "jobs/reboot.json")


@pytest.mark.parametrize("key", [f"fw/{SECRET}/*.bin", f"fw/{SECRET}?.bin"])
def test_presigned_url_key_with_a_wildcard_is_refused_without_quoting_it(
    scratch: Callable[[str], Stack], key: str
) -> None:
    bucket = s3.Bucket(scratch("PresignedKey"), "Firmware")
    with pytest.raises(schema.InvalidPropertyError) as caught:
        JobDocument.presigned_url(bucket, key)
    message = str(caught.value)
    assert message == f"Document presigned-URL placeholder: S3 object key {WILDCARD_RULE}"
    assert SECRET not in message


def test_presigned_url_for_an_asset_keeps_its_token_key(scratch: Callable[[str], Stack]) -> None:
    # An asset's key is a token, left to the provider's deploy-time check of the resolved document.
    asset = s3_assets.Asset(scratch("PresignedAsset"), "Firmware", path=str(FIXTURES))
    assert JobDocument.presigned_url_for_asset(asset).startswith("${aws:iot:s3-presigned-url-v2:")


@pytest.mark.parametrize(
    "document",
    [
        {"url": placeholder(f"https://s3.us-east-1.amazonaws.com/firmware-bucket/{SECRET}/*.bin")},
        {"url": placeholder(f"https://s3.us-east-1.amazonaws.com/firmware-bucket/{SECRET}?.bin")},
        {"url": placeholder(f"https://s3.us-east-1.amazonaws.com/firmware-*/{SECRET}.bin")},
        json.dumps({"url": placeholder(f"https://s3.amazonaws.com/firmware-bucket/{SECRET}*")}),
    ],
    ids=["dict-key-star", "dict-key-question", "dict-bucket-star", "string"],
)
def test_literal_placeholder_with_a_wildcard_in_a_document_is_refused_without_quoting_it(
    scratch: Callable[[str], Stack], document: Any
) -> None:
    with pytest.raises(schema.InvalidPropertyError) as caught:
        IotJob(scratch("LiteralPlaceholder"), "Job", targets=[GROUP_ARN], document=document)
    message = str(caught.value)
    assert message.startswith("Document ") and PLACEHOLDER_RULE in message
    assert SECRET not in message and "firmware" not in message


def test_literal_wildcard_placeholder_beside_a_token_placeholder_is_refused(scratch: Callable[[str], Stack]) -> None:
    # The document holds a token, so the schema cannot look at it whole at synth: the placeholder scan does.
    stack = scratch("MixedPlaceholders")
    bucket = s3.Bucket(stack, "Firmware")
    document = {
        "good": JobDocument.presigned_url(bucket, "fw/2.4.1.bin"),
        "bad": placeholder(f"https://s3.amazonaws.com/firmware-bucket/{SECRET}/*"),
    }
    with pytest.raises(schema.InvalidPropertyError) as caught:
        IotJob(stack, "Job", targets=[GROUP_ARN], document=document)
    assert PLACEHOLDER_RULE in str(caught.value) and SECRET not in str(caught.value)


def test_placeholder_escaped_in_json_is_refused(scratch: Callable[[str], Stack]) -> None:
    # "\u002a" is a "*" once the document is decoded.
    document = '{"url":"${aws:iot:s3-presigned-url-v2:https://s3.amazonaws.com/firmware-bucket/fw/\\u002a}"}'
    with pytest.raises(schema.InvalidPropertyError, match=PLACEHOLDER_RULE.replace("?", r"\?").replace("*", r"\*")):
        IotJob(scratch("EscapedPlaceholder"), "Job", targets=[GROUP_ARN], document=document)


def test_document_file_with_a_wildcard_placeholder_is_refused_naming_the_file(
    scratch: Callable[[str], Stack], tmp_path: Path
) -> None:
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"url": placeholder(f"https://s3.amazonaws.com/firmware-bucket/{SECRET}*")}))
    with pytest.raises(schema.InvalidPropertyError) as caught:
        IotJob(scratch("FilePlaceholder"), "Job", targets=[GROUP_ARN], document=JobDocument.from_file(path))
    message = str(caught.value)
    assert message.startswith(f"job document file {str(path)!r}: Document ") and PLACEHOLDER_RULE in message
    assert SECRET not in message


@pytest.mark.parametrize("url", ["https://s3.amazonaws.com/firmware-bucket/jobs/*", "https://s3.amazonaws.com/fw?/a"])
def test_document_source_with_a_wildcard_is_refused(scratch: Callable[[str], Stack], url: str) -> None:
    with pytest.raises(schema.InvalidPropertyError) as caught:
        IotJob(scratch("DocumentSource"), "Job", targets=[GROUP_ARN], document_source=url)
    assert str(caught.value) == f"document_source (DocumentSource) {url!r} {WILDCARD_RULE}"


@pytest.mark.parametrize("role_arn", [f"arn:aws:iam::{ACCOUNT}:role/*", f"arn:aws:iam::{ACCOUNT}:role/fw-?"])
def test_presigned_url_role_arn_with_a_wildcard_is_refused(scratch: Callable[[str], Stack], role_arn: str) -> None:
    with pytest.raises(schema.InvalidPropertyError) as caught:
        IotJob(
            scratch("RoleArn"),
            "Job",
            targets=[GROUP_ARN],
            document={"operation": "reboot"},
            presigned_url_config=PresignedUrlConfig(role_arn=role_arn),
        )
    assert str(caught.value) == (
        f"presigned_url_config.role_arn (PresignedUrlConfig.RoleArn) {role_arn!r} {WILDCARD_RULE}"
    )


def test_provider_refuses_to_pass_a_wildcard_role_given_directly(scratch: Callable[[str], Stack]) -> None:
    provider = IotJobProvider.of(scratch("PassRole"))
    with pytest.raises(schema.InvalidPropertyError, match=r"^PresignedUrlConfig\.RoleArn .* must not contain"):
        provider.allow_pass_role(f"arn:aws:iam::{ACCOUNT}:role/*")


@pytest.mark.parametrize(
    ("props", "where"),
    [
        ({"job_template_arn": f"arn:aws:iot:{REGION}:{ACCOUNT}:jobtemplate/*"}, "JobTemplateArn"),
        ({"job_template": JobTemplate(f"arn:aws:iot:{REGION}::jobtemplate/AWS-*", True)}, None),
        ({"destination_package_versions": [PACKAGE_VERSION_ARN, PACKAGE_VERSION_ARN[:-5] + "*"]}, None),
    ],
    ids=["template-arn", "managed-template", "package-version"],
)
def test_template_and_package_version_wildcards_are_refused(
    scratch: Callable[[str], Stack], props: dict[str, Any], where: str | None
) -> None:
    with pytest.raises(schema.InvalidPropertyError) as caught:
        IotJob(scratch("CreateWith"), "Job", targets=[GROUP_ARN], document={"operation": "reboot"}, **props)
    message = str(caught.value)
    assert message.endswith(WILDCARD_RULE)
    if where:
        assert message.startswith(f"{where} ")


def test_managed_template_name_with_a_wildcard_is_refused_when_built() -> None:
    with pytest.raises(schema.InvalidPropertyError, match=r"^JobTemplateArn: managed template name 'AWS-\*'"):
        JobTemplate.managed("AWS-*")


def test_package_version_wildcard_names_its_index(scratch: Callable[[str], Stack]) -> None:
    with pytest.raises(schema.InvalidPropertyError, match=r"^DestinationPackageVersions\[1\] "):
        IotJob(
            scratch("PackageIndex"),
            "Job",
            targets=[GROUP_ARN],
            document={"operation": "reboot"},
            destination_package_versions=[PACKAGE_VERSION_ARN, "arn:aws:iot:us-east-1:123456789012:package/*"],
        )


# ---------------------------------------------------------------------------
# Wildcards refused at deploy (the shared schema, as the provider runs it)
# ---------------------------------------------------------------------------


def deploy(**properties: Any) -> dict[str, Any]:
    """Properties as CloudFormation delivers them, through the provider's parser."""
    return schema.parse_properties({"ServiceToken": "arn:aws:lambda:x", "Targets": [GROUP_ARN], **properties})


@pytest.mark.parametrize("url", ["https://s3.amazonaws.com/b/jobs/*", "https://s3.amazonaws.com/b?/x"])
def test_provider_refuses_a_document_source_with_a_wildcard(url: str) -> None:
    with pytest.raises(schema.InvalidPropertyError) as caught:
        deploy(DocumentSource=url)
    assert str(caught.value) == f"DocumentSource {url!r} {WILDCARD_RULE}"


def test_provider_refuses_a_role_arn_with_a_wildcard() -> None:
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/fw-*"
    with pytest.raises(schema.InvalidPropertyError) as caught:
        deploy(Document="{}", PresignedUrlConfig={"RoleArn": role_arn, "ExpiresInSec": "600"})
    assert str(caught.value) == f"PresignedUrlConfig.RoleArn {role_arn!r} {WILDCARD_RULE}"


@pytest.mark.parametrize(
    "document",
    [
        json.dumps({"url": placeholder(f"https://s3.amazonaws.com/bucket/{SECRET}/*")}),
        json.dumps({"url": placeholder(f"https://s3.amazonaws.com/bucket/{SECRET}?v=1")}),
        json.dumps({"old": "${aws:iot:s3-presigned-url:https://s3.amazonaws.com/b*/" + SECRET + "}"}),
        '{"url":"${aws:iot:s3-presigned-url-v2:https://s3.amazonaws.com/bucket/' + SECRET + '\\u003f}"}',
    ],
    ids=["star", "question", "v1-bucket", "json-escape"],
)
def test_provider_refuses_a_document_placeholder_with_a_wildcard_without_quoting_it(document: str) -> None:
    with pytest.raises(schema.InvalidPropertyError) as caught:
        deploy(Document=document)
    message = str(caught.value)
    assert message == f"Document must not contain a {PLACEHOLDER_RULE}: it would become an IAM wildcard"
    assert SECRET not in message


def test_provider_accepts_wildcards_outside_placeholders_and_clean_placeholders() -> None:
    document = json.dumps({"glob": "logs/*.txt?", "url": placeholder("https://s3.amazonaws.com/bucket/fw/2.4.1.bin")})
    assert deploy(Document=document)["Document"] == document
    assert deploy(DocumentSource="https://s3.amazonaws.com/bucket/jobs/reboot.json")


def test_synth_and_deploy_agree_on_a_literal_document(scratch: Callable[[str], Stack]) -> None:
    document = json.dumps({"url": placeholder("https://s3.amazonaws.com/bucket/fw/*.bin")})
    with pytest.raises(schema.InvalidPropertyError) as at_synth:
        IotJob(scratch("Agree"), "Job", targets=[GROUP_ARN], document=document)
    with pytest.raises(schema.InvalidPropertyError) as at_deploy:
        deploy(Document=document)
    assert str(at_synth.value) == str(at_deploy.value)


# ---------------------------------------------------------------------------
# Ownership tags in IAM
# ---------------------------------------------------------------------------


def test_every_job_the_provider_creates_carries_the_conditioned_tag() -> None:
    owner = Owner("arn:aws:cloudformation:us-east-1:123456789012:stack/s/1", "Job", "req-1")
    assert STACK_TAG in owner.tags("fingerprint")
    assert STACK_TAG in owner.tags("fingerprint", replaces="old-job")


@pytest.mark.parametrize("stack", ["TrustJobs", "TrustProviderOptions", "TrustProviderBare"])
def test_create_job_on_jobs_requires_the_ownership_tag_in_the_request(synthesized: Synthesized, stack: str) -> None:
    on_jobs = [
        statement
        for statement in synthesized.statements_with(stack, "iot:CreateJob")
        if any(text(resource).endswith(":job/*") for resource in as_list(statement["Resource"]))
    ]
    assert len(on_jobs) == 1, on_jobs
    statement = on_jobs[0]
    assert as_list(statement["Action"]) == ["iot:CreateJob"]
    assert [text(resource)[-6:] for resource in as_list(statement["Resource"])] == [":job/*"]
    assert statement["Condition"] == REQUEST_CARRIES_OWNERSHIP_TAG


@pytest.mark.parametrize("stack", ["TrustJobs", "TrustProviderOptions", "TrustProviderBare"])
def test_jobs_are_changed_or_removed_only_while_they_carry_the_ownership_tag(
    synthesized: Synthesized, stack: str
) -> None:
    granted: set[str] = set()
    for statement in synthesized.statements(stack):
        actions = set(as_list(statement["Action"]))
        if actions & OWNED_JOB_ACTIONS:
            assert actions <= OWNED_JOB_ACTIONS, statement
            assert statement["Condition"] == JOB_CARRIES_OWNERSHIP_TAG, statement
            assert all(text(resource).endswith(":job/*") for resource in as_list(statement["Resource"]))
            granted |= actions
    assert granted == OWNED_JOB_ACTIONS


@pytest.mark.parametrize("stack", ["TrustJobs", "TrustProviderBare"])
def test_reads_tagging_and_targets_stay_unconditioned(synthesized: Synthesized, stack: str) -> None:
    # TagResource also authorizes CreateJob's tags, on a job that does not exist yet (no aws:ResourceTag),
    # and later carries only user tags (no aws:RequestTag for the ownership key); reads tell a foreign job apart.
    for action in ("iot:TagResource", "iot:DescribeJob", "iot:ListTagsForResource"):
        statements = synthesized.statements_with(stack, action)
        assert statements, action
        for statement in statements:
            assert "Condition" not in statement, statement
            assert all(text(resource).endswith(":job/*") for resource in as_list(statement["Resource"]))
    targets = [
        statement
        for statement in synthesized.statements_with(stack, "iot:CreateJob")
        if "Condition" not in statement and any(":thing" in text(r) for r in as_list(statement["Resource"]))
    ]
    assert {
        text(resource).rsplit(":", 1)[1] for statement in targets for resource in as_list(statement["Resource"])
    } == {
        "thing/*",
        "thinggroup/*",
    }


def test_only_the_job_statements_carry_conditions_besides_pass_role(synthesized: Synthesized) -> None:
    for stack in synthesized.templates:
        for statement in synthesized.statements(stack):
            if "Condition" not in statement:
                continue
            actions = set(as_list(statement["Action"]))
            assert actions == {"iot:CreateJob"} or actions <= OWNED_JOB_ACTIONS or actions == {"iam:PassRole"}, (
                statement
            )


# ---------------------------------------------------------------------------
# IotJobProviderStack's options
# ---------------------------------------------------------------------------


def test_document_source_buckets_grant_get_object_on_exactly_bucket_and_prefix(synthesized: Synthesized) -> None:
    resources = [
        text(resource)
        for statement in synthesized.statements_with("TrustProviderOptions", "s3:GetObject")
        for resource in as_list(statement["Resource"])
    ]
    assert sorted(resources) == [
        "arn:<AWS::Partition>:s3:::firmware-jobs/documents/*",
        "arn:<AWS::Partition>:s3:::reboot-jobs/*",
    ]
    for statement in synthesized.statements_with("TrustProviderOptions", "s3:GetObject"):
        assert as_list(statement["Action"]) == ["s3:GetObject"] and "Condition" not in statement


def test_document_source_key_arns_grant_decrypt_on_exactly_those_keys(synthesized: Synthesized) -> None:
    statements = synthesized.statements_with("TrustProviderOptions", "kms:Decrypt")
    assert [(as_list(s["Action"]), as_list(s["Resource"])) for s in statements] == [(["kms:Decrypt"], [KEY_ARN])]


def test_job_templates_and_package_versions_may_be_used_by_create_job(synthesized: Synthesized) -> None:
    resources = {
        text(resource)
        for statement in synthesized.statements_with("TrustProviderOptions", "iot:CreateJob")
        for resource in as_list(statement["Resource"])
    }
    assert {
        TEMPLATE_ARN,
        "arn:<AWS::Partition>:iot:<AWS::Region>::jobtemplate/AWS-Reboot:1.0",
        PACKAGE_VERSION_ARN,
    } <= resources


def test_pass_role_arns_still_grant_pass_role_to_iot_only(synthesized: Synthesized) -> None:
    statements = synthesized.statements_with("TrustProviderOptions", "iam:PassRole")
    assert statements == [
        {
            "Action": "iam:PassRole",
            "Condition": {"StringEquals": {"iam:PassedToService": "iot.amazonaws.com"}},
            "Effect": "Allow",
            "Resource": ROLE_ARN,
        }
    ]


def test_a_bare_provider_stack_grants_no_documents_templates_or_keys(synthesized: Synthesized) -> None:
    for action in ("s3:GetObject", "kms:Decrypt", "iam:PassRole"):
        assert synthesized.statements_with("TrustProviderBare", action) == [], action
    resources = {
        text(resource).rsplit(":", 1)[1]
        for statement in synthesized.statements_with("TrustProviderBare", "iot:CreateJob")
        for resource in as_list(statement["Resource"])
    }
    assert resources == {"job/*", "thing/*", "thinggroup/*"}


# Every stack of the provider's region and account, literal or pseudo parameters.
STACKS_ARN = r"arn:<AWS::Partition>:cloudformation:(<AWS::Region>|[a-z0-9-]+):(<AWS::AccountId>|[0-9]{12}):stack/\*/\*"


def test_iam_wildcards_in_the_provider_stacks_are_only_the_intended_ones(synthesized: Synthesized) -> None:
    for stack in ("TrustProviderOptions", "TrustProviderBare"):
        for statement in synthesized.statements(stack):
            if set(as_list(statement["Action"])) == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}:
                continue  # the tracing policy's "*", acknowledged and tested in test_nag.py
            if as_list(statement["Action"]) == ["cloudformation:DescribeStacks"]:
                # The gates of any stack the exported provider serves, acknowledged and tested in test_nag.py.
                for resource in as_list(statement["Resource"]):
                    assert re.fullmatch(STACKS_ARN, text(resource))
                continue
            for resource in as_list(statement["Resource"]):
                value = text(resource)
                if "*" in value or "?" in value:
                    assert "?" not in value and value.count("*") == 1 and value.endswith("*"), value
                    assert value.endswith(("job/*", "thing/*", "thinggroup/*", "documents/*", "reboot-jobs/*")), value


def test_cdk_nag_finds_nothing_unacknowledged(synthesized: Synthesized) -> None:
    findings = [
        (violation["ruleName"], construct["constructPath"])
        for plugin in synthesized.report["pluginReports"]
        for violation in plugin.get("violations") or []
        for construct in violation["violatingConstructs"]
    ]
    assert findings == []


def test_the_document_prefix_acknowledgement_names_only_those_prefixes(synthesized: Synthesized) -> None:
    acknowledged = {
        re.sub(r"^annotation::", "", rule_id, flags=re.IGNORECASE)
        for construct in synthesized.providers["TrustProviderOptions"].role.node.find_all()
        for entry in construct.node.metadata
        if entry.type == "aws:cdk:acknowledged-rules"
        for rule_id in entry.data
    }
    s3_ids = {rule_id for rule_id in acknowledged if ":s3:::" in rule_id}
    assert s3_ids == {
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::firmware-jobs/documents/*]",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::reboot-jobs/*]",
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"document_source_buckets": ["firmware-*"]}, f"document_source_buckets[0] 'firmware-*' {WILDCARD_RULE}"),
        (
            {"document_source_buckets": ["ok-bucket", "fw/docs?/"]},
            f"document_source_buckets[1] 'fw/docs?/' {WILDCARD_RULE}",
        ),
        ({"document_source_buckets": ["Not_A_Bucket"]}, "document_source_buckets[0] 'Not_A_Bucket' must be a bucket"),
        ({"document_source_buckets": "firmware"}, "document_source_buckets must be a list, not str"),
        ({"document_source_key_arns": [KEY_ARN[:-4] + "*"]}, f"document_source_key_arns[0] {KEY_ARN[:-4] + '*'!r}"),
        (
            {"document_source_key_arns": [f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/fw"]},
            "document_source_key_arns[0] 'arn:aws:kms:us-east-1:123456789012:alias/fw' must be a KMS key ARN",
        ),
        (
            {"job_template_arns": [f"arn:aws:iot:{REGION}:{ACCOUNT}:jobtemplate/*"]},
            f"job_template_arns[0] 'arn:aws:iot:{REGION}:{ACCOUNT}:jobtemplate/*' {WILDCARD_RULE}",
        ),
        ({"job_template_arns": [PACKAGE_VERSION_ARN]}, "job_template_arns[0] "),
        ({"job_template_arns": [42]}, "job_template_arns[0] must be a str or JobTemplate, not int"),
        (
            {"package_version_arns": [f"arn:aws:iot:{REGION}:{ACCOUNT}:package/fw/version/?"]},
            f"package_version_arns[0] 'arn:aws:iot:{REGION}:{ACCOUNT}:package/fw/version/?' {WILDCARD_RULE}",
        ),
        ({"package_version_arns": [TEMPLATE_ARN]}, "package_version_arns[0] "),
        ({"pass_role_arns": [f"arn:aws:iam::{ACCOUNT}:role/*"]}, f"pass_role_arns[0] 'arn:aws:iam::{ACCOUNT}:role/*'"),
        ({"pass_role_arns": [KEY_ARN]}, "pass_role_arns[0] "),
    ],
    ids=[
        "bucket-star",
        "prefix-question",
        "bucket-name",
        "buckets-not-a-list",
        "key-star",
        "key-alias",
        "template-star",
        "template-not-a-template",
        "template-type",
        "package-question",
        "package-not-a-package",
        "role-star",
        "role-not-a-role",
    ],
)
def test_provider_stack_options_are_validated_naming_the_option(options: dict[str, Any], message: str) -> None:
    app = App()
    with pytest.raises(schema.InvalidPropertyError) as caught:
        IotJobProviderStack(app, "Refused", **options)
    assert str(caught.value).startswith(message), str(caught.value)
    # Refused before the stack joined the app.
    assert app.node.try_find_child("Refused") is None


def test_provider_stack_options_take_tokens_as_given() -> None:
    app = App()
    source = Stack(app, "Source")
    bucket = s3.Bucket(source, "Documents")
    stack = IotJobProviderStack(
        app,
        "Tokens",
        document_source_buckets=[bucket.bucket_name, f"{bucket.bucket_name}/jobs/"],
        job_template_arns=[JobTemplate.managed("AWS-Reboot")],
    )
    statements = stack.resolve(stack.provider.role.node.find_child("DefaultPolicy").document.to_json())["Statement"]
    resources = [
        json.dumps(resource)
        for statement in statements
        if statement["Action"] == "s3:GetObject"
        for resource in as_list(statement["Resource"])
    ]
    assert len(resources) == 2, resources
    assert resources[0].endswith('"/*"]]}') and resources[1].endswith('"/jobs/*"]]}'), resources
