"""IotJob rejects literal values that break the API's limits while it is built.

Each constraint of the shared schema is reached through the construct's public
API. Validation happens in the constructor, so no synth is needed: each case
builds one IotJob in a fresh stack of a module-wide App. Unresolved tokens are
left to the provider at deploy time, so they synthesize.
"""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import dataclasses
import inspect
import itertools
import json
import typing
from typing import Any

import pytest
from aws_cdk import App, Aws, CfnParameter, Fn, Stack, Token
from aws_cdk import aws_iot as iot
from aws_cdk.assertions import Annotations, Match, Template

from cdk_iot_job import (
    AbortConfig,
    AbortCriteria,
    ExponentialRolloutRate,
    IotJob,
    JobExecutionsRetryConfig,
    JobExecutionsRolloutConfig,
    MaintenanceWindow,
    PresignedUrlConfig,
    RateIncreaseCriteria,
    RetryCriteria,
    SchedulingConfig,
    TimeoutConfig,
)
from cdk_iot_job import config as config_module
from cdk_iot_job.python_paths import python_path
from cdk_iot_job.rollout_gate import RolloutGate
from cdk_iot_job_provider import schema

THING_ARN = "arn:aws:iot:eu-west-1:123456789012:thing/sensor-001"
GROUP_ARN = "arn:aws:iot:eu-west-1:123456789012:thinggroup/sensors"
ROLE_ARN = "arn:aws:iam::123456789012:role/firmware-download"
MANAGED_TEMPLATE_ARN = "arn:aws:iot:eu-west-1::jobtemplate/AWS-Run-Command:1.0"
REBOOT_TEMPLATE_ARN = "arn:aws:iot:eu-west-1::jobtemplate/AWS-Reboot:1.0"
CUSTOMER_TEMPLATE_ARN = "arn:aws:iot:eu-west-1:123456789012:jobtemplate/my-template"
S3_DOCUMENT_URL = "https://s3.amazonaws.com/firmware-bucket/jobs/reboot.json"

_stack_ids = itertools.count()


@pytest.fixture(scope="module")
def app() -> App:
    return App()


def build_job(app: App, **overrides: Any) -> IotJob:
    """One IotJob with a valid minimal configuration, changed by ``overrides``."""
    stack = Stack(app, f"Case{next(_stack_ids)}")
    props: dict[str, Any] = {"targets": [THING_ARN], "document": {"operation": "reboot"}}
    props.update(overrides)
    return IotJob(stack, "Job", **props)


def exponential(**overrides: Any) -> JobExecutionsRolloutConfig:
    props: dict[str, Any] = {
        "base_rate_per_minute": 5,
        "increment_factor": 2.0,
        "rate_increase_criteria": RateIncreaseCriteria(number_of_succeeded_things=10),
    }
    props.update(overrides)
    return JobExecutionsRolloutConfig(exponential_rate=ExponentialRolloutRate(**props))


def abort(**overrides: Any) -> AbortConfig:
    props: dict[str, Any] = {"failure_type": "FAILED", "threshold_percentage": 10, "min_number_of_executed_things": 5}
    props.update(overrides)
    return AbortConfig(criteria_list=[AbortCriteria(**props)])


def retry(*criteria: tuple[str, int]) -> JobExecutionsRetryConfig:
    return JobExecutionsRetryConfig(
        criteria_list=[RetryCriteria(failure_type=kind, number_of_retries=count) for kind, count in criteria]
    )


def window(duration: int) -> SchedulingConfig:
    return SchedulingConfig(
        maintenance_windows=[MaintenanceWindow(start_time="cron(0 22 ? * SAT *)", duration_in_minutes=duration)]
    )


def many_tags(count: int) -> dict[str, str]:
    return {f"tag-{index:02d}": "v" for index in range(count)}


def document_of_length(length: int, secret: str = "") -> dict[str, str]:
    """A dict document whose compact JSON rendering is exactly ``length`` characters."""
    frame = len('{"payload":""}') + len(secret)
    document = {"payload": secret + "x" * (length - frame)}
    assert len(json.dumps(document, separators=(",", ":"))) == length
    return document


def managed_template(**parameters: str) -> dict[str, Any]:
    return {"document": None, "job_template_arn": MANAGED_TEMPLATE_ARN, "document_parameters": parameters}


