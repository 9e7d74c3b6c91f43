"""IotJob-R8: a rollout gate that can pass a rollout its own abort criteria cancel."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cdk_iot_job_provider import schema

from .job_properties import JobProperties, is_known
from .rule import CUSTOM_ONLY, Level, Rule, Verdict

__all__ = ["GATE_ABORT", "gate_failure_limit"]

_ALL = frozenset(schema.GATE_FAILURE_TYPES)


def gate_failure_limit(gate: Mapping[str, Any], counted: frozenset[str]) -> float:
    """The largest share (%) of targeted things failing in ``counted`` ways that a passing gate allows.

    A passing gate has ``MinSucceededPercent`` succeeded, so at most the rest
    failed; ``MaxFailedPercent`` lowers that only when the gate counts every one
    of those failure types itself.
    """
    limit = 100 - float(gate["MinSucceededPercent"])
    gate_types = frozenset(gate.get("FailureTypes") or _ALL)
    maximum = gate.get("MaxFailedPercent")
    if maximum is not None and counted <= gate_types:
        limit = min(limit, float(maximum))
    return limit


def _check(job: JobProperties) -> Verdict:
    gate = job.get("RolloutGate")
    criteria = job.get("AbortConfig", "CriteriaList")
    if not isinstance(gate, Mapping) or not isinstance(criteria, list) or not criteria:
        return Verdict.NOT_APPLICABLE
    if not (is_known(gate) and is_known(criteria)):
        return Verdict.NOT_APPLICABLE
    for criterion in criteria:
        failure_type = criterion.get("FailureType")
        counted = _ALL if failure_type == "ALL" else frozenset({failure_type})
        if gate_failure_limit(gate, counted) > float(criterion["ThresholdPercentage"]):
            return Verdict.NON_COMPLIANT
    return Verdict.COMPLIANT


GATE_ABORT = Rule(
    suffix="R8",
    level=Level.WARN,
    info=(
        "rollout_gate (RolloutGate) can pass with a larger share of failed things than an abort_config criterion "
        "(AbortConfig.CriteriaList[].ThresholdPercentage) cancels the job for: the deploy may succeed for a rollout "
        "IoT then aborts."
    ),
    explanation=(
        "The gate's failure limit is max_failed_percent (MaxFailedPercent) when the gate counts the criterion's "
        "failure types (failure_types, default FAILED, REJECTED and TIMED_OUT; ALL counts all three), otherwise "
        "100 - min_succeeded_percent (MinSucceededPercent), the most a passing gate can have seen fail. The gate "
        "divides by the targeted things, IoT by the things executed so far (API AbortCriteria), which are never "
        "more: a failed share above the threshold for the gate is above it for IoT too, which aborts once "
        "MinNumberOfExecutedThings have run. Fix: set rollout_gate.max_failed_percent to at most the smallest "
        "threshold_percentage of the abort criteria, counting their failure types."
    ),
    applies_to=CUSTOM_ONLY,
    check=_check,
)
