"""JobDocument and the presigned-URL role, bound and synthesized as IotJob would.

The documents are bound to plain scopes (IotJob binds them to itself); a probe
resource carries the bound properties into the template. The app is built and
synthesized once per module; each test reads one behaviour off it.
"""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, CfnResource, Stack
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk.assertions import Annotations, Match, Template
from constructs import Construct

from cdk_iot_job.document import BoundDocument, JobDocument, S3ObjectRef, presigned_url_role
from cdk_iot_job_provider import schema

PROBE_TYPE = "Custom::DocumentProbe"
SECRET = "s3cr3t-do-not-echo"
REBOOT = '{"operation": "reboot"}\n'
LITERAL_URL = "https://s3.us-east-1.amazonaws.com/my-bucket/fw/1.bin"
LITERAL_PLACEHOLDER = "${aws:iot:s3-presigned-url-v2:" + LITERAL_URL + "}"
FILE_PLACEHOLDER = "${aws:iot:s3-presigned-url-v2:https://s3.eu-west-1.amazonaws.com/firmware-bucket/fw/3.0.bin}"
DOCUMENT_LIMIT = int(schema.PROPERTIES["Document"].max or 0)


def as_text(value: Any) -> str:
    """A resolved CloudFormation string as Fn::Sub would spell it."""
    if isinstance(value, str):
        return value
    (function, argument), *rest = value.items()
    assert not rest, value
    if function == "Ref":
        return "${" + str(argument) + "}"
    if function == "Fn::GetAtt":
        return "${" + ".".join(argument) + "}"
    if function == "Fn::Sub":
        return str(argument)
    if function == "Fn::ImportValue":
        return "${Import:" + str(argument) + "}"
    if function == "Fn::Join":
        delimiter, parts = argument
        return str(delimiter).join(as_text(part) for part in parts)
    raise AssertionError(f"unexpected intrinsic {function}")


def logical_id(construct: Construct) -> str:
    resource = construct.node.default_child
    assert resource is not None
    return Stack.of(construct).get_logical_id(resource)  # type: ignore[arg-type]


def resolved_arn(stack: Stack, ref: S3ObjectRef) -> str:
    return as_text(stack.resolve(ref.arn()))


