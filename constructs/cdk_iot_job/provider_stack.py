"""``IotJobProviderStack``: the provider alone, exported for plain CloudFormation templates.

Its options name what the templates' jobs use beyond the provider's own
grants. Each is checked here, before the stack joins the app, against the
shapes below; :mod:`cdk_iot_job.provider_template` turns the same shapes into
its parameters' ``AllowedPattern``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from aws_cdk import Aws, CfnOutput, Stack
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from cdk_iot_job_provider import schema

from .provider import IotJobProvider
from .provider_policy import check_no_wildcard
from .targets import JobTemplate
from .tokens import is_unresolved

__all__ = [
    "BUCKET_NAME",
    "DEFAULT_EXPORT_NAME",
    "JOB_TEMPLATE_ARN",
    "KMS_KEY_ARN",
    "PACKAGE_VERSION_ARN",
    "ROLE_ARN",
    "IotJobProviderStack",
]

#: The export holding the provider's ARN, unless ``export_name`` is given.
DEFAULT_EXPORT_NAME = "cdk-iot-job-ServiceToken"

# What IotJobProviderStack's options take, literal values only (tokens are passed on as given).
ROLE_ARN = re.compile(r"arn:[a-z0-9-]+:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]+")
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
KMS_KEY_ARN = re.compile(r"arn:[a-z0-9-]+:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+")
JOB_TEMPLATE_ARN = re.compile(r"arn:[a-z0-9-]+:iot:[a-z0-9-]+:(?:[0-9]{12})?:jobtemplate/[A-Za-z0-9_.:-]+")
PACKAGE_VERSION_ARN = re.compile(r"arn:[a-z0-9-]+:iot:[a-z0-9-]+:[0-9]{12}:package/[^/\s]+/version/[^/\s]+")


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
        check_no_wildcard(where, arn)
        if not is_unresolved(arn) and not pattern.fullmatch(arn):
            raise schema.InvalidPropertyError(f"{where} {arn!r} must be {shape}")
    return arns


def _bucket_and_prefix(option: str, index: int, value: str) -> tuple[str, str]:
    where = f"{option}[{index}]"
    # Token strings never hold "*", "?" or "/", so this also holds for "${Token[...]}/prefix".
    check_no_wildcard(where, value)
    bucket, _, prefix = value.partition("/")
    if not is_unresolved(bucket) and not BUCKET_NAME.fullmatch(bucket):
        raise schema.InvalidPropertyError(
            f"{where} {value!r} must be a bucket name, optionally followed by /<key prefix> (e.g. 'my-bucket/jobs/')"
        )
    return bucket, prefix


class IotJobProviderStack(Stack):
    """A stack holding only the provider, for plain CloudFormation templates.

    It exports the provider's ARN, so a template can declare
    ``ServiceToken: !ImportValue cdk-iot-job-ServiceToken``.

    The provider's own grants cover ``Document`` jobs on the stack's things and
    thing groups, and rollout gates (``RolloutGate``) of any stack in its
    account and region: it may invoke itself, ``cloudformation:DescribeStacks``
    on ``stack/*/*`` and ``iot:ListThingsInThingGroup`` on ``thinggroup/*``,
    in a policy of their own. Whatever else the templates' jobs use must be named here,
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
            "pass_role_arns", pass_role_arns, ROLE_ARN, "an IAM role ARN (arn:<partition>:iam::<account>:role/<name>)"
        )
        buckets = [
            _bucket_and_prefix("document_source_buckets", index, value)
            for index, value in enumerate(_option_items("document_source_buckets", document_source_buckets, str))
        ]
        key_arns = _checked_arns(
            "document_source_key_arns",
            document_source_key_arns,
            KMS_KEY_ARN,
            "a KMS key ARN (arn:<partition>:kms:<region>:<account>:key/<key id>)",
        )
        template_arns = _checked_arns(
            "job_template_arns",
            [
                template.arn if isinstance(template, JobTemplate) else template
                for template in _option_items("job_template_arns", job_template_arns, str, JobTemplate)
            ],
            JOB_TEMPLATE_ARN,
            "a job template ARN (arn:<partition>:iot:<region>:[<account>]:jobtemplate/<id>)",
        )
        version_arns = _checked_arns(
            "package_version_arns",
            package_version_arns,
            PACKAGE_VERSION_ARN,
            "a package version ARN (arn:<partition>:iot:<region>:<account>:package/<name>/version/<version>)",
        )
        super().__init__(scope, construct_id, **kwargs)
        self.provider = IotJobProvider.of(self, code=code)
        # Its templates' gated jobs are unknown here: any stack and thing group of its account and region.
        self.provider.allow_rollout_gates_of_any_stack()
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
