"""The provider handler, event by event, against moto and the strict IoT fake.

Every test reads the one response CloudFormation would receive at the event's
ResponseURL (a local HTTPS endpoint) and the job as IoT holds it.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cfn_events import event, sample_properties
from cfn_faults import FaultyCloudFormationEndpoint
from in_process import Cfn, LambdaContext
from job_arns import arn, job_id_of

from cdk_iot_job_provider import handler, lifecycle
from cdk_iot_job_provider.ownership import Owner, generated_job_id
from cdk_iot_job_provider.response import ResponseSender

GROUP = "arn:aws:iot:us-east-1:123456789012:thinggroup/sensors"
OTHER_GROUP = "arn:aws:iot:us-east-1:123456789012:thinggroup/gateways"


@pytest.fixture
def cfn(aws: Any, cfn_endpoint: FaultyCloudFormationEndpoint) -> Cfn:
    return Cfn(cfn_endpoint, aws.dependencies)


def props(**changes: Any) -> dict[str, Any]:
    """The sample properties with some replaced (``None`` removes one)."""
    result = sample_properties()
    for name, value in changes.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def iso_millis(value: datetime) -> str:
    """``CreatedAt`` as the provider documents it: ISO 8601 UTC with milliseconds."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job(aws: Any, job_id: str) -> dict[str, Any]:
    return dict(aws.iot.describe_job(jobId=job_id)["job"])


def tags_of(aws: Any, job_id: str) -> dict[str, str]:
    arn = job(aws, job_id)["jobArn"]
    return {tag["Key"]: tag["Value"] for tag in aws.iot.list_tags_for_resource(resourceArn=arn)["tags"]}


def assert_gone(aws: Any, job_id: str) -> None:
    with pytest.raises(ClientError) as error:
        aws.iot.describe_job(jobId=job_id)
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"


def foreign_job(aws: Any, job_id: str) -> None:
    """A job someone else created, outside any stack."""
    aws.iot.create_job(jobId=job_id, targets=[GROUP], document='{"owner":"someone else"}')


# --- Create ---------------------------------------------------------------


def test_create_makes_the_job_with_string_scalars_converted(cfn: Cfn, aws: Any) -> None:
    response = cfn.create(props())

    assert response["Status"] == "SUCCESS"
    job_id = job_id_of(response)
    created = job(aws, job_id)
    assert created["status"] == "IN_PROGRESS"
    assert created["targets"] == [GROUP]
    assert created["description"] == "Sensor firmware 2.4.1"
    assert created["jobExecutionsRolloutConfig"] == {"maximumPerMinute": 50}
    assert aws.iot.get_job_document(jobId=job_id)["document"] == sample_properties()["Document"]
    assert response["PhysicalResourceId"] == created["jobArn"] == arn(job_id)
    assert response["Data"] == {
        "JobId": job_id,
        "Arn": created["jobArn"],
        "CreatedAt": iso_millis(created["createdAt"]),
    }


def test_create_without_job_id_generates_a_valid_id_naming_stack_and_resource(cfn: Cfn) -> None:
    response = cfn.create(props(), logical_id="FirmwareRollout76BDADD9")

    job_id = job_id_of(response)
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", job_id)
    assert job_id.startswith("FleetStack-FirmwareRollout76BDADD9-")


def test_generated_id_fits_64_characters_for_long_names() -> None:
    owner = Owner(
        "arn:aws:cloudformation:us-east-1:123456789012:stack/" + "S" * 128 + "/5b8f2a40",
        "L" * 255,
        str(uuid.uuid4()),
    )
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", generated_job_id(owner))


def test_redelivered_create_finds_its_own_job_instead_of_making_a_second(cfn: Cfn, aws: Any) -> None:
    request_id = str(uuid.uuid4())
    first = cfn.create(props(), request_id=request_id)
    second = cfn.create(props(), request_id=request_id)

    assert first["Status"] == second["Status"] == "SUCCESS"
    assert first["PhysicalResourceId"] == second["PhysicalResourceId"]
    assert [j["jobId"] for j in aws.iot.list_jobs()["jobs"]] == [job_id_of(first)]