@dataclass
class Built:
    app: App
    stacks: dict[str, Stack]
    bound: dict[str, BoundDocument] = field(default_factory=dict)
    scopes: dict[str, Construct] = field(default_factory=dict)
    things: dict[str, Any] = field(default_factory=dict)
    templates: dict[str, Template] = field(default_factory=dict)
    assets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def bind(self, stack: str, name: str, document: JobDocument) -> BoundDocument:
        scope = Construct(self.stacks[stack], name)
        bound = document.bind(scope)
        properties = {"Document": bound.document, "DocumentSource": bound.document_source}
        CfnResource(
            scope,
            "Probe",
            type=PROBE_TYPE,
            properties={key: value for key, value in properties.items() if value is not None},
        )
        self.bound[name], self.scopes[name] = bound, scope
        return bound

    def probe(self, name: str) -> dict[str, Any]:
        scope = self.scopes[name]
        template = self.templates[Stack.of(scope).stack_name]
        probe_id = Stack.of(scope).get_logical_id(scope.node.find_child("Probe"))  # type: ignore[arg-type]
        properties: dict[str, Any] = template.find_resources(PROBE_TYPE)[probe_id]["Properties"]
        return properties


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    files = tmp_path_factory.mktemp("documents")
    (files / "reboot.json").write_text(REBOOT)
    (files / "firmware.json").write_text(json.dumps({"operation": "update", "url": FILE_PLACEHOLDER}, indent=2))
    (files / "firmware.bin").write_bytes(b"\x7fELF firmware")

    app = App(outdir=str(tmp_path_factory.mktemp("cdk.out")))
    stacks = {name: Stack(app, name) for name in ("Storage", "Docs", "FileDocs", "FilePlaceholder", "Roles")}
    b = Built(app=app, stacks=stacks)

    docs = stacks["Docs"]
    firmware = s3.Bucket(docs, "Firmware")
    mine = s3.Bucket.from_bucket_name(docs, "Mine", "my-bucket")
    elsewhere = s3.Bucket(stacks["Storage"], "Elsewhere")
    firmware_asset = s3_assets.Asset(docs, "FirmwareImage", path=str(files / "firmware.bin"))
    b.things.update(firmware=firmware, elsewhere=elsewhere, firmware_asset=firmware_asset)

    nested = {"version": "2.4.1", "operation": "firmware-update", "nested": {"b": 1, "a": [1, 2]}, "é": "ü"}
    b.bind("Docs", "Object", JobDocument.from_object(nested))
    b.bind("Docs", "String", JobDocument.from_string('{"b": 1,  "a": 2}'))
    presigned = JobDocument.presigned_url(firmware, "fw/2.4.1.bin")
    b.bind("Docs", "Presigned", JobDocument.from_object({"firmware": presigned}))
    escaped = json.dumps(LITERAL_PLACEHOLDER).replace("/", "\\/")  # a valid JSON spelling
    b.bind("Docs", "Literal", JobDocument.from_string(f'{{"a": "{LITERAL_PLACEHOLDER}", "b": {escaped}}}'))
    b.bind(
        "Docs",
        "Duplicates",
        JobDocument.from_object(
            {
                "a": JobDocument.presigned_url(firmware, "fw/a.bin"),
                "b": JobDocument.presigned_url(firmware, "fw/a.bin"),
                "c": [LITERAL_PLACEHOLDER, {"d": LITERAL_PLACEHOLDER}],
                "e": JobDocument.presigned_url(mine, "fw/1.bin"),
                "f": f"two in one: {JobDocument.presigned_url(firmware, 'fw/b.bin')} "
                f"{JobDocument.presigned_url(firmware, 'fw/a.bin')}",
            }
        ),
    )
    b.bind("Docs", "Asset", JobDocument.from_object({"image": JobDocument.presigned_url_for_asset(firmware_asset)}))
    b.bind("Docs", "CrossStack", JobDocument.from_object({"url": JobDocument.presigned_url(elsewhere, "fw/x.bin")}))
    b.bind("Docs", "Bucket", JobDocument.from_bucket(firmware, "jobs/update.json"))
    b.bind("Docs", "Unresolved", JobDocument.from_string(firmware.bucket_name))
    by_hand = "${aws:iot:s3-presigned-url-v2:https://s3.amazonaws.com/" + firmware.bucket_name + "/fw/c.bin}"
    b.bind("Docs", "ByHand", JobDocument.from_object({"url": by_hand, "ok": LITERAL_PLACEHOLDER}))

    b.bind("FileDocs", "File", JobDocument.from_file(files / "reboot.json"))
    b.bind("FilePlaceholder", "FileWithPlaceholder", JobDocument.from_file(str(files / "firmware.json")))
    b.things["files"] = files

    roles = stacks["Roles"]
    plain = s3.Bucket(roles, "Plain")
    secure = s3.Bucket(roles, "Secure", encryption=s3.BucketEncryption.KMS)
    other_secure = s3.Bucket(roles, "OtherSecure", encryption=s3.BucketEncryption.KMS)
    objects = [
        S3ObjectRef(plain, "fw/a.bin"),
        S3ObjectRef(secure, "fw/b.bin"),
        S3ObjectRef(plain, "fw/a.bin"),
        S3ObjectRef(secure, "fw/c.bin"),
    ]
    b.things.update(plain=plain, secure=secure, other_secure=other_secure)
    b.things["kms_role"] = presigned_url_role(roles, "KmsRole", objects)
    b.things["plain_role"] = presigned_url_role(roles, "PlainRole", [S3ObjectRef(plain, "fw/*.bin")])

    assembly = app.synth()
    for stack in stacks.values():
        artifact = assembly.get_stack_by_name(stack.stack_name)
        b.templates[stack.stack_name] = Template.from_json(artifact.template)
        b.assets[stack.stack_name] = json.loads(Path(assembly.directory, f"{stack.stack_name}.assets.json").read_text())
    return b


