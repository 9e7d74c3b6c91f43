"""The provider Lambda: one per stack, shared by every ``IotJob`` in it.

Like ``BucketDeployment``'s handler, the function is a singleton found by a
fixed id at the stack's root. Its asset is bundled locally (no Docker, no
network) from the installed handler package and the installed ``crhelper``.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsii
from aws_cdk import (
    ArnFormat,
    AssetHashType,
    BundlingOptions,
    CfnOutput,
    Duration,
    ILocalBundling,
    RemovalPolicy,
    Stack,
)
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

if TYPE_CHECKING:
    from .document import S3ObjectRef

__all__ = ["DEFAULT_EXPORT_NAME", "PROVIDER_HANDLER", "IotJobProvider", "IotJobProviderStack"]

DEFAULT_EXPORT_NAME = "cdk-iot-job-ServiceToken"

PROVIDER_HANDLER = "cdk_iot_job_provider.handler.handler"
PROVIDER_PACKAGE = "cdk_iot_job_provider"
RUNTIME = lambda_.Runtime.PYTHON_3_14
# Deletion waits need minutes; the handler answers 30 s before this.
FUNCTION_TIMEOUT = Duration.minutes(5)
# A lost response surfaces after this instead of CloudFormation's one hour;
# it leaves room for one Lambda retry of a crashed invocation.
SERVICE_TIMEOUT = Duration.minutes(10)

_SINGLETON_ID = "CdkIotJobProvider"
_SHIPPED_SUFFIXES = (".py",)


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


class IotJobProvider(Construct):
    """The ``Custom::IotJob`` provider of one stack.

    Use :meth:`of` rather than the constructor: it returns the stack's single
    provider, creating it on first use.

    Attributes
    ----------
    function
        The provider Lambda function; its ARN is the ``ServiceToken``.
    role
        The function's execution role (``handler_role``).
    log_group
        The function's log group, with a retention period.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
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
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iot:CreateJob", "iot:TagResource"],
                resources=[_iot_arn(stack, "job"), _iot_arn(stack, "thing"), _iot_arn(stack, "thinggroup")],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "iot:DescribeJob",
                    "iot:UpdateJob",
                    "iot:CancelJob",
                    "iot:DeleteJob",
                    "iot:ListTagsForResource",
                    "iot:UntagResource",
                ],
                resources=[_iot_arn(stack, "job")],
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            handler=PROVIDER_HANDLER,
            code=provider_code(),
            role=self.role,
            timeout=FUNCTION_TIMEOUT,
            memory_size=256,
            log_group=self.log_group,
            description="Custom::IotJob provider (cdk-iot-job)",
        )
        self._passable_roles: set[str] = set()

    @classmethod
    def of(cls, scope: Construct) -> IotJobProvider:
        """The stack's provider, created on first use."""
        stack = Stack.of(scope)
        existing = stack.node.try_find_child(_SINGLETON_ID)
        if isinstance(existing, IotJobProvider):
            return existing
        return cls(stack, _SINGLETON_ID)

    @property
    def service_token(self) -> str:
        """The ARN custom resources send their events to."""
        return self.function.function_arn

    def allow_pass_role(self, role_arn: str) -> None:
        """Let the provider pass ``role_arn`` to IoT, and to nothing else."""
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
        self.role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[document.arn()]))
        if document.bucket.encryption_key is not None:
            document.bucket.encryption_key.grant_decrypt(self.role)

    def allow_create_with(self, resource_arns: list[str]) -> None:
        """Let CreateJob use further resources (job templates, package versions)."""
        self.role.add_to_principal_policy(iam.PolicyStatement(actions=["iot:CreateJob"], resources=resource_arns))


def _iot_arn(stack: Stack, resource: str) -> str:
    return stack.format_arn(
        service="iot", resource=resource, resource_name="*", arn_format=ArnFormat.SLASH_RESOURCE_NAME
    )


class IotJobProviderStack(Stack):
    """A stack holding only the provider, for plain CloudFormation templates.

    It exports the provider's ARN, so a template can declare
    ``ServiceToken: !ImportValue cdk-iot-job-ServiceToken``.

    Parameters
    ----------
    export_name
        Name of the export. Default: ``cdk-iot-job-ServiceToken``.
    pass_role_arns
        Presigned-URL roles the templates' jobs use; the provider may pass
        exactly these to IoT. Default: none.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        export_name: str = DEFAULT_EXPORT_NAME,
        pass_role_arns: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.provider = IotJobProvider.of(self)
        for role_arn in pass_role_arns or []:
            self.provider.allow_pass_role(role_arn)
        self.service_token_output = CfnOutput(
            self,
            "ServiceToken",
            value=self.provider.service_token,
            export_name=export_name,
            description="ServiceToken for Custom::IotJob resources",
        )
