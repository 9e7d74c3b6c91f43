"""``RolloutGate``: a deploy that waits for the fleet's answer.

A gated job's Create (or replacement) stays in progress until the fleet
reaches ``min_succeeded_percent`` for ``bake_time`` without crossing
``max_failed_percent``; otherwise the provider cancels or deletes the new job
and the stack rolls back. The values render to the ``RolloutGate`` property
(``to_cfn``) and are checked by the shared schema when the ``IotJob`` is
built. The gate's ``timeout`` also sets the resource's ``ServiceTimeout``
(:func:`service_timeout`), so it must fit CloudFormation's one-hour wait.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Duration, Token

from cdk_iot_job_provider import schema

from .config import CFN_NAME, JobExecutionFailureType

__all__ = ["GateFailureAction", "RolloutGate", "service_timeout"]


class GateFailureAction(enum.StrEnum):
    """What the provider does to the new job when its rollout gate fails."""

    CANCEL = "CANCEL"
    """Cancel the job: queued executions are cancelled, those in progress may finish (the default)."""
    CANCEL_FORCE = "CANCEL_FORCE"
    """Cancel the job and its in-progress executions too."""
    DELETE = "DELETE"
    """Delete the job, forcing in-progress executions."""


def _minutes(where: str, value: Duration | None) -> int | None:
    """``value`` in whole minutes (``None`` stays ``None``); a token is left to the provider."""
    if value is None:
        return None
    if not isinstance(value, Duration):
        # Reachable from untyped callers only.
        raise schema.InvalidPropertyError(f"{where} must be a Duration, not {type(value).__name__}")
    try:
        minutes = value.to_minutes(integral=False)
    except RuntimeError as error:  # jsii: a token in another unit cannot be converted
        raise schema.InvalidPropertyError(f"{where} from a token must be given as Duration.minutes(...)") from error
    if Token.is_unresolved(minutes):
        return None  # the provider checks it at deploy time
    seconds = value.to_seconds()
    if seconds % 60:
        raise schema.InvalidPropertyError(
            f"{where} {value.to_human_string()} must be a whole number of minutes (e.g. Duration.minutes(10))"
        )
    return int(seconds // 60)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RolloutGate:
    """Wait for the fleet's answer before the deploy goes on; roll back if it fails.

    Counts are shares of the targeted things: ``expected_targets`` when given,
    otherwise the things targeted when the gate starts (thing targets plus the
    members of thing group targets).

    Attributes
    ----------
    min_succeeded_percent
        0 to 100 (two decimals): the share of targeted things whose execution
        must have SUCCEEDED for the gate to pass. Required.
    max_failed_percent
        0 to 100 (two decimals): the gate fails as soon as more than this share
        of the targeted things ended in one of ``failure_types``. Default: no
        maximum (the gate fails only when success can no longer be reached,
        the job is cancelled, or ``timeout`` passes).
    failure_types
        What counts as failed: ``JobExecutionFailureType.FAILED``,
        ``REJECTED``, ``TIMED_OUT`` (or their strings; ``ALL`` is not
        allowed). Default: all three.
    bake_time
        How long the success threshold must hold, with no failure limit
        crossed, before the gate passes; whole minutes, less than ``timeout``.
        Default: 0 (pass as soon as the threshold is reached).
    timeout
        The gate fails if it has no verdict this long after the job was
        created; whole minutes, 1 to 55 (CloudFormation waits at most an hour
        for a custom resource and the provider keeps 5 minutes of it).
        Default: 30 minutes.
    expected_targets
        The number of targeted things the percentages count against, at
        least 1. Default: counted when the gate starts.
    on_failure
        What the provider does to the new job when the gate fails:
        ``GateFailureAction.CANCEL``, ``CANCEL_FORCE`` or ``DELETE`` (or
        their strings). Default: ``GateFailureAction.CANCEL``.

    Raises
    ------
    ValueError
        (``InvalidPropertyError``) when ``bake_time`` or ``timeout`` is not
        whole minutes, ``timeout`` does not fit CloudFormation's wait, or
        ``on_failure`` is another kind of value. The other limits are checked
        by the schema when the ``IotJob`` is built.

    Examples
    --------
    >>> RolloutGate(min_succeeded_percent=95, max_failed_percent=2, bake_time=Duration.minutes(10))
    """

    min_succeeded_percent: float
    max_failed_percent: float | None = None
    failure_types: Sequence[JobExecutionFailureType | str] | None = None
    bake_time: Duration | None = dataclasses.field(default=None, metadata={CFN_NAME: "BakeTimeInMinutes"})
    timeout: Duration | None = dataclasses.field(default=None, metadata={CFN_NAME: "TimeoutInMinutes"})
    expected_targets: int | None = None
    on_failure: GateFailureAction | str | None = dataclasses.field(default=None, metadata={CFN_NAME: "OnFailure"})

    def __post_init__(self) -> None:
        # Checked here because the messages name the Python keywords; to_cfn renders
        # a Duration in whole minutes and would otherwise fail with a jsii error.
        _minutes("rollout_gate.bake_time (RolloutGate.BakeTimeInMinutes)", self.bake_time)
        timeout = _minutes("rollout_gate.timeout (RolloutGate.TimeoutInMinutes)", self.timeout)
        if timeout is not None and timeout > schema.MAX_GATE_TIMEOUT_MINUTES:
            raise schema.InvalidPropertyError(
                f"rollout_gate.timeout (RolloutGate.TimeoutInMinutes) {timeout} min does not fit CloudFormation's "
                f"{schema.MAX_SERVICE_TIMEOUT_SECONDS} s wait for a custom resource with the provider's "
                f"{schema.GATE_MARGIN_SECONDS // 60} min margin: at most {schema.MAX_GATE_TIMEOUT_MINUTES} min"
            )
        # Another enum whose value happens to be in the set (JobEndBehavior.CANCEL) is a mistake.
        on_failure: object = self.on_failure  # any value, from untyped callers
        if (
            on_failure is not None
            and not isinstance(on_failure, GateFailureAction)
            and (not isinstance(on_failure, str) or isinstance(on_failure, enum.Enum))
        ):
            raise schema.InvalidPropertyError(
                f"rollout_gate.on_failure (RolloutGate.OnFailure) {self.on_failure!r} must be a GateFailureAction "
                f"or one of {', '.join(schema.GATE_FAILURE_ACTIONS)}"
            )


def service_timeout(gate: Mapping[str, Any] | None, *, without_gate: Duration) -> Duration:
    """The ``ServiceTimeout`` of a job with this parsed ``RolloutGate`` property.

    The gate's timeout plus the provider's margin (CreateJob, the failure
    action and the answer), and never less than ``without_gate``. A timeout
    given as a token gets CloudFormation's maximum, the most it can be.
    """
    if gate is None:
        return without_gate
    minutes = gate.get("TimeoutInMinutes", schema.DEFAULT_GATE_TIMEOUT_MINUTES)
    if not isinstance(minutes, int):
        return Duration.seconds(schema.MAX_SERVICE_TIMEOUT_SECONDS)
    return Duration.seconds(max(without_gate.to_seconds(), minutes * 60 + schema.GATE_MARGIN_SECONDS))
