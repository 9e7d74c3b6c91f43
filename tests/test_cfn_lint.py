"""cfn-lint: every template that matters passes with no error and no warning.

The templates are app.py's three (synthesized once, in a process of its own,
with cdk.json's context as the CDK CLI passes it) and the gate stacks'
(``gate_stacks.py``: every ``IotJob`` prop and every prop combination that
changes resources, and the provider-only stack), plus the README's plain
CloudFormation example. cfn-lint runs through its
Python API for us-east-1; informational findings (``I...``) are ignored.
"""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import json
import subprocess
import sys
from pathlib import Path

import cfnlint.api
import pytest
from aws_cdk import App
from gate_stacks import build_jobs_stack, build_provider_stack

REPO = Path(__file__).resolve().parents[1]
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
