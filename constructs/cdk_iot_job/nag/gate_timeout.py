"""IotJob-R9: a rollout gate that times out before the configured rollout can reach its threshold."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from cdk_iot_job_provider import schema

from .job_properties import JobProperties, is_known
from .rule import CUSTOM_ONLY, Level, Rule, Verdict

__all__ = ["GATE_TIMEOUT", "minutes_to_notify"]


def minutes_to_notify(things: int, rollout: Mapping[str, Any], *, give_up_after: int) -> int | None:
    """The fewest whole minutes IoT needs to notify ``things`` things at this rollout configuration.

    A constant ``MaximumPerMinute``, or an ``ExponentialRate`` that rises by
    ``IncrementFactor`` at the earliest its ``RateIncreaseCriteria`` allow
    (every N notified, or every N succeeded, which needs N notified too):
    the fastest the rollout can go, so a result above the gate's timeout is
    certain to miss it. ``None`` without a rate; counting stops past
    ``give_up_after`` minutes.
    """
    if things <= 0:
        return 0
    maximum = rollout.get("MaximumPerMinute")
    if maximum is not None:
        # The last of them is notified during minute ceil(things / rate), so after (that - 1) whole minutes.
        return math.ceil(things / int(maximum)) - 1
    exponential = rollout.get("ExponentialRate")
    if not isinstance(exponential, Mapping):
        return None
    rate = float(exponential["BaseRatePerMinute"])
    factor = float(exponential["IncrementFactor"])
    criteria = exponential["RateIncreaseCriteria"]
    step = min(value for value in criteria.values())
    notified, minutes, next_increase = 0, 0, step
    while notified < things and minutes <= give_up_after:
        minutes += 1
        notified += max(1, math.floor(rate))
        while notified >= next_increase:
            rate *= factor
            next_increase += step
    return minutes - 1


def _check(job: JobProperties) -> Verdict:
    gate = job.get("RolloutGate")
    rollout = job.get("JobExecutionsRolloutConfig")
    if not isinstance(gate, Mapping) or not isinstance(rollout, Mapping):
        return Verdict.NOT_APPLICABLE
    if not (is_known(gate) and is_known(rollout)):
        return Verdict.NOT_APPLICABLE
    things = gate.get("ExpectedTargets", job.thing_count)
    if things is None:
        return Verdict.NOT_APPLICABLE  # thing groups counted only when the gate starts
    timeout = gate.get("TimeoutInMinutes", schema.DEFAULT_GATE_TIMEOUT_MINUTES)
    needed = math.ceil(things * float(gate["MinSucceededPercent"]) / 100)
    minutes = minutes_to_notify(needed, rollout, give_up_after=timeout)
    if minutes is None:
        return Verdict.NOT_APPLICABLE
    return Verdict.NON_COMPLIANT if minutes + gate.get("BakeTimeInMinutes", 0) > timeout else Verdict.COMPLIANT


GATE_TIMEOUT = Rule(
    suffix="R9",
    level=Level.WARN,
    info=(
        "rollout_gate.timeout (RolloutGate.TimeoutInMinutes, default 30) is shorter than the time "
        "job_executions_rollout_config (JobExecutionsRolloutConfig) needs to notify the share of things "
        "rollout_gate.min_succeeded_percent asks for, plus rollout_gate.bake_time: the gate cannot pass."
    ),
    explanation=(
        "The gate counts rollout_gate.expected_targets (ExpectedTargets), or the things given as targets when there "
        "is no thing group. IoT notifies them at maximum_per_minute, or at an exponential rate from its base rate, "
        "rising at the earliest its rate_increase_criteria allow (AWS IoT Developer Guide, 'Job rollout rates'). "
        "This is the fastest rollout the configuration allows and ignores the time devices take to succeed, so a "
        "finding means the gate times out and rolls the deploy back. Fix: raise the rate, lower "
        "min_succeeded_percent or bake_time, or raise rollout_gate.timeout (at most 55 minutes)."
    ),
    applies_to=CUSTOM_ONLY,
    check=_check,
)
