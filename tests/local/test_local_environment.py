"""Each stack is deployed to its own account and region (issue 12).

* A cloud assembly's ``environment`` (``aws://111122223333/eu-west-1``) is
  the stack's; ``aws://unknown-account/unknown-region`` and plain templates
  get the defaults, 123456789012 / us-east-1.
* One embedded AWS holds several accounts: a stack's resources, pseudo
  parameters, ARNs and stack id agree with its environment, and nothing of it
  lands in another account or region.
* The state file keeps every account and region across runs, and a stack
  destroyed from the state alone is destroyed where it was deployed.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cdk_iot_job_local.assembly import from_assembly, from_template
from cdk_iot_job_local.engine import LocalCloudFormation
from cdk_iot_job_local.environment import Environment
from cdk_iot_job_local.runtime import LocalAws
from cdk_iot_job_local.state import State
from cdk_iot_job_local.template import Stack, UnsupportedTemplateError

DEFAULT = Environment("123456789012", "us-east-1")
ELSEWHERE = Environment("210987654321", "ap-south-1")
ASSUME = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "iot.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
TEMPLATE: dict[str, Any] = {
    "Resources": {
        "Group": {"Type": "AWS::IoT::ThingGroup", "Properties": {"ThingGroupName": "env-group"}},
        "Firmware": {"Type": "AWS::S3::Bucket", "Properties": {"Tags": [{"Key": "team", "Value": "fw"}]}},
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": ASSUME}},
    },
    "Outputs": {
        "Where": {"Value": {"Fn::Sub": "${AWS::AccountId}/${AWS::Region}/${AWS::Partition}/${AWS::URLSuffix}"}},
        "GroupArn": {"Value": {"Fn::GetAtt": ["Group", "Arn"]}},
        "BucketName": {"Value": {"Ref": "Firmware"}},
        "BucketDomain": {"Value": {"Fn::GetAtt": ["Firmware", "RegionalDomainName"]}},
        "RoleArn": {"Value": {"Fn::GetAtt": ["Role", "Arn"]}},
        "StackId": {"Value": {"Ref": "AWS::StackId"}},
    },
}


# --------------------------------------------------------------------------
# where a stack goes
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("aws://111122223333/eu-west-1", Environment("111122223333", "eu-west-1")),
        ("aws://unknown-account/unknown-region", DEFAULT),
        ("aws://111122223333/unknown-region", Environment("111122223333", "us-east-1")),
        (None, DEFAULT),
    ],
)
def test_the_cdk_environment_names_the_account_and_region(text: str | None, expected: Environment) -> None:
    assert Environment.from_cdk(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("aws://1234/eu-west-1", "account '1234' must be 12 digits"),
        ("aws://111122223333/Mars", "region 'Mars' is not a region name"),
        ("111122223333/eu-west-1", "environment '111122223333/eu-west-1' is not aws://<account>/<region>"),
    ],
)
def test_a_malformed_environment_is_refused_naming_it(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Environment.from_cdk(text)


@pytest.mark.parametrize(
    ("region", "partition", "suffix"),
    [
        ("eu-west-1", "aws", "amazonaws.com"),
        ("cn-north-1", "aws-cn", "amazonaws.com.cn"),
        ("us-gov-west-1", "aws-us-gov", "amazonaws.com"),
    ],
)
def test_the_partition_follows_the_region(region: str, partition: str, suffix: str) -> None:
    environment = Environment("111122223333", region)

    assert (environment.partition, environment.url_suffix) == (partition, suffix)
    assert environment.arn("iot", "job/j") == f"arn:{partition}:iot:{region}:111122223333:job/j"


def test_the_assembly_manifest_gives_each_stack_its_environment(tmp_path: Path) -> None:
    artifacts = {
        name: {
            "type": "aws:cloudformation:stack",
            "environment": environment,
            "properties": {"templateFile": f"{name}.template.json"},
        }
        for name, environment in (
            ("Pinned", "aws://111122223333/eu-west-1"),
            ("Agnostic", "aws://unknown-account/unknown-region"),
        )
    }
    (tmp_path / "manifest.json").write_text(json.dumps({"artifacts": artifacts}))
    for name in artifacts:
        (tmp_path / f"{name}.template.json").write_text(json.dumps({"Resources": {}}))

    stacks = {stack.name: stack.environment for stack in from_assembly(tmp_path)}

    assert stacks == {"Pinned": Environment("111122223333", "eu-west-1"), "Agnostic": DEFAULT}


def test_a_plain_template_goes_to_the_defaults_unless_given_an_environment(tmp_path: Path) -> None:
    path = tmp_path / "plain.json"
    path.write_text(json.dumps(TEMPLATE))

    assert from_template(path, "Plain").environment == DEFAULT
    assert from_template(path, "Plain", ELSEWHERE).environment == ELSEWHERE


# --------------------------------------------------------------------------
# deploys in two environments, one embedded AWS
# --------------------------------------------------------------------------
def reset_moto(aws: LocalAws) -> None:
    """Forget every account moto holds: its backends live in this process."""
    request = urllib.request.Request(f"{aws.endpoint_url}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).close()


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with LocalAws() as local:
        reset_moto(local)
        yield local


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> State:
    return State(path=tmp_path_factory.mktemp("local-environment") / "state.json")


def stack(name: str, environment: Environment) -> Stack:
    return Stack(name=name, outdir=Path("."), template=TEMPLATE, environment=environment)


def group_arn(aws: LocalAws, environment: Environment) -> str | None:
    iot = aws.client("iot", account=environment.account, region=environment.region)
    try:
        return str(iot.describe_thing_group(thingGroupName="env-group")["thingGroupArn"])
    except ClientError:
        return None


def test_1_each_stack_is_deployed_to_its_own_account_and_region(aws: LocalAws, state: State) -> None:
    engine = LocalCloudFormation(aws, state)

    pinned = engine.deploy(stack("Pinned", ELSEWHERE))
    agnostic = engine.deploy(stack("Agnostic", DEFAULT))

    assert (pinned.status, agnostic.status) == ("CREATE_COMPLETE", "CREATE_COMPLETE")
    for result, where in ((pinned, ELSEWHERE), (agnostic, DEFAULT)):
        account, region = where.account, where.region
        assert result.outputs["Where"] == f"{account}/{region}/aws/amazonaws.com"
        assert result.outputs["GroupArn"] == f"arn:aws:iot:{region}:{account}:thinggroup/env-group"
        assert result.outputs["StackId"].startswith(f"arn:aws:cloudformation:{region}:{account}:stack/{result.stack}/")
        assert result.outputs["RoleArn"].startswith(f"arn:aws:iam::{account}:role/")
        assert result.outputs["BucketDomain"] == f"{result.outputs['BucketName']}.s3.{region}.amazonaws.com"
        # ... and moto holds them there
        assert group_arn(aws, where) == result.outputs["GroupArn"]
        s3 = aws.client("s3", account=account, region=region)
        location = s3.get_bucket_location(Bucket=result.outputs["BucketName"])["LocationConstraint"]
        assert (location or "us-east-1") == region
        role_name = result.outputs["RoleArn"].rsplit("/", 1)[1]
        assert (
            aws.client("iam", account=account).get_role(RoleName=role_name)["Role"]["Arn"] == result.outputs["RoleArn"]
        )
        assert (state.stacks[result.stack].account, state.stacks[result.stack].region) == (account, region)
    # Nothing of one stack is in the other's account.
    other_s3 = aws.client("s3", account=DEFAULT.account)
    assert pinned.outputs["BucketName"] not in {bucket["Name"] for bucket in other_s3.list_buckets()["Buckets"]}


def test_2_describe_job_asks_in_the_account_and_region_of_the_arn(aws: LocalAws) -> None:
    iot = aws.client("iot", account=ELSEWHERE.account, region=ELSEWHERE.region)
    target = iot.describe_thing_group(thingGroupName="env-group")["thingGroupArn"]
    created = iot.create_job(jobId="env-job", targets=[target], document='{"operation":"x"}')

    described = aws.describe_job(created["jobArn"])
    elsewhere = aws.describe_job(f"arn:aws:iot:{DEFAULT.region}:{DEFAULT.account}:job/env-job")

    assert created["jobArn"] == f"arn:aws:iot:{ELSEWHERE.region}:{ELSEWHERE.account}:job/env-job"
    assert described is not None and described["job"]["jobArn"] == created["jobArn"]
    assert elsewhere is None
    iot.delete_job(jobId="env-job", force=True)


def test_3_a_stack_is_not_moved_to_another_environment(aws: LocalAws, state: State) -> None:
    engine = LocalCloudFormation(aws, state)
    before = state.stacks["Pinned"].resources

    with pytest.raises(
        UnsupportedTemplateError, match=r"deployed to aws://210987654321/ap-south-1.*aws://123456789012/us-east-1"
    ):
        engine.deploy(stack("Pinned", DEFAULT))

    assert state.stacks["Pinned"].resources == before
    assert group_arn(aws, DEFAULT) == "arn:aws:iot:us-east-1:123456789012:thinggroup/env-group"  # Agnostic's, untouched


def test_9_the_state_file_keeps_every_account_and_a_destroy_from_it_deletes_where_deployed(
    aws: LocalAws, state: State
) -> None:
    # GIVEN the state file as the deploys left it
    state.moto = aws.snapshot()
    state.save()

    # WHEN a fresh run restores it (one IoT fake per process: it takes over the installed one) ...
    with LocalAws(fake=aws.fake) as fresh:
        reset_moto(fresh)
        saved = State.load(state.path)
        fresh.restore(saved.moto)

        # THEN both environments are back ...
        assert group_arn(fresh, ELSEWHERE) == saved.stacks["Pinned"].outputs["GroupArn"]
        assert group_arn(fresh, DEFAULT) == saved.stacks["Agnostic"].outputs["GroupArn"]
        bucket = saved.stacks["Pinned"].outputs["BucketName"]
        tags = fresh.client("s3", account=ELSEWHERE.account).get_bucket_tagging(Bucket=bucket)["TagSet"]
        assert tags == [{"Key": "team", "Value": "fw"}]

        # ... and destroying by name alone (no template) deletes each where it was deployed
        engine = LocalCloudFormation(fresh, saved)
        results = [engine.destroy("Pinned"), engine.destroy("Agnostic")]
        assert [result.status for result in results] == ["DELETE_COMPLETE", "DELETE_COMPLETE"]
        assert group_arn(fresh, ELSEWHERE) is None and group_arn(fresh, DEFAULT) is None
        with pytest.raises(ClientError):
            fresh.client("s3", account=ELSEWHERE.account).head_bucket(Bucket=bucket)


def test_a_state_file_from_before_environments_restores_into_the_default_account(aws: LocalAws) -> None:
    # GIVEN a single-account snapshot, as earlier versions saved it
    legacy = {
        "format_version": 1,
        "region": "us-east-1",
        "iot": {"things": [], "thing_groups": [], "jobs": []},
        "iam": {"roles": []},
        "s3": {"buckets": [{"Name": "legacy-bucket", "Region": "us-east-1", "Objects": []}]},
    }

    with LocalAws(fake=aws.fake) as fresh:
        reset_moto(fresh)
        fresh.restore(legacy)

        names = {bucket["Name"] for bucket in fresh.client("s3").list_buckets()["Buckets"]}
        assert "legacy-bucket" in names
        assert fresh.snapshot()["accounts"][DEFAULT.account]["s3"]["buckets"][0]["Name"] == "legacy-bucket"
