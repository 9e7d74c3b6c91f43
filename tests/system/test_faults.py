"""Fault injection: every fault ends in one answer, in time, and loses no job.

Each test injects one fault into the strict IoT fake (``fail_next`` of
:class:`iot_faults.FaultyIotFake`), into the handler's boto3 client (a
``before-send`` hook, for connection errors and slow calls) or into the
CloudFormation endpoint (:class:`cfn_faults.FaultyCloudFormationEndpoint`), then checks the response, the jobs
in IoT and how long the handler took. botocore's retry backoff is recorded
rather than slept (``aws.retry_sleeps``); the time reported is the wall time
plus that backoff, i.e. what the invocation would take in Lambda.

Every test adds a row to the "Fault injection" figures table.
"""

from __future__ import annotations

import time
import types
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import botocore.endpoint
import botocore.retries.standard
import figures
import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError
from cfn_events import event, sample_properties
from cfn_faults import FaultyCloudFormationEndpoint
from in_process import Cfn, LambdaContext
from job_arns import arn, job_id_of

from cdk_iot_job_provider import handler, iot_api, schema
from cdk_iot_job_provider.ownership import Owner, generated_job_id
from cdk_iot_job_provider.response import ResponseSender

LAMBDA_TIMEOUT = 300.0
# What the handler keeps to answer CloudFormation after its last IoT call.
RESERVE = handler.Reserve().response_seconds
# botocore's max_attempts counts retries: one attempt more than that in all.
MAX_ATTEMPTS = iot_api.CLIENT_CONFIG.retries["max_attempts"] + 1
REGION = "us-east-1"


@dataclass
class Run:
    """One event's outcome: the response and what it took."""

    response: dict[str, Any]
    url: str
    wall: float
    backoff: float
    attempts: Counter[str]

    @property
    def seconds(self) -> float:
        """Wall time plus the retry backoff Lambda would have slept."""
        return self.wall + self.backoff


