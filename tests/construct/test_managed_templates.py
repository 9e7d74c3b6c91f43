"""AWS managed job templates are checked against the catalog when the job is built.

``JobTemplate.managed(...)`` and literal managed template ARNs are checked:
name, version, and ``document_parameters``. ``JobTemplate.from_arn(...)`` and
ARN tokens are left alone, for templates the catalog does not know yet.
No synth is needed: the checks run in the constructors.
"""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import itertools
import re
from typing import Any

import pytest
from aws_cdk import App, CfnParameter, Stack

from cdk_iot_job import IotJob, JobTemplate
from cdk_iot_job.managed_templates import MANAGED_TEMPLATES
from cdk_iot_job_provider import schema

GROUP_ARN = "arn:aws:iot:eu-west-1:123456789012:thinggroup/sensors"
DOWNLOAD = {"downloadUrl": "https://example.com/fw.bin", "filePath": "/tmp/fw.bin"}

_stack_ids = itertools.count()


@pytest.fixture(scope="module")
def app() -> App:
    return App()


def build_job(app: App, template: Any, parameters: dict[str, str] | None = None, **props: Any) -> IotJob:
    stack = Stack(app, f"Managed{next(_stack_ids)}")
    return IotJob(stack, "Job", targets=[GROUP_ARN], job_template=template, document_parameters=parameters, **props)


def rejection(app: App, template: Any, parameters: dict[str, str] | None = None, **props: Any) -> str:
    with pytest.raises(schema.InvalidPropertyError) as caught:
        build_job(app, template, parameters, **props)
    return str(caught.value)


# --- names and versions ------------------------------------------------------


def test_a_misspelt_template_name_suggests_the_closest_one() -> None:
    with pytest.raises(schema.InvalidPropertyError, match=r"'AWS-Rebot' is not an AWS managed job template") as caught:
        JobTemplate.managed("AWS-Rebot", "1.0")
    assert "did you mean 'AWS-Reboot'?" in str(caught.value)


def test_a_name_in_the_wrong_case_suggests_the_template() -> None:
    with pytest.raises(schema.InvalidPropertyError, match=r"did you mean 'AWS-Download-File'\?"):
        JobTemplate.managed("download-file")


def test_a_name_close_to_none_lists_the_known_templates() -> None:
    with pytest.raises(schema.InvalidPropertyError) as caught:
        JobTemplate.managed("Flash-Firmware-Over-Serial")
    message = str(caught.value)
    assert "did you mean" not in message
    assert "known: " + ", ".join(sorted(MANAGED_TEMPLATES)) in message


def test_an_unknown_version_lists_the_known_versions() -> None:
    with pytest.raises(schema.InvalidPropertyError) as caught:
        JobTemplate.managed("AWS-Reboot", "2.0")
    assert "'AWS-Reboot' has no version '2.0': known versions: 1.0" in str(caught.value)


def test_a_literal_managed_arn_is_checked_and_named_by_its_keyword(app: App) -> None:
    message = rejection(app, None, job_template_arn="arn:aws:iot:eu-west-1::jobtemplate/AWS-Rebot:1.0")
    assert message.startswith("job_template_arn (JobTemplateArn) 'AWS-Rebot' is not an AWS managed job template")
    assert "did you mean 'AWS-Reboot'?" in message


def test_a_literal_managed_arn_of_an_unknown_version_is_rejected(app: App) -> None:
    message = rejection(app, "arn:aws:iot:eu-west-1::jobtemplate/AWS-Reboot:9.9")
    assert message.startswith("job_template (JobTemplateArn) 'AWS-Reboot' has no version '9.9'")


def test_from_arn_takes_a_template_the_catalog_does_not_know_yet(app: App) -> None:
    # The escape hatch for templates AWS adds after the catalog was written.
    arn = "arn:aws:iot:eu-west-1::jobtemplate/AWS-Rotate-Certificate:1.0"
    build_job(app, JobTemplate.from_arn(arn), {"anything": "goes"})