def test_create_with_a_fixed_job_id_uses_it(cfn: Cfn, aws: Any) -> None:
    response = cfn.create(props(JobId="firmware-2_4_1"))

    assert response["PhysicalResourceId"] == arn("firmware-2_4_1")
    assert job(aws, "firmware-2_4_1")["status"] == "IN_PROGRESS"


def test_create_tags_the_job_with_user_tags_and_ownership(cfn: Cfn, aws: Any) -> None:
    response = cfn.create(props())

    tags = tags_of(aws, job_id_of(response))
    assert tags["team"] == "firmware"
    assert tags["cdk-iot-job:stack-id"].startswith("arn:aws:cloudformation:us-east-1:123456789012:stack/FleetStack/")
    assert tags["cdk-iot-job:logical-id"] == "FirmwareRollout76BDADD9"
    assert "cdk-iot-job:request-id" in tags


def test_create_over_a_job_id_someone_else_owns_fails_and_never_touches_it(cfn: Cfn, aws: Any) -> None:
    # GIVEN a job created outside the stack
    foreign_job(aws, "shared-id")
    # WHEN the stack creates a job with the same fixed JobId, then rolls back
    response = cfn.create(props(JobId="shared-id"))
    rollback = cfn.send("Delete", props(JobId="shared-id"), physical_id=response["PhysicalResourceId"])
    # THEN the Create fails clearly, the rollback succeeds, and the job survives
    assert response["Status"] == "FAILED"
    assert "JobId 'shared-id' already exists" in response["Reason"]
    assert rollback["Status"] == "SUCCESS"
    assert job(aws, "shared-id")["status"] == "IN_PROGRESS"
    assert aws.iot.get_job_document(jobId="shared-id")["document"] == '{"owner":"someone else"}'
    assert aws.fake.count("DeleteJob") == aws.fake.count("CancelJob") == aws.fake.count("UpdateJob") == 0


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"JobId": "bad id!"}, "JobId 'bad id!' must match"),
        ({"Targets": []}, "Targets must have at least 1"),
        ({"JobExecutionsRolloutConfig": {"MaximumPerMinute": "0"}}, "JobExecutionsRolloutConfig.MaximumPerMinute '0'"),
        (
            {"JobExecutionsRolloutConfig": {"MaximumPerMinute": "fifty"}},
            "MaximumPerMinute 'fifty' must be a whole number",
        ),
        ({"Colour": "blue"}, "Colour is not a supported property"),
        ({"Document": None}, "one of Document or DocumentSource is required"),
        ({"TargetSelection": "SOMETIMES"}, "TargetSelection 'SOMETIMES' must be one of"),
    ],
)
def test_create_with_an_invalid_property_fails_naming_it(
    cfn: Cfn, aws: Any, changes: dict[str, Any], named: str
) -> None:
    response = cfn.create(props(**changes))

    assert response["Status"] == "FAILED"
    assert named in response["Reason"]
    assert aws.fake.count("CreateJob") == 0


def test_failed_create_then_rollback_delete_succeeds(cfn: Cfn, aws: Any) -> None:
    bad = props(JobExecutionsRolloutConfig={"MaximumPerMinute": "0"})
    response = cfn.create(bad)
    rollback = cfn.send("Delete", bad, physical_id=response["PhysicalResourceId"])

    assert response["Status"] == "FAILED"
    assert rollback["Status"] == "SUCCESS"
    assert aws.fake.count("DeleteJob") == 0


@pytest.mark.parametrize("error_code", ["ThrottlingException", "ServiceUnavailableException"])
def test_create_rides_out_several_transient_faults_in_a_row(cfn: Cfn, aws: Any, error_code: str) -> None:
    aws.fake.fail_next("CreateJob", error_code, times=3)

    response = cfn.create(props())

    assert response["Status"] == "SUCCESS"
    assert aws.fake.count("CreateJob") == 4
    assert len(aws.retry_sleeps.delays) == 3


