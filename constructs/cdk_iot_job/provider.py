"""The provider Lambda: one per stack, shared by every ``IotJob`` in it.

Like ``BucketDeployment``'s handler, the function is a singleton found by a
fixed id at the stack's root. Its code is the locally bundled asset
(:mod:`cdk_iot_job.provider_asset`), its role's statements come from
:mod:`cdk_iot_job.provider_policy`, and the cdk-nag findings no change can fix
are acknowledged on its own resources (:mod:`cdk_iot_job.nag_acknowledgements`).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, cast

import jsii
from aws_cdk import CfnResource, Duration, RemovalPolicy, Stack, TagManager
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct, IValidation

from cdk_iot_job_provider import schema

from .depends_on import depend_on_all_but
from .nag_acknowledgements import (
    acknowledge_document_prefix,
    acknowledge_gate_stacks,
    acknowledge_gate_thing_groups,
    acknowledge_provider_findings,
)
from .provider_asset import PROVIDER_HANDLER, RUNTIME, provider_code
from .provider_policy import (
    cloudformation_stacks_arn,
    create_with_statement,
    decrypt_documents_statement,
    describe_stacks_statement,
    invoke_self_statement,
    iot_arn,
    job_lifecycle_statements,
    list_group_members_statement,
    log_writes_statement,
    pass_role_statement,
    read_documents_statement,
    tracing_statement,
)

if TYPE_CHECKING:
    from .document import S3ObjectRef

__all__ = ["FUNCTION_TIMEOUT", "MAX_EVENT_AGE", "PROVIDER_HANDLER", "SERVICE_TIMEOUT", "IotJobProvider"]

# Deletion waits need minutes; the handler answers 30 s before this.
FUNCTION_TIMEOUT = Duration.minutes(5)
# A lost response (a crashed invocation) surfaces after this instead of
# CloudFormation's one hour.
SERVICE_TIMEOUT = Duration.minutes(10)
# A Create queued in Lambda must not run after CloudFormation stopped waiting
# (Lambda's default is 6 hours): queue age plus the run fits ServiceTimeout.
MAX_EVENT_AGE = Duration.seconds(SERVICE_TIMEOUT.to_seconds() - FUNCTION_TIMEOUT.to_seconds())

_SINGLETON_ID = "CdkIotJobProvider"
# Each stack's provider, so hundreds of jobs do not each look it up through jsii.
_PROVIDERS: weakref.WeakKeyDictionary[Stack, IotJobProvider] = weakref.WeakKeyDictionary()


@jsii.implements(IValidation)
class _JobTagsValidation:
    """Tags added after a job was made (``Tags.of``) checked at synth, for every job of the stack.

    One validation per stack rather than per job: each is a jsii object, and a
    stack may hold hundreds of jobs.
    """

    def __init__(self) -> None:
        self.jobs: list[tuple[Construct, TagManager, bool]] = []

    def validate(self) -> list[str]:
        errors: list[str] = []
        for job, tags, gated in self.jobs:
            values = tags.tag_values()
            try:
                schema.check("Tags", [{"Key": key, "Value": values[key]} for key in sorted(values)])
            except schema.InvalidPropertyError as error:
                errors.append(f"{job.node.path}: {error}")
                continue
            # As schema.parse_properties rules for a job with a RolloutGate (its baton is one more tag).
            limit = schema.MAX_USER_TAGS - schema.GATE_TAG_COUNT
            if gated and len(values) > limit:
                errors.append(
                    f"{job.node.path}: Tags must have at most {limit} item(s) on a job with a RolloutGate "
                    f"(got {len(values)}): the gate uses one more of IoT's 50 tags"
                )
        return errors


class IotJobProvider(Construct):
    """The ``Custom::IotJob`` provider of one stack.

    Use :meth:`of` rather than the constructor: it returns the stack's single
    provider, creating it on first use.

    Parameters
    ----------
    scope, construct_id
        As for any construct.
    code
        The function's code. Default: the handler package and ``crhelper``,
        bundled locally as an asset
        (:func:`~cdk_iot_job.provider_asset.provider_code`). A template
        without assets (:mod:`cdk_iot_job.provider_template`) passes code
        read from its own parameters.

    Attributes
    ----------
    function
        The provider Lambda function; its ARN is the ``ServiceToken``.
    role
        The function's execution role (``handler_role``).
    log_group
        The function's log group, with a retention period.
    tracing_policy
        The X-Ray write permissions of the function's active tracing, apart
        from the role's other grants.
    gate_policy
        The rollout gates' grants (see :meth:`allow_rollout_gate`), apart from
        the role's default policy; ``None`` until a job of the stack has a gate.
    """

    def __init__(self, scope: Construct, construct_id: str, *, code: lambda_.Code | None = None) -> None:
        super().__init__(scope, construct_id)
        self._service_token: str | None = None
        stack = Stack.of(self)
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            retention=logs.RetentionDays.THREE_MONTHS,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Runs the Custom::IotJob provider",
        )
        self.role.add_to_principal_policy(log_writes_statement(self.log_group.log_group_arn))
        for statement in job_lifecycle_statements(stack):
            self.role.add_to_principal_policy(statement)
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            handler=PROVIDER_HANDLER,
            code=code if code is not None else provider_code(),
            role=self.role,
            timeout=FUNCTION_TIMEOUT,
            memory_size=256,
            # The handler answers every event itself. Lambda retries only follow a
            # timeout or crash, when CloudFormation may already have rolled back:
            # a retried Create would then make a job no stack knows of.
            retry_attempts=0,
            max_event_age=MAX_EVENT_AGE,
            log_group=self.log_group,
            description="Custom::IotJob provider (cdk-iot-job)",
        )
        # Active tracing. Set on the L1 resource: the L2 prop would put X-Ray's "*" into the
        # role's default policy, beside the IoT grants; here it has a policy of its own.
        self.tracing_policy = iam.Policy(self, "TracingPolicy", roles=[self.role], statements=[tracing_statement()])
        cfn_function = cast(lambda_.CfnFunction, self.function.node.default_child)
        cfn_function.tracing_config = lambda_.CfnFunction.TracingConfigProperty(mode="Active")
        # Lambda checks that the role may write traces when tracing is turned on.
        cfn_function.node.add_dependency(self.tracing_policy)
        # The function must still depend on the role's default policy (no job is handled
        # before its grants exist), but not on the role itself, which Fn::GetAtt Role.Arn
        # already orders (cfn-lint W3005).
        depend_on_all_but(cfn_function, cast(CfnResource, self.role.node.default_child))
        self._passable_roles: set[str] = set()
        self.gate_policy: iam.Policy | None = None
        self._gate_statements: dict[str, iam.PolicyStatement] = {}
        self._gate_resources: set[str] = set()
        self._tag_checks = _JobTagsValidation()
        self.node.add_validation(self._tag_checks)
        acknowledge_provider_findings(role=self.role, tracing_policy=self.tracing_policy, function=self.function)

    @classmethod
    def of(cls, scope: Construct, *, code: lambda_.Code | None = None) -> IotJobProvider:
        """The stack's provider, created on first use (with ``code``, see the class; ignored afterwards)."""
        stack = scope if isinstance(scope, Stack) else Stack.of(scope)
        known = _PROVIDERS.get(stack)
        if known is not None:
            return known
        existing = stack.node.try_find_child(_SINGLETON_ID)
        provider = existing if isinstance(existing, IotJobProvider) else cls(stack, _SINGLETON_ID, code=code)
        _PROVIDERS[stack] = provider
        return provider

    @property
    def service_token(self) -> str:
        """The ARN custom resources send their events to."""
        if self._service_token is None:
            self._service_token = self.function.function_arn
        return self._service_token

    def allow_pass_role(self, role_arn: str) -> None:
        """Let the provider pass ``role_arn`` to IoT, and to nothing else.

        Raises
        ------
        ValueError
            (``InvalidPropertyError``) when a literal ARN holds ``*`` or ``?``.
        """
        if role_arn in self._passable_roles:
            return  # only ARNs that passed pass_role_statement's check are remembered
        self.role.add_to_principal_policy(pass_role_statement(role_arn))
        self._passable_roles.add(role_arn)

    def allow_read_document(self, document: S3ObjectRef) -> None:
        """Let CreateJob read a ``DocumentSource`` object: that object only."""
        self.allow_read_documents([document.arn()])
        if document.bucket.encryption_key is not None:
            document.bucket.encryption_key.grant_decrypt(self.role)

    def check_tags_at_synth(self, job: Construct, tags: TagManager, *, gated: bool = False) -> None:
        """Check the job's final tags (``Tags.of`` included) with the schema's rules at synth.

        A ``gated`` job (one with a ``RolloutGate``) has room for one tag fewer.
        """
        self._tag_checks.jobs.append((job, tags, gated))

    def allow_rollout_gate(self, thing_group_arns: Sequence[str] | None) -> iam.Policy:
        """Let the provider run a rollout gate for a job of this stack; returns :attr:`gate_policy`.

        The first call creates the gate's policy, apart from the role's default
        policy (the function depends on that one, and this one names the
        function: in it, the two would form a cycle): ``lambda:InvokeFunction``
        on the provider's own function (a waiting gate hands over to a new
        invocation) and ``cloudformation:DescribeStacks`` on this stack (a
        waiting gate stops when the stack rolls back). Every call adds
        ``iot:ListThingsInThingGroup`` on ``thing_group_arns``, the job's
        thing group targets the gate counts; ``None`` when they are only known
        at deploy time (a list token): every thing group of the stack's
        account and region. A gated job's resource must depend on the
        returned policy, so that its Create never runs before the grants exist.
        """
        return self._allow_gates([Stack.of(self).stack_id], thing_group_arns)

    def allow_rollout_gates_of_any_stack(self) -> iam.Policy:
        """Let the provider run the rollout gates of any stack of its account and region; returns :attr:`gate_policy`.

        For :class:`~cdk_iot_job.IotJobProviderStack`, whose exported provider
        serves templates it cannot know: as :meth:`allow_rollout_gate`, with
        ``cloudformation:DescribeStacks`` on ``stack/*/*`` and
        ``iot:ListThingsInThingGroup`` on ``thinggroup/*``, each acknowledged
        for cdk-nag on the gate's policy only.
        """
        policy = self._allow_gates([cloudformation_stacks_arn(Stack.of(self))], None)
        acknowledge_gate_stacks(policy)
        return policy

    def _allow_gates(self, stack_arns: list[str], thing_group_arns: Sequence[str] | None) -> iam.Policy:
        if self.gate_policy is None:
            self.gate_policy = iam.Policy(
                self, "GatePolicy", roles=[self.role], statements=[invoke_self_statement(self.function.function_arn)]
            )
        policy = self.gate_policy
        self._gate_grant(policy, describe_stacks_statement, stack_arns)
        if thing_group_arns is None:
            if self._gate_grant(policy, list_group_members_statement, [iot_arn(Stack.of(self), "thinggroup")]):
                acknowledge_gate_thing_groups(policy)
        elif thing_group_arns:
            self._gate_grant(policy, list_group_members_statement, thing_group_arns)
        return policy

    def _gate_grant(
        self,
        policy: iam.Policy,
        statement_of: Callable[[Sequence[str]], iam.PolicyStatement],
        resources: Sequence[str],
    ) -> bool:
        """Add ``resources`` to the gate policy's statement made by ``statement_of``; whether any was new.

        One statement per action, its resources added as jobs ask for them,
        each once.
        """
        keys = {resource: f"{statement_of.__name__}:{resource}" for resource in resources}
        new = [resource for resource, key in keys.items() if key not in self._gate_resources]
        if not new:
            return False
        self._gate_resources.update(keys[resource] for resource in new)
        statement = self._gate_statements.get(statement_of.__name__)
        if statement is None:
            self._gate_statements[statement_of.__name__] = statement_of(new)
            policy.add_statements(self._gate_statements[statement_of.__name__])
        else:
            statement.add_resources(*new)
        return True

    def allow_create_with(self, resource_arns: list[str]) -> None:
        """Let CreateJob use further resources (job templates, package versions).

        Raises
        ------
        ValueError
            (``InvalidPropertyError``) when a literal ARN holds ``*`` or ``?``.
        """
        self.role.add_to_principal_policy(create_with_statement(resource_arns))

    def allow_read_document_prefix(self, object_arn_prefix: str) -> None:
        """Let CreateJob read ``DocumentSource`` objects under ``arn:...:s3:::bucket/prefix`` (a trailing ``*``).

        For :class:`~cdk_iot_job.IotJobProviderStack`'s ``document_source_buckets``:
        the one intended wildcard is the trailing ``*``, acknowledged for
        cdk-nag on the role, naming this resource only.
        """
        resource = f"{object_arn_prefix}*"
        self.allow_read_documents([resource])
        acknowledge_document_prefix(self.role, resource)

    def allow_read_documents(self, object_arns: Sequence[str]) -> None:
        """Let CreateJob read ``DocumentSource`` objects: ``s3:GetObject`` on exactly ``object_arns``.

        Each is an S3 object ARN, or a key prefix ending in ``*``. A list token
        (a ``CommaDelimitedList`` parameter, as in
        :mod:`cdk_iot_job.provider_template`) grants each of its items.
        """
        self.role.add_to_principal_policy(read_documents_statement(object_arns))

    def allow_decrypt_documents(self, key_arns: Sequence[str]) -> None:
        """Let the provider decrypt ``DocumentSource`` objects encrypted with these KMS keys."""
        if key_arns:
            self.role.add_to_principal_policy(decrypt_documents_statement(key_arns))