def test_a_template_arn_token_is_left_to_deploy_time(app: App) -> None:
    stack = Stack(app, f"Managed{next(_stack_ids)}")
    arn = CfnParameter(stack, "TemplateArn").value_as_string
    IotJob(stack, "Job", targets=[GROUP_ARN], job_template_arn=arn, document_parameters={"anything": "goes"})


def test_a_managed_template_without_a_version_is_checked_against_the_latest(app: App) -> None:
    build_job(app, JobTemplate.managed("Reboot"))
    assert "must set downloadUrl" in rejection(app, JobTemplate.managed("Download-File"), {"filePath": "/tmp/x"})


# --- document parameters ------------------------------------------------------


def test_correct_parameters_are_accepted(app: App) -> None:
    build_job(app, JobTemplate.managed("AWS-Download-File", "1.0"), {**DOWNLOAD, "runAsUser": "fw"})


def test_a_template_without_required_parameters_needs_none(app: App) -> None:
    build_job(app, JobTemplate.managed("AWS-Reboot", "1.0"))


def test_unknown_parameters_are_named_with_the_allowed_ones(app: App) -> None:
    message = rejection(app, JobTemplate.managed("AWS-Download-File", "1.0"), {**DOWNLOAD, "url": "https://x"})
    assert message == (
        "document_parameters (DocumentParameters) 'url' is not a parameter of AWS-Download-File:1.0: "
        "allowed: downloadUrl, filePath, runAsUser, pathToHandler"
    )


def test_run_command_takes_no_handler_path(app: App) -> None:
    # Its runCommand action runs the command itself: no handler, so no pathToHandler.
    message = rejection(app, JobTemplate.managed("AWS-Run-Command", "1.0"), {"command": "ls", "pathToHandler": "/x"})
    assert "'pathToHandler' is not a parameter of AWS-Run-Command:1.0: allowed: command, runAsUser" in message


def test_missing_required_parameters_are_named(app: App) -> None:
    message = rejection(app, JobTemplate.managed("AWS-Download-File", "1.0"), {"runAsUser": "fw"})
    assert message == (
        "document_parameters (DocumentParameters) must set downloadUrl, filePath: "
        "they are required by AWS-Download-File:1.0"
    )


def test_no_parameters_at_all_for_a_template_that_needs_some_are_named(app: App) -> None:
    message = rejection(app, JobTemplate.managed("AWS-Install-Application", "1.0"))
    assert "must set packages: it is required by AWS-Install-Application:1.0" in message


def test_a_literal_managed_arn_has_its_parameters_checked_too(app: App) -> None:
    message = rejection(app, None, {"services": "x"}, job_template_arn="arn:aws:iot:eu-west-1::jobtemplate/AWS-Reboot")
    assert "'services' is not a parameter of AWS-Reboot:1.0" in message


def test_a_value_breaking_its_documented_pattern_is_rejected_without_echoing_it(app: App) -> None:
    user = "u" * 257
    message = rejection(app, JobTemplate.managed("AWS-Download-File", "1.0"), {**DOWNLOAD, "runAsUser": user})
    assert message == (
        "document_parameters['runAsUser'] (DocumentParameters.runAsUser) must match (.){0,256} "
        "for AWS-Download-File:1.0"
    )


def test_a_parameter_value_token_is_left_to_deploy_time(app: App) -> None:
    stack = Stack(app, f"Managed{next(_stack_ids)}")
    url = CfnParameter(stack, "Url").value_as_string
    IotJob(
        stack,
        "Job",
        targets=[GROUP_ARN],
        job_template=JobTemplate.managed("AWS-Download-File", "1.0"),
        document_parameters={"downloadUrl": url, "filePath": "/tmp/fw.bin"},
    )


def test_every_catalog_entry_is_one_the_schema_and_iot_would_take() -> None:
    # A typo in the catalog would reject correct jobs: names and keys are checked as IoT checks them.
    for name, template in MANAGED_TEMPLATES.items():
        assert name == template.name and name.startswith("AWS-")
        for version, parameters in template.versions.items():
            assert re.fullmatch(r"\d+\.\d+", version)
            keys = [parameter.name for parameter in parameters]
            assert len(keys) == len(set(keys)), f"{name}:{version} repeats a parameter"
            for key in keys:
                schema.check("DocumentParameters", {key: "x"})
