"""Tests for the strict IoT fake (cdk_iot_job_local/iot_fake.py): each stricter behaviour, in-process and over
HTTP; and for what tests/iot_faults.py adds to it: the call log, counters and faults on demand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import types
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.endpoint
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from iot_faults import FaultyIotFake  # tests/ is on sys.path (pyproject: pythonpath)
from moto import mock_aws
from moto.iot.models import FakeJob, IoTBackend
from moto.iot.responses import IoTResponse

from cdk_iot_job_local.iot_fake import StrictIotFake

REGION = "us-east-1"
# The environment of tests/local/conftest.py for each test; server_url is its moto server.
pytestmark = pytest.mark.usefixtures("aws_env")

ACCOUNT = "123456789012"
TARGET = f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/device-1"
NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})


@pytest.fixture
def fake() -> Iterator[FaultyIotFake]:
    """The strict fake, installed, with the call log and faults of :class:`FaultyIotFake`."""
    with FaultyIotFake() as installed:
        yield installed


@pytest.fixture(params=["inproc", "http"])
def mode(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """Yield the endpoint URL to use (None in-process), with fresh moto state."""
    if request.param == "inproc":
        with mock_aws():
            yield None
    else:
        url: str = request.getfixturevalue("server_url")
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")).close()
        yield url


@pytest.fixture
def iot(mode: str | None, fake: FaultyIotFake) -> Any:
    return boto3.client("iot", region_name=REGION, endpoint_url=mode, config=NO_RETRY)


def create(iot: Any, job_id: str, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("targets", [TARGET])
    if "documentSource" not in kwargs and "jobTemplateArn" not in kwargs:
        kwargs.setdefault("document", '{"op": "noop"}')
    return iot.create_job(jobId=job_id, **kwargs)


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def job_arn(job_id: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:iot:{region}:{account}:job/{job_id}"


# ------------------------------------------------------------- CreateJob
def test_new_job_is_in_progress_and_describe_returns_all_create_fields(iot: Any) -> None:
    configs = {
        "presignedUrlConfig": {"roleArn": f"arn:aws:iam::{ACCOUNT}:role/presign", "expiresInSec": 600},
        "jobExecutionsRolloutConfig": {"maximumPerMinute": 5},
        "abortConfig": {
            "criteriaList": [
                {
                    "failureType": "FAILED",
                    "action": "CANCEL",
                    "thresholdPercentage": 50.0,
                    "minNumberOfExecutedThings": 1,
                }
            ]
        },
        "timeoutConfig": {"inProgressTimeoutInMinutes": 30},
        "jobExecutionsRetryConfig": {"criteriaList": [{"failureType": "FAILED", "numberOfRetries": 2}]},
        "schedulingConfig": {"endBehavior": "STOP_ROLLOUT"},
    }
    pkg = f"arn:aws:iot:{REGION}:{ACCOUNT}:package/p/version/1.0"
    created = create(
        iot,
        "job-1",
        description="first",
        namespaceId="AWSIoTDeviceDefender",
        destinationPackageVersions=[pkg],
        **configs,
    )
    assert created["jobArn"] == job_arn("job-1")  # a namespace does not change the ARN

    job = iot.describe_job(jobId="job-1")["job"]
    assert job["status"] == "IN_PROGRESS"
    assert job["jobArn"] == job_arn("job-1")
    assert job["namespaceId"] == "AWSIoTDeviceDefender"
    assert job["destinationPackageVersions"] == [pkg]
    for key, value in configs.items():
        assert job[key] == value, key


def test_create_from_job_template_needs_no_document(iot: Any) -> None:
    template = f"arn:aws:iot:{REGION}:{ACCOUNT}:jobtemplate/tpl"
    create(iot, "from-template", jobTemplateArn=template)
    assert iot.describe_job(jobId="from-template")["job"]["jobTemplateArn"] == template


@pytest.mark.parametrize("job_id", ["bad.id", "a" * 65, "ok-then-bad~"])
def test_job_id_must_match_whole_pattern(iot: Any, job_id: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        create(iot, job_id)
    assert error_of(excinfo) == ("InvalidRequestException", 400)


def test_job_id_of_64_allowed_characters_is_accepted(iot: Any) -> None:
    job_id = ("Az09_-" * 11)[:64]
    assert create(iot, job_id)["jobId"] == job_id


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"document": "{}", "documentSource": "https://s3.amazonaws.com/bucket/doc.json"}],
    ids=["neither", "both"],
)
def test_exactly_one_of_document_and_document_source(iot: Any, kwargs: dict[str, str]) -> None:
    with pytest.raises(ClientError) as excinfo:
        iot.create_job(jobId="doc", targets=[TARGET], **kwargs)
    assert error_of(excinfo) == ("InvalidRequestException", 400)


def test_document_source_alone_is_accepted_and_serves_the_object(iot: Any, mode: str | None) -> None:
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=mode)
    s3.create_bucket(Bucket="bucket")
    s3.put_object(Bucket="bucket", Key="doc.json", Body=b'{"op":"from-s3"}')

    create(iot, "from-s3", documentSource="https://s3.amazonaws.com/bucket/doc.json")

    assert iot.describe_job(jobId="from-s3")["documentSource"] == "https://s3.amazonaws.com/bucket/doc.json"
    assert iot.get_job_document(jobId="from-s3")["document"] == '{"op":"from-s3"}'


def test_document_source_naming_no_object_is_rejected(iot: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        create(iot, "missing-doc", documentSource="https://s3.us-east-1.amazonaws.com/no-bucket/doc.json")
    assert error_of(excinfo) == ("InvalidRequestException", 400)


def test_create_with_existing_id_is_rejected_and_keeps_the_original(iot: Any) -> None:
    create(iot, "dup", description="original")
    with pytest.raises(ClientError) as excinfo:
        create(iot, "dup", description="second")
    assert error_of(excinfo) == ("ResourceAlreadyExistsException", 409)
    assert iot.describe_job(jobId="dup")["job"]["description"] == "original"


# ------------------------------------------------------- unknown job ids
@pytest.mark.parametrize(
    "call",
    [
        lambda iot: iot.describe_job(jobId="missing"),
        lambda iot: iot.update_job(jobId="missing", description="x"),
        lambda iot: iot.delete_job(jobId="missing", force=True),
        lambda iot: iot.cancel_job(jobId="missing"),
        lambda iot: iot.list_tags_for_resource(resourceArn=job_arn("missing")),
        lambda iot: iot.tag_resource(resourceArn=job_arn("missing"), tags=[{"Key": "k", "Value": "v"}]),
        lambda iot: iot.untag_resource(resourceArn=job_arn("missing"), tagKeys=["k"]),
    ],
    ids=["describe", "update", "delete", "cancel", "list_tags", "tag", "untag"],
)
def test_unknown_job_is_resource_not_found(iot: Any, call: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        call(iot)
    assert error_of(excinfo) == ("ResourceNotFoundException", 404)


# -------------------------------------------------------------- UpdateJob
def test_update_job_changes_updatable_fields_and_bumps_last_updated(iot: Any) -> None:
    create(iot, "upd", description="before", timeoutConfig={"inProgressTimeoutInMinutes": 10})
    before = iot.describe_job(jobId="upd")["job"]

    updates = {
        "description": "after",
        "presignedUrlConfig": {"roleArn": f"arn:aws:iam::{ACCOUNT}:role/presign", "expiresInSec": 120},
        "jobExecutionsRolloutConfig": {"maximumPerMinute": 7},
        "abortConfig": {
            "criteriaList": [
                {
                    "failureType": "ALL",
                    "action": "CANCEL",
                    "thresholdPercentage": 10.0,
                    "minNumberOfExecutedThings": 3,
                }
            ]
        },
        "timeoutConfig": {"inProgressTimeoutInMinutes": 20},
        "jobExecutionsRetryConfig": {"criteriaList": [{"failureType": "TIMED_OUT", "numberOfRetries": 1}]},
    }
    assert iot.update_job(jobId="upd", **updates)["ResponseMetadata"]["HTTPStatusCode"] == 200

    after = iot.describe_job(jobId="upd")["job"]
    for key, value in updates.items():
        assert after[key] == value, key
    assert after["lastUpdatedAt"] > before["lastUpdatedAt"]
    assert after["createdAt"] == before["createdAt"]
    assert after["targets"] == before["targets"]


def test_update_job_leaves_omitted_fields_unchanged(iot: Any) -> None:
    create(iot, "partial", description="keep", timeoutConfig={"inProgressTimeoutInMinutes": 10})
    iot.update_job(jobId="partial", jobExecutionsRolloutConfig={"maximumPerMinute": 3})
    job = iot.describe_job(jobId="partial")["job"]
    assert job["description"] == "keep"
    assert job["timeoutConfig"] == {"inProgressTimeoutInMinutes": 10}
    assert job["jobExecutionsRolloutConfig"] == {"maximumPerMinute": 3}


# ---------------------------------------------------------- Delete/Cancel
def test_delete_of_running_job_needs_force(iot: Any) -> None:
    create(iot, "running")
    with pytest.raises(ClientError) as excinfo:
        iot.delete_job(jobId="running")
    assert error_of(excinfo) == ("InvalidStateTransitionException", 409)
    assert iot.describe_job(jobId="running")["job"]["status"] == "IN_PROGRESS"


def test_cancel_keeps_reason_and_then_delete_needs_no_force(iot: Any) -> None:
    create(iot, "cxl")
    iot.cancel_job(jobId="cxl", reasonCode="STACK_DELETE", comment="bye", force=True)
    job = iot.describe_job(jobId="cxl")["job"]
    assert (job["status"], job["reasonCode"], job["comment"], job["forceCanceled"]) == (
        "CANCELED",
        "STACK_DELETE",
        "bye",
        True,
    )
    iot.delete_job(jobId="cxl")
    assert iot.describe_job(jobId="cxl")["job"]["status"] == "DELETION_IN_PROGRESS"


def test_delete_is_asynchronous_and_blocks_the_id_until_done(iot: Any) -> None:
    arn = create(iot, "async", tags=[{"Key": "team", "Value": "a"}])["jobArn"]
    iot.delete_job(jobId="async", force=True)

    # While deleting: the id cannot be reused, and the job cannot change.
    with pytest.raises(ClientError) as excinfo:
        create(iot, "async")
    assert error_of(excinfo) == ("ResourceAlreadyExistsException", 409)
    for call in (
        lambda: iot.cancel_job(jobId="async"),
        lambda: iot.delete_job(jobId="async", force=True),
        lambda: iot.update_job(jobId="async", description="x"),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_of(excinfo) == ("InvalidStateTransitionException", 409)
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "team", "Value": "a"}]

    # deletion_polls=2: two DescribeJob calls see it, then it is gone.
    assert iot.describe_job(jobId="async")["job"]["status"] == "DELETION_IN_PROGRESS"
    assert iot.describe_job(jobId="async")["job"]["status"] == "DELETION_IN_PROGRESS"
    with pytest.raises(ClientError) as excinfo:
        iot.describe_job(jobId="async")
    assert error_of(excinfo) == ("ResourceNotFoundException", 404)

    # The id is free again, and the old tags went with the old job.
    create(iot, "async")
    assert iot.describe_job(jobId="async")["job"]["status"] == "IN_PROGRESS"
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == []


def test_zero_deletion_polls_deletes_immediately(iot: Any, fake: FaultyIotFake) -> None:
    fake.deletion_polls = 0
    create(iot, "now")
    iot.delete_job(jobId="now", force=True)
    with pytest.raises(ClientError) as excinfo:
        iot.describe_job(jobId="now")
    assert error_of(excinfo) == ("ResourceNotFoundException", 404)


def test_at_most_ten_jobs_deleting_at_once(iot: Any) -> None:
    for i in range(11):
        create(iot, f"bulk-{i}")
    for i in range(10):
        iot.delete_job(jobId=f"bulk-{i}", force=True)
    with pytest.raises(ClientError) as excinfo:
        iot.delete_job(jobId="bulk-10", force=True)
    assert error_of(excinfo) == ("LimitExceededException", 410)
    assert iot.describe_job(jobId="bulk-10")["job"]["status"] == "IN_PROGRESS"

    # Finishing one deletion frees a slot.
    iot.describe_job(jobId="bulk-0")
    iot.describe_job(jobId="bulk-0")
    iot.delete_job(jobId="bulk-10", force=True)
    assert iot.describe_job(jobId="bulk-10")["job"]["status"] == "DELETION_IN_PROGRESS"


# ------------------------------------------------------------------- Tags
def test_tags_on_create_and_tag_untag_list(iot: Any) -> None:
    arn = create(iot, "tagged", tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])["jobArn"]
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"Key": "a", "Value": "1"},
        {"Key": "b", "Value": "2"},
    ]
    iot.tag_resource(resourceArn=arn, tags=[{"Key": "b", "Value": "20"}, {"Key": "c", "Value": "3"}])
    iot.untag_resource(resourceArn=arn, tagKeys=["a", "not-there"])
    tags = iot.list_tags_for_resource(resourceArn=arn)["tags"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("b", "20"), ("c", "3")]


def test_at_most_fifty_tags(iot: Any) -> None:
    arn = create(iot, "many", tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])["jobArn"]
    with pytest.raises(ClientError) as excinfo:
        iot.tag_resource(resourceArn=arn, tags=[{"Key": "one-more", "Value": "v"}])
    assert error_of(excinfo) == ("LimitExceededException", 410)
    assert len(iot.list_tags_for_resource(resourceArn=arn)["tags"]) == 50
    with pytest.raises(ClientError) as excinfo:
        create(iot, "too-many", tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)])
    assert error_of(excinfo) == ("LimitExceededException", 410)


# -------------------------------------------------------- fault injection
@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ThrottlingException", 429),
        ("ServiceUnavailableException", 503),
        ("LimitExceededException", 410),
        ("InternalFailureException", 500),
    ],
)
def test_fail_next_returns_real_error_responses(iot: Any, fake: FaultyIotFake, code: str, status: int) -> None:
    fake.fail_next("CreateJob", code, times=2, message="injected")
    for _ in range(2):
        with pytest.raises(ClientError) as excinfo:
            create(iot, "faulty")
        assert error_of(excinfo) == (code, status)
        assert excinfo.value.response["Error"]["Message"] == "injected"
    create(iot, "faulty")  # the third call runs normally
    assert fake.count("CreateJob", "faulty") == 3


def test_fail_next_with_explicit_status_on_each_operation(iot: Any, fake: FaultyIotFake) -> None:
    arn = create(iot, "ops")["jobArn"]
    calls = {
        "UpdateJob": lambda: iot.update_job(jobId="ops", description="d"),
        "DescribeJob": lambda: iot.describe_job(jobId="ops"),
        "CancelJob": lambda: iot.cancel_job(jobId="ops"),
        "DeleteJob": lambda: iot.delete_job(jobId="ops", force=True),
        "TagResource": lambda: iot.tag_resource(resourceArn=arn, tags=[{"Key": "k", "Value": "v"}]),
        "UntagResource": lambda: iot.untag_resource(resourceArn=arn, tagKeys=["k"]),
        "ListTagsForResource": lambda: iot.list_tags_for_resource(resourceArn=arn),
    }
    for operation, call in calls.items():
        fake.fail_next(operation, "AccessDeniedException", status=403)
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_of(excinfo) == ("AccessDeniedException", 403), operation
    # Nothing ran: the job is untouched.
    assert iot.describe_job(jobId="ops")["job"]["status"] == "IN_PROGRESS"


def test_standard_retry_mode_retries_injected_throttles(
    mode: str | None, fake: FaultyIotFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    # botocore sleeps between attempts via botocore.endpoint.time.sleep; record instead.
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=sleeps.append))
    standard = Config(retries={"mode": "standard", "max_attempts": 8})
    client = boto3.client("iot", region_name=REGION, endpoint_url=mode, config=standard)
    fake.fail_next("CreateJob", "ThrottlingException", times=3)
    response = client.create_job(jobId="retried", targets=[TARGET], document="{}")
    assert response["ResponseMetadata"]["RetryAttempts"] == 3
    assert len(sleeps) == 3
    assert fake.count("CreateJob", "retried") == 4

    fake.fail_next("DescribeJob", "ServiceUnavailableException", times=2)
    assert client.describe_job(jobId="retried")["job"]["status"] == "IN_PROGRESS"
    assert fake.count("DescribeJob") == 3


def test_fail_next_rejects_unknown_names(fake: FaultyIotFake) -> None:
    with pytest.raises(ValueError):
        fake.fail_next("ListJobs", "ThrottlingException")
    with pytest.raises(ValueError):
        fake.fail_next("CreateJob", "SomeNewException")  # no default status
    with pytest.raises(ValueError):
        fake.fail_next("CreateJob", "ThrottlingException", times=0)


# ------------------------------------------------------ call log and reset
def test_calls_are_recorded_in_order_and_reset_clears_them(iot: Any, fake: FaultyIotFake) -> None:
    arn = create(iot, "logged")["jobArn"]
    iot.tag_resource(resourceArn=arn, tags=[{"Key": "k", "Value": "v"}])
    iot.describe_job(jobId="logged")
    with pytest.raises(ClientError):
        iot.cancel_job(jobId="other")
    assert fake.calls == [
        ("CreateJob", "logged"),
        ("TagResource", arn),
        ("DescribeJob", "logged"),
        ("CancelJob", "other"),
    ]
    assert fake.count("DeleteJob", "logged") == 0

    fake.fail_next("DescribeJob", "ThrottlingException")
    fake.reset()
    assert fake.calls == []
    assert iot.describe_job(jobId="logged")["job"]["jobId"] == "logged"  # fault was cleared


def test_concurrent_creates_of_one_id_only_one_wins(iot: Any) -> None:
    # boto3 clients are thread-safe; the server handles each request on its own thread.
    outcomes: list[str] = []

    def attempt() -> None:
        try:
            create(iot, "race")
            outcomes.append("created")
        except ClientError as err:
            outcomes.append(err.response["Error"]["Code"])

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ResourceAlreadyExistsException"] * 7 + ["created"]


# ------------------------------------------------- accounts and regions
def test_state_is_per_account_and_region(fake: FaultyIotFake) -> None:
    with mock_aws():
        home = boto3.client("iot", region_name=REGION, config=NO_RETRY)
        eu = boto3.client("iot", region_name="eu-west-1", config=NO_RETRY)
        creds = boto3.client("sts", region_name=REGION).assume_role(
            RoleArn="arn:aws:iam::111111111111:role/other", RoleSessionName="tests"
        )["Credentials"]
        other = boto3.client(
            "iot",
            region_name=REGION,
            config=NO_RETRY,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
        clients = {"home": home, "eu": eu, "other": other}
        arns = {name: create(client, "same-id")["jobArn"] for name, client in clients.items()}
        assert arns == {
            "home": job_arn("same-id"),
            "eu": job_arn("same-id", region="eu-west-1"),
            "other": job_arn("same-id", account="111111111111"),
        }
        fake.deletion_polls = 0
        home.delete_job(jobId="same-id", force=True)
        assert eu.describe_job(jobId="same-id")["job"]["status"] == "IN_PROGRESS"
        assert other.describe_job(jobId="same-id")["job"]["status"] == "IN_PROGRESS"
        with pytest.raises(ClientError) as excinfo:
            other.list_tags_for_resource(resourceArn=arns["home"])  # another account's ARN
        assert error_of(excinfo) == ("ResourceNotFoundException", 404)


def test_a_rename_at_fifty_tags_must_untag_first(iot: Any) -> None:
    # GIVEN a job with IoT's maximum of 50 tags
    arn = create(iot, "full", tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])["jobArn"]

    # WHEN a key is renamed by tagging the new key first, THEN the 51st key is refused and nothing changes
    with pytest.raises(ClientError) as excinfo:
        iot.tag_resource(resourceArn=arn, tags=[{"Key": "renamed", "Value": "v"}])
    assert error_of(excinfo) == ("LimitExceededException", 410)
    assert {t["Key"] for t in iot.list_tags_for_resource(resourceArn=arn)["tags"]} == {f"k{i}" for i in range(50)}

    # WHEN the old key is untagged first, THEN the new one fits; overwriting an existing key never counts
    iot.untag_resource(resourceArn=arn, tagKeys=["k0"])
    iot.tag_resource(resourceArn=arn, tags=[{"Key": "renamed", "Value": "v"}, {"Key": "k1", "Value": "w"}])
    tags = {t["Key"]: t["Value"] for t in iot.list_tags_for_resource(resourceArn=arn)["tags"]}
    assert len(tags) == 50 and "k0" not in tags and tags["renamed"] == "v" and tags["k1"] == "w"


# ------------------------------------------------------------- createdAt
def test_describe_job_returns_created_at_which_later_changes_keep(iot: Any) -> None:
    import datetime

    before = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=5)
    arn = create(iot, "dated")["jobArn"]
    created = iot.describe_job(jobId="dated")["job"]["createdAt"]
    assert isinstance(created, datetime.datetime) and created >= before
    iot.update_job(jobId="dated", description="later")
    iot.tag_resource(resourceArn=arn, tags=[{"Key": "k", "Value": "v"}])
    iot.cancel_job(jobId="dated")
    job = iot.describe_job(jobId="dated")["job"]
    assert job["createdAt"] == created and job["lastUpdatedAt"] >= created


# --------------------------------------------------------------- targets
def test_targets_must_exist_in_the_jobs_account_and_region_when_checked(iot: Any, fake: FaultyIotFake) -> None:
    # GIVEN the target check (the local engine's setting), a thing and a thing group
    fake.check_targets = True
    thing = iot.create_thing(thingName="device-1")["thingArn"]
    group = iot.create_thing_group(thingGroupName="fleet")["thingGroupArn"]

    # THEN a job for them is created
    assert create(iot, "ok", targets=[thing, group])["jobArn"] == job_arn("ok")

    # ... and one naming a thing that does not exist, or another region's or account's, is not
    missing = [
        f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/nobody",
        f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/nothing",
        f"arn:aws:iot:eu-west-1:{ACCOUNT}:thing/device-1",
        f"arn:aws:iot:{REGION}:111111111111:thing/device-1",
    ]
    for index, target in enumerate(missing):
        with pytest.raises(ClientError) as excinfo:
            create(iot, f"missing-{index}", targets=[thing, target])
        assert error_of(excinfo) == ("ResourceNotFoundException", 404), target
        assert target in excinfo.value.response["Error"]["Message"]
    # ... a target that is no thing or group ARN at all is an invalid request
    with pytest.raises(ClientError) as excinfo:
        create(iot, "malformed", targets=["arn:aws:s3:::bucket/thing/x"])
    assert error_of(excinfo) == ("InvalidRequestException", 400)
    # ... no job was made for any of them
    assert [job["jobId"] for job in iot.list_jobs()["jobs"]] == ["ok"]

    # ... and a job stays when its target is deleted later, as in IoT
    iot.delete_thing(thingName="device-1")
    assert iot.describe_job(jobId="ok")["job"]["targets"] == [thing, group]


def test_targets_are_not_checked_by_default(iot: Any, fake: FaultyIotFake) -> None:
    assert fake.check_targets is False
    assert create(iot, "unchecked", targets=[TARGET])["jobArn"] == job_arn("unchecked")


# ---------------------------------------------------- separate process
CHILD = r"""
import json, boto3
from botocore.exceptions import ClientError
iot = boto3.client("iot", region_name="us-east-1")
out = {}
arn = iot.create_job(jobId="child", targets=["arn:aws:iot:us-east-1:123456789012:thing/t"],
                     document="{}", tags=[{"Key": "k", "Value": "v"}])["jobArn"]