class Attempts:
    """Counts the handler's HTTP attempts per IoT operation, retries included."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, event_name: str = "", **_: Any) -> None:
        self.counts[event_name.rsplit(".", 1)[-1]] += 1


@pytest.fixture
def cfn(aws: Any, cfn_endpoint: FaultyCloudFormationEndpoint) -> Cfn:
    return Cfn(cfn_endpoint, aws.dependencies)


@pytest.fixture
def attempts(aws: Any) -> Iterator[Attempts]:
    counter = Attempts()
    aws.handler_iot.meta.events.register("before-send.iot", counter)
    yield counter
    aws.handler_iot.meta.events.unregister("before-send.iot", counter)


def run(cfn: Cfn, aws: Any, attempts: Attempts, request_type: str, properties: dict[str, Any], **kwargs: Any) -> Run:
    """Deliver one event with a Lambda-sized context and measure it."""
    context: LambdaContext = kwargs.pop("context", None) or cfn.context or LambdaContext(LAMBDA_TIMEOUT)
    keep_counts = kwargs.pop("keep_counts", False)
    built = event(request_type, properties, response_url=cfn.endpoint.response_url(request_type.lower()), **kwargs)
    if not keep_counts:
        attempts.counts.clear()
    slept_before = sum(aws.retry_sleeps.delays)
    start = time.monotonic()
    body = cfn.deliver(built, context)
    backoff = sum(aws.retry_sleeps.delays) - slept_before
    return Run(body, built["ResponseURL"], time.monotonic() - start, backoff, Counter(attempts.counts))


def record(scenario: str, fault: str, result: Run, operation: str | None = None) -> None:
    counts = result.attempts
    figures.record(
        "Fault injection",
        scenario=scenario,
        fault=fault,
        outcome=result.response["Status"],
        time_s=f"{result.seconds:.2f}",
        attempts=counts[operation] if operation else sum(counts.values()),
    )


def props(**changes: Any) -> dict[str, Any]:
    result = sample_properties()
    result.update(changes)
    return {name: value for name, value in result.items() if value is not None}


def may_have_created(job_id: str, result: Run) -> str:
    """The id a failed Create answers when its CreateJob may have gone through."""
    return f"{arn(job_id)}?request-id={result.response['RequestId']}"


def job_status(aws: Any, job_id: str) -> str | None:
    try:
        return str(aws.iot.describe_job(jobId=job_id)["job"]["status"])
    except ClientError as error:
        assert error.response["Error"]["Code"] == "ResourceNotFoundException"
        return None


def created(cfn: Cfn, job_id: str) -> str:
    body = cfn.create(props(JobId=job_id))
    assert body["Status"] == "SUCCESS", body
    assert body["PhysicalResourceId"] == arn(job_id)
    return job_id


# --- Throttling storms on every API the handler calls ------------------------

Scenario = Callable[[Cfn, Any, Attempts, Callable[[], None]], Run]


def create_job(cfn: Cfn, aws: Any, attempts: Attempts, inject: Callable[[], None]) -> Run:
    inject()
    return run(cfn, aws, attempts, "Create", props(JobId="storm"))


def update_job(cfn: Cfn, aws: Any, attempts: Attempts, inject: Callable[[], None]) -> Run:
    old = props(JobId=created(cfn, "storm"))
    new = {**old, "Description": "changed", "Tags": [{"Key": "team", "Value": "fleet"}, {"Key": "new", "Value": "1"}]}
    inject()
    return run(cfn, aws, attempts, "Update", new, physical_id=arn("storm"), old_properties=old)


def untag_job(cfn: Cfn, aws: Any, attempts: Attempts, inject: Callable[[], None]) -> Run:
    old = props(JobId=created(cfn, "storm"))
    inject()
    untagged = {name: value for name, value in old.items() if name != "Tags"}
    return run(cfn, aws, attempts, "Update", untagged, physical_id=arn("storm"), old_properties=old)


def delete_job(cfn: Cfn, aws: Any, attempts: Attempts, inject: Callable[[], None]) -> Run:
    properties = props(JobId=created(cfn, "storm"))
    inject()
    return run(cfn, aws, attempts, "Delete", properties, physical_id=arn("storm"))


def cancel_job(cfn: Cfn, aws: Any, attempts: Attempts, inject: Callable[[], None]) -> Run:
    properties = props(JobId=created(cfn, "storm"), DeleteBehavior="CANCEL")
    inject()
    return run(cfn, aws, attempts, "Delete", properties, physical_id=arn("storm"))


STORMS: dict[str, tuple[Scenario, str]] = {
    # operation: (the event that calls it, the job status the event leaves when it succeeds)
    "CreateJob": (create_job, "IN_PROGRESS"),
    "DescribeJob": (delete_job, "gone"),
    "ListTagsForResource": (delete_job, "gone"),
    "DeleteJob": (delete_job, "gone"),
    "CancelJob": (cancel_job, "CANCELED"),
    "UpdateJob": (update_job, "IN_PROGRESS"),
    "TagResource": (update_job, "IN_PROGRESS"),
    "UntagResource": (untag_job, "IN_PROGRESS"),
}


@pytest.mark.parametrize("operation", list(STORMS))
def test_a_throttling_storm_short_of_the_retry_limit_ends_in_success(
    cfn: Cfn, aws: Any, attempts: Attempts, operation: str
) -> None:
    scenario, status = STORMS[operation]

    result = scenario(
        cfn, aws, attempts, lambda: aws.fake.fail_next(operation, "ThrottlingException", times=MAX_ATTEMPTS - 1)
    )

    assert result.response["Status"] == "SUCCESS", result.response
    assert result.response["PhysicalResourceId"] == arn("storm")
    assert result.attempts[operation] >= MAX_ATTEMPTS
    assert (job_status(aws, "storm") or "gone") == status
    assert result.seconds < LAMBDA_TIMEOUT - RESERVE
    throttles = MAX_ATTEMPTS - 1
    record(f"{operation} throttled {throttles} times in a row", f"ThrottlingException x{throttles}", result, operation)


@pytest.mark.real_waits
@pytest.mark.parametrize("operation", list(STORMS))
def test_an_endless_throttling_storm_ends_in_one_clean_failure_in_time(
    cfn: Cfn, aws: Any, attempts: Attempts, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    # GIVEN throttling without end, backoff that really sleeps, and 2 s to spare
    scenario, _ = STORMS[operation]
    real_backoff(monkeypatch, 0.02)

    def storm() -> None:
        aws.fake.fail_next(operation, "ThrottlingException", times=100_000)
        cfn.context = LambdaContext(RESERVE + 2)

    result = scenario(cfn, aws, attempts, storm)
    aws.fake.reset()

    # THEN one FAILED answer, naming the throttled operation, before the deadline
    assert result.response["Status"] == "FAILED"
    assert "ThrottlingException" in result.response["Reason"]
    assert operation in result.response["Reason"]
    assert result.wall < 2 + 1
    # DeleteJob keeps waiting for a deletion slot until the deadline; the others give up after botocore's retries.
    assert result.attempts[operation] >= MAX_ATTEMPTS
    # Nothing lost: a failed Delete or Update leaves the job as it was.
    if operation != "CreateJob":
        assert job_status(aws, "storm") is not None
    record(f"{operation} throttled without end", "ThrottlingException, 2 s left", result, operation)


def test_a_failed_create_after_a_throttling_storm_rolls_back_cleanly(cfn: Cfn, aws: Any, attempts: Attempts) -> None:
    failed = create_job(cfn, aws, attempts, lambda: aws.fake.fail_next("CreateJob", "ThrottlingException", times=1000))
    aws.fake.reset()

    rollback = run(
        cfn, aws, attempts, "Delete", props(JobId="storm"), physical_id=failed.response["PhysicalResourceId"]
    )

    # Retries exhausted: an earlier attempt may have been cut off after IoT made
    # the job, so the id names it, but only as made by this very request.
    assert failed.response["Status"] == "FAILED"
    assert failed.response["PhysicalResourceId"] == may_have_created("storm", failed)
    assert rollback.response["Status"] == "SUCCESS"
    assert "job storm does not exist: nothing to delete" in rollback.response["Reason"]
    assert job_status(aws, "storm") is None


@pytest.mark.real_waits
def test_a_storm_that_outlasts_the_lambda_deadline_fails_before_the_timeout(
    cfn: Cfn, aws: Any, attempts: Attempts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN throttling that never ends, real backoff sleeps of 0.2 s, and only
    # 1.5 s before the last moment an IoT request may start
    real_backoff(monkeypatch, 0.2)
    aws.fake.fail_next("CreateJob", "ThrottlingException", times=1000)
    context = LambdaContext(RESERVE - handler.Reserve().last_request_margin_seconds + 1.5)

    result = run(cfn, aws, attempts, "Create", props(JobId="storm"), context=context)

    # THEN the handler itself answers FAILED, well before crhelper's timer would
    assert result.response["Status"] == "FAILED"
    assert "no time left for IoT CreateJob" in result.response["Reason"]
    assert result.response["PhysicalResourceId"] == may_have_created("storm", result)
    assert result.wall < 1.5 + 1.0
    assert 1 < result.attempts["CreateJob"] < MAX_ATTEMPTS
    record("CreateJob throttled past the Lambda deadline", "ThrottlingException, 1.5 s left", result, "CreateJob")


@pytest.mark.real_waits
def test_a_storm_that_outlasts_the_service_timeout_fails_before_cloudformation_stops_waiting(
    cfn: Cfn, aws: Any, attempts: Attempts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN throttling that never ends, real backoff sleeps of 0.2 s, a Lambda with
    # its full 300 s, and a resource whose ServiceTimeout is 3 s: no IoT request may
    # start after 3 - min(25, 3 / 2) = 1.5 s
    real_backoff(monkeypatch, 0.2)
    aws.fake.fail_next("CreateJob", "ThrottlingException", times=1000)

    result = run(cfn, aws, attempts, "Create", props(JobId="storm", ServiceTimeout="3"))

    # THEN the handler answers FAILED by then, not when the Lambda would time out
    assert result.response["Status"] == "FAILED"
    assert "no time left for IoT CreateJob" in result.response["Reason"]
    assert result.response["PhysicalResourceId"] == may_have_created("storm", result)
    assert result.wall < 1.5 + 1.0
    assert 1 < result.attempts["CreateJob"] < MAX_ATTEMPTS
    record(
        "CreateJob throttled past the ServiceTimeout", "ThrottlingException, ServiceTimeout 3 s", result, "CreateJob"
    )


def test_no_backoff_wait_that_would_end_past_the_deadline_is_begun(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN throttling that never ends, botocore's own randomized backoff (a wait
    # grows to 20 s) played on a virtual clock, and 5 s before the deadline
    clock = VirtualClock()
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=clock.sleep))
    aws.fake.fail_next("CreateJob", "ThrottlingException", times=1000)
    iot = iot_api.IotApi(lambda: aws.dependencies.iot_client(REGION), deadline=5.0, monotonic=clock.now)

    # WHEN CreateJob is called
    with pytest.raises(iot_api.DeadlineReachedError, match="no time left for IoT CreateJob"):
        iot.create_job(
            {"jobId": "storm", "targets": ["arn:aws:iot:us-east-1:123456789012:thing/sensor-1"], "document": "{}"}
        )

    # THEN it gives up at the deadline, not a backoff wait after it
    assert clock.sleeps, "botocore retried at least once"
    assert clock.now() <= 5.0, clock.sleeps


@dataclass
class VirtualClock:
    """A monotonic clock that only botocore's backoff sleeps move."""

    sleeps: list[float] = field(default_factory=list)

    def now(self) -> float:
        return sum(self.sleeps)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def real_backoff(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """botocore's retry backoff is ``seconds`` each time and really sleeps, so deadlines are reached."""
    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda _self, _context: seconds)
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=time.sleep))


