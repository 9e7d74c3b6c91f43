"""Tests for cdk_iot_job_local.cfn_yaml: short-form tags, scalars kept as text, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cdk_iot_job_local.cfn_yaml import SHORT_FORM_FUNCTIONS, load_template

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cloudformation" / "iot-job.yaml"


def load(tmp_path: Path, text: str, name: str = "template.yaml") -> dict[str, Any]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_template(path)


def value(tmp_path: Path, yaml_value: str) -> Any:
    """What ``V: <yaml_value>`` loads to."""
    return load(tmp_path, f"V: {yaml_value}\n")["V"]


# ------------------------------------------------------------------ tags
def test_ref(tmp_path: Path) -> None:
    assert value(tmp_path, "!Ref Bucket") == {"Ref": "Bucket"}
    assert value(tmp_path, "!Ref AWS::Region") == {"Ref": "AWS::Region"}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("!GetAtt Group.Arn", ["Group", "Arn"]),
        ("!GetAtt Db.Endpoint.Address", ["Db", "Endpoint.Address"]),  # split on the first dot only
        ("!GetAtt [Group, Arn]", ["Group", "Arn"]),
        ("!GetAtt\n  - Db\n  - Endpoint.Address", ["Db", "Endpoint.Address"]),
    ],
)
def test_get_att(tmp_path: Path, source: str, expected: list[str]) -> None:
    assert value(tmp_path, source) == {"Fn::GetAtt": expected}


@pytest.mark.parametrize("name", SHORT_FORM_FUNCTIONS)
def test_every_function_as_scalar_sequence_and_mapping(tmp_path: Path, name: str) -> None:
    key = f"Fn::{name}"
    assert value(tmp_path, f"!{name} text") == {key: "text"}
    assert value(tmp_path, f"!{name} [a, b]") == {key: ["a", "b"]}
    assert value(tmp_path, f"!{name} {{a: b}}") == {key: {"a": "b"}}


def test_condition(tmp_path: Path) -> None:
    assert value(tmp_path, "!Condition IsProd") == {"Condition": "IsProd"}
    assert value(tmp_path, "!And [!Condition A, !Not [!Condition B]]") == {
        "Fn::And": [{"Condition": "A"}, {"Fn::Not": [{"Condition": "B"}]}]
    }


def test_get_azs_without_argument(tmp_path: Path) -> None:
    assert value(tmp_path, "!GetAZs ''") == {"Fn::GetAZs": ""}
    assert load(tmp_path, "V: !GetAZs\n")["V"] == {"Fn::GetAZs": ""}


def test_nested_forms(tmp_path: Path) -> None:
    template = load(
        tmp_path,
        """
Resources:
  Job:
    Properties:
      Arn: !Join ["", [!Ref AWS::Partition, ":x"]]
      Name: !Sub
        - "${Group}-${Id}"
        - Group: !GetAtt Sensors.Arn
          Id: !Select [0, !Split ["-", !Ref AWS::StackName]]
      Block: !Base64
        Fn::Sub: "echo ${AWS::Region}"
      Picked: !If [IsProd, !FindInMap [Map, !Ref AWS::Region, Key], !Ref AWS::NoValue]
      Nets: !Cidr [!ImportValue vpc-cidr, 6, 5]
      Same: !Equals [!Ref Env, prod]
      Either: !Or [!Condition A, !Condition B]
