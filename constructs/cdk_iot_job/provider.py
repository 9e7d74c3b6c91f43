"""The provider Lambda: one per stack, shared by every ``IotJob`` in it.

Like ``BucketDeployment``'s handler, the function is a singleton found by a
fixed id at the stack's root. Its asset is bundled locally (no Docker, no
network) from the installed handler package and the installed ``crhelper``.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import jsii
from aws_cdk import (
    Acknowledgment,
    ArnFormat,
    AssetHashType,
    Aws,
    BundlingOptions,
    CfnOutput,
    CfnResource,
    Duration,
    IListProducer,
    ILocalBundling,
    IResolveContext,
    Lazy,
    RemovalPolicy,
    Stack,
    TagManager,
    Validations,
)
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct, IValidation

from cdk_iot_job_provider import schema
from cdk_iot_job_provider.ownership import STACK_TAG

from .targets import JobTemplate
from .tokens import is_unresolved

if TYPE_CHECKING:
    from .document import S3ObjectRef

__all__ = ["DEFAULT_EXPORT_NAME", "PROVIDER_HANDLER", "IotJobProvider", "IotJobProviderStack"]

DEFAULT_EXPORT_NAME = "cdk-iot-job-ServiceToken"

PROVIDER_HANDLER = "cdk_iot_job_provider.handler.handler"
PROVIDER_PACKAGE = "cdk_iot_job_provider"
RUNTIME = lambda_.Runtime.PYTHON_3_14
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
_SHIPPED_SUFFIXES = (".py",)

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

# cdk-nag findings no change can fix, acknowledged on the provider's own role,
# tracing policy and function (README: "cdk-nag findings acknowledged"). The ids
# are cdk-nag's own, without the plugin prefix: cdk-nag then matches each one
# against the finding's resource and that resource's ancestors only.
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
_DLQ_REASON = (
    "Only CloudFormation invokes the provider, asynchronously, and waits for the answer at the request's presigned "
    "response URL: crhelper answers FAILED on any handler error, and an invocation that dies without answering fails "
    "the stack operation at the resource's ServiceTimeout (10 minutes), with the error in the function's log group. "
    "Lambda never retries it (MaximumRetryAttempts 0). An event parked in a dead-letter queue or failure destination "
    "cannot be replayed into a stack operation that has already failed; it would only keep the response URL and the "
    "job's properties at rest."
)


def _package_dir(name: str) -> Path:
    # find_spec locates the package without importing it (crhelper would
    # create boto3 clients on import).
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the {name} package must be installed to build the IotJob provider asset")
    return Path(next(iter(spec.submodule_search_locations)))


def _copy_package(source: Path, destination: Path) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir()):
        if path.is_file() and path.suffix in _SHIPPED_SUFFIXES:
            shutil.copyfile(path, destination / path.name)


@jsii.implements(ILocalBundling)
class _LocalBundling:
    """Copies the handler package and crhelper into the asset: only ``.py`` files."""

    def try_bundle(self, output_dir: str, _options: Any = None) -> bool:
        output = Path(output_dir)
        for package in (PROVIDER_PACKAGE, "crhelper"):
            _copy_package(_package_dir(package), output / package)
        return True


def provider_code() -> lambda_.Code:
    """The provider's Lambda code, bundled locally and hashed by content."""
    return lambda_.Code.from_asset(
        str(_package_dir(PROVIDER_PACKAGE)),
        asset_hash_type=AssetHashType.OUTPUT,
        # jsii passes the options positionally, unlike ILocalBundling's keyword-only stub.
        bundling=BundlingOptions(image=RUNTIME.bundling_image, local=_LocalBundling()),  # type: ignore[arg-type]
    )


