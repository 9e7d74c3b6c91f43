"""The ``response`` module on its own: what CloudFormation receives, and how it is sent.

A :class:`~cdk_iot_job_provider.response.OneResponseCfnResource` with
handlers of the test's own answers events whose ResponseURL is the local HTTPS
endpoint standing in for CloudFormation (``cfn_endpoint``); each test reads
the PUTs that endpoint received. The sender's waits are recorded, not slept.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cfn_events import event
from cfn_faults import FaultyCloudFormationEndpoint
from in_process import LambdaContext

from cdk_iot_job_provider import redaction
from cdk_iot_job_provider.response import (
    MAX_BODY_BYTES,
    MAX_PHYSICAL_ID_BYTES,
    MAX_REASON_CHARS,
    OneResponseCfnResource,
    ResponseSender,
    send_response,
)

JOB_ARN = "arn:aws:iot:us-east-1:123456789012:job/reboot-1"
Handler = Callable[[dict[str, Any], Any], Any]


@pytest.fixture
def endpoint(
    cfn_endpoint: FaultyCloudFormationEndpoint, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FaultyCloudFormationEndpoint]:
    """The response endpoint, trusted as the Lambda trusts S3; its queued faults are dropped afterwards."""
    monkeypatch.setenv("SSL_CERT_FILE", str(cfn_endpoint.ca_pem_path))
    yield cfn_endpoint
    cfn_endpoint.reset()


def fallback(event: dict[str, Any]) -> str:
    return f"fallback:{event.get('RequestId')}"


def timeout_reason(event: dict[str, Any]) -> str:
    return f"timed out handling {event.get('RequestType')}"


class Resource:
    """A ``OneResponseCfnResource`` whose create, update and delete are the test's, sending with no real waits."""

    def __init__(self, endpoint: FaultyCloudFormationEndpoint, **handlers: Handler) -> None:
        self.endpoint = endpoint
        self.waits: list[float] = []
        self.calls: list[str] = []
        self.helper = OneResponseCfnResource(
            fallback, timeout_reason, send=ResponseSender(socket_timeout_seconds=2.0, sleep=self.waits.append)
        )
        for request_type in ("create", "update", "delete"):
            handle = handlers.get(request_type, lambda _event, _context: None)
            getattr(self.helper, request_type)(self._recording(request_type, handle))

    def _recording(self, request_type: str, handle: Handler) -> Handler:
        def run(event: dict[str, Any], context: Any) -> Any:
            self.calls.append(request_type)
            return handle(event, context)

        return run

    def event(self, request_type: str, **fields: Any) -> dict[str, Any]:
        physical_id = None if request_type == "Create" else JOB_ARN
        built = event(
            request_type,
            {},
            response_url=self.endpoint.response_url(request_type.lower()),
            physical_id=physical_id,
            old_properties={} if request_type == "Update" else None,
        )
        built.update(fields)
        return built

    def answer(self, built: dict[str, Any], context: LambdaContext | None = None) -> dict[str, Any]:
        """Handle ``built``; the one body CloudFormation received for it."""
        self.helper(built, context or LambdaContext())
        (body,) = self.endpoint.responses_for(built["ResponseURL"])
        return dict(body)


# --- The body -------------------------------------------------------------------


def test_a_success_puts_one_body_naming_the_event_and_the_handlers_answer(
    endpoint: FaultyCloudFormationEndpoint,
) -> None:
    def create(_event: dict[str, Any], _context: Any) -> str:
        resource.helper.Data.update({"Arn": JOB_ARN, "JobId": "reboot-1"})
        return JOB_ARN

    resource = Resource(endpoint, create=create)
    built = resource.event("Create")

    body = resource.answer(built)

    assert body == {
        "Status": "SUCCESS",
        "PhysicalResourceId": JOB_ARN,
        "StackId": built["StackId"],
        "RequestId": built["RequestId"],
        "LogicalResourceId": built["LogicalResourceId"],
        "Reason": "",
        "Data": {"Arn": JOB_ARN, "JobId": "reboot-1"},
        "NoEcho": False,
    }


