"""The stacks the quality gates (cdk-nag, cfn-lint) check.

``build_jobs_stack`` holds one ``IotJob`` per combination of props that
changes the synthesized resources (a generated presigned-URL role, a given
one, a document asset, a document in a KMS-encrypted bucket of the stack,
tags, AWS managed and customer templates, package versions, construct
targets, rollout gates on known and on deploy-time targets), and between
them every ``IotJob`` prop at least once.
``build_provider_stack`` is the provider on its own, for plain CloudFormation.

The resources the stack declares for the jobs to use (a KMS key, buckets,
things) are made compliant here, or acknowledged here with a reason: the
construct acknowledges findings on its own resources only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aws_cdk import Acknowledgment, CfnParameter, Duration, Environment, RemovalPolicy, Stack, Validations
from aws_cdk import aws_iot as iot
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk_iot_job import (
    AbortConfig,
    AbortCriteria,
    DeleteBehavior,
    ExponentialRolloutRate,
    GateFailureAction,
    IotJob,
    IotJobProviderStack,
    JobDocument,
    JobEndBehavior,
    JobExecutionFailureType,
    JobExecutionsRetryConfig,
    JobExecutionsRolloutConfig,
    JobTemplate,
    MaintenanceWindow,
    PresignedUrlConfig,
    RateIncreaseCriteria,
    RetryableFailureType,
    RetryCriteria,
    RolloutGate,
    SchedulingConfig,
    TargetSelection,
    TimeoutConfig,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ACCOUNT = "123456789012"
REGION = "us-east-1"
GROUP_ARN = "arn:aws:iot:us-east-1:123456789012:thinggroup/sensors"
GIVEN_ROLE_ARN = "arn:aws:iam::123456789012:role/firmware-download"
PACKAGE_VERSION_ARN = "arn:aws:iot:us-east-1:123456789012:package/gateway-fw/version/2.4.1"
S3_DOCUMENT_URL = "https://s3.amazonaws.com/firmware-bucket/jobs/reboot.json"
# A schedule must start 30 minutes to a year after synth.
_START = (datetime.now(UTC) + timedelta(days=10)).replace(hour=12, minute=0, second=0, microsecond=0)


@dataclass
class JobsStack:
    """The stack and its jobs."""

    stack: Stack
    jobs: dict[str, IotJob] = field(default_factory=dict)


def _firmware_bucket(stack: Stack) -> s3.Bucket:
    """A bucket as a careful user declares it: KMS with rotation, TLS only, no public access, logged."""
    key = kms.Key(stack, "FirmwareKey", enable_key_rotation=True, removal_policy=RemovalPolicy.DESTROY)
    access_logs = s3.Bucket(
        stack,
        "AccessLogs",
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        removal_policy=RemovalPolicy.DESTROY,
    )
    # The test's own resource, so acknowledged here: a log bucket logging to itself would loop.
    Validations.of(access_logs).acknowledge(
        Acknowledgment(
            id="AwsSolutions-S1",
            reason="The test's server access log bucket: it receives the firmware bucket's logs, not logged itself",
        )
    )
    return s3.Bucket(
        stack,
        "Firmware",
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix="firmware/",
        removal_policy=RemovalPolicy.DESTROY,
    )


def build_jobs_stack(scope: Construct, construct_id: str) -> JobsStack:
    """Every prop combination that changes the resources, and every prop once."""
    stack = Stack(scope, construct_id)
    # As cdk.json sets it (the CLI passes it, an App() in a test does not): access logs
    # are granted by a bucket policy, not by the legacy ACL (cfn-lint W3045).
    stack.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
    built = JobsStack(stack)
    firmware = _firmware_bucket(stack)
    fleet = iot.CfnThingGroup(stack, "Fleet", thing_group_name="sensors")
    device = iot.CfnThing(stack, "Device", thing_name="sensor-001")
    template = iot.CfnJobTemplate(
        stack,
        "UpdateTemplate",
        job_template_id="firmware-update",
        description="Firmware update",
        document='{"operation":"firmware-update"}',
    )
    firmware_url = JobDocument.presigned_url(firmware, "fw/2.4.1.bin")

    def add(name: str, **props: object) -> None:
        built.jobs[name] = IotJob(stack, name, **props)  # type: ignore[arg-type]

    # A generated presigned-URL role (object in a KMS bucket), and the rest of the scalar props.
    add(
        "GeneratedRole",
        job_id="firmware-2-4-1",
        targets=[fleet, device],
        document={"operation": "firmware-update", "url": firmware_url},
        description="Sensor firmware 2.4.1",
        target_selection=TargetSelection.CONTINUOUS,
        presigned_url_config=PresignedUrlConfig(expires_in_sec=900),
        job_executions_rollout_config=JobExecutionsRolloutConfig(
            exponential_rate=ExponentialRolloutRate(
                base_rate_per_minute=5,
                increment_factor=1.5,
                rate_increase_criteria=RateIncreaseCriteria(number_of_succeeded_things=10),
            )
        ),
        abort_config=AbortConfig(
            criteria_list=[
                AbortCriteria(
                    failure_type=JobExecutionFailureType.FAILED,
                    threshold_percentage=10,
                    min_number_of_executed_things=20,
                )
            ]
        ),
        timeout_config=TimeoutConfig(in_progress_timeout_in_minutes=60),
        job_executions_retry_config=JobExecutionsRetryConfig(
            criteria_list=[RetryCriteria(failure_type=RetryableFailureType.FAILED, number_of_retries=2)]
        ),
        scheduling_config=SchedulingConfig(
            start_time=_START,
            end_time=_START + timedelta(days=7),
            end_behavior=JobEndBehavior.CANCEL,
            maintenance_windows=[MaintenanceWindow(start_time="cron(0 22 ? * SAT *)", duration_in_minutes=120)],
        ),
        namespace_id="fleet-ns",
        delete_behavior=DeleteBehavior.CANCEL,
        removal_policy=RemovalPolicy.RETAIN,
    )
    # A given presigned-URL role: the provider may pass it to IoT.
    add(
        "GivenRole",
        targets=[GROUP_ARN],
        document={"operation": "firmware-update", "url": firmware_url},
        presigned_url_config=PresignedUrlConfig(role_arn=GIVEN_ROLE_ARN, expires_in_sec=300),
    )
    # A document asset whose placeholder names a literal bucket: asset read grant + generated role.
    add("DocumentAsset", targets=[GROUP_ARN], document=JobDocument.from_file(FIXTURES / "firmware-2.4.1.job.json"))
    # A document in the stack's KMS bucket: the provider reads the object and decrypts with the key.
    add(
        "DocumentInKmsBucket",
        targets=[GROUP_ARN],
        document=JobDocument.from_bucket(firmware, "jobs/firmware-2.4.1.json"),
    )
    add("DocumentSource", targets=[GROUP_ARN], document_source=S3_DOCUMENT_URL)
    add("Tagged", targets=[GROUP_ARN], document={"operation": "reboot"}, tags={"team": "firmware"})
    add(
        "ManagedTemplate",
        targets=[GROUP_ARN],
        job_template=JobTemplate.managed("AWS-Download-File", "1.0"),
        document_parameters={"downloadUrl": "https://example.com/fw.bin", "filePath": "/tmp/fw.bin"},
    )
    add("CustomerTemplate", targets=[GROUP_ARN], job_template=template)
    add(
        "CustomerTemplateArn",
        targets=[GROUP_ARN],
        job_template_arn="arn:aws:iot:us-east-1:123456789012:jobtemplate/firmware-update-v2",
    )
    add(
        "Packaged",
        targets=[GROUP_ARN],
        document={"operation": "install"},
        destination_package_versions=[PACKAGE_VERSION_ARN],
    )
    add(
        "Staged",
        targets=[GROUP_ARN],
        document='{"operation":"reboot"}',
        job_executions_rollout_config=JobExecutionsRolloutConfig(maximum_per_minute=50),
    )
    # A rollout gate: the gate's own policy (self-invoke, DescribeStacks, the group targets' members) ...
    add(
        "Gated",
        targets=[fleet, GROUP_ARN, device],
        document={"operation": "firmware-update", "version": "2.4.2"},
        rollout_gate=RolloutGate(
            min_succeeded_percent=95,
            max_failed_percent=2.5,
            failure_types=[JobExecutionFailureType.FAILED, "TIMED_OUT"],
            bake_time=Duration.minutes(10),
            timeout=Duration.minutes(45),
            expected_targets=100,
            on_failure=GateFailureAction.CANCEL_FORCE,
        ),
    )
    # ... and one whose targets are known only at deploy time: every thing group of the account and region.
    deploy_time_targets = CfnParameter(
        stack, "GatedTargets", type="CommaDelimitedList", description="Thing or thing group ARNs of the gated job"
    )
    add(
        "GatedDeployTimeTargets",
        targets=deploy_time_targets.value_as_list,
        document={"operation": "reboot"},
        rollout_gate=RolloutGate(min_succeeded_percent=100),
    )
    return built


def build_provider_stack(scope: Construct, construct_id: str) -> IotJobProviderStack:
    """The provider alone, allowed to pass one presigned-URL role.

    Its environment is explicit (the jobs stack's is not), so the provider's
    ARNs hold a literal account and region here.
    """
    return IotJobProviderStack(
        scope,
        construct_id,
        pass_role_arns=[GIVEN_ROLE_ARN],
        export_name=f"{construct_id}-ServiceToken",
        env=Environment(account=ACCOUNT, region=REGION),
    )