def document_assets(built: Built, stack: str) -> list[dict[str, Any]]:
    """The stack's file assets other than its own template."""
    files = built.assets[stack]["files"].values()
    return [entry for entry in files if not entry["source"]["path"].endswith(".template.json")]


# ---------------------------------------------------------------------------
# Inline documents
# ---------------------------------------------------------------------------


def test_from_object_renders_compact_json_with_sorted_keys(built: Built) -> None:
    expected = '{"nested":{"a":[1,2],"b":1},"operation":"firmware-update","version":"2.4.1","\\u00e9":"\\u00fc"}'
    assert built.bound["Object"] == BoundDocument(
        document=expected, document_source=None, source_object=None, presigned_objects=()
    )
    assert built.probe("Object") == {"Document": expected}


def test_from_string_is_used_verbatim(built: Built) -> None:
    assert built.bound["String"].document == '{"b": 1,  "a": 2}'
    assert built.probe("String") == {"Document": '{"b": 1,  "a": 2}'}
    assert built.bound["String"].presigned_objects == ()


def test_presigned_url_renders_the_iot_placeholder_in_any_region(built: Built) -> None:
    firmware = built.things["firmware"]
    document = built.probe("Presigned")["Document"]
    assert set(document) == {"Fn::Join"}
    assert as_text(document) == (
        '{"firmware":"${aws:iot:s3-presigned-url-v2:https://s3.${AWS::Region}.${AWS::URLSuffix}/'
        "${" + logical_id(firmware) + '}/fw/2.4.1.bin}"}'
    )


def test_presigned_url_object_is_found(built: Built) -> None:
    assert built.bound["Presigned"].presigned_objects == (S3ObjectRef(built.things["firmware"], "fw/2.4.1.bin"),)


def test_presigned_url_for_a_bucket_of_another_stack_imports_its_name(built: Built) -> None:
    document = as_text(built.probe("CrossStack")["Document"])
    assert document.startswith('{"url":"${aws:iot:s3-presigned-url-v2:https://s3.${AWS::Region}.${AWS::URLSuffix}/')
    assert "${Import:Storage:ExportsOutputRefElsewhere" in document
    assert document.endswith('/fw/x.bin}"}')
    assert built.bound["CrossStack"].presigned_objects == (S3ObjectRef(built.things["elsewhere"], "fw/x.bin"),)


def test_presigned_url_for_asset_points_at_the_asset_object(built: Built) -> None:
    asset = built.things["firmware_asset"]
    docs = built.stacks["Docs"]
    (ref,) = built.bound["Asset"].presigned_objects
    bucket_name, object_key = as_text(docs.resolve(asset.s3_bucket_name)), docs.resolve(asset.s3_object_key)
    assert ref.key == asset.s3_object_key
    assert resolved_arn(docs, ref) == f"arn:${{AWS::Partition}}:s3:::{bucket_name}/{object_key}"
    assert as_text(built.probe("Asset")["Document"]) == (
        '{"image":"${aws:iot:s3-presigned-url-v2:https://s3.${AWS::Region}.${AWS::URLSuffix}/'
        f'{bucket_name}/{object_key}}}"}}'
    )
    assert object_key.endswith(".bin")


def test_hand_written_literal_placeholder_is_found_even_with_escaped_slashes(built: Built) -> None:
    (ref,) = built.bound["Literal"].presigned_objects
    assert ref.key == "fw/1.bin"
    assert ref.bucket.bucket_name == "my-bucket"
    assert resolved_arn(built.stacks["Docs"], ref) == "arn:${AWS::Partition}:s3:::my-bucket/fw/1.bin"


