"""What the local engine's AWS does for providers that outlive one invocation.

A provider hands a long wait over to a new invocation of its own function
(Lambda's asynchronous ``Invoke``), asks ``DescribeStacks`` whether its stack
is still in progress, and may run while another invocation of it still does.
These tests use a tiny handler asset written here (not the real provider):

* :class:`LocalAws` runs an ``Event`` invoke of a function it knows, and
  waits for the whole chain of an event's invocations for its one response;
* concurrent invocations of one function run in separate processes;
* ``DescribeStacks`` answers the engine's stacks from ``LocalAws.stack_status``;
* the engine keeps that status as it deploys, and deletes in the rollback
  cleanup the resource a failed replacement created.
"""

from __future__ import annotations

import textwrap
import threading
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cdk_iot_job_local.engine import LocalCloudFormation, StackResult
from cdk_iot_job_local.environment import DEFAULT_ENVIRONMENT
from cdk_iot_job_local.resources import put_file
from cdk_iot_job_local.runtime import CustomResourceResponse, LocalAws
from cdk_iot_job_local.state import State
from cdk_iot_job_local.template import Stack

pytestmark = pytest.mark.usefixtures("aws_env")

REGION = "us-east-1"
ACCOUNT = "123456789012"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:chain-demo"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/chain-demo/0b7c7b70-0000-4000-8000-000000000001"

# Hop 1 is CloudFormation's invocation; each hop below ``Hops`` invokes the next one asynchronously
# (the event plus "Hop") after waiting ``Pause`` s, and hop ``AnswerAt`` PUTs the one response (0: nobody
# answers).
# Mode "sleep" instead waits ``Seconds`` and answers with when it ran; mode "status" answers
# what DescribeStacks says of the event's stack; a Delete is logged and answered SUCCESS.
HANDLER_SRC = """
import http.client
import json
import ssl
import time
import urllib.parse

import boto3


def answer(event, status, data, physical_id=None, reason=""):
    url = urllib.parse.urlsplit(event["ResponseURL"])
    body = {
        "Status": status,
        "Reason": reason,
        "PhysicalResourceId": physical_id or event.get("PhysicalResourceId") or "chain-1",
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "Data": data,
    }
    conn = http.client.HTTPSConnection(url.netloc, context=ssl.create_default_context(), timeout=5)
    conn.request("PUT", url.path + "?" + url.query, body=json.dumps(body), headers={"Content-Type": ""})
    conn.getresponse().read()


def stack_status(event):
    try:
        stacks = boto3.client("cloudformation").describe_stacks(StackName=event["StackId"])["Stacks"]
        return stacks[0]["StackStatus"]
    except Exception as error:
        return type(error).__name__


def handler(event, context):
    props = event["ResourceProperties"]
    mode = props.get("Mode", "chain")
    if event["RequestType"] == "Delete":
        print(f"deleting {event['PhysicalResourceId']}")
        answer(event, "SUCCESS", {})
        return
    if mode == "sleep":
        started = time.time()
        time.sleep(float(props["Seconds"]))
        answer(event, "SUCCESS", {"Started": repr(started), "Ended": repr(time.time())})
        return
    if mode == "status":
        data = {"StackStatus": stack_status(event)}
        if props.get("Fail") == "yes":
            # As a gated replacement whose new job failed: FAILED, naming what this request created.
            answer(event, "FAILED", data, physical_id="thing-" + event["RequestId"], reason="the new thing failed")
        else:
            answer(event, "SUCCESS", data, physical_id=props.get("Name", "thing-1"))
        return
    hop = int(event.get("Hop", 1))
    print(f"hop {hop} as {context.invoked_function_arn}")
    if hop > 1:
        time.sleep(float(props.get("Pause", "0")))
    if hop == int(props.get("AnswerAt", "0")):
        answer(event, "SUCCESS", {"Hop": str(hop), "InvokedFunctionArn": context.invoked_function_arn})
        return
    if hop < int(props.get("Hops", "3")):
        boto3.client("lambda").invoke(
            FunctionName=context.invoked_function_arn,
            InvocationType="Event",
            Payload=json.dumps({**event, "Hop": hop + 1}),
        )
"""


