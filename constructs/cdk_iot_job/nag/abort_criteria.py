"""IotJob-R2: a job sent to a thing group without abort criteria."""

from __future__ import annotations

from .job_properties import JobProperties, is_known
from .rule import NATIVE_AND_CUSTOM, Level, Rule, Verdict

__all__ = ["ABORT_CRITERIA"]


def _check(job: JobProperties) -> Verdict:
    if not job.has_thing_group_target:
        return Verdict.NOT_APPLICABLE
    criteria = job.get("AbortConfig", "CriteriaList")
    if not is_known(criteria):
        return Verdict.NOT_APPLICABLE
    return Verdict.COMPLIANT if criteria else Verdict.NON_COMPLIANT


ABORT_CRITERIA = Rule(
    suffix="R2",
    level=Level.WARN,
    info=(
        "The job targets a thing group but has no abort_config (AbortConfig.CriteriaList): IoT keeps sending it "
        "however many executions fail."
    ),
    explanation=(
        "Abort criteria cancel the job once a share of the executed things failed, rejected or timed out "
        "(AWS IoT Developer Guide, 'Job abort configuration'; API AbortCriteria). Fix: set "
        "abort_config=AbortConfig(criteria_list=[AbortCriteria(failure_type=..., threshold_percentage=..., "
        "min_number_of_executed_things=...)])."
    ),
    applies_to=NATIVE_AND_CUSTOM,
    check=_check,
)
