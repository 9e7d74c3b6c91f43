"""IotJob-R1: a job sent to a thing group without a rollout rate."""

from __future__ import annotations

from .job_properties import JobProperties, is_known
from .rule import NATIVE_AND_CUSTOM, Level, Rule, Verdict

__all__ = ["ROLLOUT_RATE"]


def _check(job: JobProperties) -> Verdict:
    has_group = job.has_thing_group_target
    if not has_group:
        return Verdict.NOT_APPLICABLE  # things only are counted and named; unknown targets: no guess
    config = job.get("JobExecutionsRolloutConfig")
    if not is_known(config):
        return Verdict.NOT_APPLICABLE
    return Verdict.COMPLIANT if config else Verdict.NON_COMPLIANT


ROLLOUT_RATE = Rule(
    suffix="R1",
    level=Level.WARN,
    info=(
        "The job targets a thing group but has no job_executions_rollout_config (JobExecutionsRolloutConfig): "
        "IoT notifies the whole group as fast as it can, with no rate limit."
    ),
    explanation=(
        "A staged rollout limits how many things are notified per minute, so failures show up while most of the "
        "fleet has not been touched (AWS IoT Developer Guide, 'Job rollout configuration'). Fix: set "
        "job_executions_rollout_config=JobExecutionsRolloutConfig(maximum_per_minute=...) or an exponential_rate."
    ),
    applies_to=NATIVE_AND_CUSTOM,
    check=_check,
)