@pytest.fixture(scope="module")
def asset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("chain-asset")
    (folder / "index.py").write_text(textwrap.dedent(HANDLER_SRC))
    return folder


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with LocalAws() as local:
        # moto's backends live in this process: start from an empty account.
        request = urllib.request.Request(f"{local.endpoint_url}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()
        yield local


def event(**properties: str) -> dict[str, Any]:
    """A Create event for the handler; the ResponseURL is LocalAws.invoke's."""
    return {
        "RequestType": "Create",
        "ServiceToken": FUNCTION_ARN,
        "StackId": STACK_ID,
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": "Chain",
        "ResourceType": "Custom::Chain",
        "ResourceProperties": {"ServiceToken": FUNCTION_ARN, **properties},
    }


def invoke(aws: LocalAws, asset_dir: Path, sent: dict[str, Any], **kwargs: Any) -> tuple[CustomResourceResponse, str]:
    return aws.invoke(asset_dir, "index.handler", sent, timeout=30, **kwargs)


# --------------------------------------------------------------------------
# asynchronous invokes
# --------------------------------------------------------------------------
def test_a_chain_of_async_invokes_answers_once_and_invoke_returns_that_answer(aws: LocalAws, asset_dir: Path) -> None:
    # GIVEN a provider whose first invocation hands over to a second, and that to a third, which answers
    sent = event(Hops="3", AnswerAt="3")

    # WHEN CloudFormation's event is invoked
    response, logs = invoke(aws, asset_dir, sent)

    # THEN invoke returned the third invocation's answer, the only one the ResponseURL received
    assert response.ok, response
    assert response.data["Hop"] == "3"
    answers = [r.json for r in aws.endpoint.requests() if (r.json or {}).get("RequestId") == sent["RequestId"]]
    assert len(answers) == 1
    # AND the three invocations ran, each as the function CloudFormation named
    assert [line for line in logs.splitlines() if line.startswith("hop ")] == [
        f"hop {hop} as {FUNCTION_ARN}" for hop in (1, 2, 3)
    ]
    assert response.data["InvokedFunctionArn"] == FUNCTION_ARN


def test_a_chain_that_stops_without_answering_is_a_failed_no_response(aws: LocalAws, asset_dir: Path) -> None:
    response, logs = invoke(aws, asset_dir, event(Hops="3", AnswerAt="0"))

    assert (response.status, response.reason) == ("FAILED", "no response: the provider sent no response")
    assert "hop 3 as" in logs, "every invocation of the chain ran before invoke gave up"


def test_on_wait_is_called_while_the_chain_runs(aws: LocalAws, asset_dir: Path) -> None:
    # GIVEN a provider whose second invocation waits 0.6 s before it answers
    calls: list[float] = []
    sent = event(Hops="2", AnswerAt="2", Pause="0.6")

    # WHEN it is invoked with an on_wait
    response, _logs = invoke(aws, asset_dir, sent, on_wait=lambda: calls.append(time.monotonic()))

    # THEN on_wait ran while the second invocation did
    assert response.ok
    assert calls


def test_on_wait_is_called_while_the_first_invocation_runs(aws: LocalAws, asset_dir: Path) -> None:
    calls: list[float] = []
    response, _logs = invoke(aws, asset_dir, event(Mode="sleep", Seconds="0.6"), on_wait=lambda: calls.append(0.0))

    assert response.ok
    assert calls


def test_an_async_invoke_of_an_unknown_function_is_resource_not_found(aws: LocalAws) -> None:
    lambda_client = aws.any_client("lambda")
    with pytest.raises(ClientError) as raised:
        lambda_client.invoke(
            FunctionName=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:nobody", InvocationType="Event", Payload=b"{}"
        )
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_a_synchronous_invoke_is_refused_as_not_supported_locally(aws: LocalAws, asset_dir: Path) -> None:
    invoke(aws, asset_dir, event(Hops="1", AnswerAt="1"))  # the function is known from now on
    lambda_client = aws.any_client("lambda")

    with pytest.raises(ClientError) as raised:
        lambda_client.invoke(FunctionName=FUNCTION_ARN, InvocationType="RequestResponse", Payload=b"{}")

    assert raised.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert "not supported locally" in raised.value.response["Error"]["Message"]


# --------------------------------------------------------------------------
# concurrency
# --------------------------------------------------------------------------
def test_two_invocations_of_one_function_run_at_the_same_time(aws: LocalAws, asset_dir: Path) -> None:
    # GIVEN two events for the same function, each taking a second
    results: list[CustomResourceResponse] = []

    def run() -> None:
        results.append(invoke(aws, asset_dir, event(Mode="sleep", Seconds="1"))[0])

    # WHEN they are sent at once
    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # THEN each ran while the other did: in two processes, not one after the other
    assert [r.status for r in results] == ["SUCCESS", "SUCCESS"], results
    started = [float(r.data["Started"]) for r in results]
    ended = [float(r.data["Ended"]) for r in results]
    assert max(started) < min(ended)


# --------------------------------------------------------------------------
# DescribeStacks
# --------------------------------------------------------------------------
def test_describe_stacks_answers_the_status_the_registry_holds(aws: LocalAws) -> None:
    stack_id = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/registered/{uuid.uuid4()}"
    aws.stack_status[stack_id] = "UPDATE_ROLLBACK_IN_PROGRESS"
    cloudformation = aws.any_client("cloudformation")

    by_arn = cloudformation.describe_stacks(StackName=stack_id)["Stacks"]
    by_name = cloudformation.describe_stacks(StackName="registered")["Stacks"]

    assert [(s["StackId"], s["StackName"], s["StackStatus"]) for s in by_arn] == [
        (stack_id, "registered", "UPDATE_ROLLBACK_IN_PROGRESS")
    ]
    assert by_name[0]["StackId"] == stack_id


def test_describe_stacks_of_a_stack_the_engine_does_not_hold_is_moto_s(aws: LocalAws) -> None:
    # moto's CloudFormation backend does not load here: its answer would be an HTTP 500, so the
    # emulation answers as CloudFormation does for a stack that does not exist.
    cloudformation = aws.any_client("cloudformation")
    with pytest.raises(ClientError) as raised:
        cloudformation.describe_stacks(StackName="never-deployed")
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert "never-deployed does not exist" in raised.value.response["Error"]["Message"]


def test_describe_stacks_finds_a_stack_only_in_its_own_account(aws: LocalAws) -> None:
    stack_id = f"arn:aws:cloudformation:{REGION}:111111111111:stack/elsewhere/{uuid.uuid4()}"
    aws.stack_status[stack_id] = "CREATE_IN_PROGRESS"
    with pytest.raises(ClientError):
        aws.any_client("cloudformation").describe_stacks(StackName=stack_id)


# --------------------------------------------------------------------------
# the engine: stack status and a failed replacement's cleanup
# --------------------------------------------------------------------------
def _stack(name: str, thing: dict[str, str]) -> Stack:
    return Stack(
        name=name,
        outdir=Path("."),
        template={
            "Resources": {
                "Fn": {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {
                        "Runtime": "python3.11",
                        "Handler": "index.handler",
                        "Timeout": 30,
                        "Code": {"S3Bucket": "chain-code", "S3Key": "chain.zip"},
                    },
                },
                "Thing": {
                    "Type": "Custom::Thing",
                    "Properties": {"ServiceToken": {"Fn::GetAtt": ["Fn", "Arn"]}, "Mode": "status", **thing},
                },
            }
        },
    )


@pytest.fixture
def engine(aws: LocalAws, asset_dir: Path, tmp_path: Path) -> LocalCloudFormation:
    code = tmp_path / "chain.zip"
    with zipfile.ZipFile(code, "w") as archive:
        archive.write(asset_dir / "index.py", "index.py")
    put_file(aws, DEFAULT_ENVIRONMENT, code, "chain-code", "chain.zip")
    return LocalCloudFormation(aws, State(path=tmp_path / "state.json"))


def _events(result: StackResult) -> list[tuple[str, str]]:
    return [(event.status, event.physical_id) for event in result.events if event.logical_id == "Thing"]


def test_a_provider_sees_its_stack_in_progress_through_describe_stacks(engine: LocalCloudFormation) -> None:
    created = engine.deploy(_stack("StatusCreate", {"Name": "thing-1"}))
    updated = engine.deploy(_stack("StatusCreate", {"Name": "thing-1", "Edit": "1"}))

    assert created.resources["Thing"].attributes["StackStatus"] == "CREATE_IN_PROGRESS"
    assert updated.resources["Thing"].attributes["StackStatus"] == "UPDATE_IN_PROGRESS"
    assert engine.aws.stack_status[engine.state.stacks["StatusCreate"].stack_id] == "UPDATE_COMPLETE"


def test_a_failed_replacement_s_new_resource_is_deleted_in_the_rollback_cleanup(engine: LocalCloudFormation) -> None:
    # GIVEN a deployed resource
    engine.deploy(_stack("Replace", {"Name": "thing-1"}))

    # WHEN an update fails, naming the resource it created instead of the current one
    result = engine.deploy(_stack("Replace", {"Name": "thing-2", "Fail": "yes"}))

    # THEN the rollback Update restores the old resource, then the cleanup deletes the new one
    assert result.status == "UPDATE_ROLLBACK_COMPLETE"
    failed, rolled_back, deleted = _events(result)
    assert failed == ("UPDATE_FAILED", "thing-1")
    assert rolled_back == ("UPDATE_COMPLETE", "thing-1")
    assert deleted[0] == "DELETE_COMPLETE" and deleted[1].startswith("thing-") and deleted[1] != "thing-1"
    assert result.resources["Thing"].physical_id == "thing-1"
    assert result.resources["Thing"].attributes["StackStatus"] == "UPDATE_ROLLBACK_IN_PROGRESS"
