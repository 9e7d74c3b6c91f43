"""The provider as a standalone CloudFormation template, for templates written without the CDK.

``python -m cdk_iot_job.provider_template --out dist`` (``make provider-template``) writes two files:

``cdk-iot-job-provider.template.yaml``
    :class:`~cdk_iot_job.IotJobProviderStack`, synthesized with its function's
    code read from the ``CodeBucket`` and ``CodeKey`` parameters and each
    option's grant from a ``CommaDelimitedList`` parameter. A grant's
    statement is present only when its list is non-empty (a condition per
    list, ``Fn::If`` and ``AWS::NoValue``). No CDK bootstrap, metadata or
    asset parameters: ``aws cloudformation deploy`` takes it as it is.
``cdk-iot-job-provider-<version>.zip``
    The function's code: the same files as the construct's Lambda asset (the
    handler package and ``crhelper``, ``.py`` files only), zipped with sorted
    entries, fixed timestamps and permissions, so each run writes the same
    bytes.

The template is built from the construct itself, so the two cannot drift
apart: the same resources, logical ids and policy statements.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App, BootstraplessSynthesizer, CfnCondition, CfnParameter, Fn, Token
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from . import __version__
from .provider_asset import bundle_provider_files
from .provider_stack import (
    BUCKET_NAME,
    DEFAULT_EXPORT_NAME,
    JOB_TEMPLATE_ARN,
    KMS_KEY_ARN,
    PACKAGE_VERSION_ARN,
    ROLE_ARN,
    IotJobProviderStack,
)

__all__ = [
    "CODE_BUCKET",
    "CODE_KEY",
    "GRANTS",
    "TEMPLATE_NAME",
    "GrantParameter",
    "code_zip_name",
    "main",
    "provider_template",
    "to_yaml",
    "write_code_zip",
    "write_provider_template",
]

#: The file name of the template in the output folder.
TEMPLATE_NAME = "cdk-iot-job-provider.template.yaml"
#: The parameters naming the uploaded code zip.
CODE_BUCKET = "CodeBucket"
CODE_KEY = "CodeKey"

_STACK_ID = "CdkIotJobProvider"
# Prefixed to the construct's ARN patterns (the package version one admits any character in its names) so
# that no item holds "*" or "?", an IAM wildcard: a lookahead, which both CloudFormation's (Java) and
# cfn-lint's (Python) regular expressions understand.
_NO_WILDCARD = r"(?!.*[*?])"


@dataclass(frozen=True)
class GrantParameter:
    """One ``CommaDelimitedList`` parameter granting the provider what its items name.

    Attributes
    ----------
    name
        The parameter's logical id; its condition is ``Has<name>``.
    description
        The parameter's description, as the console shows it.
    item_pattern
        What one item must match (``AllowedPattern``; no ``*`` or ``?`` unless it says so).
    """

    name: str
    description: str
    item_pattern: str

    @property
    def condition(self) -> str:
        """The condition that holds when the list is non-empty."""
        return f"Has{self.name}"

    @property
    def allowed_pattern(self) -> str:
        """The parameter's ``AllowedPattern``: an item, or nothing (the default, an empty list)."""
        return f"^$|^{self.item_pattern}$"


#: The grant parameters, in the order the template lists them.
GRANTS: tuple[GrantParameter, ...] = (
    GrantParameter(
        "PassRoleArns",
        "Presigned-URL roles (PresignedUrlConfig.RoleArn) your jobs use, comma-separated: the provider may pass "
        "exactly these, to iot.amazonaws.com only (iam:PassRole). Default: none.",
        _NO_WILDCARD + ROLE_ARN.pattern,
    ),
    GrantParameter(
        "DocumentSourceObjectArns",
        "S3 objects your jobs' DocumentSource names, comma-separated: object ARNs (arn:aws:s3:::bucket/key) or key "
        "prefixes ending in * (arn:aws:s3:::bucket/jobs/*); s3:GetObject on exactly these. Default: none.",
        rf"arn:[a-z0-9-]+:s3:::{BUCKET_NAME.pattern}/[^*?]*\*?",
    ),
    GrantParameter(
        "DocumentSourceKeyArns",
        "KMS keys those S3 objects are encrypted with, comma-separated key ARNs: kms:Decrypt on exactly these. "
        "Default: none.",
        _NO_WILDCARD + KMS_KEY_ARN.pattern,
    ),
    GrantParameter(
        "JobTemplateArns",
        "Job templates (JobTemplateArn) your jobs are created from, comma-separated ARNs (an AWS managed one is "
        "arn:aws:iot:<region>::jobtemplate/<name>:<version>): iot:CreateJob on exactly these. Default: none.",
        _NO_WILDCARD + JOB_TEMPLATE_ARN.pattern,
    ),
    GrantParameter(
        "PackageVersionArns",
        "Package versions (DestinationPackageVersions) your jobs install, comma-separated ARNs: iot:CreateJob on "
        "exactly these. Default: none.",
        _NO_WILDCARD + PACKAGE_VERSION_ARN.pattern,
    ),
)