# --- Transient service and connection errors ------------------------------


@pytest.mark.parametrize(("code", "status"), [("ServiceUnavailableException", 503), ("InternalFailureException", 500)])
def test_service_errors_are_transient(cfn: Cfn, aws: Any, attempts: Attempts, code: str, status: int) -> None:
    result = create_job(cfn, aws, attempts, lambda: aws.fake.fail_next("CreateJob", code, times=3))

    assert result.response["Status"] == "SUCCESS", result.response
    assert result.attempts["CreateJob"] == 4
    assert job_status(aws, "storm") == "IN_PROGRESS"
    record("CreateJob answered with server errors", f"{code} ({status}) x3", result, "CreateJob")


CONNECTION_ERRORS: dict[str, Callable[[], Exception]] = {
    "connection refused": lambda: EndpointConnectionError(endpoint_url="https://iot.us-east-1.amazonaws.com"),
    "connection reset": lambda: ConnectionClosedError(endpoint_url="https://iot.us-east-1.amazonaws.com"),
    "read timeout": lambda: ReadTimeoutError(endpoint_url="https://iot.us-east-1.amazonaws.com"),
}


@pytest.mark.parametrize("kind", list(CONNECTION_ERRORS))
def test_connection_errors_are_transient(cfn: Cfn, aws: Any, attempts: Attempts, kind: str) -> None:
    failures = iter(range(3))

    def broken_connection(**_: Any) -> None:
        if next(failures, None) is not None:
            attempts.counts["CreateJob"] += 1
            raise CONNECTION_ERRORS[kind]()

    client_events = aws.handler_iot.meta.events
    client_events.register_first("before-send.iot.CreateJob", broken_connection)
    try:
        result = run(cfn, aws, attempts, "Create", props(JobId="storm"), keep_counts=True)
    finally:
        client_events.unregister("before-send.iot.CreateJob", broken_connection)

    assert result.response["Status"] == "SUCCESS", result.response
    assert result.attempts["CreateJob"] == 4
    assert job_status(aws, "storm") == "IN_PROGRESS"
    record(f"CreateJob hit by a {kind}", f"{type(CONNECTION_ERRORS[kind]()).__name__} x3", result, "CreateJob")