def test_create_waits_for_a_deleting_job_with_the_same_id_then_creates(cfn: Cfn, aws: Any) -> None:
    # GIVEN a job with the wanted id that is being deleted
    foreign_job(aws, "reused-id")
    aws.iot.delete_job(jobId="reused-id", force=True)
    # WHEN the stack creates a job with that id
    response = cfn.create(props(JobId="reused-id"))
    # THEN it waits for the deletion and creates its own
    assert response["Status"] == "SUCCESS"
    assert tags_of(aws, "reused-id")["cdk-iot-job:logical-id"] == "FirmwareRollout76BDADD9"


# --- Update ---------------------------------------------------------------


def created(cfn: Cfn, properties: dict[str, Any]) -> str:
    response = cfn.create(properties)
    assert response["Status"] == "SUCCESS"
    return job_id_of(response)


def test_update_of_updatable_properties_changes_the_job_in_place(cfn: Cfn, aws: Any) -> None:
    old = props()
    job_id = created(cfn, old)
    new = props(Description="Sensor firmware 2.4.1, slower", JobExecutionsRolloutConfig={"MaximumPerMinute": "10"})

    response = cfn.send("Update", new, physical_id=arn(job_id), old_properties=old)

    assert response["Status"] == "SUCCESS"
    assert response["PhysicalResourceId"] == arn(job_id)
    assert response["Data"]["JobId"] == job_id
    updated = job(aws, job_id)
    assert updated["description"] == "Sensor firmware 2.4.1, slower"
    assert updated["jobExecutionsRolloutConfig"] == {"maximumPerMinute": 10}
    assert aws.fake.count("CreateJob") == 1


def test_update_of_tags_retags_in_place_and_keeps_ownership(cfn: Cfn, aws: Any) -> None:
    old = props()
    job_id = created(cfn, old)
    new = props(Tags=[{"Key": "stage", "Value": "canary"}])

    response = cfn.send("Update", new, physical_id=arn(job_id), old_properties=old)

    assert response["PhysicalResourceId"] == arn(job_id)
    tags = tags_of(aws, job_id)
    assert tags["stage"] == "canary"
    assert "team" not in tags
    assert tags["cdk-iot-job:logical-id"] == "FirmwareRollout76BDADD9"
    assert aws.fake.count("UpdateJob") == 0


def test_update_of_a_create_only_property_with_generated_id_replaces_the_job(cfn: Cfn, aws: Any) -> None:
    old = props()
    old_id = created(cfn, old)
    new = props(Targets=[OTHER_GROUP])

    response = cfn.send("Update", new, physical_id=arn(old_id), old_properties=old)
    cleanup = cfn.send("Delete", old, physical_id=arn(old_id))

    new_id = job_id_of(response)
    assert response["Status"] == "SUCCESS"
    assert new_id != old_id
    assert job(aws, new_id)["targets"] == [OTHER_GROUP]
    assert cleanup["Status"] == "SUCCESS"
    assert_gone(aws, old_id)


def test_update_of_a_create_only_property_with_a_fixed_id_fails_before_touching_anything(cfn: Cfn, aws: Any) -> None:
    old = props(JobId="fixed-job")
    created(cfn, old)
    aws.fake.reset()

    response = cfn.send(
        "Update", props(JobId="fixed-job", Targets=[OTHER_GROUP]), physical_id=arn("fixed-job"), old_properties=old
    )

    assert response["Status"] == "FAILED"
    assert "Targets" in response["Reason"]
    assert "new JobId" in response["Reason"]
    assert response["PhysicalResourceId"] == arn("fixed-job")
    writes = {"CreateJob", "UpdateJob", "DeleteJob", "CancelJob", "TagResource", "UntagResource"}
    assert not [call for call in aws.fake.calls if call[0] in writes]
    assert job(aws, "fixed-job")["targets"] == [GROUP]


def test_rollback_update_after_a_refused_replacement_succeeds_in_place(cfn: Cfn, aws: Any) -> None:
    original = props(JobId="fixed-job")
    created(cfn, original)
    refused = props(JobId="fixed-job", Targets=[OTHER_GROUP])
    assert cfn.send("Update", refused, physical_id=arn("fixed-job"), old_properties=original)["Status"] == "FAILED"

    rollback = cfn.send("Update", original, physical_id=arn("fixed-job"), old_properties=refused)

    assert rollback["Status"] == "SUCCESS"
    assert rollback["PhysicalResourceId"] == arn("fixed-job")
    assert aws.fake.count("CreateJob") == 1


