"""Parameters and Conditions in the local engine, as CloudFormation takes them.

A template's parameters take the values given (``--parameter``) or their
``Default``; ``CommaDelimitedList`` values are split; constraints are checked
and a missing value is refused before anything changes (exit 2, naming it).
``Conditions`` are evaluated once per stack from the parameters: ``Fn::If``
picks a branch, ``Ref AWS::NoValue`` removes the key or list item it stands
in, and a resource or output whose ``Condition`` is false is not created.
"""

from __future__ import annotations

import io
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cdk_iot_job_local.cli import EXIT_BAD_INPUT, EXIT_OK, main
from cdk_iot_job_local.engine import LocalCloudFormation
from cdk_iot_job_local.runtime import LocalAws
from cdk_iot_job_local.state import State
from cdk_iot_job_local.template import NO_VALUE, Stack, TemplateResolver, UnsupportedTemplateError, with_parameters
from cdk_iot_job_local.validate import check_template

PARAMETERS: dict[str, Any] = {
    "Environment": {"Type": "String", "Default": "dev", "AllowedValues": ["dev", "prod"]},
    "Groups": {"Type": "CommaDelimitedList", "Default": ""},
    "Name": {"Type": "String", "AllowedPattern": "^[a-z-]+$", "ConstraintDescription": "lower-case letters only"},
}
CONDITIONS: dict[str, Any] = {
    "IsProd": {"Fn::Equals": [{"Ref": "Environment"}, "prod"]},
    "HasGroups": {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "Groups"}]}, ""]}]},
    "ProdWithGroups": {"Fn::And": [{"Condition": "IsProd"}, {"Condition": "HasGroups"}]},
    "ProdOrGroups": {"Fn::Or": [{"Condition": "IsProd"}, {"Condition": "HasGroups"}]},
}
RESOURCES: dict[str, Any] = {
    "Fleet": {
        "Type": "AWS::IoT::ThingGroup",
        "Properties": {
            "ThingGroupName": {"Fn::Sub": "${Name}-fleet"},
            "Tags": [
                {"Key": "env", "Value": {"Ref": "Environment"}},
                {
                    "Fn::If": [
                        "HasGroups",
                        {"Key": "groups", "Value": {"Fn::Join": [",", {"Ref": "Groups"}]}},
                        {"Ref": "AWS::NoValue"},
                    ]
                },
            ],
            "ThingGroupProperties": {
                "ThingGroupDescription": {"Fn::If": ["IsProd", "production fleet", {"Ref": "AWS::NoValue"}]},
            },
        },
    },
    "Canary": {
        "Type": "AWS::IoT::ThingGroup",
        "Condition": "IsProd",
        "Properties": {"ThingGroupName": {"Fn::Sub": "${Name}-canary"}},
    },
}
OUTPUTS: dict[str, Any] = {
    "FleetArn": {"Value": {"Fn::GetAtt": ["Fleet", "Arn"]}},
    "CanaryArn": {"Condition": "IsProd", "Value": {"Fn::GetAtt": ["Canary", "Arn"]}},
    "Size": {"Value": {"Fn::If": ["ProdOrGroups", "large", "small"]}},
}


def stack(
    resources: dict[str, Any] | None = None,
    conditions: dict[str, Any] | None = None,
    parameters: dict[str, Any] | None = None,
    outputs: dict[str, Any] | None = None,
) -> Stack:
    template = {
        "Parameters": PARAMETERS if parameters is None else parameters,
        "Conditions": CONDITIONS if conditions is None else conditions,
        "Resources": RESOURCES if resources is None else resources,
        "Outputs": OUTPUTS if outputs is None else outputs,
    }
    return Stack(name="Conditional", outdir=Path("."), template=template)


def deployed(values: dict[str, str], **template: Any) -> Stack:
    return with_parameters(stack(**template), values)


