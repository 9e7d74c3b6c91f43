"""The ``IotJob`` construct: an AWS IoT job as a ``Custom::IotJob`` resource."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import jsii
from aws_cdk import Annotations, CustomResource, ITaggable, RemovalPolicy, Stack, TagManager, TagType
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from constructs import Construct

from cdk_iot_job_provider import schema

from . import managed_templates
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
from .document import JobDocument, presigned_url_role
from .provider import SERVICE_TIMEOUT, IotJobProvider
from .provider_policy import check_no_wildcard
from .python_paths import with_python_paths
from .rollout_gate import RolloutGate, service_timeout
from .targets import JobTarget, JobTemplate, PackageVersionLike, TargetLike, TemplateLike, package_version_arns
from .tokens import is_unresolved

__all__ = ["RESOURCE_TYPE", "IotJob"]

RESOURCE_TYPE = schema.RESOURCE_TYPE


def _as_document(document: JobDocument | Mapping[str, Any] | str | None) -> JobDocument | None:
    # Plain dicts and strings go through JobDocument too, so their presigned
    # placeholders get a download role as well.
    if isinstance(document, JobDocument) or document is None:
        return document
    if isinstance(document, Mapping):
        return JobDocument.from_object(document)
    if isinstance(document, str):
        return JobDocument.from_string(document)
    # Reachable from untyped callers only.
    raise schema.InvalidPropertyError(
        f"Document must be a JobDocument, a mapping or a JSON string, not {type(document).__name__}"
    )


@jsii.implements(ITaggable)
class IotJob(Construct):
    """An AWS IoT job, created, updated and deleted with the stack.

    Properties are named after ``AWS::IoT::Job`` in snake_case. Literal values
    are validated when the construct is built; unresolved tokens are validated
    by the provider at deploy time. The job is taggable:
    ``Tags.of(scope).add(...)`` reaches it, and tag changes apply in place.

    Parameters
    ----------
    targets
        1 to 100 things and thing groups: ARN strings (tokens welcome),
        ``aws_iot.CfnThing``/``CfnThingGroup`` constructs (the job is then
        created after them) or ``JobTarget.thing(name)``/``thing_group(name)``/
        ``from_arn(arn)``.
    job_id
        The job's id. Default: generated from the stack, the construct and the
        request; a change of a create-only property then replaces the job. With
        a fixed ``job_id``, such a change fails until ``job_id`` changes too.
    document
        The job document: a ``JobDocument`` (``from_object``, ``from_string``,
        ``from_file``, ``from_bucket``), a dict (compact JSON, sorted keys) or a
        JSON string. Presigned-URL placeholders (``JobDocument.presigned_url``)
        get a download role automatically unless ``presigned_url_config`` names
        one. Default: none; then ``document_source`` or a template is required.
    document_source
        S3 object URL of the job document. Default: none.
    description
        Default: none.
    target_selection
        Default: ``TargetSelection.SNAPSHOT``.
    document_parameters
        Parameters of an AWS managed job template (``JobTemplate.managed``),
        checked against the catalog of managed templates
        (:mod:`cdk_iot_job.managed_templates`). Default: none.
    job_template
        ``JobTemplate.managed(name, version)``, ``JobTemplate.from_arn(arn)``,
        an ``aws_iot.CfnJobTemplate`` or an ARN. Default: none.
    job_template_arn
        The template's ARN, as ``AWS::IoT::Job`` names it; alternative to
        ``job_template``. Default: none.
    presigned_url_config
        Default: a generated role when the document has placeholders, with
        IoT's 3600 s expiry; otherwise none.
    job_executions_rollout_config, abort_config, timeout_config,
    job_executions_retry_config, scheduling_config
        Default: none (IoT's defaults). A literal schedule must start 30 minutes
        to a year from synth time and end after at least 30 minutes.
    destination_package_versions
        Package version ARNs or ``aws_iot.CfnSoftwarePackageVersion``
        constructs installed when the job succeeds. Default: none.
    namespace_id
        Namespace for customer-managed job notifications. Default: none.
    tags
        Tags for the job. Default: none.
    delete_behavior
        ``DeleteBehavior.CANCEL`` cancels the job instead of deleting it, keeping
        its record. Default: ``DeleteBehavior.DELETE``.
    rollout_gate
        A ``RolloutGate``: the Create (or a replacement) waits until the fleet
        answers and fails, rolling the stack back, when it does not pass. It
        sets the resource's ``ServiceTimeout`` to the gate's timeout plus 5
        minutes, and gives the provider the gate's grants. Changing it alone
        is an in-place update that does not wait. Default: none (no waiting).
    removal_policy
        ``RemovalPolicy.RETAIN`` keeps the job when the resource leaves the
        stack. Default: ``RemovalPolicy.DESTROY``.

    Raises
    ------
    ValueError
        (``InvalidPropertyError``) when a literal value breaks an API limit,
        a combination CreateJob refuses, or the catalog of managed templates.
        The message names the Python keyword path and the CloudFormation path,
        e.g. ``job_executions_rollout_config.maximum_per_minute
        (JobExecutionsRolloutConfig.MaximumPerMinute) 0 must be at least 1``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        targets: Sequence[TargetLike],
        job_id: str | None = None,
        document: JobDocument | Mapping[str, Any] | str | None = None,
        document_source: str | None = None,
        description: str | None = None,
        target_selection: TargetSelection | str | None = None,
        document_parameters: Mapping[str, str] | None = None,
        job_template: TemplateLike | None = None,
        job_template_arn: str | None = None,
        presigned_url_config: PresignedUrlConfig | None = None,
        job_executions_rollout_config: JobExecutionsRolloutConfig | None = None,
        abort_config: AbortConfig | None = None,
        timeout_config: TimeoutConfig | None = None,
        job_executions_retry_config: JobExecutionsRetryConfig | None = None,
        scheduling_config: SchedulingConfig | None = None,
        destination_package_versions: Sequence[PackageVersionLike] | None = None,
        namespace_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        delete_behavior: DeleteBehavior | None = None,
        rollout_gate: RolloutGate | None = None,
        removal_policy: RemovalPolicy | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if job_template is not None and job_template_arn is not None:
            raise schema.InvalidPropertyError(
                "job_template and job_template_arn (both JobTemplateArn) are mutually exclusive: set only one"
            )
        template_keyword = "job_template_arn" if job_template_arn is not None else "job_template"
        template_like: TemplateLike | None = job_template if job_template is not None else job_template_arn
        template = (
            JobTemplate.of(template_like, where=f"{template_keyword} (JobTemplateArn)")
            if template_like is not None
            else None
        )
        # A literal ARN is checked by the schema; a CfnJobTemplate's is a token.
        if document_parameters is not None and template is not None and template.construct is not None:
            raise schema.InvalidPropertyError(
                f"document_parameters (DocumentParameters) need an AWS managed template, but {template_keyword} "
                "(JobTemplateArn) is a CfnJobTemplate, a customer template: use JobTemplate.managed(name, version)"
            )
        # Constructs given as targets, template or package versions need no DependsOn: their
        # Fn::GetAtt in the properties orders the job after them (cfn-lint W3005).
        # Most jobs sit right in their stack: no jsii round trip to find it.
        stack = scope if isinstance(scope, Stack) else Stack.of(self)
        target_arns = _target_arns(targets, stack)
        _check_not_a_token_string(
            "destination_package_versions", "DestinationPackageVersions", destination_package_versions
        )
        package_arns = (
            package_version_arns(destination_package_versions)
            if destination_package_versions is not None and not isinstance(destination_package_versions, str)
            else destination_package_versions
        )
        job_document = _as_document(document)
        bound_document = job_document.bind(self) if job_document is not None else None

        self._tag_manager = TagManager(TagType.KEY_VALUE, RESOURCE_TYPE, dict(tags) if tags else None)
        candidates: dict[str, Any] = {
            "JobId": job_id,
            "Targets": target_arns,
            # Anything that is no document at all goes to the schema to reject.
            "Document": bound_document.document if bound_document else document,
            "DocumentSource": bound_document.document_source
            if bound_document and bound_document.document_source
            else document_source,
            "Description": description,
            "TargetSelection": target_selection,
            "DocumentParameters": dict(document_parameters) if document_parameters is not None else None,
            "JobTemplateArn": template.arn if template else None,
            "PresignedUrlConfig": presigned_url_config,
            "JobExecutionsRolloutConfig": job_executions_rollout_config,
            "AbortConfig": abort_config,
            "TimeoutConfig": timeout_config,
            "JobExecutionsRetryConfig": job_executions_retry_config,
            "SchedulingConfig": scheduling_config,
            "DestinationPackageVersions": package_arns,
            "NamespaceId": namespace_id,
            "Tags": [{"Key": key, "Value": tags[key]} for key in sorted(tags)] if tags else None,
            "DeleteBehavior": delete_behavior if delete_behavior not in (None, DeleteBehavior.DELETE) else None,
            "RolloutGate": rollout_gate,
        }
        if bound_document and bound_document.document_source and document_source is not None:
            raise schema.InvalidPropertyError(
                "document_source (DocumentSource) cannot be combined with a file or S3 JobDocument as document"
            )
        properties = {name: to_cfn(value) for name, value in candidates.items() if value is not None}
        # The schema's messages name CloudFormation paths; the user wrote Python keywords.
        keywords = {
            "JobTemplateArn": template_keyword,
            "DocumentSource": "document" if bound_document and bound_document.document_source else "document_source",
        }
        try:
            parsed = schema.parse_properties(properties, is_unresolved=is_unresolved)
        except schema.InvalidPropertyError as error:
            raise schema.InvalidPropertyError(with_python_paths(str(error), keywords)) from None
        # After the schema: a malformed key or value is reported as such, not as unknown.
        if template is not None and template.catalog_entry is not None:
            name, version = template.catalog_entry
            managed_templates.check_document_parameters(
                managed_templates.lookup(name, version),
                version,
                document_parameters,
                is_unresolved=is_unresolved,
            )
        # Time-relative rules only warn: the provider enforces them on Create, and
        # an app whose schedule has passed must still synthesize for other changes.
        for problem in schema.schedule_problems(properties, datetime.now(UTC)):
            Annotations.of(self).add_warning_v2("cdk-iot-job:schedule", with_python_paths(problem, keywords))
        given_document = "Document" in properties or "DocumentSource" in properties
        if template is not None and template.is_managed and given_document:
            # CreateJob's reference forbids neither, but documents no override of a managed
            # template's predefined document either: a warning, not an error.
            Annotations.of(self).add_warning_v2(
                "cdk-iot-job:documentWithManagedTemplate",
                f"document and {template_keyword} (Document/DocumentSource and JobTemplateArn): an AWS managed "
                "template brings its own job document, filled in by document_parameters; CreateJob's reference "
                "does not document replacing it, so check that IoT creates the job you mean",
            )

        provider = IotJobProvider.of(stack)
        self.presigned_url_role: iam.IRole | None = None
        if bound_document is not None and bound_document.presigned_objects:
            configured = properties.get("PresignedUrlConfig", {})
            if "RoleArn" not in configured:
                self.presigned_url_role = presigned_url_role(self, "PresignedUrlRole", bound_document.presigned_objects)
                properties["PresignedUrlConfig"] = {
                    **configured,
                    "RoleArn": self.presigned_url_role.role_arn,
                    "ExpiresInSec": configured.get("ExpiresInSec", schema.DEFAULT_PRESIGNED_URL_EXPIRES_IN_SEC),
                }
        role_arn = properties.get("PresignedUrlConfig", {}).get("RoleArn")
        if role_arn is not None:
            provider.allow_pass_role(role_arn)
        if bound_document is not None and bound_document.source_object is not None:
            provider.allow_read_document(bound_document.source_object)
        extra_create_resources = [template.arn] if template is not None else []
        extra_create_resources += properties.get("DestinationPackageVersions", [])
        if extra_create_resources:
            provider.allow_create_with(extra_create_resources)
        gate_policy = (
            provider.allow_rollout_gate(_thing_group_arns(targets, target_arns)) if rollout_gate is not None else None
        )

        # Tags render lazily, so Tags.of(...) added later still reach the job.
        properties["Tags"] = self._tag_manager.rendered_tags
        self.provider = provider
        self._job_id = job_id
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=provider.service_token,
            resource_type=RESOURCE_TYPE,
            properties=properties,
            service_timeout=service_timeout(parsed.get("RolloutGate"), without_gate=SERVICE_TIMEOUT),
            removal_policy=removal_policy,
        )
        self.node.default_child = self.resource
        if gate_policy is not None:
            # No gated Create before the provider may hand over to itself and count the groups.
            self.resource.node.add_dependency(gate_policy)
        provider.check_tags_at_synth(self, self._tag_manager, gated=rollout_gate is not None)

    @property
    def tags(self) -> TagManager:
        """The job's tags (``ITaggable``)."""
        return self._tag_manager

    @property
    def job_id(self) -> str:
        """The job's id: the literal ``job_id`` when given, else ``Fn::GetAtt JobId``."""
        return self._job_id if self._job_id is not None else self.resource.get_att_string("JobId")

    @property
    def job_arn(self) -> str:
        """The job's ARN (``Ref``, the resource's physical id, as ``AWS::IoT::Job``'s ``Ref``)."""
        return self.resource.ref

    @property
    def created_at(self) -> str:
        """When IoT created the job (``Fn::GetAtt CreatedAt``): ISO 8601 UTC with milliseconds,
        e.g. ``2026-12-02T18:45:08.123Z``."""
        return self.resource.get_att_string("CreatedAt")

    @property
    def handler_role(self) -> Any:
        """The provider's execution role, shared by the stack's jobs."""
        return self.provider.role


