"""Edge cases of the local engine's building blocks and the provider's response contract.

The flow, engine and CLI tests drive these modules through whole deploys; the cases
here are the ones a whole deploy rarely reaches: the template intrinsics the resolver
refuses to guess, usage errors of the assembly and state files, and a response that
would not fit CloudFormation's body limit or cannot be delivered at all.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from cfn_events import event
from cfn_faults import FaultyCloudFormationEndpoint
from in_process import LambdaContext

from cdk_iot_job import IotJob
from cdk_iot_job_local.assembly import SynthError, app_command, from_assembly, from_template, synthesize
from cdk_iot_job_local.cfn_endpoint import CloudFormationEndpoint
from cdk_iot_job_local.state import FORMAT_VERSION, ResourceState, StackState, State
from cdk_iot_job_local.template import Stack as TemplateStack
from cdk_iot_job_local.template import TemplateResolver, UnsupportedTemplateError
from cdk_iot_job_provider import schema
from cdk_iot_job_provider.response import MAX_BODY_BYTES, OneResponseCfnResource, send_response

GROUP = "arn:aws:iot:us-east-1:123456789012:thinggroup/sensors"


def resolver(resources: dict[str, Any], parameters: dict[str, Any] | None = None, **kwargs: Any) -> TemplateResolver:
    template: dict[str, Any] = {"Resources": resources}
    if parameters is not None:
        template["Parameters"] = parameters
    return TemplateResolver(TemplateStack(name="Units", outdir=Path("."), template=template), **kwargs)


BUCKET = {"Bucket": {"Type": "AWS::S3::Bucket"}}


# --- template resolver ------------------------------------------------------


def test_select_and_split_resolve_like_cloudformation() -> None:
    resolved = resolver({}).resolve({"Fn::Select": ["1", {"Fn::Split": [",", "a,b,c"]}]})

    assert resolved == "b"


def test_sub_fills_variables_pseudo_parameters_attributes_and_parameters_and_keeps_escapes() -> None:
    # GIVEN a created bucket and a Number parameter
    sub = resolver(BUCKET, {"Wave": {"Type": "Number", "Default": 3}})
    sub.record("Bucket", "my-bucket", {"Arn": "arn:aws:s3:::my-bucket"})

    # WHEN a Fn::Sub uses every kind of variable
    text = sub.resolve(
        {"Fn::Sub": ["${Name}/${AWS::Region}/${Bucket}/${Bucket.Arn}/${Wave}/${!Literal}", {"Name": "fw"}]}
    )

    # THEN each is replaced (the parameter as text) and ${!...} stands for ${...}
    assert text == "fw/us-east-1/my-bucket/arn:aws:s3:::my-bucket/3/${Literal}"


def test_a_comma_delimited_list_parameter_is_its_default_split() -> None:
    lists = resolver({}, {"Groups": {"Type": "CommaDelimitedList", "Default": "a, b,c"}})

    assert lists.resolve({"Ref": "Groups"}) == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"Fn::If": ["IsProd", "a", "b"]}, "condition IsProd is not declared in Conditions"),
        ({"Condition": "IsProd"}, "intrinsic Condition is not supported"),
        ({"Ref": "AWS::NotificationARNs"}, "pseudo parameter AWS::NotificationARNs is not supported"),
        ({"Ref": "Bucket"}, "Ref Bucket: not created yet"),
        ({"Ref": "Rate"}, "parameter Rate has no Default"),
        ({"Fn::GetAtt": ["Nowhere", "Arn"]}, "Fn::GetAtt of unknown resource Nowhere"),
        ({"Fn::GetAtt": "Bucket.Arn"}, "Fn::GetAtt Bucket.Arn: not created yet"),
        ({"Fn::ImportValue": "shared-token"}, "Fn::ImportValue shared-token: no deployed stack exports it"),
    ],
)
def test_what_the_resolver_cannot_know_is_refused_not_guessed(value: dict[str, Any], message: str) -> None:
    refusing = resolver(BUCKET, {"Rate": {"Type": "Number"}})

    with pytest.raises(UnsupportedTemplateError, match=re.escape(message)):
        refusing.resolve(value)


def test_plan_mode_stands_in_for_values_only_a_deploy_knows() -> None:
    planning = resolver(BUCKET, unknown=lambda what: f"<{what}>")

    assert planning.resolve({"Ref": "Bucket"}) == "<Bucket>"
    assert planning.resolve({"Fn::GetAtt": ["Bucket", "Arn"]}) == "<Bucket.Arn>"
    assert planning.resolve({"Fn::ImportValue": "shared-token"}) == "<ImportValue shared-token>"
    assert planning.used_imports == set()


def test_an_import_of_a_deployed_export_is_used_and_remembered() -> None:
    importing = resolver({}, imports={"shared-token": "arn:aws:lambda:us-east-1:123456789012:function:p"})

    assert importing.resolve({"Fn::ImportValue": "shared-token"}).endswith(":function:p")
    assert importing.used_imports == {"shared-token"}


def test_circular_dependencies_are_refused_in_both_orders() -> None:
    stack = TemplateStack(
        name="Loop",
        outdir=Path("."),
        template={
            "Resources": {
                "A": {"Type": "Custom::IotJob", "DependsOn": "B"},
                "B": {"Type": "Custom::IotJob", "Properties": {"Description": {"Ref": "A"}}},
            }
        },
    )

    with pytest.raises(UnsupportedTemplateError, match="circular dependency"):
        stack.creation_order()
    with pytest.raises(UnsupportedTemplateError, match="circular dependency"):
        stack.iot_job_ids()


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("arn:aws:lambda:us-east-1:123456789012:function:p", "ServiceToken is not Fn::GetAtt of a function"),
        ({"Fn::GetAtt": ["Function", "Name"]}, "ServiceToken names Function.Name"),
        ({"Fn::GetAtt": ["Bucket", "Arn"]}, "ServiceToken names Bucket.Arn"),
    ],
)
def test_a_custom_resource_must_name_a_function_arn_as_its_service_token(token: Any, message: str) -> None:
    stack = TemplateStack(
        name="Tokens",
        outdir=Path("."),
        template={
            "Resources": {
                **BUCKET,
                "Function": {"Type": "AWS::Lambda::Function"},
                "Job": {"Type": "Custom::IotJob", "Properties": {"ServiceToken": token}},
            }
        },
    )

    with pytest.raises(UnsupportedTemplateError, match=message):
        stack.function_of("Job")


def test_a_function_without_a_zip_asset_or_asset_folder_is_refused(tmp_path: Path) -> None:
    def function(code: dict[str, Any]) -> TemplateStack:
        resources = {"Function": {"Type": "AWS::Lambda::Function", "Properties": {"Code": code}}}
        return TemplateStack(name="Assets", outdir=tmp_path, template={"Resources": resources})

    with pytest.raises(UnsupportedTemplateError, match=re.escape("Code.S3Key is not '<hash>.zip'")):
        function({"ZipFile": "def handler(e, c): pass"}).asset_dir("Function")
    with pytest.raises(FileNotFoundError, match=r"asset folder .*asset\.abc123 of Function does not exist"):
        function({"S3Key": "abc123.zip"}).asset_dir("Function")


# --- assembly and state files -------------------------------------------------


def test_app_command_needs_cdk_json_with_an_app(tmp_path: Path) -> None:
    with pytest.raises(SynthError, match=r"cdk\.json does not exist"):
        app_command(tmp_path)

    (tmp_path / "cdk.json").write_text(json.dumps({"context": {}}))
    with pytest.raises(SynthError, match="has no 'app' command"):
        app_command(tmp_path)

    (tmp_path / "cdk.json").write_text(json.dumps({"app": "python3 app.py"}))
    assert app_command(tmp_path) == "python3 app.py"


def test_a_failing_app_reports_its_exit_status_and_stderr(tmp_path: Path) -> None:
    command = f"{sys.executable} -c \"import sys; sys.stderr.write('no such stack'); sys.exit(3)\""

    with pytest.raises(SynthError, match=r"failed \(exit 3\):\nno such stack"):
        synthesize(command, tmp_path / "out", tmp_path)


def test_the_app_gets_cdk_json_and_cdk_context_json_as_cdk_context(tmp_path: Path) -> None:
    # GIVEN an "app" that writes an empty cloud assembly and the context it got
    (tmp_path / "cdk.json").write_text(json.dumps({"app": "unused", "context": {"flag": True, "shared": "cdk.json"}}))
    (tmp_path / "cdk.context.json").write_text(json.dumps({"shared": "cdk.context.json"}))
    app = tmp_path / "app.py"
    app.write_text(
        "import json, os, pathlib\n"
        "out = pathlib.Path(os.environ['CDK_OUTDIR'])\n"
        "out.mkdir(parents=True, exist_ok=True)\n"
        "(out / 'manifest.json').write_text(json.dumps({'artifacts': {}}))\n"
        "(out / 'context.json').write_text(os.environ['CDK_CONTEXT_JSON'])\n"
    )

    # WHEN it is synthesized
    stacks = synthesize(f"{sys.executable} {app}", tmp_path / "out", tmp_path)

    # THEN cdk.context.json wins over cdk.json, and the CLI's defaults are there
    context = json.loads((tmp_path / "out" / "context.json").read_text())
    assert stacks == []
    assert context["flag"] is True and context["shared"] == "cdk.context.json"
    assert context["aws:cdk:bundling-stacks"] == ["**"]


def test_an_assembly_folder_needs_a_manifest(tmp_path: Path) -> None:
    with pytest.raises(SynthError, match="is not a cloud assembly"):
        from_assembly(tmp_path)


@pytest.mark.parametrize(
    ("file_name", "stack_name", "expected"),
    [
        ("iot job.json", None, "iot-job"),
        ("2024_wave.json", None, "stack-2024-wave"),
        ("___.json", None, "stack"),
        ("iot-job.json", "Fleet", "Fleet"),
    ],
)
def test_a_plain_template_is_named_after_its_file_as_a_valid_stack_name(
    tmp_path: Path, file_name: str, stack_name: str | None, expected: str
) -> None:
    path = tmp_path / file_name
    path.write_text(json.dumps({"Resources": {}}))

    stack = from_template(path, stack_name)

    assert stack.name == expected
    assert stack.outdir == tmp_path.resolve()


def test_state_survives_a_save_and_load(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "state.json"
    state = State(path)
    state.stacks["Demo"] = StackState(
        name="Demo",
        stack_id="arn:aws:cloudformation:us-east-1:123456789012:stack/Demo/1",
        status="CREATE_COMPLETE",
        resources={"Job": ResourceState(type="Custom::IotJob", physical_id="job-1", attributes={"JobArn": "arn"})},
        exports={"token": "arn:function"},
    )
    state.moto = {"format_version": 1}

    state.save()
    loaded = State.load(path)

    assert loaded == state
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]  # no temporary file left


def test_a_state_file_of_another_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"format_version": FORMAT_VERSION + 1, "stacks": {}}))

    with pytest.raises(ValueError, match=f"unsupported state format {FORMAT_VERSION + 1}"):
        State.load(path)


def test_exports_and_importers_look_across_stacks(tmp_path: Path) -> None:
    state = State(tmp_path / "state.json")
    state.stacks["Provider"] = StackState("Provider", "id-1", "CREATE_COMPLETE", exports={"token": "arn"})
    state.stacks["Jobs"] = StackState("Jobs", "id-2", "CREATE_COMPLETE", imports=["token"])

    assert state.exports() == {"token": "arn"}
    assert state.exports(excluding="Provider") == {}
    assert state.importers({"token"}, excluding="Provider") == {"Jobs": ["token"]}
    assert state.importers({"token"}, excluding="Jobs") == {}


# --- construct -----------------------------------------------------------------


def test_a_document_of_an_unsupported_type_is_refused_naming_the_property() -> None:
    stack = Stack(App(), "Units")
    document: Any = 42  # as an untyped caller could pass it

    with pytest.raises(schema.InvalidPropertyError, match=r"Document must be a JobDocument.*not int"):
        IotJob(stack, "Job", targets=[GROUP], document=document)


# --- provider responses ----------------------------------------------------------


@pytest.fixture
def trusted_endpoint(
    cfn_endpoint: FaultyCloudFormationEndpoint, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FaultyCloudFormationEndpoint]:
    monkeypatch.setenv("SSL_CERT_FILE", str(cfn_endpoint.ca_pem_path))
    yield cfn_endpoint
    cfn_endpoint.reset()


def test_a_refused_response_is_not_retried(trusted_endpoint: FaultyCloudFormationEndpoint) -> None:
    url = trusted_endpoint.response_url("refused")
    trusted_endpoint.fail_next(count=1, status=403)
    waits: list[float] = []

    accepted = send_response(url, {"Status": "SUCCESS"}, sleep=waits.append)

    assert accepted is False
    assert len(trusted_endpoint.requests_for(url)) == 1
    assert waits == []


def test_an_unreachable_endpoint_is_tried_a_bounded_number_of_times(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    waits: list[float] = []

    accepted = send_response(f"https://127.0.0.1:{port}/response?X-Amz-Signature=s", {}, sleep=waits.append)

    assert accepted is False
    assert waits == [1, 2, 4]
    failures = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(failures) == 4 and all("ConnectionRefusedError" in message for message in failures)
    assert "X-Amz-Signature" not in caplog.text


def deliver(endpoint: CloudFormationEndpoint, name: str, create: Any) -> dict[str, Any]:
    """Send one Create through a fresh OneResponseCfnResource whose create is ``create``."""
    helper = OneResponseCfnResource(
        lambda event: f"fallback-{event['LogicalResourceId']}", timeout_reason=lambda event: "timed out"
    )
    helper.create(lambda event, context: create(helper))
    url = endpoint.response_url(name)
    helper(event("Create", {"Targets": [GROUP]}, response_url=url), LambdaContext())
    (body,) = endpoint.responses_for(url)
    assert len(json.dumps(body).encode()) <= MAX_BODY_BYTES
    return dict(body)


def test_data_too_big_for_a_response_is_dropped_rather_than_the_response(
    trusted_endpoint: CloudFormationEndpoint,
) -> None:
    def create(helper: OneResponseCfnResource) -> str:
        helper.Data.update({"Blob": "x" * MAX_BODY_BYTES})
        return "big-job"

    body = deliver(trusted_endpoint, "too-big", create)

    assert (body["Status"], body["PhysicalResourceId"], body["Data"]) == ("SUCCESS", "big-job", {})


def test_a_failure_reason_is_shortened_before_the_data_is_dropped(trusted_endpoint: CloudFormationEndpoint) -> None:
    def create(helper: OneResponseCfnResource) -> str:
        helper.Data.update({"Blob": "x" * 3000})
        raise RuntimeError("JobId " + "r" * 1000)

    body = deliver(trusted_endpoint, "long-reason", create)

    assert body["Status"] == "FAILED"
    assert body["Data"] == {"Blob": "x" * 3000}
    assert body["Reason"].startswith("JobId rrr") and body["Reason"].endswith("...")
    assert len(body["Reason"]) < 1000


def test_a_failure_without_a_message_still_gets_a_reason_and_a_physical_id(
    trusted_endpoint: CloudFormationEndpoint,
) -> None:
    def create(helper: OneResponseCfnResource) -> str:
        raise RuntimeError()

    body = deliver(trusted_endpoint, "no-reason", create)

    assert body["Status"] == "FAILED"
    assert body["Reason"] == "the provider failed without a reason; see its log"
    assert body["PhysicalResourceId"].startswith("fallback-")
