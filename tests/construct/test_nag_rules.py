"""IotJobChecks: each IoT Jobs rule reports the job it is about and nothing else.

One app, synthesized once per module with the pack as a CDK validation plugin
(cdk-nag 3); each stack holds one job that breaks one rule (or none), so a
finding's construct path names its case. The findings are read from
``validation-report.json``. app.py, which adds the pack itself, is synthesized
in a process of its own, as ``cdk synth`` runs it.
"""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Acknowledgment, App, CfnParameter, Duration, Stack, Validations
from aws_cdk import aws_iot as iot

from cdk_iot_job import (
    AbortConfig,
    AbortCriteria,
    IotJob,
    JobExecutionFailureType,
    JobExecutionsRetryConfig,
    JobExecutionsRolloutConfig,
    JobTemplate,
    PresignedUrlConfig,
    RetryCriteria,
    RolloutGate,
    TargetSelection,
    TimeoutConfig,
)
from cdk_iot_job.nag import RULES, IotJobChecks, Level
from cdk_iot_job.nag.document_urls import unsafe_urls
from cdk_iot_job.nag.gate_timeout import minutes_to_notify

REPO = Path(__file__).resolve().parents[2]
PLACEHOLDER = "${aws:iot:s3-presigned-url:https://fw-bucket.s3.us-east-1.amazonaws.com/sensor/2.4.1.bin}"
ABORT_AT_10_PERCENT = AbortConfig(
    criteria_list=[
        AbortCriteria(
            failure_type=JobExecutionFailureType.FAILED, threshold_percentage=10, min_number_of_executed_things=20
        )
    ]
)
RETRY_TIMEOUTS = JobExecutionsRetryConfig(criteria_list=[RetryCriteria(failure_type="TIMED_OUT", number_of_retries=2)])


def safe(stack: Stack, **changes: Any) -> dict[str, Any]:
    """The props of a job that breaks no rule: rate-limited, aborting, timing out, over https."""
    group = iot.CfnThingGroup(stack, "Fleet", thing_group_name=f"{stack.stack_name.lower()}-fleet")
    props: dict[str, Any] = {
        "targets": [group],
        "document": {"operation": "firmware-update", "url": "https://firmware.example.com/sensor/2.4.1.bin"},
        "job_executions_rollout_config": JobExecutionsRolloutConfig(maximum_per_minute=50),
        "abort_config": ABORT_AT_10_PERCENT,
        "timeout_config": TimeoutConfig(in_progress_timeout_in_minutes=60),
    }
    props.update(changes)
    return {key: value for key, value in props.items() if value is not None}


def things(stack: Stack, count: int) -> list[iot.CfnThing]:
    return [
        iot.CfnThing(stack, f"Thing{index}", thing_name=f"{stack.stack_name.lower()}-{index}") for index in range(count)
    ]


