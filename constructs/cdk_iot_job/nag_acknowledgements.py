"""The cdk-nag findings no change can fix, acknowledged with their reasons.

Only on the provider's own role, tracing and gate policies and function, never on a stack,
an app or a job (docs/operations.md: "cdk-nag findings acknowledged"). The ids
are cdk-nag's own, without the plugin prefix: cdk-nag then matches each one
against the finding's resource and that resource's ancestors only.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import Construct

from .provider_policy import cloudformation_stacks_arn, iot_arn

__all__ = [
    "acknowledge_document_prefix",
    "acknowledge_gate_stacks",
    "acknowledge_gate_thing_groups",
    "acknowledge_provider_findings",
]

_JOB_WILDCARD_REASON = (
    "Job ids are chosen at deploy time (generated per stack, resource and request unless job_id is given, and by "
    "any template that uses the exported ServiceToken), so they cannot be listed at synth; IoT has no condition key "
    "for them. Bounded to IoT jobs of this stack's partition, region and account, and to the job actions the "
    "lifecycle calls, each named: CreateJob, DescribeJob, UpdateJob, CancelJob, DeleteJob, TagResource, "
    "UntagResource, ListTagsForResource (never iot:*). CreateJob requires the cdk-iot-job:stack-id ownership tag in "
    "the request (aws:RequestTag), and UpdateJob, CancelJob, DeleteJob and UntagResource require it on the job "
    "(aws:ResourceTag)."
)
_TARGET_WILDCARD_REASON = (
    "CreateJob is authorized on every target of the job, and the singleton provider serves jobs whose {kind} targets "
    "are given at deploy time (ARNs, tokens, parameters, other stacks' resources). Only iot:CreateJob is granted on "
    "{kind}/* of this stack's partition, region and account: it can neither read nor change a {kind}."
)
_TRACING_REASON = (
    "xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions (the service "
    "authorization reference lists '*' as their only resource). They are alone in this policy, which grants nothing "
    "else, for the function's active tracing."
)
_DOCUMENT_PREFIX_REASON = (
    "The provider stack serves plain CloudFormation templates whose DocumentSource objects are only known at deploy "
    "time; IotJobProviderStack's document_source_buckets option names the bucket and key prefix they live under, "
    "checked at synth to hold no other wildcard. Only s3:GetObject is granted there, for CreateJob to read the job "
    "document."
)
_GATE_THING_GROUPS_REASON = (
    "A rollout gate counts the things its job targets when the gate starts, which needs iot:ListThingsInThingGroup "
    "on the job's thing group targets. Here they are known only at deploy time (targets given as a list token, or "
    "the jobs of plain CloudFormation templates using the exported ServiceToken). Bounded to thing groups of this "
    "stack's partition, region and account and to that one read-only action, in the policy holding only the gate's "
    "grants."
)
_GATE_STACKS_REASON = (
    "The exported provider serves gated jobs of any stack that imports its ServiceToken, whose names and ids are "
    "known only at deploy time. While a gate waits, the provider reads the status of the stack that sent the event "
    "(cloudformation:DescribeStacks, read-only) so that it stops waiting when that stack rolls back or is cancelled. "
    "Bounded to stacks of this partition, region and account and to that one action, in the gate's own policy."
)
_DLQ_REASON = (
    "Only CloudFormation invokes the provider, asynchronously, and waits for the answer at the request's presigned "
    "response URL: crhelper answers FAILED on any handler error, and an invocation that dies without answering fails "
    "the stack operation at the resource's ServiceTimeout (10 minutes), with the error in the function's log group. "
    "Lambda never retries it (MaximumRetryAttempts 0). An event parked in a dead-letter queue or failure destination "
    "cannot be replayed into a stack operation that has already failed; it would only keep the response URL and the "
    "job's properties at rest."
)


def acknowledge_provider_findings(*, role: Construct, tracing_policy: Construct, function: Construct) -> None:
    """Acknowledge the provider's own findings: the IoT wildcards, X-Ray's ``*`` and the missing DLQ.

    Parameters
    ----------
    role
        The provider's role: its ``job/*``, ``thing/*`` and ``thinggroup/*`` resources (``AwsSolutions-IAM5``).
    tracing_policy
        The policy holding only X-Ray's writes, on ``*`` (``AwsSolutions-IAM5``).
    function
        The provider function, which has no dead-letter queue or failure
        destination (``Serverless-LambdaDLQ``, ``Serverless-LambdaAsyncFailureDestination``).
    """
    stack = Stack.of(role)
    for kind, reason in (
        ("job", _JOB_WILDCARD_REASON),
        ("thing", _TARGET_WILDCARD_REASON.format(kind="thing")),
        ("thinggroup", _TARGET_WILDCARD_REASON.format(kind="thing group")),
    ):
        resource = _nag_text(stack, iot_arn(stack, kind))
        _acknowledge(role, f"AwsSolutions-IAM5[Resource::{resource}]", reason)
    _acknowledge(tracing_policy, "AwsSolutions-IAM5[Resource::*]", _TRACING_REASON)
    _acknowledge(function, "Serverless-LambdaDLQ", _DLQ_REASON)
    _acknowledge(function, "Serverless-LambdaAsyncFailureDestination", _DLQ_REASON)


def acknowledge_document_prefix(role: Construct, resource: str) -> None:
    """Acknowledge the trailing ``*`` of one ``document_source_buckets`` grant on ``role``, for that resource only."""
    _acknowledge(role, f"AwsSolutions-IAM5[Resource::{_nag_text(Stack.of(role), resource)}]", _DOCUMENT_PREFIX_REASON)


def acknowledge_gate_thing_groups(gate_policy: Construct) -> None:
    """Acknowledge ``iot:ListThingsInThingGroup`` on every thing group (``thinggroup/*``) in the gate's policy."""
    stack = Stack.of(gate_policy)
    resource = _nag_text(stack, iot_arn(stack, "thinggroup"))
    _acknowledge(gate_policy, f"AwsSolutions-IAM5[Resource::{resource}]", _GATE_THING_GROUPS_REASON)


def acknowledge_gate_stacks(gate_policy: Construct) -> None:
    """Acknowledge ``cloudformation:DescribeStacks`` on every stack (``stack/*/*``) in the gate's policy."""
    stack = Stack.of(gate_policy)
    resource = _nag_text(stack, cloudformation_stacks_arn(stack))
    _acknowledge(gate_policy, f"AwsSolutions-IAM5[Resource::{resource}]", _GATE_STACKS_REASON)


def _acknowledge(scope: Construct, rule_id: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def _nag_text(stack: Stack, value: str) -> str:
    """``value`` as cdk-nag spells it in a finding id: ``Fn::Join`` joined, ``Ref`` in angle brackets.

    The provider's IoT ARNs hold the stack's partition, region and account,
    literal or pseudo parameters depending on the stack's environment.
    """

    def flatten(node: Any) -> str:
        if isinstance(node, str):
            return node.replace("${", "<").replace("}", ">")
        if isinstance(node, dict) and "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return str(delimiter).join(flatten(item) for item in items)
        if isinstance(node, dict) and "Ref" in node:
            return f"<{node['Ref']}>"
        return json.dumps(node, separators=(",", ":"))  # cdk-nag's fallback too

    return flatten(stack.resolve(value))
