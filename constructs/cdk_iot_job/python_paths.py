"""CloudFormation property paths in validation messages, named as a Python user wrote them.

The shared schema names ``AbortConfig.CriteriaList[0].ThresholdPercentage``:
what the provider, CloudFormation and a plain template author see. A CDK user
wrote ``abort_config=AbortConfig(criteria_list=[AbortCriteria(threshold_percentage=...)])``,
so the construct names both: ``abort_config.criteria_list[0].threshold_percentage
(AbortConfig.CriteriaList[0].ThresholdPercentage)``.

The mapping is derived, not listed: a nested property is its dataclass field
(``config.py``, ``rollout_gate.py``) in snake_case, or the field whose
``CFN_NAME`` metadata names it (``RolloutGate.BakeTimeInMinutes`` is
``bake_time``). Top-level properties are ``IotJob``'s keywords in snake_case;
the few that differ are given by the caller (``JobTemplateArn`` is
``job_template`` or ``job_template_arn``, whichever was used).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from cdk_iot_job_provider import schema

from . import config
from .rollout_gate import RolloutGate

__all__ = ["python_path", "with_python_paths"]

# Dataclasses whose fields render to nested properties; a field named otherwise
# than its property says so in CFN_NAME metadata.
_CONFIG_CLASSES: tuple[type, ...] = (
    config.PresignedUrlConfig,
    config.RateIncreaseCriteria,
    config.ExponentialRolloutRate,
    config.JobExecutionsRolloutConfig,
    config.AbortCriteria,
    config.AbortConfig,
    config.TimeoutConfig,
    config.RetryCriteria,
    config.JobExecutionsRetryConfig,
    config.MaintenanceWindow,
    config.SchedulingConfig,
    RolloutGate,
)

_FIELD_NAMES: dict[str, str] = {
    str(item.metadata[config.CFN_NAME]): item.name
    for cls in _CONFIG_CLASSES
    for item in dataclasses.fields(cls)
    if config.CFN_NAME in item.metadata
}


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


# A top-level property, then .Field, [index] or, under DocumentParameters, .<key>;
# "DocumentParameters key" names a parameter's key. Not after a word, a dot or
# "(": a path already in parentheses is the CloudFormation half of a pair.
_PATH = re.compile(
    r"(?<![\w.(])(?P<top>" + "|".join(sorted(schema.PROPERTIES, key=len, reverse=True)) + r")"
    r"(?P<rest>(?:\[\d+\]|\.[A-Za-z0-9_-]+(?:\.\.\.)?)*)(?P<key> key)?(?![\w(])"
)
# What is no path: quoted values, and the lists of allowed names.
_PROTECTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\(allowed: [^)]*\)")
_SEGMENT = re.compile(r"\[\d+\]|\.[A-Za-z0-9_-]+(?:\.\.\.)?")


def python_path(path: str, keywords: Mapping[str, str] | None = None) -> str:
    """The Python path of a CloudFormation property path.

    Parameters
    ----------
    path
        E.g. ``AbortConfig.CriteriaList[0].ThresholdPercentage``.
    keywords
        ``IotJob`` keywords of top-level properties whose keyword is not their
        snake_case name, e.g. ``{"JobTemplateArn": "job_template"}``.

    Examples
    --------
    >>> python_path("AbortConfig.CriteriaList[0].ThresholdPercentage")
    'abort_config.criteria_list[0].threshold_percentage'
    """
    match = _PATH.fullmatch(path)
    if match is None:
        return path
    return _render(match, keywords or {})


def _render(match: re.Match[str], keywords: Mapping[str, str]) -> str:
    top = match.group("top")
    python = keywords.get(top, _snake(top))
    if top == "Tags":
        # tags is a dict: the list index of its rendering names nothing the user wrote.
        return python
    segments = _SEGMENT.findall(match.group("rest"))
    if top == "DocumentParameters":
        return python + "".join(f"[{segment[1:]!r}]" for segment in segments) + (match.group("key") or "")
    for segment in segments:
        if segment.startswith("["):
            python += segment
        else:
            name = segment[1:]
            python += "." + _FIELD_NAMES.get(name, _snake(name))
    return python


def with_python_paths(message: str, keywords: Mapping[str, str] | None = None) -> str:
    """``message`` with each property path it names preceded by its Python path.

    ``JobExecutionsRolloutConfig.MaximumPerMinute 0 must be at least 1`` becomes
    ``job_executions_rollout_config.maximum_per_minute (JobExecutionsRolloutConfig.MaximumPerMinute)
    0 must be at least 1``. Quoted values and lists of allowed names are left
    alone, and so are paths already paired with their Python path.
    """
    names = keywords or {}
    parts: list[str] = []
    position = 0
    for protected in _PROTECTED.finditer(message):
        parts.append(_rewrite(message[position : protected.start()], names))
        parts.append(protected.group())
        position = protected.end()
    parts.append(_rewrite(message[position:], names))
    return "".join(parts)


def _rewrite(text: str, keywords: Mapping[str, str]) -> str:
    def pair(match: re.Match[str]) -> str:
        return f"{_render(match, keywords)} ({match.group()})"

    return _PATH.sub(pair, text)
