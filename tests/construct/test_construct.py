"""The IotJob construct as a CDK user and a CloudFormation reader see it.

The stacks are built and synthesized once per module (jsii and synth are
slow); each test then reads one behaviour off the templates.
"""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Annotations, Match, Template

from cdk_iot_job import (
    AbortConfig,
    AbortCriteria,
    DeleteBehavior,
    ExponentialRolloutRate,
    IotJob,
    JobEndBehavior,
    JobExecutionFailureType,
    JobExecutionsRetryConfig,
    JobExecutionsRolloutConfig,
    MaintenanceWindow,
    PresignedUrlConfig,
    RateIncreaseCriteria,
    RetryableFailureType,
    RetryCriteria,
    SchedulingConfig,
    TargetSelection,
    TimeoutConfig,
)
from cdk_iot_job_provider import schema

REPO = Path(__file__).resolve().parents[2]
HANDLER_SOURCE = REPO / "lambda" / "cdk_iot_job_provider"

THING_ARN = "arn:aws:iot:eu-west-1:123456789012:thing/sensor-001"
GROUP_ARN = "arn:aws:iot:eu-west-1:123456789012:thinggroup/sensors"
URL_ROLE_ARN = "arn:aws:iam::123456789012:role/firmware-download"
PACKAGE_VERSION_ARN = "arn:aws:iot:eu-west-1:123456789012:package/firmware/version/2.4.1"
MANAGED_TEMPLATE_ARN = "arn:aws:iot:eu-west-1::jobtemplate/AWS-Run-Command:1.0"
S3_DOCUMENT_URL = "https://s3.amazonaws.com/firmware-bucket/jobs/reboot.json"

CUSTOM_TYPE = "Custom::IotJob"
# Schedules must start 30 minutes to a year ahead of synth time.
_IN_TEN_DAYS = datetime.now(UTC) + timedelta(days=10)
SCHEDULE_START = datetime(
    _IN_TEN_DAYS.year, _IN_TEN_DAYS.month, _IN_TEN_DAYS.day, 14, 30, 45, tzinfo=timezone(timedelta(hours=2))
)
SCHEDULE_END = datetime(_IN_TEN_DAYS.year, _IN_TEN_DAYS.month, _IN_TEN_DAYS.day, 12, 0) + timedelta(days=7)
IOT_JOB_TYPES = ("job", "thing", "thinggroup")
STACK_IOT_ARNS = {
    f"arn:${{AWS::Partition}}:iot:${{AWS::Region}}:${{AWS::AccountId}}:{kind}/*" for kind in IOT_JOB_TYPES
}


# ---------------------------------------------------------------------------
# The stacks under test
# ---------------------------------------------------------------------------


@dataclass
class Synthesized:
    stack: Stack
    template: Template
    jobs: dict[str, IotJob]

    def logical_id(self, name: str) -> str:
        return logical_id_of(self.jobs[name])

    def properties(self, name: str) -> dict[str, Any]:
        resources = self.template.find_resources(CUSTOM_TYPE)
        return resources[self.logical_id(name)]["Properties"]

    def resource(self, name: str) -> dict[str, Any]:
        return self.template.find_resources(CUSTOM_TYPE)[self.logical_id(name)]


def logical_id_of(job: IotJob) -> str:
    cfn_resource = job.node.default_child.node.default_child
    return Stack.of(job).get_logical_id(cfn_resource)


