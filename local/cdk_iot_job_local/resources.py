"""The stack's other resources, as far as IoT jobs need them, made real in moto.

Thing groups, things, IAM roles and policies, and S3 buckets (with their
tags, in the stack's region) are created in moto, in the stack's account and
region, so job targets and presigned-URL roles exist. A Lambda function with
a Python runtime keeps its code folder, which is how custom resources reach
their provider: a CDK asset's folder, or else the zip its ``Code.S3Bucket``
and ``Code.S3Key`` name in moto S3 (:func:`put_file` puts one there),
extracted. Every other type only gets a physical id and an ARN, as
CloudFormation would show.

As in CloudFormation, deleting a bucket that still holds objects fails: a
stack empties its buckets through ``Custom::S3AutoDeleteObjects``
(:mod:`.cdk_handlers`).
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from botocore.exceptions import ClientError

from cdk_iot_job_provider.gate_rules import COUNT_ATTRIBUTES

from .environment import Environment
from .runtime import LocalAws
from .state import ResourceState
from .template import IOT_JOB_TYPE, Stack

if TYPE_CHECKING:  # boto3-stubs: development only
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_iot import IoTClient
    from mypy_boto3_s3 import S3Client

__all__ = [
    "ATTRIBUTES",
    "NeedsReplacement",
    "ResourceContext",
    "create",
    "delete",
    "put_file",
    "replacement_reason",
    "supported_attributes",
    "update",
    "upload_file_assets",
]

#: ``Fn::GetAtt`` attributes each type has locally (the creators below return them).
ATTRIBUTES: dict[str, frozenset[str]] = {
    # The provider's response Data (issue 11: parity with AWS::IoT::Job).
    # A gated job also answers its counts and verdict (docs/rollout-gates.md).
    IOT_JOB_TYPE: frozenset({"Arn", "JobId", "CreatedAt", "TargetedThings", "GateVerdict", *COUNT_ATTRIBUTES.values()}),
    "AWS::IoT::ThingGroup": frozenset({"Arn", "Id"}),
    "AWS::IoT::Thing": frozenset({"Arn", "Id"}),
    "AWS::IAM::Role": frozenset({"Arn", "RoleId"}),
    "AWS::IAM::Policy": frozenset(),
    "AWS::S3::Bucket": frozenset({"Arn", "DomainName", "RegionalDomainName"}),
    "AWS::Lambda::Function": frozenset({"Arn"}),
    # What CDK's handlers answer (cdk_handlers emulates them).
    "Custom::CDKBucketDeployment": frozenset({"DestinationBucketArn", "SourceObjectKeys", "SourceObjectVersionIds"}),
    "Custom::S3AutoDeleteObjects": frozenset(),
}
# Every other AWS type is a placeholder with an ARN only.
_PLACEHOLDER_ATTRIBUTES = frozenset({"Arn"})


def supported_attributes(resource_type: str) -> frozenset[str] | None:
    """The ``Fn::GetAtt`` attributes of ``resource_type``; ``None`` when its provider decides.

    Custom resources other than ``Custom::IotJob`` answer whatever Data their
    provider sends, which only a deploy shows.
    """
    if resource_type in ATTRIBUTES:
        return ATTRIBUTES[resource_type]
    if resource_type.startswith("Custom::") or resource_type == "AWS::CloudFormation::CustomResource":
        return None
    return _PLACEHOLDER_ATTRIBUTES


class NeedsReplacement(Exception):
    """The change can only be made by creating a new resource."""


@dataclass
class ResourceContext:
    """What provisioning needs to know about the stack being deployed."""

    aws: LocalAws
    stack: Stack
    stack_id: str
    assets_dir: Path

    @property
    def environment(self) -> Environment:
        """The account and region the stack is deployed to."""
        return self.stack.environment

    @overload
    def client(self, service: Literal["iot"]) -> IoTClient: ...
    @overload
    def client(self, service: Literal["s3"]) -> S3Client: ...
    @overload
    def client(self, service: Literal["iam"]) -> IAMClient: ...

    def client(self, service: Literal["iot", "s3", "iam"]) -> IoTClient | S3Client | IAMClient:
        """A moto client in the stack's account and region."""
        where = self.environment
        return self.aws.client(service, account=where.account, region=where.region)

    def generated_name(self, logical_id: str, *, max_length: int = 64, lower: bool = False) -> str:
        """A name like CloudFormation's ``<stack>-<logical id>-<suffix>``, stable per stack."""
        suffix = hashlib.sha256(f"{self.stack_id}/{logical_id}".encode()).hexdigest()[:12].upper()
        head = f"{self.stack.name}-{logical_id}"[: max_length - len(suffix) - 1]
        name = f"{head}-{suffix}"
        return name.lower() if lower else name


