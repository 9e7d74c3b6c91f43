"""A rollout gate's verdict: pure rules from counts, time and the gate's config.

:func:`evaluate` takes what one DescribeJob says (status, abort reason,
``jobProcessDetails`` counts), the gate's denominator and how long it has
waited, and answers PASS, FAIL (with a reason quoting counts and percentages)
or WAIT. No clock, no I/O: the provider (:mod:`.rollout_gate`), the local
engine and ``cdk-iot-job status`` all judge with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .schema import DEFAULT_GATE_TIMEOUT_MINUTES, GATE_FAILURE_TYPES

__all__ = ["COUNT_ATTRIBUTES", "COUNT_KEYS", "Counts", "GateConfig", "Verdict", "denominator", "evaluate"]

#: DescribeJob's jobProcessDetails member for each execution status.
COUNT_KEYS = {
    "SUCCEEDED": "numberOfSucceededThings",
    "FAILED": "numberOfFailedThings",
    "REJECTED": "numberOfRejectedThings",
    "TIMED_OUT": "numberOfTimedOutThings",
    "CANCELED": "numberOfCanceledThings",
    "REMOVED": "numberOfRemovedThings",
    "IN_PROGRESS": "numberOfInProgressThings",
    "QUEUED": "numberOfQueuedThings",
}

#: ``Fn::GetAtt`` attribute name of each execution status's count: ``SucceededThings``, ...
COUNT_ATTRIBUTES = {status: key.removeprefix("numberOf") for status, key in COUNT_KEYS.items()}

_NOT_SUCCEEDED_TERMINAL = ("FAILED", "REJECTED", "TIMED_OUT", "CANCELED")


@dataclass(frozen=True)
class GateConfig:
    """A parsed ``RolloutGate`` property.

    Attributes
    ----------
    min_succeeded_percent
        PASS needs at least this share of the denominator SUCCEEDED.
    max_failed_percent
        FAIL as soon as the executions in ``failure_types`` exceed this share
        (``None``: no maximum; the gate fails only when success is unreachable).
    failure_types
        The execution statuses that count as failed.
    bake_seconds
        How long the success threshold must hold, with no failure limit
        crossed, before PASS.
    timeout_seconds
        FAIL when no verdict came this long after the gate started.
    on_failure
        CANCEL, CANCEL_FORCE or DELETE: what the provider does to the job on FAIL.
    expected_targets
        The denominator, when given; otherwise counted when the gate starts.
    """

    min_succeeded_percent: float
    max_failed_percent: float | None = None
    failure_types: tuple[str, ...] = GATE_FAILURE_TYPES
    bake_seconds: float = 0.0
    timeout_seconds: float = DEFAULT_GATE_TIMEOUT_MINUTES * 60.0
    on_failure: str = "CANCEL"
    expected_targets: int | None = None

    @classmethod
    def of(cls, gate: Mapping[str, Any]) -> GateConfig:
        """The config of a ``RolloutGate`` as :func:`~.schema.parse_properties` returned it."""
        maximum = gate.get("MaxFailedPercent")
        expected = gate.get("ExpectedTargets")
        return cls(
            min_succeeded_percent=float(gate["MinSucceededPercent"]),
            max_failed_percent=float(maximum) if maximum is not None else None,
            failure_types=tuple(gate.get("FailureTypes", GATE_FAILURE_TYPES)),
            bake_seconds=float(gate.get("BakeTimeInMinutes", 0)) * 60.0,
            timeout_seconds=float(gate.get("TimeoutInMinutes", DEFAULT_GATE_TIMEOUT_MINUTES)) * 60.0,
            on_failure=str(gate.get("OnFailure", "CANCEL")),
            expected_targets=int(expected) if expected is not None else None,
        )


@dataclass(frozen=True)
class Counts:
    """How many of the job's executions are in each status (``jobProcessDetails``)."""

    by_status: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, process_details: Mapping[str, Any] | None) -> Counts:
        """The counts of DescribeJob's ``jobProcessDetails`` (missing members count 0)."""
        details = process_details or {}
        return cls({status: int(details.get(key) or 0) for status, key in COUNT_KEYS.items()})

    def __getitem__(self, status: str) -> int:
        return int(self.by_status.get(status, 0))

    @property
    def executions(self) -> int:
        """Every execution IoT counted, REMOVED ones included."""
        return sum(self[status] for status in COUNT_KEYS)

    def attributes(self) -> dict[str, str]:
        """The counts as ``Fn::GetAtt`` attributes (``SucceededThings``, ...)."""
        return {COUNT_ATTRIBUTES[status]: str(self[status]) for status in COUNT_KEYS}


def denominator(counts: Counts, *, counted: int, expected: int | None) -> int:
    """How many things the gate judges against.

    ``expected`` (the gate's ``ExpectedTargets``) when given. Otherwise the
    things ``counted`` when the gate started, less those IoT has since
    REMOVED, but never fewer than the executions that exist: a thing that
    joined a continuous job's group later has to answer too.
    """
    if expected is not None:
        return expected
    return max(counted - counts["REMOVED"], counts.executions - counts["REMOVED"])


