"""cdk-iot-job: an AWS IoT job as a CloudFormation resource, for the AWS CDK.

>>> job = IotJob(self, "FirmwareRollout", targets=[group_arn], document={"operation": "update"},
...              job_executions_rollout_config=JobExecutionsRolloutConfig(maximum_per_minute=50),
...              rollout_gate=RolloutGate(min_succeeded_percent=95, max_failed_percent=2))
"""

from importlib.metadata import version as _distribution_version

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
from .provider import IotJobProvider
from .provider_stack import IotJobProviderStack
from .rollout_gate import GateFailureAction, RolloutGate
from .targets import JobTarget, JobTemplate

#: The installed distribution's version (``cdk-iot-job``), from its metadata.
__version__ = _distribution_version("cdk-iot-job")

__all__ = [
    "RESOURCE_TYPE",
    "AbortAction",
    "AbortConfig",
    "AbortCriteria",
    "DeleteBehavior",
    "ExponentialRolloutRate",
    "GateFailureAction",
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
    "RolloutGate",
    "SchedulingConfig",
    "TargetSelection",
    "TimeoutConfig",
]
