"""cdk-iot-job: an AWS IoT job as a CloudFormation resource, for the AWS CDK.

>>> job = IotJob(self, "FirmwareRollout", targets=[group_arn], document={"operation": "update"},
...              job_executions_rollout_config=JobExecutionsRolloutConfig(maximum_per_minute=50),
...              rollout_gate=RolloutGate(min_succeeded_percent=95, max_failed_percent=2))
"""

from importlib.metadata import version as _distribution_version
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from .nag import IotJobChecks

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
    "IotJobChecks",
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


def __getattr__(name: str) -> Any:
    # IotJobChecks needs cdk-nag (the [nag] extra): imported on first use, so that
    # `import cdk_iot_job` neither needs nor loads it.
    if name == "IotJobChecks":
        from .nag import IotJobChecks

        return IotJobChecks
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