def test_duplicates_are_listed_once_in_document_order(built: Built) -> None:
    docs = built.stacks["Docs"]
    firmware = logical_id(built.things["firmware"])
    arns = [resolved_arn(docs, ref) for ref in built.bound["Duplicates"].presigned_objects]
    assert arns == [
        "${" + firmware + ".Arn}/fw/a.bin",
        "arn:${AWS::Partition}:s3:::my-bucket/fw/1.bin",
        "${" + firmware + ".Arn}/fw/b.bin",
    ]


def test_unresolved_document_is_left_to_deploy_time(built: Built) -> None:
    assert built.bound["Unresolved"].presigned_objects == ()
    assert built.probe("Unresolved") == {"Document": {"Ref": logical_id(built.things["firmware"])}}


def test_placeholder_with_an_unknown_token_warns_without_quoting_it(built: Built) -> None:
    (ref,) = built.bound["ByHand"].presigned_objects
    assert ref.key == "fw/1.bin"
    warnings = Annotations.from_stack(built.stacks["Docs"]).find_warning(
        "/Docs/ByHand", Match.string_like_regexp("1 presigned-URL placeholder")
    )
    (warning,) = warnings
    assert "fw/c.bin" not in str(warning.entry.data)
    assert Annotations.from_stack(built.stacks["Docs"]).find_warning("/Docs/Duplicates", Match.any_value()) == []


def test_v1_placeholder_is_found_and_an_unterminated_one_is_not(scope: Construct) -> None:
    text = json.dumps(
        {
            "a": "${aws:iot:s3-presigned-url:https://s3.amazonaws.com/old-bucket/fw.bin}",
            "b": "${aws:iot:s3-presigned-url-v2:https://s3.amazonaws.com/other-bucket/fw.bin",
        }
    )
    objects = JobDocument.from_string(text).bind(scope).presigned_objects
    assert [(ref.bucket.bucket_name, ref.key) for ref in objects] == [("old-bucket", "fw.bin")]


def test_a_placeholder_is_known_only_in_the_app_that_made_it(scope: Construct) -> None:
    # GIVEN a placeholder made for a bucket of another app
    other = Stack(App(), "Other")
    placeholder = JobDocument.presigned_url(s3.Bucket(other, "Firmware"), "fw/2.bin")

    # WHEN a document of this app uses it
    objects = JobDocument.from_object({"url": placeholder}).bind(scope).presigned_objects

    # THEN it grants nothing on the other app's bucket: it is left unrecognised (and warned about)
    assert objects == ()
    assert Annotations.from_stack(Stack.of(scope)).find_warning(
        "/Errors/Job", Match.string_like_regexp("1 presigned-URL placeholder")
    )


# ---------------------------------------------------------------------------
# Documents in S3
# ---------------------------------------------------------------------------


def test_from_bucket_sets_document_source_to_the_object_url(built: Built) -> None:
    firmware = built.things["firmware"]
    bound = built.bound["Bucket"]
    assert bound.document is None
    assert bound.source_object == S3ObjectRef(firmware, "jobs/update.json")
    assert bound.presigned_objects == ()
    assert as_text(built.probe("Bucket")["DocumentSource"]) == (
        "https://s3.${AWS::Region}.${AWS::URLSuffix}/${" + logical_id(firmware) + "}/jobs/update.json"
    )


