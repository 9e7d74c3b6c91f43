"""Job documents, and the presigned-URL placeholders inside them.

A ``JobDocument`` is inline (``from_object``, ``from_string``), a local file
uploaded as a CDK asset (``from_file``) or an existing S3 object
(``from_bucket``). ``IotJob`` binds it once, which yields the ``Document`` or
``DocumentSource`` property and the S3 objects that IoT and the provider need
to read.

A document points devices at firmware through placeholders that IoT replaces
with presigned URLs when a device fetches the document::

    ${aws:iot:s3-presigned-url-v2:https://s3.<region>.amazonaws.com/<bucket>/<key>}

``JobDocument.presigned_url`` writes one for a bucket of the app;
placeholders written by hand with a literal bucket name are recognised too.
``presigned_url_role`` builds the least-privilege role IoT assumes to sign them.

Limits come from the shared schema (``cdk_iot_job_provider.schema``) only.
"""

from __future__ import annotations

import json
import os
import re
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import jsii
from aws_cdk import Annotations, Aws, IStableStringProducer, Lazy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct, IConstruct

from cdk_iot_job_provider import schema

from .tokens import is_unresolved

__all__ = ["BoundDocument", "JobDocument", "S3ObjectRef", "presigned_url_role"]

IOT_PRINCIPAL = "iot.amazonaws.com"
PLACEHOLDER_PREFIX = "${aws:iot:s3-presigned-url-v2:"

# The string form of a CDK token (token-map.ts: key characters a-zA-Z0-9:._-).
_TOKEN = r"\$\{Token\[[A-Za-z0-9:._-]+\]\}"
# A placeholder, v2 or the older v1 form. Tokens in it carry their own braces,
# so the URL runs to the first "}" that closes no token (possessive: an
# unterminated placeholder must not end at a token's brace instead).
_PLACEHOLDER = re.compile(r"\$\{aws:iot:s3-presigned-url(?:-v2)?:(?P<url>(?:" + _TOKEN + r"|[^}])*+)\}")
# Path-style S3 URL, the only form the placeholder takes.
_S3_URL = re.compile(r"https://s3[.-][^/]+/(?P<bucket>[^/]+)/(?P<key>.+)", re.DOTALL)
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")

_UNRECOGNISED_WARNING = "cdk-iot-job:unrecognisedPresignedUrlPlaceholder"
# Where the object of JobDocument.presigned_url ends up, for errors.
_PLACEHOLDER_WHERE = "Document presigned-URL placeholder"


@dataclass(frozen=True)
class S3ObjectRef:
    """One S3 object: a bucket and a key (either may hold tokens).

    Attributes
    ----------
    bucket
        The bucket; its ``encryption_key``, if any, is what a reader must be
        allowed to decrypt with.
    key
        The object key.
    """

    bucket: s3.IBucket
    key: str

    def arn(self) -> str:
        """The object's ARN, for an IAM policy."""
        return self.bucket.arn_for_objects(self.key)


@dataclass(frozen=True)
class BoundDocument:
    """A ``JobDocument`` bound to its ``IotJob``.

    Attributes
    ----------
    document
        The ``Document`` property: compact JSON, possibly with tokens. ``None``
        when the document is read from S3.
    document_source
        The ``DocumentSource`` property: the https URL of an S3 object.
    source_object
        The object behind ``document_source``, which the provider must be
        allowed to read for CreateJob.
    presigned_objects
        Every object a presigned-URL placeholder in the document points at,
        each once, in document order.
    """

    document: str | None
    document_source: str | None
    source_object: S3ObjectRef | None
    presigned_objects: tuple[S3ObjectRef, ...]


# Per app (its root construct): placeholder string -> the object it was made for.
# Each placeholder holds a token of its own (see _fresh_token), so an entry can
# never be hit by a placeholder made for another bucket; and an app's entries go
# with the app instead of piling up for the life of the process.
_REGISTERED: weakref.WeakKeyDictionary[IConstruct, dict[str, S3ObjectRef]] = weakref.WeakKeyDictionary()


def _placeholders_of(scope: IConstruct) -> dict[str, S3ObjectRef]:
    """The placeholders ``presigned_url`` made in the app ``scope`` belongs to."""
    return _REGISTERED.setdefault(scope.node.root, {})


