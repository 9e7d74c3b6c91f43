"""The physical id of a ``Custom::IotJob``, read the way the provider reads it.

A successful Create or Update answers the job's ARN; a failed Create answers an
id that names no job (``create-failed:<RequestId>``, or
``<job ARN>?request-id=<RequestId>``). The format is the provider's
(:mod:`cdk_iot_job_provider.physical_id`, pure standard library); this module
only adds the local engine's question: which job, if any, does the stack track?
"""

from __future__ import annotations

from cdk_iot_job_provider import physical_id

__all__ = ["job_arn", "job_id_of"]


def job_id_of(value: str | None) -> str | None:
    """The JobId a physical id names, or ``None`` when it names no job.

    Only a plain job ARN names one: a failed Create's ids, bare JobIds of
    earlier provider versions and anything else do not.

    Examples
    --------
    >>> job_id_of("arn:aws:iot:us-east-1:123456789012:job/fw-1")
    'fw-1'
    >>> job_id_of("arn:aws:iot:us-east-1:123456789012:job/fw-1?request-id=r1") is None
    True
    >>> job_id_of("create-failed:r1") is None
    True
    """
    ref = physical_id.parse_physical_id(value, None)
    return ref.job_id if ref is not None and ref.created_by is None else None


def job_arn(job_id: str, *, partition: str, region: str, account: str) -> str:
    """The ARN of job ``job_id`` in ``partition``, ``region`` and ``account``."""
    return physical_id.job_arn(f"arn:{partition}:iot:{region}:{account}:job/", job_id)