def build_everything_stack(app: App) -> tuple[Stack, dict[str, IotJob]]:
    """Every property once, plus the other argument forms."""
    stack = Stack(app, "Everything")
    jobs = {
        "Full": IotJob(
            stack,
            "Full",
            job_id="firmware-2-4-1",
            targets=[THING_ARN, GROUP_ARN],
            document={"version": "2.4.1", "operation": "firmware-update", "nested": {"b": 1, "a": [1, 2]}},
            description="Sensor firmware 2.4.1",
            target_selection=TargetSelection.CONTINUOUS,
            presigned_url_config=PresignedUrlConfig(role_arn=URL_ROLE_ARN, expires_in_sec=300),
            job_executions_rollout_config=JobExecutionsRolloutConfig(
                exponential_rate=ExponentialRolloutRate(
                    base_rate_per_minute=5,
                    increment_factor=1.5,
                    rate_increase_criteria=RateIncreaseCriteria(
                        number_of_notified_things=20, number_of_succeeded_things=10
                    ),
                )
            ),
            abort_config=AbortConfig(
                criteria_list=[
                    AbortCriteria(
                        failure_type=JobExecutionFailureType.FAILED,
                        threshold_percentage=12.5,
                        min_number_of_executed_things=20,
                    ),
                    AbortCriteria(failure_type="TIMED_OUT", threshold_percentage=50, min_number_of_executed_things=5),
                ]
            ),
            timeout_config=TimeoutConfig(in_progress_timeout_in_minutes=60),
            job_executions_retry_config=JobExecutionsRetryConfig(
                criteria_list=[
                    RetryCriteria(failure_type=RetryableFailureType.FAILED, number_of_retries=3),
                    RetryCriteria(failure_type=RetryableFailureType.TIMED_OUT, number_of_retries=1),
                ]
            ),
            scheduling_config=SchedulingConfig(
                start_time=SCHEDULE_START,
                end_time=SCHEDULE_END.strftime("%Y-%m-%dT%H:%M"),
                end_behavior=JobEndBehavior.CANCEL,
                maintenance_windows=[
                    MaintenanceWindow(start_time="cron(0 22 ? * SAT *)", duration_in_minutes=120),
                ],
            ),
            destination_package_versions=[PACKAGE_VERSION_ARN],
            namespace_id="fleet-ns",
            tags={"team": "firmware", "cost-center": "42", "Owner": "ops"},
            delete_behavior=DeleteBehavior.CANCEL,
            removal_policy=RemovalPolicy.RETAIN,
        ),
        "Staged": IotJob(
            stack,
            "Staged",
            targets=[GROUP_ARN],
            document='{"operation": "reboot",  "delay": 5}',
            job_executions_rollout_config=JobExecutionsRolloutConfig(maximum_per_minute=50),
            delete_behavior=DeleteBehavior.DELETE,
        ),
        "Sourced": IotJob(stack, "Sourced", targets=[THING_ARN], document_source=S3_DOCUMENT_URL),
        "Templated": IotJob(
            stack,
            "Templated",
            targets=[THING_ARN],
            job_template_arn=MANAGED_TEMPLATE_ARN,
            document_parameters={"command": "reboot", "runAsUser": "root"},
        ),
    }
    return stack, jobs


def build_plain_stack(app: App) -> tuple[Stack, dict[str, IotJob]]:
    """A second stack, with no pre-signed URL role anywhere."""
    stack = Stack(app, "Plain")
    jobs = {
        "Reboot": IotJob(stack, "Reboot", targets=[THING_ARN], document={"operation": "reboot"}),
        "Rollout": IotJob(
            stack,
            "Rollout",
            targets=[GROUP_ARN],
            document={"operation": "update"},
            presigned_url_config=PresignedUrlConfig(expires_in_sec=600),
        ),
    }
    return stack, jobs


def build_tokens_stack(app: App) -> tuple[Stack, dict[str, IotJob]]:
    """Targets and the pre-signed URL role as tokens; the job's attributes as outputs."""
    stack = Stack(app, "Tokens")
    fleet = iot.CfnThingGroup(stack, "Fleet", thing_group_name="sensors")
    url_role = iam.Role(stack, "UrlRole", assumed_by=iam.ServicePrincipal("iot.amazonaws.com"))
    job = IotJob(
        stack,
        "Rollout",
        targets=[fleet.attr_arn],
        document={"operation": "update"},
        presigned_url_config=PresignedUrlConfig(role_arn=url_role.role_arn),
    )
    CfnOutput(stack, "RolloutJobId", value=job.job_id)
    CfnOutput(stack, "RolloutJobArn", value=job.job_arn)
    return stack, {"Rollout": job}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> App:
    return App(outdir=str(tmp_path_factory.mktemp("cdk.out")))


