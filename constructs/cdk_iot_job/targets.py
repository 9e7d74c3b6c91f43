"""Job targets, job templates and package versions, from ARNs or from constructs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Union

from aws_cdk import Aws, Stack
from aws_cdk import aws_iot as iot
from constructs import Construct

from cdk_iot_job_provider import schema

from . import managed_templates
from .tokens import is_unresolved

__all__ = ["JobTarget", "JobTemplate", "PackageVersionLike", "TargetLike", "TemplateLike"]


@dataclass(frozen=True)
class JobTarget:
    """A thing or thing group a job is sent to.

    Use :meth:`thing`, :meth:`thing_group` or :meth:`from_arn`; names become
    ARNs in the stack's partition, region and account.
    """

    _arn: Callable[[Stack], str]

    @staticmethod
    def thing(name: str) -> JobTarget:
        """A thing of this stack's account and region, by name."""
        return JobTarget(lambda stack: stack.format_arn(service="iot", resource="thing", resource_name=name))

    @staticmethod
    def thing_group(name: str) -> JobTarget:
        """A thing group of this stack's account and region, by name.

        With ``TargetSelection.CONTINUOUS``, things added to the group later
        receive the job too.
        """
        return JobTarget(lambda stack: stack.format_arn(service="iot", resource="thinggroup", resource_name=name))

    @staticmethod
    def from_arn(arn: str) -> JobTarget:
        """A thing or thing group ARN (a token is fine)."""
        return JobTarget(lambda _stack: arn)

    @staticmethod
    def of(target: TargetLike) -> JobTarget:
        """Normalize any accepted target form."""
        if isinstance(target, JobTarget):
            return target
        if isinstance(target, iot.CfnThing | iot.CfnThingGroup):
            # Its Fn::GetAtt Arn also orders the job after it: no DependsOn needed.
            construct = target
            return JobTarget(lambda _stack: construct.attr_arn)
        return JobTarget.from_arn(target)

    def arn_in(self, stack: Stack) -> str:
        """The target's ARN, for a job in ``stack``."""
        return self._arn(stack)


TargetLike = Union[str, iot.CfnThing, iot.CfnThingGroup, JobTarget]  # noqa: UP007 (a runtime alias)


@dataclass(frozen=True)
class JobTemplate:
    """The job template a job is created from.

    ``is_managed`` is ``True`` for AWS managed templates, the only ones that
    take ``document_parameters``; ``None`` when an ARN token hides it.
    ``catalog_entry`` is the ``(name, version)`` checked against the catalog of
    managed templates (:mod:`cdk_iot_job.managed_templates`): set by
    :meth:`managed` and for a literal managed ARN string, never by
    :meth:`from_arn`, which takes templates the catalog does not know yet.
    """

    arn: str
    is_managed: bool | None
    construct: Construct | None = None
    catalog_entry: tuple[str, str | None] | None = None

    @staticmethod
    def managed(name: str, version: str | None = None) -> JobTemplate:
        """An AWS managed template, e.g. ``JobTemplate.managed("AWS-Reboot", "1.0")``.

        The ARN is ``arn:<partition>:iot:<region>::jobtemplate/AWS-<name>[:<version>]``;
        the ``AWS-`` prefix is added when missing. Without ``version``, IoT uses
        the template's default version.

        Raises
        ------
        ValueError
            (``InvalidPropertyError``) when ``name`` or ``version`` holds ``*``
            or ``?`` (the provider may ``CreateJob`` with exactly this
            template), when the catalog of AWS managed templates has no such
            name (naming the closest one) or version (listing the known ones).
            ``JobTemplate.from_arn(arn)`` takes one the catalog does not know yet.
        """
        for label, value in (("name", name), ("version", version or "")):
            _check_no_wildcard(f"JobTemplateArn: managed template {label}", value)
        template = name if name.startswith("AWS-") else f"AWS-{name}"
        managed_templates.lookup(template, version, where="JobTemplate.managed(...) name")
        suffix = f":{version}" if version else ""
        return JobTemplate(
            f"arn:{Aws.PARTITION}:iot:{Aws.REGION}::jobtemplate/{template}{suffix}", True, None, (template, version)
        )

    @staticmethod
    def from_arn(arn: str) -> JobTemplate:
        """A template by ARN; managed when the ARN has no account and names ``AWS-...``.

        Not checked against the catalog of managed templates: use it for a
        template or version newer than the catalog.

        Raises
        ------
        ValueError
            (``InvalidPropertyError``) when a literal ARN holds ``*`` or ``?``:
            the provider may ``CreateJob`` with exactly this template.
        """
        if is_unresolved(arn):
            return JobTemplate(arn, None)
        _check_no_wildcard("JobTemplateArn", arn)
        parts = arn.split(":", 5)
        managed = len(parts) == 6 and parts[4] == "" and parts[5].startswith("jobtemplate/AWS-")
        return JobTemplate(arn, managed)

    @staticmethod
    def of(template: TemplateLike, *, where: str = "job_template (JobTemplateArn)") -> JobTemplate:
        """Normalize any accepted template form.

        A literal managed template ARN string is checked against the catalog,
        as ``managed(...)`` is; ``where`` names it in errors.
        """
        if isinstance(template, JobTemplate):
            return template
        if isinstance(template, iot.CfnJobTemplate):
            return JobTemplate(template.attr_arn, False, template)
        parsed = JobTemplate.from_arn(template)
        entry = managed_templates.parse_managed_arn(template) if parsed.is_managed else None
        if entry is None:
            return parsed
        managed_templates.lookup(*entry, where=where)
        return JobTemplate(parsed.arn, True, None, entry)


TemplateLike = Union[str, iot.CfnJobTemplate, JobTemplate]  # noqa: UP007 (a runtime alias)
PackageVersionLike = Union[str, iot.CfnSoftwarePackageVersion]  # noqa: UP007 (a runtime alias)


def package_version_arns(versions: Sequence[PackageVersionLike]) -> list[str]:
    """Package version ARNs (a construct's ``Fn::GetAtt`` orders the job after it).

    Raises
    ------
    ValueError
        (``InvalidPropertyError``) when a literal ARN holds ``*`` or ``?``: the
        provider may ``CreateJob`` with exactly these versions.
    """
    arns: list[str] = []
    for index, version in enumerate(versions):
        if isinstance(version, iot.CfnSoftwarePackageVersion):
            arns.append(version.attr_package_version_arn)
        else:
            if isinstance(version, str) and not is_unresolved(version):
                _check_no_wildcard(f"DestinationPackageVersions[{index}]", version)
            arns.append(version)
    return arns


def _check_no_wildcard(where: str, value: str) -> None:
    """Refuse a literal that would become an IAM wildcard in the provider's policy."""
    if isinstance(value, str) and not is_unresolved(value) and not schema.has_no_iam_wildcard(value):
        raise schema.InvalidPropertyError(f"{where} {value!r} {schema.IAM_WILDCARD_RULE}")