# Each case: the overrides, then fragments the message must hold: the property
# path, the quoted bad value (or the bad count) and the rule.
REJECTED = [
    # JobId
    pytest.param({"job_id": "bad id!"}, ["JobId", "'bad id!'", "must match [a-zA-Z0-9_-]+"], id="job-id-pattern"),
    pytest.param({"job_id": "j" * 65}, ["JobId", "'jjjj", "must be at most 64 characters"], id="job-id-too-long"),
    pytest.param({"job_id": ""}, ["JobId", "''", "must be at least 1 character"], id="job-id-empty"),
    # Targets
    pytest.param({"targets": []}, ["Targets", "must have at least 1 item", "(got 0)"], id="targets-empty"),
    pytest.param(
        {"targets": [f"{THING_ARN}-{index}" for index in range(101)]},
        ["Targets", "must have at most 100 item", "(got 101)"],
        id="targets-over-100",
    ),
    pytest.param(
        {"targets": [THING_ARN, "arn:aws:iot:eu-west-1:123456789012:job/other"]},
        ["Targets[1]", "'arn:aws:iot:eu-west-1:123456789012:job/other'", "must match"],
        id="target-is-a-job-arn",
    ),
    pytest.param({"targets": ["sensor-001"]}, ["Targets[0]", "'sensor-001'", "must match"], id="target-not-an-arn"),
    pytest.param(
        {"targets": ["arn:aws:s3:::bucket/thing/x"]},
        ["Targets[0]", "'arn:aws:s3:::bucket/thing/x'", "must match"],
        id="target-of-another-service",
    ),
    # Document / DocumentSource
    pytest.param({"document": '{"operation": '}, ["Document", "must be valid JSON"], id="document-invalid-json"),
    pytest.param(
        {"document_source": S3_DOCUMENT_URL},
        ["document (Document)", "document_source (DocumentSource)", "mutually exclusive"],
        id="document-and-document-source",
    ),
    pytest.param(
        {"document": None},
        ["document (Document)", "document_source (DocumentSource)", "required unless job_template (JobTemplateArn)"],
        id="neither-document-nor-source",
    ),
    pytest.param(
        {"document": None, "document_source": ""},
        ["DocumentSource", "''", "must be at least 1 character"],
        id="document-source-empty",
    ),
    pytest.param(
        {"document": None, "document_source": "https://s3.amazonaws.com/b/" + "k" * 1330},
        ["DocumentSource", "'https://s3", "must be at most 1350 characters"],
        id="document-source-too-long",
    ),
    # Description
    pytest.param(
        {"description": "line one\nline two"},
        ["Description", "'line one\\nline two'", "must not contain control characters"],
        id="description-control-character",
    ),
    pytest.param(
        {"description": "d" * 2029},
        ["Description", "'dddd", "must be at most 2028 characters", "(got 2029)"],
        id="description-too-long",
    ),
    pytest.param({"description": ""}, ["Description", "''", "must be at least 1 character"], id="description-empty"),
    # DocumentParameters / JobTemplateArn
    pytest.param(
        {"document_parameters": {"command": "reboot"}},
        ["document_parameters (DocumentParameters)", "requires job_template (JobTemplateArn)"],
        id="document-parameters-without-template",
    ),
    pytest.param(
        {"document": None, "job_template_arn": CUSTOMER_TEMPLATE_ARN, "document_parameters": {"command": "reboot"}},
        ["JobTemplateArn", repr(CUSTOMER_TEMPLATE_ARN), "must be an AWS managed template ARN"],
        id="document-parameters-with-customer-template",
    ),
    pytest.param(
        managed_template(**{"bad key": "reboot"}),
        ["DocumentParameters key", "'bad key'", "must match [a-zA-Z0-9_-]+"],
        id="document-parameters-key-pattern",
    ),
    pytest.param(
        managed_template(**{"k" * 129: "reboot"}),
        ["DocumentParameters key", "'kkkk", "must be at most 128 characters"],
        id="document-parameters-key-too-long",
    ),
    pytest.param(
        managed_template(command="reboot\x00now"),
        # A parameter's value may be a secret: the path and the rule, never the value.
        ["(DocumentParameters.command) must not contain control characters"],
        id="document-parameters-value-control-character",
    ),
    pytest.param(
        managed_template(command=""),
        ["(DocumentParameters.command) must be at least 1 character"],
        id="document-parameters-value-empty",
    ),
    pytest.param(
        {"document": None, "job_template_arn": "jobtemplate/AWS-Run-Command"},
        ["JobTemplateArn", "'jobtemplate/AWS-Run-Command'", "must match arn:"],
        id="job-template-arn-pattern",
    ),
    # PresignedUrlConfig
    pytest.param(
        {"presigned_url_config": PresignedUrlConfig(role_arn="arn:aws:iam::1:role")},
        ["PresignedUrlConfig.RoleArn", "'arn:aws:iam::1:role'", "must be at least 20 character"],
        id="presigned-role-arn-too-short",
    ),
    pytest.param(
        {"presigned_url_config": PresignedUrlConfig(role_arn="arn:aws:iam::123456789012:role/" + "r" * 2020)},
        ["PresignedUrlConfig.RoleArn", "'arn:aws:iam", "must be at most 2048 characters"],
        id="presigned-role-arn-too-long",
    ),
    pytest.param(
        {"presigned_url_config": PresignedUrlConfig(role_arn="role/firmware-download-role")},
        ["PresignedUrlConfig.RoleArn", "'role/firmware-download-role'", "must match arn:"],
        id="presigned-role-arn-pattern",
    ),
    pytest.param(
        {"presigned_url_config": PresignedUrlConfig(role_arn=ROLE_ARN, expires_in_sec=59)},
        ["PresignedUrlConfig.ExpiresInSec", "59", "must be at least 60"],
        id="presigned-expiry-below-60",
    ),
    pytest.param(
        {"presigned_url_config": PresignedUrlConfig(role_arn=ROLE_ARN, expires_in_sec=3601)},
        ["PresignedUrlConfig.ExpiresInSec", "3601", "must be at most 3600"],
        id="presigned-expiry-over-3600",
    ),
    # JobExecutionsRolloutConfig
    pytest.param(
        {"job_executions_rollout_config": JobExecutionsRolloutConfig(maximum_per_minute=0)},
        ["JobExecutionsRolloutConfig.MaximumPerMinute", "0", "must be at least 1"],
        id="maximum-per-minute-zero",
    ),
    pytest.param(
        {"job_executions_rollout_config": JobExecutionsRolloutConfig(maximum_per_minute=2.5)},
        ["JobExecutionsRolloutConfig.MaximumPerMinute", "2.5", "must be a whole number"],
        id="maximum-per-minute-fraction",
    ),
    pytest.param(
        {"job_executions_rollout_config": exponential(base_rate_per_minute=0)},
        ["JobExecutionsRolloutConfig.ExponentialRate.BaseRatePerMinute", "0", "must be at least 1"],
        id="base-rate-zero",
    ),
    pytest.param(
        {"job_executions_rollout_config": exponential(base_rate_per_minute=1001)},
        ["JobExecutionsRolloutConfig.ExponentialRate.BaseRatePerMinute", "1001", "must be at most 1000"],
        id="base-rate-over-1000",
    ),
    pytest.param(
        {"job_executions_rollout_config": exponential(increment_factor=1.0)},
        ["JobExecutionsRolloutConfig.ExponentialRate.IncrementFactor", "1.0", "must be at least 1.1"],
        id="increment-factor-below-1.1",
    ),
    pytest.param(
        {"job_executions_rollout_config": exponential(increment_factor=5.1)},
        ["JobExecutionsRolloutConfig.ExponentialRate.IncrementFactor", "5.1", "must be at most 5"],
        id="increment-factor-over-5",
    ),
    pytest.param(
        {"job_executions_rollout_config": exponential(increment_factor=1.55)},
        ["JobExecutionsRolloutConfig.ExponentialRate.IncrementFactor", "1.55", "at most 1 digit(s) after the decimal"],
        id="increment-factor-two-decimals",
    ),
    pytest.param(
        {"job_executions_rollout_config": exponential(rate_increase_criteria=RateIncreaseCriteria())},
        ["JobExecutionsRolloutConfig.ExponentialRate.RateIncreaseCriteria", "must set at least one of"],
        id="rate-increase-criteria-empty",
    ),
    pytest.param(
        {
            "job_executions_rollout_config": exponential(
                rate_increase_criteria=RateIncreaseCriteria(number_of_notified_things=0)
            )
        },
        ["RateIncreaseCriteria.NumberOfNotifiedThings", "0", "must be at least 1"],
        id="rate-increase-threshold-zero",
    ),
    # AbortConfig
    pytest.param(
        {"abort_config": AbortConfig(criteria_list=[])},
        ["AbortConfig.CriteriaList", "must have at least 1 item", "(got 0)"],
        id="abort-criteria-empty",
    ),
    pytest.param(
        {"abort_config": abort(threshold_percentage=100.5)},
        ["AbortConfig.CriteriaList[0].ThresholdPercentage", "100.5", "must be at most 100"],
        id="abort-threshold-over-100",
    ),
    pytest.param(
        {"abort_config": abort(threshold_percentage=10.125)},
        ["AbortConfig.CriteriaList[0].ThresholdPercentage", "10.125", "at most 2 digit(s) after the decimal"],
        id="abort-threshold-three-decimals",
    ),
    pytest.param(
        {"abort_config": abort(min_number_of_executed_things=0)},
        ["AbortConfig.CriteriaList[0].MinNumberOfExecutedThings", "0", "must be at least 1"],
        id="abort-min-executed-zero",
    ),
    pytest.param(
        {"abort_config": abort(failure_type="CRASHED")},
        ["AbortConfig.CriteriaList[0].FailureType", "'CRASHED'", "must be one of FAILED, REJECTED, TIMED_OUT, ALL"],
        id="abort-failure-type-unknown",
    ),
    pytest.param(
        {"abort_config": abort(action="PAUSE")},
        ["AbortConfig.CriteriaList[0].Action", "'PAUSE'", "must be one of CANCEL"],
        id="abort-action-unknown",
    ),
    # TimeoutConfig
    pytest.param(
        {"timeout_config": TimeoutConfig(in_progress_timeout_in_minutes=0)},
        ["TimeoutConfig.InProgressTimeoutInMinutes", "0", "must be at least 1"],
        id="timeout-zero",
    ),
    pytest.param(
        {"timeout_config": TimeoutConfig(in_progress_timeout_in_minutes=10081)},
        ["TimeoutConfig.InProgressTimeoutInMinutes", "10081", "must be at most 10080"],
        id="timeout-over-a-week",
    ),
    # JobExecutionsRetryConfig
    pytest.param(
        {"job_executions_retry_config": retry(("FAILED", 1), ("TIMED_OUT", 1), ("ALL", 1))},
        ["JobExecutionsRetryConfig.CriteriaList", "must have at most 2 item", "(got 3)"],
        id="retry-three-criteria",
    ),
    pytest.param(
        {"job_executions_retry_config": retry()},
        ["JobExecutionsRetryConfig.CriteriaList", "must have at least 1 item", "(got 0)"],
        id="retry-no-criteria",
    ),
    pytest.param(
        {"job_executions_retry_config": retry(("FAILED", 11))},
        ["JobExecutionsRetryConfig.CriteriaList[0].NumberOfRetries", "11", "must be at most 10"],
        id="retry-eleven-retries",
    ),
    pytest.param(
        {"job_executions_retry_config": retry(("REJECTED", 1))},
        ["JobExecutionsRetryConfig.CriteriaList[0].FailureType", "'REJECTED'", "must be one of FAILED, TIMED_OUT, ALL"],
        id="retry-failure-type-not-retryable",
    ),
    # SchedulingConfig
    pytest.param(
        {"scheduling_config": SchedulingConfig(end_time="2031-03-08T12:00", end_behavior="STOP")},
        ["SchedulingConfig.EndBehavior", "'STOP'", "must be one of STOP_ROLLOUT, CANCEL, FORCE_CANCEL"],
        id="end-behavior-unknown",
    ),
    pytest.param(
        {"scheduling_config": window(0)},
        ["SchedulingConfig.MaintenanceWindows[0].DurationInMinutes", "0", "must be at least 1"],
        id="maintenance-window-zero-minutes",
    ),
    pytest.param(
        {"scheduling_config": window(1431)},
        ["SchedulingConfig.MaintenanceWindows[0].DurationInMinutes", "1431", "must be at most 1430"],
        id="maintenance-window-over-1430-minutes",
    ),
    pytest.param(
        {"scheduling_config": SchedulingConfig(start_time="")},
        ["SchedulingConfig.StartTime", "''", "must be at least 1 character"],
        id="start-time-empty",
    ),
    # DestinationPackageVersions, NamespaceId, TargetSelection
    pytest.param(
        {"destination_package_versions": ["firmware/2.4.1"]},
        ["DestinationPackageVersions[0]", "'firmware/2.4.1'", "must match arn:"],
        id="package-version-not-an-arn",
    ),
    pytest.param(
        {"namespace_id": "fleet ns"},
        ["NamespaceId", "'fleet ns'", "must match [a-zA-Z0-9_-]+"],
        id="namespace-id-pattern",
    ),
    pytest.param(
        {"namespace_id": "n" * 65},
        ["NamespaceId", "'nnnn", "must be at most 64 characters"],
        id="namespace-id-too-long",
    ),
    pytest.param(
        {"target_selection": "ALWAYS"},
        ["TargetSelection", "'ALWAYS'", "must be one of CONTINUOUS, SNAPSHOT"],
        id="target-selection-unknown",
    ),
    pytest.param(
        {"delete_behavior": "cancel"},
        ["DeleteBehavior", "'cancel'", "must be one of DELETE, CANCEL"],
        id="delete-behavior-unknown",
    ),
    # Tags
    pytest.param(
        {"tags": {"aws:cloudformation:stack-name": "x"}},
        ["Tags[0].Key", "'aws:cloudformation:stack-name'", "reserved prefix 'aws:'"],
        id="tag-key-aws-prefix",
    ),
    pytest.param(
        {"tags": {"AWS:owner": "x"}},
        ["Tags[0].Key", "'AWS:owner'", "reserved prefix 'aws:'"],
        id="tag-key-aws-prefix-upper-case",
    ),
    pytest.param(
        {"tags": {"cdk-iot-job:stack": "x"}},
        ["Tags[0].Key", "'cdk-iot-job:stack'", "must not start with 'cdk-iot-job:'"],
        id="tag-key-ownership-prefix",
    ),
    pytest.param(
        {"tags": {"t" * 129: "x"}},
        ["Tags[0].Key", "'tttt", "must be at most 128 characters"],
        id="tag-key-too-long",
    ),
    pytest.param(
        {"tags": {"owner#team": "x"}},
        ["Tags[0].Key", "'owner#team'", "must contain only letters, digits, spaces and _.:/=+-@"],
        id="tag-key-character",
    ),
    pytest.param(
        # Tag values may be secrets: the message names the tag, never the value.
        {"tags": {"team": "v" * 257}},
        ["tags (Tags[0].Value) must be at most 256 characters"],
        id="tag-value-too-long",
    ),
    pytest.param(
        {"tags": many_tags(schema.MAX_USER_TAGS + 1)},
        ["Tags", f"must have at most {schema.MAX_USER_TAGS} item", f"(got {schema.MAX_USER_TAGS + 1})"],
        id="too-many-tags",
    ),
]