# --- DeleteJob's limit of 10 deletions in progress --------------------------


def test_delete_job_limit_exceeded_is_retried_until_a_slot_frees(cfn: Cfn, aws: Any, attempts: Attempts) -> None:
    result = delete_job(cfn, aws, attempts, lambda: aws.fake.fail_next("DeleteJob", "LimitExceededException", times=5))

    assert result.response["Status"] == "SUCCESS", result.response
    assert result.attempts["DeleteJob"] == 6
    assert job_status(aws, "storm") is None
    record("DeleteJob with 10 deletions in progress", "LimitExceededException x5", result, "DeleteJob")


def test_ten_real_deletions_in_progress_delay_the_delete_until_one_finishes(
    cfn: Cfn, aws: Any, attempts: Attempts
) -> None:
    # GIVEN ten other jobs of this account still being deleted
    for number in range(10):
        aws.iot.create_job(jobId=f"busy-{number}", targets=[sample_properties()["Targets"][0]], document="{}")
        aws.iot.delete_job(jobId=f"busy-{number}", force=True)
    job_id = created(cfn, "storm")
    # WHEN their deletions finish while the Delete waits for a slot
    progress = iter(range(10))

    def a_deletion_finishes(_seconds: float) -> None:
        number = next(progress, None)
        if number is not None:
            while job_status(aws, f"busy-{number}") is not None:
                pass

    waiting = cfn.with_dependencies(sleep=a_deletion_finishes)
    result = run(waiting, aws, attempts, "Delete", props(JobId=job_id), physical_id=arn(job_id))

    # THEN it succeeds once a slot frees, and the job is gone
    assert result.response["Status"] == "SUCCESS", result.response
    assert result.attempts["DeleteJob"] >= 2
    assert job_status(aws, job_id) is None
    record("DeleteJob behind 10 real deletions", "LimitExceededException (fake's limit)", result, "DeleteJob")


def test_a_deletion_slot_wait_survives_a_throttle_on_botocores_last_retry(
    cfn: Cfn, aws: Any, attempts: Attempts
) -> None:
    # botocore retries LimitExceededException like throttling, so the last of its
    # retries may be a ThrottlingException: the Delete must still wait for a slot.
    def limit_then_throttle() -> None:
        aws.fake.fail_next("DeleteJob", "LimitExceededException", times=MAX_ATTEMPTS - 1)
        aws.fake.fail_next("DeleteJob", "ThrottlingException")

    result = delete_job(cfn, aws, attempts, limit_then_throttle)

    assert result.response["Status"] == "SUCCESS", result.response
    assert result.attempts["DeleteJob"] == MAX_ATTEMPTS + 1
    assert job_status(aws, "storm") is None
    record(
        "DeleteJob: no slot, then throttled on the last retry", "LimitExceeded x10, Throttling x1", result, "DeleteJob"
    )


