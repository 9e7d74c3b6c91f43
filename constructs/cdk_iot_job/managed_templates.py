"""The catalog of AWS managed job templates, checked at synth.

IoT accepts ``CreateJob`` with any template ARN and only then fails on a
misspelt template, an unknown version or a wrong ``documentParameters`` key.
This catalog lets ``JobTemplate.managed(...)`` and ``IotJob`` say so at synth.

Source: the AWS IoT Developer Guide, "Use AWS managed templates to deploy
common remote operations", section "Managed template remote actions and job
documents" (https://docs.aws.amazon.com/iot/latest/developerguide/job-templates-managed.html),
and "Create a job from AWS managed templates by using the AWS CLI"
(https://docs.aws.amazon.com/iot/latest/developerguide/job-template-manage-cli-create.html),
read on 2026-12-03 in the guide's published source (github.com/awsdocs/aws-iot-docs,
``developerguide/job-templates-managed.md`` and ``job-template-manage-cli-create.md``).
``ListManagedJobTemplates`` there lists each template at version ``1.0``, and
``DescribeManagedJobTemplate`` of ``AWS-Download-File`` gives the parameters'
regexes: ``(.){0,256}`` for ``runAsUser`` and ``(.){0,4096}`` for ``pathToHandler``.
``AWS-Run-Command:1.0`` is missing from that copy of the page: its ``command``
parameter is from public ``CreateJob`` calls with ``documentParameters={"command": ...}``,
and its ``runCommand`` action has no handler, so it takes ``runAsUser`` but no
``pathToHandler``; check it with ``describe-managed-job-template`` when updating.

To update: edit :data:`MANAGED_TEMPLATES` below, the one place. A new template is
one :class:`ManagedTemplate`; a new version is one more entry in its ``versions``.
``aws iot list-managed-job-templates`` and ``aws iot describe-managed-job-template
--template-name <name> --template-version <version>`` give the current truth. A
template or version the catalog does not know yet can still be used through
``JobTemplate.from_arn(arn)``, which is never checked against the catalog.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cdk_iot_job_provider import schema

__all__ = [
    "MANAGED_TEMPLATES",
    "ManagedTemplate",
    "TemplateParameter",
    "check_document_parameters",
    "lookup",
    "parse_managed_arn",
]

#: Every managed template's name starts with this.
PREFIX = "AWS-"


@dataclass(frozen=True)
class TemplateParameter:
    """One ``documentParameters`` key of a managed template.

    Attributes
    ----------
    name
        The key, as ``DescribeManagedJobTemplate`` lists it.
    required
        ``False`` when the guide calls it optional.
    pattern
        The regex a value must match in full, when the guide documents one
        narrower than ``(.*?)``.
    """

    name: str
    required: bool
    pattern: str | None = None


@dataclass(frozen=True)
class ManagedTemplate:
    """An AWS managed job template: its name and each known version's parameters."""

    name: str
    versions: Mapping[str, tuple[TemplateParameter, ...]]

    @property
    def latest(self) -> str:
        """The highest known version, what an ARN without a version gets."""
        return max(self.versions, key=_version_key)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in version.split("."))


# Optional on every runHandler template (the guide: "All managed templates have the
# following two optional parameters in common").
_RUN_AS_USER = TemplateParameter("runAsUser", required=False, pattern=r"(.){0,256}")
_PATH_TO_HANDLER = TemplateParameter("pathToHandler", required=False, pattern=r"(.){0,4096}")
_HANDLER_OPTIONS = (_RUN_AS_USER, _PATH_TO_HANDLER)


def _template(name: str, *required: str, options: tuple[TemplateParameter, ...] = _HANDLER_OPTIONS) -> ManagedTemplate:
    parameters = tuple(TemplateParameter(key, required=True) for key in required) + options
    return ManagedTemplate(name, {"1.0": parameters})


#: The managed templates by name. The one place to update (see the module docstring).
MANAGED_TEMPLATES: Mapping[str, ManagedTemplate] = {
    template.name: template
    for template in (
        _template("AWS-Download-File", "downloadUrl", "filePath"),
        _template("AWS-Install-Application", "packages"),
        _template("AWS-Reboot"),
        _template("AWS-Remove-Application", "packages"),
        _template("AWS-Restart-Application", "services"),
        _template("AWS-Run-Command", "command", options=(_RUN_AS_USER,)),
        _template("AWS-Start-Application", "services"),
        _template("AWS-Stop-Application", "services"),
    )
}