@jsii.implements(IValidation)
class _JobTagsValidation:
    """Tags added after a job was made (``Tags.of``) checked at synth, for every job of the stack.

    One validation per stack rather than per job: each is a jsii object, and a
    stack may hold hundreds of jobs.
    """

    def __init__(self) -> None:
        self.jobs: list[tuple[Construct, TagManager]] = []

    def validate(self) -> list[str]:
        errors: list[str] = []
        for job, tags in self.jobs:
            values = tags.tag_values()
            try:
                schema.check("Tags", [{"Key": key, "Value": values[key]} for key in sorted(values)])
            except schema.InvalidPropertyError as error:
                errors.append(f"{job.node.path}: {error}")
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
        bundled locally as an asset (:func:`provider_code`). A template
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
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        job_arns = _iot_arn(stack, "job")
        # A job can only be created with its ownership tag ...
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iot:CreateJob"], resources=[job_arns], conditions=_REQUEST_CARRIES_OWNERSHIP_TAG
            )
        )
        # ... for any target (CreateJob is authorized on each of them too) ...
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iot:CreateJob"], resources=[_iot_arn(stack, "thing"), _iot_arn(stack, "thinggroup")]
            )
        )
        # ... read and tagged (CreateJob's tags, later changes) on the job only ...
        self.role.add_to_principal_policy(iam.PolicyStatement(actions=_JOB_READ_AND_TAG_ACTIONS, resources=[job_arns]))
        # ... and changed or removed only while it carries the ownership tag.
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=_OWNED_JOB_ACTIONS, resources=[job_arns], conditions=_JOB_CARRIES_OWNERSHIP_TAG)
        )
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
        self.tracing_policy = iam.Policy(
            self,
            "TracingPolicy",
            roles=[self.role],
            statements=[iam.PolicyStatement(actions=_TRACING_ACTIONS, resources=["*"])],
        )
        cfn_function = cast(lambda_.CfnFunction, self.function.node.default_child)
        cfn_function.tracing_config = lambda_.CfnFunction.TracingConfigProperty(mode="Active")
        # Lambda checks that the role may write traces when tracing is turned on.
        cfn_function.node.add_dependency(self.tracing_policy)
        # lambda.Function makes its resource depend on the whole role: on its default policy
        # (needed, so no job is handled before its grants exist) and on the role itself, which
        # Fn::GetAtt Role.Arn already orders (cfn-lint W3005). Render the needed ones only.
        cfn_role = cast(CfnResource, self.role.node.default_child)
        cfn_function.add_override(
            "DependsOn", Lazy.uncached_list(_DependsOnBesides(cfn_function, cfn_role), omit_empty=True)
        )
        self._passable_roles: set[str] = set()
        self._tag_checks = _JobTagsValidation()
        self.node.add_validation(self._tag_checks)
        self._acknowledge_nag_findings(stack)

    def _acknowledge_nag_findings(self, stack: Stack) -> None:
        for kind, reason in (
            ("job", _JOB_WILDCARD_REASON),
            ("thing", _TARGET_WILDCARD_REASON.format(kind="thing")),
            ("thinggroup", _TARGET_WILDCARD_REASON.format(kind="thing group")),
        ):
            resource = _nag_text(stack, _iot_arn(stack, kind))
            _acknowledge(self.role, f"AwsSolutions-IAM5[Resource::{resource}]", reason)
        _acknowledge(self.tracing_policy, "AwsSolutions-IAM5[Resource::*]", _TRACING_REASON)
        _acknowledge(self.function, "Serverless-LambdaDLQ", _DLQ_REASON)
        _acknowledge(self.function, "Serverless-LambdaAsyncFailureDestination", _DLQ_REASON)

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
        _check_no_wildcard("PresignedUrlConfig.RoleArn", role_arn)
        if role_arn in self._passable_roles:
            return
        self._passable_roles.add(role_arn)
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "iot.amazonaws.com"}},
            )
        )

    def allow_read_document(self, document: S3ObjectRef) -> None:
        """Let CreateJob read a ``DocumentSource`` object: that object only."""
        self.allow_read_documents([document.arn()])
        if document.bucket.encryption_key is not None:
            document.bucket.encryption_key.grant_decrypt(self.role)

    def check_tags_at_synth(self, job: Construct, tags: TagManager) -> None:
        """Check the job's final tags (``Tags.of`` included) with the schema's rules at synth."""
        self._tag_checks.jobs.append((job, tags))

    def allow_create_with(self, resource_arns: list[str]) -> None:
        """Let CreateJob use further resources (job templates, package versions).

        Raises
        ------
        ValueError
            (``InvalidPropertyError``) when a literal ARN holds ``*`` or ``?``.
        """
        for index, arn in enumerate(resource_arns):
            _check_no_wildcard(f"CreateJob resource [{index}]", arn)
        self.role.add_to_principal_policy(iam.PolicyStatement(actions=["iot:CreateJob"], resources=resource_arns))

    def allow_read_document_prefix(self, object_arn_prefix: str) -> None:
        """Let CreateJob read ``DocumentSource`` objects under ``arn:...:s3:::bucket/prefix`` (a trailing ``*``).

        For :class:`IotJobProviderStack`'s ``document_source_buckets``: the one
        intended wildcard is the trailing ``*``, acknowledged for cdk-nag on the
        role, naming this resource only.
        """
        resource = f"{object_arn_prefix}*"
        self.allow_read_documents([resource])
        stack = Stack.of(self)
        _acknowledge(self.role, f"AwsSolutions-IAM5[Resource::{_nag_text(stack, resource)}]", _DOCUMENT_PREFIX_REASON)

    def allow_read_documents(self, object_arns: Sequence[str]) -> None:
        """Let CreateJob read ``DocumentSource`` objects: ``s3:GetObject`` on exactly ``object_arns``.

        Each is an S3 object ARN, or a key prefix ending in ``*``. A list token
        (a ``CommaDelimitedList`` parameter, as in
        :mod:`cdk_iot_job.provider_template`) grants each of its items.
        """
        self.role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=list(object_arns)))

    def allow_decrypt_documents(self, key_arns: Sequence[str]) -> None:
        """Let the provider decrypt ``DocumentSource`` objects encrypted with these KMS keys."""
        if key_arns:
            self.role.add_to_principal_policy(iam.PolicyStatement(actions=["kms:Decrypt"], resources=list(key_arns)))