@pytest.mark.real_waits
def test_delete_job_limit_that_never_clears_fails_before_the_timeout(
    cfn: Cfn, aws: Any, attempts: Attempts, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = created(cfn, "storm")
    cfn = polls_every(cfn, 0.2)
    real_backoff(monkeypatch, 0.05)
    aws.fake.fail_next("DeleteJob", "LimitExceededException", times=1000)

    result = run(
        cfn, aws, attempts, "Delete", props(JobId=job_id), physical_id=arn(job_id), context=LambdaContext(RESERVE + 1)
    )

    # An owned job that could not be deleted is the one case a Delete fails.
    assert result.response["Status"] == "FAILED"
    assert "LimitExceededException" in result.response["Reason"]
    assert job_status(aws, job_id) == "IN_PROGRESS"
    assert result.wall < 2.0
    record("DeleteJob limit never clears", "LimitExceededException x1000, 1 s left", result, "DeleteJob")


def polls_every(cfn: Cfn, seconds: float) -> Cfn:
    """``cfn`` with the handler's deletion polls (and waits for a slot) ``seconds`` apart."""
    timing = replace(cfn.dependencies.timing, first_poll_seconds=seconds, max_poll_seconds=seconds)
    return cfn.with_dependencies(timing=timing)


# --- Deletion outliving the invocation --------------------------------------


@pytest.mark.real_waits
def test_a_deletion_that_outlives_the_wait_succeeds_with_a_reason_and_finishes_on_its_own(
    cfn: Cfn, aws: Any, attempts: Attempts
) -> None:
    # GIVEN a job whose deletion takes longer than the invocation can wait
    job_id = created(cfn, "slow-delete")
    aws.fake.deletion_polls = 12  # about 2.4 s of polls, twice what the invocation has
    cfn = polls_every(cfn, 0.2)

    result = run(
        cfn, aws, attempts, "Delete", props(JobId=job_id), physical_id=arn(job_id), context=LambdaContext(RESERVE + 1)
    )

    # THEN CloudFormation hears SUCCESS within the budget, with the reason why
    assert result.response["Status"] == "SUCCESS"
    assert f"job {job_id} is still being deleted by IoT" in result.response["Reason"]
    assert result.wall < 2.0
    assert job_status(aws, job_id) == "DELETION_IN_PROGRESS"
    record("Deletion outlives the invocation", "DELETION_IN_PROGRESS for 12 polls, 1 s left", result, "DescribeJob")
    # AND a new stack's Create of the same JobId waits for the deletion, then creates it
    again = run(cfn, aws, attempts, "Create", props(JobId=job_id))
    assert again.response["Status"] == "SUCCESS", again.response
    assert job_status(aws, job_id) == "IN_PROGRESS"


# --- The response URL -------------------------------------------------------


@dataclass
class Sent:
    seconds: float
    backoff: float
    attempts: int


def send_to(aws: Any, url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Sent:
    """Deliver an event whose response goes to ``url``, with crhelper's own sender booby-trapped.

    The handler's sender waits 0.5 s on the socket (10 s in Lambda) and records its backoff instead of sleeping.
    """
    import crhelper.utils

    def never(*_: Any, **__: Any) -> None:
        raise AssertionError("crhelper's unbounded _send_response must never run")

    backoff: list[float] = []
    monkeypatch.setattr(crhelper.utils, "HTTPSConnection", never)
    sender = ResponseSender(socket_timeout_seconds=0.5, sleep=backoff.append)
    deliver = handler.make_handler(replace(aws.dependencies, send_response=sender))
    built = event("Delete", props(), response_url=url, physical_id="not-a-job-id!")
    start = time.monotonic()
    deliver(built, LambdaContext(LAMBDA_TIMEOUT))
    seconds = time.monotonic() - start
    tries = sum(
        "sending the response failed" in r.getMessage() or "answered HTTP" in r.getMessage() for r in caplog.records
    )
    return Sent(seconds, sum(backoff), tries)


def record_sending(scenario: str, fault: str, outcome: str, sent: Sent) -> None:
    figures.record(
        "Fault injection",
        scenario=scenario,
        fault=fault,
        outcome=outcome,
        time_s=f"{sent.seconds + sent.backoff:.2f}",
        attempts=sent.attempts,
    )


def closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_response_url_gives_up_after_bounded_attempts(
    aws: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    sent = send_to(aws, "https://cloudformation-response.invalid/response?X-Amz-Signature=abc", monkeypatch, caplog)

    assert sent.attempts == 4
    assert "gave up sending the response after 4 attempts" in caplog.text
    assert sent.seconds < 4 * 0.5 + 1
    record_sending("Response URL unreachable (DNS)", "gaierror x4", "gave up, logged", sent)


def test_a_refused_response_url_gives_up_after_bounded_attempts(
    aws: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    sent = send_to(aws, f"https://127.0.0.1:{closed_port()}/response", monkeypatch, caplog)

    assert sent.attempts == 4
    assert "gave up sending the response after 4 attempts" in caplog.text
    assert "ConnectionRefusedError" in caplog.text
    record_sending("Response URL refuses connections", "ECONNREFUSED x4", "gave up, logged", sent)


@pytest.mark.real_waits
def test_a_hanging_response_url_times_out_each_attempt(
    aws: Any,
    cfn_endpoint: FaultyCloudFormationEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfn_endpoint.stall_next(count=4, seconds=3.0)
    url = cfn_endpoint.response_url("hang")
    sent = send_to(aws, url, monkeypatch, caplog)

    assert sent.attempts == 4
    assert "TimeoutError" in caplog.text
    # Four socket timeouts of 0.5 s (10 s in production) plus 1+2+4 s of backoff.
    assert sent.seconds < 4 * 0.5 + 1.5
    assert sent.backoff == 1 + 2 + 4
    record_sending(
        "Response URL hangs (socket timeout 0.5 s here, 10 s in Lambda)", "no answer x4", "gave up, logged", sent
    )


def test_a_403_from_the_response_url_is_not_retried_and_is_logged(
    aws: Any,
    cfn_endpoint: FaultyCloudFormationEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfn_endpoint.fail_next(count=1, status=403)
    url = cfn_endpoint.response_url("forbidden")
    sent = send_to(aws, url, monkeypatch, caplog)

    assert len(cfn_endpoint.requests_for(url)) == 1
    assert "CloudFormation refused the response with HTTP 403" in caplog.text
    assert sent.backoff == 0
    record_sending("Response URL answers 403", "HTTP 403", "not retried, logged", replace(sent, attempts=1))


def test_server_errors_from_the_response_url_are_retried_then_succeed(
    aws: Any,
    cfn_endpoint: FaultyCloudFormationEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfn_endpoint.fail_next(count=2, status=500)
    url = cfn_endpoint.response_url("flaky")
    sent = send_to(aws, url, monkeypatch, caplog)

    assert len(cfn_endpoint.requests_for(url)) == 3
    assert cfn_endpoint.responses_for(url)[-1]["Status"] == "SUCCESS"
    record_sending("Response URL answers 500 twice", "HTTP 500 x2", "delivered", replace(sent, attempts=3))


# --- The Lambda deadline mid-call -------------------------------------------


def slow_calls(aws: Any, operation: str, seconds: float) -> Callable[..., None]:
    """A before-send hook that makes the handler's ``operation`` take ``seconds`` before it reaches IoT."""

    def slow(**_: Any) -> None:
        time.sleep(seconds)

    aws.handler_iot.meta.events.register_first(f"before-send.iot.{operation}", slow)
    return slow


def without_response_reserve(cfn: Cfn) -> Cfn:
    """``cfn`` whose handler keeps no time back to answer: IoT calls may run until crhelper's timer fires."""
    return cfn.with_dependencies(reserve=handler.Reserve(response_seconds=0.0))


@pytest.mark.real_waits
def test_a_create_cut_off_mid_call_answers_once_and_its_job_is_rolled_back(
    cfn: Cfn, aws: Any, attempts: Attempts
) -> None:
    # GIVEN a CreateJob call still in flight when crhelper's timer fires
    cfn = without_response_reserve(cfn)
    slow = slow_calls(aws, "CreateJob", 1.5)
    try:
        result = run(cfn, aws, attempts, "Create", props(JobId="cut-off"), context=LambdaContext(1.0))
    finally:
        aws.handler_iot.meta.events.unregister("before-send.iot.CreateJob", slow)
    time.sleep(0.3)

    # THEN exactly one FAILED answer went out, naming the job that may exist as this request's
    assert result.response["Status"] == "FAILED"
    assert result.response["PhysicalResourceId"] == may_have_created("cut-off", result)
    assert (
        f"the provider timed out; job {arn('cut-off')} may have been created: the rollback deletes it"
        in result.response["Reason"]
    )
    assert len(cfn.endpoint.responses_for(result.url)) == 1
    # AND the call finished after the answer: the job exists ...
    assert job_status(aws, "cut-off") == "IN_PROGRESS"
    # ... until CloudFormation's rollback Delete of the named id removes it
    rollback = run(
        cfn, aws, attempts, "Delete", props(JobId="cut-off"), physical_id=result.response["PhysicalResourceId"]
    )
    assert rollback.response["Status"] == "SUCCESS"
    assert "job cut-off deleted" in rollback.response["Reason"]
    assert job_status(aws, "cut-off") is None
    record("Create cut off by the Lambda timeout mid-call", "CreateJob takes 1.5 s, 1 s left", result, "CreateJob")


@dataclass
class CutOffReplacement:
    first: dict[str, Any]
    result: Run
    replacement: str


def cut_off_replacement(cfn: Cfn, aws: Any, attempts: Attempts) -> CutOffReplacement:
    """An Update whose replacement CreateJob is still in flight when crhelper's timer fires."""
    old = props(JobId=None)
    first = cfn.create(old)
    new = {**old, "Targets": ["arn:aws:iot:us-east-1:123456789012:thinggroup/gateways"]}
    slow = slow_calls(aws, "CreateJob", 1.5)
    try:
        result = run(
            without_response_reserve(cfn),
            aws,
            attempts,
            "Update",
            new,
            physical_id=first["PhysicalResourceId"],
            old_properties=old,
            context=LambdaContext(1.0),
            request_id="replacement-request",
        )
    finally:
        aws.handler_iot.meta.events.unregister("before-send.iot.CreateJob", slow)
    time.sleep(0.6)  # the CreateJob lands after the answer
    owner = Owner(event("Create", old, response_url="x")["StackId"], "FirmwareRollout76BDADD9", "replacement-request")
    return CutOffReplacement(first, result, generated_job_id(owner))


@pytest.mark.real_waits
def test_a_replacement_cut_off_mid_call_says_a_replacement_may_exist(cfn: Cfn, aws: Any, attempts: Attempts) -> None:
    cut = cut_off_replacement(cfn, aws, attempts)
    result = cut.result

    assert result.response["Status"] == "FAILED"
    # The old job stays the resource; the reason says a replacement may exist.
    assert result.response["PhysicalResourceId"] == cut.first["PhysicalResourceId"]
    assert "may have been created: delete it if it exists" in result.response["Reason"]
    assert "replacement job" in result.response["Reason"]
    assert len(cfn.endpoint.responses_for(result.url)) == 1
    assert job_status(aws, cut.replacement) == "IN_PROGRESS"
    assert job_status(aws, job_id_of(cut.first)) == "IN_PROGRESS"
    # The replacement records which job it replaced, and which request made it.
    tags = {
        tag["Key"]: tag["Value"] for tag in aws.iot.list_tags_for_resource(resourceArn=arn(cut.replacement))["tags"]
    }
    assert tags["cdk-iot-job:replaces"] == job_id_of(cut.first)
    assert tags["cdk-iot-job:request-id"] == "replacement-request"
    record("Replacement cut off by the Lambda timeout mid-call", "CreateJob takes 1.5 s, 1 s left", result, "CreateJob")


@pytest.mark.real_waits
def test_a_replacement_cut_off_mid_call_names_the_replacement_job(cfn: Cfn, aws: Any, attempts: Attempts) -> None:
    cut = cut_off_replacement(cfn, aws, attempts)

    # The replacement is invisible to CloudFormation: only the reason can name it.
    assert job_status(aws, cut.replacement) == "IN_PROGRESS"
    assert arn(cut.replacement) in cut.result.response["Reason"]


def test_a_replacement_that_fails_after_iot_created_it_deletes_it_again(cfn: Cfn, aws: Any, attempts: Attempts) -> None:
    old = props(JobId=None)
    first = cfn.create(old)
    new = {**old, "Targets": ["arn:aws:iot:us-east-1:123456789012:thinggroup/gateways"]}

    # GIVEN IoT creates the replacement but its answer never reaches the handler
    def lost_answer(http_response: Any = None, **_: Any) -> None:
        raise ReadTimeoutError(endpoint_url="https://iot.us-east-1.amazonaws.com")

    client_events = aws.handler_iot.meta.events
    client_events.register("after-call.iot.CreateJob", lost_answer)
    try:
        result = run(cfn, aws, attempts, "Update", new, physical_id=first["PhysicalResourceId"], old_properties=old)
    finally:
        client_events.unregister("after-call.iot.CreateJob", lost_answer)

    assert result.response["Status"] == "FAILED"
    assert result.response["PhysicalResourceId"] == first["PhysicalResourceId"]
    assert "was deleted again" in result.response["Reason"]
    statuses = {job["jobId"]: job_status(aws, job["jobId"]) for job in aws.iot.list_jobs()["jobs"]}
    assert [job_id for job_id, status in statuses.items() if status == "IN_PROGRESS"] == [job_id_of(first)]
    record("Replacement fails after IoT created it", "CreateJob answer lost", result, "CreateJob")


# --- A Delete while its Create is still running ------------------------------


@dataclass
class LateCreate:
    """A lifecycle sleep under which the job a Create (``request_id``) was creating appears."""

    aws: Any
    properties: dict[str, Any]
    job_id: str
    request_id: str
    slept: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        if len(self.slept) > 1:
            return
        stack_id = event("Create", self.properties, response_url="x")["StackId"]
        owner = Owner(stack_id, "FirmwareRollout76BDADD9", self.request_id)
        api_request = schema.to_api(schema.parse_properties(self.properties))
        tags = [{"Key": key, "Value": value} for key, value in owner.tags("fingerprint").items()]
        self.aws.iot.create_job(**{**api_request, "jobId": self.job_id, "tags": tags})


def late_job_of_request_late() -> tuple[dict[str, Any], str]:
    """Generated-id properties, and the job a Create of request ``late`` makes."""
    properties = props(JobId=None)
    owner = Owner(event("Create", properties, response_url="x")["StackId"], "FirmwareRollout76BDADD9", "late")
    return properties, generated_job_id(owner)


def with_grace_of_one_second(cfn: Cfn, sleep: Callable[[float], None]) -> Cfn:
    """``cfn`` whose handler looks for a late job for 1 s, and whose waits (slots, polls, grace) call ``sleep``."""
    timing = replace(cfn.dependencies.timing, in_flight_grace_seconds=1.0)
    return cfn.with_dependencies(timing=timing, sleep=sleep)


def test_a_delete_while_its_create_is_still_running_finds_and_deletes_the_late_job(
    cfn: Cfn, aws: Any, attempts: Attempts
) -> None:
    # GIVEN a rollback Delete of the id a timed-out Create answered (the job's
    # ARN qualified by its request), and that Create's job appears only while
    # the Delete looks (its CreateJob was slow)
    properties, late_job = late_job_of_request_late()
    sleep = LateCreate(aws, properties, late_job, "late")
    cfn = with_grace_of_one_second(cfn, sleep)

    result = run(cfn, aws, attempts, "Delete", properties, physical_id=f"{arn(late_job)}?request-id=late")

    # THEN the Delete looked again during the grace, found the job and deleted it
    assert sleep.slept[0] == pytest.approx(1.0, abs=0.05)
    assert result.response["Status"] == "SUCCESS"
    assert f"job {late_job} deleted" in result.response["Reason"]
    assert job_status(aws, late_job) is None
    record("Delete while its Create is still running", "CreateJob lands 1 s after the Delete", result, "DescribeJob")


def test_a_late_job_of_another_request_is_not_deleted_through_a_failed_creates_id(
    cfn: Cfn, aws: Any, attempts: Attempts
) -> None:
    # GIVEN the job that appears during the grace was made by another request of the resource
    properties, late_job = late_job_of_request_late()
    cfn = with_grace_of_one_second(cfn, LateCreate(aws, properties, late_job, "another-request"))

    result = run(cfn, aws, attempts, "Delete", properties, physical_id=f"{arn(late_job)}?request-id=late")

    # THEN the Delete succeeds and leaves that job alone
    assert result.response["Status"] == "SUCCESS"
    assert f"job {late_job} was not created by the failed Create: left untouched" in result.response["Reason"]
    assert job_status(aws, late_job) == "IN_PROGRESS"


def test_a_delete_of_a_plain_job_arn_does_not_look_again_for_a_late_job(cfn: Cfn, aws: Any, attempts: Attempts) -> None:
    # GIVEN the ARN of a job that does not exist, without a failed Create's qualifier
    properties, late_job = late_job_of_request_late()
    sleep = LateCreate(aws, properties, late_job, "late")
    cfn = with_grace_of_one_second(cfn, sleep)

    result = run(cfn, aws, attempts, "Delete", properties, physical_id=arn(late_job))

    # THEN only a successful Create answers that id: no Create can be in flight, so no grace
    assert result.response["Status"] == "SUCCESS"
    assert f"job {late_job} does not exist: nothing to delete" in result.response["Reason"]
    assert sleep.slept == []
    assert result.attempts["DescribeJob"] == 1
    assert result.wall < 1.0


def test_a_delete_of_invalid_properties_does_not_wait_for_a_create_that_never_ran(
    cfn: Cfn, aws: Any, attempts: Attempts
) -> None:
    invalid = props(JobId="x", Targets=[])
    failed = run(cfn, aws, attempts, "Create", invalid)
    assert failed.response["Status"] == "FAILED"
    assert failed.response["PhysicalResourceId"] == f"create-failed:{failed.response['RequestId']}"

    result = run(cfn, aws, attempts, "Delete", invalid, physical_id=failed.response["PhysicalResourceId"])

    # The id names no job: nothing to look for, in IoT or after a grace.
    assert result.response["Status"] == "SUCCESS"
    assert result.wall < 1.0
    assert sum(result.attempts.values()) == 0