def test_rollback_update_restores_updatable_properties(cfn: Cfn, aws: Any) -> None:
    original = props()
    job_id = created(cfn, original)
    changed = props(Description="changed")
    cfn.send("Update", changed, physical_id=arn(job_id), old_properties=original)

    rollback = cfn.send("Update", original, physical_id=arn(job_id), old_properties=changed)

    assert rollback["PhysicalResourceId"] == arn(job_id)
    assert job(aws, job_id)["description"] == "Sensor firmware 2.4.1"


def test_update_that_changes_the_job_id_replaces_the_job(cfn: Cfn, aws: Any) -> None:
    old = props(JobId="firmware-v1")
    created(cfn, old)

    response = cfn.send("Update", props(JobId="firmware-v2"), physical_id=arn("firmware-v1"), old_properties=old)

    assert response["PhysicalResourceId"] == arn("firmware-v2")
    assert job(aws, "firmware-v2")["status"] == "IN_PROGRESS"
    assert job(aws, "firmware-v1")["status"] == "IN_PROGRESS"  # CloudFormation deletes it in cleanup


def test_update_of_only_service_token_and_timeout_is_a_no_op(cfn: Cfn, aws: Any) -> None:
    job_id = created(cfn, props())
    aws.fake.reset()
    url = cfn.endpoint.response_url("update")
    built = event("Update", props(), response_url=url, physical_id=arn(job_id), old_properties=props())
    built["OldResourceProperties"]["ServiceToken"] = "arn:aws:lambda:us-east-1:123456789012:function:old-provider"
    built["OldResourceProperties"]["ServiceTimeout"] = "3600"

    response = cfn.deliver(built)

    assert response["Status"] == "SUCCESS"
    assert response["PhysicalResourceId"] == arn(job_id)
    assert [call[0] for call in aws.fake.calls if call[0] not in {"DescribeJob", "ListTagsForResource"}] == []


def test_update_of_a_job_this_stack_does_not_own_fails_and_leaves_it(cfn: Cfn, aws: Any) -> None:
    foreign_job(aws, "not-ours")

    response = cfn.send("Update", props(Description="hijack"), physical_id=arn("not-ours"), old_properties=props())

    assert response["Status"] == "FAILED"
    assert "not-ours" in response["Reason"]
    assert job(aws, "not-ours").get("description") != "hijack"
    assert aws.fake.count("UpdateJob") == aws.fake.count("TagResource") == 0


class ContextWithoutFunctionArn(LambdaContext):
    """A context without the function's ARN: jobs are taken to live in the stack's region and account."""

    invoked_function_arn = ""


@pytest.mark.parametrize("context", [LambdaContext, ContextWithoutFunctionArn], ids=["function-arn", "stack-arn"])
def test_in_place_update_reads_the_job_then_writes_once(cfn: Cfn, aws: Any, context: Any) -> None:
    cfn.context = context()
    job_id = created(cfn, props(JobId="one-read"))
    aws.fake.reset()

    response = cfn.send(
        "Update", props(JobId=job_id, Description="v2"), physical_id=arn(job_id), old_properties=props(JobId=job_id)
    )

    assert response["Status"] == "SUCCESS"
    # DescribeJob gives status and CreatedAt, the tags prove the job is ours.
    assert [operation for operation, _ in aws.fake.calls] == ["DescribeJob", "ListTagsForResource", "UpdateJob"]
    assert job(aws, job_id)["description"] == "v2"
    assert response["Data"]["CreatedAt"] == iso_millis(job(aws, job_id)["createdAt"])