def code_zip_name(version: str = __version__) -> str:
    """The code zip's file name: ``cdk-iot-job-provider-<version>.zip``."""
    return f"cdk-iot-job-provider-{version}.zip"


class _CodeFromParameters(lambda_.Code):
    """The function's code at ``s3://<CodeBucket>/<CodeKey>``: no asset, so no bootstrap."""

    def bind(self, _scope: Construct) -> lambda_.CodeConfig:
        return lambda_.CodeConfig(
            s3_location=s3.Location(bucket_name=Fn.ref(CODE_BUCKET), object_key=Fn.ref(CODE_KEY)),
        )


def _build_stack(app: App) -> IotJobProviderStack:
    # Refs by name: the parameters can only be declared once the stack exists.
    lists = {grant.name: Token.as_list(Fn.ref(grant.name)) for grant in GRANTS}
    stack = IotJobProviderStack(
        app,
        _STACK_ID,
        code=_CodeFromParameters(),
        pass_role_arns=lists["PassRoleArns"],
        document_source_key_arns=lists["DocumentSourceKeyArns"],
        job_template_arns=lists["JobTemplateArns"],
        package_version_arns=lists["PackageVersionArns"],
        # BootstraplessSynthesizer refuses assets: the template needs nothing but its parameters.
        synthesizer=BootstraplessSynthesizer(),
        description=(
            f"Custom::IotJob provider (cdk-iot-job {__version__}) for CloudFormation templates: exports its "
            f"function ARN as {DEFAULT_EXPORT_NAME}"
        ),
    )
    # IotJobProviderStack's document_source_buckets become arn:<partition>:s3:::<bucket>/<prefix>* for each
    # item, which CloudFormation cannot do for a list: here the items are those ARNs.
    stack.provider.allow_read_documents(lists["DocumentSourceObjectArns"])
    CfnParameter(
        stack,
        CODE_BUCKET,
        type="String",
        description=f"The S3 bucket you uploaded {code_zip_name()} to, in this stack's region.",
        allowed_pattern=f"^{BUCKET_NAME.pattern}$",
        constraint_description="must be an S3 bucket name",
    )
    CfnParameter(
        stack,
        CODE_KEY,
        type="String",
        description=f"The zip's S3 key, e.g. {code_zip_name()}.",
        min_length=1,
        max_length=1024,
    )
    for grant in GRANTS:
        CfnParameter(
            stack,
            grant.name,
            type="CommaDelimitedList",
            default="",
            description=grant.description,
            allowed_pattern=grant.allowed_pattern,
            constraint_description=f"each item must match {grant.item_pattern}",
        )
        # A CommaDelimitedList joins to "" exactly when it is empty.
        CfnCondition(
            stack,
            grant.condition,
            expression=Fn.condition_not(Fn.condition_equals(Fn.join("", lists[grant.name]), "")),
        )
    return stack


def provider_template() -> dict[str, Any]:
    """The standalone provider template, as a dict in the order it is written.

    Raises
    ------
    RuntimeError
        When the synthesized stack holds something the template must not
        (bootstrap or asset parameters, rules, metadata), or a grant
        parameter does not make exactly one policy statement.
    """
    with tempfile.TemporaryDirectory(prefix="cdk-iot-job-provider-") as outdir:
        # No version reporting (CDKMetadata), no path metadata; statements kept one per grant, so that
        # each can be made conditional (minimizing would merge CreateJob grants into one list). CDK's
        # built-in validation would see the synthesized stack, before its grants are made conditional:
        # the template written is checked with cfn-lint instead (tests/construct/test_provider_template.py).
        app = App(
            outdir=outdir,
            analytics_reporting=False,
            builtin_cloud_formation_validation=False,
            context={"@aws-cdk/aws-iam:minimizePolicies": False, "aws:cdk:enable-path-metadata": False},
        )
        stack = _build_stack(app)
        synthesized: dict[str, Any] = app.synth().get_stack_by_name(stack.stack_name).template
    return _standalone(synthesized)


def _standalone(synthesized: dict[str, Any]) -> dict[str, Any]:
    unexpected = sorted(set(synthesized) - {"Description", "Parameters", "Conditions", "Resources", "Outputs"})
    with_metadata = sorted(name for name, resource in synthesized["Resources"].items() if "Metadata" in resource)
    parameters: dict[str, Any] = synthesized["Parameters"]
    order = [CODE_BUCKET, CODE_KEY, *(grant.name for grant in GRANTS)]
    if unexpected or with_metadata or sorted(parameters) != sorted(order):
        raise RuntimeError(
            f"the provider template must hold only its own parameters and no metadata: sections {unexpected}, "
            f"resources with metadata {with_metadata}, parameters {sorted(parameters)}"
        )
    resources = synthesized["Resources"]
    granted = _make_grants_conditional(resources)
    missing = [grant.name for grant in GRANTS if granted.count(grant.name) != 1]
    if missing:
        raise RuntimeError(f"each grant parameter must make exactly one policy statement: {missing} do not")
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": synthesized["Description"],
        "Metadata": {
            "AWS::CloudFormation::Interface": {
                "ParameterGroups": [
                    {
                        "Label": {"default": "Provider code (upload the zip first)"},
                        "Parameters": [CODE_BUCKET, CODE_KEY],
                    },
                    {
                        "Label": {"default": "What your templates' jobs use (each list grants exactly its items)"},
                        "Parameters": [grant.name for grant in GRANTS],
                    },
                ]
            }
        },
        "Parameters": {name: parameters[name] for name in order},
        "Conditions": synthesized["Conditions"],
        "Resources": resources,
        "Outputs": synthesized["Outputs"],
    }


