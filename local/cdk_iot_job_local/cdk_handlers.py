"""CDK's own custom resources, emulated against moto S3.

CDK backs ``Custom::CDKBucketDeployment`` with a Python function that shells
out to the AWS CLI of a Lambda layer, and ``Custom::S3AutoDeleteObjects`` with
a Node.js function; neither can run here. This module plays what their
handlers do (aws-cdk ``custom-resource-handlers``:
``aws-s3-deployment/bucket-deployment-handler/index.py`` and
``aws-s3/auto-delete-objects-handler/index.ts``) with boto3 against moto, and
answers as they answer.

BucketDeployment
    Create answers a new ``aws.cdk.s3deployment.<uuid>`` id, Update and Delete
    keep the event's. Create and Update download each source zip
    (``SourceBucketNames``/``SourceObjectKeys``, the file assets the engine
    uploaded), extract it (``Extract``, default true; otherwise the zip itself
    is copied under its base name), replace ``SourceMarkers`` in every file
    (JSON-escaped when ``SourceMarkersConfig`` says ``jsonEscape``), and sync
    the result to ``DestinationBucketName`` under ``DestinationBucketKeyPrefix``
    as ``aws s3 sync`` does: each file at ``<prefix>/<path>``, ``Exclude``
    then ``Include`` filters (the last matching one wins), ``UserMetadata``
    and ``SystemMetadata``, and with ``Prune`` (default true) the removal of
    every other object under the prefix the filters include. An Update whose
    destination changed removes the old destination first, and a Delete
    removes the destination, both only when ``RetainOnDelete`` is ``false``
    (CDK's handler defaults it to true) and, for the Delete, unless the bucket
    carries an ``aws-cdk:cr-owned[:<prefix>]`` tag. Data is
    ``DestinationBucketArn`` and ``SourceObjectKeys`` (unless
    ``OutputObjectKeys`` is false). A ``DistributionId`` is accepted and its
    CloudFront invalidation skipped: the distribution is a placeholder here.

S3AutoDeleteObjects
    Create answers the ``RequestId`` as its id. Delete empties the bucket
    (every version and delete marker) only when it carries the tag
    ``aws-cdk:auto-delete-objects`` = ``true``, after adding a statement that
    denies ``s3:PutObject``; a bucket that is already gone is fine. An Update
    answers the new ``BucketName`` when it changed, so CloudFormation deletes
    the old id in the cleanup phase and the replaced bucket is emptied.
    Deliberate difference: CDK's handler answers the bucket name on every
    Update, and the first Update after a Create (whose id is the RequestId)
    would then make CloudFormation send a Delete that empties a bucket the
    stack keeps; here an Update that keeps the bucket keeps the id. A bucket
    with no tag set at all counts as untagged (CDK's handler would fail on
    S3's ``NoSuchTagSet``).
"""

from __future__ import annotations

import fnmatch
import io
import json
import mimetypes
import posixpath
import uuid
import zipfile
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from .runtime import CustomResourceResponse

if TYPE_CHECKING:  # boto3-stubs: development only
    from mypy_boto3_s3 import S3Client

__all__ = ["AUTO_DELETE_TYPE", "BUCKET_DEPLOYMENT_TYPE", "EMULATED_TYPES", "handle"]

BUCKET_DEPLOYMENT_TYPE = "Custom::CDKBucketDeployment"
AUTO_DELETE_TYPE = "Custom::S3AutoDeleteObjects"
#: The custom resource types this module plays.
EMULATED_TYPES = frozenset({BUCKET_DEPLOYMENT_TYPE, AUTO_DELETE_TYPE})

_AUTO_DELETE_TAG = "aws-cdk:auto-delete-objects"
_OWNER_TAG = "aws-cdk:cr-owned"
# What a failed Create answers as its id, as CDK's handlers answer the log stream name.
_FAILED_ID = "{logical_id}-create-failed"
# `aws s3 cp/sync --<name>` options of SystemMetadata, as PutObject parameters.
_SYSTEM_METADATA = {
    "cache-control": "CacheControl",
    "content-disposition": "ContentDisposition",
    "content-encoding": "ContentEncoding",
    "content-language": "ContentLanguage",
    "content-type": "ContentType",
    "expires": "Expires",
    "storage-class": "StorageClass",
    "sse": "ServerSideEncryption",
    "sse-kms-key-id": "SSEKMSKeyId",
    "website-redirect": "WebsiteRedirectLocation",
    "acl": "ACL",
}


class _Failed(Exception):
    """The handler answers FAILED with this reason."""


