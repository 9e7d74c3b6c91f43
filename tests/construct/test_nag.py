"""cdk-nag: the AwsSolutions and Serverless packs find nothing the construct has not fixed or acknowledged.

The packs run as CDK validation plugins (cdk-nag 3: ``Validations.of(app)
.add_plugins(...)``) on the gate stacks (``gate_stacks.py``: every prop
combination that changes resources, and the provider-only stack). The app is
synthesized once per module; a failed synth is kept, and the tests read the
findings from ``validation-report.json`` so that a failure lists them.

A canary stack, checked with the packs directly (``validate_scope``), shows
that the construct's acknowledgements are no wider than stated: an ``iot:*``
action, a ``Resource: *`` in the provider's policy, a log group without
retention, or another function of the app are still reported.
"""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from cdk_nag import AwsSolutionsChecks, NagPack, ServerlessChecks
from constructs import IConstruct
from gate_stacks import ACCOUNT, GROUP_ARN, REGION, JobsStack, build_jobs_stack, build_provider_stack

from cdk_iot_job import IotJob
from cdk_iot_job.provider import IotJobProvider

OPERATIONS_DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
ACKNOWLEDGED = "aws:cdk:acknowledged-rules"
# The provider's ARNs as cdk-nag spells them in an env-agnostic stack.
STACK_ARN = "arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>"
STACKS_ARN = "arn:<AWS::Partition>:cloudformation:<AWS::Region>:<AWS::AccountId>:stack/*/*"
PROVIDER_ACKNOWLEDGEMENTS = {
    # (construct below the provider, rule id)
    ("Role", f"AwsSolutions-IAM5[Resource::{STACK_ARN}:job/*]"),
    ("Role", f"AwsSolutions-IAM5[Resource::{STACK_ARN}:thing/*]"),
    ("Role", f"AwsSolutions-IAM5[Resource::{STACK_ARN}:thinggroup/*]"),
    ("TracingPolicy", "AwsSolutions-IAM5[Resource::*]"),
    ("Function", "Serverless-LambdaDLQ"),
    ("Function", "Serverless-LambdaAsyncFailureDestination"),
}
# A gated job whose targets are a list token: its thing groups are known only at deploy time.
GATE_THING_GROUPS_ACKNOWLEDGEMENT = ("GatePolicy", f"AwsSolutions-IAM5[Resource::{STACK_ARN}:thinggroup/*]")
# The exported provider serves the gates of any stack (and any thing group) of its account and region.
EXPORTED_PROVIDER_ACKNOWLEDGEMENTS = {
    *PROVIDER_ACKNOWLEDGEMENTS,
    GATE_THING_GROUPS_ACKNOWLEDGEMENT,
    ("GatePolicy", f"AwsSolutions-IAM5[Resource::{STACKS_ARN}]"),
}


# ---------------------------------------------------------------------------
# The gate app, synthesized with both packs
# ---------------------------------------------------------------------------


@dataclass
class Finding:
    """One violation (or acknowledged violation) of validation-report.json, on one construct."""

    plugin: str
    rule: str
    severity: str
    path: str
    description: str
    acknowledged_at: str | None = None

    def __str__(self) -> str:
        return f"[{self.severity}] {self.rule} ({self.plugin}) at {self.path}: {self.description}"


@dataclass
class Synth:
    app: App
    jobs: JobsStack
    provider_stack: Stack
    report_path: Path
    report: dict[str, Any]
    error: str | None

    def findings(self, *, acknowledged: bool = False) -> list[Finding]:
        key = "suppressedViolations" if acknowledged else "violations"
        return [
            Finding(
                plugin=plugin["pluginName"],
                rule=violation["ruleName"],
                severity=violation["severity"],
                path=construct["constructPath"],
                description=violation.get("description", ""),
                acknowledged_at=violation.get("acknowledgedAt"),
            )
            for plugin in self.report["pluginReports"]
            for violation in plugin.get(key) or []
            for construct in violation["violatingConstructs"]
        ]

    def listing(self) -> str:
        findings = self.findings()
        lines = [str(finding) for finding in findings] or ["(no violations in the report)"]
        return "\n".join([f"{len(findings)} finding(s) in {self.report_path}:", *lines])


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    outdir = tmp_path_factory.mktemp("nag.out")
    app = App(outdir=str(outdir))
    jobs = build_jobs_stack(app, "NagJobs")
    provider_stack = build_provider_stack(app, "NagProvider")
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    error = None
    try:
        app.synth()
    except RuntimeError as failure:  # ValidationFailed: the findings are in the report
        error = str(failure)
    report_path = outdir / "validation-report.json"
    assert report_path.is_file(), f"synth wrote no validation report: {error}"
    report = json.loads(report_path.read_text())
    return Synth(app, jobs, provider_stack, report_path, report, error)