""",
    )
    props = template["Resources"]["Job"]["Properties"]
    assert props["Arn"] == {"Fn::Join": ["", [{"Ref": "AWS::Partition"}, ":x"]]}
    assert props["Name"] == {
        "Fn::Sub": [
            "${Group}-${Id}",
            {
                "Group": {"Fn::GetAtt": ["Sensors", "Arn"]},
                "Id": {"Fn::Select": [0, {"Fn::Split": ["-", {"Ref": "AWS::StackName"}]}]},
            },
        ]
    }
    assert props["Block"] == {"Fn::Base64": {"Fn::Sub": "echo ${AWS::Region}"}}
    assert props["Picked"] == {
        "Fn::If": [
            "IsProd",
            {"Fn::FindInMap": ["Map", {"Ref": "AWS::Region"}, "Key"]},
            {"Ref": "AWS::NoValue"},
        ]
    }
    assert props["Nets"] == {"Fn::Cidr": [{"Fn::ImportValue": "vpc-cidr"}, 6, 5]}
    assert props["Same"] == {"Fn::Equals": [{"Ref": "Env"}, "prod"]}
    assert props["Either"] == {"Fn::Or": [{"Condition": "A"}, {"Condition": "B"}]}


def test_yaml_and_json_load_alike(tmp_path: Path) -> None:
    from_yaml = load(
        tmp_path,
        "Resources:\n  R:\n    Type: X\n    Properties:\n      A: !Sub '${AWS::Region}-x'\n      B: !GetAtt G.Arn\n",
    )
    document = {
        "Resources": {
            "R": {"Type": "X", "Properties": {"A": {"Fn::Sub": "${AWS::Region}-x"}, "B": {"Fn::GetAtt": ["G", "Arn"]}}}
        }
    }
    assert from_yaml == document
    assert load(tmp_path, json.dumps(document, indent=2), "template.json") == document
    # JSON under a YAML-ish name, and JSON with a BOM, are JSON all the same.
    assert load(tmp_path, json.dumps(document), "template.template") == document
    assert load(tmp_path, "\ufeff" + json.dumps(document), "bom.json") == document


# --------------------------------------------------------------- scalars
def test_dates_stay_strings(tmp_path: Path) -> None:
    template = load(
        tmp_path,
        "AWSTemplateFormatVersion: 2010-09-09\nPolicy:\n  Version: 2012-10-17\n  When: 2024-01-02T03:04:05Z\n",
    )
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"
    assert template["Policy"] == {"Version": "2012-10-17", "When": "2024-01-02T03:04:05Z"}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("20", 20),
        ("-3", -3),
        ("25.5", 25.5),
        ("true", True),
        ("false", False),
        ("'20'", "20"),
        ("0755", "0755"),  # YAML 1.1 octal would be 493
        ("0x1F", "0x1F"),
        ("1_000", "1_000"),
        ("12:30", "12:30"),  # YAML 1.1 base 60 would be 750
        ("1e3", "1e3"),
        ("1.50", "1.50"),
        (".inf", ".inf"),
    ],
)
def test_scalars_keep_their_text(tmp_path: Path, source: str, expected: Any) -> None:
    loaded = value(tmp_path, source)
    assert loaded == expected and type(loaded) is type(expected)


# ---------------------------------------------------------------- errors
def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ValueError, match=r"nope\.yaml: cannot read template"):
        load_template(path)


def test_a_directory_or_binary_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read template"):
        load_template(tmp_path)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00junk")
    with pytest.raises(ValueError, match=r"binary\.yaml: cannot read template"):
        load_template(binary)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not empty"),
        ("- a\n- b\n", "not a list"),
        ("just text\n", "not a str"),
        ("[1, 2]", "not a list"),
    ],
)
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=rf"template\.yaml: a template must be a mapping.*{message}"):
        load(tmp_path, text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("A: [unclosed\n", "invalid YAML"),
        ("A: !Bogus x\n", "invalid YAML.*!Bogus"),
        ("A: !Ref [a, b]\n", "!Ref takes"),
        ("A: !GetAtt NoDot\n", "LogicalId.AttributeName"),
        ("A: !GetAtt [a, b, c]\n", "!GetAtt takes"),
        ("A: 1\nA: 2\n", "duplicate key 'A'"),
        ("A: !!python/object:os.system x\n", "invalid YAML"),  # a SafeLoader: no Python objects
    ],
)
def test_invalid_yaml(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=rf"(?s)template\.yaml: .*{message}"):
        load(tmp_path, text)


def test_invalid_json(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"t\.json: invalid JSON template"):
        load(tmp_path, '{"A": ', "t.json")
    with pytest.raises(ValueError, match=r"t\.json: invalid JSON template: duplicate key 'A'"):
        load(tmp_path, '{"A": 1, "A": 2}', "t.json")


def test_flow_style_yaml_starting_with_a_brace(tmp_path: Path) -> None:
    assert load(tmp_path, "{Resources: {R: {Type: X, Properties: {A: !Ref B}}}}\n") == {
        "Resources": {"R": {"Type": "X", "Properties": {"A": {"Ref": "B"}}}}
    }


# --------------------------------------------------------------- example
def test_the_plain_cloudformation_example() -> None:
    template = load_template(EXAMPLE)
    resources = template["Resources"]
    assert resources["Sensors"] == {
        "Type": "AWS::IoT::ThingGroup",
        "Properties": {"ThingGroupName": "cfn-example-sensors"},
    }
    assert resources["Sensor1"]["Type"] == "AWS::IoT::Thing"
    job = resources["Job"]
    assert job["Type"] == "Custom::IotJob"
    props = job["Properties"]
    assert props["ServiceToken"] == {"Fn::ImportValue": "cdk-iot-job-ServiceToken"}
    assert props["ServiceTimeout"] == 600
    assert props["Targets"] == [{"Fn::GetAtt": ["Sensors", "Arn"]}]
    assert json.loads(props["Document"]) == {"operation": "firmware-update", "version": "1.0.0"}
    assert props["TargetSelection"] == "CONTINUOUS"
    assert props["JobExecutionsRolloutConfig"] == {"MaximumPerMinute": 20}
    (criterion,) = props["AbortConfig"]["CriteriaList"]
    assert set(criterion) == {"FailureType", "Action", "ThresholdPercentage", "MinNumberOfExecutedThings"}
    assert props["TimeoutConfig"] == {"InProgressTimeoutInMinutes": 60}
    assert props["Tags"] == [{"Key": "example", "Value": "cloudformation"}]
    assert isinstance(props["Description"], str)
    assert template["Outputs"]["JobRef"]["Value"] == {"Ref": "Job"}
    assert template["Outputs"]["JobArn"]["Value"] == {"Fn::GetAtt": ["Job", "Arn"]}
    assert template["Outputs"]["CreatedAt"]["Value"] == {"Fn::GetAtt": ["Job", "CreatedAt"]}
    # short-form tags nest: !Select [1, !Split ["/", !Ref Job]]
    assert template["Outputs"]["JobId"]["Value"] == {"Fn::Select": [1, {"Fn::Split": ["/", {"Ref": "Job"}]}]}
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"


def test_the_example_passes_the_provider_schema() -> None:
    """The job's properties, as CloudFormation would send them, are valid for the handler."""
    from cdk_iot_job_local.events import stringify
    from cdk_iot_job_provider import schema

    props = load_template(EXAMPLE)["Resources"]["Job"]["Properties"]
    resolved = {**props, "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:provider"}
    resolved["Targets"] = ["arn:aws:iot:us-east-1:123456789012:thinggroup/cfn-example-sensors"]
    parsed = schema.parse_properties(stringify(resolved))
    assert parsed["JobExecutionsRolloutConfig"] == {"MaximumPerMinute": 20}
