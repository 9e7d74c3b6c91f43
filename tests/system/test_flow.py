"""The whole flow, the way Lambda and CloudFormation run it, on the local engine.

GIVEN ``app.py``'s stack (synthesized by running ``app.py``, as the CDK CLI
does) and a test stack synthesized in-process, everything runs on one
module-scoped :class:`~cdk_iot_job_local.runtime.LocalAws`, the embedded AWS
of ``cdk-iot-job-local``: a ``ThreadedMotoServer`` carrying the
strict IoT fake, the local HTTPS endpoint standing in for CloudFormation's
response URLs (trusted through ``SSL_CERT_FILE``), and the provider run from
the synthesized asset folder in a Lambda-like child process whose
``sys.path`` holds only that folder and boto3.

* ``app.py``'s stack is deployed whole by the engine
  (:class:`~cdk_iot_job_local.engine.LocalCloudFormation`): its thing group,
  thing, role and function are created in moto and its jobs through the
  provider.
* The test stack's other resources are created by the engine's
  ``resources.create`` and recorded in a ``TemplateResolver``, which then
  gives each ``Custom::IotJob``'s properties resolved and stringified as
  CloudFormation sends them. The tests build the precise event sequences
  themselves (``cfn_events.event``: redelivered Create, refused Update and
  its rollback, throttling, failed Create and its rollback Delete, a foreign
  job) and send them with ``LocalAws.invoke``.

Every event, whoever sent it, is checked for what a user would notice:
exactly one response at its ResponseURL, its Status, PhysicalResourceId and
Data, and the job as moto holds it afterwards.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import sysconfig
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cfn_events import event as cfn_event
from iot_faults import FaultyIotFake
from job_arns import arn, job_id_in

from cdk_iot_job_local import resources
from cdk_iot_job_local.cfn_endpoint import CloudFormationEndpoint, RecordedRequest
from cdk_iot_job_local.engine import LocalCloudFormation, is_custom
from cdk_iot_job_local.lambda_process import LambdaProcess
from cdk_iot_job_local.runtime import CustomResourceResponse, LocalAws
from cdk_iot_job_local.state import State
from cdk_iot_job_local.template import (
    Stack,
    TemplateResolver,
    load_stacks,
)

REPO = Path(__file__).resolve().parents[2]
HANDLER = "cdk_iot_job_provider.handler.handler"
FUNCTION_TIMEOUT = 300.0
OWNERSHIP_PREFIX = "cdk-iot-job:"
DOC_MARKER = "flow-doc-marker-5d1c"
MUTATING = ("CreateJob", "UpdateJob", "DeleteJob", "CancelJob", "TagResource", "UntagResource")
# A Delete that waits for the deletion must still answer quickly.
MAX_DELETE_SECONDS = 20.0


# --------------------------------------------------------------------------
# synthesis
# --------------------------------------------------------------------------
def _build_test_stack(outdir: Path) -> dict[str, str]:
    """Synthesize the test stack in-process; returns construct id -> logical id."""
    import aws_cdk as cdk
    from aws_cdk import aws_iot as iot

    from cdk_iot_job import (
        AbortConfig,
        AbortCriteria,
        DeleteBehavior,
        ExponentialRolloutRate,
        IotJob,
        JobExecutionFailureType,
        JobExecutionsRetryConfig,
        JobExecutionsRolloutConfig,
        RateIncreaseCriteria,
        RetryableFailureType,
        RetryCriteria,
        TargetSelection,
        TimeoutConfig,
    )

    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, "CdkIotJobFlow")
    group = iot.CfnThingGroup(stack, "Group", thing_group_name="flow-group")
    thing = iot.CfnThing(stack, "Thing", thing_name="flow-thing-1")
    thing_arn = stack.format_arn(service="iot", resource="thing", resource_name=thing.thing_name or "")
    jobs = {
        "Generated": IotJob(
            stack,
            "Generated",
            targets=[group.attr_arn],
            document={"operation": "calibrate", "marker": DOC_MARKER},
            description="calibration v1",
            job_executions_rollout_config=JobExecutionsRolloutConfig(maximum_per_minute=10),
            tags={"team": "flow"},
        ),
        "Fixed": IotJob(
            stack,
            "Fixed",
            job_id="flow-fixed-job",
            targets=[thing_arn],
            document={"operation": "reboot", "marker": DOC_MARKER},
            description="fixed id",
        ),
        "Cancelled": IotJob(
            stack,
            "Cancelled",
            targets=[thing_arn],
            document={"operation": "inventory", "marker": DOC_MARKER},
            delete_behavior=DeleteBehavior.CANCEL,
        ),
        "Numbers": IotJob(
            stack,
            "Numbers",
            targets=[group.attr_arn],
            target_selection=TargetSelection.CONTINUOUS,
            document={"operation": "rollout", "marker": DOC_MARKER},
            job_executions_rollout_config=JobExecutionsRolloutConfig(
                exponential_rate=ExponentialRolloutRate(
                    base_rate_per_minute=3,
                    increment_factor=1.5,
                    rate_increase_criteria=RateIncreaseCriteria(number_of_notified_things=7),
                )
            ),
            abort_config=AbortConfig(
                criteria_list=[
                    AbortCriteria(
                        failure_type=JobExecutionFailureType.REJECTED,
                        threshold_percentage=25.5,
                        min_number_of_executed_things=4,
                    )
                ]
            ),
            timeout_config=TimeoutConfig(in_progress_timeout_in_minutes=30),
            job_executions_retry_config=JobExecutionsRetryConfig(
                criteria_list=[RetryCriteria(failure_type=RetryableFailureType.FAILED, number_of_retries=2)]
            ),
        ),
        "Taken": IotJob(
            stack,
            "Taken",
            job_id="flow-taken-job",
            targets=[thing_arn],
            document={"operation": "mine", "marker": DOC_MARKER},
        ),
    }
    app.synth()
    return {name: stack.resolve(stack.get_logical_id(job.resource.node.default_child)) for name, job in jobs.items()}


@dataclass(frozen=True)
class Synthesized:
    app: Stack
    test: Stack
    test_ids: dict[str, str]


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """app.py run as the CDK CLI runs it, and the test stack built in-process (in parallel)."""
    app_out = tmp_path_factory.mktemp("app-cdk.out")
    test_out = tmp_path_factory.mktemp("flow-cdk.out")
    child = subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=REPO,
        env={**os.environ, "CDK_OUTDIR": str(app_out)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    test_ids = _build_test_stack(test_out)
    output, _ = child.communicate(timeout=120)
    assert child.returncode == 0, output.decode()
    # app.py also holds the provider-only stack and the document-file example; this test plays the main one.
    [app_stack] = [stack for stack in load_stacks(app_out) if stack.name == "CdkIotJobDemo"]
    [test_stack] = load_stacks(test_out)
    return Synthesized(app=app_stack, test=test_stack, test_ids=test_ids)


# --------------------------------------------------------------------------
# the embedded AWS, recording what CloudFormation would see
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Exchange:
    """One event sent to a provider and what arrived at its ResponseURL meanwhile.

    ``event`` is the event as given to :meth:`LocalAws.invoke`, which issues
    the ResponseURL itself; ``url`` is that URL, taken from the request(s) the
    endpoint received during the invocation.
    """

    event: dict[str, Any]
    requests: list[RecordedRequest]
    url: str | None
    response: CustomResourceResponse
    logs: str
    duration_s: float


class RecordingAws(LocalAws):
    """The engine's :class:`LocalAws`, remembering every provider invocation.

    Events the tests send and events the engine sends during a deploy are
    recorded alike, so both are checked the same way (:func:`_answer`).
    """

    def __init__(self) -> None:
        # The engine's fake, with a call log and faults on demand.
        super().__init__(fake=FaultyIotFake(deletion_polls=1, check_targets=True))
        self.exchanges: list[Exchange] = []

    def invoke(
        self, asset_dir: Path, handler: str, event: dict[str, Any], *, timeout: float
    ) -> tuple[CustomResourceResponse, str]:
        seen = len(self.endpoint.requests())
        started = time.perf_counter()
        response, logs = super().invoke(asset_dir, handler, event, timeout=timeout)
        duration_s = time.perf_counter() - started
        # One provider at a time: whatever arrived meanwhile answers this event.
        arrived = self.endpoint.requests()[seen:]
        url = f"{self.endpoint.base_url}{arrived[0].target}" if arrived else None
        self.exchanges.append(Exchange(dict(event), arrived, url, response, logs, duration_s))
        return response, logs


def _answer(aws: RecordingAws, exchange: Exchange) -> dict[str, Any]:
    """The one body CloudFormation received for ``exchange``'s event, checked as CloudFormation would."""
    event, response = exchange.event, exchange.response
    assert len(exchange.requests) == 1, (
        f"{len(exchange.requests)} responses to one {event['RequestType']} event: {exchange.requests}"
    )
    assert exchange.url is not None
    requests = aws.endpoint.requests_for(exchange.url)
    assert requests == exchange.requests, "the response went to the event's ResponseURL"
    for request in requests:
        assert request.known_url and request.reply_status == 200
        assert request.body_size <= 4096
    [body] = aws.endpoint.responses_for(exchange.url)
    assert isinstance(body, dict), body
    assert body["StackId"] == event["StackId"]
    assert body["RequestId"] == event["RequestId"]
    assert body["LogicalResourceId"] == event["LogicalResourceId"]
    assert body["PhysicalResourceId"], body
    if body["Status"] == "FAILED":
        assert body["Reason"], body
    # What invoke returned is what CloudFormation received.
    assert (response.status, response.physical_id, response.reason, response.data) == (
        body["Status"],
        body["PhysicalResourceId"],
        body.get("Reason", ""),
        body.get("Data") or {},
    )
    return body


