"""No secret reaches a log line, in this test or anywhere in the suite.

Planted secrets (see :mod:`log_secrets`): the job document's content, a tag
value, and the signature of every response URL. The provider logs of the
whole run are captured from the first test on; this module runs last and
scans them. It first sends its own events, failures included, so the scan
never looks at an empty capture.
"""

from __future__ import annotations

import json
from typing import Any

import log_secrets
import pytest
from cfn_events import sample_properties
from cfn_faults import FaultyCloudFormationEndpoint
from in_process import Cfn
from job_arns import JOB_ARN_PREFIX

pytestmark = pytest.mark.scan_after_all


@pytest.fixture
def cfn(aws: Any, cfn_endpoint: FaultyCloudFormationEndpoint) -> Cfn:
    return Cfn(cfn_endpoint, aws.dependencies)


def test_responses_carry_only_the_job_id_arn_and_creation_time_so_no_echo_is_not_needed(cfn: Cfn) -> None:
    created = cfn.create({**sample_properties(), "JobId": "probe-no-echo"})

    # GetAtt can only return these: none can carry the document or a tag value.
    assert set(created["Data"]) == {"JobId", "Arn", "CreatedAt"}
    assert created["NoEcho"] is False
    assert not any(secret in json.dumps(created) for secret in log_secrets.PLANTED)


def test_no_planted_secret_in_any_log_line_of_the_suite(cfn: Cfn, aws: Any) -> None:
    # GIVEN this module's own events, successful and failed, carrying the secrets
    properties = {**sample_properties(), "JobId": "probe-secrets"}
    assert cfn.create(properties)["PhysicalResourceId"] == JOB_ARN_PREFIX + "probe-secrets"
    broken = {**properties, "Tags": [{"Key": "api-key", "Value": log_secrets.PLANTED[1] * 20}]}
    update = cfn.send("Update", broken, physical_id=JOB_ARN_PREFIX + "probe-secrets", old_properties=properties)
    assert update["Status"] == "FAILED"
    assert "Tags[0].Value" in update["Reason"]
    deleted = cfn.send("Delete", properties, physical_id=JOB_ARN_PREFIX + "probe-secrets")
    assert (deleted["Status"], deleted["Reason"]) == ("SUCCESS", "job probe-secrets deleted")
    invalid_document = {**properties, "Document": "not json " + log_secrets.PLANTED[0]}
    invalid = cfn.create(invalid_document)
    assert invalid["Status"] == "FAILED"
    # Tags of the wrong shape: the message names the property, never the value.
    tag_map = cfn.create({**properties, "JobId": "probe-tag-map", "Tags": {"api-key": log_secrets.PLANTED[1]}})
    assert tag_map["Status"] == "FAILED"
    assert "Tags" in tag_map["Reason"]
    # An IoT error that quotes a secret: the redaction layer masks it in the Reason and the log.
    aws.fake.fail_next("CreateJob", "InvalidRequestException", message=f"bad tag value {log_secrets.PLANTED[1]}")
    quoted = cfn.create({**properties, "JobId": "probe-iot-quote"})
    assert quoted["Status"] == "FAILED"
    assert "bad tag value ***" in quoted["Reason"]
    for response in (update, invalid, tag_map, quoted):
        assert not any(secret in json.dumps(response) for secret in log_secrets.PLANTED), response

    lines = log_secrets.captured_lines()
    signatures = log_secrets.issued_signatures()
    # The capture saw this module's events, and the rest of the suite's.
    assert any("created job probe-secrets" in line for line in lines)
    assert signatures

    # THEN no captured line holds a planted secret or a response URL signature
    leaks = [line for line in lines if any(secret in line for secret in (*log_secrets.PLANTED, *signatures))]
    assert leaks == []
    import figures

    figures.record(
        "Log scan",
        lines_scanned=len(lines),
        response_url_signatures=len(signatures),
        planted_secrets=len(log_secrets.PLANTED),
        leaks=len(leaks),
    )
