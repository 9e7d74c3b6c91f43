"""What a rule of ``IotJobChecks`` is: an id, a level, its messages and a check of one job.

Pure Python: a check reads a :class:`~cdk_iot_job.nag.job_properties.JobProperties`
and answers a :class:`Verdict`; only ``pack.py`` talks to cdk-nag.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .job_properties import JobProperties

__all__ = ["CUSTOM_ONLY", "NATIVE_AND_CUSTOM", "Level", "Rule", "Verdict"]

#: The resource types a rule reads (``Custom::IotJob`` is ``schema.RESOURCE_TYPE``).
NATIVE_AND_CUSTOM = frozenset({"Custom::IotJob", "AWS::IoT::Job"})
CUSTOM_ONLY = frozenset({"Custom::IotJob"})


class Verdict(enum.Enum):
    """A rule's answer for one job (cdk-nag's ``NagRuleCompliance``)."""

    COMPLIANT = "COMPLIANT"
    NON_COMPLIANT = "NON_COMPLIANT"
    # Also the answer when a value it needs is a token: a rule never guesses.
    NOT_APPLICABLE = "NOT_APPLICABLE"


class Level(enum.Enum):
    """A rule's level (cdk-nag's ``NagMessageLevel``)."""

    ERROR = "ERROR"
    WARN = "WARN"
    INFO = "INFO"


@dataclass(frozen=True)
class Rule:
    """One rule of the pack.

    Attributes
    ----------
    suffix
        The id after the pack name: ``R1`` makes ``IotJob-R1``. Stable: an
        acknowledgement names it.
    level
        ``Level.ERROR``, ``WARN`` or ``INFO``.
    info
        What was found, naming the Python keyword path and the CloudFormation
        path, e.g. ``abort_config (AbortConfig)``.
    explanation
        Why it matters and the fix (cdk-nag shows it with ``verbose=True``).
    applies_to
        The resource types it checks.
    check
        The verdict for one job.
    """

    suffix: str
    level: Level
    info: str
    explanation: str
    applies_to: frozenset[str]
    check: Callable[[JobProperties], Verdict]