# Each case: a stack name and what it builds. Names say the behaviour; *Safe* ones break no rule.
CASES: dict[str, Callable[[Stack], Any]] = {
    "Safe": lambda s: IotJob(s, "Job", **safe(s)),
    "NoRolloutRate": lambda s: IotJob(s, "Job", **safe(s, job_executions_rollout_config=None)),
    "ThingsOnlyNoRateNoAbort": lambda s: IotJob(
        s, "Job", **safe(s, targets=things(s, 2), job_executions_rollout_config=None, abort_config=None)
    ),
    "TokenTargetsNoRateNoAbort": lambda s: IotJob(
        s,
        "Job",
        **safe(
            s,
            targets=[CfnParameter(s, "Target", type="String").value_as_string],
            job_executions_rollout_config=None,
            abort_config=None,
        ),
    ),
    "NoAbort": lambda s: IotJob(s, "Job", **safe(s, abort_config=None)),
    "NoTimeout": lambda s: IotJob(s, "Job", **safe(s, timeout_config=None)),
    "HttpDocument": lambda s: IotJob(s, "Job", **safe(s, document={"url": "http://firmware.example.com/fw.bin"})),
    "EscapedHttpDocument": lambda s: IotJob(
        s, "Job", **safe(s, document='{"url": "http:\\/\\/firmware.example.com\\/fw.bin"}')
    ),
    "UnsignedS3Document": lambda s: IotJob(
        s, "Job", **safe(s, document={"url": "https://fw-bucket.s3.us-east-1.amazonaws.com/fw.bin"})
    ),
    "HttpTemplateParameter": lambda s: IotJob(
        s,
        "Job",
        **safe(
            s,
            document=None,
            job_template=JobTemplate.managed("AWS-Download-File", "1.0"),
            document_parameters={"downloadUrl": "http://firmware.example.com/fw.bin", "filePath": "/tmp/fw"},
        ),
    ),
    "SafePresignedDocuments": lambda s: IotJob(
        s,
        "Job",
        **safe(
            s,
            document={
                "placeholder": PLACEHOLDER,
                "signed": "https://fw-bucket.s3.amazonaws.com/fw.bin?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=ab",
            },
        ),
    ),
    "TimedOutRetryNoTimeout": lambda s: IotJob(
        s, "Job", **safe(s, timeout_config=None, job_executions_retry_config=RETRY_TIMEOUTS)
    ),
    "SafeTimedOutRetry": lambda s: IotJob(s, "Job", **safe(s, job_executions_retry_config=RETRY_TIMEOUTS)),
    "ShortPresignedExpiry": lambda s: IotJob(
        s,
        "Job",
        **safe(s, document={"url": PLACEHOLDER}, presigned_url_config=PresignedUrlConfig(expires_in_sec=600)),
    ),
    "SafePresignedExpiry": lambda s: IotJob(s, "Job", **safe(s, document={"url": PLACEHOLDER})),
    "EndlessContinuous": lambda s: IotJob(
        s, "Job", **safe(s, target_selection=TargetSelection.CONTINUOUS, abort_config=None)
    ),
    "SafeContinuous": lambda s: IotJob(s, "Job", **safe(s, target_selection=TargetSelection.CONTINUOUS)),
    "GateLooserThanAbort": lambda s: IotJob(
        s, "Job", **safe(s, rollout_gate=RolloutGate(min_succeeded_percent=80, max_failed_percent=20))
    ),
    "GateWithoutMaxLooserThanAbort": lambda s: IotJob(
        s, "Job", **safe(s, rollout_gate=RolloutGate(min_succeeded_percent=50))
    ),
    "SafeGate": lambda s: IotJob(
        s, "Job", **safe(s, rollout_gate=RolloutGate(min_succeeded_percent=95, max_failed_percent=5))
    ),
    "GateShorterThanRollout": lambda s: IotJob(
        s,
        "Job",
        **safe(
            s,
            job_executions_rollout_config=JobExecutionsRolloutConfig(maximum_per_minute=10),
            rollout_gate=RolloutGate(min_succeeded_percent=100, max_failed_percent=0, expected_targets=1000),
        ),
    ),
    "SafeGateOnThings": lambda s: IotJob(
        s,
        "Job",
        **safe(
            s,
            targets=things(s, 3),
            job_executions_rollout_config=JobExecutionsRolloutConfig(maximum_per_minute=1),
            rollout_gate=RolloutGate(
                min_succeeded_percent=100,
                max_failed_percent=0,
                bake_time=Duration.minutes(5),
                timeout=Duration.minutes(8),
            ),
        ),
    ),
    "GateOnThingsTooShort": lambda s: IotJob(
        s,
        "Job",
        **safe(
            s,
            targets=things(s, 3),
            job_executions_rollout_config=JobExecutionsRolloutConfig(maximum_per_minute=1),
            rollout_gate=RolloutGate(
                min_succeeded_percent=100,
                max_failed_percent=0,
                bake_time=Duration.minutes(5),
                timeout=Duration.minutes(6),
            ),
        ),
    ),
    "Acknowledged": lambda s: Validations.of(IotJob(s, "Job", **safe(s, timeout_config=None))).acknowledge(
        Acknowledgment(id="IotJob-R3", reason="devices report their own step timeouts")
    ),
    "NativeUnsafe": lambda s: iot.CfnJob(
        s,
        "Job",
        job_id="native-unsafe",
        targets=[iot.CfnThingGroup(s, "Fleet", thing_group_name="native-fleet").attr_arn],
        document='{"url": "http://firmware.example.com/fw.bin"}',
        target_selection="CONTINUOUS",
        job_executions_retry_config=iot.CfnJob.JobExecutionsRetryConfigProperty(
            criteria_list=[iot.CfnJob.RetryCriteriaProperty(failure_type="ALL", number_of_retries=1)]
        ),
    ),
    "NativeSafe": lambda s: iot.CfnJob(
        s,
        "Job",
        job_id="native-safe",
        targets=[iot.CfnThingGroup(s, "Fleet", thing_group_name="native-safe-fleet").attr_arn],
        document='{"url": "https://firmware.example.com/fw.bin"}',
        target_selection="CONTINUOUS",
        job_executions_rollout_config=iot.CfnJob.JobExecutionsRolloutConfigProperty(
            exponential_rate=iot.CfnJob.ExponentialRolloutRateProperty(
                base_rate_per_minute=5,
                increment_factor=2,
                rate_increase_criteria=iot.CfnJob.RateIncreaseCriteriaProperty(number_of_succeeded_things=10),
            )
        ),
        abort_config=iot.CfnJob.AbortConfigProperty(
            criteria_list=[
                iot.CfnJob.AbortCriteriaProperty(
                    action="CANCEL", failure_type="ALL", min_number_of_executed_things=10, threshold_percentage=5
                )
            ]
        ),
        timeout_config=iot.CfnJob.TimeoutConfigProperty(in_progress_timeout_in_minutes=30),
    ),
}