def test_the_put_is_what_a_presigned_s3_url_accepts(endpoint: FaultyCloudFormationEndpoint) -> None:
    resource = Resource(endpoint, create=lambda _event, _context: JOB_ARN)
    built = resource.event("Create")

    resource.answer(built)

    (put,) = endpoint.requests_for(built["ResponseURL"])
    assert put.known_url  # path and signed query exactly as issued
    assert put.headers["content-type"] == ""  # the URL is signed without one
    assert int(put.headers["content-length"]) == put.body_size == len(put.body)


def test_a_failure_answers_the_exceptions_message_as_the_reason(endpoint: FaultyCloudFormationEndpoint) -> None:
    def create(_event: dict[str, Any], _context: Any) -> str:
        raise ValueError("Targets must have at least 1 item(s) (got 0)")

    resource = Resource(endpoint, create=create)

    body = resource.answer(resource.event("Create"))

    assert body["Status"] == "FAILED"
    assert body["Reason"] == "Targets must have at least 1 item(s) (got 0)"


def test_a_long_reason_keeps_its_start_up_to_the_reason_limit(endpoint: FaultyCloudFormationEndpoint) -> None:
    message = "JobId 'x' " + "".join(f"{index:05d} " for index in range(1000))

    def create(_event: dict[str, Any], _context: Any) -> str:
        raise ValueError(message)

    resource = Resource(endpoint, create=create)
    built = resource.event("Create")

    body = resource.answer(built)

    assert body["Reason"] == message[:MAX_REASON_CHARS]
    (put,) = endpoint.requests_for(built["ResponseURL"])
    assert put.body_size <= MAX_BODY_BYTES


def test_a_reason_of_multibyte_characters_still_fits_the_body_limit(endpoint: FaultyCloudFormationEndpoint) -> None:
    # GIVEN a reason in another script (6 bytes a character once JSON-escaped) and Data of 2 KB
    def create(_event: dict[str, Any], _context: Any) -> str:
        resource.helper.Data.update({"Note": "n" * 2000})
        raise ValueError("Description " + "\u00e9" * 3000)

    resource = Resource(endpoint, create=create)
    built = resource.event("Create")

    body = resource.answer(built)

    # THEN the reason keeps as much of its start as fits, naming the property, and the body fits
    (put,) = endpoint.requests_for(built["ResponseURL"])
    assert put.body_size <= MAX_BODY_BYTES
    assert body["Reason"].startswith("Description \u00e9\u00e9")
    assert len(body["Reason"]) > 250


def test_a_secret_of_the_current_event_is_masked_in_the_reason(endpoint: FaultyCloudFormationEndpoint) -> None:
    def create(_event: dict[str, Any], _context: Any) -> str:
        raise ValueError("IoT refused tag value 'tok-PLANTED-3f9a' for key api-key")

    resource = Resource(endpoint, create=create)
    redaction.set_secrets({"tok-PLANTED-3f9a"})
    try:
        body = resource.answer(resource.event("Create"))
    finally:
        redaction.set_secrets(set())

    assert body["Reason"] == f"IoT refused tag value '{redaction.MASK}' for key api-key"


