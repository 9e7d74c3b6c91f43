"""The one definition of the ``Custom::IotJob`` properties.

Names, nesting and the create-only set follow ``AWS::IoT::Job``; limits follow
the IoT CreateJob API shapes. The construct validates literal values with this
module at synth time and the provider validates every event with it at deploy
time, so both sides always agree. Pure standard library: it ships in the Lambda
asset and is imported by the construct without pulling in boto3.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "CREATE_ONLY_PROPERTIES",
    "FRAMEWORK_PROPERTIES",
    "MAX_USER_TAGS",
    "OWNERSHIP_TAG_PREFIX",
    "PROPERTIES",
    "RESOURCE_TYPE",
    "SENSITIVE_PROPERTIES",
    "UPDATABLE_API_PROPERTIES",
    "UPDATABLE_PROPERTIES",
    "InvalidPropertyError",
    "check",
    "create_only_fingerprint",
    "is_valid",
    "json_strings",
    "parse_properties",
    "schedule_problems",
    "to_api",
]

#: The CloudFormation type of the resource this schema describes.
RESOURCE_TYPE = "Custom::IotJob"

# Added by CloudFormation or CDK, never part of the job.
FRAMEWORK_PROPERTIES = frozenset({"ServiceToken", "ServiceTimeout"})

# Tags the provider puts on each job it creates to recognise it later.
OWNERSHIP_TAG_PREFIX = "cdk-iot-job:"
# stack-id, logical-id, request-id, create-fingerprint, and replaces on a replacement.
OWNERSHIP_TAG_COUNT = 5
# IoT allows 50 tags per resource; the provider's ownership tags use some.
MAX_USER_TAGS = 50 - OWNERSHIP_TAG_COUNT

_VALUE_PREVIEW = 60

# Properties whose values may carry secrets: errors name the path under them,
# never a value, whatever shape the value has.
SENSITIVE_PROPERTIES = frozenset({"Document", "DocumentParameters", "Tags"})

Unresolved = Callable[[Any], bool]


class InvalidPropertyError(ValueError):
    """A property value breaks a rule of the ``Custom::IotJob`` schema.

    The message names the property path, the offending value (shortened) and
    the rule, for example ``JobId 'bad id!' must match [a-zA-Z0-9_-]{1,64}``.
    """


def _preview(value: Any) -> str:
    text = repr(value)
    if len(text) > _VALUE_PREVIEW:
        text = text[: _VALUE_PREVIEW - 3] + "..."
    return text


def _shorten(name: str) -> str:
    return name if len(name) <= _VALUE_PREVIEW else name[: _VALUE_PREVIEW - 3] + "..."


def _is_sensitive_path(path: str) -> bool:
    if path.endswith((" key", ".Key")):
        return False  # a tag's or a document parameter's key is a name, not a value
    # The whole of ResourceProperties may hold a document too.
    return re.split(r"[.\[ ]", path, maxsplit=1)[0] in {*SENSITIVE_PROPERTIES, "ResourceProperties"}


def _fail(path: str, value: Any, rule: str, *, sensitive: bool = False) -> InvalidPropertyError:
    if sensitive or _is_sensitive_path(path):
        return InvalidPropertyError(f"{path} {rule}")
    return InvalidPropertyError(f"{path} {_preview(value)} {rule}")


def _no_control_characters(text: str) -> bool:
    return all(not unicodedata.category(char).startswith("C") for char in text)


def _is_tag_key_text(text: str) -> bool:
    # ^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$ without the third-party regex module.
    return all(unicodedata.category(char)[0] in "LZN" or char in "_.:/=+-@" for char in text)


def _is_json(text: str) -> bool:
    try:
        json.loads(text, parse_constant=_not_json)
    except (ValueError, RecursionError):
        # RecursionError: nested deeper than Python's parser goes, so unverifiable.
        return False
    return True


def _not_json(constant: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON does not.
    raise ValueError(f"{constant} is not JSON")


@dataclass(frozen=True)
class Check:
    """A rule on a scalar value beyond its type and bounds."""

    test: Callable[[Any], bool]
    rule: str


@dataclass(frozen=True)
class Field:
    """One property, with its type and API limits.

    ``kind`` is one of ``string``, ``integer``, ``number``, ``list``, ``object``
    or ``map``. ``api_name`` is the CreateJob member name; by default the
    PascalCase name with a lower-case first letter.
    """

    kind: str
    min: float | None = None
    max: float | None = None
    pattern: str | None = None
    enum: tuple[str, ...] = ()
    decimals: int | None = None
    checks: tuple[Check, ...] = ()
    items: Field | None = None
    fields: Mapping[str, Field] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()
    map_key: Field | None = None
    unique_by: str | None = None
    sensitive: bool = False
    api_name: str | None = None


def _string(
    min_len: int | None = None,
    max_len: int | None = None,
    pattern: str | None = None,
    *checks: Check,
    sensitive: bool = False,
    api_name: str | None = None,
) -> Field:
    return Field(
        "string",
        min=min_len,
        max=max_len,
        pattern=pattern,
        checks=checks,
        sensitive=sensitive,
        api_name=api_name,
    )


def _enum(*values: str) -> Field:
    return Field("string", enum=values)


# CreateJob's ``integer`` shapes are 32-bit; the bound also keeps int() off huge exponents.
_INT32_MAX = 2**31 - 1


def _integer(minimum: int | None = None, maximum: int = _INT32_MAX) -> Field:
    return Field("integer", min=minimum, max=maximum)


def _number(minimum: float | None, maximum: float | None, decimals: int) -> Field:
    return Field("number", min=minimum, max=maximum, decimals=decimals)


def _object(fields: dict[str, Field], *, required: Sequence[str] = (), any_of: Sequence[str] = ()) -> Field:
    return Field("object", fields=fields, required=tuple(required), any_of=tuple(any_of))


def _list(
    items: Field, min_items: int | None = None, max_items: int | None = None, *, unique_by: str | None = None
) -> Field:
    return Field("list", items=items, min=min_items, max=max_items, unique_by=unique_by)


_ARN = r"arn:[!-~]+"
# CreateJob's StringDateTime: YYYY-MM-DDTHH:MM, in UTC.
_SCHEDULE_TIME = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}"
SCHEDULE_TIME_FORMAT = "%Y-%m-%dT%H:%M"


def _is_schedule_time(text: str) -> bool:
    try:
        datetime.strptime(text, SCHEDULE_TIME_FORMAT)
    except ValueError:
        return False
    return True


_REAL_TIME = Check(_is_schedule_time, "must be a real date and time (YYYY-MM-DDTHH:MM, UTC)")
# CreateJob's scheduling rules.
SCHEDULE_MIN_LEAD = timedelta(minutes=30)
SCHEDULE_MAX_START_AHEAD = timedelta(days=365)
SCHEDULE_MAX_END_AHEAD = timedelta(days=2 * 365)
SCHEDULE_MIN_DURATION = timedelta(minutes=30)
# [0-9], not \d: \d also matches other scripts' digits, which name no account.
# Thing and thing group names are [a-zA-Z0-9:_-]+ (CreateThing, CreateThingGroup): never an IAM wildcard,
# which matters since a rollout gate's grants name the group targets.
_TARGET_ARN = r"arn:[a-z0-9-]+:iot:[a-z0-9-]+:[0-9]{12}:(thing|thinggroup)/[a-zA-Z0-9:_-]+"
_NO_CONTROL = Check(_no_control_characters, "must not contain control characters")

# "*" and "?" are IAM wildcards. S3 objects and roles named by these values
# become policy resources (the provider's, a presigned-URL role's), where
# either would grant more than the one object or role meant.
IAM_WILDCARD_RULE = "must not contain '*' or '?': it would become an IAM wildcard"
PLACEHOLDER_WILDCARD_RULE = (
    "must not contain a presigned-URL placeholder whose URL has '*' or '?': it would become an IAM wildcard"
)
#: A presigned-URL placeholder in a job document; ``url`` is the S3 object URL.
PRESIGNED_PLACEHOLDER = re.compile(r"\$\{aws:iot:s3-presigned-url(?:-v2)?:(?P<url>[^}]*)\}")


def has_no_iam_wildcard(text: str) -> bool:
    """Whether ``text`` is free of the IAM wildcards ``*`` and ``?``."""
    return "*" not in text and "?" not in text


def _placeholders_have_no_wildcard(document: str) -> bool:
    # The raw text and, for JSON, its decoded strings: "\u002a" is a "*" too.
    try:
        decoded = list(json_strings(json.loads(document)))
    except (ValueError, RecursionError):
        decoded = []
    return all(
        has_no_iam_wildcard(match.group("url"))
        for text in (document, *decoded)
        for match in PRESIGNED_PLACEHOLDER.finditer(text)
    )


def json_strings(value: Any) -> Iterator[str]:
    """Every string of a decoded JSON value, keys and values, in order.

    Decoded, so ``\\/`` and ``\\u`` escapes in a hand-written document cannot
    hide a presigned-URL placeholder from a check.
    """
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from json_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from json_strings(item)


_NO_IAM_WILDCARD = Check(has_no_iam_wildcard, IAM_WILDCARD_RULE)
_NO_PLACEHOLDER_WILDCARD = Check(_placeholders_have_no_wildcard, PLACEHOLDER_WILDCARD_RULE)

_TAG = _object(
    {
        "Key": _string(
            1,
            128,
            None,
            Check(_is_tag_key_text, "must contain only letters, digits, spaces and _.:/=+-@"),
            Check(lambda key: not key.lower().startswith("aws:"), "must not start with the reserved prefix 'aws:'"),
            Check(
                lambda key: not key.startswith(OWNERSHIP_TAG_PREFIX),
                f"must not start with '{OWNERSHIP_TAG_PREFIX}', which the provider reserves for ownership tags",
            ),
            api_name="Key",
        ),
        # Tag values may carry secrets: errors name the tag, never its value.
        "Value": _string(0, 256, api_name="Value", sensitive=True),
    },
    required=("Key", "Value"),
)

#: What a rollout gate counts as failed executions, unless FailureTypes says otherwise.
GATE_FAILURE_TYPES = ("FAILED", "REJECTED", "TIMED_OUT")
#: What the provider does to the new job when its gate fails (default CANCEL).
GATE_FAILURE_ACTIONS = ("CANCEL", "CANCEL_FORCE", "DELETE")
#: CloudFormation waits at most 3600 s; the provider keeps this much of it beyond a gate's
#: timeout for CreateJob, the failure action and the answer.
GATE_MARGIN_SECONDS = 300
#: IoT's presigned-URL lifetime when PresignedUrlConfig.ExpiresInSec is not given.
DEFAULT_PRESIGNED_URL_EXPIRES_IN_SEC = 3600
MAX_SERVICE_TIMEOUT_SECONDS = 3600
MAX_GATE_TIMEOUT_MINUTES = (MAX_SERVICE_TIMEOUT_SECONDS - GATE_MARGIN_SECONDS) // 60
DEFAULT_GATE_TIMEOUT_MINUTES = 30
#: A gated job carries one more provider tag (the gate's baton), so one user tag fewer fits.
GATE_TAG_COUNT = 1

PROPERTIES: Mapping[str, Field] = {
    "JobId": _string(1, 64, r"[a-zA-Z0-9_-]+"),
    "Targets": _list(
        _string(1, 2048, _TARGET_ARN),
        1,
        100,
    ),
    "Document": _string(
        0, 32768, None, Check(_is_json, "must be valid JSON"), _NO_PLACEHOLDER_WILDCARD, sensitive=True
    ),
    "DocumentSource": _string(1, 1350, None, _NO_IAM_WILDCARD),
    "Description": _string(1, 2028, None, _NO_CONTROL),
    "TargetSelection": _enum("CONTINUOUS", "SNAPSHOT"),
    "DocumentParameters": Field(
        "map",
        map_key=_string(1, 128, r"[a-zA-Z0-9_-]+"),
        items=_string(1, 30720, None, _NO_CONTROL),
    ),
    "JobTemplateArn": _string(1, 1600, _ARN),
    "PresignedUrlConfig": _object(
        {"RoleArn": _string(20, 2048, _ARN, _NO_IAM_WILDCARD), "ExpiresInSec": _integer(60, 3600)}
    ),
    "JobExecutionsRolloutConfig": _object(
        {
            "MaximumPerMinute": _integer(1),
            "ExponentialRate": _object(
                {
                    "BaseRatePerMinute": _integer(1, 1000),
                    "IncrementFactor": _number(1.1, 5, decimals=1),
                    "RateIncreaseCriteria": _object(
                        {"NumberOfNotifiedThings": _integer(1), "NumberOfSucceededThings": _integer(1)},
                        any_of=("NumberOfNotifiedThings", "NumberOfSucceededThings"),
                    ),
                },
                required=("BaseRatePerMinute", "IncrementFactor", "RateIncreaseCriteria"),
            ),
        }
    ),
    "AbortConfig": _object(
        {
            "CriteriaList": _list(
                _object(
                    {
                        "FailureType": _enum("FAILED", "REJECTED", "TIMED_OUT", "ALL"),
                        "Action": _enum("CANCEL"),
                        "ThresholdPercentage": _number(0, 100, decimals=2),
                        "MinNumberOfExecutedThings": _integer(1),
                    },
                    required=("FailureType", "Action", "ThresholdPercentage", "MinNumberOfExecutedThings"),
                ),
                1,
            )
        },
        required=("CriteriaList",),
    ),
    "TimeoutConfig": _object({"InProgressTimeoutInMinutes": _integer(1, 10080)}),
    "JobExecutionsRetryConfig": _object(
        {
            "CriteriaList": _list(
                _object(
                    {"FailureType": _enum("FAILED", "TIMED_OUT", "ALL"), "NumberOfRetries": _integer(0, 10)},
                    required=("FailureType", "NumberOfRetries"),
                ),
                1,
                2,
            )
        },
        required=("CriteriaList",),
    ),
    "SchedulingConfig": _object(
        {
            "StartTime": _string(1, 64, _SCHEDULE_TIME, _REAL_TIME),
            "EndTime": _string(1, 64, _SCHEDULE_TIME, _REAL_TIME),
            "EndBehavior": _enum("STOP_ROLLOUT", "CANCEL", "FORCE_CANCEL"),
            "MaintenanceWindows": _list(
                _object(
                    {"StartTime": _string(1, 256), "DurationInMinutes": _integer(1, 1430)},
                    required=("StartTime", "DurationInMinutes"),
                )
            ),
        }
    ),
    "DestinationPackageVersions": _list(_string(1, 1600, _ARN)),
    "Tags": _list(_TAG, 0, MAX_USER_TAGS, unique_by="Key"),
    # Not in AWS::IoT::Job: CreateJob's namespace, and what Delete does.
    "NamespaceId": _string(1, 64, r"[a-zA-Z0-9_-]+"),
    "DeleteBehavior": _enum("DELETE", "CANCEL"),
    # Not in AWS::IoT::Job: the deploy waits for the fleet's answer (gate_rules.py, rollout_gate.py).
    "RolloutGate": _object(
        {
            "MinSucceededPercent": _number(0, 100, decimals=2),
            "MaxFailedPercent": _number(0, 100, decimals=2),
            "FailureTypes": _list(_enum(*GATE_FAILURE_TYPES), 1, len(GATE_FAILURE_TYPES)),
            "BakeTimeInMinutes": _integer(0, MAX_GATE_TIMEOUT_MINUTES - 1),
            "TimeoutInMinutes": _integer(1, MAX_GATE_TIMEOUT_MINUTES),
            "OnFailure": _enum(*GATE_FAILURE_ACTIONS),
            "ExpectedTargets": _integer(1),
        },
        required=("MinSucceededPercent",),
    ),
}

REQUIRED_PROPERTIES = ("Targets",)


# As AWS::IoT::Job's createOnlyProperties, plus NamespaceId.
CREATE_ONLY_PROPERTIES = frozenset(
    {
        "JobId",
        "Targets",
        "Document",
        "DocumentSource",
        "TargetSelection",
        "JobTemplateArn",
        "DocumentParameters",
        "SchedulingConfig",
        "DestinationPackageVersions",
        "JobExecutionsRetryConfig",
        "NamespaceId",
    }
)

# What UpdateJob changes; Tags change through Tag/UntagResource, DeleteBehavior
# only changes what the provider does on Delete.
UPDATABLE_API_PROPERTIES = (
    "Description",
    "PresignedUrlConfig",
    "JobExecutionsRolloutConfig",
    "AbortConfig",
    "TimeoutConfig",
)

# Everything an Update can change without a new job.
UPDATABLE_PROPERTIES = (*UPDATABLE_API_PROPERTIES, "Tags", "DeleteBehavior", "RolloutGate")

# Properties that never reach CreateJob.
_PROVIDER_ONLY = frozenset({"DeleteBehavior", "RolloutGate"})

_MANAGED_TEMPLATE = re.compile(r"arn:[a-z0-9-]+:iot:[a-z0-9-]*::jobtemplate/AWS-[!-~]+")


def parse_properties(raw: Mapping[str, Any], *, is_unresolved: Unresolved | None = None) -> dict[str, Any]:
    """Coerce and validate ``Custom::IotJob`` properties.

    CloudFormation sends every scalar as a string, so values are converted by
    their schema type (``"50"`` becomes ``50``) before the rules are checked.
    Only rules that hold whenever the template is deployed are checked here;
    rules relative to the current time are :func:`schedule_problems`.

    Parameters
    ----------
    raw
        The resource properties. ``ServiceToken`` and ``ServiceTimeout`` are
        ignored.
    is_unresolved
        At synth time, tells which values are unresolved CDK tokens; those are
        skipped and left to the provider at deploy time.

    Returns
    -------
    dict
        The typed properties, without the framework properties.

    Raises
    ------
    InvalidPropertyError
        When a property is unknown, missing, of the wrong type or breaks a
        limit. The message names the property path; values under
        :data:`SENSITIVE_PROPERTIES` are never quoted.
    """
    unresolved = is_unresolved or (lambda _value: False)
    if not isinstance(raw, Mapping):
        raise _fail("ResourceProperties", raw, "must be an object")
    properties = {name: value for name, value in raw.items() if name not in FRAMEWORK_PROPERTIES}
    root = _object(dict(PROPERTIES), required=REQUIRED_PROPERTIES)
    parsed = _parse_object(root, properties, "", unresolved)
    _check_document_rules(parsed, unresolved)
    _check_rollout_gate(parsed, unresolved)
    _check_schedule_order(parsed.get("SchedulingConfig"), unresolved)
    return parsed


def check(name: str, value: Any) -> Any:
    """Validate one top-level property on its own; returns the parsed value.

    Raises
    ------
    InvalidPropertyError
        With the same message :func:`parse_properties` would give.
    """
    return _parse(PROPERTIES[name], value, name, lambda _value: False)


def is_valid(name: str, value: Any) -> bool:
    """Whether ``value`` is a valid literal for the top-level property ``name``."""
    try:
        check(name, value)
    except InvalidPropertyError:
        return False
    return True


def _check_schedule_order(config: Any, unresolved: Unresolved) -> None:
    if not isinstance(config, Mapping):
        return
    start, end = (_schedule_time(config.get(name), unresolved) for name in ("StartTime", "EndTime"))
    if start is not None and end is not None and end - start < SCHEDULE_MIN_DURATION:
        raise _fail("SchedulingConfig.EndTime", config["EndTime"], "must be at least 30 minutes after StartTime")


def schedule_problems(properties: Mapping[str, Any], now: datetime) -> list[str]:
    """CreateJob's rules on a schedule relative to ``now``, as messages.

    A schedule must start 30 minutes to a year ahead and end 30 minutes to two
    years ahead. These hold only at the moment a job is created: the provider
    enforces them on Create, while synth only warns, so an app whose schedule
    has passed still synthesizes and its other changes still deploy.

    Parameters
    ----------
    properties
        Parsed properties (unresolved tokens are skipped).
    now
        The current time; naive values are taken as UTC.
    """
    config = properties.get("SchedulingConfig")
    if not isinstance(config, Mapping):
        return []
    unresolved: Unresolved = lambda value: not isinstance(value, str) or not _is_schedule_time(value)  # noqa: E731
    start, end = (_schedule_time(config.get(name), unresolved) for name in ("StartTime", "EndTime"))
    now = now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo else now
    lead = now + SCHEDULE_MIN_LEAD
    rules = (
        ("StartTime", start is not None and start < lead, "at least 30 minutes from now (UTC)"),
        ("StartTime", start is not None and start > now + SCHEDULE_MAX_START_AHEAD, "at most one year from now"),
        ("EndTime", end is not None and end < lead, "at least 30 minutes from now (UTC)"),
        ("EndTime", end is not None and end > now + SCHEDULE_MAX_END_AHEAD, "at most two years from now"),
    )
    return [
        f"SchedulingConfig.{name} {config[name]!r} must be {rule} when the job is created"
        for name, broken, rule in rules
        if broken
    ]


def _schedule_time(value: Any, unresolved: Unresolved) -> datetime | None:
    if value is None or unresolved(value):
        return None
    return datetime.strptime(value, SCHEDULE_TIME_FORMAT)


def _check_rollout_gate(props: Mapping[str, Any], unresolved: Unresolved) -> None:
    gate = props.get("RolloutGate")
    if not isinstance(gate, Mapping):
        return
    bake = gate.get("BakeTimeInMinutes", 0)
    timeout = gate.get("TimeoutInMinutes", DEFAULT_GATE_TIMEOUT_MINUTES)
    if not unresolved(bake) and not unresolved(timeout) and bake >= timeout:
        raise InvalidPropertyError(
            f"RolloutGate.BakeTimeInMinutes {bake} must be less than RolloutGate.TimeoutInMinutes {timeout}: "
            "the bake time runs inside the gate's timeout"
        )
    failure_types = gate.get("FailureTypes")
    if isinstance(failure_types, list) and len(set(map(str, failure_types))) != len(failure_types):
        raise InvalidPropertyError("RolloutGate.FailureTypes must not repeat a failure type")
    tags = props.get("Tags")
    if isinstance(tags, list) and len(tags) > MAX_USER_TAGS - GATE_TAG_COUNT:
        raise InvalidPropertyError(
            f"Tags must have at most {MAX_USER_TAGS - GATE_TAG_COUNT} item(s) on a job with a RolloutGate "
            f"(got {len(tags)}): the gate uses one more of IoT's 50 tags"
        )


def _check_document_rules(props: Mapping[str, Any], unresolved: Unresolved) -> None:
    has_document = "Document" in props
    has_source = "DocumentSource" in props
    template = props.get("JobTemplateArn")
    if has_document and has_source:
        raise InvalidPropertyError("Document and DocumentSource are mutually exclusive: set only one of them")
    if template is None and not (has_document or has_source):
        raise InvalidPropertyError("one of Document or DocumentSource is required unless JobTemplateArn is set")
    if "DocumentParameters" in props:
        if template is None:
            raise InvalidPropertyError("DocumentParameters requires JobTemplateArn naming an AWS managed template")
        if not unresolved(template) and not _MANAGED_TEMPLATE.fullmatch(template):
            raise _fail(
                "JobTemplateArn",
                template,
                "must be an AWS managed template ARN (arn:<partition>:iot:<region>::jobtemplate/AWS-...) "
                "when DocumentParameters is set",
            )


def _parse(spec: Field, value: Any, path: str, unresolved: Unresolved) -> Any:
    if unresolved(value):
        return value
    parser = _PARSERS[spec.kind]
    return parser(spec, value, path, unresolved)


def _parse_object(spec: Field, value: Any, path: str, unresolved: Unresolved) -> dict[str, Any]:
    label = path or "ResourceProperties"
    if not isinstance(value, Mapping):
        raise _fail(label, value, "must be an object")
    prefix = f"{path}." if path else ""
    for name in value:
        if name not in spec.fields:
            allowed = ", ".join(sorted(spec.fields))
            raise InvalidPropertyError(
                f"{prefix}{_shorten(str(name))} is not a supported property (allowed: {allowed})"
            )
    for name in spec.required:
        if name not in value:
            raise InvalidPropertyError(f"{prefix}{name} is required")
    if spec.any_of and not any(name in value for name in spec.any_of):
        raise InvalidPropertyError(f"{label} must set at least one of {', '.join(spec.any_of)}")
    return {name: _parse(spec.fields[name], item, prefix + name, unresolved) for name, item in value.items()}


def _parse_list(spec: Field, value: Any, path: str, unresolved: Unresolved) -> list[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise _fail(path, value, "must be a list")
    if spec.min is not None and len(value) < spec.min:
        raise InvalidPropertyError(f"{path} must have at least {spec.min:g} item(s) (got {len(value)})")
    if spec.max is not None and len(value) > spec.max:
        raise InvalidPropertyError(f"{path} must have at most {spec.max:g} item(s) (got {len(value)})")
    assert spec.items is not None
    parsed = [_parse(spec.items, item, f"{path}[{index}]", unresolved) for index, item in enumerate(value)]
    if spec.unique_by:
        seen: set[Any] = set()
        for index, item in enumerate(parsed):
            key = item.get(spec.unique_by) if isinstance(item, Mapping) else None
            if key is None or unresolved(key):
                continue
            if key in seen:
                raise _fail(f"{path}[{index}].{spec.unique_by}", key, "is a duplicate: each must be unique")
            seen.add(key)
    return parsed


def _parse_map(spec: Field, value: Any, path: str, unresolved: Unresolved) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(path, value, "must be an object")
    assert spec.map_key is not None and spec.items is not None
    parsed: dict[str, Any] = {}
    for key, item in value.items():
        _parse(spec.map_key, key, f"{path} key", unresolved)
        parsed[key] = _parse(spec.items, item, f"{path}.{_shorten(str(key))}", unresolved)
    return parsed


def _parse_string(spec: Field, value: Any, path: str, unresolved: Unresolved) -> str:
    if not isinstance(value, str):
        raise _fail(path, value, "must be a string", sensitive=spec.sensitive)
    if spec.enum:
        if value not in spec.enum:
            raise _fail(path, value, f"must be one of {', '.join(spec.enum)}")
        return value
    if spec.min is not None and len(value) < spec.min:
        raise _fail(path, value, f"must be at least {spec.min:g} character(s) long", sensitive=spec.sensitive)
    if spec.max is not None and len(value) > spec.max:
        rule = f"must be at most {spec.max:g} characters long (got {len(value)})"
        raise _fail(path, value, rule, sensitive=spec.sensitive)
    if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
        raise _fail(path, value, f"must match {spec.pattern}", sensitive=spec.sensitive)
    for check in spec.checks:
        if not check.test(value):
            raise _fail(path, value, check.rule, sensitive=spec.sensitive)
    return value


def _parse_integer(spec: Field, value: Any, path: str, unresolved: Unresolved) -> int:
    number = _as_decimal(value)
    if number is None or number != number.to_integral_value():
        raise _fail(path, value, "must be a whole number")
    _check_bounds(spec, number, value, path)
    return int(number)


def _parse_number(spec: Field, value: Any, path: str, unresolved: Unresolved) -> float:
    number = _as_decimal(value)
    if number is None:
        raise _fail(path, value, "must be a number")
    _check_bounds(spec, number, value, path)
    if spec.decimals is not None:
        exponent = number.normalize().as_tuple().exponent
        if isinstance(exponent, int) and -exponent > spec.decimals:
            raise _fail(path, value, f"must have at most {spec.decimals} digit(s) after the decimal point")
    return float(number)


def _as_decimal(value: Any) -> Decimal | None:
    # bool is an int subclass; "true" is never a number here.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    text = value.strip() if isinstance(value, str) else repr(value)
    try:
        number = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _check_bounds(spec: Field, number: Decimal, value: Any, path: str) -> None:
    if spec.min is not None and number < Decimal(str(spec.min)):
        raise _fail(path, value, f"must be at least {_bound_text(spec.min)}")
    if spec.max is not None and number > Decimal(str(spec.max)):
        raise _fail(path, value, f"must be at most {_bound_text(spec.max)}")


def _bound_text(bound: float) -> str:
    # 2147483647, not :g's 2.14748e+09.
    return format(Decimal(str(bound)).normalize(), "f")


_PARSERS: dict[str, Callable[[Field, Any, str, Unresolved], Any]] = {
    "object": _parse_object,
    "list": _parse_list,
    "map": _parse_map,
    "string": _parse_string,
    "integer": _parse_integer,
    "number": _parse_number,
}


def to_api(props: Mapping[str, Any], names: Sequence[str] | None = None) -> dict[str, Any]:
    """Translate parsed properties to IoT API request members.

    Parameters
    ----------
    props
        Output of :func:`parse_properties`.
    names
        Only these top-level properties; all job properties by default.

    Returns
    -------
    dict
        CreateJob/UpdateJob keyword arguments (``jobId``, ``targets``, ...).
    """
    selected = names if names is not None else [name for name in props if name not in _PROVIDER_ONLY]
    return {
        _api_name(name, PROPERTIES[name]): _value_to_api(PROPERTIES[name], props[name])
        for name in selected
        if name in props
    }


def _api_name(name: str, spec: Field) -> str:
    return spec.api_name or name[0].lower() + name[1:]


def _value_to_api(spec: Field, value: Any) -> Any:
    if spec.kind == "object":
        return {
            _api_name(name, spec.fields[name]): _value_to_api(spec.fields[name], item) for name, item in value.items()
        }
    if spec.kind == "list":
        assert spec.items is not None
        return [_value_to_api(spec.items, item) for item in value]
    return value


def create_only_fingerprint(props: Mapping[str, Any]) -> str:
    """Digest of the create-only properties other than ``JobId``.

    Two property sets with the same fingerprint describe the same job as far as
    CreateJob is concerned, so no replacement is needed between them.
    """
    create_only = {name: props[name] for name in sorted(CREATE_ONLY_PROPERTIES - {"JobId"}) if name in props}
    # SNAPSHOT is CreateJob's default: stating it explicitly is the same job.
    if create_only.get("TargetSelection") == "SNAPSHOT":
        del create_only["TargetSelection"]
    canonical = json.dumps(create_only, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()
