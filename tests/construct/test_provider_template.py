"""The provider as a standalone CloudFormation template (``python -m cdk_iot_job.provider_template``).

What a plain-CloudFormation user gets from ``make provider-template``: a
template and the Lambda code zip, reproducible to the byte; the template is
IotJobProviderStack's provider, clean for cfn-lint, whose grant lists grant
exactly their items (read back from the policy the local engine put in moto
IAM); and the local engine deploys it from the uploaded zip, then
``examples/cloudformation/iot-job.yaml`` on top of it.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cfnlint.api
import pytest
import yaml
from provider_asset import bundle_provider_asset

from cdk_iot_job import __version__
from cdk_iot_job.provider_template import (
    CODE_BUCKET,
    CODE_KEY,
    GRANTS,
    TEMPLATE_NAME,
    _standalone,
    code_zip_name,
    to_yaml,
)
from cdk_iot_job_local.assembly import from_template
from cdk_iot_job_local.cfn_yaml import load_template
from cdk_iot_job_local.engine import LocalCloudFormation
from cdk_iot_job_local.resources import put_file
from cdk_iot_job_local.runtime import LocalAws
from cdk_iot_job_local.state import State
from cdk_iot_job_local.template import Stack, TemplateResolver, with_parameters

REPO = Path(__file__).resolve().parents[2]
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON if VENV_PYTHON.exists() else Path(sys.executable))
EXAMPLE = REPO / "examples" / "cloudformation" / "iot-job.yaml"
ZIP = code_zip_name(__version__)
BUCKET = "my-provider-code"
TIMEOUT = 180

ROLE_ARNS = ["arn:aws:iam::123456789012:role/firmware-download", "arn:aws:iam::123456789012:role/path/other"]
DOCUMENT_ARNS = ["arn:aws:s3:::firmware-jobs/documents/*", "arn:aws:s3:::reboot-jobs/reboot.json"]
KEY_ARNS = ["arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"]
TEMPLATE_ARNS = ["arn:aws:iot:us-east-1::jobtemplate/AWS-Reboot:1.0"]
VERSION_ARNS = ["arn:aws:iot:us-east-1:123456789012:package/gateway-fw/version/2.4.1"]
GRANT_VALUES = {
    "PassRoleArns": ROLE_ARNS,
    "DocumentSourceObjectArns": DOCUMENT_ARNS,
    "DocumentSourceKeyArns": KEY_ARNS,
    "JobTemplateArns": TEMPLATE_ARNS,
    "PackageVersionArns": VERSION_ARNS,
}


def _env() -> dict[str, str]:
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "COLUMNS": "300"}
    env.pop("AWS_ENDPOINT_URL", None)
    env.pop("AWS_PROFILE", None)
    return env


@dataclass(frozen=True)
class Generated:
    """Two runs of the module, each into a folder of its own."""

    first: Path
    second: Path

    @property
    def template_path(self) -> Path:
        return self.first / TEMPLATE_NAME

    @property
    def zip_path(self) -> Path:
        return self.first / ZIP

    @property
    def template(self) -> dict[str, Any]:
        return load_template(self.template_path)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    folders = [tmp_path_factory.mktemp("dist-first"), tmp_path_factory.mktemp("dist-second")]
    runs = [
        subprocess.Popen(
            [PYTHON, "-m", "cdk_iot_job.provider_template", "--out", str(folder)],
            cwd=REPO,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for folder in folders
    ]
    for run in runs:
        output, _ = run.communicate(timeout=TIMEOUT)
        assert run.returncode == 0, output
        # It says what it wrote, and nothing else (no CDK validation report).
        assert output.splitlines() == [str(folders[runs.index(run)] / name) for name in (TEMPLATE_NAME, ZIP)]
    return Generated(*folders)


def statements(template: dict[str, Any], resource: str = "AWS::IAM::Policy") -> list[Any]:
    return [
        statement
        for item in template["Resources"].values()
        if item["Type"] == resource and "DefaultPolicy" in item["Properties"]["PolicyName"]
        for statement in item["Properties"]["PolicyDocument"]["Statement"]
    ]


# ---------------------------------------------------------------- the files
def test_the_module_writes_the_template_and_the_zip_and_a_second_run_the_same_bytes(generated: Generated) -> None:
    for name in (TEMPLATE_NAME, ZIP):
        first, second = (generated.first / name).read_bytes(), (generated.second / name).read_bytes()
        assert first and first == second, name


def test_the_zip_holds_the_lambda_asset_files_and_nothing_else(generated: Generated, tmp_path: Path) -> None:
    # GIVEN the files the construct bundles into its Lambda asset
    asset = bundle_provider_asset(tmp_path / "asset")
    expected = {path.relative_to(asset).as_posix(): path.read_bytes() for path in asset.rglob("*") if path.is_file()}

    with zipfile.ZipFile(generated.zip_path) as archive:
        entries = archive.infolist()
        contents = {entry.filename: archive.read(entry) for entry in entries}

    # THEN the zip holds exactly those, byte for byte: the handler package and crhelper ...
    assert contents == expected
    assert {name.split("/")[0] for name in contents} == {"cdk_iot_job_provider", "crhelper"}
    # ... no boto3 (Lambda's runtime has it) and no compiled files
    assert not [name for name in contents if "boto" in name or "__pycache__" in name or name.endswith(".pyc")]
    # ... in sorted order, with fixed timestamps and permissions
    assert [entry.filename for entry in entries] == sorted(contents)
    assert {(entry.date_time, entry.external_attr >> 16) for entry in entries} == {((1980, 1, 1, 0, 0, 0), 0o100644)}


def test_the_handler_imports_from_the_zip(generated: Generated) -> None:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "import cdk_iot_job_provider.handler as handler, crhelper; "
        "print(handler.__file__); print(crhelper.__file__); print(callable(handler.handler))"
    )
    run = subprocess.run(
        [PYTHON, "-c", code, str(generated.zip_path)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    handler_file, crhelper_file, is_callable = run.stdout.split()
    assert handler_file.startswith(str(generated.zip_path)) and crhelper_file.startswith(str(generated.zip_path))
    assert is_callable == "True"


# ------------------------------------------------------------- the template
def test_the_yaml_loads_back_to_the_template_it_was_written_from() -> None:
    # GIVEN data with every kind of scalar YAML would read otherwise if written plain
    data = {
        "Version": "2012-10-17",
        "Null": {"aws:RequestTag/x:y": "false", "yes": "on", "n": "~"},
        "Numbers": [300, 2.5, "0755", "1e3"],
        "Flags": [True, False, None],
        "Text": ["*", "$LATEST", "arn:", ":iot:", "a: b", "# not a comment", "line\nbreak", "é", ""],
        "Empty": [{}, []],
        "Nested": [["a", ["b"]], {"Fn::If": ["C", {"K": "v"}, {"Ref": "AWS::NoValue"}]}],
    }

    text = to_yaml(data, "a header\nof two lines")

    assert text.startswith("# a header\n# of two lines\n")
    assert yaml.safe_load(text) == data
    assert to_yaml(data, "a header\nof two lines") == text


@pytest.mark.parametrize(
    ("leftover", "named"),
    [
        ({"Rules": {"CheckBootstrapVersion": {}}}, "sections ['Rules']"),
        ({"Parameters": {"BootstrapVersion": {"Type": "String"}}}, "parameters ['BootstrapVersion', "),
    ],
    ids=["rules", "bootstrap-parameter"],
)
def test_a_synthesized_stack_with_cdk_leftovers_is_refused(
    generated: Generated, leftover: dict[str, Any], named: str
) -> None:
    synthesized = {k: v for k, v in generated.template.items() if k not in ("AWSTemplateFormatVersion", "Metadata")}
    if "Parameters" in leftover:
        leftover = {"Parameters": {**synthesized["Parameters"], **leftover["Parameters"]}}

    with pytest.raises(RuntimeError) as caught:
        _standalone({**synthesized, **leftover})
    assert named in str(caught.value)


def test_cfn_lint_reports_nothing(generated: Generated) -> None:
    findings = [
        f"{match.rule.id} {match.message} ({'/'.join(map(str, match.path or []))})"
        for match in cfnlint.api.lint(generated.template_path.read_text(), regions=["us-east-1"])
    ]
    assert findings == []


def test_the_template_holds_no_cdk_bootstrap_metadata_or_asset_parameters(generated: Generated) -> None:
    template = generated.template
    assert "Rules" not in template and "BootstrapVersion" not in template["Parameters"]
    assert "CDKMetadata" not in template["Resources"]
    assert not [name for name, resource in template["Resources"].items() if "Metadata" in resource]
    assert "cdk-hnb659fds" not in generated.template_path.read_text()


def test_the_parameters_name_the_code_zip_and_the_grant_lists(generated: Generated) -> None:
    parameters = generated.template["Parameters"]

    assert list(parameters) == [CODE_BUCKET, CODE_KEY, *GRANT_VALUES]
    # The code location has no default: CloudFormation asks for it.
    assert [(parameters[name]["Type"], "Default" in parameters[name]) for name in (CODE_BUCKET, CODE_KEY)] == [
        ("String", False),
        ("String", False),
    ]
    for name in GRANT_VALUES:
        assert (parameters[name]["Type"], parameters[name]["Default"]) == ("CommaDelimitedList", ""), name
    function = next(r for r in generated.template["Resources"].values() if r["Type"] == "AWS::Lambda::Function")
    assert function["Properties"]["Code"] == {"S3Bucket": {"Ref": CODE_BUCKET}, "S3Key": {"Ref": CODE_KEY}}


def test_the_function_arn_is_exported_as_the_service_token(generated: Generated) -> None:
    output = generated.template["Outputs"]["ServiceToken"]
    assert output["Export"] == {"Name": "cdk-iot-job-ServiceToken"}
    function = next(n for n, r in generated.template["Resources"].items() if r["Type"] == "AWS::Lambda::Function")
    assert output["Value"] == {"Fn::GetAtt": [function, "Arn"]}


def test_the_template_is_iot_job_provider_stacks_provider(generated: Generated, tmp_path: Path) -> None:
    # GIVEN IotJobProviderStack without options, synthesized as the CDK synthesizes it
    from aws_cdk import App

    from cdk_iot_job import IotJobProviderStack

    app = App(outdir=str(tmp_path))
    IotJobProviderStack(app, "Bare")
    bare = app.synth().get_stack_by_name("Bare").template
    template = generated.template

    # THEN the template has the same resources, with the same properties but for the code ...
    assert {n: r["Type"] for n, r in template["Resources"].items()} == {
        n: r["Type"] for n, r in bare["Resources"].items()
    }
    for name, resource in bare["Resources"].items():
        ours = template["Resources"][name]
        if resource["Type"] == "AWS::Lambda::Function":
            resource, ours = (
                {**r, "Properties": {k: v for k, v in r["Properties"].items() if k != "Code"}} for r in (resource, ours)
            )
        if name.startswith("CdkIotJobProviderRoleDefaultPolicy"):
            continue  # below
        assert ours == resource, name
    # ... and the bare stack's statements, followed by one conditional statement per grant list
    ours = statements(template)
    assert ours[: len(statements(bare))] == statements(bare)
    conditional = ours[len(statements(bare)) :]
    assert sorted(statement["Fn::If"][0] for statement in conditional) == sorted(grant.condition for grant in GRANTS)
    assert template["Outputs"] == bare["Outputs"]


def resolved_statements(template_path: Path, values: dict[str, str]) -> list[dict[str, Any]]:
    """The provider role's statements as CloudFormation resolves them with these parameter values."""
    stack = with_parameters(from_template(template_path, "provider"), values)
    # As a plan resolves it: the resources' own ARNs stand in as "<name.attribute>".
    resolver = TemplateResolver(stack, unknown=lambda what: f"<{what}>")
    [policy] = [name for name, r in stack.resources.items() if "Default" in r["Properties"].get("PolicyName", "")]
    resolved: list[dict[str, Any]] = resolver.properties(policy)["PolicyDocument"]["Statement"]
    return resolved