class JobDocument:
    """The document of an ``IotJob``: inline, a local file, or an S3 object.

    Create one with a ``from_*`` factory. Inline and file documents are
    checked against the schema's ``Document`` rule (valid JSON, length) when
    the job is built; an inline document with unresolved tokens is left to the
    provider at deploy time.

    Examples
    --------
    >>> JobDocument.from_object({
    ...     "operation": "firmware-update",
    ...     "url": JobDocument.presigned_url(firmware_bucket, "fw/2.4.1.bin"),
    ... })
    >>> JobDocument.from_file("jobs/firmware-update.json")
    """

    @staticmethod
    def from_object(document: Mapping[str, Any]) -> JobDocument:
        """A document given as a mapping, rendered as compact JSON with sorted keys.

        Raises
        ------
        ValueError
            (``InvalidPropertyError``) when the mapping is not JSON-serializable.
        """
        if not isinstance(document, Mapping):
            raise TypeError(f"JobDocument.from_object takes a mapping, not {type(document).__name__}")
        return _InlineDocument(_render(document))

    @staticmethod
    def from_string(document: str) -> JobDocument:
        """A document given as JSON text, used as is."""
        if not isinstance(document, str):
            raise TypeError(f"JobDocument.from_string takes a str, not {type(document).__name__}")
        return _InlineDocument(document)

    @staticmethod
    def from_file(path: str | os.PathLike[str]) -> JobDocument:
        """A JSON file, uploaded as a CDK asset; ``DocumentSource`` is its S3 URL.

        The file is read when the job is built: it must be UTF-8 JSON within
        the schema's ``Document`` limits, and the presigned-URL placeholders it
        contains (written with literal bucket names) are found as in an inline
        document.

        Raises
        ------
        ValueError
            (``InvalidPropertyError``) when ``path`` is not a file.
        """
        file = Path(path)
        if not file.is_file():
            raise schema.InvalidPropertyError(f"job document file {str(file)!r} does not exist or is not a file")
        return _FileDocument(file)

    @staticmethod
    def from_bucket(bucket: s3.IBucket, key: str) -> JobDocument:
        """An existing S3 object; ``DocumentSource`` is its URL.

        The object is not read at synth time, so placeholders in it are not
        found: give the job a ``presigned_url_config`` role for them.

        Raises
        ------
        ValueError
            (``InvalidPropertyError``) when a literal bucket name or key holds
            ``*`` or ``?``, which would become an IAM wildcard in the
            provider's ``s3:GetObject`` grant.
        """
        return _BucketDocument(_checked_object(bucket, key, "DocumentSource"))

    @staticmethod
    def presigned_url(bucket: s3.IBucket, key: str) -> str:
        """The placeholder IoT replaces with a presigned URL of ``key`` in ``bucket``.

        Put it anywhere in an inline document. The region and URL suffix are
        the stack's, so the placeholder works in every region and partition.
        The key is used verbatim (as ``IBucket.url_for_object`` does): keep it
        URL-safe.

        Raises
        ------
        ValueError
            (``InvalidPropertyError``) when a literal bucket name or key holds
            ``*`` or ``?`` (an IAM wildcard in the presigned-URL role), or the
            key holds ``}``.
        """
        ref = _checked_object(bucket, key, _PLACEHOLDER_WHERE)
        url = f"https://s3.{Aws.REGION}.{Aws.URL_SUFFIX}/{_fresh_token(bucket.bucket_name)}/{ref.key}"
        placeholder = f"{PLACEHOLDER_PREFIX}{url}}}"
        _placeholders_of(bucket)[placeholder] = ref
        return placeholder

    @staticmethod
    def presigned_url_for_asset(asset: s3_assets.Asset) -> str:
        """The placeholder for the S3 object of a CDK file asset (firmware, say)."""
        return JobDocument.presigned_url(asset.bucket, asset.s3_object_key)

    def bind(self, scope: Construct) -> BoundDocument:
        """Render the document for ``scope``, the ``IotJob`` it belongs to.

        Called once per job; it may add constructs to ``scope`` (the file
        asset, imported buckets of hand-written placeholders).

        Raises
        ------
        ValueError
            (``InvalidPropertyError``) when a literal document breaks the
            schema's ``Document`` rule. The message never quotes the document.
        """
        raise NotImplementedError


class _InlineDocument(JobDocument):
    def __init__(self, text: str) -> None:
        self._text = text

    def bind(self, scope: Construct) -> BoundDocument:
        if not is_unresolved(self._text):
            _check_document(self._text)
        return BoundDocument(
            document=self._text,
            document_source=None,
            source_object=None,
            presigned_objects=_presigned_objects(scope, self._text, registered=True),
        )