def test_the_base_configuration_of_the_rejection_cases_is_valid(app: App) -> None:
    build_job(app)


@pytest.mark.parametrize(("overrides", "fragments"), REJECTED)
def test_literal_value_breaking_a_limit_is_rejected_naming_path_value_and_rule(
    app: App, overrides: dict[str, Any], fragments: list[str]
) -> None:
    with pytest.raises(ValueError) as caught:
        build_job(app, **overrides)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


@pytest.mark.parametrize(
    ("prop", "path"),
    [("targets", "Targets"), ("destination_package_versions", "DestinationPackageVersions")],
)
def test_a_single_arn_string_where_a_list_is_expected_is_rejected_as_not_a_list(app: App, prop: str, path: str) -> None:
    # GIVEN one ARN string instead of a list of ARNs (a str is a Sequence[str] to Python)
    arn = "arn:aws:iot:eu-west-1:123456789012:thing/sensor-001"
    # WHEN the job is built
    with pytest.raises(ValueError) as caught:
        build_job(app, **{prop: arn})
    # THEN the message quotes the string given and says a list is needed,
    # rather than complaining about its first character
    message = str(caught.value)
    assert f"{prop} ({path}) {arn!r} must be a list" in message, message


def test_rejection_is_an_invalid_property_error(app: App) -> None:
    with pytest.raises(schema.InvalidPropertyError):
        build_job(app, job_id="bad id!")