def _check_no_wildcard(where: str, value: Any) -> None:
    """Refuse a literal that would become an IAM wildcard in the provider's policy."""
    if isinstance(value, str) and not schema.has_no_iam_wildcard(value):
        raise schema.InvalidPropertyError(f"{where} {value!r} {schema.IAM_WILDCARD_RULE}")


def _iot_arn(stack: Stack, resource: str) -> str:
    return stack.format_arn(
        service="iot", resource=resource, resource_name="*", arn_format=ArnFormat.SLASH_RESOURCE_NAME
    )


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


@jsii.implements(IListProducer)
class _DependsOnBesides:
    """A resource's ``DependsOn``, less a resource that its properties reference anyway."""

    def __init__(self, resource: CfnResource, referenced: CfnResource) -> None:
        self._resource = resource
        self._referenced = referenced

    def produce(self, _context: IResolveContext) -> list[str] | None:
        stack = Stack.of(self._resource)
        logical_ids = {
            str(stack.resolve(stack.get_logical_id(dependency)))
            for dependency in self._resource.obtain_dependencies()
            if isinstance(dependency, CfnResource)
            and dependency.node.path != self._referenced.node.path
            and Stack.of(dependency).node.path == stack.node.path
        }
        return sorted(logical_ids) or None


# What IotJobProviderStack's options take, literal values only (tokens are passed on as given).
_ROLE_ARN = re.compile(r"arn:[a-z0-9-]+:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]+")
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_KMS_KEY_ARN = re.compile(r"arn:[a-z0-9-]+:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+")
_JOB_TEMPLATE_ARN = re.compile(r"arn:[a-z0-9-]+:iot:[a-z0-9-]+:(?:[0-9]{12})?:jobtemplate/[A-Za-z0-9_.:-]+")
_PACKAGE_VERSION_ARN = re.compile(r"arn:[a-z0-9-]+:iot:[a-z0-9-]+:[0-9]{12}:package/[^/\s]+/version/[^/\s]+")


def _option_items(option: str, values: Sequence[Any] | None, *types: type) -> list[Any]:
    if values is None:
        return []
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise schema.InvalidPropertyError(f"{option} must be a list, not {type(values).__name__}")
    for index, value in enumerate(values):
        if not isinstance(value, types):
            names = " or ".join(kind.__name__ for kind in types)
            raise schema.InvalidPropertyError(f"{option}[{index}] must be a {names}, not {type(value).__name__}")
    return list(values)


def _checked_arns(option: str, values: Sequence[str] | None, pattern: re.Pattern[str], shape: str) -> list[str]:
    arns: list[str] = _option_items(option, values, str)
    if is_unresolved(arns):
        return arns  # a list token (a CommaDelimitedList parameter's value): its items are known at deploy
    for index, arn in enumerate(arns):
        where = f"{option}[{index}]"
        _check_no_wildcard(where, arn)
        if not is_unresolved(arn) and not pattern.fullmatch(arn):
            raise schema.InvalidPropertyError(f"{where} {arn!r} must be {shape}")
    return arns


def _bucket_and_prefix(option: str, index: int, value: str) -> tuple[str, str]:
    where = f"{option}[{index}]"
    # Token strings never hold "*", "?" or "/", so this also holds for "${Token[...]}/prefix".
    _check_no_wildcard(where, value)
    bucket, _, prefix = value.partition("/")
    if not is_unresolved(bucket) and not _BUCKET_NAME.fullmatch(bucket):
        raise schema.InvalidPropertyError(
            f"{where} {value!r} must be a bucket name, optionally followed by /<key prefix> (e.g. 'my-bucket/jobs/')"
        )
    return bucket, prefix


