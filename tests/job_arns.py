"""A job's physical id as the provider answers it: the job's ARN, as ``Ref`` of ``AWS::IoT::Job``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["JOB_ARN_PREFIX", "arn", "job_id_in", "job_id_of"]

# The account and region of the tests' events (tests/events/*.json) and of moto.
JOB_ARN_PREFIX = "arn:aws:iot:us-east-1:123456789012:job/"


def arn(job_id: str) -> str:
    """The physical id (and ``Ref``) of job ``job_id``: its ARN."""
    return JOB_ARN_PREFIX + job_id


def job_id_in(physical_id: str) -> str:
    """The JobId a job's physical id names; fails unless it is a job ARN of the tests' account and region."""
    assert physical_id.startswith(JOB_ARN_PREFIX), physical_id
    return physical_id.removeprefix(JOB_ARN_PREFIX)


def job_id_of(response: Mapping[str, Any]) -> str:
    """The JobId a successful response's physical id names."""
    return job_id_in(str(response["PhysicalResourceId"]))