# ------------------------------------------------------------- parameters
def test_a_parameter_is_its_given_value_or_its_default_and_a_list_is_split() -> None:
    resolver = TemplateResolver(deployed({"Name": "sensors", "Groups": "a, b ,c"}))

    assert resolver.resolve({"Ref": "Name"}) == "sensors"
    assert resolver.resolve({"Ref": "Environment"}) == "dev"
    assert resolver.resolve({"Ref": "Groups"}) == ["a", "b", "c"]
    assert resolver.resolve({"Fn::Join": ["+", {"Ref": "Groups"}]}) == "a+b+c"


def test_an_empty_list_parameter_joins_to_nothing() -> None:
    resolver = TemplateResolver(deployed({"Name": "sensors"}))

    assert resolver.resolve({"Fn::Join": ["", {"Ref": "Groups"}]}) == ""


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "stack Conditional: Parameters: [Name] must have values"),
        ({"Name": "x", "Region": "eu"}, "stack Conditional: Parameters: [Region] do not exist in the template"),
        ({"Name": "x", "Environment": "test"}, "Parameter 'Environment' must be one of AllowedValues, not 'test'"),
        ({"Name": "Sensors"}, "Parameter 'Name' failed to satisfy constraint: lower-case letters only"),
    ],
    ids=["missing", "unknown", "allowed-values", "allowed-pattern"],
)
def test_a_parameter_cloudformation_would_refuse_is_refused_naming_it(values: dict[str, str], message: str) -> None:
    with pytest.raises(UnsupportedTemplateError) as caught:
        with_parameters(stack(), values)
    assert message in str(caught.value)


def test_an_allowed_pattern_the_engine_cannot_read_is_refused_naming_it() -> None:
    parameters = {**PARAMETERS, "Name": {"Type": "String", "Default": "x", "AllowedPattern": "[a-z"}}

    with pytest.raises(UnsupportedTemplateError, match=r"Parameter 'Name': AllowedPattern '\[a-z' is not a regular"):
        with_parameters(stack(parameters=parameters))


def test_allowed_pattern_is_checked_on_each_item_of_a_list() -> None:
    parameters = {**PARAMETERS, "Groups": {"Type": "CommaDelimitedList", "Default": "", "AllowedPattern": "^$|^g-.*"}}

    with_parameters(stack(parameters=parameters), {"Name": "x", "Groups": "g-1,g-2"})
    with pytest.raises(UnsupportedTemplateError, match=r"Parameter 'Groups' .*'other'"):
        with_parameters(stack(parameters=parameters), {"Name": "x", "Groups": "g-1,other"})


# ------------------------------------------------------------- conditions
@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, {"IsProd": False, "HasGroups": False, "ProdWithGroups": False, "ProdOrGroups": False}),
        ({"Groups": "a"}, {"IsProd": False, "HasGroups": True, "ProdWithGroups": False, "ProdOrGroups": True}),
        ({"Environment": "prod", "Groups": "a"}, dict.fromkeys(CONDITIONS, True)),
    ],
)
def test_conditions_are_evaluated_from_the_parameters(values: dict[str, str], expected: dict[str, bool]) -> None:
    assert dict(deployed({"Name": "x", **values}).conditions) == expected


def test_the_deploy_uses_the_conditions_evaluated_once_from_the_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a stack whose conditions were evaluated from its parameters
    conditional = deployed({"Name": "x", "Environment": "prod"})

    # WHEN a resolver for its deploy picks Fn::If branches
    evaluated: list[str] = []
    original = TemplateResolver._evaluate

    def counting(self: TemplateResolver, expression: Any, where: str) -> bool:
        evaluated.append(where)
        return original(self, expression, where)

    monkeypatch.setattr(TemplateResolver, "_evaluate", counting)
    resolver = TemplateResolver(conditional)
    assert resolver.resolve({"Fn::If": ["IsProd", "a", "b"]}) == "a"
    assert resolver.resolve({"Fn::If": ["ProdWithGroups", "a", "b"]}) == "b"

    # THEN no condition is evaluated again
    assert evaluated == []


