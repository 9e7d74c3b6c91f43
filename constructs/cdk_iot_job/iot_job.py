"""The ``IotJob`` construct: an AWS IoT job as a ``Custom::IotJob`` resource."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import CustomResource, RemovalPolicy, Token
from cdk_iot_job_provider import schema
from constructs import Construct

from .config import (
    AbortConfig,
    DeleteBehavior,
    JobExecutionsRetryConfig,
    JobExecutionsRolloutConfig,
    PresignedUrlConfig,
    SchedulingConfig,
    TargetSelection,
    TimeoutConfig,
    to_cfn,
)
from .provider import SERVICE_TIMEOUT, IotJobProvider

__all__ = ["RESOURCE_TYPE", "IotJob"]

RESOURCE_TYPE = "Custom::IotJob"


def _is_unresolved(value: Any) -> bool:
    return bool(Token.is_unresolved(value))


def render_document(document: Mapping[str, Any] | str) -> Any:
    """A job document as IoT stores it: compact JSON with sorted keys for a dict.

    Anything else is passed on unchanged for the schema to reject.
    """
    if not isinstance(document, Mapping):
        return document
    try:
        return json.dumps(document, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise schema.InvalidPropertyError(f"Document must be JSON-serializable: {error}") from error


def _as_list(values: Sequence[str] | None) -> Any:
    # A lone string is a Sequence too: keep it whole so the schema says "must be a list".
    if values is None or isinstance(values, str) or _is_unresolved(values):
        return values
    return list(values)


class IotJob(Construct):
    """An AWS IoT job, created, updated and deleted with the stack.

    Properties are named after ``AWS::IoT::Job`` in snake_case. Literal values
    are validated when the construct is built; unresolved tokens are validated
    by the provider at deploy time.

    Parameters
    ----------
    targets
        Thing and thing group ARNs, 1 to 100.
    job_id
        The job's id. Default: generated from the stack, the construct and the
        request; a change of a create-only property then replaces the job. With
        a fixed ``job_id``, such a change fails until ``job_id`` changes too.
    document
        The job document: a dict (rendered as compact JSON with sorted keys) or
        a JSON string. Default: none; then ``document_source`` or
        ``job_template_arn`` is required.
    document_source
        S3 object URL of the job document. Default: none.
    description
        Default: none.
    target_selection
        Default: ``TargetSelection.SNAPSHOT``.
    document_parameters
        Parameters of an AWS managed job template. Default: none.
    job_template_arn
        Default: none.
    presigned_url_config, job_executions_rollout_config, abort_config,
    timeout_config, job_executions_retry_config, scheduling_config
        Default: none (IoT's defaults).
    destination_package_versions
        Package version ARNs installed when the job succeeds. Default: none.
    namespace_id
        Namespace for customer-managed job notifications. Default: none.
    tags
        Tags for the job. Default: none.
    delete_behavior
        ``DeleteBehavior.CANCEL`` cancels the job instead of deleting it, keeping
        its record. Default: ``DeleteBehavior.DELETE``.
    removal_policy
        ``RemovalPolicy.RETAIN`` keeps the job when the resource leaves the
        stack. Default: ``RemovalPolicy.DESTROY``.

    Raises
    ------
    ValueError
        (``InvalidPropertyError``) when a literal value breaks an API limit.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        targets: Sequence[str],
        job_id: str | None = None,
        document: Mapping[str, Any] | str | None = None,
        document_source: str | None = None,
        description: str | None = None,
        target_selection: TargetSelection | str | None = None,
        document_parameters: Mapping[str, str] | None = None,
        job_template_arn: str | None = None,
        presigned_url_config: PresignedUrlConfig | None = None,
        job_executions_rollout_config: JobExecutionsRolloutConfig | None = None,
        abort_config: AbortConfig | None = None,
        timeout_config: TimeoutConfig | None = None,
        job_executions_retry_config: JobExecutionsRetryConfig | None = None,
        scheduling_config: SchedulingConfig | None = None,
        destination_package_versions: Sequence[str] | None = None,
        namespace_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        delete_behavior: DeleteBehavior | None = None,
        removal_policy: RemovalPolicy | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        candidates: dict[str, Any] = {
            "JobId": job_id,
            "Targets": _as_list(targets),
            "Document": render_document(document) if document is not None else None,
            "DocumentSource": document_source,
            "Description": description,
            "TargetSelection": target_selection,
            "DocumentParameters": dict(document_parameters) if document_parameters is not None else None,
            "JobTemplateArn": job_template_arn,
            "PresignedUrlConfig": presigned_url_config,
            "JobExecutionsRolloutConfig": job_executions_rollout_config,
            "AbortConfig": abort_config,
            "TimeoutConfig": timeout_config,
            "JobExecutionsRetryConfig": job_executions_retry_config,
            "SchedulingConfig": scheduling_config,
            "DestinationPackageVersions": _as_list(destination_package_versions),
            "NamespaceId": namespace_id,
            "Tags": [{"Key": key, "Value": tags[key]} for key in sorted(tags)] if tags else None,
            "DeleteBehavior": delete_behavior if delete_behavior not in (None, DeleteBehavior.DELETE) else None,
        }
        properties = {name: to_cfn(value) for name, value in candidates.items() if value is not None}
        schema.parse_properties(properties, is_unresolved=_is_unresolved)

        provider = IotJobProvider.of(self)
        role_arn = properties.get("PresignedUrlConfig", {}).get("RoleArn")
        if role_arn is not None:
            provider.allow_pass_role(role_arn)
        extra_create_resources = [job_template_arn] if job_template_arn is not None else []
        extra_create_resources += properties.get("DestinationPackageVersions", [])
        if extra_create_resources:
            provider.allow_create_with(extra_create_resources)

        self.provider = provider
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=provider.service_token,
            resource_type=RESOURCE_TYPE,
            properties=properties,
            service_timeout=SERVICE_TIMEOUT,
            removal_policy=removal_policy,
        )
        self.node.default_child = self.resource

    @property
    def job_id(self) -> str:
        """The job's id (``Ref``; the resource's physical id)."""
        return self.resource.ref

    @property
    def job_arn(self) -> str:
        """The job's ARN (``Fn::GetAtt JobArn``)."""
        return self.resource.get_att_string("JobArn")

    @property
    def handler_role(self) -> Any:
        """The provider's execution role, shared by the stack's jobs."""
        return self.provider.role