@pytest.mark.parametrize("deletion_polls", [0, 5], ids=["deleted", "being-deleted"])
@pytest.mark.parametrize("job_id", ["gone-job", None], ids=["fixed-id", "generated-id"])
def test_update_of_a_job_deleted_out_of_band_never_creates_it_again(
    cfn: Cfn, aws: Any, caplog: pytest.LogCaptureFixture, deletion_polls: int, job_id: str | None
) -> None:
    # GIVEN a job an operator deleted (or is deleting) outside the stack
    original = props(JobId=job_id)
    job_id = created(cfn, original)
    aws.fake.deletion_polls = deletion_polls
    aws.iot.delete_job(jobId=job_id, force=True)
    # WHEN the stack changes an updatable property, then rolls that back
    changed = props(JobId=original.get("JobId"), Description="v2")
    response = cfn.send("Update", changed, physical_id=arn(job_id), old_properties=original)
    rollback = cfn.send("Update", original, physical_id=arn(job_id), old_properties=changed)
    # THEN both succeed without sending the job to the fleet again, and the log says so
    assert response["Status"] == rollback["Status"] == "SUCCESS", response
    assert response["PhysicalResourceId"] == rollback["PhysicalResourceId"] == arn(job_id)
    assert aws.fake.count("CreateJob") == 1
    assert aws.fake.count("UpdateJob") == 0
    assert "deleted outside the stack: it is not created again" in caplog.text
    assert [j["status"] for j in aws.iot.list_jobs()["jobs"]] in ([], ["DELETION_IN_PROGRESS"])


def test_create_only_change_of_a_job_deleted_out_of_band_is_still_a_replacement(cfn: Cfn, aws: Any) -> None:
    original = props()
    job_id = created(cfn, original)
    aws.iot.delete_job(jobId=job_id, force=True)

    response = cfn.send("Update", props(Targets=[OTHER_GROUP]), physical_id=arn(job_id), old_properties=original)

    assert response["Status"] == "SUCCESS"
    new_id = job_id_of(response)
    assert new_id != job_id
    assert job(aws, new_id)["targets"] == [OTHER_GROUP]


def test_update_coerces_decimal_strings_by_schema(cfn: Cfn, aws: Any) -> None:
    old = props()
    job_id = created(cfn, old)
    abort = {
        "CriteriaList": [
            {
                "FailureType": "FAILED",
                "Action": "CANCEL",
                "ThresholdPercentage": "25.5",
                "MinNumberOfExecutedThings": "10",
            }
        ]
    }

    response = cfn.send("Update", props(AbortConfig=abort), physical_id=arn(job_id), old_properties=old)

    assert response["Status"] == "SUCCESS"
    criteria = job(aws, job_id)["abortConfig"]["criteriaList"][0]
    assert criteria["thresholdPercentage"] == 25.5
    assert criteria["minNumberOfExecutedThings"] == 10


# --- Delete ---------------------------------------------------------------


def test_delete_removes_the_job_and_waits_for_the_asynchronous_deletion(cfn: Cfn, aws: Any) -> None:
    job_id = created(cfn, props())

    response = cfn.send("Delete", props(), physical_id=arn(job_id))

    assert response["Status"] == "SUCCESS"
    assert response["PhysicalResourceId"] == arn(job_id)
    assert_gone(aws, job_id)
    assert aws.fake.count("DeleteJob", job_id) == 1


def test_delete_with_cancel_behavior_cancels_and_keeps_the_record(cfn: Cfn, aws: Any) -> None:
    properties = props(DeleteBehavior="CANCEL")
    job_id = created(cfn, properties)

    response = cfn.send("Delete", properties, physical_id=arn(job_id))

    assert response["Status"] == "SUCCESS"
    assert job(aws, job_id)["status"] == "CANCELED"
    assert aws.fake.count("DeleteJob") == 0


@pytest.mark.parametrize(
    "physical_id",
    [
        "never-existed",
        "FleetStack_FirmwareRollout_ABCD1234",
        "not a job id!",
        "x" * 300,
        "create-failed:5b8f2a40-0000-4000-8000-000000000000",
        arn("never-existed"),
        "arn:aws:iot:eu-west-1:123456789012:job/never-existed",
    ],
)
def test_delete_of_an_id_that_names_no_job_succeeds(cfn: Cfn, aws: Any, physical_id: str) -> None:
    response = cfn.send("Delete", props(), physical_id=physical_id)

    assert response["Status"] == "SUCCESS"
    assert response["PhysicalResourceId"] == physical_id
    assert aws.fake.count("DeleteJob") == 0