# --- The physical id ------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_type", "handler_id", "event_id", "expected"),
    [
        pytest.param("Create", None, None, "fallback", id="create-answering-no-id-gets-the-fallback"),
        pytest.param("Create", "", None, "fallback", id="create-answering-an-empty-id-gets-the-fallback"),
        pytest.param("Update", None, JOB_ARN, JOB_ARN, id="update-answering-no-id-keeps-the-events"),
        pytest.param("Delete", None, JOB_ARN, JOB_ARN, id="delete-answering-no-id-keeps-the-events"),
        pytest.param("Update", "é" * 512, JOB_ARN, "é" * 512, id="an-id-of-exactly-the-limit-in-bytes-is-kept"),
        pytest.param("Update", "é" * 513, JOB_ARN, "fallback", id="an-id-over-the-limit-in-bytes-is-replaced"),
        pytest.param("Update", None, "x" * 1025, "fallback", id="an-events-id-over-the-limit-is-not-sent-back"),
    ],
)
def test_the_physical_id_is_the_handlers_else_the_events_else_the_fallback_never_over_the_limit(
    endpoint: FaultyCloudFormationEndpoint,
    request_type: str,
    handler_id: str | None,
    event_id: str | None,
    expected: str,
) -> None:
    resource = Resource(endpoint, **{request_type.lower(): lambda _event, _context: handler_id})
    built = resource.event(request_type)
    if event_id is not None:
        built["PhysicalResourceId"] = event_id

    body = resource.answer(built)

    assert body["Status"] == "SUCCESS"
    assert body["PhysicalResourceId"] == (fallback(built) if expected == "fallback" else expected)
    assert len(body["PhysicalResourceId"].encode()) <= MAX_PHYSICAL_ID_BYTES


def test_a_failed_create_answers_the_fallback_id_never_a_random_one(endpoint: FaultyCloudFormationEndpoint) -> None:
    def create(_event: dict[str, Any], _context: Any) -> str:
        raise RuntimeError("CreateJob failed")

    resource = Resource(endpoint, create=create)
    built = resource.event("Create")

    body = resource.answer(built)

    assert body["Status"] == "FAILED"
    assert body["PhysicalResourceId"] == f"fallback:{built['RequestId']}"


# --- Exactly one response per event ------------------------------------------------


@pytest.mark.parametrize("missing", ["RequestType", "RequestId", "LogicalResourceId"])
def test_an_event_lacking_a_required_field_fails_once_naming_it_without_running_a_handler(
    endpoint: FaultyCloudFormationEndpoint, missing: str
) -> None:
    resource = Resource(endpoint)
    built = resource.event("Create")
    del built[missing]

    body = resource.answer(built)

    assert body["Status"] == "FAILED"
    assert body["Reason"] == f"the event lacks {missing}"
    assert resource.calls == []


def test_an_event_without_a_response_url_never_reuses_the_previous_events(
    endpoint: FaultyCloudFormationEndpoint,
) -> None:
    resource = Resource(endpoint, create=lambda _event, _context: JOB_ARN)
    first = resource.event("Create")
    resource.answer(first)
    second = resource.event("Create")
    del second["ResponseURL"]

    resource.helper(second, LambdaContext())

    assert len(endpoint.requests_for(first["ResponseURL"])) == 1
    assert resource.calls == ["create"]


@pytest.mark.parametrize("not_an_event", [None, "Create", ["Create"]])
def test_something_that_is_not_an_event_is_answered_nowhere_and_raises_nothing(
    endpoint: FaultyCloudFormationEndpoint, not_an_event: Any
) -> None:
    resource = Resource(endpoint)
    before = len(endpoint.requests())

    resource.helper(not_an_event, LambdaContext())

    assert len(endpoint.requests()) == before
    assert resource.calls == []


def test_when_the_timer_answers_first_the_handlers_later_answer_is_dropped(
    endpoint: FaultyCloudFormationEndpoint,
) -> None:
    # GIVEN a Create still working when crhelper's timer fires (0.5 s before the Lambda timeout)
    def create(event: dict[str, Any], _context: Any) -> str:
        endpoint.wait_for(event["ResponseURL"], timeout=5.0)  # until the timer's answer arrived
        return JOB_ARN

    resource = Resource(endpoint, create=create)
    built = resource.event("Create")
    # WHEN the Create then finishes and succeeds
    resource.helper(built, LambdaContext(seconds=0.55))
    # THEN CloudFormation received the one FAILED answer of the timer, with its reason and the fallback id
    assert endpoint.responses_for(built["ResponseURL"]) == [
        {
            "Status": "FAILED",
            "PhysicalResourceId": fallback(built),
            "StackId": built["StackId"],
            "RequestId": built["RequestId"],
            "LogicalResourceId": built["LogicalResourceId"],
            "Reason": "timed out handling Create",
            "Data": {},
            "NoEcho": False,
        }
    ]
    assert resource.calls == ["create"]