def handle(event: Mapping[str, Any], s3: S3Client) -> CustomResourceResponse:
    """Answer one CloudFormation event for a CDK-emulated type, as CDK's handler would.

    Parameters
    ----------
    event
        The event as CloudFormation sends it (properties as strings).
    s3
        An S3 client in the stack's account.

    Returns
    -------
    CustomResourceResponse
        SUCCESS with the physical id and Data, or FAILED with a reason.
    """
    handlers: dict[str, Callable[[Mapping[str, Any], S3Client], CustomResourceResponse]] = {
        BUCKET_DEPLOYMENT_TYPE: _bucket_deployment,
        AUTO_DELETE_TYPE: _auto_delete_objects,
    }
    handler = handlers.get(str(event.get("ResourceType")))
    if handler is None:
        raise ValueError(f"{event.get('ResourceType')!r} is not one of CDK's emulated types")
    try:
        return handler(event, s3)
    except (_Failed, ClientError, zipfile.BadZipFile, KeyError, ValueError) as error:
        reason = str(error) if not isinstance(error, KeyError) else f"missing property {error}"
        failed_id = str(event.get("PhysicalResourceId") or _FAILED_ID.format(logical_id=event["LogicalResourceId"]))
        return CustomResourceResponse("FAILED", failed_id, reason, {})


# ------------------------------------------------------- BucketDeployment
def _bucket_deployment(event: Mapping[str, Any], s3: S3Client) -> CustomResourceResponse:
    request = str(event["RequestType"])
    props: Mapping[str, Any] = event["ResourceProperties"]
    old: Mapping[str, Any] = event.get("OldResourceProperties") or {}
    physical_id = f"aws.cdk.s3deployment.{uuid.uuid4()}" if request == "Create" else str(event["PhysicalResourceId"])
    bucket = str(props["DestinationBucketName"])
    prefix = _prefix(props)
    retain = _flag(props, "RetainOnDelete", default=True)

    if request == "Delete" and not retain and not _owned(s3, bucket, prefix):
        _remove_prefix(s3, bucket, prefix)
    if request == "Update" and not retain and old:
        old_bucket, old_prefix = str(old.get("DestinationBucketName", "")), _prefix(old)
        if (old_bucket, old_prefix) != (bucket, prefix):
            _remove_prefix(s3, old_bucket, old_prefix)
    if request in ("Create", "Update"):
        files = _source_files(s3, props)
        _sync(s3, files, bucket, prefix, props)

    data: dict[str, Any] = {
        "DestinationBucketArn": props.get("DestinationBucketArn"),
        "SourceObjectKeys": list(props["SourceObjectKeys"]) if _flag(props, "OutputObjectKeys", default=True) else [],
    }
    return CustomResourceResponse("SUCCESS", physical_id, "", data)


def _prefix(props: Mapping[str, Any]) -> str:
    prefix = str(props.get("DestinationBucketKeyPrefix", ""))
    return "" if prefix == "/" else prefix  # "/" means no prefix


def _flag(props: Mapping[str, Any], name: str, *, default: bool) -> bool:
    # CloudFormation delivers booleans as "true"/"false".
    return str(props.get(name, "true" if default else "false")).lower() == "true"


def _owned(s3: S3Client, bucket: str, prefix: str) -> bool:
    """Whether another custom resource owns the bucket (its removal empties it): leave the objects."""
    tag = f"{_OWNER_TAG}:{prefix}" if prefix else _OWNER_TAG
    return any(key.startswith(tag) for key in _tags(s3, bucket))


def _tags(s3: S3Client, bucket: str) -> dict[str, str]:
    try:
        tag_set = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NoSuchTagSet":
            return {}
        raise
    return {tag["Key"]: tag["Value"] for tag in tag_set}


def _remove_prefix(s3: S3Client, bucket: str, prefix: str) -> None:
    # `aws s3 rm s3://bucket/<prefix> --recursive`: every key that starts with the prefix as written.
    for key in _keys(s3, bucket, prefix):
        s3.delete_object(Bucket=bucket, Key=key)