@dataclass
class Report:
    findings: dict[str, set[str]]  # stack name -> rule ids reported on it
    severities: dict[str, str]  # rule id -> severity
    error: str | None


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    outdir = tmp_path_factory.mktemp("nag-rules.out")
    app = App(outdir=str(outdir))
    for name, build in CASES.items():
        build(Stack(app, name))
    Validations.of(app).add_plugins(IotJobChecks(app))
    error = None
    try:
        app.synth()
    except RuntimeError as failure:  # ValidationFailed: the findings are in the report
        error = str(failure)
    document = json.loads((outdir / "validation-report.json").read_text())
    findings: dict[str, set[str]] = {name: set() for name in CASES}
    severities: dict[str, str] = {}
    for plugin in document["pluginReports"]:
        assert plugin["pluginName"] == "IotJob"
        for violation in plugin.get("violations") or []:
            severities[violation["ruleName"]] = violation["severity"]
            for construct in violation["violatingConstructs"]:
                findings[construct["constructPath"].split("/")[0]].add(violation["ruleName"])
    return Report(findings, severities, error)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("Safe", set()),
        ("NoRolloutRate", {"IotJob-R1"}),
        ("NoAbort", {"IotJob-R2"}),
        ("NoTimeout", {"IotJob-R3"}),
        ("HttpDocument", {"IotJob-R4"}),
        ("EscapedHttpDocument", {"IotJob-R4"}),
        ("UnsignedS3Document", {"IotJob-R4"}),
        ("HttpTemplateParameter", {"IotJob-R4"}),
        ("SafePresignedDocuments", set()),
        ("TimedOutRetryNoTimeout", {"IotJob-R3", "IotJob-R5"}),
        ("SafeTimedOutRetry", set()),
        ("ShortPresignedExpiry", {"IotJob-R6"}),
        ("SafePresignedExpiry", set()),
        ("EndlessContinuous", {"IotJob-R2", "IotJob-R7"}),
        ("SafeContinuous", set()),
        ("GateLooserThanAbort", {"IotJob-R8"}),
        ("GateWithoutMaxLooserThanAbort", {"IotJob-R8"}),
        ("SafeGate", set()),
        ("GateShorterThanRollout", {"IotJob-R9"}),
        ("SafeGateOnThings", set()),
        ("GateOnThingsTooShort", {"IotJob-R9"}),
    ],
)
def test_each_job_gets_exactly_the_findings_of_the_rules_it_breaks(
    report: Report, case: str, expected: set[str]
) -> None:
    assert report.findings[case] == expected


def test_jobs_on_things_only_need_no_rollout_rate_or_abort_criteria(report: Report) -> None:
    assert report.findings["ThingsOnlyNoRateNoAbort"] == set()


def test_targets_unknown_at_synth_are_not_guessed_to_be_thing_groups(report: Report) -> None:
    assert report.findings["TokenTargetsNoRateNoAbort"] == set()


def test_an_acknowledged_finding_is_not_reported(report: Report) -> None:
    assert report.findings["Acknowledged"] == set()
    assert "IotJob-R3" in report.findings["NoTimeout"]  # the same job unacknowledged


def test_a_native_cfn_job_is_checked_by_every_rule_but_the_gate_rules(report: Report) -> None:
    assert report.findings["NativeUnsafe"] == {f"IotJob-R{n}" for n in (1, 2, 3, 4, 5, 7)}
    assert report.findings["NativeSafe"] == set()