def test_each_event_of_a_warm_container_gets_its_own_single_answer(endpoint: FaultyCloudFormationEndpoint) -> None:
    resource = Resource(endpoint, create=lambda _event, _context: JOB_ARN, delete=lambda _event, _context: None)
    events = [resource.event("Create"), resource.event("Delete"), resource.event("Create")]

    for built in events:
        resource.helper(built, LambdaContext())

    answers = [endpoint.responses_for(built["ResponseURL"]) for built in events]
    assert [[body["RequestId"] for body in bodies] for bodies in answers] == [[e["RequestId"]] for e in events]
    assert [bodies[0]["Status"] for bodies in answers] == ["SUCCESS"] * 3


# --- Sending: bounded retries and socket timeout ------------------------------------


@pytest.mark.parametrize(
    ("server_errors", "accepted", "attempts", "waits"),
    [
        (0, True, 1, []),
        (1, True, 2, [1]),
        (3, True, 4, [1, 2, 4]),
        (4, False, 4, [1, 2, 4]),
    ],
)
def test_server_errors_are_retried_at_most_three_times_with_doubling_waits(
    endpoint: FaultyCloudFormationEndpoint, server_errors: int, accepted: bool, attempts: int, waits: list[float]
) -> None:
    endpoint.fail_next(count=server_errors, status=503)
    url = endpoint.response_url("flaky")
    slept: list[float] = []

    assert send_response(url, {"Status": "SUCCESS"}, sleep=slept.append) is accepted

    assert len(endpoint.requests_for(url)) == attempts
    assert slept == waits


@pytest.mark.parametrize("status", [301, 400, 404])
def test_a_refusal_that_is_not_a_server_error_is_final(endpoint: FaultyCloudFormationEndpoint, status: int) -> None:
    endpoint.fail_next(count=1, status=status)
    url = endpoint.response_url("refused")
    slept: list[float] = []

    assert send_response(url, {"Status": "SUCCESS"}, sleep=slept.append) is False

    assert len(endpoint.requests_for(url)) == 1
    assert slept == []


def test_the_body_sent_is_the_body_given(endpoint: FaultyCloudFormationEndpoint) -> None:
    url = endpoint.response_url("body")
    body = {"Status": "SUCCESS", "Reason": "naïve ✓", "Data": {"n": 1}}

    assert send_response(url, body, sleep=lambda _seconds: None)

    (put,) = endpoint.requests_for(url)
    assert put.method == "PUT"
    assert json.loads(put.body) == body


def test_a_reply_slower_than_the_socket_timeout_is_given_up_and_sent_again(
    endpoint: FaultyCloudFormationEndpoint,
) -> None:
    # GIVEN an endpoint that reads the first PUT but answers it only after 3 s
    endpoint.stall_next(count=1, seconds=3.0)
    url = endpoint.response_url("slow")
    slept: list[float] = []
    sender = ResponseSender(socket_timeout_seconds=0.2, sleep=slept.append)
    # WHEN the sender's socket timeout is 0.2 s
    started = time.monotonic()
    accepted = sender(url, {"Status": "SUCCESS"})
    # THEN the first attempt is abandoned after 0.2 s and the second one lands
    assert accepted is True
    assert time.monotonic() - started < 2.0
    assert len(endpoint.requests_for(url)) == 2
    assert slept == [1]


def test_an_unanswered_endpoint_costs_at_most_four_socket_timeouts(endpoint: FaultyCloudFormationEndpoint) -> None:
    endpoint.stall_next(count=4, seconds=3.0)
    url = endpoint.response_url("hang")
    slept: list[float] = []

    started = time.monotonic()
    accepted = ResponseSender(socket_timeout_seconds=0.1, sleep=slept.append)(url, {"Status": "SUCCESS"})

    assert accepted is False
    assert time.monotonic() - started < 4 * 0.1 + 1.0
    assert len(endpoint.requests_for(url)) == 4
    assert slept == [1, 2, 4]