def test_invalid_json_document_is_rejected_without_echoing_the_document(app: App) -> None:
    secret = '{"password": "hunter2-secret"'
    with pytest.raises(ValueError) as caught:
        build_job(app, document=secret)
    message = str(caught.value)
    assert "Document" in message and "must be valid JSON" in message
    assert "hunter2" not in message


def test_document_over_32768_characters_is_rejected_without_echoing_the_document(app: App) -> None:
    # GIVEN a valid JSON document one character over the limit
    document = document_of_length(32769, secret="secret-")
    # WHEN the job is built
    with pytest.raises(ValueError) as caught:
        build_job(app, document=document)
    # THEN the message names the property and the rule, never the text
    message = str(caught.value)
    assert "Document" in message and "must be at most 32768 characters" in message
    assert "secret-" not in message and "xxxx" not in message


ACCEPTED_EDGES = [
    pytest.param({"job_id": "j" * 64}, id="job-id-64"),
    pytest.param({"targets": [f"{GROUP_ARN}-{index}" for index in range(100)]}, id="targets-100"),
    pytest.param({"document": document_of_length(32768)}, id="document-dict-32768"),
    pytest.param(
        {"document": json.dumps(document_of_length(32768), separators=(",", ":"))}, id="document-string-32768"
    ),
    pytest.param({"description": "d" * 2028}, id="description-2028"),
    pytest.param({"presigned_url_config": PresignedUrlConfig(role_arn=ROLE_ARN, expires_in_sec=60)}, id="expiry-60"),
    pytest.param(
        {"presigned_url_config": PresignedUrlConfig(role_arn=ROLE_ARN, expires_in_sec=3600)}, id="expiry-3600"
    ),
    pytest.param({"job_executions_rollout_config": exponential(base_rate_per_minute=1000)}, id="base-rate-1000"),
    pytest.param({"job_executions_rollout_config": exponential(increment_factor=1.1)}, id="increment-1.1"),
    pytest.param({"job_executions_rollout_config": exponential(increment_factor=5)}, id="increment-5"),
    pytest.param({"abort_config": abort(threshold_percentage=10.99)}, id="threshold-two-decimals"),
    pytest.param({"abort_config": abort(threshold_percentage=100)}, id="threshold-100"),
    pytest.param({"timeout_config": TimeoutConfig(in_progress_timeout_in_minutes=10080)}, id="timeout-10080"),
    pytest.param({"job_executions_retry_config": retry(("FAILED", 10), ("TIMED_OUT", 0))}, id="retry-two-criteria"),
    pytest.param({"scheduling_config": window(1430)}, id="window-1430"),
    pytest.param({"scheduling_config": window(1)}, id="window-1"),
    pytest.param({"tags": many_tags(schema.MAX_USER_TAGS)}, id="tags-max"),
    pytest.param({"tags": {"t" * 128: "v" * 256, "cost center: eu/west=1+@": ""}}, id="tag-key-128-and-characters"),
    pytest.param({"document": None, "job_template_arn": REBOOT_TEMPLATE_ARN}, id="template-without-document"),
    pytest.param(managed_template(command="reboot", runAsUser="root"), id="managed-template-parameters"),
]