def _keys(s3: S3Client, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


def _source_files(s3: S3Client, props: Mapping[str, Any]) -> dict[str, bytes]:
    """What the handler's working directory holds after downloading (and extracting) every source."""
    buckets, keys = list(props["SourceBucketNames"]), list(props["SourceObjectKeys"])
    markers: list[Any] = list(props.get("SourceMarkers") or [{} for _ in buckets])
    configs: list[Any] = list(props.get("SourceMarkersConfig") or [{} for _ in buckets])
    if not len(buckets) == len(keys) == len(markers):
        raise _Failed("'source_markers' and 's3_source_zips' must be the same length")
    files: dict[str, bytes] = {}
    for bucket, key, marker, config in zip(buckets, keys, markers, configs, strict=False):
        try:
            archive = s3.get_object(Bucket=str(bucket), Key=str(key))["Body"].read()
        except ClientError as error:
            raise _Failed(f"cannot read source s3://{bucket}/{key}: {error}") from error
        if not _flag(props, "Extract", default=True):
            files[posixpath.basename(str(key))] = archive
            continue
        tokens = _marker_tokens(dict(marker or {}), dict(config or {}))
        with zipfile.ZipFile(io.BytesIO(archive)) as opened:
            for member in opened.infolist():
                if not member.is_dir():
                    files[member.filename] = _replace_markers(opened.read(member), tokens)
    return files


def _marker_tokens(markers: dict[str, Any], config: dict[str, Any]) -> dict[bytes, bytes]:
    if str(config.get("jsonEscape", "false")).lower() != "true":
        return {str(key).encode(): str(value).encode() for key, value in markers.items()}
    # A JSON-safe value: a string's JSON form without its quotes, anything else as JSON.
    tokens = {}
    for key, value in markers.items():
        serialized = json.dumps(value)
        if serialized.startswith('"') and serialized.endswith('"'):
            serialized = serialized[1:-1]
        tokens[str(key).encode()] = serialized.encode()
    return tokens


def _replace_markers(content: bytes, tokens: dict[bytes, bytes]) -> bytes:
    for token, replacement in tokens.items():
        content = content.replace(token, replacement)
    return content


def _sync(s3: S3Client, files: dict[str, bytes], bucket: str, prefix: str, props: Mapping[str, Any]) -> None:
    """``aws s3 sync <dir> s3://<bucket>/<prefix> [--delete] [--exclude ...] [--include ...]``."""
    # sync treats the destination as a folder: "<prefix>/<path>".
    folder = prefix if not prefix or prefix.endswith("/") else f"{prefix}/"
    filters = [("exclude", str(p)) for p in props.get("Exclude") or []]
    filters += [("include", str(p)) for p in props.get("Include") or []]
    extra = _metadata_parameters(props)
    wanted = {f"{folder}{path}": body for path, body in files.items() if _included(path, filters)}
    for key, body in sorted(wanted.items()):
        parameters = dict(extra)
        parameters.setdefault("ContentType", mimetypes.guess_type(key)[0] or "binary/octet-stream")
        s3.put_object(Bucket=bucket, Key=key, Body=body, **parameters)
    if _flag(props, "Prune", default=True):
        for key in _keys(s3, bucket, folder):
            if key not in wanted and _included(key[len(folder) :], filters):
                s3.delete_object(Bucket=bucket, Key=key)


def _included(path: str, filters: list[tuple[str, str]]) -> bool:
    # The AWS CLI's rule: everything is included, and the last filter that matches decides.
    included = True
    for kind, pattern in filters:
        if fnmatch.fnmatchcase(path, pattern):
            included = kind == "include"
    return included


def _metadata_parameters(props: Mapping[str, Any]) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    user = {str(key).lower(): str(value) for key, value in (props.get("UserMetadata") or {}).items()}
    if user:
        parameters["Metadata"] = user
    for key, value in (props.get("SystemMetadata") or {}).items():
        name = _SYSTEM_METADATA.get(str(key).lower())
        if name is None:
            raise _Failed(f"SystemMetadata {key!r} is not emulated locally (known: {', '.join(_SYSTEM_METADATA)})")
        parameters[name] = str(value)
    return parameters


# ---------------------------------------------------- S3AutoDeleteObjects
def _auto_delete_objects(event: Mapping[str, Any], s3: S3Client) -> CustomResourceResponse:
    request = str(event["RequestType"])
    props: Mapping[str, Any] = event.get("ResourceProperties") or {}
    if request == "Create":
        return CustomResourceResponse("SUCCESS", str(event["RequestId"]), "", {})
    if request == "Update":
        old_name = (event.get("OldResourceProperties") or {}).get("BucketName")
        new_name = props.get("BucketName") or old_name
        # A new bucket: answer its name, so the cleanup Delete empties the replaced one.
        physical_id = str(new_name) if new_name != old_name else str(event["PhysicalResourceId"])
        return CustomResourceResponse("SUCCESS", physical_id, "", {})
    bucket = props.get("BucketName")
    if not bucket:
        raise _Failed("No BucketName was provided.")
    try:
        if _tags(s3, str(bucket)).get(_AUTO_DELETE_TAG) == "true":
            _deny_writes(s3, str(bucket))
            _empty(s3, str(bucket))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "NoSuchBucket":
            raise
    return CustomResourceResponse("SUCCESS", str(event["PhysicalResourceId"]), "", {})


def _deny_writes(s3: S3Client, bucket: str) -> None:
    """Add a statement denying ``s3:PutObject``, as CDK's handler does before emptying."""
    try:
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "NoSuchBucketPolicy":
            raise
        policy = {"Version": "2012-10-17", "Statement": []}
    policy["Statement"].append(
        {"Principal": "*", "Effect": "Deny", "Action": ["s3:PutObject"], "Resource": [f"arn:aws:s3:::{bucket}/*"]}
    )
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


def _empty(s3: S3Client, bucket: str) -> None:
    while True:
        listed = s3.list_object_versions(Bucket=bucket)
        records = [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]
        if not records:
            return
        objects = [{"Key": record["Key"], "VersionId": record["VersionId"]} for record in records]
        s3.delete_objects(Bucket=bucket, Delete={"Objects": objects})  # type: ignore[typeddict-item]
        if not listed.get("IsTruncated"):
            return
