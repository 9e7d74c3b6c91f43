"""Typed values for the nested ``AWS::IoT::Job`` properties.

Each class mirrors one structure of the resource, with snake_case fields that
render to the PascalCase property names (``maximum_per_minute`` becomes
``MaximumPerMinute``). Values are checked by the shared schema when the
``IotJob`` is built, not here, so there is one set of rules.
"""

from __future__ import annotations

import dataclasses
import enum
from datetime import UTC, datetime
from typing import Any

from aws_cdk import Duration

__all__ = [
    "CFN_NAME",
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
    "to_cfn",
]


class TargetSelection(enum.StrEnum):
    """Whether the job keeps running for targets added later."""

    SNAPSHOT = "SNAPSHOT"
    """The job completes once the targets at creation time have run it (the default)."""
    CONTINUOUS = "CONTINUOUS"
    """Things added to a target thing group later also receive the job."""


class DeleteBehavior(enum.StrEnum):
    """What the provider does to the job when the resource is deleted."""

    DELETE = "DELETE"
    """Delete the job, forcing in-progress executions (the default)."""
    CANCEL = "CANCEL"
    """Cancel the job and keep its record; executions already running may finish."""


class JobExecutionFailureType(enum.StrEnum):
    """Failure types that can abort a job."""

    FAILED = "FAILED"
    REJECTED = "REJECTED"
    TIMED_OUT = "TIMED_OUT"
    ALL = "ALL"


class RetryableFailureType(enum.StrEnum):
    """Failure types that can be retried."""

    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    ALL = "ALL"


class AbortAction(enum.StrEnum):
    """What an abort does."""

    CANCEL = "CANCEL"


class JobEndBehavior(enum.StrEnum):
    """What happens to executions when a scheduled job reaches its end time."""

    STOP_ROLLOUT = "STOP_ROLLOUT"
    CANCEL = "CANCEL"
    FORCE_CANCEL = "FORCE_CANCEL"


@dataclasses.dataclass(frozen=True, kw_only=True)
class PresignedUrlConfig:
    """Pre-signed S3 URLs in the job document.

    Attributes
    ----------
    role_arn
        Role IoT assumes to sign the URLs. No default.
    expires_in_sec
        URL lifetime, 60 to 3600 seconds. Default: IoT's 3600.
    """

    role_arn: str | None = None
    expires_in_sec: int | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class RateIncreaseCriteria:
    """When an exponential rollout speeds up: set at least one threshold."""

    number_of_notified_things: int | None = None
    number_of_succeeded_things: int | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExponentialRolloutRate:
    """A rollout that starts at ``base_rate_per_minute`` and grows by ``increment_factor``."""

    base_rate_per_minute: int
    increment_factor: float
    rate_increase_criteria: RateIncreaseCriteria


@dataclasses.dataclass(frozen=True, kw_only=True)
class JobExecutionsRolloutConfig:
    """A staged rollout.

    Attributes
    ----------
    maximum_per_minute
        Things notified per minute at most. Default: no limit.
    exponential_rate
        An exponentially increasing rate. Default: none.
    """

    maximum_per_minute: int | None = None
    exponential_rate: ExponentialRolloutRate | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class AbortCriteria:
    """Abort the job when ``threshold_percentage`` of executions fail this way."""

    failure_type: JobExecutionFailureType | str
    threshold_percentage: float
    min_number_of_executed_things: int
    action: AbortAction | str = AbortAction.CANCEL


@dataclasses.dataclass(frozen=True, kw_only=True)
class AbortConfig:
    """When and how the job aborts."""

    criteria_list: list[AbortCriteria]


@dataclasses.dataclass(frozen=True, kw_only=True)
class TimeoutConfig:
    """How long a device has to finish, 1 to 10080 minutes. Default: no timeout."""

    in_progress_timeout_in_minutes: int | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class RetryCriteria:
    """Retries allowed (0 to 10) for one failure type."""

    failure_type: RetryableFailureType | str
    number_of_retries: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class JobExecutionsRetryConfig:
    """Retries of failed executions: one or two criteria."""

    criteria_list: list[RetryCriteria]


@dataclasses.dataclass(frozen=True, kw_only=True)
class MaintenanceWindow:
    """A recurring window: a cron ``start_time`` and 1 to 1430 minutes.

    ``duration_in_minutes`` takes a whole number of minutes or a ``Duration``.
    """

    start_time: str
    duration_in_minutes: int | Duration


@dataclasses.dataclass(frozen=True, kw_only=True)
class SchedulingConfig:
    """When the rollout starts and ends.

    Attributes
    ----------
    start_time, end_time
        ``datetime`` (rendered in UTC as ``YYYY-MM-DDTHH:MM``; a naive one is
        taken as UTC) or IoT's string form. Default: start now, no end.
    end_behavior
        What happens at ``end_time``. Default: IoT's ``STOP_ROLLOUT``.
    maintenance_windows
        Recurring windows for the rollout. Default: none.
    """

    start_time: datetime | str | None = None
    end_time: datetime | str | None = None
    end_behavior: JobEndBehavior | str | None = None
    maintenance_windows: list[MaintenanceWindow] | None = None


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


#: A dataclass field's ``metadata`` key naming its property when PascalCase of the
#: field name is not it (``bake_time`` renders as ``BakeTimeInMinutes``).
CFN_NAME = "cfn_name"


def to_cfn(value: Any) -> Any:
    """Render a config value as CloudFormation properties (PascalCase, no ``None``)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            item.metadata.get(CFN_NAME, _pascal(item.name)): to_cfn(getattr(value, item.name))
            for item in dataclasses.fields(value)
            if getattr(value, item.name) is not None
        }
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Duration):
        return value.to_minutes()
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value
        return moment.strftime("%Y-%m-%dT%H:%M")
    if isinstance(value, list | tuple):
        return [to_cfn(item) for item in value]
    if isinstance(value, dict):
        return {key: to_cfn(item) for key, item in value.items()}
    return value