@pytest.mark.parametrize("overrides", ACCEPTED_EDGES)
def test_values_at_the_edge_of_a_limit_are_accepted(app: App, overrides: dict[str, Any]) -> None:
    build_job(app, **overrides)


# ---------------------------------------------------------------------------
# Unresolved tokens are left to the provider
# ---------------------------------------------------------------------------


class TokenStack:
    """One stack whose jobs take their values from parameters, synthesized once."""

    def __init__(self) -> None:
        self.app = App()
        self.stack = Stack(self.app, "Tokens")
        text = CfnParameter(self.stack, "Text")
        number = CfnParameter(self.stack, "Number", type="Number")
        arns = CfnParameter(self.stack, "Arns", type="CommaDelimitedList")
        self.jobs = {
            "IdFromParameter": IotJob(
                self.stack, "IdFromParameter", job_id=text.value_as_string, targets=[THING_ARN], document={"a": 1}
            ),
            "IdWithToken": IotJob(
                self.stack,
                "IdWithToken",
                job_id=Token.as_string(f"fw-{Aws.ACCOUNT_ID}"),
                targets=[THING_ARN],
                document={"a": 1},
            ),
            "TargetFromParameter": IotJob(
                self.stack, "TargetFromParameter", targets=[text.value_as_string], document={"a": 1}
            ),
            "TargetsFromList": IotJob(self.stack, "TargetsFromList", targets=arns.value_as_list, document={"a": 1}),
            "NumberFromParameter": IotJob(
                self.stack,
                "NumberFromParameter",
                targets=[THING_ARN],
                document={"a": 1},
                job_executions_rollout_config=JobExecutionsRolloutConfig(maximum_per_minute=number.value_as_number),
                abort_config=abort(threshold_percentage=number.value_as_number),
            ),
            "SourceFromParameter": IotJob(
                self.stack,
                "SourceFromParameter",
                targets=[THING_ARN],
                document_source=text.value_as_string,
                description=text.value_as_string,
                tags={"team": text.value_as_string},
            ),
        }
        self.template = Template.from_stack(self.stack)

    def properties(self, name: str) -> dict[str, Any]:
        cfn_resource = self.jobs[name].node.default_child.node.default_child
        logical_id = self.stack.get_logical_id(cfn_resource)
        return self.template.find_resources("Custom::IotJob")[logical_id]["Properties"]