def _make_grants_conditional(resources: dict[str, Any]) -> list[str]:
    """Wrap each policy statement using a grant parameter in ``Fn::If``; returns the parameters, once per statement."""
    names = {grant.name: grant for grant in GRANTS}
    found: list[str] = []
    for resource in resources.values():
        if resource.get("Type") != "AWS::IAM::Policy":
            continue
        statements = resource["Properties"]["PolicyDocument"]["Statement"]
        for index, statement in enumerate(statements):
            used = sorted({name for name in _refs(statement) if name in names})
            if len(used) > 1:
                raise RuntimeError(f"a policy statement uses several grant parameters: {used}")
            if used:
                grant = names[used[0]]
                statements[index] = {"Fn::If": [grant.condition, statement, {"Ref": "AWS::NoValue"}]}
                found.append(grant.name)
    return found


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


# ------------------------------------------------------------------ YAML
# Plain scalars where YAML reads them back as the same string; everything else double-quoted (JSON's
# escapes are YAML's). A leading digit is quoted too, so "2012-10-17" never becomes a date.
_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./:@+=-]*")
_YAML_WORDS = frozenset({"y", "yes", "n", "no", "true", "false", "on", "off", "null"})


def to_yaml(document: dict[str, Any], header: str = "") -> str:
    """``document`` (JSON data) as block-style YAML that loads back to the same data.

    Written here rather than with PyYAML, which the construct library does
    not depend on; the same data always gives the same text.
    """
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    _emit(document, 0, lines)
    return "\n".join(lines) + "\n"


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if value is None:
        return "null"
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS and not text.endswith(":"):
        return text
    return json.dumps(text)


def _emit(node: Any, depth: int, lines: list[str]) -> None:
    pad = "  " * depth
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, dict | list) and value:
                lines.append(f"{pad}{_scalar(key)}:")
                _emit(value, depth + 1, lines)
            else:
                lines.append(f"{pad}{_scalar(key)}: {_flow(value)}")
        return
    for item in node:
        if isinstance(item, dict | list) and item:
            start = len(lines)
            _emit(item, depth + 1, lines)
            # The item's first line starts at the dash: "- Key: value", "- - item".
            lines[start] = f"{pad}- {lines[start][len(pad) + 2 :]}"
        else:
            lines.append(f"{pad}- {_flow(item)}")


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)


# ------------------------------------------------------------------ zip
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip entry can hold
_FILE_MODE = 0o100644  # a regular file, rw-r--r--


def write_code_zip(path: Path) -> Path:
    """Write the provider's Lambda code to ``path``: the construct's asset files, reproducibly zipped."""
    with tempfile.TemporaryDirectory(prefix="cdk-iot-job-provider-code-") as bundle:
        root = Path(bundle)
        bundle_provider_files(root)
        files = sorted((file.relative_to(root).as_posix(), file) for file in root.rglob("*") if file.is_file())
        with zipfile.ZipFile(path, "w") as archive:
            for name, file in files:
                entry = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
                entry.create_system = 3  # Unix, so external_attr reads as a mode everywhere
                entry.external_attr = _FILE_MODE << 16
                entry.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(entry, file.read_bytes(), compresslevel=9)
    return path


def write_provider_template(out: Path) -> tuple[Path, Path]:
    """Write the template and the code zip into ``out`` (created); returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    header = (
        f"Generated by `python -m cdk_iot_job.provider_template` (cdk-iot-job {__version__}): do not edit.\n"
        f"Upload {code_zip_name()} to S3, then deploy this template with CodeBucket and CodeKey naming it\n"
        "(docs/provider-template.md)."
    )
    template = out / TEMPLATE_NAME
    template.write_text(to_yaml(provider_template(), header))
    return template, write_code_zip(out / code_zip_name())


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cdk_iot_job.provider_template [--out DIR]``: write the template and the zip."""
    parser = argparse.ArgumentParser(
        prog="python -m cdk_iot_job.provider_template",
        description="Write the Custom::IotJob provider as a standalone CloudFormation template and its code zip.",
    )
    parser.add_argument("--out", type=Path, default=Path("dist"), help="the folder to write to (default: dist)")
    args = parser.parse_args(argv)
    for path in write_provider_template(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