@pytest.fixture(scope="module")
def stacks(app: App) -> dict[str, Synthesized]:
    built = {
        "Everything": build_everything_stack(app),
        "Plain": build_plain_stack(app),
        "Tokens": build_tokens_stack(app),
    }
    return {
        name: Synthesized(stack=stack, template=Template.from_stack(stack), jobs=jobs)
        for name, (stack, jobs) in built.items()
    }


@pytest.fixture(scope="module")
def everything(stacks: dict[str, Synthesized]) -> Synthesized:
    return stacks["Everything"]


@pytest.fixture(scope="module")
def plain(stacks: dict[str, Synthesized]) -> Synthesized:
    return stacks["Plain"]


@pytest.fixture(scope="module")
def tokens(stacks: dict[str, Synthesized]) -> Synthesized:
    return stacks["Tokens"]


# ---------------------------------------------------------------------------
# Template helpers
# ---------------------------------------------------------------------------


def single(resources: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    assert len(resources) == 1, resources
    return next(iter(resources.items()))


def provider_function(template: Template) -> tuple[str, dict[str, Any]]:
    return single(template.find_resources("AWS::Lambda::Function"))


def provider_role_id(template: Template) -> str:
    _, function = provider_function(template)
    role = function["Properties"]["Role"]
    assert set(role) == {"Fn::GetAtt"} and role["Fn::GetAtt"][1] == "Arn", role
    return role["Fn::GetAtt"][0]


def provider_statements(template: Template) -> list[dict[str, Any]]:
    """Every policy statement granted to the provider's role, inline or attached."""
    role_id = provider_role_id(template)
    role = template.find_resources("AWS::IAM::Role")[role_id]
    statements = [
        statement
        for policy in role["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"].get("Roles", []):
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    assert statements, "the provider role has no policy statements"
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def actions_of(statement: dict[str, Any]) -> list[str]:
    return as_list(statement.get("Action", []))


def is_iot_statement(statement: dict[str, Any]) -> bool:
    return any(action.lower().startswith("iot:") for action in actions_of(statement))


def arn_text(resource: Any) -> str:
    """A literal ARN, or a Fn::Join of literals and pseudo parameters as ``${AWS::X}`` text."""
    if isinstance(resource, str):
        return resource
    if set(resource) == {"Fn::Join"}:
        separator, parts = resource["Fn::Join"]
        return separator.join(arn_text(part) for part in parts)
    if set(resource) == {"Ref"} and resource["Ref"].startswith("AWS::"):
        return f"${{{resource['Ref']}}}"
    raise AssertionError(f"unexpected resource expression {resource!r}")


def pass_role_statements(template: Template) -> list[dict[str, Any]]:
    return [s for s in provider_statements(template) if "iam:PassRole" in actions_of(s)]


def assert_properties_follow_schema(value: Any, spec: schema.Field, path: str) -> None:
    if spec.kind == "object":
        assert isinstance(value, dict), path
        for name, item in value.items():
            assert name in spec.fields, f"{path}.{name} is not in the schema"
            assert_properties_follow_schema(item, spec.fields[name], f"{path}.{name}")
    elif spec.kind == "list" and isinstance(value, list):
        assert spec.items is not None
        for index, item in enumerate(value):
            assert_properties_follow_schema(item, spec.items, f"{path}[{index}]")


def python_version_of(runtime: lambda_.Runtime) -> tuple[int, ...]:
    match = re.fullmatch(r"python(\d+)\.(\d+)", runtime.name)
    assert match, runtime.name
    return tuple(int(part) for part in match.groups())


def newest_python_runtime() -> lambda_.Runtime:
    runtimes = [getattr(lambda_.Runtime, name) for name in dir(lambda_.Runtime) if name.startswith("PYTHON_3_")]
    return max(runtimes, key=python_version_of)


# ---------------------------------------------------------------------------
# Property names and values
# ---------------------------------------------------------------------------


def test_resource_type_is_custom_iot_job(everything: Synthesized) -> None:
    everything.template.resource_count_is(CUSTOM_TYPE, len(everything.jobs))


def test_every_rendered_property_is_a_schema_property_or_a_framework_property(
    stacks: dict[str, Synthesized],
) -> None:
    for synthesized in stacks.values():
        for logical_id, resource in synthesized.template.find_resources(CUSTOM_TYPE).items():
            properties = dict(resource["Properties"])
            assert set(properties) <= set(schema.PROPERTIES) | {"ServiceToken", "ServiceTimeout"}, logical_id
            for name in ("ServiceToken", "ServiceTimeout"):
                properties.pop(name, None)
            root = schema.Field("object", fields=schema.PROPERTIES)
            assert_properties_follow_schema(properties, root, logical_id)


def test_every_prop_renders_under_its_aws_iot_job_name(everything: Synthesized) -> None:
    assert set(everything.properties("Full")) == {
        "ServiceToken",
        "ServiceTimeout",
        "JobId",
        "Targets",
        "Document",
        "Description",
        "TargetSelection",
        "PresignedUrlConfig",
        "JobExecutionsRolloutConfig",
        "AbortConfig",
        "TimeoutConfig",
        "JobExecutionsRetryConfig",
        "SchedulingConfig",
        "DestinationPackageVersions",
        "NamespaceId",
        "Tags",
        "DeleteBehavior",
    }


def test_scalar_props_render_their_values(everything: Synthesized) -> None:
    properties = everything.properties("Full")
    assert properties["JobId"] == "firmware-2-4-1"
    assert properties["Targets"] == [THING_ARN, GROUP_ARN]
    assert properties["Description"] == "Sensor firmware 2.4.1"
    assert properties["DestinationPackageVersions"] == [PACKAGE_VERSION_ARN]
    assert properties["NamespaceId"] == "fleet-ns"


def test_target_selection_continuous_renders_as_continuous(everything: Synthesized) -> None:
    assert everything.properties("Full")["TargetSelection"] == "CONTINUOUS"


def test_dict_document_renders_as_compact_json_with_sorted_keys(everything: Synthesized) -> None:
    assert everything.properties("Full")["Document"] == (
        '{"nested":{"a":[1,2],"b":1},"operation":"firmware-update","version":"2.4.1"}'
    )


def test_string_document_is_passed_through_unchanged(everything: Synthesized) -> None:
    assert everything.properties("Staged")["Document"] == '{"operation": "reboot",  "delay": 5}'


def test_document_source_renders_without_a_document(everything: Synthesized) -> None:
    properties = everything.properties("Sourced")
    assert properties["DocumentSource"] == S3_DOCUMENT_URL
    assert "Document" not in properties


def test_job_template_renders_with_its_document_parameters(everything: Synthesized) -> None:
    everything.template.has_resource_properties(
        CUSTOM_TYPE,
        {
            "JobTemplateArn": MANAGED_TEMPLATE_ARN,
            "DocumentParameters": Match.object_equals({"command": "reboot", "runAsUser": "root"}),
            "Document": Match.absent(),
            "DocumentSource": Match.absent(),
        },
    )


def test_presigned_url_config_renders_role_arn_and_expiry(everything: Synthesized) -> None:
    assert everything.properties("Full")["PresignedUrlConfig"] == {"RoleArn": URL_ROLE_ARN, "ExpiresInSec": 300}


def test_maximum_per_minute_renders_inside_rollout_config(everything: Synthesized) -> None:
    assert everything.properties("Staged")["JobExecutionsRolloutConfig"] == {"MaximumPerMinute": 50}


def test_exponential_rate_renders_with_nested_rate_increase_criteria(everything: Synthesized) -> None:
    assert everything.properties("Full")["JobExecutionsRolloutConfig"] == {
        "ExponentialRate": {
            "BaseRatePerMinute": 5,
            "IncrementFactor": 1.5,
            "RateIncreaseCriteria": {"NumberOfNotifiedThings": 20, "NumberOfSucceededThings": 10},
        }
    }


def test_abort_config_renders_criteria_list_with_default_cancel_action(everything: Synthesized) -> None:
    assert everything.properties("Full")["AbortConfig"] == {
        "CriteriaList": [
            {"FailureType": "FAILED", "Action": "CANCEL", "ThresholdPercentage": 12.5, "MinNumberOfExecutedThings": 20},
            {"FailureType": "TIMED_OUT", "Action": "CANCEL", "ThresholdPercentage": 50, "MinNumberOfExecutedThings": 5},
        ]
    }


def test_timeout_config_renders_in_progress_timeout(everything: Synthesized) -> None:
    assert everything.properties("Full")["TimeoutConfig"] == {"InProgressTimeoutInMinutes": 60}


def test_retry_config_renders_criteria_list(everything: Synthesized) -> None:
    assert everything.properties("Full")["JobExecutionsRetryConfig"] == {
        "CriteriaList": [
            {"FailureType": "FAILED", "NumberOfRetries": 3},
            {"FailureType": "TIMED_OUT", "NumberOfRetries": 1},
        ]
    }


def test_scheduling_config_renders_datetime_in_utc_minutes_and_maintenance_windows(
    everything: Synthesized,
) -> None:
    # GIVEN start_time 14:30:45 at UTC+2 (ten days ahead) and end_time as IoT's string form
    # WHEN rendered
    # THEN the datetime is 12:30 UTC without seconds, the string passes through
    assert everything.properties("Full")["SchedulingConfig"] == {
        "StartTime": SCHEDULE_START.astimezone(UTC).strftime("%Y-%m-%dT12:30"),
        "EndTime": SCHEDULE_END.strftime("%Y-%m-%dT%H:%M"),
        "EndBehavior": "CANCEL",
        "MaintenanceWindows": [{"StartTime": "cron(0 22 ? * SAT *)", "DurationInMinutes": 120}],
    }


def test_tags_render_as_key_value_pairs_sorted_by_key(everything: Synthesized) -> None:
    # CDK's TagManager orders keys case-insensitively.
    assert everything.properties("Full")["Tags"] == [
        {"Key": "cost-center", "Value": "42"},
        {"Key": "Owner", "Value": "ops"},
        {"Key": "team", "Value": "firmware"},
    ]


def test_delete_behavior_cancel_renders_when_asked(everything: Synthesized) -> None:
    assert everything.properties("Full")["DeleteBehavior"] == "CANCEL"


@pytest.mark.parametrize("job", ["Staged", "Sourced"], ids=["explicit-delete", "default"])
def test_delete_behavior_is_absent_unless_cancel_is_asked(everything: Synthesized, job: str) -> None:
    assert "DeleteBehavior" not in everything.properties(job)


def test_unset_optional_props_are_absent(everything: Synthesized) -> None:
    assert set(everything.properties("Sourced")) == {"ServiceToken", "ServiceTimeout", "Targets", "DocumentSource"}


# ---------------------------------------------------------------------------
# ServiceTimeout, removal policy, attributes
# ---------------------------------------------------------------------------


def test_every_iot_job_has_a_service_timeout_between_the_lambda_timeout_and_one_hour(
    stacks: dict[str, Synthesized],
) -> None:
    for synthesized in stacks.values():
        _, function = provider_function(synthesized.template)
        lambda_timeout = int(function["Properties"]["Timeout"])
        for logical_id, resource in synthesized.template.find_resources(CUSTOM_TYPE).items():
            assert "ServiceTimeout" in resource["Properties"], logical_id
            service_timeout = int(resource["Properties"]["ServiceTimeout"])
            assert lambda_timeout <= service_timeout <= 3600, logical_id


def test_removal_policy_retain_keeps_the_job(everything: Synthesized) -> None:
    resource = everything.resource("Full")
    assert resource["DeletionPolicy"] == "Retain"
    assert resource["UpdateReplacePolicy"] == "Retain"


def test_default_removal_policy_deletes_the_job(everything: Synthesized) -> None:
    resource = everything.resource("Sourced")
    assert resource["DeletionPolicy"] == "Delete"
    assert resource["UpdateReplacePolicy"] == "Delete"


def test_primary_child_is_the_custom_resource_named_resource(everything: Synthesized) -> None:
    job = everything.jobs["Full"]
    assert job.node.default_child is job.node.find_child("Resource")
    assert job.node.default_child.node.id == "Resource"


def test_job_arn_is_the_ref_as_for_the_native_resource(tokens: Synthesized) -> None:
    job = tokens.jobs["Rollout"]
    assert tokens.stack.resolve(job.job_arn) == {"Ref": tokens.logical_id("Rollout")}


def test_generated_job_id_and_created_at_are_attributes(tokens: Synthesized) -> None:
    job = tokens.jobs["Rollout"]
    logical_id = tokens.logical_id("Rollout")
    assert tokens.stack.resolve(job.job_id) == {"Fn::GetAtt": [logical_id, "JobId"]}
    assert tokens.stack.resolve(job.created_at) == {"Fn::GetAtt": [logical_id, "CreatedAt"]}


def test_a_fixed_job_id_is_the_literal(everything: Synthesized) -> None:
    assert everything.jobs["Full"].job_id == "firmware-2-4-1"


def test_job_id_and_job_arn_work_as_output_values(tokens: Synthesized) -> None:
    logical_id = tokens.logical_id("Rollout")
    tokens.template.has_output("RolloutJobId", {"Value": {"Fn::GetAtt": [logical_id, "JobId"]}})
    tokens.template.has_output("RolloutJobArn", {"Value": {"Ref": logical_id}})


def test_token_targets_render_as_references_and_synth_without_errors(tokens: Synthesized) -> None:
    group_id, _ = single(tokens.template.find_resources("AWS::IoT::ThingGroup"))
    assert tokens.properties("Rollout")["Targets"] == [{"Fn::GetAtt": [group_id, "Arn"]}]
    Annotations.from_stack(tokens.stack).has_no_error("*", Match.any_value())


# ---------------------------------------------------------------------------
# The provider function
# ---------------------------------------------------------------------------


def test_iot_jobs_in_one_stack_share_one_provider_function(everything: Synthesized) -> None:
    everything.template.resource_count_is("AWS::Lambda::Function", 1)
    function_id, _ = provider_function(everything.template)
    for logical_id, resource in everything.template.find_resources(CUSTOM_TYPE).items():
        assert resource["Properties"]["ServiceToken"] == {"Fn::GetAtt": [function_id, "Arn"]}, logical_id


def test_each_stack_gets_its_own_provider_function(stacks: dict[str, Synthesized]) -> None:
    for synthesized in stacks.values():
        synthesized.template.resource_count_is("AWS::Lambda::Function", 1)
    function_paths = {
        job.provider.function.node.path for synthesized in stacks.values() for job in synthesized.jobs.values()
    }
    assert function_paths == {f"{name}/CdkIotJobProvider/Function" for name in stacks}


def test_provider_uses_the_newest_python_runtime_of_aws_cdk_lib(everything: Synthesized) -> None:
    newest = newest_python_runtime()
    everything.template.has_resource_properties("AWS::Lambda::Function", {"Runtime": newest.name})


def test_provider_handler_is_the_packaged_crhelper_handler(everything: Synthesized) -> None:
    everything.template.has_resource_properties(
        "AWS::Lambda::Function", {"Handler": "cdk_iot_job_provider.handler.handler"}
    )


def test_provider_logs_to_an_explicit_log_group_with_retention(everything: Synthesized) -> None:
    log_group_id, log_group = single(everything.template.find_resources("AWS::Logs::LogGroup"))
    assert log_group["Properties"]["RetentionInDays"] > 0
    everything.template.has_resource_properties(
        "AWS::Lambda::Function", {"LoggingConfig": {"LogGroup": {"Ref": log_group_id}}}
    )


def test_provider_function_is_never_retried_by_lambda(everything: Synthesized) -> None:
    # A retry after a timeout could create a job after CloudFormation rolled back.
    function_id, _ = provider_function(everything.template)
    everything.template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig", {"FunctionName": {"Ref": function_id}, "MaximumRetryAttempts": 0}
    )


def test_a_queued_event_never_runs_after_cloudformation_stopped_waiting(everything: Synthesized) -> None:
    # Lambda's default event age is 6 hours: a Create queued that long would run after its rollback.
    function_id, function = provider_function(everything.template)
    [config] = everything.template.find_resources(
        "AWS::Lambda::EventInvokeConfig", {"Properties": {"FunctionName": {"Ref": function_id}}}
    ).values()
    max_age = config["Properties"]["MaximumEventAgeInSeconds"]
    service_timeouts = {
        int(resource["Properties"]["ServiceTimeout"])
        for resource in everything.template.find_resources(CUSTOM_TYPE).values()
    }
    assert max_age >= 60 and max_age + function["Properties"]["Timeout"] <= min(service_timeouts)


# ---------------------------------------------------------------------------
# IAM
# ---------------------------------------------------------------------------


def test_provider_role_has_no_managed_policies(stacks: dict[str, Synthesized]) -> None:
    for synthesized in stacks.values():
        role = synthesized.template.find_resources("AWS::IAM::Role")[provider_role_id(synthesized.template)]
        assert "ManagedPolicyArns" not in role["Properties"]


def test_provider_actions_are_never_wildcards(stacks: dict[str, Synthesized]) -> None:
    for synthesized in stacks.values():
        for statement in provider_statements(synthesized.template):
            for action in actions_of(statement):
                assert "*" not in action, statement


def test_iot_statements_never_grant_on_all_resources(stacks: dict[str, Synthesized]) -> None:
    for synthesized in stacks.values():
        for statement in filter(is_iot_statement, provider_statements(synthesized.template)):
            assert "*" not in as_list(statement["Resource"]), statement
            assert "NotResource" not in statement, statement


def test_iot_resources_are_job_thing_and_thinggroup_arns_of_the_stack(plain: Synthesized) -> None:
    resources = {
        arn_text(resource)
        for statement in filter(is_iot_statement, provider_statements(plain.template))
        for resource in as_list(statement["Resource"])
    }
    assert resources == STACK_IOT_ARNS


def test_iot_resources_beyond_the_stack_arns_are_only_the_template_and_packages_given(
    everything: Synthesized,
) -> None:
    resources = {
        arn_text(resource)
        for statement in filter(is_iot_statement, provider_statements(everything.template))
        for resource in as_list(statement["Resource"])
    }
    assert resources - STACK_IOT_ARNS <= {MANAGED_TEMPLATE_ARN, PACKAGE_VERSION_ARN}


def test_pass_role_is_scoped_to_the_presigned_url_role_and_to_iot(everything: Synthesized) -> None:
    statements = pass_role_statements(everything.template)
    assert statements, "no iam:PassRole statement for the pre-signed URL role"
    for statement in statements:
        assert actions_of(statement) == ["iam:PassRole"]
        assert as_list(statement["Resource"]) == [URL_ROLE_ARN]
        assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "iot.amazonaws.com"}}