def _check_not_a_token_string(keyword: str, property_name: str, value: object) -> None:
    """Refuse one token string where a list goes: the schema skips tokens, and IoT would fail.

    A literal string is left to the schema's own "must be a list".
    """
    if isinstance(value, str) and is_unresolved(value):
        raise schema.InvalidPropertyError(
            f"{keyword} ({property_name}) {value!r} must be a list, not one token string: wrap one ARN as "
            "[arn], or give a list token (a CommaDelimitedList parameter's value_as_list, Fn.split(...))"
        )


def _target_arns(targets: Sequence[TargetLike], stack: Stack) -> Any:
    """The targets' ARNs; a lone string or a token list is kept whole, for the schema to report."""
    _check_not_a_token_string("targets", "Targets", targets)
    # (Only strings go to jsii: it cannot serialize a JobTarget.)
    if isinstance(targets, str) or (
        all(isinstance(target, str) for target in targets) and is_unresolved(list(targets))
    ):
        return targets
    return [JobTarget.of(target).arn_in(stack) for target in targets]


def _thing_group_arns(targets: Sequence[TargetLike], target_arns: Any) -> list[str] | None:
    """The targets a rollout gate lists the members of: thing groups, and tokens that may be one.

    ``None`` when the targets are a list token, known only at deploy time.

    Raises
    ------
    ValueError
        (``InvalidPropertyError``) when a literal thing group ARN holds ``*``
        or ``?``: it becomes an IAM resource.
    """
    if isinstance(target_arns, str) or is_unresolved(list(target_arns)):
        return None
    groups: list[str] = []
    for index, (target, arn) in enumerate(zip(targets, target_arns, strict=True)):
        # The kind shows in a literal ARN and in a formatted one (JobTarget.thing(name)); an
        # opaque token may name either, and a grant on a thing would be harmless.
        if isinstance(target, iot.CfnThing) or ":thing/" in arn:
            continue
        if ":thinggroup/" in arn or is_unresolved(arn):
            check_no_wildcard(f"Targets[{index}]", arn)
            groups.append(arn)
    return groups