def test_from_file_uploads_one_asset_and_points_document_source_at_it(built: Built) -> None:
    (entry,) = document_assets(built, "FileDocs")
    assert entry["source"]["packaging"] == "file"
    assert Path(built.app.outdir, entry["source"]["path"]).read_text() == REBOOT
    (destination,) = entry["destinations"].values()
    bucket, key = destination["bucketName"], destination["objectKey"]
    document_source = as_text(built.probe("File")["DocumentSource"])
    assert document_source == f"https://s3.${{AWS::Region}}.${{AWS::URLSuffix}}/{bucket}/{key}"
    bound = built.bound["File"]
    assert (bound.document, bound.presigned_objects) == (None, ())
    assert bound.source_object is not None
    assert resolved_arn(built.stacks["FileDocs"], bound.source_object) == f"arn:${{AWS::Partition}}:s3:::{bucket}/{key}"


def test_file_with_a_placeholder_yields_its_object(built: Built) -> None:
    (ref,) = built.bound["FileWithPlaceholder"].presigned_objects
    assert (ref.bucket.bucket_name, ref.key) == ("firmware-bucket", "fw/3.0.bin")
    assert resolved_arn(built.stacks["FilePlaceholder"], ref) == "arn:${AWS::Partition}:s3:::firmware-bucket/fw/3.0.bin"


# ---------------------------------------------------------------------------
# Validation: the schema's Document rule, never quoting the document
# ---------------------------------------------------------------------------


@pytest.fixture
def scope() -> Construct:
    return Construct(Stack(App(), "Errors"), "Job")


def bind_error(document: JobDocument, scope: Construct) -> str:
    with pytest.raises(ValueError) as caught:
        document.bind(scope)
    assert isinstance(caught.value, schema.InvalidPropertyError)
    message = str(caught.value)
    assert SECRET not in message
    return message


def test_invalid_json_string_is_rejected_at_bind(scope: Construct) -> None:
    message = bind_error(JobDocument.from_string('{"password": "' + SECRET + '",'), scope)
    assert message == "Document must be valid JSON"