class _FileDocument(JobDocument):
    def __init__(self, path: Path) -> None:
        self._path = path

    def bind(self, scope: Construct) -> BoundDocument:
        text = self._read()
        _check_document(text, where=f"job document file {str(self._path)!r}")
        # Absolute: the jsii runtime resolves relative paths against its own cwd.
        asset = s3_assets.Asset(scope, "Document", path=str(self._path.resolve()))
        return BoundDocument(
            document=None,
            document_source=asset.http_url,
            source_object=S3ObjectRef(asset.bucket, asset.s3_object_key),
            # A file holds no tokens, so only hand-written placeholders count.
            presigned_objects=_presigned_objects(scope, text, registered=False),
        )

    def _read(self) -> str:
        where = f"job document file {str(self._path)!r}"
        try:
            # Bytes, not read_text: newline translation would change what is
            # measured against what is uploaded.
            return self._path.read_bytes().decode("utf-8")
        except OSError as error:
            raise schema.InvalidPropertyError(f"{where} cannot be read: {error.strerror}") from None
        except UnicodeDecodeError:
            raise schema.InvalidPropertyError(f"{where} must be UTF-8 text") from None


class _BucketDocument(JobDocument):
    def __init__(self, source: S3ObjectRef) -> None:
        self._source = source

    def bind(self, scope: Construct) -> BoundDocument:
        return BoundDocument(
            document=None,
            document_source=self._source.bucket.url_for_object(self._source.key),
            source_object=self._source,
            presigned_objects=(),
        )


def presigned_url_role(scope: Construct, construct_id: str, objects: Sequence[S3ObjectRef]) -> iam.Role:
    """A role IoT assumes to presign URLs of exactly ``objects``.

    Only ``iot.amazonaws.com`` may assume it, and only on behalf of the
    stack's account (``aws:SourceAccount``, against the confused deputy). It
    may ``s3:GetObject`` the objects, in one statement, and ``kms:Decrypt``
    with the encryption key of each of their buckets that has one. Nothing
    else.

    Parameters
    ----------
    scope, construct_id
        Where the role is defined.
    objects
        The objects, at least one; duplicates are granted once.

    Raises
    ------
    ValueError
        When ``objects`` is empty.
    """
    if not objects:
        raise ValueError("presigned_url_role needs at least one S3 object")
    stack = Stack.of(scope)
    role = iam.Role(
        scope,
        construct_id,
        assumed_by=iam.ServicePrincipal(
            IOT_PRINCIPAL, conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
        ),
        description="Lets AWS IoT Jobs presign the S3 URLs of a job document",
    )
    unique = _unique_objects(stack, objects)
    role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[ref.arn() for ref in unique]))
    keys: dict[str, kms.IKey] = {}
    for ref in unique:
        key = ref.bucket.encryption_key
        if key is not None:
            keys.setdefault(_identity(stack, key.key_arn), key)
    for key in keys.values():
        key.grant_decrypt(role)
    return role


def _render(document: Mapping[str, Any]) -> str:
    # Compact with sorted keys, so a dict renders the same on every synth;
    # allow_nan=False because NaN and Infinity are not JSON.
    try:
        return json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise schema.InvalidPropertyError(f"Document must be JSON-serializable: {error}") from error


def _check_document(text: str, *, where: str | None = None) -> None:
    """Apply the schema's ``Document`` rule to ``text``, naming ``where`` on failure."""
    try:
        schema.check("Document", text)
    except schema.InvalidPropertyError as error:
        if where is None:
            raise
        raise schema.InvalidPropertyError(f"{where}: {error}") from None


def _checked_key(key: str, where: str) -> str:
    if not isinstance(key, str):
        raise TypeError(f"an S3 object key must be a str, not {type(key).__name__}")
    if not is_unresolved(key):
        if not key:
            raise ValueError("an S3 object key must not be empty")
        if "}" in key:
            # IoT would end the placeholder there.
            raise ValueError(f"S3 object key {key!r} must not contain '}}' to be used in a presigned-URL placeholder")
        if not schema.has_no_iam_wildcard(key):
            raise schema.InvalidPropertyError(f"{where}: S3 object key{_quoted(key, where)} {schema.IAM_WILDCARD_RULE}")
    return key