try:
    iot.create_job(jobId="child", targets=["arn:aws:iot:us-east-1:123456789012:thing/t"], document="{}")
except ClientError as e:
    out["duplicate"] = e.response["Error"]["Code"]
iot.update_job(jobId="child", description="updated")
out["description"] = iot.describe_job(jobId="child")["job"]["description"]
out["tags"] = iot.list_tags_for_resource(resourceArn=arn)["tags"]
iot.delete_job(jobId="child", force=True)
out["statuses"] = [iot.describe_job(jobId="child")["job"]["status"] for _ in range(2)]
try:
    iot.describe_job(jobId="child")
except ClientError as e:
    out["after"] = e.response["Error"]["Code"]
print(json.dumps(out))
"""


def test_separate_process_over_http_sees_the_strict_behaviour(server_url: str, fake: FaultyIotFake) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{server_url}/moto-api/reset", method="POST")).close()
    env = {**os.environ, "AWS_ENDPOINT_URL": server_url}
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "duplicate": "ResourceAlreadyExistsException",
        "description": "updated",
        "tags": [{"Key": "k", "Value": "v"}],
        "statuses": ["DELETION_IN_PROGRESS", "DELETION_IN_PROGRESS"],
        "after": "ResourceNotFoundException",
    }
    assert fake.count("DeleteJob", "child") == 1


# ------------------------------------------------------- install/uninstall
def test_uninstall_restores_moto_and_reinstall_works() -> None:
    patched = ("create_job", "describe_job", "delete_job", "cancel_job")
    originals = {name: IoTResponse.__dict__.get(name) for name in patched}
    backend_create, job_regex = IoTBackend.__dict__["create_job"], FakeJob.JOB_ID_REGEX
    fake = StrictIotFake()
    with mock_aws():
        iot = boto3.client("iot", region_name=REGION, config=NO_RETRY)
        for _ in range(2):  # install, uninstall, install again
            with fake:
                create(iot, "cycle")
                with pytest.raises(ClientError):
                    create(iot, "cycle")
                iot.delete_job(jobId="cycle", force=True)
                iot.describe_job(jobId="cycle")
                iot.describe_job(jobId="cycle")
            assert not fake.installed

            # moto's own behaviour again: QUEUED, duplicate overwrites, no UpdateJob/tags.
            create(iot, "loose", description="one")
            create(iot, "loose", description="two")
            job = iot.describe_job(jobId="loose")["job"]
            assert (job["status"], job["description"]) == ("QUEUED", "two")
            iot.delete_job(jobId="loose")
    for name, original in originals.items():
        assert IoTResponse.__dict__.get(name) is original
    for name in ("update_job", "tag_resource", "untag_resource", "list_tags_for_resource"):
        assert name not in IoTResponse.__dict__ and name not in IoTBackend.__dict__
    assert IoTBackend.__dict__["create_job"] is backend_create
    assert FakeJob.JOB_ID_REGEX is job_regex


def test_only_one_fake_at_a_time(fake: FaultyIotFake) -> None:
    with pytest.raises(RuntimeError):
        StrictIotFake().install()
    assert fake.install() is fake  # installing the active one again is a no-op


# ------------------------------------------------ fail_fraction and stats
def _seeded_failures(seed: int, fraction: float, calls: int) -> list[bool]:
    """Which of ``calls`` calls a ``fail_fraction(..., fraction, seed=seed)`` rule fails, in order."""
    import random  # appended section: imports stay local to it

    draws = random.Random(seed)
    return [draws.random() < fraction for _ in range(calls)]


def _code_and_status(error: ClientError) -> tuple[str, int]:
    return error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]


def test_fail_fraction_fails_the_calls_its_seeded_stream_picks(iot: Any, fake: FaultyIotFake) -> None:
    arn = create(iot, "fraction")["jobArn"]
    fake.reset()
    # One rule over two operations: they draw from one stream, call by call.
    fake.fail_fraction(["DescribeJob", "ListTagsForResource"], "ThrottlingException", 0.3, seed=7, message="busy")
    failed: list[bool] = []
    for index in range(120):
        try:
            if index % 2:
                iot.list_tags_for_resource(resourceArn=arn)
            else:
                iot.describe_job(jobId="fraction")
            failed.append(False)
        except ClientError as error:
            assert error.response["Error"]["Message"] == "busy"
            assert _code_and_status(error) == ("ThrottlingException", 429)
            failed.append(True)
    assert failed == _seeded_failures(7, 0.3, 120)
    assert 20 < sum(failed) < 60  # about 30% of 120

    stats = fake.stats()
    describe, list_tags = stats["DescribeJob"], stats["ListTagsForResource"]
    assert (describe.attempts, list_tags.attempts) == (60, 60)
    assert describe.injected == sum(failed[0::2]) and list_tags.injected == sum(failed[1::2])
    assert describe.errors == {"ThrottlingException": describe.injected}
    # Without retries, every request is an invocation of its own.
    assert describe.invocations == 60 and describe.attempts_per_invocation == 1.0
    iot.update_job(jobId="fraction", description="not covered by the rule")  # other operations run normally


def test_fail_fraction_decides_per_call_however_many_threads_call(server_url: str, fake: FaultyIotFake) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{server_url}/moto-api/reset", method="POST")).close()
    client = boto3.client("iot", region_name=REGION, endpoint_url=server_url, config=NO_RETRY)
    create(client, "threads")
    fake.reset()
    fake.fail_fraction("DescribeJob", "ServiceUnavailableException", 0.25, seed=11)
    outcomes: list[str] = []
    lock = threading.Lock()

    def describe_repeatedly() -> None:
        # boto3 clients are thread-safe; each request gets its own server thread.
        for _ in range(25):
            try:
                client.describe_job(jobId="threads")
                outcome = "ok"
            except ClientError as error:
                outcome = _code_and_status(error)[0]
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=describe_repeatedly) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # The interleaving varies from run to run; the number of faults does not.
    expected = sum(_seeded_failures(11, 0.25, 200))
    assert outcomes.count("ServiceUnavailableException") == expected
    assert outcomes.count("ok") == 200 - expected
    stats = fake.stats()["DescribeJob"]
    assert (stats.attempts, stats.injected) == (200, expected)
    assert stats.errors == {"ServiceUnavailableException": expected}


def test_fail_fraction_retried_by_botocore_counts_attempts_per_invocation(
    mode: str | None, fake: FaultyIotFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=sleeps.append))
    # Enough attempts that no call runs out of them with this seed's stream.
    client = boto3.client(
        "iot", region_name=REGION, endpoint_url=mode, config=Config(retries={"mode": "standard", "max_attempts": 20})
    )
    fake.fail_fraction("CreateJob", "ThrottlingException", 0.5, seed=3)
    for index in range(30):
        create(client, f"retried-{index}")
    stats = fake.stats()["CreateJob"]
    assert stats.invocations == 30  # botocore keeps amz-sdk-invocation-id across retries
    assert stats.attempts == 30 + stats.injected == 30 + len(sleeps)
    assert stats.attempts_per_invocation == stats.attempts / 30 > 1.0
    assert fake.count("CreateJob") == stats.attempts


def test_stats_count_the_fakes_own_errors_apart_from_injected_ones(iot: Any, fake: FaultyIotFake) -> None:
    for index in range(11):
        create(iot, f"deleting-{index}")
    for index in range(10):
        iot.delete_job(jobId=f"deleting-{index}", force=True)
    with pytest.raises(ClientError) as excinfo:
        iot.delete_job(jobId="deleting-10", force=True)
    assert error_of(excinfo) == ("LimitExceededException", 410)
    fake.fail_next("DeleteJob", "ThrottlingException")
    with pytest.raises(ClientError):
        iot.delete_job(jobId="deleting-10", force=True)

    delete = fake.stats()["DeleteJob"]
    assert (delete.attempts, delete.invocations, delete.injected) == (12, 12, 1)
    assert delete.errors == {"LimitExceededException": 1, "ThrottlingException": 1}
    assert fake.stats()["CreateJob"].errors == {}
    fake.reset()
    assert fake.stats() == {}


def test_fail_fraction_zero_removes_the_rule_and_fail_next_comes_first(iot: Any, fake: FaultyIotFake) -> None:
    create(iot, "ordered")
    fake.fail_fraction(["DescribeJob", "CancelJob"], "ThrottlingException", 1.0, seed=0)
    fake.fail_next("DescribeJob", "InternalFailureException")
    with pytest.raises(ClientError) as excinfo:
        iot.describe_job(jobId="ordered")
    assert error_of(excinfo) == ("InternalFailureException", 500)  # the queued fault, not a draw
    with pytest.raises(ClientError) as excinfo:
        iot.describe_job(jobId="ordered")
    assert error_of(excinfo) == ("ThrottlingException", 429)

    fake.fail_fraction("DescribeJob", "ThrottlingException", 0.0, seed=0)
    assert iot.describe_job(jobId="ordered")["job"]["status"] == "IN_PROGRESS"
    with pytest.raises(ClientError):
        iot.cancel_job(jobId="ordered")  # CancelJob keeps its rule
    fake.reset()
    assert iot.cancel_job(jobId="ordered")["jobId"] == "ordered"  # reset drops every rule


def test_fail_fraction_rejects_bad_arguments(fake: FaultyIotFake) -> None:
    with pytest.raises(ValueError):
        fake.fail_fraction("ListJobs", "ThrottlingException", 0.5, seed=1)
    with pytest.raises(ValueError):
        fake.fail_fraction([], "ThrottlingException", 0.5, seed=1)
    with pytest.raises(ValueError):
        fake.fail_fraction("CreateJob", "ThrottlingException", 1.5, seed=1)
    with pytest.raises(ValueError):
        fake.fail_fraction("CreateJob", "SomeNewException", 0.5, seed=1)  # no default status
    fake.fail_fraction("CreateJob", "SomeNewException", 0.5, seed=1, status=418)
