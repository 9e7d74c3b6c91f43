"""The physical id of a ``Custom::IotJob``, as the provider answers it.

A successful Create or Update answers the job's ARN,
``arn:<partition>:iot:<region>:<account>:job/<JobId>``. A failed Create answers
an id that names no job: ``create-failed:<RequestId>``, or
``<job ARN>?request-id=<RequestId>`` when the job may exist. Only the plain ARN
names a job; everything else (those two forms, and the bare JobIds of
earlier provider versions) means "no job".

The provider keeps its own equivalent; this one serves the local engine and
its command line, which must not import the handler package.
"""

from __future__ import annotations

import re

__all__ = ["job_arn", "job_id_of"]

# JobId as CreateJob accepts it; the region and account parts as IoT prints them.
_JOB_ARN = re.compile(r"arn:(?P<partition>aws[a-z-]*):iot:[a-z0-9-]+:\d{12}:job/(?P<job_id>[a-zA-Z0-9_-]{1,64})")


def job_id_of(physical_id: str | None) -> str | None:
    """The JobId a physical id names, or ``None`` when it names no job.

    Parameters
    ----------
    physical_id
        A ``Custom::IotJob`` physical id (``Ref``).

    Returns
    -------
    str or None
        The JobId of a plain job ARN; ``None`` for anything else, including an
        ARN with a ``?request-id=`` suffix (a failed Create's id).

    Examples
    --------
    >>> job_id_of("arn:aws:iot:us-east-1:123456789012:job/fw-1")
    'fw-1'
    >>> job_id_of("arn:aws:iot:us-east-1:123456789012:job/fw-1?request-id=r1") is None
    True
    >>> job_id_of("create-failed:r1") is None
    True
    """
    match = _JOB_ARN.fullmatch(physical_id or "")
    return match.group("job_id") if match else None


def job_arn(job_id: str, *, partition: str, region: str, account: str) -> str:
    """The ARN of job ``job_id`` in ``partition``, ``region`` and ``account``."""
    return f"arn:{partition}:iot:{region}:{account}:job/{job_id}"
