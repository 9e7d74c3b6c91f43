"""IotJob-R7: a CONTINUOUS job that nothing ends."""

from __future__ import annotations

from .job_properties import JobProperties, is_known
from .rule import NATIVE_AND_CUSTOM, Level, Rule, Verdict

__all__ = ["CONTINUOUS_END"]


def _check(job: JobProperties) -> Verdict:
    selection = job.get("TargetSelection")
    if not is_known(selection) or selection != "CONTINUOUS":
        return Verdict.NOT_APPLICABLE
    end_time = job.get("SchedulingConfig", "EndTime")
    criteria = job.get("AbortConfig", "CriteriaList")
    gate = job.get("RolloutGate")
    if not (is_known(end_time) and is_known(criteria) and is_known(gate)):
        return Verdict.NOT_APPLICABLE
    return Verdict.COMPLIANT if end_time or criteria or gate else Verdict.NON_COMPLIANT


CONTINUOUS_END = Rule(
    suffix="R7",
    level=Level.INFO,
    info=(
        "The job is CONTINUOUS (target_selection / TargetSelection) with no end: no scheduling_config.end_time "
        "(SchedulingConfig.EndTime), no abort_config (AbortConfig) and no rollout_gate (RolloutGate). It reaches "
        "every thing that ever joins its groups until someone cancels it."
    ),
    explanation=(
        "A continuous job keeps running on things added to its target groups (AWS IoT Developer Guide, 'Continuous "
        "jobs'); it never completes by itself. An end time stops its rollout (API SchedulingConfig), abort criteria "
        "cancel it when executions fail, and a rollout gate cancels or deletes it when the deploy's rollout fails "
        "(docs/rollout-gates.md). A gate does not end a continuous job that passes: it is one of the ways the job "
        "ends when things go wrong, which is what this rule asks for. Fix: add one of them, or acknowledge a job "
        "meant to run for good (e.g. provisioning new devices)."
    ),
    applies_to=NATIVE_AND_CUSTOM,
    check=_check,
)