def _checked_object(bucket: s3.IBucket, key: str, where: str) -> S3ObjectRef:
    """The object ``key`` of ``bucket``, once neither names an IAM wildcard.

    ``where`` names the property the object ends up in, for the error.
    Unresolved tokens are left to the provider (which checks the resolved
    ``DocumentSource`` and placeholders against the same rule).
    """
    checked_key = _checked_key(key, where)
    # An imported bucket's name and ARN are literals: Bucket.from_bucket_name(..., "fw-*") would
    # otherwise grant on every bucket the pattern matches.
    for label, value in (("bucket name", bucket.bucket_name), ("bucket ARN", bucket.bucket_arn)):
        if isinstance(value, str) and not is_unresolved(value) and not schema.has_no_iam_wildcard(value):
            raise schema.InvalidPropertyError(f"{where}: S3 {label}{_quoted(value, where)} {schema.IAM_WILDCARD_RULE}")
    return S3ObjectRef(bucket, checked_key)


def _quoted(value: str, where: str) -> str:
    # What goes into a Document is never quoted: documents may be confidential.
    return "" if where == _PLACEHOLDER_WHERE else f" {value!r}"


@jsii.implements(IStableStringProducer)
class _Fixed:
    def __init__(self, value: str) -> None:
        self._value = value

    def produce(self) -> str:
        return self._value


def _fresh_token(value: str) -> str:
    # A token of its own for each placeholder: an imported bucket's literal
    # name, or an asset bucket's name made of pseudo parameters, would
    # otherwise give equal placeholders for different buckets, even across apps.
    return Lazy.string(_Fixed(value))


def _identity(stack: Stack, value: str) -> str:
    # Two tokens are the same object when they resolve alike.
    return json.dumps(stack.resolve(value), sort_keys=True)


def _unique_objects(stack: Stack, objects: Sequence[S3ObjectRef]) -> list[S3ObjectRef]:
    unique: dict[str, S3ObjectRef] = {}
    for ref in objects:
        unique.setdefault(_identity(stack, ref.arn()), ref)
    return list(unique.values())


def _strings(text: str) -> Iterator[str]:
    """The strings of a JSON text (keys and values, in order), or the text itself if it is no JSON."""
    try:
        value = json.loads(text)
    except ValueError:
        # A string document may be JSON only once its tokens resolve.
        yield text
        return
    yield from schema.json_strings(value)


def _presigned_objects(scope: Construct, text: str, *, registered: bool) -> tuple[S3ObjectRef, ...]:
    """The objects the placeholders in ``text`` point at, each once.

    ``registered`` also looks placeholders up among those ``presigned_url``
    made; otherwise only literal bucket names and keys are understood.
    """
    found: list[S3ObjectRef] = []
    unrecognised = 0
    for string in _strings(text):
        for match in _PLACEHOLDER.finditer(string):
            if not schema.has_no_iam_wildcard(match.group("url")):
                # The placeholder itself is not quoted: documents may be confidential.
                raise schema.InvalidPropertyError(f"Document {schema.PLACEHOLDER_WILDCARD_RULE}")
            ref = _placeholders_of(scope).get(match.group(0)) if registered else None
            if ref is None:
                ref = _literal_object(scope, match.group("url"))
            if ref is None:
                unrecognised += 1
            else:
                found.append(ref)
    if unrecognised:
        # The placeholder itself is not quoted: documents may be confidential.
        Annotations.of(scope).add_warning_v2(
            _UNRECOGNISED_WARNING,
            f"{unrecognised} presigned-URL placeholder(s) in the job document name no S3 object that can be "
            "determined at synth time (make them with JobDocument.presigned_url, or write a literal bucket name "
            "and key); a generated presigned-URL role does not cover them",
        )
    return tuple(_unique_objects(Stack.of(scope), found)) if found else ()


def _literal_object(scope: Construct, url: str) -> S3ObjectRef | None:
    parts = _S3_URL.fullmatch(url)
    if parts is None:
        return None
    name, key = parts.group("bucket"), parts.group("key")
    if not _BUCKET_NAME.fullmatch(name) or is_unresolved(key):
        return None
    construct_id = f"PresignedBucket-{name}"
    # One import per bucket name and job, however many placeholders use it.
    existing = scope.node.try_find_child(construct_id)
    if existing is not None:
        return S3ObjectRef(cast(s3.IBucket, existing), key)
    return S3ObjectRef(s3.Bucket.from_bucket_name(scope, construct_id, name), key)
