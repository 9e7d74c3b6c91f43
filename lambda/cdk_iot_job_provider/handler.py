"""Lambda entry point of the ``Custom::IotJob`` provider.

Each event is parsed, validated against the shared schema, then dispatched to
the job lifecycle. Anything raised becomes a FAILED response whose reason
names the property or the conflict.

What an event needs from outside itself (the IoT client, the clocks, how long
to wait and how to answer) is a :class:`Dependencies`, given to
:func:`make_handler`. ``handler = make_handler()`` is the Lambda entry point,
with production's; tests build their own handler with theirs. Per event, the
handler builds an :class:`~cdk_iot_job_provider.iot_api.IotApi` bound to the
event's deadline and passes it to the lifecycle in the
:class:`~cdk_iot_job_provider.lifecycle.JobRequest`: no module state carries
a deadline or a region from one event to the next.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import gate_api, gate_rules, iot_api, lifecycle, physical_id, redaction, rollout_gate, schema
from .ownership import Owner
from .response import DEFAULT_SENDER, MAX_PHYSICAL_ID_BYTES, OneResponseCfnResource

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

__all__ = ["Dependencies", "ProviderHandler", "Reserve", "handler", "helper", "make_handler"]

logger = logging.getLogger(__name__)

_SERVICE_TIMEOUT_RANGE = range(1, schema.MAX_SERVICE_TIMEOUT_SECONDS + 1)


@dataclass(frozen=True)
class Reserve:
    """How much of the invocation's time is kept back for answering CloudFormation.

    Parameters
    ----------
    response_seconds
        Waits (deletion polls, slots, grace) stop this long before the Lambda
        timeout, to still answer CloudFormation. Default 30 s.
    last_request_margin_seconds
        IoT requests may still start this much later than waits: a wait that
        ends at its deadline is followed by one more request. Default 5 s.
    service_timeout_margin_seconds
        No IoT request starts later than this before CloudFormation stops
        waiting (``ServiceTimeout``): an IoT attempt lasts at most 20 s
        (``iot_api.CLIENT_CONFIG``), and the answer needs a moment. Default 25 s.
    """

    response_seconds: float = 30.0
    last_request_margin_seconds: float = 5.0
    service_timeout_margin_seconds: float = 25.0


@dataclass(frozen=True)
class Dependencies:
    """What the handler takes from outside the event; every default is production's.

    Parameters
    ----------
    iot_client
        Gives the IoT client for a region (``None``: botocore's default). By
        default one cached client per region for the life of the process
        (:func:`~cdk_iot_job_provider.iot_api.client_for`): building one costs
        100 ms or more.
    timing
        How the lifecycle polls deletions and waits for a Create in flight.
    reserve
        The time kept back to answer CloudFormation.
    send_response
        PUTs the one response to the event's ResponseURL; returns whether
        CloudFormation accepted it (default: 10 s socket timeout, real waits).
    sleep
        The lifecycle's waits. Default ``time.sleep``.
    monotonic
        The clock deadlines are reckoned on. Default ``time.monotonic``.
    clock
        The wall clock the schedule rules and rollout gates are reckoned on (UTC).
    gate_timing
        How a rollout gate polls.
    gate_api
        Gives the Lambda and CloudFormation calls of a waiting gate (hand-over, stack status).
    """

    iot_client: Callable[[str | None], iot_api.DeadlineClient] = iot_api.client_for
    timing: lifecycle.Timing = field(default_factory=lifecycle.Timing)
    reserve: Reserve = field(default_factory=Reserve)
    send_response: Callable[[str, dict[str, Any]], bool] = DEFAULT_SENDER
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    clock: Callable[[], datetime] = lifecycle.utc_now
    gate_timing: rollout_gate.GateTiming = field(default_factory=rollout_gate.GateTiming)
    gate_api: Callable[[], gate_api.GateApi] = gate_api.default_gate_api


def _owner(event: dict[str, Any]) -> Owner:
    return Owner(
        str(event.get("StackId", "")), str(event.get("LogicalResourceId", "")), str(event.get("RequestId", ""))
    )


def _raw_properties(event: dict[str, Any], key: str = "ResourceProperties") -> dict[str, Any]:
    value = event.get(key)
    return value if isinstance(value, dict) else {}


def _fallback_physical_id(event: dict[str, Any], attempt: lifecycle.CreateAttempt) -> str:
    """The id to answer when the handler produced none: a failed Create, or a timeout."""
    request_id = str(event.get("RequestId", ""))
    if event.get("RequestType") != "Create":
        current = str(event.get("PhysicalResourceId") or "")
        # CloudFormation never sends an id over its limit, but must never get one back.
        fits = 0 < len(current.encode()) <= MAX_PHYSICAL_ID_BYTES
        return current if fits else physical_id.create_failed(request_id)
    if attempt.job_arn:
        return physical_id.may_have_created(attempt.job_arn, request_id)
    return physical_id.create_failed(request_id)


def _timeout_reason(event: dict[str, Any], attempt: lifecycle.CreateAttempt) -> str:
    request_type = event.get("RequestType")
    if request_type == "Create":
        if attempt.job_arn:
            return f"the provider timed out; job {attempt.job_arn} may have been created: the rollback deletes it"
        return "the provider timed out before it created a job"
    if request_type == "Update":
        if attempt.job_arn:
            return (
                f"the provider timed out; replacement job {attempt.job_arn} may have been created: "
                "delete it if it exists"
            )
        return "the provider timed out before it created a replacement job"
    return f"the provider timed out while deleting job {event.get('PhysicalResourceId')}"


def _job_arn_prefix(event: dict[str, Any], context: Any) -> str | None:
    """Jobs live where the function runs; the stack's region and account otherwise."""
    return physical_id.arn_prefix(getattr(context, "invoked_function_arn", None), "lambda") or physical_id.arn_prefix(
        event.get("StackId"), "cloudformation"
    )


def _service_timeout(event: dict[str, Any]) -> float | None:
    """The resource's ``ServiceTimeout``: how long CloudFormation waits for the answer."""
    value = _raw_properties(event).get("ServiceTimeout")
    try:
        seconds = int(str(value))
    except ValueError:
        return None
    return float(seconds) if seconds in _SERVICE_TIMEOUT_RANGE else None


def _request_deadline(
    event: dict[str, Any], context: Any, dependencies: Dependencies, gate: rollout_gate.GateState | None
) -> float:
    """The ``monotonic()`` after which no IoT request may start.

    The earlier of the Lambda timeout and the resource's ServiceTimeout, each
    less the time an attempt and the answer take. A gate's later invocation
    reckons ServiceTimeout from the event's first invocation (``answer_by``).
    """
    reserve = dependencies.reserve
    now = dependencies.monotonic()
    deadline: float = (
        now
        + context.get_remaining_time_in_millis() / 1000.0
        - (reserve.response_seconds - reserve.last_request_margin_seconds)
    )
    if gate is not None:
        return min(deadline, now + gate.answer_by - dependencies.clock().timestamp())
    service_timeout = _service_timeout(event)
    if service_timeout is not None:
        margin = min(reserve.service_timeout_margin_seconds, service_timeout / 2)
        deadline = min(deadline, now + service_timeout - margin)
    return deadline


def _answer_by(event: dict[str, Any], dependencies: Dependencies) -> float:
    """The wall-clock time by which CloudFormation must have the answer, less the time to send it."""
    service_timeout = _service_timeout(event) or float(schema.MAX_SERVICE_TIMEOUT_SECONDS)
    margin = min(dependencies.reserve.service_timeout_margin_seconds, service_timeout / 2)
    return dependencies.clock().timestamp() + service_timeout - margin


def _gate_state(event: dict[str, Any]) -> rollout_gate.GateState | None:
    """The state a hand-over event carries, or ``None`` for CloudFormation's own event."""
    if rollout_gate.GATE_KEY not in event:
        return None
    return rollout_gate.GateState.of(event[rollout_gate.GATE_KEY])


def _gate_config(request: lifecycle.JobRequest, event: dict[str, Any]) -> gate_rules.GateConfig | None:
    """The resource's rollout gate; rejects one CloudFormation would stop waiting for.

    Raises
    ------
    schema.InvalidPropertyError
        When the gate's timeout plus the provider's margin exceeds ServiceTimeout.
    """
    gate = request.properties.get("RolloutGate")
    if not isinstance(gate, dict):
        return None
    config = gate_rules.GateConfig.of(gate)
    service_timeout = _service_timeout(event) or float(schema.MAX_SERVICE_TIMEOUT_SECONDS)
    if config.timeout_seconds + schema.GATE_MARGIN_SECONDS > service_timeout:
        raise schema.InvalidPropertyError(
            f"RolloutGate.TimeoutInMinutes {config.timeout_seconds / 60:g} does not fit ServiceTimeout "
            f"{service_timeout:g} s: a gate needs its timeout plus {schema.GATE_MARGIN_SECONDS} s; "
            f"raise ServiceTimeout (at most {schema.MAX_SERVICE_TIMEOUT_SECONDS}) or shorten the gate"
        )
    return config


def _iot(event: dict[str, Any], deadline: float, dependencies: Dependencies) -> iot_api.IotApi:
    """The event's IoT calls: none after ``deadline``, in the environment's region.

    Lambda always sets AWS_REGION, but a missing one must not stop a rollback:
    the stack's region stands in. The client is obtained at the first call.
    """
    stack_arn = physical_id.arn_parts(event.get("StackId"))
    region = iot_api.environment_region(stack_arn[2] if stack_arn else None)
    return iot_api.IotApi(lambda: dependencies.iot_client(region), deadline, monotonic=dependencies.monotonic)


def _request(
    event: dict[str, Any],
    context: Any,
    dependencies: Dependencies,
    attempt: lifecycle.CreateAttempt,
    *,
    validate: bool = True,
) -> lifecycle.JobRequest:
    raw = _raw_properties(event)
    old_raw = _raw_properties(event, "OldResourceProperties")
    old: dict[str, Any] | None
    try:
        old = schema.parse_properties(old_raw) if old_raw else None
    except schema.InvalidPropertyError:
        old = None
    # Neither waits nor IoT requests may run into the time needed to answer.
    request_deadline = _request_deadline(event, context, dependencies, _gate_state(event))
    iot = _iot(event, request_deadline, dependencies)
    return lifecycle.JobRequest(
        owner=_owner(event),
        properties=schema.parse_properties(raw) if validate else raw,
        iot=iot,
        physical_id=event.get("PhysicalResourceId"),
        old_properties=old,
        old_raw_properties=old_raw,
        deadline=request_deadline - dependencies.reserve.last_request_margin_seconds,
        timing=dependencies.timing,
        sleep=dependencies.sleep,
        monotonic=dependencies.monotonic,
        job_arn_prefix=_job_arn_prefix(event, context),
        attempt=attempt,
        clock=dependencies.clock,
    )


def _respond(helper: OneResponseCfnResource, result: lifecycle.JobResult, *, gated: bool = False) -> str:
    helper.Data.update(result.attributes(gated=gated))
    return result.job_arn


class GateFailedError(Exception):
    """The rollout gate failed; the message is the response's Reason."""


def _create_or_update(
    helper: OneResponseCfnResource,
    event: dict[str, Any],
    context: Any,
    dependencies: Dependencies,
    attempt: lifecycle.CreateAttempt,
) -> str:
    """Create or update the job and, for a new job with a rollout gate, wait for the fleet.

    A hand-over event (:data:`rollout_gate.GATE_KEY`) only continues its gate.
    """
    state = _gate_state(event)
    request = _request(event, context, dependencies, attempt)
    gate = _gate_config(request, event)
    if state is not None:
        if gate is None:
            raise schema.InvalidPropertyError(f"{rollout_gate.GATE_KEY} was sent for a resource without RolloutGate")
        attempt.job_arn = state.job_arn
        outcome = rollout_gate.resume(_gate_run(request, gate, event, context, dependencies), state)
        return _gate_answer(helper, event, state.job_arn, lifecycle.JobResult(state.job_id, state.job_arn), outcome)
    answer_by = _answer_by(event, dependencies)
    change = lifecycle.create if event.get("RequestType") == "Create" else lifecycle.update
    result = change(request)
    if gate is None or not result.created:
        return _respond(helper, result, gated=gate is not None)
    run = _gate_run(request, gate, event, context, dependencies)
    outcome = rollout_gate.start(run, result, answer_by=answer_by)
    return _gate_answer(helper, event, result.job_arn, result, outcome)


def _gate_run(
    request: lifecycle.JobRequest,
    gate: gate_rules.GateConfig,
    event: dict[str, Any],
    context: Any,
    dependencies: Dependencies,
) -> rollout_gate.GateRun:
    return rollout_gate.GateRun(
        request=request,
        gate=gate,
        api=dependencies.gate_api(),
        event={key: value for key, value in event.items() if key != rollout_gate.GATE_KEY},
        function_arn=str(getattr(context, "invoked_function_arn", "")),
        timing=dependencies.gate_timing,
    )


def _gate_answer(
    helper: OneResponseCfnResource,
    event: dict[str, Any],
    job_arn: str,
    result: lifecycle.JobResult,
    outcome: rollout_gate.GateOutcome,
) -> str:
    """Answer the gate's verdict, or nothing when another invocation holds the event."""
    if outcome.kind in ("HANDED_OVER", "SUPERSEDED"):
        logger.info("no answer from this invocation: %s", outcome.reason)
        helper.withhold()
        return job_arn
    helper.Data.update({**result.attributes(gated=True), **outcome.attributes})
    if outcome.kind == "PASS":
        helper.Data["GateVerdict"] = "PASS"
        return job_arn
    # The failed request's own job: CloudFormation's rollback deletes exactly that job.
    helper.PhysicalResourceId = physical_id.may_have_created(job_arn, str(event.get("RequestId", "")))
    raise GateFailedError(outcome.reason)


def _delete(helper: OneResponseCfnResource, request: lifecycle.JobRequest) -> str | None:
    """Delete or cancel the job this resource created; succeed otherwise."""
    raw = request.properties
    namespace_id = raw.get("NamespaceId")
    try:
        helper.Reason = lifecycle.delete(
            request,
            cancel_only=raw.get("DeleteBehavior") == "CANCEL",
            namespace_id=namespace_id if isinstance(namespace_id, str) else None,
        )
    except iot_api.IotUnavailableError as error:
        # Failing would leave the stack in DELETE_FAILED or ROLLBACK_FAILED
        # until the environment is fixed; nothing was touched, so say so.
        logger.error("Delete could not reach IoT: %s", error)
        helper.Reason = f"{error}; job {request.physical_id} was not checked and, if it exists, is left as it is"
    return request.physical_id


class ProviderHandler:
    """A Lambda handler of the provider: a crhelper resource whose Create, Update and Delete use ``dependencies``.

    Calling it handles one event and answers CloudFormation exactly once. Build
    it with :func:`make_handler`.

    Attributes
    ----------
    helper
        The crhelper resource (``@helper.create``, ``@helper.update``,
        ``@helper.delete`` are registered on it).
    dependencies
        What its events use from outside themselves.
    """

    def __init__(self, dependencies: Dependencies) -> None:
        self.dependencies = dependencies
        # What the current event's CreateJob may have made: read by the failure
        # and timeout paths (crhelper's timer runs in another thread).
        self._attempt = lifecycle.CreateAttempt()
        attempt = self._attempt
        helper = OneResponseCfnResource(
            lambda event: _fallback_physical_id(event, attempt),
            lambda event: _timeout_reason(event, attempt),
            send=dependencies.send_response,
        )
        self.helper = helper

        @helper.create
        def create(event: dict[str, Any], context: Any) -> str:
            """Create the job (and wait for its gate); the physical id is its ARN."""
            return _create_or_update(helper, event, context, dependencies, attempt)

        @helper.update
        def update(event: dict[str, Any], context: Any) -> str:
            """Update in place, or return a new job's ARN when the job was replaced (after its gate)."""
            return _create_or_update(helper, event, context, dependencies, attempt)

        @helper.delete
        def delete(event: dict[str, Any], context: Any) -> str | None:
            """Delete or cancel the job this resource created; succeed otherwise."""
            # Never validate on Delete: a failed Create's rollback Delete carries the
            # same invalid properties, and must succeed.
            return _delete(helper, _request(event, context, dependencies, attempt, validate=False))

    def __call__(self, event: dict[str, Any], context: Any) -> None:
        """Handle one event: answers CloudFormation exactly once."""
        self._attempt.job_arn = None
        redaction.set_secrets(
            redaction.secret_values(_raw_properties(event))
            | redaction.secret_values(_raw_properties(event, "OldResourceProperties"))
            if isinstance(event, dict)
            else set()
        )
        self.helper(event, context)


DEFAULT_DEPENDENCIES = Dependencies()


def make_handler(dependencies: Dependencies = DEFAULT_DEPENDENCIES) -> ProviderHandler:
    """A Lambda handler whose events use ``dependencies`` (default: production's).

    The seam for tests: ``make_handler(Dependencies(timing=Timing(0.001, 0.001, 0.01)))``
    polls without waiting, and everything else is as in Lambda.
    """
    return ProviderHandler(dependencies)


handler = make_handler()
"""The Lambda handler (``cdk_iot_job_provider.handler.handler``): answers CloudFormation exactly once per event."""

helper = handler.helper
"""The Lambda handler's crhelper resource."""
