#!/usr/bin/env python3
"""Example app: a firmware rollout to a thing group, staged and guarded."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import Validations
from aws_cdk import aws_iot as iot
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk_iot_job import (
    AbortConfig,
    AbortCriteria,
    ExponentialRolloutRate,
    GateFailureAction,
    IotJob,
    IotJobProviderStack,
    JobDocument,
    JobExecutionFailureType,
    JobExecutionsRolloutConfig,
    RateIncreaseCriteria,
    RolloutGate,
    TargetSelection,
    TimeoutConfig,
)
from cdk_iot_job.nag import IotJobChecks


class FirmwareRolloutStack(cdk.Stack):
    """A thing group, a thing in it, and a staged firmware job for the group."""

    def __init__(self, scope: Construct, construct_id: str, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)
        fleet = iot.CfnThingGroup(self, "Fleet", thing_group_name="demo-sensors")
        sensor = iot.CfnThing(self, "Sensor", thing_name="demo-sensor-001")

        rollout = IotJob(
            self,
            "FirmwareRollout",
            targets=[fleet.attr_arn],
            target_selection=TargetSelection.CONTINUOUS,
            description="Sensor firmware 2.4.1",
            document={
                "operation": "firmware-update",
                "version": "2.4.1",
                "url": "https://firmware.example.com/sensor/2.4.1.bin",
            },
            job_executions_rollout_config=JobExecutionsRolloutConfig(
                exponential_rate=ExponentialRolloutRate(
                    base_rate_per_minute=5,
                    increment_factor=2.0,
                    rate_increase_criteria=RateIncreaseCriteria(number_of_succeeded_things=10),
                ),
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
            tags={"team": "firmware"},
        )

        reboot = IotJob(
            self,
            "CanaryReboot",
            targets=[self.format_arn(service="iot", resource="thing", resource_name=sensor.thing_name or "")],
            document={"operation": "reboot"},
            job_executions_rollout_config=JobExecutionsRolloutConfig(maximum_per_minute=50),
            timeout_config=TimeoutConfig(in_progress_timeout_in_minutes=15),
        )
        reboot.node.add_dependency(sensor)

        # The canary: the deploy succeeds only when these devices have installed the firmware.
        canaries = [iot.CfnThing(self, f"Canary{index}", thing_name=f"demo-canary-00{index}") for index in (1, 2, 3)]
        canary = IotJob(
            self,
            "CanaryFirmware",
            targets=canaries,
            description="Sensor firmware 2.4.1, canary devices first",
            document={
                "operation": "firmware-update",
                "version": "2.4.1",
                "url": "https://firmware.example.com/sensor/2.4.1.bin",
            },
            job_executions_rollout_config=JobExecutionsRolloutConfig(maximum_per_minute=10),
            timeout_config=TimeoutConfig(in_progress_timeout_in_minutes=15),
            rollout_gate=RolloutGate(
                min_succeeded_percent=100,
                max_failed_percent=0,
                bake_time=cdk.Duration.minutes(5),
                timeout=cdk.Duration.minutes(20),
                on_failure=GateFailureAction.CANCEL,
            ),
        )

        cdk.CfnOutput(self, "CanaryFirmwareVerdict", value=canary.resource.get_att_string("GateVerdict"))
        cdk.CfnOutput(self, "CanaryFirmwareSucceeded", value=canary.resource.get_att_string("SucceededThings"))
        cdk.CfnOutput(self, "FirmwareRolloutJobId", value=rollout.job_id)
        cdk.CfnOutput(self, "FirmwareRolloutJobArn", value=rollout.job_arn)
        cdk.CfnOutput(self, "FirmwareRolloutCreatedAt", value=rollout.created_at)
        cdk.CfnOutput(self, "CanaryRebootJobArn", value=reboot.job_arn)


class FirmwareFromFileStack(cdk.Stack):
    """A job document kept as a file in the repo, pointing at firmware through a presigned URL.

    The document is uploaded as an asset (DocumentSource); its placeholder gets
    a download role that can read exactly that firmware object.
    """

    def __init__(self, scope: Construct, construct_id: str, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)
        s3.Bucket(
            self,
            "Firmware",
            bucket_name="cdk-iot-job-demo-firmware",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
        )
        gateways = iot.CfnThingGroup(self, "Gateways", thing_group_name="demo-gateways")
        job = IotJob(
            self,
            "GatewayFirmware",
            targets=[gateways],
            target_selection=TargetSelection.CONTINUOUS,
            description="Gateway firmware 2.4.1 from a document file",
            document=JobDocument.from_file(Path(__file__).parent / "examples" / "firmware" / "sensor-2.4.1.job.json"),
            # A safe rollout (IotJobChecks): rate-limited, aborted on failures, and timed out within the
            # presigned URLs' 3600 s, so a device still in progress can download.
            job_executions_rollout_config=JobExecutionsRolloutConfig(maximum_per_minute=20),
            abort_config=AbortConfig(
                criteria_list=[
                    AbortCriteria(
                        failure_type=JobExecutionFailureType.ALL,
                        threshold_percentage=10,
                        min_number_of_executed_things=10,
                    )
                ]
            ),
            timeout_config=TimeoutConfig(in_progress_timeout_in_minutes=60),
        )
        cdk.CfnOutput(self, "GatewayFirmwareJobArn", value=job.job_arn)


app = cdk.App()
FirmwareRolloutStack(app, "CdkIotJobDemo")
FirmwareFromFileStack(app, "CdkIotJobFirmwareFile")
# For plain CloudFormation templates: exports cdk-iot-job-ServiceToken.
IotJobProviderStack(app, "IotJobProviderStack")
# IoT Jobs rules (docs/nag-rules.md): a finding fails the synth.
Validations.of(app).add_plugins(IotJobChecks(app))
app.synth()