def test_fn_if_picks_the_branch_of_its_condition() -> None:
    dev, prod = (TemplateResolver(deployed({"Name": "x", "Environment": name})) for name in ("dev", "prod"))
    value = {"Fn::If": ["IsProd", {"Fn::Sub": "${Name}-prod"}, {"Fn::Join": ["-", [{"Ref": "Name"}, "dev"]]}]}

    assert (dev.resolve(value), prod.resolve(value)) == ("x-dev", "x-prod")


def test_no_value_removes_the_key_or_the_list_item_it_stands_in() -> None:
    resolver = TemplateResolver(deployed({"Name": "x"}))

    properties = resolver.properties("Fleet")

    assert properties == {
        "ThingGroupName": "x-fleet",
        "Tags": [{"Key": "env", "Value": "dev"}],
        "ThingGroupProperties": {},
    }
    assert resolver.resolve({"Ref": "AWS::NoValue"}) is NO_VALUE
    assert resolver.resolve([1, {"Ref": "AWS::NoValue"}, {"Fn::If": ["IsProd", 2, 3]}]) == [1, 3]


def test_a_resource_or_output_whose_condition_is_false_is_left_out() -> None:
    dev = deployed({"Name": "x"})
    prod = deployed({"Name": "x", "Environment": "prod"})

    assert (list(dev.resources), dict(dev.omitted)) == (["Fleet"], {"Canary": "IsProd"})
    assert list(dev.template["Outputs"]) == ["FleetArn", "Size"]
    assert (list(prod.resources), dict(prod.omitted)) == (["Fleet", "Canary"], {})
    assert list(prod.template["Outputs"]) == ["FleetArn", "CanaryArn", "Size"]
    # A live reference to a resource left out says why it is missing.
    with pytest.raises(UnsupportedTemplateError, match="Canary is not created, as its Condition IsProd is false"):
        TemplateResolver(dev).resolve({"Ref": "Canary"})


@pytest.mark.parametrize(
    ("conditions", "message"),
    [
        ({"A": {"Condition": "B"}, "B": {"Condition": "A"}}, "Conditions refer to each other in a cycle: A -> B -> A"),
        ({"A": {"Fn::Contains": [["a"], "a"]}}, "Conditions.A: Fn::Contains is not a condition function"),
        ({"A": {"Fn::Not": [{"Condition": "Nowhere"}]}}, "condition Nowhere is not declared in Conditions"),
    ],
    ids=["cycle", "rules-only-function", "undeclared"],
)
def test_a_condition_the_engine_cannot_evaluate_is_refused_naming_it(conditions: dict[str, Any], message: str) -> None:
    with pytest.raises(UnsupportedTemplateError) as caught:
        with_parameters(stack(resources={}, outputs={}, conditions=conditions), {"Name": "x"})
    assert str(caught.value).startswith("stack Conditional: ") and message in str(caught.value)


@pytest.mark.parametrize(
    ("conditions", "message"),
    [
        ({"A": "true"}, "Conditions.A: 'true' is not a condition function"),
        ({"A": {"Fn::Equals": ["a"]}}, "Conditions.A: Fn::Equals takes two values"),
        (
            {"A": {"Fn::Not": [{"Condition": "B"}, {"Condition": "B"}]}, "B": {"Fn::Equals": ["a", "a"]}},
            "Fn::Not takes one",
        ),
    ],
    ids=["not-a-function", "equals-arity", "not-arity"],
)
def test_a_malformed_condition_is_refused_naming_it(conditions: dict[str, Any], message: str) -> None:
    with pytest.raises(UnsupportedTemplateError, match=re.escape(message)):
        with_parameters(stack(resources={}, outputs={}, conditions=conditions), {"Name": "x"})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"Fn::If": ["IsProd", "a"]}, "Fn::If takes [condition, value if true, value if false]"),
        ({"Fn::Join": [",", {"Ref": "Name"}]}, "Fn::Join takes a list, not 'x'"),
    ],
)
def test_a_malformed_intrinsic_is_refused_not_guessed(value: dict[str, Any], message: str) -> None:
    with pytest.raises(UnsupportedTemplateError, match=re.escape(message)):
        TemplateResolver(deployed({"Name": "x"})).resolve(value)


