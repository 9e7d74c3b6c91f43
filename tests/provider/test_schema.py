"""The ``schema`` module on its own: what a property set may hold, and what it becomes.

Every rejection is read as the user reads it in a FAILED event's Reason (or a
synth error): it must name the property path and the rule, quote the bad value
only when it cannot be a secret, and never be anything but
``InvalidPropertyError``. Properties arrive as CloudFormation sends them, with
every scalar a string.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import botocore.session
import pytest
from botocore.validate import validate_parameters
from cfn_events import sample

from cdk_iot_job_provider import schema
from cdk_iot_job_provider.ownership import Owner
from cdk_iot_job_provider.schema import (
    CREATE_ONLY_PROPERTIES,
    IAM_WILDCARD_RULE,
    MAX_USER_TAGS,
    OWNERSHIP_TAG_PREFIX,
    PLACEHOLDER_WILDCARD_RULE,
    SENSITIVE_PROPERTIES,
    InvalidPropertyError,
)

GROUP = "arn:aws:iot:us-east-1:123456789012:thinggroup/sensors"
THING = "arn:aws:iot:us-east-1:123456789012:thing/sensor-1"
MANAGED_TEMPLATE = "arn:aws:iot:us-east-1::jobtemplate/AWS-Download-File:1.0"
SECRET = "SECRET-8d1f7c"

BASE: dict[str, Any] = {"Targets": [GROUP], "Document": '{"operation":"reboot"}'}


def props(**changes: Any) -> dict[str, Any]:
    """``BASE`` with some properties replaced (``None`` removes one)."""
    result = copy.deepcopy(BASE)
    for name, value in changes.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def rejection(properties: Any) -> str:
    """The message ``parse_properties`` rejects ``properties`` with."""
    with pytest.raises(InvalidPropertyError) as raised:
        schema.parse_properties(properties)
    return str(raised.value)


def criterion(**changes: str) -> dict[str, str]:
    """One AbortConfig criterion, valid unless changed."""
    return {
        "FailureType": "FAILED",
        "Action": "CANCEL",
        "ThresholdPercentage": "10",
        "MinNumberOfExecutedThings": "5",
        **changes,
    }


def exponential(**changes: Any) -> dict[str, Any]:
    """A JobExecutionsRolloutConfig with an ExponentialRate, valid unless changed."""
    rate = {
        "BaseRatePerMinute": "10",
        "IncrementFactor": "1.5",
        "RateIncreaseCriteria": {"NumberOfNotifiedThings": "20"},
        **changes,
    }
    return {"ExponentialRate": rate}


def tags(count: int) -> list[dict[str, str]]:
    return [{"Key": f"key-{index}", "Value": f"value-{index}"} for index in range(count)]


# --- Valid sets -------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        pytest.param(BASE, BASE, id="targets-and-document"),
        pytest.param(
            {**BASE, "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:p", "ServiceTimeout": "600"},
            BASE,
            id="framework-properties-dropped",
        ),
        pytest.param(
            props(
                JobExecutionsRolloutConfig={"MaximumPerMinute": " 50 "},
                TimeoutConfig={"InProgressTimeoutInMinutes": "10080"},
            ),
            props(
                JobExecutionsRolloutConfig={"MaximumPerMinute": 50}, TimeoutConfig={"InProgressTimeoutInMinutes": 10080}
            ),
            id="integers-from-strings",
        ),
        pytest.param(
            props(AbortConfig={"CriteriaList": [criterion(ThresholdPercentage="12.75")]}),
            props(
                AbortConfig={
                    "CriteriaList": [
                        {
                            "FailureType": "FAILED",
                            "Action": "CANCEL",
                            "ThresholdPercentage": 12.75,
                            "MinNumberOfExecutedThings": 5,
                        }
                    ]
                }
            ),
            id="decimals-from-strings",
        ),
        pytest.param(
            props(JobExecutionsRolloutConfig=exponential(IncrementFactor="5.0")),
            props(
                JobExecutionsRolloutConfig={
                    "ExponentialRate": {
                        "BaseRatePerMinute": 10,
                        "IncrementFactor": 5.0,
                        "RateIncreaseCriteria": {"NumberOfNotifiedThings": 20},
                    }
                }
            ),
            id="increment-factor-at-its-maximum",
        ),
        pytest.param(
            props(Document=None, DocumentSource="https://b.s3.amazonaws.com/job.json"),
            props(Document=None, DocumentSource="https://b.s3.amazonaws.com/job.json"),
            id="document-source-instead-of-document",
        ),
        pytest.param(
            props(Document=None, JobTemplateArn=MANAGED_TEMPLATE, DocumentParameters={"downloadUrl": "https://x"}),
            props(Document=None, JobTemplateArn=MANAGED_TEMPLATE, DocumentParameters={"downloadUrl": "https://x"}),
            id="managed-template-with-parameters",
        ),
        pytest.param(
            props(JobId="j" * 64, Targets=[THING] * 100, Tags=tags(MAX_USER_TAGS)),
            props(JobId="j" * 64, Targets=[THING] * 100, Tags=tags(MAX_USER_TAGS)),
            id="every-count-at-its-limit",
        ),
    ],
)
def test_a_valid_property_set_parses_to_typed_values(raw: dict[str, Any], parsed: dict[str, Any]) -> None:
    assert schema.parse_properties(raw) == parsed


def test_parsing_leaves_the_event_s_properties_as_they_were() -> None:
    raw = props(JobExecutionsRolloutConfig={"MaximumPerMinute": "50"}, Tags=tags(2))
    before = copy.deepcopy(raw)

    schema.parse_properties(raw)

    assert raw == before


# --- Rejections: unknown, missing, wrong type, out of range -----------------


@pytest.mark.parametrize(
    ("raw", "path", "allowed"),
    [
        pytest.param(props(Targest=[GROUP]), "Targest", "Targets", id="top-level"),
        pytest.param(
            props(JobExecutionsRolloutConfig={"MaximumPerMinut": "5"}),
            "JobExecutionsRolloutConfig.MaximumPerMinut",
            "ExponentialRate, MaximumPerMinute",
            id="nested",
        ),
        pytest.param(
            props(Tags=[{"Key": "k", "Value": "v", "Vaule": "v"}]), "Tags[0].Vaule", "Key, Value", id="in-a-list-item"
        ),
    ],
)
def test_an_unknown_property_is_named_with_the_properties_allowed_there(
    raw: dict[str, Any], path: str, allowed: str
) -> None:
    message = rejection(raw)

    assert message.startswith(f"{path} is not a supported property (allowed: ")
    # The allowed list is the module's hint at the intended spelling.
    assert allowed in message


def test_an_unknown_property_with_a_very_long_name_is_shortened_in_the_message() -> None:
    message = rejection(props(**{"Z" * 500: "1"}))

    assert message.startswith("Z" * 57 + "... is not a supported property")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        # missing
        (props(Targets=None), "Targets is required"),
        (props(AbortConfig={}), "AbortConfig.CriteriaList is required"),
        (props(Tags=[{"Key": "k"}]), "Tags[0].Value is required"),
        (
            props(JobExecutionsRolloutConfig=exponential(RateIncreaseCriteria={})),
            "JobExecutionsRolloutConfig.ExponentialRate.RateIncreaseCriteria must set at least one of "
            "NumberOfNotifiedThings, NumberOfSucceededThings",
        ),
        # wrong type
        (props(Targets=GROUP), f"Targets {GROUP!r} must be a list"),
        (props(Description=12), "Description 12 must be a string"),
        (props(TimeoutConfig="60"), "TimeoutConfig '60' must be an object"),
        (
            props(TimeoutConfig={"InProgressTimeoutInMinutes": "1.5"}),
            "TimeoutConfig.InProgressTimeoutInMinutes '1.5' must be a whole number",
        ),
        (
            props(JobExecutionsRolloutConfig={"MaximumPerMinute": True}),
            "JobExecutionsRolloutConfig.MaximumPerMinute True must be a whole number",
        ),
        (
            props(AbortConfig={"CriteriaList": [criterion(ThresholdPercentage="ten")]}),
            "AbortConfig.CriteriaList[0].ThresholdPercentage 'ten' must be a number",
        ),
        # out of range
        (
            props(TimeoutConfig={"InProgressTimeoutInMinutes": "10081"}),
            "TimeoutConfig.InProgressTimeoutInMinutes '10081' must be at most 10080",
        ),
        (
            props(PresignedUrlConfig={"ExpiresInSec": "59"}),
            "PresignedUrlConfig.ExpiresInSec '59' must be at least 60",
        ),
        (
            props(JobExecutionsRolloutConfig={"MaximumPerMinute": "2147483648"}),
            "JobExecutionsRolloutConfig.MaximumPerMinute '2147483648' must be at most 2147483647",
        ),
        (
            props(JobExecutionsRolloutConfig=exponential(BaseRatePerMinute="1001")),
            "JobExecutionsRolloutConfig.ExponentialRate.BaseRatePerMinute '1001' must be at most 1000",
        ),
        (
            props(JobExecutionsRolloutConfig=exponential(IncrementFactor="1.0")),
            "JobExecutionsRolloutConfig.ExponentialRate.IncrementFactor '1.0' must be at least 1.1",
        ),
        (
            props(JobExecutionsRolloutConfig=exponential(IncrementFactor="1.15")),
            "JobExecutionsRolloutConfig.ExponentialRate.IncrementFactor '1.15' "
            "must have at most 1 digit(s) after the decimal point",
        ),
        (
            props(AbortConfig={"CriteriaList": [criterion(ThresholdPercentage="100.01")]}),
            "AbortConfig.CriteriaList[0].ThresholdPercentage '100.01' must be at most 100",
        ),
        (
            props(JobExecutionsRetryConfig={"CriteriaList": [{"FailureType": "ALL", "NumberOfRetries": "11"}]}),
            "JobExecutionsRetryConfig.CriteriaList[0].NumberOfRetries '11' must be at most 10",
        ),
        (
            props(
                SchedulingConfig={
                    "MaintenanceWindows": [{"StartTime": "cron(0 0 * * ? *)", "DurationInMinutes": "1431"}]
                }
            ),
            "SchedulingConfig.MaintenanceWindows[0].DurationInMinutes '1431' must be at most 1430",
        ),
        (props(Description=""), "Description '' must be at least 1 character(s) long"),
        (props(Description="line\nbreak"), "Description 'line\\nbreak' must not contain control characters"),
        # counts
        (props(Targets=[]), "Targets must have at least 1 item(s) (got 0)"),
        (props(Targets=[GROUP] * 101), "Targets must have at most 100 item(s) (got 101)"),
        (
            props(JobExecutionsRetryConfig={"CriteriaList": [{"FailureType": "ALL", "NumberOfRetries": "1"}] * 3}),
            "JobExecutionsRetryConfig.CriteriaList must have at most 2 item(s) (got 3)",
        ),
        # enums
        (
            props(AbortConfig={"CriteriaList": [criterion(FailureType="SOMETIMES")]}),
            "AbortConfig.CriteriaList[0].FailureType 'SOMETIMES' must be one of FAILED, REJECTED, TIMED_OUT, ALL",
        ),
        (props(DeleteBehavior="RETAIN"), "DeleteBehavior 'RETAIN' must be one of DELETE, CANCEL"),
        # patterns
        (
            props(Targets=["arn:aws:s3:us-east-1:123456789012:thinggroup/x"]),
            "Targets[0] 'arn:aws:s3:us-east-1:123456789012:thinggroup/x' must match "
            r"arn:[a-z0-9-]+:iot:[a-z0-9-]+:[0-9]{12}:(thing|thinggroup)/[a-zA-Z0-9:_-]+",
        ),
        (props(NamespaceId="fleet ns"), "NamespaceId 'fleet ns' must match [a-zA-Z0-9_-]+"),
        (props(DestinationPackageVersions=["v1"]), "DestinationPackageVersions[0] 'v1' must match arn:[!-~]+"),
        (
            props(SchedulingConfig={"StartTime": "2030-01-01 00:00"}),
            r"SchedulingConfig.StartTime '2030-01-01 00:00' must match \d{4}-\d{2}-\d{2}T\d{2}:\d{2}",
        ),
        (
            props(SchedulingConfig={"StartTime": "2030-02-30T00:00"}),
            "SchedulingConfig.StartTime '2030-02-30T00:00' must be a real date and time (YYYY-MM-DDTHH:MM, UTC)",
        ),
        (
            props(SchedulingConfig={"StartTime": "2030-01-01T00:00", "EndTime": "2030-01-01T00:29"}),
            "SchedulingConfig.EndTime '2030-01-01T00:29' must be at least 30 minutes after StartTime",
        ),
        # the document rules
        (props(Document=None), "one of Document or DocumentSource is required unless JobTemplateArn is set"),
        (
            props(DocumentSource="https://b.s3.amazonaws.com/job.json"),
            "Document and DocumentSource are mutually exclusive: set only one of them",
        ),
        (
            props(DocumentParameters={"downloadUrl": "https://x"}),
            "DocumentParameters requires JobTemplateArn naming an AWS managed template",
        ),
        (
            props(
                Document=None,
                JobTemplateArn="arn:aws:iot:us-east-1:123456789012:jobtemplate/mine",
                DocumentParameters={"downloadUrl": "https://x"},
            ),
            "JobTemplateArn 'arn:aws:iot:us-east-1:123456789012:jobtemplate/mine' must be an AWS managed template "
            "ARN (arn:<partition>:iot:<region>::jobtemplate/AWS-...) when DocumentParameters is set",
        ),
        (
            props(Document=None, JobTemplateArn=MANAGED_TEMPLATE, DocumentParameters={"bad key": "v"}),
            "DocumentParameters key 'bad key' must match [a-zA-Z0-9_-]+",
        ),
        ("Targets", "ResourceProperties must be an object"),
    ],
)
def test_a_bad_value_is_rejected_naming_its_path_and_the_rule(raw: Any, message: str) -> None:
    assert rejection(raw) == message


@pytest.mark.parametrize(
    ("job_id", "message"),
    [
        ("bad id!", "JobId 'bad id!' must match [a-zA-Z0-9_-]+"),
        ("firmware/2.4", "JobId 'firmware/2.4' must match [a-zA-Z0-9_-]+"),
        ("", "JobId '' must be at least 1 character(s) long"),
        ("j" * 65, "JobId '" + "j" * 56 + "... must be at most 64 characters long (got 65)"),
    ],
)
def test_a_job_id_iot_would_refuse_is_rejected_quoting_it(job_id: str, message: str) -> None:
    assert rejection(props(JobId=job_id)) == message
    # check() gives the same answer for the one property, and is_valid() agrees.
    with pytest.raises(InvalidPropertyError, match=re.escape(message)):
        schema.check("JobId", job_id)
    assert not schema.is_valid("JobId", job_id)


# --- Tags -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag_list", "message"),
    [
        ([{"Key": "aws:team", "Value": "v"}], "Tags[0].Key 'aws:team' must not start with the reserved prefix 'aws:'"),
        ([{"Key": "AWS:team", "Value": "v"}], "Tags[0].Key 'AWS:team' must not start with the reserved prefix 'aws:'"),
        (
            [{"Key": f"{OWNERSHIP_TAG_PREFIX}stack-id", "Value": "v"}],
            f"Tags[0].Key '{OWNERSHIP_TAG_PREFIX}stack-id' must not start with '{OWNERSHIP_TAG_PREFIX}', "
            "which the provider reserves for ownership tags",
        ),
        ([{"Key": "a#b", "Value": "v"}], "Tags[0].Key 'a#b' must contain only letters, digits, spaces and _.:/=+-@"),
        ([{"Key": "", "Value": "v"}], "Tags[0].Key '' must be at least 1 character(s) long"),
        (
            [{"Key": "k" * 129, "Value": "v"}],
            "Tags[0].Key '" + "k" * 56 + "... must be at most 128 characters long (got 129)",
        ),
        (
            [{"Key": "team", "Value": "a"}, {"Key": "team", "Value": "b"}],
            "Tags[1].Key 'team' is a duplicate: each must be unique",
        ),
        (tags(MAX_USER_TAGS + 1), f"Tags must have at most {MAX_USER_TAGS} item(s) (got {MAX_USER_TAGS + 1})"),
    ],
)
def test_a_tag_iot_or_the_provider_would_refuse_is_rejected_naming_it(
    tag_list: list[dict[str, str]], message: str
) -> None:
    assert rejection(props(Tags=tag_list)) == message


def test_the_most_user_tags_allowed_plus_the_ownership_tags_of_a_replacement_fit_iots_limit_of_50() -> None:
    ownership = Owner("stack", "Logical", "request").tags("fingerprint", replaces="old-job")

    assert MAX_USER_TAGS + len(ownership) == 50
    assert all(key.startswith(OWNERSHIP_TAG_PREFIX) for key in ownership)


@pytest.mark.parametrize(
    "key", ["team", "Ünïcode 名前", "a.b:c/d=e+f-g@h_i", "aws", "xaws:y", "cdk-iot-job", "k" * 128], ids=repr
)
def test_a_tag_key_within_the_rules_is_accepted(key: str) -> None:
    assert schema.parse_properties(props(Tags=[{"Key": key, "Value": ""}]))["Tags"] == [{"Key": key, "Value": ""}]


# --- Values that may be secrets are never quoted ----------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (props(Document='{"token":"' + SECRET + '"'), "Document must be valid JSON"),
        (props(Document={"token": SECRET}), "Document must be a string"),
        (
            props(Document='{"t":"' + SECRET + '"}' + " " * 32768),
            "Document must be at most 32768 characters long (got 32789)",
        ),
        (
            props(Document='{"u":"${aws:iot:s3-presigned-url:https://b.s3.amazonaws.com/' + SECRET + '*}"}'),
            f"Document {PLACEHOLDER_WILDCARD_RULE}",
        ),
        (
            props(Tags=[{"Key": "api-key", "Value": SECRET * 30}]),
            "Tags[0].Value must be at most 256 characters long (got 390)",
        ),
        (props(Tags=[{"Key": "api-key", "Value": [SECRET]}]), "Tags[0].Value must be a string"),
        (props(Tags=[SECRET]), "Tags[0] must be an object"),
        (props(Tags={"api-key": SECRET}), "Tags must be a list"),
        (
            props(Document=None, JobTemplateArn=MANAGED_TEMPLATE, DocumentParameters={"token": SECRET + "\x07"}),
            "DocumentParameters.token must not contain control characters",
        ),
        (
            props(Document=None, JobTemplateArn=MANAGED_TEMPLATE, DocumentParameters={"token": SECRET * 3000}),
            "DocumentParameters.token must be at most 30720 characters long (got 39000)",
        ),
        (props(DocumentParameters=[SECRET]), "DocumentParameters must be an object"),
        (SECRET, "ResourceProperties must be an object"),
    ],
)
def test_a_rejected_value_that_may_be_a_secret_is_named_but_never_quoted(raw: Any, message: str) -> None:
    assert rejection(raw) == message
    assert SECRET not in message


@pytest.mark.parametrize("name", sorted(SENSITIVE_PROPERTIES))
def test_no_sensitive_property_quotes_a_value_of_the_wrong_type(name: str) -> None:
    message = rejection(props(**{name: [SECRET, {"nested": SECRET}]}))

    assert message.startswith(name)
    assert SECRET not in message


def test_the_names_of_tags_and_document_parameters_are_quoted_since_they_are_no_secret() -> None:
    # A user has to see which key is wrong; only values are withheld.
    assert "'aws:secret-name'" in rejection(props(Tags=[{"Key": "aws:secret-name", "Value": SECRET}]))
    parameters = {"bad key!": SECRET}
    message = rejection(props(Document=None, JobTemplateArn=MANAGED_TEMPLATE, DocumentParameters=parameters))
    assert "'bad key!'" in message
    assert SECRET not in message


# --- IAM wildcards ----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            props(Document=None, DocumentSource="https://b.s3.amazonaws.com/jobs/*.json"),
            f"DocumentSource 'https://b.s3.amazonaws.com/jobs/*.json' {IAM_WILDCARD_RULE}",
        ),
        (
            props(Document=None, DocumentSource="https://b.s3.amazonaws.com/job?.json"),
            f"DocumentSource 'https://b.s3.amazonaws.com/job?.json' {IAM_WILDCARD_RULE}",
        ),
        (
            props(PresignedUrlConfig={"RoleArn": "arn:aws:iam::123456789012:role/ota-*"}),
            f"PresignedUrlConfig.RoleArn 'arn:aws:iam::123456789012:role/ota-*' {IAM_WILDCARD_RULE}",
        ),
        (
            props(Document='{"url":"${aws:iot:s3-presigned-url:https://b.s3.amazonaws.com/fw/*}"}'),
            f"Document {PLACEHOLDER_WILDCARD_RULE}",
        ),
        (
            props(Document='{"url":"${aws:iot:s3-presigned-url-v2:https://b.s3.amazonaws.com/fw?}"}'),
            f"Document {PLACEHOLDER_WILDCARD_RULE}",
        ),
        (
            # Decoded JSON is checked too: \u002a is a "*".
            props(Document='{"url":"${aws:iot:s3-presigned-url:https://b.s3.amazonaws.com/fw/\\u002a}"}'),
            f"Document {PLACEHOLDER_WILDCARD_RULE}",
        ),
    ],
)
def test_a_value_that_would_become_an_iam_wildcard_is_rejected(raw: dict[str, Any], message: str) -> None:
    assert rejection(raw) == message


@pytest.mark.parametrize(
    "document",
    [
        '{"url":"${aws:iot:s3-presigned-url:https://b.s3.amazonaws.com/fw/app.bin}"}',
        '{"pattern":"*.bin", "question":"why?"}',
        '{"url":"https://example.com/fw?version=2"}',
    ],
)
def test_wildcard_characters_outside_a_presigned_url_placeholder_are_fine(document: str) -> None:
    assert schema.parse_properties(props(Document=document))["Document"] == document


@pytest.mark.parametrize(
    ("text", "free"),
    [("arn:aws:iam::123456789012:role/ota", True), ("role/*", False), ("role/a?b", False), ("", True)],
)
def test_has_no_iam_wildcard_tells_whether_a_star_or_question_mark_occurs(text: str, free: bool) -> None:
    assert schema.has_no_iam_wildcard(text) is free


# --- Unresolved tokens (synth time) ----------------------------------------


def is_token(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("${Token[")


def test_unresolved_tokens_are_skipped_and_kept_as_they_are() -> None:
    raw = props(
        Targets=["${Token[TOKEN.1]}"],
        JobExecutionsRolloutConfig={"MaximumPerMinute": "${Token[TOKEN.2]}"},
        Document=None,
        JobTemplateArn="${Token[TOKEN.3]}",
        DocumentParameters={"downloadUrl": "https://x"},
    )

    assert schema.parse_properties(raw, is_unresolved=is_token) == raw


def test_a_resolved_bad_value_beside_a_token_is_still_rejected() -> None:
    raw = props(Targets=["${Token[TOKEN.1]}"], TimeoutConfig={"InProgressTimeoutInMinutes": "0"})

    with pytest.raises(
        InvalidPropertyError, match=r"^TimeoutConfig.InProgressTimeoutInMinutes '0' must be at least 1$"
    ):
        schema.parse_properties(raw, is_unresolved=is_token)


# --- to_api -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("parsed", "names", "api"),
    [
        pytest.param(
            BASE, None, {"targets": [GROUP], "document": BASE["Document"]}, id="top-level-names-lower-camel-case"
        ),
        pytest.param(
            props(
                JobId="fw-1",
                NamespaceId="AWS-fleet",
                TargetSelection="CONTINUOUS",
                JobExecutionsRolloutConfig={
                    "ExponentialRate": {
                        "BaseRatePerMinute": 10,
                        "IncrementFactor": 1.5,
                        "RateIncreaseCriteria": {"NumberOfSucceededThings": 5},
                    }
                },
                JobExecutionsRetryConfig={"CriteriaList": [{"FailureType": "TIMED_OUT", "NumberOfRetries": 2}]},
            ),
            None,
            {
                "targets": [GROUP],
                "document": BASE["Document"],
                "jobId": "fw-1",
                "namespaceId": "AWS-fleet",
                "targetSelection": "CONTINUOUS",
                "jobExecutionsRolloutConfig": {
                    "exponentialRate": {
                        "baseRatePerMinute": 10,
                        "incrementFactor": 1.5,
                        "rateIncreaseCriteria": {"numberOfSucceededThings": 5},
                    }
                },
                "jobExecutionsRetryConfig": {"criteriaList": [{"failureType": "TIMED_OUT", "numberOfRetries": 2}]},
            },
            id="nested-objects-and-lists",
        ),
        pytest.param(
            props(Tags=[{"Key": "team", "Value": "fw"}], DeleteBehavior="CANCEL"),
            None,
            {"targets": [GROUP], "document": BASE["Document"], "tags": [{"Key": "team", "Value": "fw"}]},
            id="tags-keep-key-and-value-delete-behavior-never-reaches-iot",
        ),
        pytest.param(
            props(Document=None, JobTemplateArn=MANAGED_TEMPLATE, DocumentParameters={"downloadUrl": "u", "Path": "p"}),
            None,
            {
                "targets": [GROUP],
                "jobTemplateArn": MANAGED_TEMPLATE,
                "documentParameters": {"downloadUrl": "u", "Path": "p"},
            },
            id="document-parameter-names-are-the-users-unchanged",
        ),
        pytest.param(
            props(Description="v2", TimeoutConfig={"InProgressTimeoutInMinutes": 60}, Tags=tags(1)),
            schema.UPDATABLE_API_PROPERTIES,
            {"description": "v2", "timeoutConfig": {"inProgressTimeoutInMinutes": 60}},
            id="only-the-names-asked-for-that-are-set",
        ),
    ],
)
def test_to_api_translates_properties_to_iot_request_members(
    parsed: dict[str, Any], names: tuple[str, ...] | None, api: dict[str, Any]
) -> None:
    assert schema.to_api(parsed, names) == api


FULL_SET = props(
    JobId="fw-2_4_1",
    Targets=[GROUP, THING],
    Description="Sensor firmware",
    TargetSelection="CONTINUOUS",
    PresignedUrlConfig={"RoleArn": "arn:aws:iam::123456789012:role/ota-presign", "ExpiresInSec": "3600"},
    JobExecutionsRolloutConfig=exponential(),
    AbortConfig={"CriteriaList": [criterion(FailureType="ALL", ThresholdPercentage="12.5")]},
    TimeoutConfig={"InProgressTimeoutInMinutes": "60"},
    JobExecutionsRetryConfig={"CriteriaList": [{"FailureType": "FAILED", "NumberOfRetries": "3"}]},
    SchedulingConfig={
        "StartTime": "2030-01-01T00:00",
        "EndTime": "2030-01-02T00:00",
        "EndBehavior": "STOP_ROLLOUT",
        "MaintenanceWindows": [{"StartTime": "cron(0 0 * * ? *)", "DurationInMinutes": "60"}],
    },
    DestinationPackageVersions=["arn:aws:iot:us-east-1:123456789012:package/fw/version/2.4.1"],
    Tags=[{"Key": "team", "Value": "firmware"}],
    NamespaceId="AWS-fleet",
    DeleteBehavior="CANCEL",
)


def test_a_full_property_set_becomes_a_create_job_request_botocore_accepts() -> None:
    create_job = botocore.session.get_session().get_service_model("iot").operation_model("CreateJob")
    request = schema.to_api(schema.parse_properties(FULL_SET))

    validate_parameters(request, create_job.input_shape)  # raises ParamValidationError on any wrong name or type
    assert set(request) == {
        "jobId",
        "targets",
        "document",
        "description",
        "targetSelection",
        "presignedUrlConfig",
        "jobExecutionsRolloutConfig",
        "abortConfig",
        "timeoutConfig",
        "jobExecutionsRetryConfig",
        "schedulingConfig",
        "destinationPackageVersions",
        "tags",
        "namespaceId",
    }


def test_the_updatable_members_become_an_update_job_request_botocore_accepts() -> None:
    update_job = botocore.session.get_session().get_service_model("iot").operation_model("UpdateJob")
    changes = schema.to_api(schema.parse_properties(FULL_SET), schema.UPDATABLE_API_PROPERTIES)

    validate_parameters({"jobId": "fw-2_4_1", **changes}, update_job.input_shape)
    assert set(changes) == {
        "description",
        "presignedUrlConfig",
        "jobExecutionsRolloutConfig",
        "abortConfig",
        "timeoutConfig",
    }


# --- create_only_fingerprint ------------------------------------------------

# Another valid value for each create-only property but JobId (a KeyError names one that has none).
ANOTHER_VALUE: dict[str, Any] = {
    "Targets": [THING],
    "Document": '{"operation":"update"}',
    "DocumentSource": "https://b.s3.amazonaws.com/other.json",
    "TargetSelection": "CONTINUOUS",
    "JobTemplateArn": "arn:aws:iot:us-east-1:123456789012:jobtemplate/other",
    "DocumentParameters": {"downloadUrl": "https://other"},
    "SchedulingConfig": {"StartTime": "2031-01-01T00:00"},
    "DestinationPackageVersions": ["arn:aws:iot:us-east-1:123456789012:package/fw/version/3"],
    "JobExecutionsRetryConfig": {"CriteriaList": [{"FailureType": "ALL", "NumberOfRetries": 1}]},
    "NamespaceId": "AWS-other",
}


@pytest.mark.parametrize("name", sorted(CREATE_ONLY_PROPERTIES - {"JobId"}))
def test_the_fingerprint_changes_when_a_create_only_property_changes(name: str) -> None:
    assert schema.create_only_fingerprint(BASE) != schema.create_only_fingerprint({**BASE, name: ANOTHER_VALUE[name]})


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"JobId": "renamed"}, id="JobId"),
        pytest.param({"Description": "v2"}, id="Description"),
        pytest.param({"PresignedUrlConfig": {"ExpiresInSec": 60}}, id="PresignedUrlConfig"),
        pytest.param({"JobExecutionsRolloutConfig": {"MaximumPerMinute": 5}}, id="JobExecutionsRolloutConfig"),
        pytest.param({"AbortConfig": {"CriteriaList": [criterion()]}}, id="AbortConfig"),
        pytest.param({"TimeoutConfig": {"InProgressTimeoutInMinutes": 5}}, id="TimeoutConfig"),
        pytest.param({"Tags": tags(3)}, id="Tags"),
        pytest.param({"DeleteBehavior": "CANCEL"}, id="DeleteBehavior"),
        pytest.param({"TargetSelection": "SNAPSHOT"}, id="TargetSelection-SNAPSHOT-is-the-default"),
    ],
)
def test_the_fingerprint_stays_when_only_an_updatable_property_or_the_job_id_changes(changes: dict[str, Any]) -> None:
    assert schema.create_only_fingerprint(BASE) == schema.create_only_fingerprint({**BASE, **changes})


def test_the_fingerprint_ignores_key_order_but_not_target_order() -> None:
    retry = {"CriteriaList": [{"FailureType": "ALL", "NumberOfRetries": 1}]}
    reordered = {"CriteriaList": [{"NumberOfRetries": 1, "FailureType": "ALL"}]}
    with_retry = {**BASE, "JobExecutionsRetryConfig": retry}

    assert schema.create_only_fingerprint(with_retry) == schema.create_only_fingerprint(
        {"JobExecutionsRetryConfig": reordered, **BASE}
    )
    # Targets keep their order in AWS::IoT::Job (insertionOrder): a new order is a new job.
    assert schema.create_only_fingerprint({**BASE, "Targets": [GROUP, THING]}) != schema.create_only_fingerprint(
        {**BASE, "Targets": [THING, GROUP]}
    )


# --- schedule_problems ------------------------------------------------------

NOW = datetime(2030, 6, 1, 12, 0)
TOO_SOON = "must be at least 30 minutes from now (UTC) when the job is created"


def schedule(**times: str) -> dict[str, Any]:
    return {"SchedulingConfig": times}


@pytest.mark.parametrize(
    ("properties", "problems"),
    [
        pytest.param({}, [], id="no-schedule"),
        pytest.param(schedule(StartTime="2030-06-01T12:30", EndTime="2032-05-31T12:00"), [], id="at-the-limits"),
        pytest.param(
            schedule(StartTime="2030-06-01T12:29"),
            [f"SchedulingConfig.StartTime '2030-06-01T12:29' {TOO_SOON}"],
            id="start-too-soon",
        ),
        pytest.param(
            schedule(StartTime="2031-06-01T12:01"),
            ["SchedulingConfig.StartTime '2031-06-01T12:01' must be at most one year from now when the job is created"],
            id="start-too-far",
        ),
        pytest.param(
            schedule(EndTime="2030-06-01T12:29"),
            [f"SchedulingConfig.EndTime '2030-06-01T12:29' {TOO_SOON}"],
            id="end-too-soon",
        ),
        pytest.param(
            schedule(EndTime="2032-05-31T12:01"),
            ["SchedulingConfig.EndTime '2032-05-31T12:01' must be at most two years from now when the job is created"],
            id="end-too-far",
        ),
        pytest.param(
            schedule(StartTime="2029-01-01T00:00", EndTime="2029-01-02T00:00"),
            [
                f"SchedulingConfig.StartTime '2029-01-01T00:00' {TOO_SOON}",
                f"SchedulingConfig.EndTime '2029-01-02T00:00' {TOO_SOON}",
            ],
            id="both-passed",
        ),
        pytest.param(schedule(StartTime="${Token[TOKEN.9]}"), [], id="unresolved-skipped"),
    ],
)
def test_schedule_problems_are_relative_to_the_given_now(properties: dict[str, Any], problems: list[str]) -> None:
    assert schema.schedule_problems(properties, NOW) == problems


@pytest.mark.parametrize(
    ("now", "too_soon"),
    [
        (datetime(2030, 6, 1, 12, 0, tzinfo=UTC), False),
        (datetime(2030, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))), False),
        (datetime(2030, 6, 1, 14, 1, tzinfo=timezone(timedelta(hours=2))), True),
        (datetime(2030, 6, 1, 7, 1, tzinfo=timezone(timedelta(hours=-5))), True),
    ],
    ids=["utc", "plus-2-same-instant", "plus-2-a-minute-later", "minus-5-a-minute-later"],
)
def test_schedule_times_are_utc_whatever_the_zone_of_now(now: datetime, too_soon: bool) -> None:
    problems = schema.schedule_problems(schedule(StartTime="2030-06-01T12:30"), now)

    assert bool(problems) is too_soon


# --- json_strings -----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "strings"),
    [
        ("text", ["text"]),
        (42, []),
        (None, []),
        ({"a": 1, "b": [True, "x", {"c": "y"}]}, ["a", "b", "x", "c", "y"]),
        ([["deep", ["deeper"]], "top"], ["deep", "deeper", "top"]),
        ({}, []),
    ],
)
def test_json_strings_yields_every_key_and_string_value_in_order(value: Any, strings: list[str]) -> None:
    assert list(schema.json_strings(value)) == strings


# --- The resource type --------------------------------------------------------


def test_the_resource_type_is_the_one_cloudformation_sends_in_events() -> None:
    assert schema.RESOURCE_TYPE == "Custom::IotJob"
    assert {sample(name)["ResourceType"] for name in ("create", "update", "delete")} == {schema.RESOURCE_TYPE}