def test_findings_fail_the_synth_with_the_rules_levels(report: Report) -> None:
    assert report.error is not None and "ValidationFailed" in report.error
    # cdk-nag 3 reports INFO as a warning, like WARN.
    expected = {
        f"{rule_id}": ("error" if rule.level is Level.ERROR else "warning")
        for rule in RULES
        for rule_id in [f"IotJob-{rule.suffix}"]
    }
    assert report.severities == expected


def test_every_rule_is_documented_with_its_level_and_resources() -> None:
    table = (REPO / "docs" / "nag-rules.md").read_text()
    for rule in RULES:
        assert f"| `IotJob-{rule.suffix}` | {rule.level.value.lower()} |" in table


def test_every_message_names_the_python_keyword_and_the_cloudformation_property() -> None:
    for rule in RULES:
        assert "_" in rule.info.split(" (")[0] or "(" in rule.info, rule.suffix
        assert "(" in rule.info and ")" in rule.info, rule.suffix


@pytest.mark.parametrize(
    ("text", "unsafe"),
    [
        ("http://example.com/fw.bin", ["http://example.com/fw.bin"]),
        ("HTTP://EXAMPLE.COM/fw.bin", ["HTTP://EXAMPLE.COM/fw.bin"]),
        ("https://example.com/fw.bin", []),
        ("https://bucket.s3.amazonaws.com/fw.bin", ["https://bucket.s3.amazonaws.com/fw.bin"]),
        ("https://s3.eu-west-1.amazonaws.com/bucket/fw.bin", ["https://s3.eu-west-1.amazonaws.com/bucket/fw.bin"]),
        ("https://bucket.s3-us-west-2.amazonaws.com/fw.bin", ["https://bucket.s3-us-west-2.amazonaws.com/fw.bin"]),
        (
            "https://bucket.s3.cn-north-1.amazonaws.com.cn/fw.bin",
            ["https://bucket.s3.cn-north-1.amazonaws.com.cn/fw.bin"],
        ),
        ("https://bucket.s3.amazonaws.com/fw.bin?X-Amz-Signature=abc", []),
        ("https://bucket.s3.amazonaws.com/fw.bin?AWSAccessKeyId=a&Signature=abc&Expires=1", []),
        (PLACEHOLDER, []),
        ("${aws:iot:s3-presigned-url-v2:https://s3.us-east-1.amazonaws.com/b/k}", []),
        ("get https://bucket.s3.amazonaws.com/a then " + PLACEHOLDER, ["https://bucket.s3.amazonaws.com/a"]),
    ],
)
def test_unsafe_urls_are_plain_http_and_unsigned_s3(text: str, unsafe: list[str]) -> None:
    assert list(unsafe_urls(text)) == unsafe


@pytest.mark.parametrize(
    ("things", "rollout", "minutes"),
    [
        (10, {"MaximumPerMinute": 10}, 0),
        (11, {"MaximumPerMinute": 10}, 1),
        (1000, {"MaximumPerMinute": 10}, 99),
        # 5/min, doubling every 10 notified: 5, 5, 10, 20, 80 a minute -> the 75th is notified during the 5th
        (
            75,
            {
                "ExponentialRate": {
                    "BaseRatePerMinute": 5,
                    "IncrementFactor": 2,
                    "RateIncreaseCriteria": {"NumberOfNotifiedThings": 10},
                }
            },
            4,
        ),
        (0, {"MaximumPerMinute": 1}, 0),
        (10, {}, None),
    ],
)
def test_minutes_to_notify_is_the_fastest_the_rollout_allows(
    things: int, rollout: dict[str, Any], minutes: int | None
) -> None:
    assert minutes_to_notify(things, rollout, give_up_after=1000) == minutes


def test_app_py_passes_the_pack_without_acknowledgements(tmp_path: Path) -> None:
    # GIVEN app.py, which adds IotJobChecks to its app, synthesized as `cdk synth` runs it
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    env = {key: value for key, value in os.environ.items() if not key.startswith("CDK_")}
    env.update(CDK_OUTDIR=str(tmp_path), CDK_CONTEXT_JSON=json.dumps(context))
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    # THEN the synth succeeds and the pack reported and acknowledged nothing
    assert result.returncode == 0, result.stdout + result.stderr
    source = (REPO / "app.py").read_text()
    assert "IotJobChecks(app)" in source
    assert "acknowledge" not in source
    report_path = tmp_path / "validation-report.json"
    if report_path.is_file():
        plugins = json.loads(report_path.read_text())["pluginReports"]
        assert all(not plugin.get("violations") for plugin in plugins if plugin["pluginName"] == "IotJob")