class IotJobProviderStack(Stack):
    """A stack holding only the provider, for plain CloudFormation templates.

    It exports the provider's ARN, so a template can declare
    ``ServiceToken: !ImportValue cdk-iot-job-ServiceToken``.

    The provider's own grants cover ``Document`` jobs on the stack's things and
    thing groups. Whatever else the templates' jobs use must be named here,
    or CreateJob fails with AccessDenied: each option grants exactly what it
    lists. No value may hold ``*`` or ``?`` (except through tokens, which are
    passed on as given): each becomes an IAM policy resource.

    Parameters
    ----------
    scope, construct_id
        As for any ``Stack``.
    export_name
        Name of the export. Default: ``cdk-iot-job-ServiceToken``.
    pass_role_arns
        Presigned-URL roles (``PresignedUrlConfig.RoleArn``) the templates'
        jobs use; the provider may pass exactly these to IoT
        (``iam:PassRole``, conditioned on ``iam:PassedToService`` =
        ``iot.amazonaws.com``). Default: none.
    document_source_buckets
        Where the templates' ``DocumentSource`` objects are: ``"bucket"`` or
        ``"bucket/key-prefix"``. Each grants ``s3:GetObject`` on exactly
        ``arn:<partition>:s3:::bucket/key-prefix*`` (``bucket/*`` for a bare
        bucket). Default: none.
    document_source_key_arns
        KMS key ARNs (``arn:<partition>:kms:<region>:<account>:key/<id>``)
        those objects are encrypted with; each grants ``kms:Decrypt`` on that
        key. Default: none.
    job_template_arns
        Job templates (``JobTemplateArn``) the templates' jobs are created
        from: ARNs, or ``JobTemplate.managed(name, version)``. Each grants
        ``iot:CreateJob`` on that template. Default: none.
    package_version_arns
        Package versions (``DestinationPackageVersions``) the templates' jobs
        install: ``arn:<partition>:iot:<region>:<account>:package/<name>/version/<version>``.
        Each grants ``iot:CreateJob`` on that version, as ``IotJob`` does.
        Default: none.
    code
        The provider function's code. Default: the bundled asset (see
        :class:`IotJobProvider`).
    **kwargs
        ``Stack`` props (``env``, ``description``, ...).

    Raises
    ------
    ValueError
        (``InvalidPropertyError``) naming the option and the item when a value
        is not a list of the expected kind, breaks the shape given above, or
        holds ``*`` or ``?``. Raised before the stack is added to ``scope``.

    Examples
    --------
    >>> IotJobProviderStack(
    ...     app,
    ...     "IotJobProviderStack",
    ...     document_source_buckets=["firmware-jobs/documents/"],
    ...     job_template_arns=[JobTemplate.managed("AWS-Reboot", "1.0")],
    ... )
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        export_name: str = DEFAULT_EXPORT_NAME,
        pass_role_arns: Sequence[str] | None = None,
        document_source_buckets: Sequence[str] | None = None,
        document_source_key_arns: Sequence[str] | None = None,
        job_template_arns: Sequence[str | JobTemplate] | None = None,
        package_version_arns: Sequence[str] | None = None,
        code: lambda_.Code | None = None,
        **kwargs: Any,
    ) -> None:
        # Checked before the stack joins the app, so a refused option leaves nothing behind.
        role_arns = _checked_arns(
            "pass_role_arns", pass_role_arns, _ROLE_ARN, "an IAM role ARN (arn:<partition>:iam::<account>:role/<name>)"
        )
        buckets = [
            _bucket_and_prefix("document_source_buckets", index, value)
            for index, value in enumerate(_option_items("document_source_buckets", document_source_buckets, str))
        ]
        key_arns = _checked_arns(
            "document_source_key_arns",
            document_source_key_arns,
            _KMS_KEY_ARN,
            "a KMS key ARN (arn:<partition>:kms:<region>:<account>:key/<key id>)",
        )
        template_arns = _checked_arns(
            "job_template_arns",
            [
                template.arn if isinstance(template, JobTemplate) else template
                for template in _option_items("job_template_arns", job_template_arns, str, JobTemplate)
            ],
            _JOB_TEMPLATE_ARN,
            "a job template ARN (arn:<partition>:iot:<region>:[<account>]:jobtemplate/<id>)",
        )
        version_arns = _checked_arns(
            "package_version_arns",
            package_version_arns,
            _PACKAGE_VERSION_ARN,
            "a package version ARN (arn:<partition>:iot:<region>:<account>:package/<name>/version/<version>)",
        )
        super().__init__(scope, construct_id, **kwargs)
        self.provider = IotJobProvider.of(self, code=code)
        for role_arn in role_arns:
            self.provider.allow_pass_role(role_arn)
        for bucket, prefix in buckets:
            self.provider.allow_read_document_prefix(f"arn:{Aws.PARTITION}:s3:::{bucket}/{prefix}")
        self.provider.allow_decrypt_documents(key_arns)
        # A statement per option: each may be a list token (a CommaDelimitedList parameter's value).
        for create_with in (template_arns, version_arns):
            if create_with:
                self.provider.allow_create_with(create_with)
        self.service_token_output = CfnOutput(
            self,
            "ServiceToken",
            value=self.provider.service_token,
            export_name=export_name,
            description="ServiceToken for Custom::IotJob resources",
        )