def test_a_resource_condition_that_is_not_declared_is_refused() -> None:
    resources = {"Orphan": {**RESOURCES["Canary"], "Condition": "IsStaging"}}

    with pytest.raises(UnsupportedTemplateError, match=r"Resources\.Orphan: Condition IsStaging is not declared"):
        with_parameters(stack(resources=resources, outputs={}), {"Name": "x"})


# ------------------------------------------------------------- validation
def test_conditions_and_fn_if_pass_the_template_check() -> None:
    check_template(deployed({"Name": "x"}))
    # An output in a branch that is not taken may name a resource a false Condition left out.
    guarded = {"Maybe": {"Value": {"Fn::If": ["IsProd", {"Fn::GetAtt": ["Canary", "Arn"]}, "none"]}}}
    check_template(deployed({"Name": "x"}, outputs=guarded))


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ({"outputs": {"Bad": {"Value": {"Fn::If": ["IsStaging", "a", "b"]}}}}, "Outputs.Bad: condition 'IsStaging'"),
        ({"outputs": {"Bad": {"Value": {"Fn::If": ["IsProd", "a"]}}}}, "Outputs.Bad: Fn::If takes [condition,"),
        (
            {"conditions": {**CONDITIONS, "OnFleet": {"Fn::Equals": [{"Ref": "Fleet"}, "x"]}}},
            "Conditions.OnFleet: Fleet is a resource: a condition can only use parameters and pseudo parameters",
        ),
        (
            {"conditions": {**CONDITIONS, "OnArn": {"Fn::Equals": [{"Fn::GetAtt": ["Fleet", "Arn"]}, "x"]}}},
            "Conditions.OnArn: Fleet is a resource: a condition can only use parameters",
        ),
        (
            {"conditions": {**CONDITIONS, "Odd": {"Fn::If": ["IsProd", "a", "b"]}}},
            "Conditions.Odd: {'Fn::If': ['IsProd', 'a', 'b']} is not a condition function",
        ),
    ],
    ids=["undeclared-condition", "if-arity", "resource-in-condition", "attribute-in-condition", "if-in-conditions"],
)
def test_what_conditions_cannot_do_is_refused_in_one_line(template: dict[str, Any], message: str) -> None:
    with pytest.raises(UnsupportedTemplateError) as caught:
        check_template(stack(**template))
    assert str(caught.value).startswith("stack Conditional: ") and message in str(caught.value)


