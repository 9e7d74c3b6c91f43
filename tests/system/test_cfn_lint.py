"""cfn-lint: every template that matters passes with no error and no warning.

The templates are app.py's three (synthesized once, in a process of its own,
with cdk.json's context as the CDK CLI passes it) and the gate stacks'
(``gate_stacks.py``: every ``IotJob`` prop and every prop combination that
changes resources, and the provider-only stack), plus the README's plain
CloudFormation example. cfn-lint runs through its
Python API for us-east-1; informational findings (``I...``) are ignored.

Each ``examples/cloudformation/*.yaml`` is also linted as the native
``AWS::IoT::Job`` it claims parity with: the type swapped, the properties the
native type lacks dropped, a ``JobId`` added where cfn-lint shows the native
type requires one; Outputs (``Ref``, ``Fn::GetAtt Arn``/``CreatedAt``) must
stay valid.
"""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import cfnlint.api
import pytest
from aws_cdk import App
from gate_stacks import build_jobs_stack, build_provider_stack

REPO = Path(__file__).resolve().parents[2]
REGIONS = ["us-east-1"]
APP_PY_STACKS = ("CdkIotJobDemo", "CdkIotJobFirmwareFile", "IotJobProviderStack")
GATE_STACKS = ("LintJobs", "LintProvider")
# The hand-written plain CloudFormation example of the README.
EXAMPLE = REPO / "examples" / "cloudformation" / "iot-job.yaml"


def start_app_py_synth(outdir: Path) -> subprocess.Popen[str]:
    """app.py synthesized as `cdk synth` does it: with cdk.json's context and version reporting."""
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    env = {key: value for key, value in os.environ.items() if not key.startswith("CDK_")}
    env.update(
        CDK_OUTDIR=str(outdir),
        CDK_CONTEXT_JSON=json.dumps({**context, "aws:cdk:version-reporting": True}),
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
    )
    return subprocess.Popen(
        [sys.executable, "app.py"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every template, by stack name: app.py's (in a process of its own, meanwhile) and the gate stacks'."""
    app_py_outdir, gate_outdir = tmp_path_factory.mktemp("app-py-lint"), tmp_path_factory.mktemp("gate-lint")
    process = start_app_py_synth(app_py_outdir)
    app = App(outdir=str(gate_outdir))
    build_jobs_stack(app, "LintJobs")
    build_provider_stack(app, "LintProvider")
    app.synth()
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    return {
        path.name.removesuffix(".template.json"): path
        for outdir in (app_py_outdir, gate_outdir)
        for path in sorted(outdir.glob("*.template.json"))
    }


def lint(template: Path) -> list[str]:
    """cfn-lint's errors and warnings for ``template``, one line each."""
    matches = cfnlint.api.lint(template.read_text(), regions=REGIONS)
    return [
        f"{match.rule.id} {match.message} (line {match.linenumber}, {'/'.join(map(str, match.path or []))})"
        for match in matches
        if match.rule.id[0] in "EW"
    ]


def test_every_synthesized_template_is_linted(templates: dict[str, Path]) -> None:
    assert set(templates) == {*APP_PY_STACKS, *GATE_STACKS}


@pytest.mark.parametrize("stack", [*APP_PY_STACKS, *GATE_STACKS])
def test_template_has_no_cfn_lint_error_or_warning(templates: dict[str, Path], stack: str) -> None:
    findings = lint(templates[stack])
    assert findings == [], "\n".join([f"cfn-lint on {templates[stack]}:", *findings])


def test_plain_cloudformation_example_has_no_cfn_lint_error_or_warning() -> None:
    findings = lint(EXAMPLE)
    assert findings == [], "\n".join([f"cfn-lint on {EXAMPLE}:", *findings])


# What Custom::IotJob has and AWS::IoT::Job lacks (or, for the first two, every custom resource has).
CUSTOM_ONLY = ("ServiceToken", "ServiceTimeout", "NamespaceId", "DeleteBehavior")
EXAMPLES = sorted((REPO / "examples" / "cloudformation").glob("*.yaml"))


def as_native(template: dict[str, object]) -> tuple[dict[str, Any], list[str]]:
    """``template`` with each ``Custom::IotJob`` turned into an ``AWS::IoT::Job``; and the jobs' logical ids."""
    native: dict[str, Any] = copy.deepcopy(template)
    jobs = []
    for logical_id, resource in native["Resources"].items():
        if resource.get("Type") == "Custom::IotJob":
            resource["Type"] = "AWS::IoT::Job"
            for name in CUSTOM_ONLY:
                resource.get("Properties", {}).pop(name, None)
            jobs.append(logical_id)
    return native, jobs


def lint_text(text: str, regions: list[str]) -> list[str]:
    return [
        f"{match.rule.id} {match.message} ({'/'.join(map(str, match.path or []))})"
        for match in cfnlint.api.lint(text, regions=regions)
        if match.rule.id[0] in "EW"
    ]


def test_there_are_plain_cloudformation_examples() -> None:
    assert EXAMPLE in EXAMPLES


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_each_example_is_also_a_clean_native_aws_iot_job_template(example: Path) -> None:
    from cdk_iot_job_local.cfn_yaml import load_template

    # GIVEN the example with Custom::IotJob swapped for AWS::IoT::Job and the custom-only properties dropped
    native, jobs = as_native(load_template(example))
    assert jobs, f"{example} has no Custom::IotJob"
    # ... in a region where the native type exists
    regions = ["us-east-1"]

    # WHEN a job has no JobId, THEN cfn-lint says the native type requires one ...
    unnamed = [name for name in jobs if "JobId" not in native["Resources"][name]["Properties"]]
    if unnamed:
        findings = lint_text(json.dumps(native), regions)
        for name in unnamed:
            assert any(f.startswith("E3003 'JobId' is a required property") and name in f for f in findings), findings
            native["Resources"][name]["Properties"]["JobId"] = f"native-{name.lower()}"

    # ... and with one, the native template (its Outputs included) is clean
    assert native.get("Outputs"), "the example's Outputs are linted too"
    findings = lint_text(json.dumps(native), regions)
    assert findings == [], "\n".join([f"cfn-lint on native {example.name}:", *findings])


def test_lint_reports_what_it_should() -> None:
    # The gate is live: a redundant DependsOn (the warning the construct used to cause) is reported.
    template = {
        "Resources": {
            "Topic": {"Type": "AWS::SNS::Topic"},
            "Queue": {
                "Type": "AWS::SQS::Queue",
                "DependsOn": ["Topic"],
                "Properties": {"QueueName": {"Fn::GetAtt": ["Topic", "TopicName"]}},
            },
        }
    }
    assert [match.rule.id for match in cfnlint.api.lint(json.dumps(template), regions=REGIONS)] == ["W3005"]