@pytest.fixture(scope="module")
def local_aws() -> Iterator[RecordingAws]:
    aws = RecordingAws()
    with aws:
        # moto's backends live in this process: start from an empty account.
        request = urllib.request.Request(f"{aws.endpoint_url}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()
        yield aws


@pytest.fixture(scope="module")
def asset_dir(synthesized: Synthesized) -> Path:
    app = synthesized.app
    [job_id, *_] = app.iot_job_ids()
    return app.asset_dir(app.function_of(job_id))


@pytest.fixture(scope="module")
def lam(local_aws: RecordingAws, asset_dir: Path) -> LambdaProcess:
    """The provider process the tests' events go to."""
    process = local_aws.provider(asset_dir, HANDLER, FUNCTION_TIMEOUT)
    assert process.init_error is None, process.logs()
    return process


def _create_other_resources(aws: LocalAws, stack: Stack, assets_dir: Path) -> TemplateResolver:
    """Create the stack's non-custom resources the engine's way; the jobs are left to the tests."""
    resolver = TemplateResolver(stack)
    ctx = resources.ResourceContext(aws, stack, resolver.stack_id, assets_dir)
    for logical_id in stack.creation_order():
        resource = stack.resources[logical_id]
        if is_custom(str(resource["Type"])):
            continue
        created = resources.create(
            ctx, logical_id, str(resource["Type"]), resolver.resolve(resource.get("Properties", {}))
        )
        resolver.record(logical_id, created.physical_id, created.attributes)
    return resolver


@dataclass
class Flow:
    """Plays CloudFormation for the test stack: builds events, invokes the provider, checks the one response."""

    aws: RecordingAws
    asset_dir: Path
    iot: Any
    test: TemplateResolver
    test_ids: dict[str, str]
    durations: list[float] = field(default_factory=list)

    @property
    def fake(self) -> Any:
        return self.aws.fake

    @property
    def last_duration_s(self) -> float:
        """How long the last event sent by :meth:`send` took to answer."""
        return self.durations[-1]

    def logical_id(self, name: str) -> str:
        return self.test_ids[name]

    def event(
        self,
        request_type: str,
        logical_id: str,
        properties: dict[str, Any],
        *,
        physical_id: str | None = None,
        old_properties: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        return cfn_event(
            request_type,
            properties,
            response_url="",  # LocalAws.invoke issues a fresh ResponseURL for each delivery
            physical_id=physical_id,
            old_properties=old_properties,
            logical_id=logical_id,
            stack_id=self.test.stack_id,
            request_id=request_id,
        )

    def send(self, event: dict[str, Any]) -> CustomResourceResponse:
        """Invoke the provider with ``event``; the one response it PUT at the event's ResponseURL."""
        response, _logs = self.aws.invoke(self.asset_dir, HANDLER, event, timeout=FUNCTION_TIMEOUT)
        exchange = self.aws.exchanges[-1]
        assert exchange.response is response
        _answer(self.aws, exchange)
        self.durations.append(exchange.duration_s)
        return response

    def create(
        self, logical_id: str, properties: dict[str, Any] | None = None, **kwargs: Any
    ) -> CustomResourceResponse:
        props = self.test.properties(logical_id) if properties is None else properties
        return self.send(self.event("Create", logical_id, props, **kwargs))

    def job(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self.iot.describe_job(jobId=job_id)["job"]
        return job

    def document(self, job_id: str) -> str:
        return str(self.iot.get_job_document(jobId=job_id)["document"])

    def tags(self, job_arn: str) -> dict[str, str]:
        return {t["Key"]: t["Value"] for t in self.iot.list_tags_for_resource(resourceArn=job_arn)["tags"]}

    def exists(self, job_id: str) -> bool:
        try:
            self.iot.describe_job(jobId=job_id)
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ResourceNotFoundException", error
            return False
        return True

    def mutations_since(self, mark: int) -> list[tuple[str, str | None]]:
        return [call for call in self.fake.calls[mark:] if call[0] in MUTATING]


@pytest.fixture(scope="module")
def flow(
    synthesized: Synthesized,
    local_aws: RecordingAws,
    lam: LambdaProcess,
    asset_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Flow:
    test = _create_other_resources(local_aws, synthesized.test, tmp_path_factory.mktemp("flow-assets"))
    return Flow(
        aws=local_aws,
        asset_dir=asset_dir,
        iot=local_aws.client("iot"),
        test=test,
        test_ids=synthesized.test_ids,
    )


def _camel(value: Any) -> Any:
    """Template (PascalCase) properties in the API's camelCase, as DescribeJob returns them."""
    if isinstance(value, dict):
        return {key[0].lower() + key[1:]: _camel(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_camel(item) for item in value]
    return value


def _scalars(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [scalar for item in value.values() for scalar in _scalars(item)]
    if isinstance(value, list):
        return [scalar for item in value for scalar in _scalars(item)]
    return [value]


ISO_MILLIS = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"


def _assert_success(response: CustomResourceResponse) -> str:
    """The JobId of a successful response, whose id and attributes are as ``AWS::IoT::Job``'s."""
    assert response.status == "SUCCESS", response
    job_id = job_id_in(response.physical_id)
    assert set(response.data) == {"Arn", "CreatedAt", "JobId"}
    assert response.data["Arn"] == response.physical_id and response.data["JobId"] == job_id
    assert re.fullmatch(ISO_MILLIS, response.data["CreatedAt"]), response.data
    return job_id


# --------------------------------------------------------------------------
# app.py
# --------------------------------------------------------------------------
def test_app_jobs_are_created_as_the_template_declares(flow: Flow, synthesized: Synthesized, tmp_path: Path) -> None:
    stack = synthesized.app
    job_ids = stack.iot_job_ids()
    assert sorted(job_ids) == sorted(stack.logical_ids("Custom::IotJob")) and len(job_ids) == 3
    # The flow runs in real time: the canary's gate (a 5-minute bake) is played by test_local_cli.py,
    # which deploys app.py at the CLI's time scale, and by test_gate.py. Here the canary has no gate.
    # Without the gate, its attributes (and the Outputs that read them) are not there either.
    for logical_id in job_ids:
        stack.resources[logical_id]["Properties"].pop("RolloutGate", None)
    for name in ("CanaryFirmwareVerdict", "CanaryFirmwareSucceeded"):
        stack.template["Outputs"].pop(name)

    # WHEN the engine deploys the stack: its thing group, thing, role and function, then its jobs
    mark = len(flow.aws.exchanges)
    state = State(path=tmp_path / "state.json")
    result = LocalCloudFormation(flow.aws, state).deploy(stack)
    assert result.status == "CREATE_COMPLETE", [event for event in result.events if event.reason]
    stack_id = state.stacks[stack.name].stack_id

    # THEN CloudFormation sent one Create per job, and received exactly one response each
    exchanges = {exchange.event["LogicalResourceId"]: exchange for exchange in flow.aws.exchanges[mark:]}
    assert len(flow.aws.exchanges) - mark == len(job_ids) and sorted(exchanges) == sorted(job_ids)
    resolver = TemplateResolver(stack, stack_id)
    for logical_id, resource in result.resources.items():
        resolver.record(logical_id, resource.physical_id, resource.attributes)

    for logical_id in job_ids:
        exchange = exchanges[logical_id]
        assert exchange.event["RequestType"] == "Create" and exchange.event["StackId"] == stack_id
        # GIVEN the template's properties, resolved and stringified
        template_props = resolver.resolve(stack.resources[logical_id]["Properties"])
        sent = exchange.event["ResourceProperties"]
        assert sent == resolver.properties(logical_id)
        assert _scalars(sent) and all(isinstance(value, str) for value in _scalars(sent))

        # THEN the job exists as declared, with its user and ownership tags
        _answer(flow.aws, exchange)
        job_id = _assert_success(exchange.response)
        assert result.resources[logical_id].physical_id == arn(job_id)
        assert result.resources[logical_id].attributes == exchange.response.data
        job = flow.job(job_id)
        assert job["status"] == "IN_PROGRESS"
        assert job["targets"] == template_props["Targets"]
        assert flow.document(job_id) == template_props["Document"]
        assert job.get("description") == template_props.get("Description")
        assert job.get("targetSelection", "SNAPSHOT") == template_props.get("TargetSelection", "SNAPSHOT")
        for name in ("JobExecutionsRolloutConfig", "AbortConfig", "TimeoutConfig"):
            assert job.get(name[0].lower() + name[1:]) == _camel(template_props.get(name)), name
        tags = flow.tags(job["jobArn"])
        user_tags = {t["Key"]: t["Value"] for t in template_props.get("Tags", [])}
        assert {k: v for k, v in tags.items() if not k.startswith(OWNERSHIP_PREFIX)} == user_tags
        assert tags[f"{OWNERSHIP_PREFIX}stack-id"] == stack_id
        assert tags[f"{OWNERSHIP_PREFIX}logical-id"] == logical_id

    # The rollout targets the thing group app.py declares, as moto knows it.
    [rollout] = [name for name in job_ids if name.startswith("FirmwareRollout")]
    group_arn = flow.iot.describe_thing_group(thingGroupName="demo-sensors")["thingGroupArn"]
    assert flow.job(job_id_in(resolver.resolve({"Ref": rollout})))["targets"] == [group_arn]
    # Outputs resolve from the responses.
    outputs = resolver.resolve(stack.template["Outputs"])
    assert outputs["FirmwareRolloutJobArn"]["Value"] == arn(outputs["FirmwareRolloutJobId"]["Value"])
    assert result.outputs == {name: output["Value"] for name, output in outputs.items()}


def test_numbers_arrive_as_strings_and_reach_iot_as_numbers(flow: Flow) -> None:
    logical_id = flow.logical_id("Numbers")
    props = flow.test.properties(logical_id)
    rollout = props["JobExecutionsRolloutConfig"]["ExponentialRate"]
    assert rollout["IncrementFactor"] == "1.5" and rollout["BaseRatePerMinute"] == "3"
    assert props["AbortConfig"]["CriteriaList"][0]["ThresholdPercentage"] == "25.5"

    job_id = _assert_success(flow.create(logical_id, props))

    job = flow.job(job_id)
    assert job["targetSelection"] == "CONTINUOUS"
    assert job["jobExecutionsRolloutConfig"] == {
        "exponentialRate": {
            "baseRatePerMinute": 3,
            "incrementFactor": 1.5,
            "rateIncreaseCriteria": {"numberOfNotifiedThings": 7},
        }
    }
    assert job["abortConfig"] == {
        "criteriaList": [
            {"failureType": "REJECTED", "action": "CANCEL", "thresholdPercentage": 25.5, "minNumberOfExecutedThings": 4}
        ]
    }
    assert job["timeoutConfig"] == {"inProgressTimeoutInMinutes": 30}
    assert job["jobExecutionsRetryConfig"] == {"criteriaList": [{"failureType": "FAILED", "numberOfRetries": 2}]}


# --------------------------------------------------------------------------
# lifecycle of a generated-id job
# --------------------------------------------------------------------------
def test_generated_job_create_update_replace_and_delete(flow: Flow) -> None:
    logical_id = flow.logical_id("Generated")
    v1 = flow.test.properties(logical_id)
    thing_arn = flow.iot.describe_thing(thingName="flow-thing-1")["thingArn"]

    # Create
    first = _assert_success(flow.create(logical_id, v1))
    assert len(first) <= 64 and first.startswith("CdkIotJobFlow-")
    assert flow.job(first)["description"] == "calibration v1"

    # In-place Update: Description and the rollout rate are updatable.
    v2 = copy.deepcopy(v1)
    v2["Description"] = "calibration v2"
    v2["JobExecutionsRolloutConfig"] = {"MaximumPerMinute": "20"}
    mark = len(flow.fake.calls)
    response = flow.send(flow.event("Update", logical_id, v2, physical_id=arn(first), old_properties=v1))
    assert _assert_success(response) == first
    assert flow.mutations_since(mark) == [("UpdateJob", first)]
    job = flow.job(first)
    assert job["description"] == "calibration v2"
    assert job["jobExecutionsRolloutConfig"] == {"maximumPerMinute": 20}

    # Replacing Update: Targets and Document are create-only.
    v3 = copy.deepcopy(v2)
    v3["Targets"] = [thing_arn]
    v3["Document"] = json.dumps({"operation": "calibrate", "marker": DOC_MARKER, "v": 3})
    response = flow.send(flow.event("Update", logical_id, v3, physical_id=arn(first), old_properties=v2))
    second = _assert_success(response)
    assert second != first
    new_job = flow.job(second)
    assert new_job["status"] == "IN_PROGRESS" and new_job["targets"] == [thing_arn]
    assert new_job["description"] == "calibration v2"
    assert flow.document(second) == v3["Document"]
    assert flow.job(first)["status"] == "IN_PROGRESS", "the old job stays until CloudFormation deletes it"

    # Cleanup: CloudFormation deletes the old physical id, with the old properties.
    response = flow.send(flow.event("Delete", logical_id, v2, physical_id=arn(first)))
    assert response.status == "SUCCESS" and response.physical_id == arn(first)
    assert flow.last_duration_s < MAX_DELETE_SECONDS
    # The deletion was awaited: the very next DescribeJob finds nothing.
    assert not flow.exists(first)
    assert flow.exists(second)

    # Final Delete (stack deletion).
    response = flow.send(flow.event("Delete", logical_id, v3, physical_id=arn(second)))
    assert response.status == "SUCCESS" and response.physical_id == arn(second)
    assert flow.last_duration_s < MAX_DELETE_SECONDS
    assert not flow.exists(second)


def test_rolled_back_replacement_deletes_only_the_new_job(flow: Flow) -> None:
    # GIVEN a replacement that succeeded before another resource of the stack failed
    logical_id = flow.logical_id("Generated")
    v1 = flow.test.properties(logical_id)
    old = _assert_success(flow.create(logical_id, v1))
    v2 = {**v1, "Document": json.dumps({"operation": "calibrate", "marker": DOC_MARKER, "v": "rollback"})}
    new = _assert_success(flow.send(flow.event("Update", logical_id, v2, physical_id=arn(old), old_properties=v1)))
    assert new != old

    # WHEN CloudFormation rolls back: it deletes the new physical id
    response = flow.send(flow.event("Delete", logical_id, v2, physical_id=arn(new)))

    # THEN only the new job goes; the old one is untouched
    assert response.status == "SUCCESS" and response.physical_id == arn(new)
    assert not flow.exists(new)
    assert flow.job(old)["status"] == "IN_PROGRESS"
    assert flow.document(old) == v1["Document"]


def test_a_service_timeout_only_change_touches_nothing(flow: Flow) -> None:
    logical_id = flow.logical_id("Generated")
    v1 = flow.test.properties(logical_id)
    job_id = _assert_success(flow.create(logical_id, v1))
    mark = len(flow.fake.calls)

    v2 = {**v1, "ServiceTimeout": "900"}
    response = flow.send(flow.event("Update", logical_id, v2, physical_id=arn(job_id), old_properties=v1))

    assert _assert_success(response) == job_id
    assert flow.mutations_since(mark) == []


def test_redelivered_create_finds_its_own_job(flow: Flow) -> None:
    logical_id = flow.logical_id("Generated")
    before = {job["jobId"] for job in flow.iot.list_jobs()["jobs"]}
    event = flow.event("Create", logical_id, flow.test.properties(logical_id))

    first = flow.send(event)
    # Lambda's retry of the same event, same RequestId; invoke issues each delivery its own
    # ResponseURL, and each got exactly one response (Flow.send).
    second = flow.send(event)

    assert [exchange.event["RequestId"] for exchange in flow.aws.exchanges[-2:]] == [event["RequestId"]] * 2
    assert _assert_success(first) == _assert_success(second)
    after = {job["jobId"] for job in flow.iot.list_jobs()["jobs"]}
    assert after - before == {job_id_in(first.physical_id)}


# --------------------------------------------------------------------------
# fixed JobId
# --------------------------------------------------------------------------
def test_fixed_job_id_refuses_a_create_only_change_then_rolls_back(flow: Flow) -> None:
    logical_id = flow.logical_id("Fixed")
    v1 = flow.test.properties(logical_id)
    job_id = _assert_success(flow.create(logical_id, v1))
    assert job_id == "flow-fixed-job"
    before = (flow.job(job_id), flow.document(job_id), flow.tags(arn(job_id)))

    # WHEN the Document (create-only) changes but JobId stays
    v2 = {**v1, "Document": json.dumps({"operation": "reboot", "marker": DOC_MARKER, "v": 2})}
    mark = len(flow.fake.calls)
    response = flow.send(flow.event("Update", logical_id, v2, physical_id=arn(job_id), old_properties=v1))

    # THEN it fails before touching anything, saying JobId must change
    assert response.status == "FAILED"
    assert response.physical_id == arn(job_id)
    assert "Document" in response.reason and "new JobId" in response.reason
    assert flow.mutations_since(mark) == []
    assert (flow.job(job_id), flow.document(job_id), flow.tags(arn(job_id))) == before

    # AND CloudFormation's rollback Update (properties swapped) succeeds with the same id
    response = flow.send(flow.event("Update", logical_id, v1, physical_id=arn(job_id), old_properties=v2))
    assert _assert_success(response) == job_id
    assert flow.document(job_id) == v1["Document"]
    assert flow.job(job_id)["status"] == "IN_PROGRESS"


# --------------------------------------------------------------------------
# failed Create and its rollback Delete
# --------------------------------------------------------------------------
def test_invalid_literal_fails_create_and_the_rollback_delete_succeeds(flow: Flow) -> None:
    logical_id = flow.logical_id("Generated")
    props = flow.test.properties(logical_id)
    props["JobExecutionsRolloutConfig"] = {"MaximumPerMinute": "0"}  # as a hand-written template could say
    mark = len(flow.fake.calls)

    response = flow.create(logical_id, props)

    assert response.status == "FAILED"
    assert "JobExecutionsRolloutConfig.MaximumPerMinute" in response.reason and "'0'" in response.reason
    physical_id = response.physical_id
    assert flow.mutations_since(mark) == []

    response = flow.send(flow.event("Delete", logical_id, props, physical_id=physical_id))
    assert response.status == "SUCCESS" and response.physical_id == physical_id
    assert flow.mutations_since(mark) == []


def test_create_over_someone_elses_job_id_fails_and_never_touches_it(flow: Flow) -> None:
    logical_id = flow.logical_id("Taken")
    props = flow.test.properties(logical_id)
    foreign_document = json.dumps({"owner": "someone-else"})
    flow.iot.create_job(jobId="flow-taken-job", targets=props["Targets"], document=foreign_document)
    before = (flow.job("flow-taken-job"), flow.tags(arn("flow-taken-job")))
    mark = len(flow.fake.calls)

    response = flow.create(logical_id, props)

    assert response.status == "FAILED"
    assert "flow-taken-job" in response.reason and "already exists" in response.reason
    physical_id = response.physical_id

    response = flow.send(flow.event("Delete", logical_id, props, physical_id=physical_id))
    assert response.status == "SUCCESS" and response.physical_id == physical_id
    assert [call for call in flow.mutations_since(mark) if call[0] != "CreateJob"] == []
    assert (flow.job("flow-taken-job"), flow.tags(arn("flow-taken-job"))) == before
    assert flow.document("flow-taken-job") == foreign_document


# --------------------------------------------------------------------------
# removal options and transient faults
# --------------------------------------------------------------------------
def test_delete_with_delete_behavior_cancel_keeps_the_canceled_job(flow: Flow) -> None:
    logical_id = flow.logical_id("Cancelled")
    props = flow.test.properties(logical_id)
    assert props["DeleteBehavior"] == "CANCEL"
    job_id = _assert_success(flow.create(logical_id, props))

    response = flow.send(flow.event("Delete", logical_id, props, physical_id=arn(job_id)))

    assert response.status == "SUCCESS" and response.physical_id == arn(job_id)
    assert flow.last_duration_s < MAX_DELETE_SECONDS
    job = flow.job(job_id)
    assert job["status"] == "CANCELED"
    assert flow.fake.count("DeleteJob", job_id) == 0


def test_create_survives_three_throttles_in_a_row(flow: Flow) -> None:
    logical_id = flow.logical_id("Generated")
    flow.fake.fail_next("CreateJob", "ThrottlingException", times=3)

    job_id = _assert_success(flow.create(logical_id))

    assert flow.fake.count("CreateJob", job_id) == 4
    assert flow.job(job_id)["status"] == "IN_PROGRESS"


# --------------------------------------------------------------------------
# what the Lambda child logs and sees
# --------------------------------------------------------------------------
def test_logs_never_contain_a_response_url_signature_or_a_job_document(flow: Flow, lam: LambdaProcess) -> None:
    # GIVEN at least a success, a failure on the document itself and a Delete in this test
    logical_id = flow.logical_id("Generated")
    job_id = _assert_success(flow.create(logical_id))
    bad = {**flow.test.properties(logical_id), "Document": f"not json {DOC_MARKER}-secret"}
    failed = flow.create(logical_id, bad)
    assert failed.status == "FAILED" and "Document" in failed.reason
    assert DOC_MARKER not in failed.reason
    flow.send(flow.event("Delete", logical_id, flow.test.properties(logical_id), physical_id=arn(job_id)))

    # THEN the whole log of the tests' provider child, and of every invocation in this module
    # (the engine's deploy of app.py included), holds none of them
    exchanges = flow.aws.exchanges
    logs = "\n".join([lam.logs(), *(exchange.logs for exchange in exchanges)])
    assert f"created job {job_id}" in logs, "INFO logs are captured, so the check is not vacuous"
    urls = [exchange.url for exchange in exchanges]
    assert urls and all(urls)
    for url in urls:
        assert url is not None
        assert CloudFormationEndpoint.signature_of(url) not in logs
        assert url.split("?")[0] not in logs
    documents = [
        props["Document"]
        for exchange in exchanges
        for props in (exchange.event["ResourceProperties"], exchange.event.get("OldResourceProperties", {}))
        if isinstance(props.get("Document"), str)
    ]
    assert documents
    for document in documents:
        assert document not in logs
    assert DOC_MARKER not in logs
    assert "firmware.example.com" not in logs


def test_the_child_sees_only_the_asset_folder_and_boto3(flow: Flow, lam: LambdaProcess, asset_dir: Path) -> None:
    info = lam.introspect(
        importable=["crhelper", "boto3", "cdk_iot_job_provider", "moto", "aws_cdk", "jsii", "cdk_iot_job"]
    )

    assert info["sys_path"][:2] == [str(asset_dir.resolve()), str(lam.runtime_path)]
    # The rest is the interpreter's standard library (its zip, lib/pythonX.Y, lib-dynload).
    stdlib_root = str(Path(sysconfig.get_paths()["stdlib"]).parent)
    rest = info["sys_path"][2:]
    assert rest and all(path.startswith(stdlib_root) and "site-packages" not in path for path in rest), rest
    assert info["importable"] == {
        "crhelper": True,
        "boto3": True,
        "cdk_iot_job_provider": True,
        "moto": False,
        "aws_cdk": False,
        "jsii": False,
        "cdk_iot_job": False,
    }
    files = info["module_files"]
    assert Path(files["crhelper"]).is_relative_to(asset_dir.resolve())
    assert Path(files["cdk_iot_job_provider"]).is_relative_to(asset_dir.resolve())
    assert Path(files["boto3"]).is_relative_to(lam.runtime_path)
    assert not list(asset_dir.rglob("__pycache__")), "the child must not write bytecode into the asset"


def test_the_test_stack_ships_the_same_provider_asset(synthesized: Synthesized, asset_dir: Path) -> None:
    test = synthesized.test
    test_asset = test.asset_dir(test.function_of(test.iot_job_ids()[0]))
    assert test_asset.name == asset_dir.name


# --------------------------------------------------------------------------
# issue 11: a failed Create never points its rollback at a job
# --------------------------------------------------------------------------
def _names_no_job(physical_id: str) -> bool:
    return not re.fullmatch(r"arn:aws:iot:[a-z0-9-]+:\d{12}:job/[a-zA-Z0-9_-]+", physical_id)


@pytest.mark.parametrize("how", ["conflict", "invalid-property"])
@pytest.mark.parametrize("kept_by", ["retain", "cancel"])
def test_a_re_added_job_whose_create_fails_never_deletes_the_kept_job(flow: Flow, how: str, kept_by: str) -> None:
    # GIVEN a job with a fixed JobId kept when its resource left the template
    # (DeletionPolicy Retain: no Delete; DeleteBehavior CANCEL: canceled, record kept)
    logical_id = flow.logical_id("Fixed")
    job_id = f"flow-kept-{how}-{kept_by}"
    v1 = {**flow.test.properties(logical_id), "JobId": job_id}
    if kept_by == "cancel":
        v1["DeleteBehavior"] = "CANCEL"
    _assert_success(flow.create(logical_id, v1))
    if kept_by == "cancel":
        assert flow.send(flow.event("Delete", logical_id, v1, physical_id=arn(job_id))).status == "SUCCESS"
    before = (flow.job(job_id), flow.document(job_id), flow.tags(arn(job_id)))
    mark = len(flow.fake.calls)

    # WHEN the resource is added back under the same logical id, and its Create fails
    v2 = dict(v1)
    if how == "invalid-property":
        v2["TimeoutConfig"] = {"InProgressTimeoutInMinutes": "0"}
    response = flow.create(logical_id, v2)
    assert response.status == "FAILED"
    assert ("earlier request" if how == "conflict" else "TimeoutConfig.InProgressTimeoutInMinutes") in response.reason
    # THEN its physical id names no job, and CloudFormation's rollback Delete changes nothing
    assert _names_no_job(response.physical_id), response.physical_id
    rollback = flow.send(flow.event("Delete", logical_id, v2, physical_id=response.physical_id))
    assert rollback.status == "SUCCESS"
    assert [call for call in flow.mutations_since(mark) if call[0] != "CreateJob"] == []
    assert (flow.job(job_id), flow.document(job_id), flow.tags(arn(job_id))) == before


# --------------------------------------------------------------------------
# issue 11: rollback of a replacement converges, whatever CloudFormation sends
# --------------------------------------------------------------------------
@pytest.mark.parametrize("cloudformation_sends", ["update-to-new", "update-to-old", "delete-only"])
@pytest.mark.parametrize("ids", ["generated", "fixed"])
def test_rollback_of_a_replacement_ends_with_exactly_the_original_job(
    flow: Flow, ids: str, cloudformation_sends: str
) -> None:
    # GIVEN X replaced by Y in a stack update (a create-only change; with fixed ids, JobId a -> b)
    logical_id = flow.logical_id("Generated")
    v1 = flow.test.properties(logical_id)
    v2 = {**v1, "Document": json.dumps({"operation": "calibrate", "marker": DOC_MARKER, "v": cloudformation_sends})}
    if ids == "fixed":
        v1 = {**v1, "JobId": f"flow-a-{cloudformation_sends}"}
        v2 = {**v2, "JobId": f"flow-b-{cloudformation_sends}"}
    x = _assert_success(flow.create(logical_id, v1))
    before = (flow.job(x), flow.document(x), flow.tags(arn(x)))
    y = _assert_success(flow.send(flow.event("Update", logical_id, v2, physical_id=arn(x), old_properties=v1)))
    assert y != x
    mark = len(flow.fake.calls)

    # WHEN the stack update fails and CloudFormation rolls back in one of the ways it may
    if cloudformation_sends == "update-to-new":
        # The old properties, addressed to Y: the answer returns to X, so Y is cleaned up.
        back = flow.send(flow.event("Update", logical_id, v1, physical_id=arn(y), old_properties=v2))
        assert _assert_success(back) == x
    elif cloudformation_sends == "update-to-old":
        back = flow.send(flow.event("Update", logical_id, v1, physical_id=arn(x), old_properties=v2))
        assert _assert_success(back) == x
    cleanup = flow.send(flow.event("Delete", logical_id, v2, physical_id=arn(y)))

    # THEN exactly X is live, unchanged, and Y is deleted: no third job
    assert cleanup.status == "SUCCESS"
    assert not flow.exists(y)
    assert (flow.job(x), flow.document(x), flow.tags(arn(x))) == before
    assert [call for call in flow.mutations_since(mark) if call[0] == "CreateJob"] == []


# --------------------------------------------------------------------------
# issue 11: a job deleted outside the stack stays deleted
# --------------------------------------------------------------------------
def test_an_update_never_sends_a_job_deleted_outside_the_stack_again(flow: Flow) -> None:
    logical_id = flow.logical_id("Generated")
    v1 = flow.test.properties(logical_id)
    job_id = _assert_success(flow.create(logical_id, v1))
    flow.iot.delete_job(jobId=job_id, force=True)  # an operator stops the rollout
    mark = len(flow.fake.calls)

    v2 = {**v1, "Description": "calibration, slower"}
    response = flow.send(flow.event("Update", logical_id, v2, physical_id=arn(job_id), old_properties=v1))
    rollback = flow.send(flow.event("Update", logical_id, v1, physical_id=arn(job_id), old_properties=v2))

    assert response.status == rollback.status == "SUCCESS"
    assert response.physical_id == rollback.physical_id == arn(job_id)
    assert flow.mutations_since(mark) == []
    assert "deleted outside the stack: it is not created again" in flow.aws.exchanges[-2].logs
    # The fake finishes a deletion after a few reads: the job ends gone, never re-made.
    for _ in range(5):
        if not flow.exists(job_id):
            break
    assert not flow.exists(job_id)


# --------------------------------------------------------------------------
# issue 11: ServiceTimeout bounds the work
# --------------------------------------------------------------------------
def test_no_iot_call_starts_after_cloudformation_stopped_waiting(flow: Flow) -> None:
    # GIVEN a resource with ServiceTimeout 10 and a CreateJob throttled without end
    logical_id = flow.logical_id("Generated")
    props = {**flow.test.properties(logical_id), "ServiceTimeout": "10"}
    event = flow.event("Create", logical_id, props)
    event["ResourceProperties"]["ServiceTimeout"] = "10"
    flow.fake.fail_next("CreateJob", "ThrottlingException", times=1000)
    try:
        started = time.monotonic()
        response = flow.send(event)
        answered_after = time.monotonic() - started
        attempts = flow.fake.count("CreateJob")
    finally:
        flow.fake.reset()

    # THEN the provider answers before CloudFormation stops waiting, naming the deadline
    assert response.status == "FAILED"
    assert "no time left for IoT CreateJob" in response.reason
    assert answered_after < 10, answered_after
    assert attempts >= 2
    # AND the physical id names the job only as made by this request, so the rollback Delete is exact
    assert response.physical_id.endswith(f"?request-id={event['RequestId']}")
    rollback = flow.send(flow.event("Delete", logical_id, props, physical_id=response.physical_id))
    assert rollback.status == "SUCCESS"


# --------------------------------------------------------------------------
# issue 11: no secret in a Reason or a log line; tags at IoT's limit
# --------------------------------------------------------------------------
SECRET = "s3cr3t-flow-value-71c2"


@pytest.mark.parametrize(
    ("name", "value", "path"),
    [
        ("Tags", {"token": SECRET}, "Tags"),
        ("Tags", [f"token={SECRET}"], "Tags[0]"),
        ("Tags", [["token", SECRET]], "Tags[0]"),
        ("Tags", [{"Key": "token\u0007", "Value": f"{SECRET}\u0007"}], "Tags[0].Key"),
        ("Document", f'{{"token": "{SECRET}"', "Document"),
        ("DocumentParameters", {"token": f"{SECRET}\nmore"}, "DocumentParameters"),
    ],
    ids=["tags-map", "tags-k=v", "tags-pairs", "tag-control-char", "document-not-json", "parameter-newline"],
)
def test_a_secret_never_reaches_a_reason_or_a_log_line(flow: Flow, name: str, value: Any, path: str) -> None:
    logical_id = flow.logical_id("Generated")
    props = {**flow.test.properties(logical_id), name: value}
    if name == "DocumentParameters":
        props.pop("Document")
        props["JobTemplateArn"] = "arn:aws:iot:us-east-1::jobtemplate/AWS-Reboot:1.0"

    response = flow.create(logical_id, props)

    assert response.status == "FAILED"
    assert response.reason.startswith(path), response.reason
    assert SECRET not in response.reason
    assert SECRET not in flow.aws.exchanges[-1].logs
    assert "ERROR" in flow.aws.exchanges[-1].logs, "crhelper's error log is captured, so the check is not vacuous"


def test_a_tag_rename_on_a_job_at_iots_50_tag_limit_deploys(flow: Flow) -> None:
    # GIVEN a replacement job (five ownership tags) with the 45 user tags allowed: 50 in all
    logical_id = flow.logical_id("Generated")
    full = [{"Key": f"k{index:02d}", "Value": "v"} for index in range(45)]
    v1 = {**flow.test.properties(logical_id), "Tags": full}
    x = _assert_success(flow.create(logical_id, v1))
    v2 = {**v1, "Document": json.dumps({"operation": "calibrate", "marker": DOC_MARKER, "v": "tags"})}
    y = _assert_success(flow.send(flow.event("Update", logical_id, v2, physical_id=arn(x), old_properties=v1)))
    assert len(flow.tags(arn(y))) == 50

    # WHEN one tag is renamed
    v3 = {**v2, "Tags": [*full[:-1], {"Key": "renamed", "Value": "v"}]}
    response = flow.send(flow.event("Update", logical_id, v3, physical_id=arn(y), old_properties=v2))

    # THEN the update succeeds in place
    assert _assert_success(response) == y
    tags = flow.tags(arn(y))
    assert len(tags) == 50 and "renamed" in tags and "k44" not in tags