def test_pass_role_for_a_role_token_is_scoped_to_that_role(tokens: Synthesized) -> None:
    url_role_id = next(
        logical_id
        for logical_id, role in tokens.template.find_resources("AWS::IAM::Role").items()
        if logical_id != provider_role_id(tokens.template)
    )
    statement = single({str(i): s for i, s in enumerate(pass_role_statements(tokens.template))})[1]
    assert as_list(statement["Resource"]) == [{"Fn::GetAtt": [url_role_id, "Arn"]}]
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "iot.amazonaws.com"}}


def test_no_pass_role_without_a_presigned_url_role(plain: Synthesized) -> None:
    assert pass_role_statements(plain.template) == []


# ---------------------------------------------------------------------------
# app.py and deterministic synth
# ---------------------------------------------------------------------------


def synth_app_py(outdir: Path) -> subprocess.Popen[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CDK_")}
    env["CDK_OUTDIR"] = str(outdir)
    env["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
    return subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture(scope="module")
def app_py_outdirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """app.py synthesized twice, in two processes, into two folders."""
    outdirs = (tmp_path_factory.mktemp("app-py-1"), tmp_path_factory.mktemp("app-py-2"))
    processes = [synth_app_py(outdir) for outdir in outdirs]
    for process in processes:
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, output
    return outdirs


def asset_dirs(outdir: Path) -> list[Path]:
    return sorted(path for path in outdir.iterdir() if path.is_dir() and path.name.startswith("asset."))


def app_py_template(outdir: Path) -> Template:
    return Template.from_json(json.loads((outdir / "CdkIotJobDemo.template.json").read_text()))


def test_app_py_synthesizes_a_job_for_a_thing_group(app_py_outdirs: tuple[Path, Path]) -> None:
    template = app_py_template(app_py_outdirs[0])
    group_id, _ = single(template.find_resources("AWS::IoT::ThingGroup"))
    template.has_resource_properties(CUSTOM_TYPE, {"Targets": [{"Fn::GetAtt": [group_id, "Arn"]}]})


def test_app_py_synthesizes_a_staged_rollout(app_py_outdirs: tuple[Path, Path]) -> None:
    template = app_py_template(app_py_outdirs[0])
    template.has_resource_properties(
        CUSTOM_TYPE,
        {
            "JobExecutionsRolloutConfig": {
                "ExponentialRate": Match.object_like({"BaseRatePerMinute": Match.any_value()}),
            }
        },
    )


def test_two_synths_give_byte_identical_templates(app_py_outdirs: tuple[Path, Path]) -> None:
    first, second = app_py_outdirs
    templates = sorted(path.name for path in first.glob("*.template.json"))
    assert templates
    for name in templates:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_two_synths_give_identical_asset_hashes(app_py_outdirs: tuple[Path, Path]) -> None:
    first, second = app_py_outdirs
    first_assets = [path.name for path in asset_dirs(first)]
    assert first_assets
    assert first_assets == [path.name for path in asset_dirs(second)]
    for name in sorted(path.name for path in first.glob("*.assets.json")):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_asset_holds_only_the_handler_package_and_crhelper_sources(app_py_outdirs: tuple[Path, Path]) -> None:
    # GIVEN the provider's asset folder
    (asset,) = asset_dirs(app_py_outdirs[0])
    files = sorted(path.relative_to(asset).as_posix() for path in asset.rglob("*") if path.is_file())
    # THEN the top level is exactly the handler package and crhelper
    assert sorted(path.name for path in asset.iterdir()) == ["cdk_iot_job_provider", "crhelper"]
    # AND every file is Python source: no bytecode, no caches
    assert all(name.endswith(".py") for name in files), files
    assert not [path for path in asset.rglob("__pycache__")]
    # AND the handler package is complete
    handler_files = {f"cdk_iot_job_provider/{path.name}" for path in HANDLER_SOURCE.glob("*.py")}
    assert {name for name in files if name.startswith("cdk_iot_job_provider/")} == handler_files
    assert "crhelper/__init__.py" in files and "crhelper/resource_helper.py" in files


def test_asset_holds_no_aws_sdk_or_cdk_packages(app_py_outdirs: tuple[Path, Path]) -> None:
    (asset,) = asset_dirs(app_py_outdirs[0])
    names = {path.name for path in asset.rglob("*")}
    assert not names & {"boto3", "botocore", "aws_cdk", "jsii", "constructs", "s3transfer"}