@pytest.fixture(scope="module")
def token_stack() -> TokenStack:
    return TokenStack()


def test_job_id_from_a_parameter_synthesizes_as_its_reference(token_stack: TokenStack) -> None:
    assert token_stack.properties("IdFromParameter")["JobId"] == {"Ref": "Text"}


def test_job_id_holding_a_token_synthesizes_as_a_join(token_stack: TokenStack) -> None:
    assert token_stack.properties("IdWithToken")["JobId"] == {"Fn::Join": ["", ["fw-", {"Ref": "AWS::AccountId"}]]}


def test_target_from_a_parameter_synthesizes_as_its_reference(token_stack: TokenStack) -> None:
    assert token_stack.properties("TargetFromParameter")["Targets"] == [{"Ref": "Text"}]


def test_targets_list_token_synthesizes_as_its_reference(token_stack: TokenStack) -> None:
    assert token_stack.properties("TargetsFromList")["Targets"] == {"Ref": "Arns"}


def test_number_tokens_synthesize_as_their_references(token_stack: TokenStack) -> None:
    properties = token_stack.properties("NumberFromParameter")
    assert properties["JobExecutionsRolloutConfig"] == {"MaximumPerMinute": {"Ref": "Number"}}
    assert properties["AbortConfig"]["CriteriaList"][0]["ThresholdPercentage"] == {"Ref": "Number"}


def test_string_tokens_in_document_source_description_and_tags_synthesize(token_stack: TokenStack) -> None:
    properties = token_stack.properties("SourceFromParameter")
    assert properties["DocumentSource"] == {"Ref": "Text"}
    assert properties["Description"] == {"Ref": "Text"}
    assert properties["Tags"] == [{"Key": "team", "Value": {"Ref": "Text"}}]


# ---------------------------------------------------------------------------
# The schema as the handler uses it: CloudFormation's stringified properties
# ---------------------------------------------------------------------------


def test_parse_properties_converts_cloudformation_strings_to_typed_values() -> None:
    # GIVEN properties as CloudFormation delivers them: every scalar a string
    raw = {
        "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:provider",
        "ServiceTimeout": "600",
        "Targets": [THING_ARN],
        "Document": '{"operation":"reboot"}',
        "PresignedUrlConfig": {"RoleArn": ROLE_ARN, "ExpiresInSec": "300"},
        "JobExecutionsRolloutConfig": {
            "MaximumPerMinute": "50",
            "ExponentialRate": {
                "BaseRatePerMinute": "5",
                "IncrementFactor": "2.5",
                "RateIncreaseCriteria": {"NumberOfSucceededThings": "10"},
            },
        },
        "AbortConfig": {
            "CriteriaList": [
                {
                    "FailureType": "FAILED",
                    "Action": "CANCEL",
                    "ThresholdPercentage": "25.5",
                    "MinNumberOfExecutedThings": "3",
                }
            ]
        },
        "TimeoutConfig": {"InProgressTimeoutInMinutes": "60"},
        "JobExecutionsRetryConfig": {"CriteriaList": [{"FailureType": "ALL", "NumberOfRetries": "0"}]},
        "SchedulingConfig": {"MaintenanceWindows": [{"StartTime": "cron(0 22 ? * SAT *)", "DurationInMinutes": "90"}]},
    }
    # WHEN parsed
    parsed = schema.parse_properties(raw)
    # THEN numbers are numbers of the schema's type and framework properties are gone
    assert parsed == {
        "Targets": [THING_ARN],
        "Document": '{"operation":"reboot"}',
        "PresignedUrlConfig": {"RoleArn": ROLE_ARN, "ExpiresInSec": 300},
        "JobExecutionsRolloutConfig": {
            "MaximumPerMinute": 50,
            "ExponentialRate": {
                "BaseRatePerMinute": 5,
                "IncrementFactor": 2.5,
                "RateIncreaseCriteria": {"NumberOfSucceededThings": 10},
            },
        },
        "AbortConfig": {
            "CriteriaList": [
                {
                    "FailureType": "FAILED",
                    "Action": "CANCEL",
                    "ThresholdPercentage": 25.5,
                    "MinNumberOfExecutedThings": 3,
                }
            ]
        },
        "TimeoutConfig": {"InProgressTimeoutInMinutes": 60},
        "JobExecutionsRetryConfig": {"CriteriaList": [{"FailureType": "ALL", "NumberOfRetries": 0}]},
        "SchedulingConfig": {"MaintenanceWindows": [{"StartTime": "cron(0 22 ? * SAT *)", "DurationInMinutes": 90}]},
    }
    rollout = parsed["JobExecutionsRolloutConfig"]
    assert type(rollout["MaximumPerMinute"]) is int
    assert type(rollout["ExponentialRate"]["IncrementFactor"]) is float
    assert type(parsed["AbortConfig"]["CriteriaList"][0]["ThresholdPercentage"]) is float
    assert type(parsed["AbortConfig"]["CriteriaList"][0]["MinNumberOfExecutedThings"]) is int


def test_parse_properties_checks_limits_on_stringified_numbers() -> None:
    raw = {"Targets": [THING_ARN], "Document": "{}", "JobExecutionsRolloutConfig": {"MaximumPerMinute": "0"}}
    with pytest.raises(ValueError, match=r"JobExecutionsRolloutConfig\.MaximumPerMinute '0' must be at least 1"):
        schema.parse_properties(raw)