# arn:<partition>:iot:<region>::jobtemplate/AWS-<name>[:<version>]: no account, as
# the schema's managed-template rule; the region may be empty (a template of
# IotJobProviderStack's options is region-agnostic there too).
_MANAGED_ARN = re.compile(r"arn:[a-z0-9-]+:iot:[a-z0-9-]*::jobtemplate/(?P<name>AWS-[^:]+)(?::(?P<version>.+))?")

_WHERE = "job_template (JobTemplateArn)"


def lookup(name: str, version: str | None, *, where: str = _WHERE) -> ManagedTemplate:
    """The catalog's template ``name``, checked to have ``version`` (``None``: the latest).

    Raises
    ------
    ValueError
        (``InvalidPropertyError``) naming the closest known template for an
        unknown name, or the known versions for an unknown version.
    """
    template = MANAGED_TEMPLATES.get(name)
    if template is None:
        known = sorted(MANAGED_TEMPLATES)
        # Case-insensitive: "aws-reboot" is as likely a slip as "AWS-Rebot".
        by_lower = {known_name.lower(): known_name for known_name in known}
        close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
        hint = f"did you mean {by_lower[close[0]]!r}? " if close else ""
        raise schema.InvalidPropertyError(
            f"{where} {name!r} is not an AWS managed job template: {hint}"
            f"known: {', '.join(known)} (JobTemplate.from_arn(arn) takes a template this catalog does not know yet)"
        )
    if version is not None and version not in template.versions:
        raise schema.InvalidPropertyError(
            f"{where} {name!r} has no version {version!r}: known versions: {', '.join(sorted(template.versions))} "
            "(JobTemplate.from_arn(arn) takes a version this catalog does not know yet)"
        )
    return template


def parse_managed_arn(arn: str) -> tuple[str, str | None] | None:
    """``(name, version)`` of a literal managed template ARN; ``None`` for any other ARN."""
    match = _MANAGED_ARN.fullmatch(arn)
    if match is None:
        return None
    return match.group("name"), match.group("version")


def check_document_parameters(
    template: ManagedTemplate,
    version: str | None,
    parameters: Mapping[str, Any] | None,
    *,
    is_unresolved: Callable[[Any], bool],
) -> None:
    """Check ``document_parameters`` against the template's documented parameters.

    Unresolved keys and values are left to IoT. Values are never quoted: the
    schema counts them as possibly secret.

    Raises
    ------
    ValueError
        (``InvalidPropertyError``) naming unknown keys with the allowed ones,
        missing required keys, or a value breaking the documented pattern.
    """
    version = version or template.latest
    label = f"{template.name}:{version}"
    known = {parameter.name: parameter for parameter in template.versions[version]}
    given = dict(parameters or {})
    keys = [key for key in given if not is_unresolved(key)]
    unknown = [key for key in keys if key not in known]
    if unknown:
        raise schema.InvalidPropertyError(
            f"document_parameters (DocumentParameters) {', '.join(map(repr, unknown))} "
            f"{'is not a parameter' if len(unknown) == 1 else 'are not parameters'} of {label}: "
            f"allowed: {', '.join(known) or 'none'}"
        )
    # A token key may be any of them: then only what is certainly absent is reported.
    missing = [name for name, parameter in known.items() if parameter.required and name not in given]
    if missing and len(keys) == len(given):
        raise schema.InvalidPropertyError(
            f"document_parameters (DocumentParameters) must set {', '.join(missing)}: "
            f"{'it is' if len(missing) == 1 else 'they are'} required by {label}"
        )
    for key in keys:
        pattern = known[key].pattern
        value = given[key]
        if (
            pattern is not None
            and isinstance(value, str)
            and not is_unresolved(value)
            and not re.fullmatch(pattern, value)
        ):
            raise schema.InvalidPropertyError(
                f"document_parameters[{key!r}] (DocumentParameters.{key}) must match {pattern} for {label}"
            )