def test_delete_of_a_job_already_being_deleted_succeeds_after_it_is_gone(cfn: Cfn, aws: Any) -> None:
    job_id = created(cfn, props())
    aws.iot.delete_job(jobId=job_id, force=True)

    response = cfn.send("Delete", props(), physical_id=arn(job_id))

    assert response["Status"] == "SUCCESS"
    assert_gone(aws, job_id)
    assert aws.fake.count("DeleteJob") == 1


def test_delete_of_a_job_this_stack_never_created_succeeds_and_leaves_it(cfn: Cfn, aws: Any) -> None:
    foreign_job(aws, "fleet-owned")

    response = cfn.send("Delete", props(JobId="fleet-owned"), physical_id=arn("fleet-owned"))

    assert response["Status"] == "SUCCESS"
    assert job(aws, "fleet-owned")["status"] == "IN_PROGRESS"
    assert aws.fake.count("DeleteJob") == aws.fake.count("CancelJob") == 0


def test_delete_of_another_resources_job_in_the_same_stack_leaves_it(cfn: Cfn, aws: Any) -> None:
    job_id = created(cfn, props())

    response = cfn.send("Delete", props(), physical_id=arn(job_id), logical_id="SomeOtherJob")

    assert response["Status"] == "SUCCESS"
    assert job(aws, job_id)["status"] == "IN_PROGRESS"


def test_delete_waits_for_a_free_deletion_slot(cfn: Cfn, aws: Any) -> None:
    job_id = created(cfn, props())
    aws.fake.fail_next("DeleteJob", "LimitExceededException", times=2)

    response = cfn.send("Delete", props(), physical_id=arn(job_id))

    assert response["Status"] == "SUCCESS"
    assert_gone(aws, job_id)
    assert aws.fake.count("DeleteJob", job_id) == 3


def test_delete_does_not_sleep_two_minutes(cfn: Cfn, aws: Any) -> None:
    # crhelper's default would sleep 120 s here (the context leaves 300 s).
    job_id = created(cfn, props())
    started = time.monotonic()

    cfn.send("Delete", props(), physical_id=arn(job_id))

    assert time.monotonic() - started < 10


def test_delete_never_validates_so_rollback_of_junk_properties_succeeds(cfn: Cfn, aws: Any) -> None:
    response = cfn.send("Delete", {"Targets": "not a list", "Colour": ["blue"]}, physical_id=arn("whatever"))

    assert response["Status"] == "SUCCESS"


# --- The response contract ------------------------------------------------