@pytest.mark.parametrize("value", ["true", "fifty", "", "NaN", "Infinity"])
def test_parse_properties_rejects_non_numeric_strings_for_numbers(value: str) -> None:
    raw = {"Targets": [THING_ARN], "Document": "{}", "TimeoutConfig": {"InProgressTimeoutInMinutes": value}}
    with pytest.raises(ValueError, match=r"TimeoutConfig\.InProgressTimeoutInMinutes .* must be a whole number"):
        schema.parse_properties(raw)


def test_parse_properties_rejects_an_unknown_property_naming_it() -> None:
    raw = {"Targets": [THING_ARN], "Document": "{}", "JobName": "firmware"}
    with pytest.raises(ValueError, match=r"JobName is not a supported property"):
        schema.parse_properties(raw)


def test_parse_properties_rejects_an_unknown_nested_property_naming_its_path() -> None:
    raw = {"Targets": [THING_ARN], "Document": "{}", "TimeoutConfig": {"Minutes": "5"}}
    with pytest.raises(ValueError, match=r"TimeoutConfig\.Minutes is not a supported property"):
        schema.parse_properties(raw)


def test_parse_properties_requires_targets() -> None:
    with pytest.raises(ValueError, match=r"Targets is required"):
        schema.parse_properties({"Document": "{}"})


# ---------------------------------------------------------------------------
# Messages name the Python keyword path and the CloudFormation property
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "start"),
    [
        pytest.param({"job_id": "bad id!"}, "job_id (JobId) 'bad id!' must match", id="top-level"),
        pytest.param(
            {"job_executions_rollout_config": JobExecutionsRolloutConfig(maximum_per_minute=0)},
            "job_executions_rollout_config.maximum_per_minute (JobExecutionsRolloutConfig.MaximumPerMinute) 0 "
            "must be at least 1",
            id="nested",
        ),
        pytest.param(
            {"abort_config": abort(threshold_percentage=100.5)},
            "abort_config.criteria_list[0].threshold_percentage (AbortConfig.CriteriaList[0].ThresholdPercentage) "
            "100.5 must be at most 100",
            id="list-indexed",
        ),
        pytest.param(
            {"job_executions_rollout_config": exponential(increment_factor=1.0)},
            "job_executions_rollout_config.exponential_rate.increment_factor "
            "(JobExecutionsRolloutConfig.ExponentialRate.IncrementFactor) 1.0 must be at least 1.1",
            id="two-levels-deep",
        ),
        pytest.param(
            managed_template(command="reboot\x00now"),
            "document_parameters['command'] (DocumentParameters.command) must not contain control characters",
            id="map-entry",
        ),
        pytest.param(
            {"targets": [THING_ARN, "sensor-001"]},
            "targets[1] (Targets[1]) 'sensor-001' must match",
            id="targets-index",
        ),
        pytest.param(
            {"document": None, "document_source": "https://s3.amazonaws.com/fw/jobs/*.json"},
            "document_source (DocumentSource) 'https://s3.amazonaws.com/fw/jobs/*.json' must not contain",
            id="document-source",
        ),
    ],
)
def test_a_message_names_the_python_keyword_path_then_the_cloudformation_path(
    app: App, overrides: dict[str, Any], start: str
) -> None:
    with pytest.raises(schema.InvalidPropertyError) as caught:
        build_job(app, **overrides)
    assert str(caught.value).startswith(start), str(caught.value)


def test_a_template_arn_is_named_by_the_keyword_it_was_given_with(app: App) -> None:
    with pytest.raises(schema.InvalidPropertyError) as caught:
        build_job(app, document=None, job_template_arn=CUSTOMER_TEMPLATE_ARN, document_parameters={"a": "b"})
    assert str(caught.value).startswith(f"job_template_arn (JobTemplateArn) {CUSTOMER_TEMPLATE_ARN!r}")
    assert "when document_parameters (DocumentParameters) is set" in str(caught.value)


def test_a_message_that_is_not_led_by_a_path_names_the_keywords_too(app: App) -> None:
    with pytest.raises(schema.InvalidPropertyError) as caught:
        build_job(app, document=None)
    assert str(caught.value) == (
        "one of document (Document) or document_source (DocumentSource) is required unless "
        "job_template (JobTemplateArn) is set"
    )


def test_a_quoted_value_that_looks_like_a_property_is_not_rewritten(app: App) -> None:
    with pytest.raises(schema.InvalidPropertyError) as caught:
        build_job(app, description="Tags\nJobId")
    assert str(caught.value).startswith("description (Description) 'Tags\\nJobId' must not contain")


_CONFIG_CLASSES = {
    "PresignedUrlConfig": config_module.PresignedUrlConfig,
    "JobExecutionsRolloutConfig": config_module.JobExecutionsRolloutConfig,
    "AbortConfig": config_module.AbortConfig,
    "TimeoutConfig": config_module.TimeoutConfig,
    "JobExecutionsRetryConfig": config_module.JobExecutionsRetryConfig,
    "SchedulingConfig": config_module.SchedulingConfig,
    "RolloutGate": RolloutGate,
}


def _dataclass_in(hint: Any) -> Any:
    if dataclasses.is_dataclass(hint):
        return hint
    for argument in typing.get_args(hint):
        found = _dataclass_in(argument)
        if found is not None:
            return found
    return None