def acknowledgements(scope: IConstruct) -> Iterator[tuple[str, str, str]]:
    """(construct path, rule id, reason) of every acknowledgement in ``scope``'s tree."""
    for construct in scope.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == ACKNOWLEDGED:
                for rule_id, reason in entry.data.items():
                    # Plain ids are recorded under the annotation prefix; cdk-nag strips it.
                    yield construct.node.path, re.sub(r"^annotation::", "", rule_id, flags=re.IGNORECASE), reason


def env_agnostic(rule_id: str) -> str:
    """The id as an env-agnostic stack spells it (the provider stack's account and region are literal)."""
    for service in ("iot", "cloudformation"):
        rule_id = rule_id.replace(f":{service}:{REGION}:{ACCOUNT}:", f":{service}:<AWS::Region>:<AWS::AccountId>:")
    return rule_id


def readme_section(title: str) -> str:
    text = OPERATIONS_DOC.read_text()
    start = text.index(f"## {title}\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def providers(synth: Synth) -> list[IotJobProvider]:
    return [IotJobProvider.of(synth.jobs.stack), IotJobProvider.of(synth.provider_stack)]


# ---------------------------------------------------------------------------
# The gate
# ---------------------------------------------------------------------------


def test_gate_stack_covers_the_resource_changing_props(synth: Synth) -> None:
    jobs = synth.jobs.jobs
    # a generated presigned-URL role, for an inline document and for a document file
    assert jobs["GeneratedRole"].presigned_url_role is not None
    assert jobs["DocumentAsset"].presigned_url_role is not None
    # a given one, passed by the provider
    assert jobs["GivenRole"].presigned_url_role is None
    # the rest are there, each changing the provider's grants or the stack
    assert {"DocumentInKmsBucket", "Tagged", "ManagedTemplate", "CustomerTemplate", "Packaged"} <= set(jobs)
    # rollout gates, on known targets and on a list token (the gate's policy, every thing group)
    assert {"Gated", "GatedDeployTimeTargets"} <= set(jobs)
    assert all(provider.gate_policy is not None for provider in providers(synth))


def test_synth_with_both_packs_passes(synth: Synth) -> None:
    assert synth.error is None, f"{synth.error}\n{synth.listing()}"


def test_no_unacknowledged_error_or_warning_on_any_resource(synth: Synth) -> None:
    # Every severity counts: cdk-nag 3 reports its informational rules as warnings too.
    assert synth.findings() == [], synth.listing()


def test_provider_acknowledges_exactly_the_documented_findings_on_its_own_resources(synth: Synth) -> None:
    expected = [PROVIDER_ACKNOWLEDGEMENTS | {GATE_THING_GROUPS_ACKNOWLEDGEMENT}, EXPORTED_PROVIDER_ACKNOWLEDGEMENTS]
    for provider, acknowledged in zip(providers(synth), expected, strict=True):
        root = provider.node.path
        found = {
            (path.removeprefix(f"{root}/"), env_agnostic(rule_id)) for path, rule_id, _ in acknowledgements(provider)
        }
        assert found == acknowledged, root


def test_every_acknowledgement_has_a_specific_reason(synth: Synth) -> None:
    for provider in providers(synth):
        for path, rule_id, reason in acknowledgements(provider):
            assert len(reason) >= 150, (path, rule_id, reason)


def test_wildcard_acknowledgements_name_resources_never_actions(synth: Synth) -> None:
    for provider in providers(synth):
        for path, rule_id, _ in acknowledgements(provider):
            assert "Action::" not in rule_id, (path, rule_id)


def test_resource_star_is_acknowledged_only_on_a_policy_of_xray_writes(synth: Synth) -> None:
    for provider in providers(synth):
        document = provider.tracing_policy.document.to_json()
        actions = {action for statement in document["Statement"] for action in statement["Action"]}
        assert actions == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def test_jobs_and_presigned_url_roles_need_no_acknowledgement(synth: Synth) -> None:
    for job in synth.jobs.jobs.values():
        assert list(acknowledgements(job)) == [], job.node.path


def test_nothing_is_acknowledged_for_a_whole_stack_or_app(synth: Synth) -> None:
    for scope in (synth.app, synth.jobs.stack, synth.provider_stack):
        assert not [entry for entry in scope.node.metadata if entry.type == ACKNOWLEDGED], scope.node.path


def test_readme_lists_every_acknowledgement_with_its_reason(synth: Synth) -> None:
    section = readme_section("cdk-nag findings acknowledged")
    listed = set(re.findall(r"`((?:AwsSolutions|Serverless)-[A-Za-z0-9]+(?:\[[^`]*\])?)`", section))
    assert listed == {rule_id for _, rule_id in EXPORTED_PROVIDER_ACKNOWLEDGEMENTS}


# ---------------------------------------------------------------------------
# The canary: what the acknowledgements must not cover
# ---------------------------------------------------------------------------


@dataclass
class Canary:
    stack: Stack
    findings: set[tuple[str, str]]  # (rule id, construct path), unacknowledged


@pytest.fixture(scope="module")
def canary() -> Canary:
    stack = Stack(App(), "Canary")
    IotJob(stack, "Job", targets=[GROUP_ARN], document={"operation": "reboot"})
    provider = IotJobProvider.of(stack)
    job_arns = stack.format_arn(service="iot", resource="job", resource_name="*")
    # Someone widens the provider's policy ...
    provider.role.add_to_principal_policy(iam.PolicyStatement(actions=["iot:*"], resources=[job_arns]))
    provider.role.add_to_principal_policy(iam.PolicyStatement(actions=["iot:DescribeJob"], resources=["*"]))
    # ... drops the log group's retention ...
    cast(logs.CfnLogGroup, provider.log_group.node.default_child).retention_in_days = None
    # ... and the app has a function of its own.
    lambda_.Function(
        stack,
        "AppFunction",
        runtime=lambda_.Runtime.PYTHON_3_14,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return None\n"),
    )
    findings: set[tuple[str, str]] = set()
    packs: list[NagPack] = [AwsSolutionsChecks(), ServerlessChecks()]
    for pack in packs:
        for violation in pack.validate_scope(stack).violations:
            for resource in violation.violating_resources:
                findings.add((violation.rule_name, str(resource.construct_path)))
    return Canary(stack, findings)


def test_an_iot_star_action_on_the_provider_is_reported(canary: Canary) -> None:
    assert ("AwsSolutions-IAM5[Action::iot:*]", "Canary/CdkIotJobProvider/Role/DefaultPolicy/Resource") in (
        canary.findings
    )


def test_a_resource_star_in_the_provider_policy_is_reported(canary: Canary) -> None:
    assert ("AwsSolutions-IAM5[Resource::*]", "Canary/CdkIotJobProvider/Role/DefaultPolicy/Resource") in (
        canary.findings
    )


def test_a_log_group_without_retention_is_reported(canary: Canary) -> None:
    assert ("Serverless-CloudWatchLogGroupRetentionPeriod", "Canary/CdkIotJobProvider/LogGroup/Resource") in (
        canary.findings
    )


def test_the_provider_acknowledgements_do_not_reach_the_apps_other_functions(canary: Canary) -> None:
    assert ("Serverless-LambdaDLQ", "Canary/AppFunction/Resource") in canary.findings
    assert ("Serverless-LambdaDLQ", "Canary/CdkIotJobProvider/Function/Resource") not in canary.findings


def test_the_canary_reports_nothing_else_on_the_provider(canary: Canary) -> None:
    on_provider = {rule for rule, path in canary.findings if path.startswith("Canary/CdkIotJobProvider/")}
    assert on_provider == {
        "AwsSolutions-IAM5[Action::iot:*]",
        "AwsSolutions-IAM5[Resource::*]",
        "Serverless-CloudWatchLogGroupRetentionPeriod",
    }