Created = tuple[str, dict[str, str]]


def create(ctx: ResourceContext, logical_id: str, resource_type: str, props: dict[str, Any]) -> ResourceState:
    """Create one resource; returns its state (without the template bookkeeping)."""
    creator = _CREATORS.get(resource_type, _create_placeholder)
    physical_id, attributes = creator(ctx, logical_id, resource_type, props)
    state = ResourceState(type=resource_type, physical_id=physical_id, properties=props, attributes=attributes)
    if resource_type == "AWS::Lambda::Function":
        state.asset, state.handler, state.timeout = _keep_code(ctx, logical_id, props)
    return state


def replacement_reason(old: ResourceState, props: dict[str, Any]) -> str | None:
    """Why changing ``old`` to ``props`` needs a new resource, or ``None``."""
    name_property = _NAME_PROPERTIES.get(old.type)
    if name_property and props.get(name_property) != old.properties.get(name_property):
        return f"{name_property} changed"
    return None


def update(ctx: ResourceContext, logical_id: str, old: ResourceState, props: dict[str, Any]) -> ResourceState:
    """Update in place, or raise :class:`NeedsReplacement`."""
    reason = replacement_reason(old, props)
    if reason is not None:
        raise NeedsReplacement(reason)
    updater = _UPDATERS.get(old.type)
    if updater is not None:
        updater(ctx, old, props)
    state = ResourceState(**{**old.__dict__, "properties": props})
    if old.type == "AWS::Lambda::Function":
        state.asset, state.handler, state.timeout = _keep_code(ctx, logical_id, props)
    return state


def delete(ctx: ResourceContext, resource: ResourceState) -> None:
    """Delete one resource; one that is already gone counts as deleted."""
    deleter = _DELETERS.get(resource.type)
    if deleter is None:
        return
    try:
        deleter(ctx, resource)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in {
            "ResourceNotFoundException",
            "NoSuchEntity",
            "NoSuchBucket",
        }:
            raise


def upload_file_assets(ctx: ResourceContext) -> list[str]:
    """Put the stack's assets where the template expects them, as ``cdk deploy`` publishes them.

    Reads ``<stack>.assets.json``; placeholders in bucket names and keys are
    the stack's account, region and partition, and each staging bucket is
    made in its destination's region. A directory asset is zipped, as CDK
    packages it. Assets that only a Lambda function's ``Code`` or a layer's
    ``Content`` use are not uploaded: no function runs from S3 locally (a
    Python provider runs from its folder), and the AWS CLI layer alone is
    20 MB the state file would carry. Returns the S3 URLs uploaded.
    """
    manifest = ctx.stack.outdir / f"{ctx.stack.name}.assets.json"
    if not manifest.exists():
        return []
    s3 = ctx.client("s3")
    used = _used_outside_lambda_code(ctx.stack)
    uploaded = []
    for entry in json.loads(manifest.read_text()).get("files", {}).values():
        source = entry.get("source", {})
        packaging = source.get("packaging", "file")
        if packaging not in ("file", "zip") or "path" not in source:
            continue
        path = ctx.stack.outdir / source["path"]
        body: bytes | None = None
        for destination in entry.get("destinations", {}).values():
            bucket = _placeholders(destination["bucketName"], ctx.environment)
            key = _placeholders(destination["objectKey"], ctx.environment)
            if key not in used:
                continue
            if body is None:
                body = _zipped(path) if packaging == "zip" else path.read_bytes()
            region = _placeholders(destination.get("region") or ctx.environment.region, ctx.environment)
            _ensure_bucket(s3, bucket, region)
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            uploaded.append(f"s3://{bucket}/{key}")
    return uploaded