def test_a_timeout_sends_one_failed_response_with_a_usable_physical_id(
    cfn: Cfn, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a Create that outlives the Lambda's remaining time
    real_create = lifecycle.create

    def slow_create(request: lifecycle.JobRequest) -> lifecycle.JobResult:
        time.sleep(1.0)
        return real_create(request)

    monkeypatch.setattr(lifecycle, "create", slow_create)
    built = event("Create", props(JobId="slow-job"), response_url=cfn.endpoint.response_url("slow"))
    # WHEN crhelper's timer fires before the work ends
    response = cfn.deliver(built, LambdaContext(seconds=0.7))
    time.sleep(0.2)
    # THEN CloudFormation gets one FAILED response naming the planned job
    assert cfn.endpoint.responses_for(built["ResponseURL"]) == [response]
    assert response["Status"] == "FAILED"
    assert response["Reason"] == "the provider timed out before it created a job"
    assert response["PhysicalResourceId"] == f"create-failed:{built['RequestId']}"


def test_a_timeout_during_create_job_names_the_job_and_the_request(cfn: Cfn, aws: Any) -> None:
    # GIVEN a CreateJob that is still in flight when the invocation times out
    def stalled_create_job(**_: Any) -> None:
        time.sleep(1.0)

    aws.handler_iot.meta.events.register_first("before-send.iot.CreateJob", stalled_create_job)
    built = event("Create", props(JobId="slow-job"), response_url=cfn.endpoint.response_url("slow"))
    try:
        response = cfn.deliver(built, LambdaContext(seconds=0.7))
    finally:
        aws.handler_iot.meta.events.unregister("before-send.iot.CreateJob", stalled_create_job)
    time.sleep(0.5)
    # THEN the physical id names the job only as made by this request
    assert response["Status"] == "FAILED"
    assert response["PhysicalResourceId"] == f"{arn('slow-job')}?request-id={built['RequestId']}"
    assert "job arn:aws:iot:us-east-1:123456789012:job/slow-job may have been created" in response["Reason"]
    # AND the rollback Delete removes the job that request made
    rollback = cfn.send("Delete", props(JobId="slow-job"), physical_id=response["PhysicalResourceId"])
    assert rollback["Status"] == "SUCCESS"
    assert_gone(aws, "slow-job")


def test_a_long_reason_keeps_the_property_name_and_fits_the_body_limit(cfn: Cfn, aws: Any) -> None:
    response = cfn.create(props(**{"X" * 5000: "1"}))

    assert response["Status"] == "FAILED"
    assert response["Reason"].startswith("XXXX")
    assert "is not a supported property" in response["Reason"]


def test_an_event_without_stack_id_gets_one_failed_response(cfn: Cfn, aws: Any) -> None:
    built = event("Create", props(), response_url=cfn.endpoint.response_url("broken"))
    del built["StackId"]

    response = cfn.deliver(built)

    assert response["Status"] == "FAILED"
    assert "StackId" in response["Reason"]


def test_logs_never_contain_the_response_url_or_the_document(
    cfn: Cfn, aws: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    secret_document = '{"operation":"firmware-update","token":"do-not-log-me"}'
    properties = props(Document=secret_document)
    job_id = created(cfn, properties)
    cfn.send(
        "Update", props(Document=secret_document, Description="x"), physical_id=arn(job_id), old_properties=properties
    )
    cfn.send("Delete", properties, physical_id=arn(job_id))

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "do-not-log-me" not in logged
    assert "X-Amz-Signature" not in logged
    assert "response-useast1" not in logged
    assert "created job" in logged  # the handler does log, at INFO


def test_response_sending_gives_up_after_bounded_attempts(cfn: Cfn, aws: Any) -> None:
    waits: list[float] = []
    cfn.endpoint.fail_next(count=100, status=500)
    built = event("Create", props(), response_url=cfn.endpoint.response_url("unreachable"))
    deliver = handler.make_handler(
        dataclasses.replace(aws.dependencies, send_response=ResponseSender(sleep=waits.append))
    )

    deliver(built, LambdaContext())

    attempts = cfn.endpoint.requests_for(built["ResponseURL"])
    assert len(attempts) == 4
    assert sum(waits) <= 10
    cfn.endpoint.reset()


def test_properties_are_not_mutated_between_events(cfn: Cfn, aws: Any) -> None:
    properties = props()
    before = copy.deepcopy(properties)
    cfn.create(properties)
    assert properties == before


def test_create_over_a_job_left_by_an_earlier_request_of_this_resource_is_not_adopted(cfn: Cfn, aws: Any) -> None:
    first = cfn.create(props(JobId="left-behind"))

    second = cfn.create(props(JobId="left-behind"))

    assert first["Status"] == "SUCCESS"
    assert second["Status"] == "FAILED"
    assert "earlier request of this resource" in second["Reason"]
    assert aws.fake.count("CreateJob") == 2


# --- Time-relative rules belong to Create ----------------------------------


def _schedule(start: datetime) -> dict[str, str]:
    return {"StartTime": start.strftime("%Y-%m-%dT%H:%M")}


def test_create_with_a_schedule_that_has_passed_fails_naming_it_and_makes_no_job(cfn: Cfn, aws: Any) -> None:
    response = cfn.create(props(SchedulingConfig=_schedule(datetime.now(UTC) - timedelta(days=1))))

    assert response["Status"] == "FAILED"
    assert response["Reason"].startswith("SchedulingConfig.StartTime ")
    assert "at least 30 minutes from now (UTC) when the job is created" in response["Reason"]
    assert response["PhysicalResourceId"].startswith("create-failed:")
    assert aws.fake.count("CreateJob") == 0


def test_update_of_a_scheduled_job_whose_start_has_passed_still_deploys(cfn: Cfn, aws: Any) -> None:
    # GIVEN a scheduled job created two days ago, when its start (yesterday) was ahead
    now = datetime.now(UTC)
    original = props(SchedulingConfig=_schedule(now - timedelta(days=1)))
    job_id = created(cfn.with_dependencies(clock=lambda: now - timedelta(days=2)), original)
    # WHEN an updatable property changes after the start has passed (same literal schedule)
    response = cfn.send(
        "Update", {**original, "Description": "later"}, physical_id=arn(job_id), old_properties=original
    )
    # THEN the update is in place: the time rule is CreateJob's, not UpdateJob's
    assert response["Status"] == "SUCCESS"
    assert job(aws, job_id)["description"] == "later"


# --- Rollout gates: what the handler checks before and around a gate ---------


def gated(**gate: Any) -> dict[str, Any]:
    # The construct sets ServiceTimeout to the gate's timeout plus 300 s (here 30 + 5 min).
    return {**props(RolloutGate={"MinSucceededPercent": "95", **gate}), "ServiceTimeout": "2100"}


def test_a_gate_that_does_not_fit_service_timeout_fails_before_any_job_is_created(cfn: Cfn, aws: Any) -> None:
    response = cfn.create({**gated(TimeoutInMinutes="30"), "ServiceTimeout": "1200"})

    assert response["Status"] == "FAILED"
    assert response["Reason"] == (
        "RolloutGate.TimeoutInMinutes 30 does not fit ServiceTimeout 1200 s: a gate needs its timeout plus 300 s; "
        "raise ServiceTimeout (at most 3600) or shorten the gate"
    )
    assert aws.iot.list_jobs()["jobs"] == []


def test_a_gate_state_for_a_resource_without_a_gate_is_refused(cfn: Cfn, aws: Any) -> None:
    url = cfn.endpoint.response_url("handover")
    built = event("Create", props(), response_url=url)
    built["CdkIotJobGate"] = {
        "job_id": "j",
        "job_arn": arn("j"),
        "chain": "c",
        "seq": 1,
        "baton": "c.0.x",
        "started_at": 0,
        "answer_by": time.time() + 600,
        "counted": 1,
    }

    response = cfn.deliver(built)

    assert response["Status"] == "FAILED"
    assert response["Reason"] == "CdkIotJobGate was sent for a resource without RolloutGate"
    assert aws.iot.list_jobs()["jobs"] == []


def test_a_duplicated_gated_create_sends_no_second_response(cfn: Cfn, aws: Any) -> None:
    url = cfn.endpoint.response_url("duplicate")
    built = event("Create", gated(), response_url=url)
    first_job = None
    # The first delivery holds the gate (its baton is on the job) when the duplicate arrives.
    aws.iot.create_job(
        jobId=generated_job_id(Owner(built["StackId"], built["LogicalResourceId"], built["RequestId"])),
        targets=[GROUP],
        document=sample_properties()["Document"],
        tags=[
            *({"Key": key, "Value": value} for key, value in _owner_tags(built).items()),
            {"Key": "cdk-iot-job:gate", "Value": "first.0.n1"},
        ],
    )
    first_job = aws.iot.list_jobs()["jobs"][0]["jobId"]

    cfn.handler(built, LambdaContext())

    assert cfn.endpoint.requests_for(url) == []
    assert [job["jobId"] for job in aws.iot.list_jobs()["jobs"]] == [first_job]


def _owner_tags(built: dict[str, Any]) -> dict[str, str]:
    from cdk_iot_job_provider import schema

    owner = Owner(built["StackId"], built["LogicalResourceId"], built["RequestId"])
    parsed = schema.parse_properties({**gated(), "ServiceTimeout": None})
    return owner.tags(schema.create_only_fingerprint(parsed))