def test_too_long_document_is_rejected_at_bind(scope: Construct) -> None:
    document = JobDocument.from_object({"blob": SECRET * (DOCUMENT_LIMIT // len(SECRET))})
    message = bind_error(document, scope)
    assert message.startswith(f"Document must be at most {DOCUMENT_LIMIT} characters long")


def test_document_at_the_limit_is_accepted(scope: Construct) -> None:
    text = '{"a":"' + "x" * (DOCUMENT_LIMIT - 8) + '"}'
    assert len(text) == DOCUMENT_LIMIT
    assert JobDocument.from_string(text).bind(scope).document == text


@pytest.mark.parametrize("value", [{SECRET}, float("nan")], ids=["set", "nan"])
def test_unserializable_object_is_rejected_at_once(value: Any) -> None:
    with pytest.raises(schema.InvalidPropertyError, match=r"^Document must be JSON-serializable") as caught:
        JobDocument.from_object({"value": value})
    assert SECRET not in str(caught.value)


def test_file_with_invalid_json_names_the_file_not_the_content(tmp_path: Path, scope: Construct) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"password": "' + SECRET + '"')
    message = bind_error(JobDocument.from_file(path), scope)
    assert message == f"job document file {str(path)!r}: Document must be valid JSON"
    assert scope.node.try_find_child("Document") is None  # nothing uploaded


def test_too_long_file_names_the_file(tmp_path: Path, scope: Construct) -> None:
    path = tmp_path / "huge.json"
    path.write_text(json.dumps({"blob": SECRET * (DOCUMENT_LIMIT // len(SECRET))}))
    message = bind_error(JobDocument.from_file(path), scope)
    assert message.startswith(f"job document file {str(path)!r}: Document must be at most {DOCUMENT_LIMIT} characters")


def test_file_that_is_not_utf8_names_the_file(tmp_path: Path, scope: Construct) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes('{"name": "café"}'.encode("latin-1"))
    assert bind_error(JobDocument.from_file(path), scope) == f"job document file {str(path)!r} must be UTF-8 text"


@pytest.mark.parametrize("name", ["missing.json", "."], ids=["missing", "directory"])
def test_missing_file_is_rejected_naming_the_path(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with pytest.raises(ValueError, match=r"job document file .* does not exist or is not a file") as caught:
        JobDocument.from_file(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("key", ["", "fw/}.bin"])
def test_keys_that_cannot_make_a_placeholder_are_rejected(scope: Construct, key: str) -> None:
    bucket = s3.Bucket.from_bucket_name(scope, "Bucket", "my-bucket")
    with pytest.raises(ValueError, match="S3 object key"):
        JobDocument.presigned_url(bucket, key)


# ---------------------------------------------------------------------------
# The presigned-URL role
# ---------------------------------------------------------------------------


def policies_of(template: Template, role_id: str) -> list[dict[str, Any]]:
    return [
        resource["Properties"]
        for resource in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in resource["Properties"]["Roles"]
    ]


def test_role_trusts_only_iot_on_behalf_of_the_stack_account(built: Built) -> None:
    template = built.templates["Roles"]
    for name in ("kms_role", "plain_role"):
        role_id = logical_id(built.things[name])
        properties = template.find_resources("AWS::IAM::Role")[role_id]["Properties"]
        assert properties["AssumeRolePolicyDocument"] == {
            "Statement": [
                {
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
                    "Effect": "Allow",
                    "Principal": {"Service": "iot.amazonaws.com"},
                }
            ],
            "Version": "2012-10-17",
        }
        # No managed or inline policies besides the one default policy.
        assert set(properties) == {"AssumeRolePolicyDocument", "Description"}
        assert len(policies_of(template, role_id)) == 1


def test_role_reads_exactly_the_objects_and_decrypts_with_their_bucket_key(built: Built) -> None:
    template = built.templates["Roles"]
    plain, secure = logical_id(built.things["plain"]), logical_id(built.things["secure"])
    secure_key = logical_id(built.things["secure"].encryption_key)
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": [{"Ref": logical_id(built.things["kms_role"])}],
            "PolicyDocument": Match.object_equals(
                {
                    "Statement": [
                        {
                            "Action": "s3:GetObject",
                            "Effect": "Allow",
                            "Resource": [
                                {"Fn::Join": ["", [{"Fn::GetAtt": [plain, "Arn"]}, "/fw/a.bin"]]},
                                {"Fn::Join": ["", [{"Fn::GetAtt": [secure, "Arn"]}, "/fw/b.bin"]]},
                                {"Fn::Join": ["", [{"Fn::GetAtt": [secure, "Arn"]}, "/fw/c.bin"]]},
                            ],
                        },
                        {"Action": "kms:Decrypt", "Effect": "Allow", "Resource": {"Fn::GetAtt": [secure_key, "Arn"]}},
                    ],
                    "Version": "2012-10-17",
                }
            ),
        },
    )


def test_role_for_an_unencrypted_bucket_has_no_kms_statement(built: Built) -> None:
    plain = logical_id(built.things["plain"])
    built.templates["Roles"].has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": [{"Ref": logical_id(built.things["plain_role"])}],
            "PolicyDocument": Match.object_equals(
                {
                    "Statement": [
                        {
                            "Action": "s3:GetObject",
                            "Effect": "Allow",
                            "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": [plain, "Arn"]}, "/fw/*.bin"]]},
                        }
                    ],
                    "Version": "2012-10-17",
                }
            ),
        },
    )


def test_kms_grant_leaves_the_key_policies_alone(built: Built) -> None:
    template = built.templates["Roles"]
    keys = template.find_resources("AWS::KMS::Key")
    assert len(keys) == 2
    role_ids = {logical_id(built.things["kms_role"]), logical_id(built.things["plain_role"])}
    for key in keys.values():
        assert not any(role_id in json.dumps(key) for role_id in role_ids)


def test_role_needs_at_least_one_object(scope: Construct) -> None:
    with pytest.raises(ValueError, match="at least one S3 object"):
        presigned_url_role(scope, "Role", [])
