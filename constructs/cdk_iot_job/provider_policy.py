"""The IAM statements the provider's role gets, and the check that keeps wildcards out of them.

Every statement names its actions and resources. The IoT job actions are bound
to this stack's partition, region and account, and to the ownership tag
(``cdk-iot-job:stack-id``) where IAM can check it. Grants that depend on what
the jobs use (presigned-URL roles, documents, job templates, package
versions) are built per request by :class:`~cdk_iot_job.IotJobProvider`'s
``allow_*`` methods from the functions here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam

from cdk_iot_job_provider import schema
from cdk_iot_job_provider.ownership import STACK_TAG

__all__ = [
    "check_no_wildcard",
    "cloudformation_stacks_arn",
    "create_with_statement",
    "decrypt_documents_statement",
    "describe_stacks_statement",
    "invoke_self_statement",
    "iot_arn",
    "job_lifecycle_statements",
    "list_group_members_statement",
    "log_writes_statement",
    "pass_role_statement",
    "read_documents_statement",
    "tracing_statement",
]

# X-Ray's write actions take no resource-level permissions: "*" is their only resource.
_TRACING_ACTIONS = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]

# Ownership in IAM: every job the provider creates carries the cdk-iot-job:stack-id
# tag (ownership.py). The service authorization reference lists aws:RequestTag for
# iot:CreateJob and aws:ResourceTag for the job resource type. Only presence is
# required: one exported provider serves the jobs of many stacks.
_REQUEST_CARRIES_OWNERSHIP_TAG = {"Null": {f"aws:RequestTag/{STACK_TAG}": "false"}}
_JOB_CARRIES_OWNERSHIP_TAG = {"Null": {f"aws:ResourceTag/{STACK_TAG}": "false"}}
# Actions that change or remove an existing job: only on jobs carrying the tag.
# iot:TagResource is not among them: IoT authorizes tag-on-create (CreateJob's tags)
# as TagResource on a job that does not exist yet, which has no aws:ResourceTag,
# and later TagResource calls carry only user tags, so neither key can be required.
# DescribeJob and ListTagsForResource stay unconditioned: the provider reads a job
# to tell that it is someone else's and refuse it with a clear reason.
_OWNED_JOB_ACTIONS = ["iot:UpdateJob", "iot:CancelJob", "iot:DeleteJob", "iot:UntagResource"]
_JOB_READ_AND_TAG_ACTIONS = ["iot:DescribeJob", "iot:ListTagsForResource", "iot:TagResource"]


def check_no_wildcard(where: str, value: Any) -> None:
    """Refuse a literal that would become an IAM wildcard in the provider's policy.

    Raises
    ------
    ValueError
        (``InvalidPropertyError``) naming ``where`` and ``value`` when a
        string holds ``*`` or ``?``. Tokens never do, so they pass.
    """
    if isinstance(value, str) and not schema.has_no_iam_wildcard(value):
        raise schema.InvalidPropertyError(f"{where} {value!r} {schema.IAM_WILDCARD_RULE}")


def iot_arn(stack: Stack, resource: str) -> str:
    """Every IoT ``resource`` (``job``, ``thing``, ``thinggroup``) of the stack's partition, region and account."""
    return stack.format_arn(
        service="iot", resource=resource, resource_name="*", arn_format=ArnFormat.SLASH_RESOURCE_NAME
    )


def cloudformation_stacks_arn(stack: Stack) -> str:
    """Every CloudFormation stack of the stack's partition, region and account: ``stack/*/*``."""
    return stack.format_arn(
        service="cloudformation", resource="stack", resource_name="*/*", arn_format=ArnFormat.SLASH_RESOURCE_NAME
    )


def log_writes_statement(log_group_arn: str) -> iam.PolicyStatement:
    """Writing the function's logs, to its own log group only."""
    return iam.PolicyStatement(actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_group_arn])


