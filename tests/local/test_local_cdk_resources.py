"""A typical firmware app deploys locally: CDK's own custom resources, SDK calls and Python providers (issue 12).

GIVEN the app of ``tests/fixtures/firmware_app`` (synthesized once, in-process):

* ``FirmwareStack``, in account 111122223333 / eu-west-1: a bucket with
  ``auto_delete_objects``, firmware uploaded by ``BucketDeployment``, a thing
  group and an ``IotJob`` whose document presigns the firmware, an
  ``AwsCustomResource`` (IoT DescribeEndpoint) and a Python ``CustomResource``;
* ``NodeStack``, environment-agnostic: a custom resource backed by Node.js.

The ``FirmwareStack`` tests run in file order on one engine: plan, deploy and
what moto holds; last, plan and destroy in a fresh :class:`LocalAws` restored
from the saved state file. In between, ``NodeStack`` is refused, flagged and
skipped, and CDK's handlers and SDK calls are played on single events.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import json
import re
import sys
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from iot_faults import FaultyIotFake

from cdk_iot_job_local import aws_sdk_call, cdk_handlers
from cdk_iot_job_local.assembly import from_assembly
from cdk_iot_job_local.engine import IOT_JOB_TYPE, LocalCloudFormation, Progress
from cdk_iot_job_local.events import custom_resource_event
from cdk_iot_job_local.runtime import LocalAws
from cdk_iot_job_local.state import State
from cdk_iot_job_local.template import Stack, UnsupportedCustomResourceError

APP = Path(__file__).resolve().parents[1] / "fixtures" / "firmware_app"
ACCOUNT, REGION = "111122223333", "eu-west-1"
DEFAULT_ACCOUNT, DEFAULT_REGION = "123456789012", "us-east-1"
PREFIX = "firmware/2.4.1/"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/Events/0f3c9a40-9c1e-11ef-8d6b-0affd3c9b2a1"


def reset_moto(aws: LocalAws) -> None:
    """Forget every account moto holds: its backends live in this process."""
    request = urllib.request.Request(f"{aws.endpoint_url}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).close()


# --------------------------------------------------------------------------
# the app, synthesized once
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Stack]:
    spec = importlib.util.spec_from_file_location("firmware_app", APP / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    writing, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ in the fixture
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = writing
    outdir = tmp_path_factory.mktemp("firmware-app") / "cdk.out"
    module.build(str(outdir))
    return {stack.name: stack for stack in from_assembly(outdir)}


@dataclass
class World:
    aws: LocalAws
    state: State
    engine: LocalCloudFormation
    progress: list[Progress] = field(default_factory=list)
    seen: dict[str, Any] = field(default_factory=dict)

    def client(self, service: Any, account: str = ACCOUNT, region: str = REGION) -> Any:
        return self.aws.client(service, account=account, region=region)

    def logical_id(self, stack: Stack, resource_type: str, prefix: str = "") -> str:
        [found] = [name for name in stack.logical_ids(resource_type) if name.startswith(prefix)]
        return found

    def need(self, key: str) -> Any:
        assert key in self.seen, f"{key!r} is unknown: an earlier test of this module failed"
        return self.seen[key]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("local-cdk-resources")
    progress: list[Progress] = []
    # The engine's fake, with a call log.
    with LocalAws(fake=FaultyIotFake(deletion_polls=1, check_targets=True)) as aws:
        reset_moto(aws)
        state = State(path=tmp / "state.json")
        yield World(aws, state, LocalCloudFormation(aws, state, progress.append), progress)


def firmware_files() -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in (APP / "firmware").iterdir()}


# --------------------------------------------------------------------------
# FirmwareStack: plan, deploy, what moto holds
# --------------------------------------------------------------------------
def test_1_plan_creates_every_resource_and_nothing_fails(world: World, stacks: dict[str, Stack]) -> None:
    stack = stacks["FirmwareStack"]

    plan = {change.logical_id: change for change in world.engine.plan(stack)}

    assert set(plan) == set(stack.resources)
    assert [change for change in plan.values() if change.fails or "fail" in change.detail] == []
    assert {change.action for change in plan.values()} == {"create"}
    # The resources a new user wonders about, and how each runs locally.
    bucket = world.logical_id(stack, "AWS::S3::Bucket")
    upload = world.logical_id(stack, "Custom::CDKBucketDeployment")
    auto_delete = world.logical_id(stack, "Custom::S3AutoDeleteObjects")
    endpoint = world.logical_id(stack, "Custom::AWS")
    assert plan[bucket].action == "create"
    assert "emulated" in plan[upload].detail and "emulated" in plan[auto_delete].detail
    assert plan[endpoint].detail == "SDK calls through boto3: Create Iot.describeEndpoint"
    assert "python3.12" in plan["Greeting"].detail
    assert plan[world.logical_id(stack, IOT_JOB_TYPE)].detail == "JobId generated"


def test_2_deploy_succeeds(world: World, stacks: dict[str, Stack]) -> None:
    stack = stacks["FirmwareStack"]

    result = world.engine.deploy(stack)

    failed = [event for event in result.events if event.status.endswith("FAILED")]
    assert result.status == "CREATE_COMPLETE", failed
    assert world.progress == result.events
    world.seen["result"] = result


def test_3_the_firmware_is_in_the_bucket_under_the_prefix_in_the_stacks_account(world: World) -> None:
    result = world.need("result")
    bucket = result.outputs["BucketName"]
    s3 = world.client("s3")

    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    bodies = {item["Key"]: s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read() for item in listed}

    assert bodies == {PREFIX + name: body for name, body in firmware_files().items()}
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == REGION
    # Not in the default account, where every stack used to land.
    assert bucket not in {
        b["Name"] for b in world.client("s3", DEFAULT_ACCOUNT, DEFAULT_REGION).list_buckets()["Buckets"]
    }


def test_3_the_job_is_in_the_stacks_account_and_region(world: World, stacks: dict[str, Stack]) -> None:
    result = world.need("result")
    job_arn = result.outputs["JobArn"]

    match = re.fullmatch(rf"arn:aws:iot:{REGION}:{ACCOUNT}:job/(?P<id>[\w-]+)", job_arn)

    assert match is not None, job_arn
    job = world.client("iot").describe_job(jobId=match["id"])["job"]
    assert job["jobArn"] == job_arn and job["status"] == "IN_PROGRESS"
    assert job["targets"] == [f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/firmware-fleet"]
    assert job["presignedUrlConfig"]["expiresInSec"] == 600
    assert job["presignedUrlConfig"]["roleArn"].startswith(f"arn:aws:iam::{ACCOUNT}:role/")
    document = json.loads(world.client("iot").get_job_document(jobId=match["id"])["document"])
    bucket = result.outputs["BucketName"]
    placeholder = (
        f"${{aws:iot:s3-presigned-url-v2:https://s3.{REGION}.amazonaws.com/{bucket}/{PREFIX}sensor-2.4.1.bin}}"
    )
    assert document["url"] == placeholder
    assert world.client("iot", DEFAULT_ACCOUNT, DEFAULT_REGION).list_jobs()["jobs"] == []
    world.seen["job_id"] = match["id"]


def test_3_the_outputs_resolve_with_the_sdk_call_and_the_python_providers_data(world: World) -> None:
    outputs = world.need("result").outputs

    assert re.fullmatch(rf"[a-z0-9]+-ats\.iot\.{REGION}\.amazonaws\.com", outputs["IotEndpointAddress"]), outputs
    # The Python provider ran in the stack's account and region, and answered Data.
    assert (outputs["GreetingText"], outputs["GreeterAccount"], outputs["GreeterRegion"]) == (
        "hello firmware",
        ACCOUNT,
        REGION,
    )


# --------------------------------------------------------------------------
# NodeStack: a custom resource the engine cannot run
# --------------------------------------------------------------------------
def test_an_unsupported_custom_resource_is_flagged_by_plan(world: World, stacks: dict[str, Stack]) -> None:
    plan = {change.logical_id: change for change in world.engine.plan(stacks["NodeStack"])}

    assert plan["NodeThing"].action == "not supported locally" and plan["NodeThing"].fails
    assert "nodejs22.x" in plan["NodeThing"].detail and "--skip-unsupported" in plan["NodeThing"].detail
    assert [name for name, change in plan.items() if change.fails] == ["NodeThing"]


def test_deploy_refuses_an_unsupported_custom_resource_before_changing_anything(
    world: World, stacks: dict[str, Stack]
) -> None:
    assert isinstance(world.aws.fake, FaultyIotFake)
    before = json.dumps({name: dataclasses.asdict(stack) for name, stack in world.state.stacks.items()})
    moto_before = world.aws.snapshot()
    calls_before = len(world.aws.fake.calls)

    with pytest.raises(UnsupportedCustomResourceError) as refused:
        world.engine.deploy(stacks["NodeStack"])

    assert world.aws.fake.calls[calls_before:] == []
    message = str(refused.value)
    assert "\n" not in message and "NodeThing" in message and "--skip-unsupported" in message
    assert refused.value.logical_ids == ["NodeThing"]
    assert json.dumps({name: dataclasses.asdict(stack) for name, stack in world.state.stacks.items()}) == before
    assert "NodeStack" not in world.state.stacks
    assert world.aws.snapshot() == moto_before


def test_skip_unsupported_records_it_and_deploys_the_rest_in_the_default_environment(
    world: World, stacks: dict[str, Stack]
) -> None:
    skipping = LocalCloudFormation(world.aws, world.state, skip_unsupported=True)
    stack = stacks["NodeStack"]

    plan = {change.logical_id: change for change in skipping.plan(stack)}
    result = skipping.deploy(stack)

    assert plan["NodeThing"].action == "skip (not supported locally)" and not plan["NodeThing"].fails
    assert result.status == "CREATE_COMPLETE"
    [skipped] = [event for event in result.events if event.logical_id == "NodeThing"]
    assert skipped.status == "CREATE_SKIPPED" and "nodejs22.x" in skipped.reason
    assert result.outputs["NodeThingRef"] == skipped.physical_id
    # An environment-agnostic stack lands in the default account and region.
    assert result.outputs["Where"] == f"{DEFAULT_ACCOUNT}/{DEFAULT_REGION}"
    group_arn = f"arn:aws:iot:{DEFAULT_REGION}:{DEFAULT_ACCOUNT}:thinggroup/node-stack-group"
    assert result.outputs["GroupArn"] == group_arn
    iot = world.client("iot", DEFAULT_ACCOUNT, DEFAULT_REGION)
    assert iot.describe_thing_group(thingGroupName="node-stack-group")["thingGroupArn"] == group_arn

    destroyed = skipping.destroy("NodeStack")
    assert destroyed.status == "DELETE_COMPLETE"
    assert [e.status for e in destroyed.events if e.logical_id == "NodeThing"] == ["DELETE_SKIPPED"]


def node_backed(outputs: dict[str, Any] | None = None, **resources: Any) -> Stack:
    """A plain template with a custom resource backed by a Node.js function, and more."""
    template = {
        "Resources": {
            "Handler": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Runtime": "nodejs22.x", "Handler": "index.handler", "Code": {"ZipFile": "x"}},
            },
            "Thing": {"Type": "Custom::Thing", "Properties": {"ServiceToken": {"Fn::GetAtt": ["Handler", "Arn"]}}},
            **resources,
        },
        "Outputs": outputs or {},
    }
    return Stack(name="GetAttOfSkipped", outdir=Path("."), template=template)


def test_an_attribute_of_a_skipped_resource_fails_clearly(world: World) -> None:
    group = {
        "Type": "AWS::IoT::ThingGroup",
        "Properties": {
            "ThingGroupName": "needs-an-attribute",
            "ThingGroupProperties": {"ThingGroupDescription": {"Fn::GetAtt": ["Thing", "Name"]}},
        },
    }
    skipping = LocalCloudFormation(world.aws, world.state, skip_unsupported=True)

    plan = {change.logical_id: change for change in skipping.plan(node_backed(Group=group))}
    result = skipping.deploy(node_backed(Group=group))

    assert plan["Group"].fails and "Thing is skipped locally" in plan["Group"].detail
    assert result.status == "ROLLBACK_COMPLETE"
    [failed] = [event for event in result.events if event.status == "CREATE_FAILED"]
    assert failed.logical_id == "Group"
    assert "Fn::GetAtt Thing.Name: Thing is skipped locally (not supported locally)" in failed.reason


def test_an_output_of_a_skipped_resource_fails_the_deploy_clearly(world: World) -> None:
    skipping = LocalCloudFormation(world.aws, world.state, skip_unsupported=True)

    result = skipping.deploy(node_backed({"Name": {"Value": {"Fn::GetAtt": ["Thing", "Name"]}}}))

    assert result.status == "ROLLBACK_COMPLETE"
    reasons = [event.reason for event in result.events if event.status == "CREATE_FAILED"]
    assert reasons == [
        "Outputs.Name: Fn::GetAtt Thing.Name: Thing is skipped locally (not supported locally), so it has no attributes"
    ]


# --------------------------------------------------------------------------
# CDK's handlers, one event at a time
# --------------------------------------------------------------------------
def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, body in files.items():
            archive.writestr(name, body)
    return buffer.getvalue()


@pytest.fixture
def s3(world: World) -> Any:
    return world.client("s3")


def bucket_with(s3: Any, name: str, objects: dict[str, bytes], tags: dict[str, str] | None = None) -> str:
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    for key, body in objects.items():
        s3.put_object(Bucket=name, Key=key, Body=body)
    if tags:
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
    return name


def keys(s3: Any, bucket: str) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {item["Key"]: s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read() for item in listed}


def cdk_event(request: str, resource_type: str, props: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return custom_resource_event(
        request, stack_id=STACK_ID, logical_id="Resource", resource_type=resource_type, properties=props, **kwargs
    )


def deployment(source: str, destination: str, **props: Any) -> dict[str, Any]:
    return {
        "ServiceToken": "arn:aws:lambda:eu-west-1:111122223333:function:cdk",
        "SourceBucketNames": [source],
        "SourceObjectKeys": ["source.zip"],
        "DestinationBucketName": destination,
        **props,
    }


def test_a_deployment_syncs_prunes_only_under_its_prefix_and_replaces_markers(s3: Any) -> None:
    # GIVEN a source zip with a marker, and a destination with a stale and an unrelated object
    source = bucket_with(s3, "deploy-source-1", {"source.zip": zipped({"a.txt": b"v=<<V>>", "sub/b.bin": b"\x00"})})
    destination = bucket_with(s3, "deploy-dest-1", {"fw/old.txt": b"stale", "other/keep.txt": b"mine"})
    props = deployment(source, destination, DestinationBucketKeyPrefix="fw", SourceMarkers=[{"<<V>>": "2.4.1"}])

    answer = cdk_handlers.handle(cdk_event("Create", "Custom::CDKBucketDeployment", props), s3)

    assert answer.ok and answer.physical_id.startswith("aws.cdk.s3deployment.")
    assert answer.data == {"DestinationBucketArn": None, "SourceObjectKeys": ["source.zip"]}
    assert keys(s3, destination) == {"fw/a.txt": b"v=2.4.1", "fw/sub/b.bin": b"\x00", "other/keep.txt": b"mine"}


def test_a_deployment_honours_extract_false_prune_false_and_filters(s3: Any) -> None:
    archive = zipped({"a.txt": b"a", "b.log": b"b"})
    source = bucket_with(s3, "deploy-source-2", {"source.zip": archive})
    destination = bucket_with(s3, "deploy-dest-2", {"stale.txt": b"s"})
    copy = deployment(source, destination, Extract=False, Prune=False)
    filtered = deployment(source, destination, Exclude=["*"], Include=["*.txt"], Prune=False)

    assert cdk_handlers.handle(cdk_event("Create", "Custom::CDKBucketDeployment", copy), s3).ok
    assert cdk_handlers.handle(cdk_event("Create", "Custom::CDKBucketDeployment", filtered), s3).ok

    assert keys(s3, destination) == {"stale.txt": b"s", "source.zip": archive, "a.txt": b"a"}


def test_a_deployment_keeps_its_files_on_delete_unless_retain_on_delete_is_false(s3: Any) -> None:
    source = bucket_with(s3, "deploy-source-3", {"source.zip": zipped({"a.txt": b"a"})})
    destination = bucket_with(s3, "deploy-dest-3", {"p/a.txt": b"a", "q/b.txt": b"b"})
    kept = deployment(source, destination, DestinationBucketKeyPrefix="p/")
    removed = deployment(source, destination, DestinationBucketKeyPrefix="p/", RetainOnDelete=False)

    cdk_handlers.handle(cdk_event("Delete", "Custom::CDKBucketDeployment", kept, physical_id="d"), s3)
    assert set(keys(s3, destination)) == {"p/a.txt", "q/b.txt"}
    answer = cdk_handlers.handle(cdk_event("Delete", "Custom::CDKBucketDeployment", removed, physical_id="d"), s3)
    assert answer.ok and answer.physical_id == "d"
    assert set(keys(s3, destination)) == {"q/b.txt"}


def test_a_deployment_from_a_missing_source_fails_naming_it(s3: Any) -> None:
    destination = bucket_with(s3, "deploy-dest-4", {})
    props = deployment("deploy-no-such-source", destination)

    answer = cdk_handlers.handle(cdk_event("Create", "Custom::CDKBucketDeployment", props), s3)

    assert not answer.ok and "s3://deploy-no-such-source/source.zip" in answer.reason


def auto_delete(bucket: str) -> dict[str, Any]:
    return {"ServiceToken": "arn:aws:lambda:eu-west-1:111122223333:function:auto", "BucketName": bucket}


def test_auto_delete_empties_only_a_bucket_tagged_for_it(s3: Any) -> None:
    tagged = bucket_with(s3, "auto-delete-1", {"a": b"1", "b/c": b"2"}, {"aws-cdk:auto-delete-objects": "true"})
    untagged = bucket_with(s3, "auto-delete-2", {"a": b"1"}, {"team": "fw"})

    for bucket in (tagged, untagged):
        answer = cdk_handlers.handle(
            cdk_event("Delete", "Custom::S3AutoDeleteObjects", auto_delete(bucket), physical_id="x"), s3
        )
        assert answer.ok

    assert keys(s3, tagged) == {} and set(keys(s3, untagged)) == {"a"}
    missing = cdk_event("Delete", "Custom::S3AutoDeleteObjects", auto_delete("auto-delete-gone"), physical_id="x")
    assert cdk_handlers.handle(missing, s3).ok  # a bucket already gone is fine


def test_auto_delete_keeps_the_objects_on_an_update_that_keeps_the_bucket(s3: Any) -> None:
    bucket = bucket_with(s3, "auto-delete-3", {"a": b"1"}, {"aws-cdk:auto-delete-objects": "true"})
    same = cdk_event(
        "Update",
        "Custom::S3AutoDeleteObjects",
        auto_delete(bucket),
        physical_id="req-1",
        old_properties=auto_delete(bucket),
    )
    renamed = cdk_event(
        "Update",
        "Custom::S3AutoDeleteObjects",
        auto_delete("auto-delete-4"),
        physical_id="req-1",
        old_properties=auto_delete(bucket),
    )

    # The same bucket keeps the id (no Delete follows); a new bucket answers its name (the old one is emptied).
    assert cdk_handlers.handle(same, s3).physical_id == "req-1"
    assert cdk_handlers.handle(renamed, s3).physical_id == "auto-delete-4"
    assert set(keys(s3, bucket)) == {"a"}


# --------------------------------------------------------------------------
# Custom::AWS calls, one event at a time
# --------------------------------------------------------------------------
def sdk_event(request: str, physical_id: str | None = None, **calls: dict[str, Any]) -> dict[str, Any]:
    props = {"ServiceToken": "arn:aws:lambda:eu-west-1:111122223333:function:sdk"}
    props.update({name: json.dumps(call) for name, call in calls.items()})
    return custom_resource_event(
        request,
        stack_id=STACK_ID,
        logical_id="Call",
        resource_type="Custom::AWS",
        properties=props,
        physical_id=physical_id,
    )


def test_an_sdk_v3_call_is_made_in_the_stacks_environment_and_flattened(world: World) -> None:
    iot = world.client("iot")
    iot.create_thing_group(thingGroupName="sdk-group-a")
    iot.create_thing_group(thingGroupName="sdk-group-b")
    call = {
        "service": "@aws-sdk/client-iot",
        "action": "ListThingGroupsCommand",
        "parameters": {"namePrefixFilter": "sdk-group-", "maxResults": "10"},
        "physicalResourceId": {"id": "groups"},
        "outputPaths": ["thingGroups.1"],
    }

    answer = aws_sdk_call.handle(sdk_event("Create", Create=call), world.aws, account=ACCOUNT, region=REGION)

    assert answer.ok and answer.physical_id == "groups"
    assert answer.data == {
        "thingGroups.1.groupName": "sdk-group-b",
        "thingGroups.1.groupArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/sdk-group-b",
    }


def test_an_sdk_call_error_fails_unless_its_code_is_ignored(world: World) -> None:
    call = {"service": "Iot", "action": "describeThing", "parameters": {"thingName": "nobody"}}
    ignored = {**call, "ignoreErrorCodesMatching": "ResourceNotFound"}

    failed = aws_sdk_call.handle(sdk_event("Create", Create=call), world.aws, account=ACCOUNT, region=REGION)
    passed = aws_sdk_call.handle(sdk_event("Create", Create=ignored), world.aws, account=ACCOUNT, region=REGION)

    assert not failed.ok and "ResourceNotFoundException" in failed.reason
    assert passed.ok and passed.physical_id == "Call" and passed.data == {}


def test_an_sdk_event_without_its_call_succeeds_and_keeps_the_id(world: World) -> None:
    call = {"service": "Iot", "action": "describeEndpoint", "parameters": {"endpointType": "iot:Data-ATS"}}

    answer = aws_sdk_call.handle(
        sdk_event("Delete", "endpoint-1", Create=call), world.aws, account=ACCOUNT, region=REGION
    )

    assert answer.ok and answer.physical_id == "endpoint-1" and answer.data == {}


# --------------------------------------------------------------------------
# FirmwareStack again, last: a fresh run from the state file (it resets moto)
# --------------------------------------------------------------------------
def test_9_the_state_round_trip_plans_no_change_and_destroys_the_stack(
    world: World, stacks: dict[str, Stack], tmp_path: Path
) -> None:
    # GIVEN the state file as a deploy leaves it
    result = world.need("result")
    world.state.moto = world.aws.snapshot()
    world.state.save()
    stack = stacks["FirmwareStack"]
    auto_delete = world.logical_id(stack, "Custom::S3AutoDeleteObjects")
    bucket = result.outputs["BucketName"]

    # WHEN a fresh run restores it, plans and destroys
    # (one IoT fake per process: the fresh run takes over the installed one)
    with LocalAws(fake=world.aws.fake) as fresh:
        reset_moto(fresh)
        state = State.load(world.state.path)
        fresh.restore(state.moto)
        events: list[Progress] = []
        engine = LocalCloudFormation(fresh, state, events.append)
        plan = engine.plan(stack)
        destroyed = engine.destroy("FirmwareStack")
        s3, iot = (
            fresh.client("s3", account=ACCOUNT, region=REGION),
            fresh.client("iot", account=ACCOUNT, region=REGION),
        )

        # THEN the plan changes nothing, ...
        assert {change.action for change in plan} == {"no change"} and not any(change.fails for change in plan)
        # ... the destroy empties the bucket before deleting it, and deletes the job
        assert destroyed.status == "DELETE_COMPLETE", [e for e in destroyed.events if e.reason]
        order = [event.logical_id for event in destroyed.events if event.status == "DELETE_COMPLETE"]
        assert order.index(auto_delete) < order.index(world.logical_id(stack, "AWS::S3::Bucket"))
        with pytest.raises(ClientError) as gone:
            s3.head_bucket(Bucket=bucket)
        assert gone.value.response["Error"]["Code"] == "404"
        with pytest.raises(ClientError) as missing:
            iot.describe_job(jobId=world.need("job_id"))
        assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
        assert "FirmwareStack" not in state.stacks
