"""Tests for cdk_iot_job_local.moto_state: snapshot, JSON, reset, restore, same snapshot."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.iot.models import iot_backends

from cdk_iot_job_local.iot_fake import StrictIotFake, job_extras
from cdk_iot_job_local.moto_state import DEFAULT_ACCOUNT, FORMAT_VERSION, restore, snapshot

REGION = "us-east-1"
# The environment of tests/local/conftest.py for each test; server_url is its moto server.
pytestmark = pytest.mark.usefixtures("aws_env")

ACCOUNT = DEFAULT_ACCOUNT
NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1}, s3={"addressing_style": "path"})
BINARY = bytes(range(256)) * 3
ASSUME = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "iot.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
INLINE = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}


def reset(url: str) -> None:
    """Forget every backend of the in-process moto server (moto 5's reset endpoint)."""
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")).close()


@pytest.fixture
def url(server_url: str) -> Iterator[str]:
    reset(server_url)
    with StrictIotFake(deletion_polls=1):
        yield server_url
    reset(server_url)


def client(url: str, service: str, region: str = REGION) -> Any:
    make: Any = boto3.client  # boto3-stubs' overloads want a literal service name
    return make(service, region_name=region, endpoint_url=url, config=NO_RETRY)


def populate(url: str) -> dict[str, str]:
    """Things, groups, a role, a bucket and two jobs (IN_PROGRESS with everything, CANCELED)."""
    iot, iam, s3 = client(url, "iot"), client(url, "iam"), client(url, "s3")
    iot.create_thing(thingName="sensor-1", attributePayload={"attributes": {"model": "x1"}})
    iot.create_thing(thingName="sensor-2")
    fleet = iot.create_thing_group(
        thingGroupName="fleet",
        thingGroupProperties={"thingGroupDescription": "all", "attributePayload": {"attributes": {"site": "a"}}},
    )
    # A child that sorts before its parent: restore must create the parent first.
    iot.create_thing_group(thingGroupName="attic", parentGroupName="fleet")
    iot.add_thing_to_thing_group(thingGroupName="fleet", thingName="sensor-1")
    iot.add_thing_to_thing_group(thingGroupName="attic", thingName="sensor-2")

    role = iam.create_role(
        RoleName="job-role",
        Path="/iot/",
        AssumeRolePolicyDocument=json.dumps(ASSUME),
        Description="for jobs",
        Tags=[{"Key": "team", "Value": "a"}],
    )["Role"]
    iam.put_role_policy(RoleName="job-role", PolicyName="read", PolicyDocument=json.dumps(INLINE))
    s3.create_bucket(Bucket="job-documents")
    s3.put_object(Bucket="job-documents", Key="fw/blob.bin", Body=BINARY, ContentType="application/octet-stream")
    s3.put_object(Bucket="job-documents", Key="doc.json", Body=b'{"op":"x"}', ContentType="application/json")
    s3.create_bucket(Bucket="eu-assets", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    client(url, "s3", "eu-west-1").put_object(Bucket="eu-assets", Key="a", Body=b"", Metadata={"stage": "1"})

    iot.create_job(
        jobId="running",
        targets=[fleet["thingGroupArn"]],
        document='{"operation":"firmware-update"}',
        description="v1",
        targetSelection="CONTINUOUS",
        presignedUrlConfig={"roleArn": role["Arn"], "expiresInSec": 300},
        jobExecutionsRolloutConfig={"maximumPerMinute": 20},
        abortConfig={
            "criteriaList": [
                {
                    "failureType": "FAILED",
                    "action": "CANCEL",
                    "thresholdPercentage": 12.5,
                    "minNumberOfExecutedThings": 3,
                }
            ]
        },
        timeoutConfig={"inProgressTimeoutInMinutes": 60},
        jobExecutionsRetryConfig={"criteriaList": [{"failureType": "ALL", "numberOfRetries": 2}]},
        schedulingConfig={"startTime": "2030-01-01T00:00", "endBehavior": "STOP_ROLLOUT"},
        namespaceId="ns-1",
        documentParameters={"version": "1.0.0"},
        destinationPackageVersions=[f"arn:aws:iot:{REGION}:{ACCOUNT}:package/fw/version/1.0.0"],
        tags=[{"Key": "owner", "Value": "team-a"}, {"Key": "cdk-iot-job:stack", "Value": "S"}],
    )
    iot.create_job(
        jobId="stopped",
        targets=[f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/sensor-2"],
        documentSource="https://job-documents.s3.amazonaws.com/doc.json",
        tags=[{"Key": "owner", "Value": "team-b"}],
    )
    iot.cancel_job(jobId="stopped", reasonCode="SUPERSEDED", comment="replaced by running")
    return {"fleet": fleet["thingGroupArn"]}


def test_round_trip_restores_the_same_state(url: str) -> None:
    populate(url)
    first = snapshot(None, endpoint_url=url, region=REGION)
    saved = json.loads(json.dumps(first))
    assert saved == first  # JSON-serializable without loss

    reset(url)
    assert client(url, "iot").list_jobs()["jobs"] == []
    restore(saved, endpoint_url=url, region=REGION)
    again = snapshot(None, endpoint_url=url, region=REGION)
    assert again == first

    jobs = {job["jobId"]: job for job in first["iot"]["jobs"]}
    assert first["format_version"] == FORMAT_VERSION
    assert jobs["running"]["status"] == "IN_PROGRESS"
    assert jobs["running"]["namespaceId"] == "ns-1"
    assert jobs["running"]["tags"] == [{"Key": "owner", "Value": "team-a"}, {"Key": "cdk-iot-job:stack", "Value": "S"}]
    assert jobs["running"]["abortConfig"]["criteriaList"][0]["thresholdPercentage"] == 12.5
    assert jobs["running"]["document"] == '{"operation":"firmware-update"}'
    # createdAt is kept (it is the CreatedAt attribute), and the restore above gave it back
    created = jobs["stopped"].pop("createdAt")
    assert created.endswith("+00:00")
    restored = client(url, "iot").describe_job(jobId="stopped")["job"]["createdAt"]
    assert restored.isoformat() == created
    # executions are kept: the group's things through its child group; CancelJob canceled the queued one
    summary = [(e["thingName"], e["status"], e["executionNumber"]) for e in jobs["running"]["executions"]]
    assert summary == [("sensor-1", "QUEUED", 1), ("sensor-2", "QUEUED", 1)]
    (stopped,) = jobs["stopped"].pop("executions")
    assert (stopped["thingName"], stopped["status"], stopped["executionNumber"]) == ("sensor-2", "CANCELED", 2)
    assert jobs["stopped"] == {
        "jobId": "stopped",
        "targets": [f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/sensor-2"],
        "documentSource": "https://job-documents.s3.amazonaws.com/doc.json",
        "status": "CANCELED",
        "comment": "replaced by running",
        "reasonCode": "SUPERSEDED",
        "forceCanceled": False,
        "tags": [{"Key": "owner", "Value": "team-b"}],
    }
    groups = {group["thingGroupName"]: group for group in first["iot"]["thing_groups"]}
    assert groups["attic"]["parentGroupName"] == "fleet"
    assert groups["fleet"]["things"] == ["sensor-1"]
    (role,) = first["iam"]["roles"]
    assert role["Policies"] == {"read": INLINE}
    assert role["AssumeRolePolicyDocument"] == ASSUME
    assert role["Tags"] == [{"Key": "team", "Value": "a"}]
    buckets = {bucket["Name"]: bucket for bucket in first["s3"]["buckets"]}
    assert buckets["eu-assets"]["Region"] == "eu-west-1"
    assert buckets["eu-assets"]["Objects"] == [
        {"Key": "a", "Body": "", "ContentType": "binary/octet-stream", "Metadata": {"stage": "1"}}
    ]
    body = client(url, "s3").get_object(Bucket="job-documents", Key="fw/blob.bin")["Body"].read()
    assert body == BINARY


def test_restored_jobs_still_obey_the_fake(url: str) -> None:
    populate(url)
    saved = json.loads(json.dumps(snapshot(None, endpoint_url=url, region=REGION)))
    reset(url)
    restore(saved, endpoint_url=url, region=REGION)
    iot = client(url, "iot")

    iot.update_job(jobId="running", description="v2")  # moto alone: NotImplementedError
    assert iot.describe_job(jobId="running")["job"]["description"] == "v2"
    with pytest.raises(ClientError) as raised:
        iot.create_job(jobId="running", targets=["arn:aws:iot:us-east-1:123456789012:thing/x"], document="{}")
    assert raised.value.response["Error"]["Code"] == "ResourceAlreadyExistsException"
    with pytest.raises(ClientError) as raised:
        iot.delete_job(jobId="running")  # IN_PROGRESS needs force
    assert raised.value.response["Error"]["Code"] == "InvalidStateTransitionException"

    iot.delete_job(jobId="running", force=True)
    assert iot.describe_job(jobId="running")["job"]["status"] == "DELETION_IN_PROGRESS"
    with pytest.raises(ClientError):
        iot.describe_job(jobId="running")  # gone after deletion_polls=1
    iot.delete_job(jobId="stopped")  # CANCELED: no force needed
    assert [j["jobId"] for j in iot.list_jobs()["jobs"]] == ["stopped"]
    assert iot.describe_job(jobId="stopped")["job"]["status"] == "DELETION_IN_PROGRESS"
    assert iot.list_jobs()["jobs"] == []


def test_completed_and_deleting_jobs(url: str) -> None:
    iot = client(url, "iot")
    target = f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/t"
    template = f"arn:aws:iot:{REGION}:{ACCOUNT}:jobtemplate/fw"
    # A job from a template has no document of its own.
    iot.create_job(jobId="done", targets=[target], jobTemplateArn=template, documentParameters={"v": "2"})
    iot.create_job(jobId="going", targets=[target], document="{}")
    # No API completes a job; the device side would.
    iot_backends[ACCOUNT][REGION].jobs["done"].status = "COMPLETED"
    iot.delete_job(jobId="going", force=True)

    first = snapshot(None, endpoint_url=url, region=REGION)
    going = iot_backends[ACCOUNT][REGION].jobs["going"]
    assert job_extras(going).deletion_polls_left == 1  # snapshot did not count it down
    assert [(j["jobId"], j["status"]) for j in first["iot"]["jobs"]] == [
        ("done", "COMPLETED"),
        ("going", "DELETION_IN_PROGRESS"),
    ]
    assert first["iot"]["jobs"][1] == {"jobId": "going", "status": "DELETION_IN_PROGRESS"}
    done = first["iot"]["jobs"][0]
    assert "document" not in done and "documentSource" not in done
    assert (done["jobTemplateArn"], done["documentParameters"]) == (template, {"v": "2"})

    reset(url)
    restore(json.loads(json.dumps(first)), endpoint_url=url, region=REGION)
    again = snapshot(None, endpoint_url=url, region=REGION)
    assert again["iot"]["jobs"] == first["iot"]["jobs"][:1]  # the deleting job counts as deleted
    iot.delete_job(jobId="done")  # COMPLETED: deletable without force
    iot.create_job(jobId="going", targets=[target], document="{}")  # its id is free again


def test_empty_state_round_trips(url: str) -> None:
    first = snapshot(boto3.Session(region_name=REGION), endpoint_url=url, region=REGION)
    assert first == {
        "format_version": FORMAT_VERSION,
        "region": REGION,
        "iot": {"things": [], "thing_groups": [], "jobs": []},
        "iam": {"roles": []},
        "s3": {"buckets": []},
    }
    restore(first, endpoint_url=url, region=REGION)
    assert snapshot(None, endpoint_url=url, region=REGION) == first


def test_restore_refuses_unknown_versions_and_regions(url: str) -> None:
    state = snapshot(None, endpoint_url=url, region=REGION)
    with pytest.raises(ValueError, match="format_version"):
        restore({**state, "format_version": 99}, endpoint_url=url, region=REGION)
    with pytest.raises(ValueError, match="format_version"):
        restore({}, endpoint_url=url, region=REGION)
    with pytest.raises(ValueError, match="region"):
        restore(state, endpoint_url=url, region="eu-west-1")
    with pytest.raises(ValueError, match="account"):
        restore(state, endpoint_url=url, region=REGION, account="210987654321")


def test_restore_needs_the_fake(server_url: str) -> None:
    reset(server_url)
    state = snapshot(None, endpoint_url=server_url, region=REGION)
    with pytest.raises(RuntimeError, match="StrictIotFake"):
        restore(state, endpoint_url=server_url, region=REGION)