# ------------------------------------------------------------- a deploy
@pytest.fixture
def engine(tmp_path: Path) -> Iterator[tuple[LocalAws, LocalCloudFormation]]:
    with LocalAws() as aws:
        # moto's backends live in this process: start from an empty account.
        request = urllib.request.Request(f"{aws.endpoint_url}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()
        yield aws, LocalCloudFormation(aws, State(path=tmp_path / "state.json"))


def test_a_deploy_creates_only_the_resources_and_outputs_whose_condition_holds(
    engine: tuple[LocalAws, LocalCloudFormation],
) -> None:
    aws, cloudformation = engine

    # WHEN the stack is deployed for dev, then updated for prod, then for dev again
    dev = cloudformation.deploy(deployed({"Name": "fleet", "Groups": "a,b"}))
    groups_in_dev = sorted(group["groupName"] for group in aws.client("iot").list_thing_groups()["thingGroups"])
    prod = cloudformation.deploy(deployed({"Name": "fleet", "Environment": "prod"}))
    groups_in_prod = sorted(group["groupName"] for group in aws.client("iot").list_thing_groups()["thingGroups"])
    back = cloudformation.deploy(deployed({"Name": "fleet"}))

    # THEN the canary group and its output exist in prod only
    assert (dev.status, prod.status, back.status) == ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_COMPLETE")
    assert groups_in_dev == ["fleet-fleet"] and groups_in_prod == ["fleet-canary", "fleet-fleet"]
    assert (sorted(dev.outputs), dev.outputs["Size"]) == (["FleetArn", "Size"], "large")
    assert sorted(prod.outputs) == ["CanaryArn", "FleetArn", "Size"]
    assert "Canary" not in back.resources
    assert [group["groupName"] for group in aws.client("iot").list_thing_groups()["thingGroups"]] == ["fleet-fleet"]
    # ... and the group's properties follow the conditions: the Fn::If tag only with a list, the
    # description (AWS::NoValue otherwise) only in prod
    assert dev.resources["Fleet"].properties["Tags"] == [
        {"Key": "env", "Value": "dev"},
        {"Key": "groups", "Value": "a,b"},
    ]
    assert prod.resources["Fleet"].properties["Tags"] == [{"Key": "env", "Value": "prod"}]
    assert prod.resources["Fleet"].properties["ThingGroupProperties"] == {"ThingGroupDescription": "production fleet"}
    assert back.resources["Fleet"].properties["ThingGroupProperties"] == {}


# ------------------------------------------------------------- command line
TEMPLATE = """\
Parameters:
  GroupName:
    Type: String
  Extra:
    Type: CommaDelimitedList
    Default: ""
Conditions:
  HasExtra: !Not [!Equals [!Join ["", !Ref Extra], ""]]
Resources:
  Group:
    Type: AWS::IoT::ThingGroup
    Properties:
      ThingGroupName: !Ref GroupName
  ExtraGroup:
    Type: AWS::IoT::ThingGroup
    Condition: HasExtra
    Properties:
      ThingGroupName: !Select [0, !Ref Extra]
Outputs:
  Count:
    Value: !If [HasExtra, "2", "1"]
"""


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_a_missing_required_parameter_exits_2_naming_it(tmp_path: Path) -> None:
    template = tmp_path / "groups.yaml"
    template.write_text(TEMPLATE)

    code, out, err = run("deploy", "--template", str(template), "--state", str(tmp_path / "state.json"))

    assert code == EXIT_BAD_INPUT and out == ""
    assert err.strip() == "error: stack groups: Parameters: [GroupName] must have values"
    assert not (tmp_path / "state.json").exists()


def test_parameters_given_on_the_command_line_are_the_templates(tmp_path: Path) -> None:
    template = tmp_path / "groups.yaml"
    template.write_text(TEMPLATE)
    state = str(tmp_path / "state.json")

    code, out, err = run(
        "deploy", "--template", str(template), "--state", state, "--json",
        "--parameter", "GroupName=main", "--parameter", "Extra=spare, other",
    )  # fmt: skip

    assert code == EXIT_OK, err
    assert '"Count": "2"' in out and '"physical_id": "spare"' in out
    assert run("destroy", "--template", str(template), "--state", state)[0] == EXIT_OK


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["deploy", "--parameter", "A=b"], "--parameter and --upload go with a --template"),
        (["deploy", "--template", "t.yaml", "--parameter", "novalue"], "'novalue' is not KEY=VALUE"),
        (["deploy", "--template", "t.yaml", "--upload", "x.zip"], "'x.zip' is not FILE=s3://BUCKET/KEY"),
        (["destroy", "--template", "t.yaml", "--upload", "x.zip=s3://b/"], "--upload is for plan and deploy"),
    ],
)
def test_bad_parameter_and_upload_options_are_usage_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(args)
    assert caught.value.code == EXIT_BAD_INPUT and message in capsys.readouterr().err


def test_an_upload_of_a_missing_file_exits_2_naming_it(tmp_path: Path) -> None:
    template = tmp_path / "groups.yaml"
    template.write_text(TEMPLATE)

    code, _out, err = run(
        "deploy", "--template", str(template), "--state", str(tmp_path / "state.json"),
        "--parameter", "GroupName=main", "--upload", f"{tmp_path / 'nothing.zip'}=s3://bucket/",
    )  # fmt: skip

    assert code == EXIT_BAD_INPUT and f"--upload: {tmp_path / 'nothing.zip'} is not a file" in err