def granted(statement_list: list[dict[str, Any]], action: str) -> list[Any]:
    return [
        resource
        for statement in statement_list
        if action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
        for resource in ([statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"])
    ]


def test_with_every_grant_list_empty_no_statement_grants_any_of_them(generated: Generated) -> None:
    resolved = resolved_statements(generated.template_path, {CODE_BUCKET: BUCKET, CODE_KEY: ZIP})

    for action in ("iam:PassRole", "s3:GetObject", "kms:Decrypt"):
        assert granted(resolved, action) == [], action
    assert sorted(str(arn).rsplit(":", 1)[1] for arn in granted(resolved, "iot:CreateJob")) == [
        "job/*",
        "thing/*",
        "thinggroup/*",
    ]
    assert "AWS::NoValue" not in json.dumps(resolved)


@pytest.mark.parametrize(
    ("parameter", "action"),
    [
        ("PassRoleArns", "iam:PassRole"),
        ("DocumentSourceObjectArns", "s3:GetObject"),
        ("DocumentSourceKeyArns", "kms:Decrypt"),
    ],
)
def test_one_grant_list_grants_exactly_its_items_and_nothing_else(
    generated: Generated, parameter: str, action: str
) -> None:
    values = {CODE_BUCKET: BUCKET, CODE_KEY: ZIP, parameter: ",".join(GRANT_VALUES[parameter])}
    resolved = resolved_statements(generated.template_path, values)

    assert granted(resolved, action) == GRANT_VALUES[parameter]
    others = {"iam:PassRole", "s3:GetObject", "kms:Decrypt"} - {action}
    assert [granted(resolved, other) for other in sorted(others)] == [[], []]


@pytest.mark.parametrize("value", ["arn:aws:s3:::firmware-jobs/*/x", "arn:aws:iam::123456789012:role/*"])
def test_a_grant_item_holding_a_wildcard_is_refused(generated: Generated, value: str) -> None:
    parameter = "DocumentSourceObjectArns" if ":s3:" in value else "PassRoleArns"
    stack = from_template(generated.template_path, "provider")

    with pytest.raises(ValueError, match=rf"Parameter '{parameter}' failed to satisfy constraint"):
        with_parameters(stack, {CODE_BUCKET: BUCKET, CODE_KEY: ZIP, parameter: value})


# ------------------------------------------------- the local engine, in moto
@dataclass
class Local:
    aws: LocalAws
    engine: LocalCloudFormation
    template: Stack

    def deploy(self, **lists: list[str]) -> dict[str, Any]:
        """Deploy the provider template with these grant lists; the role's policy as moto IAM holds it."""
        values = {CODE_BUCKET: BUCKET, CODE_KEY: ZIP, **{name: ",".join(items) for name, items in lists.items()}}
        result = self.engine.deploy(with_parameters(self.template, values))
        assert result.ok, result.events
        [role] = [r.physical_id for r in result.resources.values() if r.type == "AWS::IAM::Role"]
        [policy] = [
            r.properties["PolicyName"]
            for r in result.resources.values()
            if r.type == "AWS::IAM::Policy" and "Default" in r.properties["PolicyName"]
        ]
        iam = self.aws.client("iam")
        document: Any = iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"]
        return dict(document)


@pytest.fixture(scope="module")
def local(generated: Generated, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    with LocalAws() as aws:
        # moto's backends live in this process: start from an empty account.
        request = urllib.request.Request(f"{aws.endpoint_url}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()
        template = from_template(generated.template_path, "cdk-iot-job-provider")
        put_file(aws, template.environment, generated.zip_path, BUCKET, ZIP)
        state = State(path=tmp_path_factory.mktemp("provider-template-state") / "state.json")
        yield Local(aws, LocalCloudFormation(aws, state), template)


def test_the_policy_in_iam_grants_exactly_the_listed_items_and_none_once_emptied(local: Local) -> None:
    # GIVEN the provider deployed with every grant list
    policy = local.deploy(**GRANT_VALUES)

    # THEN each list is granted exactly, with the CDK provider stack's conditions
    listed = policy["Statement"]
    assert granted(listed, "iam:PassRole") == ROLE_ARNS
    [pass_role] = [s for s in listed if s["Action"] == "iam:PassRole"]
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "iot.amazonaws.com"}}
    assert granted(listed, "s3:GetObject") == DOCUMENT_ARNS
    assert granted(listed, "kms:Decrypt") == KEY_ARNS
    assert [
        arn for arn in granted(listed, "iot:CreateJob") if ":jobtemplate/" in arn or ":package/" in arn
    ] == TEMPLATE_ARNS + VERSION_ARNS
    # ... the IoT job actions keep their ownership tag conditions
    tagged = {key for s in listed for key in s.get("Condition", {}).get("Null", {})}
    assert tagged == {"aws:RequestTag/cdk-iot-job:stack-id", "aws:ResourceTag/cdk-iot-job:stack-id"}

    # WHEN it is updated with every list empty
    emptied = local.deploy()

    # THEN none of them is granted any more
    for action in ("iam:PassRole", "s3:GetObject", "kms:Decrypt"):
        assert granted(emptied["Statement"], action) == [], action
    assert not [arn for arn in granted(emptied["Statement"], "iot:CreateJob") if ":jobtemplate/" in arn]
    assert local.engine.destroy("cdk-iot-job-provider").ok


def test_the_function_fails_to_create_without_its_zip_in_s3(local: Local) -> None:
    stack = with_parameters(local.template, {CODE_BUCKET: BUCKET, CODE_KEY: "not-uploaded.zip"})
    result = local.engine.deploy(stack)

    assert result.status == "ROLLBACK_COMPLETE"
    [failed] = [event for event in result.events if event.status == "CREATE_FAILED"]
    assert failed.resource_type == "AWS::Lambda::Function"
    assert f"--upload FILE=s3://{BUCKET}/not-uploaded.zip" in failed.reason and "NoSuchKey" in failed.reason


def evil_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../outside.py", "print('escaped')")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("body", "reason"),
    [(b"not a zip", "is not a zip"), (evil_zip(), "the zip entry '../outside.py' points outside the code folder")],
    ids=["not-a-zip", "entry-outside"],
)
def test_a_code_object_that_is_no_lambda_zip_fails_the_function(
    local: Local, tmp_path: Path, body: bytes, reason: str
) -> None:
    (tmp_path / "bad.zip").write_bytes(body)
    put_file(local.aws, local.template.environment, tmp_path / "bad.zip", BUCKET, "bad.zip")

    result = local.engine.deploy(with_parameters(local.template, {CODE_BUCKET: BUCKET, CODE_KEY: "bad.zip"}))

    assert result.status == "ROLLBACK_COMPLETE"
    [failed] = [event for event in result.events if event.status == "CREATE_FAILED"]
    assert failed.resource_type == "AWS::Lambda::Function" and reason in failed.reason
    assert not (tmp_path.parent / "outside.py").exists()


# -------------------------------------------------- the command line, as documented
def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "cdk_iot_job_local", *args],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_the_local_engine_deploys_the_template_then_the_example_and_destroys_both(
    generated: Generated, tmp_path: Path
) -> None:
    state = ["--state", str(tmp_path / "state.json")]
    provider = ["--template", str(generated.template_path), "--stack-name", "cdk-iot-job-provider"]

    # GIVEN the provider deployed from the zip, uploaded as `aws s3 cp <zip> s3://<bucket>/` puts it
    deployed = cli(
        "deploy",
        *provider,
        *state,
        "--upload",
        f"{generated.zip_path}=s3://{BUCKET}/",
        "--parameter",
        f"{CODE_BUCKET}={BUCKET}",
        "--parameter",
        f"{CODE_KEY}={ZIP}",
        "--json",
    )
    assert deployed.returncode == 0, deployed.stderr
    [stack] = json.loads(deployed.stdout)["stacks"]
    token = stack["outputs"]["ServiceToken"]

    # WHEN the example template, which imports cdk-iot-job-ServiceToken, is deployed
    example = cli("deploy", "--template", str(EXAMPLE), *state, "--json")

    # THEN its job exists in moto, made by the provider the template deployed
    assert example.returncode == 0, example.stderr
    [result] = json.loads(example.stdout)["stacks"]
    assert result["resources"]["Job"]["properties"]["ServiceToken"] == token
    job = result["jobs"]["Job"]
    assert job["status"] == "IN_PROGRESS" and job["jobArn"] == result["outputs"]["JobArn"]

    # AND both are destroyed, the example first (it imports the provider's export)
    assert cli("destroy", "--template", str(EXAMPLE), *state).returncode == 0
    destroyed = cli("destroy", *provider, *state, "--json")
    assert destroyed.returncode == 0, destroyed.stderr
    assert [s["status"] for s in json.loads(destroyed.stdout)["stacks"]] == ["DELETE_COMPLETE"]
    assert json.loads((tmp_path / "state.json").read_text())["stacks"] == {}
