"""The strict IoT fake with a call log, counters and faults on demand (tests only).

:class:`FaultyIotFake` is :class:`~cdk_iot_job_local.iot_fake.StrictIotFake`
(it behaves like IoT in every other way) wrapping each answer in
:meth:`~cdk_iot_job_local.iot_fake.StrictIotFake._answer`:

Call log
    Every request of a patched operation is recorded in
    :attr:`FaultyIotFake.calls` as ``(operation, jobId or resourceArn)``, failed
    ones included; :meth:`FaultyIotFake.count` counts them.
Counters
    :meth:`FaultyIotFake.stats` counts per operation: attempts (HTTP
    requests), SDK invocations (distinct ``amz-sdk-invocation-id`` headers,
    which botocore keeps across the retries of one API call), injected faults
    and error responses by code, injected or not.
Throttling (429), ServiceUnavailable (503), LimitExceeded (410), ...
    Real: happen. moto: never. :meth:`FaultyIotFake.fail_next` fails the next
    calls of an operation, as real HTTP error responses that botocore parses
    and (in standard retry mode) retries.
Throttling under load (a fraction of all calls)
    Real: a share of calls fails while a caller exceeds the API's rate.
    moto: never. :meth:`FaultyIotFake.fail_fraction` fails a given fraction
    of the calls of some operations with an error code, the same way as
    ``fail_next``; which calls fail is decided by a seeded random stream,
    drawn once per call in the order the fake handles them.

Install it like the strict fake, or hand it to
:class:`~cdk_iot_job_local.runtime.LocalAws` as ``fake=``::

    with mock_aws(), FaultyIotFake(deletion_polls=1) as fake:
        fake.fail_next("CreateJob", "ThrottlingException", times=2)
        run_handler(...)                  # boto3 inside sees the fake
        assert fake.count("DeleteJob") == 0

    with LocalAws(fake=FaultyIotFake(deletion_polls=1, check_targets=True)) as aws:
        ...

Approximations:

* The injected ThrottlingException defaults to HTTP 429 although botocore's
  model declares 400; botocore's retry logic keys on the code, so both retry.
* :meth:`FaultyIotFake.fail_fraction` throttles a share of the calls, not the
  calls beyond a rate: how fast callers call does not change the share.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from moto.iot.exceptions import IoTClientError
from moto.iot.responses import IoTResponse

from cdk_iot_job_local.fleet import FleetPolicy
from cdk_iot_job_local.iot_fake import StrictIotFake
from cdk_iot_job_local.job_executions import Clock

__all__ = ["DEFAULT_STATUS", "OPERATIONS", "FaultyIotFake", "InjectedError", "OperationStats"]

#: Botocore operation names that the strict fake answers (and this one can fail on demand).
OPERATIONS = (
    "CreateJob",
    "UpdateJob",
    "DeleteJob",
    "DescribeJob",
    "CancelJob",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
)
_TAG_OPERATIONS = {"TagResource", "UntagResource", "ListTagsForResource"}
#: HTTP status used by :meth:`FaultyIotFake.fail_next` when none is given.
DEFAULT_STATUS = {
    "ThrottlingException": 429,
    "ServiceUnavailableException": 503,
    "LimitExceededException": 410,
    "InternalFailureException": 500,
    "InvalidRequestException": 400,
    "UnauthorizedException": 401,
    "ResourceNotFoundException": 404,
    "ResourceAlreadyExistsException": 409,
    "InvalidStateTransitionException": 409,
    "ConflictException": 409,
}


class InjectedError(IoTClientError):
    """An error that :meth:`FaultyIotFake.fail_next` or :meth:`FaultyIotFake.fail_fraction` asked for."""

    def __init__(self, error_code: str, status: int, msg: str) -> None:
        self.code = status
        super().__init__(error_code, msg)


@dataclass
class _Fault:
    code: str
    status: int
    message: str
    remaining: int


@dataclass
class _FractionRule:
    """A :meth:`FaultyIotFake.fail_fraction` rule, shared by the operations it names."""

    code: str
    status: int
    message: str
    fraction: float
    draws: random.Random


@dataclass(frozen=True)
class OperationStats:
    """What the fake counted for one operation since install or :meth:`FaultyIotFake.reset`.

    Attributes
    ----------
    attempts : int
        HTTP requests handled, failed ones included.
    invocations : int
        SDK invocations: distinct ``amz-sdk-invocation-id`` request headers,
        which botocore keeps across the retries of one API call; a request
        without the header counts as an invocation of its own.
    injected : int
        Attempts failed by :meth:`FaultyIotFake.fail_next` or
        :meth:`FaultyIotFake.fail_fraction`.
    errors : dict[str, int]
        Attempts answered with each error code, injected or raised by the
        fake's or moto's rules (e.g. ``LimitExceededException``).
    """

    attempts: int = 0
    invocations: int = 0
    injected: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def attempts_per_invocation(self) -> float:
        """Requests per SDK invocation (1.0 when nothing was retried; 0.0 without calls)."""
        return self.attempts / self.invocations if self.invocations else 0.0


@dataclass
class _OperationCounters:
    attempts: int = 0
    invocation_ids: set[str] = field(default_factory=set)
    anonymous_invocations: int = 0
    injected: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def snapshot(self) -> OperationStats:
        return OperationStats(
            attempts=self.attempts,
            invocations=len(self.invocation_ids) + self.anonymous_invocations,
            injected=self.injected,
            errors=dict(self.errors),
        )


def _status_for(error_code: str, status: int | None) -> int:
    if status is not None:
        return status
    if error_code not in DEFAULT_STATUS:
        raise ValueError(f"no default status for {error_code!r}; pass status=")
    return DEFAULT_STATUS[error_code]


class FaultyIotFake(StrictIotFake):
    """The strict IoT fake, recording every call and failing calls on demand.

    Parameters are those of :class:`~cdk_iot_job_local.iot_fake.StrictIotFake`.
    """

    def __init__(
        self,
        *,
        deletion_polls: int = 2,
        max_concurrent_deletions: int = 10,
        check_targets: bool = False,
        fleet: FleetPolicy | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(
            deletion_polls=deletion_polls,
            max_concurrent_deletions=max_concurrent_deletions,
            check_targets=check_targets,
            fleet=fleet,
            clock=clock,
        )
        self._faults: dict[str, deque[_Fault]] = {}
        self._fraction_rules: dict[str, _FractionRule] = {}
        self._counters: dict[str, _OperationCounters] = {}
        self._calls: list[tuple[str, str | None]] = []

    def fail_next(
        self,
        operation: str,
        error_code: str,
        *,
        times: int = 1,
        status: int | None = None,
        message: str = "Injected by StrictIotFake",
    ) -> None:
        """Make the next ``times`` calls of ``operation`` fail.

        Parameters
        ----------
        operation : str
            Botocore operation name, one of :data:`OPERATIONS`.
        error_code : str
            Error code botocore reports, e.g. ``"ThrottlingException"``.
        times : int, default 1
            Number of consecutive calls to fail. Queued after earlier faults.
        status : int, optional
            HTTP status; defaults to :data:`DEFAULT_STATUS` for ``error_code``.
        message : str
            Error message in the response.
        """
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; expected one of {OPERATIONS}")
        status = _status_for(error_code, status)
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._faults.setdefault(operation, deque()).append(_Fault(error_code, status, message, times))

    def fail_fraction(
        self,
        operations: str | Iterable[str],
        error_code: str,
        fraction: float,
        *,
        seed: int,
        status: int | None = None,
        message: str = "Injected by StrictIotFake",
    ) -> None:
        """Make about ``fraction`` of the calls of ``operations`` fail, until changed.

        Each call of one of the operations that no :meth:`fail_next` fault
        claims draws the next number from ``random.Random(seed)`` and fails
        when it is below ``fraction``. The fake handles one call at a time,
        so the n-th call (counted over all the operations of this rule, in
        the order the fake handles them) fails exactly when the n-th draw is
        below ``fraction``, however many threads or processes call.

        Parameters
        ----------
        operations : str or Iterable[str]
            Botocore operation names, each one of :data:`OPERATIONS`. A later
            call naming an operation replaces its rule.
        error_code : str
            Error code botocore reports, e.g. ``"ThrottlingException"``.
        fraction : float
            Share of calls to fail, from 0 to 1; ``0`` removes the rule of
            these operations.
        seed : int
            Seed of the rule's random stream.
        status : int, optional
            HTTP status; defaults to :data:`DEFAULT_STATUS` for ``error_code``.
        message : str
            Error message in the response.
        """
        names = [operations] if isinstance(operations, str) else list(operations)
        unknown = [name for name in names if name not in OPERATIONS]
        if unknown or not names:
            raise ValueError(f"unknown operations {unknown or names!r}; expected some of {OPERATIONS}")
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must be between 0 and 1: {fraction!r}")
        rule = _FractionRule(error_code, _status_for(error_code, status), message, fraction, random.Random(seed))
        with self._lock:
            for name in names:
                if fraction == 0.0:
                    self._fraction_rules.pop(name, None)
                else:
                    self._fraction_rules[name] = rule

    def stats(self) -> dict[str, OperationStats]:
        """Counters of every operation called since install or :meth:`reset`, by operation name."""
        with self._lock:
            return {operation: counters.snapshot() for operation, counters in self._counters.items()}

    @property
    def calls(self) -> list[tuple[str, str | None]]:
        """``(operation, jobId or resourceArn)`` of every handled call, in order.

        Calls that an injected fault failed are included.
        """
        with self._lock:
            return list(self._calls)

    def count(self, operation: str, target: str | None = None) -> int:
        """Number of recorded calls of ``operation`` (on ``target`` if given)."""
        return sum(1 for op, t in self.calls if op == operation and (target is None or t == target))

    def reset(self) -> None:
        """Forget injected faults, ``fail_fraction`` rules, the call log and :meth:`stats`.

        moto's job state is kept.
        """
        with self._lock:
            self._faults.clear()
            self._fraction_rules.clear()
            self._counters.clear()
            self._calls.clear()

    # ------------------------------------------------------------ the hook
    def _answer(self, operation: str, response: IoTResponse, handler: Callable[[IoTResponse], Any]) -> Any:
        """Log and count the call, fail it if a fault claims it, else answer as the strict fake does."""
        key = "resourceArn" if operation in _TAG_OPERATIONS else "jobId"
        self._calls.append((operation, response._get_param(key)))
        counters = self._count_attempt(operation, response.headers.get("amz-sdk-invocation-id"))
        injected = self._take_fault(operation)
        if injected is not None:
            counters.injected += 1
            counters.errors[injected.error_type] = counters.errors.get(injected.error_type, 0) + 1
            # An HTTPException: moto renders it as a real error response.
            raise injected
        try:
            return super()._answer(operation, response, handler)
        except Exception as error:
            code = getattr(error, "error_type", None) or type(error).__name__
            counters.errors[code] = counters.errors.get(code, 0) + 1
            raise

    def _count_attempt(self, operation: str, invocation_id: str | None) -> _OperationCounters:
        """Count one request of ``operation``; the caller holds the lock."""
        counters = self._counters.setdefault(operation, _OperationCounters())
        counters.attempts += 1
        if invocation_id:
            counters.invocation_ids.add(invocation_id)
        else:
            counters.anonymous_invocations += 1
        return counters

    def _take_fault(self, operation: str) -> InjectedError | None:
        """The error this call of ``operation`` must fail with, if any; the caller holds the lock.

        A queued :meth:`fail_next` fault comes first; otherwise the
        operation's :meth:`fail_fraction` rule draws.
        """
        queue = self._faults.get(operation)
        if queue:
            fault = queue[0]
            fault.remaining -= 1
            if fault.remaining == 0:
                queue.popleft()
            return InjectedError(fault.code, fault.status, fault.message)
        rule = self._fraction_rules.get(operation)
        if rule is not None and rule.draws.random() < rule.fraction:
            return InjectedError(rule.code, rule.status, rule.message)
        return None
