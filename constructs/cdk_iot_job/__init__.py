"""cdk-iot-job: an AWS IoT job as a CloudFormation resource, for the AWS CDK.

>>> job = IotJob(self, "FirmwareRollout", targets=[group_arn], document={"operation": "update"},
...              job_executions_rollout_config=JobExecutionsRolloutConfig(maximum_per_minute=50))

Names load on first use, so ``python -m cdk_iot_job.local`` does not start jsii.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cdk_iot_job_provider.schema import InvalidPropertyError

    from .config import (
        AbortAction,
        AbortConfig,
        AbortCriteria,
        DeleteBehavior,
        ExponentialRolloutRate,
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
    from .document import JobDocument
    from .iot_job import RESOURCE_TYPE, IotJob
    from .provider import IotJobProvider, IotJobProviderStack
    from .targets import JobTarget, JobTemplate

_HOMES = {
    "InvalidPropertyError": "cdk_iot_job_provider.schema",
    "RESOURCE_TYPE": "cdk_iot_job.iot_job",
    "IotJob": "cdk_iot_job.iot_job",
    "IotJobProvider": "cdk_iot_job.provider",
    "IotJobProviderStack": "cdk_iot_job.provider",
    "JobDocument": "cdk_iot_job.document",
    "JobTarget": "cdk_iot_job.targets",
    "JobTemplate": "cdk_iot_job.targets",
    **{
        name: "cdk_iot_job.config"
        for name in (
            "AbortAction",
            "AbortConfig",
            "AbortCriteria",
            "DeleteBehavior",
            "ExponentialRolloutRate",
            "JobEndBehavior",
            "JobExecutionFailureType",
            "JobExecutionsRetryConfig",
            "JobExecutionsRolloutConfig",
            "MaintenanceWindow",
            "PresignedUrlConfig",
            "RateIncreaseCriteria",
            "RetryCriteria",
            "RetryableFailureType",
            "SchedulingConfig",
            "TargetSelection",
            "TimeoutConfig",
        )
    },
}

__all__ = [
    "RESOURCE_TYPE",
    "AbortAction",
    "AbortConfig",
    "AbortCriteria",
    "DeleteBehavior",
    "ExponentialRolloutRate",
    "InvalidPropertyError",
    "IotJob",
    "IotJobProvider",
    "IotJobProviderStack",
    "JobDocument",
    "JobEndBehavior",
    "JobExecutionFailureType",
    "JobExecutionsRetryConfig",
    "JobExecutionsRolloutConfig",
    "JobTarget",
    "JobTemplate",
    "MaintenanceWindow",
    "PresignedUrlConfig",
    "RateIncreaseCriteria",
    "RetryCriteria",
    "RetryableFailureType",
    "SchedulingConfig",
    "TargetSelection",
    "TimeoutConfig",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'cdk_iot_job' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
