"""The physical ids the provider answers, and what a physical id names.

A job's physical id is its ARN, ``arn:<partition>:iot:<region>:<account>:job/<JobId>``,
as ``Ref`` of the native ``AWS::IoT::Job``. A Create that fails answers an id
that names no job (``create-failed:<RequestId>``), or, when its CreateJob may
have gone through, the job's ARN qualified by the request
(``<job ARN>?request-id=<RequestId>``): the rollback Delete then removes the
job only if that very request created it, never a job kept from before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["JobRef", "arn_parts", "arn_prefix", "create_failed", "job_arn", "may_have_created", "parse_physical_id"]

_REQUEST_QUALIFIER = "?request-id="
_FAILED_PREFIX = "create-failed:"
_JOB_ARN = re.compile(r"(arn:[a-z0-9-]+:iot:[a-z0-9-]+:[0-9]{12}:job/)([a-zA-Z0-9_-]{1,64})")
_ARN_PARTS = 6


@dataclass(frozen=True)
class JobRef:
    """The job a physical id names.

    ``created_by`` is set for a failed Create's id: only a job created by that
    request may be deleted through it.
    """

    job_id: str
    job_arn: str
    created_by: str | None = None


def arn_parts(arn: object) -> tuple[str, str, str, str] | None:
    """``(partition, service, region, account)`` of a well-formed ARN, or ``None``."""
    parts = arn.split(":", _ARN_PARTS - 1) if isinstance(arn, str) else []
    if len(parts) < _ARN_PARTS or parts[0] != "arn":
        return None
    return parts[1], parts[2], parts[3], parts[4]


def arn_prefix(arn: object, service: str) -> str | None:
    """``arn:<partition>:iot:<region>:<account>:job/`` for the region and account of ``arn``
    (a function or stack ARN of ``service``), or ``None`` when ``arn`` is not one."""
    parts = arn_parts(arn)
    if parts is None or parts[1] != service or not all(parts):
        return None
    partition, _, region, account = parts
    return f"arn:{partition}:iot:{region}:{account}:job/"


def job_arn(prefix: str, job_id: str) -> str:
    """The ARN of job ``job_id`` under ``prefix`` (see :func:`arn_prefix`)."""
    return prefix + job_id


def create_failed(request_id: str) -> str:
    """The id of a Create that failed before any job could exist."""
    return _FAILED_PREFIX + request_id


def may_have_created(arn: str, request_id: str) -> str:
    """The id of a Create that failed after its CreateJob may have gone through."""
    return f"{arn}{_REQUEST_QUALIFIER}{request_id}"


def parse_physical_id(physical_id: object, prefix: str | None) -> JobRef | None:
    """The job ``physical_id`` names, or ``None`` when it names no job of ours.

    Parameters
    ----------
    physical_id
        The event's ``PhysicalResourceId``.
    prefix
        The job ARN prefix of the account and region the provider works in; an
        ARN of another account or region names no job of ours. ``None`` when
        unknown: any job ARN is then taken.
    """
    if not isinstance(physical_id, str):
        return None
    arn, _, created_by = physical_id.partition(_REQUEST_QUALIFIER)
    match = _JOB_ARN.fullmatch(arn)
    if match is None or (prefix is not None and match.group(1) != prefix):
        return None
    if _REQUEST_QUALIFIER in physical_id and not created_by:
        return None
    return JobRef(match.group(2), arn, created_by or None)