def _python_fields(spec: schema.Field, cls: Any, cfn_path: str) -> list[tuple[str, str]]:
    """(CloudFormation path, Python path) of every nested property, checked against ``cls``'s fields."""
    pairs: list[tuple[str, str]] = []
    hints = typing.get_type_hints(cls)
    for name, field in spec.fields.items():
        path = f"{cfn_path}.{name}"
        python = python_path(path)
        attribute = python.rsplit(".", 1)[-1]
        pairs.append((path, python))
        assert attribute in hints, f"{path} maps to {python}, but {cls.__name__} has no field {attribute}"
        if field.kind == "object":
            pairs += _python_fields(field, _dataclass_in(hints[attribute]), path)
        elif field.kind == "list" and field.items is not None and field.items.kind == "object":
            pairs += _python_fields(field.items, _dataclass_in(hints[attribute]), f"{path}[0]")
    return pairs


def test_every_nested_property_maps_to_the_dataclass_field_a_user_sets() -> None:
    # Derived, not listed: a new property whose field is named otherwise fails here.
    pairs = [pair for top, cls in _CONFIG_CLASSES.items() for pair in _python_fields(schema.PROPERTIES[top], cls, top)]
    assert ("RolloutGate.BakeTimeInMinutes", "rollout_gate.bake_time") in pairs
    assert (
        "AbortConfig.CriteriaList[0].MinNumberOfExecutedThings",
        "abort_config.criteria_list[0].min_number_of_executed_things",
    ) in pairs


def test_every_top_level_property_maps_to_an_iot_job_keyword() -> None:
    keywords = inspect.signature(IotJob.__init__).parameters
    for name in schema.PROPERTIES:
        assert python_path(name, {"JobTemplateArn": "job_template"}) in keywords, name


# ---------------------------------------------------------------------------
# Document and template combinations, as CreateJob takes them
# (https://docs.aws.amazon.com/iot/latest/apireference/API_CreateJob.html)
# ---------------------------------------------------------------------------


def test_document_with_a_customer_template_is_accepted(app: App) -> None:
    # CreateJob requires document only "if you don't specify a value for documentSource" and
    # forbids no pairing with jobTemplateArn; the Developer Guide's "Create a job from a custom
    # job template" lets the console pick "a different job document".
    job = build_job(app, job_template_arn=CUSTOMER_TEMPLATE_ARN)
    properties = Template.from_stack(Stack.of(job)).find_resources("Custom::IotJob")
    [resource] = properties.values()
    assert {"Document", "JobTemplateArn"} <= set(resource["Properties"])


def test_document_with_a_managed_template_synthesizes_with_a_warning(app: App) -> None:
    # CreateJob documents no override of a managed template's predefined document either way.
    job = build_job(app, job_template_arn=REBOOT_TEMPLATE_ARN)
    warnings = Annotations.from_stack(Stack.of(job)).find_warning(
        "*", Match.string_like_regexp("document and job_template_arn")
    )
    assert len(warnings) == 1


def test_a_customer_template_without_document_is_accepted(app: App) -> None:
    build_job(app, document=None, job_template_arn=CUSTOMER_TEMPLATE_ARN)


def test_job_template_and_job_template_arn_together_are_rejected_naming_both(app: App) -> None:
    with pytest.raises(
        schema.InvalidPropertyError, match=r"^job_template and job_template_arn \(both JobTemplateArn\)"
    ):
        build_job(app, document=None, job_template=REBOOT_TEMPLATE_ARN, job_template_arn=REBOOT_TEMPLATE_ARN)


def test_document_parameters_with_a_cfn_job_template_name_both_keywords(app: App) -> None:
    stack = Stack(app, f"Case{next(_stack_ids)}")
    template = iot.CfnJobTemplate(stack, "Template", job_template_id="t", description="t", document="{}")
    with pytest.raises(schema.InvalidPropertyError) as caught:
        IotJob(stack, "Job", targets=[THING_ARN], job_template=template, document_parameters={"a": "b"})
    message = str(caught.value)
    assert message.startswith("document_parameters (DocumentParameters) need an AWS managed template")
    assert "job_template (JobTemplateArn) is a CfnJobTemplate" in message


# ---------------------------------------------------------------------------
# One token string where a list goes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["parameter", "import"])
@pytest.mark.parametrize(
    ("prop", "path"),
    [("targets", "Targets"), ("destination_package_versions", "DestinationPackageVersions")],
)
def test_a_single_token_string_where_a_list_is_expected_is_rejected_as_not_a_list(
    app: App, source: str, prop: str, path: str
) -> None:
    # GIVEN one token string (IoT would get one ARN string, not a list, at deploy time)
    stack = Stack(app, f"Case{next(_stack_ids)}")
    token = CfnParameter(stack, "Arn").value_as_string if source == "parameter" else Fn.import_value("FleetArn")
    props: dict[str, Any] = {"targets": [THING_ARN], "document": {"operation": "reboot"}, prop: token}
    # WHEN the job is built
    with pytest.raises(schema.InvalidPropertyError) as caught:
        IotJob(stack, "Job", **props)
    # THEN it gets the same "must be a list" a literal string gets, and how to give a list
    message = str(caught.value)
    assert message.startswith(f"{prop} ({path}) ") and "must be a list" in message
    assert "value_as_list" in message
