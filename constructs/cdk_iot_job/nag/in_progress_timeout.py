"""IotJob-R3: a job without an in-progress timeout."""

from __future__ import annotations

from .job_properties import JobProperties, is_known
from .rule import NATIVE_AND_CUSTOM, Level, Rule, Verdict

__all__ = ["IN_PROGRESS_TIMEOUT"]


def _check(job: JobProperties) -> Verdict:
    minutes = job.get("TimeoutConfig", "InProgressTimeoutInMinutes")
    if not is_known(minutes):
        return Verdict.NOT_APPLICABLE
    return Verdict.NON_COMPLIANT if minutes is None else Verdict.COMPLIANT


IN_PROGRESS_TIMEOUT = Rule(
    suffix="R3",
    level=Level.WARN,
    info=(
        "The job has no timeout_config.in_progress_timeout_in_minutes (TimeoutConfig.InProgressTimeoutInMinutes): "
        "an execution a device never finishes stays IN_PROGRESS forever."
    ),
    explanation=(
        "With an in-progress timer, an execution that stays IN_PROGRESS longer than the timeout becomes TIMED_OUT, "
        "which abort criteria, retries and rollout gates can count (API TimeoutConfig). Without it, a device that "
        "crashed mid-update is never reported. Fix: set "
        "timeout_config=TimeoutConfig(in_progress_timeout_in_minutes=...)."
    ),
    applies_to=NATIVE_AND_CUSTOM,
    check=_check,
)
