"""IotJob-R5: retries on TIMED_OUT without an in-progress timeout."""

from __future__ import annotations

from collections.abc import Mapping

from .job_properties import JobProperties, is_known
from .rule import NATIVE_AND_CUSTOM, Level, Rule, Verdict

__all__ = ["TIMED_OUT_RETRY"]

_RETRIES_TIMEOUTS = frozenset({"TIMED_OUT", "ALL"})


def _check(job: JobProperties) -> Verdict:
    criteria = job.get("JobExecutionsRetryConfig", "CriteriaList")
    if not is_known(criteria) or not isinstance(criteria, list):
        return Verdict.NOT_APPLICABLE
    retries_timeouts = any(
        isinstance(criterion, Mapping)
        and criterion.get("FailureType") in _RETRIES_TIMEOUTS
        and criterion.get("NumberOfRetries") != 0
        for criterion in criteria
    )
    if not retries_timeouts:
        return Verdict.NOT_APPLICABLE
    minutes = job.get("TimeoutConfig", "InProgressTimeoutInMinutes")
    if not is_known(minutes):
        return Verdict.NOT_APPLICABLE
    return Verdict.NON_COMPLIANT if minutes is None else Verdict.COMPLIANT


TIMED_OUT_RETRY = Rule(
    suffix="R5",
    level=Level.WARN,
    info=(
        "job_executions_retry_config (JobExecutionsRetryConfig.CriteriaList) retries TIMED_OUT (or ALL) executions "
        "but the job has no timeout_config.in_progress_timeout_in_minutes (TimeoutConfig.InProgressTimeoutInMinutes): "
        "only a step timeout a device sets itself can time an execution out."
    ),
    explanation=(
        "IoT accepts the combination: an execution also times out when a device's own step timer "
        "(stepTimeoutInMinutes of StartNextPendingJobExecution / UpdateJobExecution) runs out, so this is a warning, "
        "not an error. Without the job's in-progress timer, a device that never sets a step timer never times out "
        "and the TIMED_OUT retries never run. Fix: set "
        "timeout_config=TimeoutConfig(in_progress_timeout_in_minutes=...), "
        "or acknowledge when every device sets step timeouts."
    ),
    applies_to=NATIVE_AND_CUSTOM,
    check=_check,
)