def job_lifecycle_statements(stack: Stack) -> list[iam.PolicyStatement]:
    """The job actions the lifecycle calls, on the stack's IoT jobs and targets, in policy order."""
    job_arns = iot_arn(stack, "job")
    return [
        # A job can only be created with its ownership tag ...
        iam.PolicyStatement(actions=["iot:CreateJob"], resources=[job_arns], conditions=_REQUEST_CARRIES_OWNERSHIP_TAG),
        # ... for any target (CreateJob is authorized on each of them too) ...
        iam.PolicyStatement(
            actions=["iot:CreateJob"], resources=[iot_arn(stack, "thing"), iot_arn(stack, "thinggroup")]
        ),
        # ... read and tagged (CreateJob's tags, later changes) on the job only ...
        iam.PolicyStatement(actions=_JOB_READ_AND_TAG_ACTIONS, resources=[job_arns]),
        # ... and changed or removed only while it carries the ownership tag.
        iam.PolicyStatement(actions=_OWNED_JOB_ACTIONS, resources=[job_arns], conditions=_JOB_CARRIES_OWNERSHIP_TAG),
    ]


def tracing_statement() -> iam.PolicyStatement:
    """X-Ray's writes for active tracing: on ``*``, their only resource, so kept in a policy of their own."""
    return iam.PolicyStatement(actions=_TRACING_ACTIONS, resources=["*"])


def pass_role_statement(role_arn: str) -> iam.PolicyStatement:
    """Passing ``role_arn`` to IoT, and to nothing else.

    Raises
    ------
    ValueError
        (``InvalidPropertyError``) when a literal ARN holds ``*`` or ``?``.
    """
    check_no_wildcard("PresignedUrlConfig.RoleArn", role_arn)
    return iam.PolicyStatement(
        actions=["iam:PassRole"],
        resources=[role_arn],
        conditions={"StringEquals": {"iam:PassedToService": "iot.amazonaws.com"}},
    )


def create_with_statement(resource_arns: list[str]) -> iam.PolicyStatement:
    """CreateJob on further resources (job templates, package versions).

    Raises
    ------
    ValueError
        (``InvalidPropertyError``) when a literal ARN holds ``*`` or ``?``.
    """
    for index, arn in enumerate(resource_arns):
        check_no_wildcard(f"CreateJob resource [{index}]", arn)
    return iam.PolicyStatement(actions=["iot:CreateJob"], resources=resource_arns)


def read_documents_statement(object_arns: Sequence[str]) -> iam.PolicyStatement:
    """``s3:GetObject`` on exactly ``object_arns`` (S3 object ARNs, or key prefixes ending in ``*``)."""
    return iam.PolicyStatement(actions=["s3:GetObject"], resources=list(object_arns))


def decrypt_documents_statement(key_arns: Sequence[str]) -> iam.PolicyStatement:
    """``kms:Decrypt`` on exactly ``key_arns``, the keys ``DocumentSource`` objects are encrypted with."""
    return iam.PolicyStatement(actions=["kms:Decrypt"], resources=list(key_arns))


def invoke_self_statement(function_arn: str) -> iam.PolicyStatement:
    """``lambda:InvokeFunction`` on the provider's own function: a waiting gate hands over to a new invocation."""
    return iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[function_arn])


def describe_stacks_statement(stack_arns: Sequence[str]) -> iam.PolicyStatement:
    """``cloudformation:DescribeStacks`` on ``stack_arns``: a waiting gate stops when its stack rolls back."""
    return iam.PolicyStatement(actions=["cloudformation:DescribeStacks"], resources=list(stack_arns))


def list_group_members_statement(group_arns: Sequence[str]) -> iam.PolicyStatement:
    """``iot:ListThingsInThingGroup`` on ``group_arns``: a gate counts the targeted things when it starts."""
    return iam.PolicyStatement(actions=["iot:ListThingsInThingGroup"], resources=list(group_arns))