def _used_outside_lambda_code(stack: Stack) -> str:
    """The template's text without Lambda code and layer content: an asset key found in it is needed."""
    resources = {}
    for logical_id, resource in stack.resources.items():
        properties = dict(resource.get("Properties") or {})
        if resource.get("Type") in ("AWS::Lambda::Function", "AWS::Serverless::Function"):
            properties.pop("Code", None)
        elif resource.get("Type") == "AWS::Lambda::LayerVersion":
            properties.pop("Content", None)
        resources[logical_id] = {**resource, "Properties": properties}
    return json.dumps({**stack.template, "Resources": resources})


def _zipped(folder: Path) -> bytes:
    """A directory asset as CDK zips it: its files, relative to the folder, in a stable order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def _ensure_bucket(s3: S3Client, bucket: str, region: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        _make_bucket(s3, bucket, region)


def _make_bucket(s3: S3Client, bucket: str, region: str) -> None:
    # us-east-1 takes no LocationConstraint; every other region needs one.
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})  # type: ignore[typeddict-item]


def _placeholders(text: str, environment: Environment) -> str:
    return (
        text.replace("${AWS::AccountId}", environment.account)
        .replace("${AWS::Region}", environment.region)
        .replace("${AWS::Partition}", environment.partition)
    )


def _create_placeholder(ctx: ResourceContext, logical_id: str, resource_type: str, props: dict[str, Any]) -> Created:
    name = ctx.generated_name(logical_id)
    service = resource_type.split("::")[1].lower() if resource_type.count("::") == 2 else "cloudformation"
    return name, {"Arn": ctx.environment.arn(service, name)}


def _create_thing_group(ctx: ResourceContext, logical_id: str, _type: str, props: dict[str, Any]) -> Created:
    name = props.get("ThingGroupName") or ctx.generated_name(logical_id, max_length=128)
    created = ctx.client("iot").create_thing_group(thingGroupName=name)
    return name, {"Arn": created["thingGroupArn"], "Id": created["thingGroupId"]}


def _create_thing(ctx: ResourceContext, logical_id: str, _type: str, props: dict[str, Any]) -> Created:
    name = props.get("ThingName") or ctx.generated_name(logical_id, max_length=128)
    created = ctx.client("iot").create_thing(thingName=name)
    return name, {"Arn": created["thingArn"], "Id": created["thingId"]}


def _create_role(ctx: ResourceContext, logical_id: str, _type: str, props: dict[str, Any]) -> Created:
    name = props.get("RoleName") or ctx.generated_name(logical_id)
    iam = ctx.client("iam")
    role = iam.create_role(
        RoleName=name,
        Path=props.get("Path", "/"),
        AssumeRolePolicyDocument=json.dumps(props.get("AssumeRolePolicyDocument", {})),
        Description=props.get("Description", ""),
    )["Role"]
    _put_inline_policies(iam, name, props)
    return name, {"Arn": role["Arn"], "RoleId": role["RoleId"]}


def _update_role(ctx: ResourceContext, old: ResourceState, props: dict[str, Any]) -> None:
    iam = ctx.client("iam")
    iam.update_assume_role_policy(
        RoleName=old.physical_id, PolicyDocument=json.dumps(props.get("AssumeRolePolicyDocument", {}))
    )
    for policy in old.properties.get("Policies", []):
        iam.delete_role_policy(RoleName=old.physical_id, PolicyName=policy["PolicyName"])
    _put_inline_policies(iam, old.physical_id, props)


def _put_inline_policies(iam: Any, role_name: str, props: dict[str, Any]) -> None:
    for policy in props.get("Policies", []):
        iam.put_role_policy(
            RoleName=role_name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(policy["PolicyDocument"])
        )


def _delete_role(ctx: ResourceContext, resource: ResourceState) -> None:
    iam = ctx.client("iam")
    for name in iam.list_role_policies(RoleName=resource.physical_id)["PolicyNames"]:
        iam.delete_role_policy(RoleName=resource.physical_id, PolicyName=name)
    iam.delete_role(RoleName=resource.physical_id)


def _create_policy(ctx: ResourceContext, logical_id: str, _type: str, props: dict[str, Any]) -> Created:
    _put_policy(ctx, props)
    return ctx.generated_name(logical_id), {}


def _put_policy(ctx: ResourceContext, props: dict[str, Any]) -> None:
    iam = ctx.client("iam")
    for role in props.get("Roles", []):
        iam.put_role_policy(
            RoleName=role, PolicyName=props["PolicyName"], PolicyDocument=json.dumps(props["PolicyDocument"])
        )


def _update_policy(ctx: ResourceContext, old: ResourceState, props: dict[str, Any]) -> None:
    _delete_policy(ctx, old)
    _put_policy(ctx, props)


def _delete_policy(ctx: ResourceContext, resource: ResourceState) -> None:
    iam = ctx.client("iam")
    for role in resource.properties.get("Roles", []):
        try:
            iam.delete_role_policy(RoleName=role, PolicyName=resource.properties["PolicyName"])
        except ClientError:
            continue  # the role went first


def _create_bucket(ctx: ResourceContext, logical_id: str, _type: str, props: dict[str, Any]) -> Created:
    name = props.get("BucketName") or ctx.generated_name(logical_id, max_length=63, lower=True)
    s3 = ctx.client("s3")
    _make_bucket(s3, name, ctx.environment.region)
    _put_bucket_tags(s3, name, props)
    suffix = ctx.environment.url_suffix
    return name, {
        "Arn": f"arn:{ctx.environment.partition}:s3:::{name}",
        "DomainName": f"{name}.s3.{suffix}",
        "RegionalDomainName": f"{name}.s3.{ctx.environment.region}.{suffix}",
    }


def _update_bucket(ctx: ResourceContext, old: ResourceState, props: dict[str, Any]) -> None:
    s3 = ctx.client("s3")
    if not _put_bucket_tags(s3, old.physical_id, props):
        s3.delete_bucket_tagging(Bucket=old.physical_id)


def _put_bucket_tags(s3: S3Client, bucket: str, props: dict[str, Any]) -> bool:
    """Tag the bucket as the template says; ``False`` when it has no tags."""
    # CDK's handlers read them: aws-cdk:auto-delete-objects, aws-cdk:cr-owned:<prefix>:<id>.
    tags = [{"Key": str(tag["Key"]), "Value": str(tag["Value"])} for tag in props.get("Tags") or []]
    if tags:
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})  # type: ignore[typeddict-item]
    return bool(tags)


def _delete_bucket(ctx: ResourceContext, resource: ResourceState) -> None:
    # Like CloudFormation: a bucket that still holds objects fails with BucketNotEmpty.
    ctx.client("s3").delete_bucket(Bucket=resource.physical_id)


def _create_function(ctx: ResourceContext, logical_id: str, _type: str, props: dict[str, Any]) -> Created:
    name = props.get("FunctionName") or ctx.generated_name(logical_id)
    return name, {"Arn": ctx.environment.arn("lambda", f"function:{name}")}


def _keep_code(ctx: ResourceContext, logical_id: str, props: dict[str, Any]) -> tuple[str | None, str | None, float]:
    """Copy a Python function's code folder next to the state, so later runs can invoke it.

    The folder is the CDK asset's, or else the zip in moto S3 that
    ``Code.S3Bucket``/``Code.S3Key`` name, extracted. Functions of other
    runtimes are never run locally (:mod:`.support`): their code is not kept.

    Raises
    ------
    ValueError
        A plain template's function (no CDK asset manifest) whose code zip
        is not in moto S3, or is not a zip; as CloudFormation, the function
        is not created.
    """
    timeout = float(props.get("Timeout", 3))
    if not str(props.get("Runtime", "")).startswith("python"):
        return None, props.get("Handler"), timeout
    try:
        source = ctx.stack.asset_dir(logical_id)
    except (FileNotFoundError, KeyError, ValueError):
        return _code_from_s3(ctx, logical_id, props), props.get("Handler"), timeout
    kept = ctx.assets_dir / source.name
    if not kept.exists():
        shutil.copytree(source, kept)
    return kept.name, props.get("Handler"), timeout


def _code_from_s3(ctx: ResourceContext, logical_id: str, props: dict[str, Any]) -> str | None:
    """The folder (under ``assets_dir``) holding the function's code zip from moto S3, extracted; ``None`` without one.

    One folder per zip content, so redeploying the same zip reuses it.
    """
    code = props.get("Code")
    bucket, key = (code.get("S3Bucket"), code.get("S3Key")) if isinstance(code, dict) else (None, None)
    if not (isinstance(bucket, str) and isinstance(key, str)):
        return None
    version = code.get("S3ObjectVersion") if isinstance(code, dict) else None
    try:
        body = ctx.client("s3").get_object(Bucket=bucket, Key=key, **({"VersionId": version} if version else {}))
    except ClientError as error:
        if (ctx.stack.outdir / f"{ctx.stack.name}.assets.json").exists():
            return None  # a CDK asset: its folder is its code, and none was found
        reason = error.response.get("Error", {}).get("Code", "")
        raise ValueError(
            f"{logical_id}: Error occurred while GetObject. S3 Error Code: {reason}. Code s3://{bucket}/{key} "
            f"is not in the local S3 (upload it first: --upload FILE=s3://{bucket}/{key})"
        ) from None
    data = body["Body"].read()
    kept = ctx.assets_dir / f"s3.{hashlib.sha256(data).hexdigest()[:32]}"
    if not kept.exists():
        _extract_zip(data, kept, f"{logical_id}: Code s3://{bucket}/{key}")
    return kept.name


def _extract_zip(data: bytes, destination: Path, what: str) -> None:
    """Extract a Lambda code zip into ``destination``, whole or not at all; entries may not leave it."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for name in archive.namelist():
                parts = Path(name).parts
                if name.startswith(("/", "\\")) or ".." in parts:
                    raise ValueError(f"{what}: the zip entry {name!r} points outside the code folder")
            destination.parent.mkdir(parents=True, exist_ok=True)
            partial = Path(tempfile.mkdtemp(dir=destination.parent, prefix=".extracting-"))
            try:
                archive.extractall(partial)
                partial.rename(destination)
            finally:
                shutil.rmtree(partial, ignore_errors=True)
    except zipfile.BadZipFile as error:
        raise ValueError(f"{what} is not a zip: {error}") from None