@dataclass(frozen=True)
class Verdict:
    """What the gate says after one poll.

    ``threshold_met_at`` is the gate time (seconds since it started) from
    which the success threshold has held, to carry to the next poll.
    """

    kind: Literal["PASS", "FAIL", "WAIT"]
    reason: str
    threshold_met_at: float | None = None


def _percent(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def _share(part: int, whole: int) -> str:
    return f"{part} of {whole} ({_percent(part, whole):.1f}%)"


def _summary(counts: Counts, total: int, config: GateConfig) -> str:
    failed = sum(counts[status] for status in config.failure_types)
    waiting = counts["QUEUED"] + counts["IN_PROGRESS"]
    return f"{_share(counts['SUCCEEDED'], total)} succeeded, {_share(failed, total)} failed, {waiting} not finished"


def evaluate(
    config: GateConfig,
    counts: Counts,
    *,
    total: int,
    job_status: str | None,
    elapsed_seconds: float,
    threshold_met_at: float | None = None,
    reason_code: str | None = None,
    comment: str | None = None,
    target_selection: str = "SNAPSHOT",
) -> Verdict:
    """Judge the gate once.

    Parameters
    ----------
    config
        The gate.
    counts
        DescribeJob's counts now.
    total
        The denominator (:func:`denominator`).
    job_status
        DescribeJob's status; ``None`` when the job is gone.
    elapsed_seconds
        Seconds since the gate started.
    threshold_met_at
        The previous verdict's ``threshold_met_at``.
    reason_code, comment
        The job's abort or cancel reason, as DescribeJob reports it.
    target_selection
        SNAPSHOT or CONTINUOUS. Only a snapshot job ends by itself.

    Returns
    -------
    Verdict
        FAIL on the first of: the job canceled or deleted, failures over the
        maximum, success unreachable, the timeout; PASS when the threshold has
        held for the bake time; WAIT otherwise.
    """
    if job_status in (None, "DELETION_IN_PROGRESS"):
        return Verdict("FAIL", "the job was deleted while the gate waited")
    if job_status == "CANCELED":
        why = f"reasonCode {reason_code}" if reason_code else "no reasonCode"
        said = f": {comment}" if comment else ""
        return Verdict("FAIL", f"the job was canceled ({why}{said}) with {_summary(counts, total, config)}")
    if total <= 0:
        if target_selection == "CONTINUOUS" and elapsed_seconds < config.timeout_seconds:
            return Verdict("WAIT", "the job's groups have no things yet")
        return Verdict("FAIL", "the job targets no things: nothing can succeed")
    failed = sum(counts[status] for status in config.failure_types)
    failed_percent = _percent(failed, total)
    if config.max_failed_percent is not None and failed_percent > config.max_failed_percent:
        return Verdict(
            "FAIL",
            f"{_share(failed, total)} failed ({'+'.join(config.failure_types)}), over the maximum of "
            f"{config.max_failed_percent:g}%; {_share(counts['SUCCEEDED'], total)} succeeded",
        )
    not_succeeded = sum(counts[status] for status in _NOT_SUCCEEDED_TERMINAL)
    reachable = _percent(total - not_succeeded, total)
    if reachable < config.min_succeeded_percent:
        return Verdict(
            "FAIL",
            f"success is unreachable: {not_succeeded} of {total} things ended without succeeding, so at most "
            f"{reachable:.1f}% can succeed, below the required {config.min_succeeded_percent:g}% "
            f"({_summary(counts, total, config)})",
        )
    met = _percent(counts["SUCCEEDED"], total) >= config.min_succeeded_percent
    if job_status == "COMPLETED" and not met:
        # Things expected but never given an execution will not get one now.
        return Verdict(
            "FAIL",
            f"the job completed with {_summary(counts, total, config)}, below the required "
            f"{config.min_succeeded_percent:g}%",
        )
    since = (threshold_met_at if threshold_met_at is not None else elapsed_seconds) if met else None
    if since is not None and elapsed_seconds - since >= config.bake_seconds:
        return Verdict("PASS", f"{_summary(counts, total, config)}; threshold held for the bake time", since)
    if elapsed_seconds >= config.timeout_seconds:
        stragglers = counts["QUEUED"] + counts["IN_PROGRESS"]
        baking = " (the bake time had not passed)" if since is not None else ""
        return Verdict(
            "FAIL",
            f"the gate timed out after {config.timeout_seconds / 60:g} min{baking}: "
            f"{_summary(counts, total, config)}; {stragglers} thing(s) never answered; "
            f"required {config.min_succeeded_percent:g}% succeeded",
            since,
        )
    if since is not None:
        left = config.bake_seconds - (elapsed_seconds - since)
        return Verdict("WAIT", f"threshold met, baking for {left:.0f} s more", since)
    return Verdict("WAIT", _summary(counts, total, config))
