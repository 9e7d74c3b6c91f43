"""A provider whose environment is broken still lets CloudFormation finish.

The handler runs from its asset folder in a Lambda-like child process (only
the asset and boto3 on its path) against moto over HTTP, with one thing wrong
in its environment. Creates either work anyway or fail with a reason naming
the problem; Deletes always answer SUCCESS, so a rollback or a stack deletion
can complete instead of ending in ROLLBACK_FAILED or DELETE_FAILED.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import figures
import pytest
from botocore.exceptions import ClientError
from cfn_events import event, sample_properties
from job_arns import arn
from provider_asset import bundle_provider_asset

from cdk_iot_job_local.lambda_process import LambdaProcess
from cdk_iot_job_local.runtime import LocalAws

HANDLER = "cdk_iot_job_provider.handler.handler"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@pytest.fixture(scope="module")
def local_aws() -> Iterator[LocalAws]:
    with LocalAws(deletion_polls=1) as aws:
        # The sample's target, as the stack would have made it.
        aws.client("iot").create_thing_group(thingGroupName="sensors")
        yield aws


@pytest.fixture(scope="module")
def asset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bundle_provider_asset(tmp_path_factory.mktemp("init") / "asset")


def provider(local_aws: LocalAws, asset_dir: Path, **env: str) -> LambdaProcess:
    """A provider process with the usual Lambda environment, changed by ``env`` (``""`` removes a variable)."""
    base = {
        "AWS_ENDPOINT_URL": local_aws.endpoint_url,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "SSL_CERT_FILE": str(local_aws.endpoint.ca_pem_path),
        **CREDENTIALS,
        **env,
    }
    return LambdaProcess(asset_dir, HANDLER, {k: v for k, v in base.items() if v}, function_timeout=60).start()


def send(local_aws: LocalAws, process: LambdaProcess, request_type: str, **kwargs: Any) -> dict[str, Any]:
    properties = {**sample_properties(), "JobId": kwargs.pop("job_id")}
    url = local_aws.endpoint.response_url(request_type.lower())
    built = event(request_type, properties, response_url=url, **kwargs)
    start = time.monotonic()
    process.invoke(built, timeout=90)
    responses = local_aws.endpoint.responses_for(url)
    assert len(responses) == 1, responses
    return {**responses[0], "seconds": time.monotonic() - start}


def job_status(local_aws: LocalAws, job_id: str) -> str | None:
    try:
        return str(local_aws.client("iot").describe_job(jobId=job_id)["job"]["status"])
    except ClientError as error:
        assert error.response["Error"]["Code"] == "ResourceNotFoundException"
        return None


def test_without_a_region_the_provider_uses_the_stacks_and_works(local_aws: LocalAws, asset_dir: Path) -> None:
    with provider(local_aws, asset_dir, AWS_REGION="", AWS_DEFAULT_REGION="") as process:
        created = send(local_aws, process, "Create", job_id="no-region")
        assert created["Status"] == "SUCCESS", created
        # The job's ARN is built from the stack's region and account, too.
        assert created["PhysicalResourceId"] == arn("no-region")
        assert created["Data"]["Arn"] == arn("no-region")
        assert job_status(local_aws, "no-region") == "IN_PROGRESS"

        deleted = send(local_aws, process, "Delete", job_id="no-region", physical_id=arn("no-region"))

    assert deleted["Status"] == "SUCCESS", deleted
    assert job_status(local_aws, "no-region") is None
    figures.record(
        "Fault injection",
        scenario="Init: no AWS_REGION",
        fault="region taken from the StackId",
        outcome="Create and Delete SUCCESS",
        time_s=f"{deleted['seconds']:.2f}",
        attempts="-",
    )


def test_with_a_broken_environment_create_fails_naming_it_and_delete_still_succeeds(
    local_aws: LocalAws, asset_dir: Path
) -> None:
    # GIVEN a job this resource created, and then a provider whose environment is broken
    with provider(local_aws, asset_dir) as healthy:
        healthy_create = send(local_aws, healthy, "Create", job_id="broken-env")
        assert healthy_create["Status"] == "SUCCESS", healthy_create
        assert healthy_create["PhysicalResourceId"] == arn("broken-env")

    with provider(local_aws, asset_dir, AWS_ENDPOINT_URL="not a url") as process:
        created = send(local_aws, process, "Create", job_id="never-made")
        # WHEN the rollback of that Create, and a stack deletion of the job, run there too
        rollback = send(local_aws, process, "Delete", job_id="never-made", physical_id=created["PhysicalResourceId"])
        deleted = send(local_aws, process, "Delete", job_id="broken-env", physical_id=arn("broken-env"))

    # THEN the Create failed with a reason, and the Deletes answer SUCCESS,
    # saying the job was not checked: nothing was deleted blindly
    assert created["Status"] == "FAILED"
    assert "Invalid endpoint: not a url" in created["Reason"]
    # (whether the id says "no job" or "the job this request made" is test_..._names_no_job's)
    assert created["PhysicalResourceId"] in (
        f"create-failed:{created['RequestId']}",
        f"{arn('never-made')}?request-id={created['RequestId']}",
    )
    assert job_status(local_aws, "never-made") is None
    assert rollback["Status"] == "SUCCESS", rollback
    assert deleted["Status"] == "SUCCESS", deleted
    assert f"job {arn('broken-env')} was not checked" in deleted["Reason"]
    assert job_status(local_aws, "broken-env") == "IN_PROGRESS"
    figures.record(
        "Fault injection",
        scenario="Init: malformed AWS_ENDPOINT_URL",
        fault="IoT client cannot be built",
        outcome="Create FAILED naming it; Delete SUCCESS, job untouched",
        time_s=f"{deleted['seconds']:.2f}",
        attempts=0,
    )


def test_with_a_broken_environment_a_failed_create_answers_an_id_that_names_no_job(
    local_aws: LocalAws, asset_dir: Path
) -> None:
    # GIVEN a provider that cannot build its IoT client: no CreateJob request can be sent
    with provider(local_aws, asset_dir, AWS_ENDPOINT_URL="not a url") as process:
        created = send(local_aws, process, "Create", job_id="never-sent")

    # THEN no job can exist, and the physical id says so
    assert created["Status"] == "FAILED"
    assert job_status(local_aws, "never-sent") is None
    assert created["PhysicalResourceId"] == f"create-failed:{created['RequestId']}"