def put_file(aws: LocalAws, environment: Environment, path: Path, bucket: str, key: str) -> str:
    """Put a local file into moto S3 in ``environment``'s account (the bucket made in its region if new).

    For a template's code zip, as ``aws s3 cp`` puts it before a deploy. Returns the ``s3://`` URL.
    """
    s3 = aws.client("s3", account=environment.account, region=environment.region)
    _ensure_bucket(s3, bucket, environment.region)
    s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
    return f"s3://{bucket}/{key}"


def _delete_thing_group(ctx: ResourceContext, resource: ResourceState) -> None:
    ctx.client("iot").delete_thing_group(thingGroupName=resource.physical_id)


def _delete_thing(ctx: ResourceContext, resource: ResourceState) -> None:
    ctx.client("iot").delete_thing(thingName=resource.physical_id)


_CREATORS: dict[str, Callable[[ResourceContext, str, str, dict[str, Any]], Created]] = {
    "AWS::IoT::ThingGroup": _create_thing_group,
    "AWS::IoT::Thing": _create_thing,
    "AWS::IAM::Role": _create_role,
    "AWS::IAM::Policy": _create_policy,
    "AWS::S3::Bucket": _create_bucket,
    "AWS::Lambda::Function": _create_function,
}
_UPDATERS: dict[str, Callable[[ResourceContext, ResourceState, dict[str, Any]], None]] = {
    "AWS::IAM::Role": _update_role,
    "AWS::IAM::Policy": _update_policy,
    "AWS::S3::Bucket": _update_bucket,
}
_DELETERS: dict[str, Callable[[ResourceContext, ResourceState], None]] = {
    "AWS::IoT::ThingGroup": _delete_thing_group,
    "AWS::IoT::Thing": _delete_thing,
    "AWS::IAM::Role": _delete_role,
    "AWS::IAM::Policy": _delete_policy,
    "AWS::S3::Bucket": _delete_bucket,
}
# Changing these names means a new resource, as in CloudFormation.
_NAME_PROPERTIES = {
    "AWS::IoT::ThingGroup": "ThingGroupName",
    "AWS::IoT::Thing": "ThingName",
    "AWS::IAM::Role": "RoleName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::Lambda::Function": "FunctionName",
}
