"""Arbitrary CloudFormation events through the provider handler, against moto.

Hypothesis builds Create, Update and Delete events whose ``ResourceProperties``
are

* **valid**: drawn field by field from the shared schema
  (``cdk_iot_job_provider.schema.PROPERTIES``: kinds, bounds, patterns, enums,
  required and any-of fields), with the cross-property rules applied on top
  (``Document`` xor ``DocumentSource`` unless a template is named, template
  parameters only with an AWS managed template, a schedule at least 30 minutes
  long). ``DocumentSource`` names one of the S3 objects the tests put in moto;
* **near-valid**: a valid set with exactly one value broken (wrong type, out of
  range, too long or too short, off pattern, a failed check, a required field
  missing, an unknown field, a cross-property rule broken). The FAILED reason
  must name the broken value by its path, e.g. ``AbortConfig.CriteriaList[0]``;
* **junk**: non-object properties, nested garbage, 100 KB strings, control
  characters, empty objects, values CloudFormation never sends;

and ``PhysicalResourceId`` values that are empty, huge, unicode, or look like
job ids but name no job. Scalars are stringified as CloudFormation does
(``cdk_iot_job_local.events.stringify``); junk is sent both ways.

Every event must get exactly one response at its ResponseURL: valid JSON of at
most 4096 bytes, a non-empty ``PhysicalResourceId`` of at most 1024 characters,
``Status`` SUCCESS or FAILED, and a non-empty reason when FAILED; no exception
may escape ``handler.handler``. Beyond that: a Delete always succeeds (no job
here is one the stack owns and cannot delete), properties the schema rejects
fail a Create or Update without creating a job, and valid properties create
the job they describe.

All examples of one test share one moto account (the ``aws`` fixture is set up
once per test function, hence the suppressed function-scoped-fixture health
check); each example uses fresh LogicalResourceIds and JobIds, so jobs never
collide. Deletions complete at once (``deletion_polls=0``), so IoT's limit of
10 concurrent deletions cannot fail a later example. Runs are derandomized: CI
sees the same examples every time.

The valid and near-valid strategies are also used by
``test_schema_conformance.py``.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import figures
import pytest
from cfn_events import event
from depth import examples
from hypothesis import HealthCheck, Phase, example, given, note, settings
from hypothesis import event as hypothesis_event
from hypothesis import strategies as st
from in_process import LambdaContext
from job_arns import JOB_ARN_PREFIX, job_id_in
from moto.iot.models import iot_backends

from cdk_iot_job_local.cfn_endpoint import CloudFormationEndpoint
from cdk_iot_job_local.events import stringify
from cdk_iot_job_provider import handler, schema, update_decision
from cdk_iot_job_provider.ownership import OWNERSHIP_TAG_PREFIX
from cdk_iot_job_provider.schema import Field

ACCOUNT = "123456789012"
REGION = "us-east-1"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/FuzzStack/0f3c9a40-9c1e-11ef-8d6b-0affd3c9b2a1"

# CloudFormation's limits on a custom resource response.
MAX_BODY_BYTES = 4096
MAX_PHYSICAL_ID_CHARS = 1024

DOCUMENT_BUCKET = "fuzz-job-documents"
DOCUMENT_OBJECTS = {
    "jobs/reboot.json": b'{"operation":"reboot"}',
    "jobs/firmware/2.4.1.json": b'{"operation":"firmware-update","version":"2.4.1"}',
}
# Both URL forms the IoT fake reads from moto's S3.
DOCUMENT_SOURCES = (
    f"https://s3.amazonaws.com/{DOCUMENT_BUCKET}/jobs/reboot.json",
    f"https://{DOCUMENT_BUCKET}.s3.{REGION}.amazonaws.com/jobs/firmware/2.4.1.json",
)
MANAGED_TEMPLATE_ARNS = (
    f"arn:aws:iot:{REGION}::jobtemplate/AWS-Reboot:1.0",
    "arn:aws:iot:eu-west-1::jobtemplate/AWS-Run-Command:1.0",
    "arn:aws-cn:iot:cn-north-1::jobtemplate/AWS-Download-File:2.0",
)
CUSTOMER_TEMPLATE_ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}:jobtemplate/firmware-template"

# A property name no schema level knows.
UNKNOWN_NAME = "Colour"
LONGEST_DOCUMENT = '"' + "x" * (32768 - 2) + '"'

FUZZ_SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
)

# ---------------------------------------------------------------------------
# Valid property sets, drawn from the shared schema
# ---------------------------------------------------------------------------


def _item(spec: Field) -> Field:
    """The item field of a list (or the value field of a map)."""
    assert spec.items is not None
    return spec.items


_NO_CONTROL_TEXT = st.characters(exclude_categories=("C",))
_NAME = st.from_regex(r"[a-zA-Z0-9_-]{1,40}", fullmatch=True)
_THING_NAME = st.from_regex(r"[a-zA-Z0-9:_-]{1,40}", fullmatch=True)

_TARGET = st.one_of(
    st.builds(
        lambda kind, region, name: f"arn:aws:iot:{region}:{ACCOUNT}:{kind}/{name}",
        st.sampled_from(["thing", "thinggroup"]),
        st.sampled_from([REGION, "eu-west-1", "ap-south-1"]),
        _THING_NAME,
    ),
    # Whatever else the schema's target pattern admits.
    st.from_regex(str(_item(schema.PROPERTIES["Targets"]).pattern), fullmatch=True).filter(lambda a: len(a) <= 2048),
)

_JSON_SCALAR = st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=16)
_JSON_VALUE = st.recursive(
    _JSON_SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def compact_json(value: Any) -> str:
    """JSON text as the construct renders a dict document."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _tag_key_is_allowed(key: str) -> bool:
    return all(check.test(key) for check in _item(schema.PROPERTIES["Tags"]).fields["Key"].checks)


# Strategies for values whose schema rule a regex or a filter cannot reach.
_VALID_OVERRIDES: dict[str, st.SearchStrategy[Any]] = {
    "JobId": _NAME,
    "Targets[]": _TARGET,
    "Document": st.one_of(_JSON_VALUE.map(compact_json), st.just(LONGEST_DOCUMENT)),
    "DocumentSource": st.sampled_from(DOCUMENT_SOURCES),
    "Description": st.one_of(st.text(_NO_CONTROL_TEXT, min_size=1, max_size=40), st.just("d" * 2028)),
    "DocumentParameters{key}": st.one_of(_NAME, st.just("k" * 128)),
    "DocumentParameters{}": st.text(_NO_CONTROL_TEXT, min_size=1, max_size=30),
    "PresignedUrlConfig.RoleArn": _NAME.map(lambda name: f"arn:aws:iam::{ACCOUNT}:role/{name}"),
    "DestinationPackageVersions[]": st.builds(
        lambda package, version: f"arn:aws:iot:{REGION}:{ACCOUNT}:package/{package}/version/{version}",
        _NAME,
        st.from_regex(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}", fullmatch=True),
    ),
    "Tags[].Key": st.text(
        st.characters(categories=("L", "N", "Zs"), include_characters="_.:/=+-@"), min_size=1, max_size=30
    ).filter(_tag_key_is_allowed),
}


def _number_strategy(spec: Field) -> st.SearchStrategy[float]:
    # Whole multiples of 10**-decimals, so the decimals rule always holds.
    scale = Decimal(10) ** (spec.decimals or 0)
    low = int((Decimal(str(spec.min)) * scale).to_integral_value(rounding="ROUND_CEILING"))
    high = int((Decimal(str(spec.max)) * scale).to_integral_value(rounding="ROUND_FLOOR"))
    return st.integers(low, high).map(lambda units: float(Decimal(units) / scale))


def _cycled(items: list[Any], length: int, unique_by: str | None) -> list[Any]:
    cycled = [copy.deepcopy(items[index % len(items)]) for index in range(length)]
    if unique_by:
        for index, entry in enumerate(cycled):
            # A digit prefix keeps keys unique and clear of reserved prefixes.
            entry[unique_by] = f"{index}-{entry[unique_by]}"[:128]
    return cycled


def valid_value(spec: Field, path: str) -> st.SearchStrategy[Any]:
    """Values that ``spec`` accepts, drawn from its kind and limits.

    ``path`` names the value in ``_VALID_OVERRIDES`` terms: ``Targets[]`` for a
    list item, ``DocumentParameters{}`` for a map value, ``{key}`` for its key.
    """
    if path in _VALID_OVERRIDES:
        return _VALID_OVERRIDES[path]
    if spec.kind == "string":
        if spec.enum:
            return st.sampled_from(spec.enum)
        low = int(spec.min or 0)
        high = int(spec.max) if spec.max is not None else 64
        text = st.from_regex(spec.pattern, fullmatch=True) if spec.pattern else st.text(max_size=min(high, 40))
        return text.filter(lambda value: low <= len(value) <= high and all(c.test(value) for c in spec.checks))
    if spec.kind == "integer":
        return st.integers(
            None if spec.min is None else int(spec.min),
            None if spec.max is None else int(spec.max),
        )
    if spec.kind == "number":
        return _number_strategy(spec)
    if spec.kind == "list":
        assert spec.items is not None
        item = valid_value(spec.items, f"{path}[]")
        unique = (lambda entry: entry[spec.unique_by]) if spec.unique_by else None
        low = int(spec.min or 0)
        high = None if spec.max is None else int(spec.max)
        small = st.lists(item, min_size=low, max_size=min(max(low, 3), high or 3), unique_by=unique)
        if high is None or high <= 3:
            return small
        # The largest list the schema allows, now and then (cycled: drawing 100 items is slow).
        longest = st.lists(item, min_size=1, max_size=3, unique_by=unique).map(
            lambda items: _cycled(items, high, spec.unique_by)
        )
        return small | longest
    if spec.kind == "map":
        assert spec.map_key is not None and spec.items is not None
        return st.dictionaries(
            valid_value(spec.map_key, f"{path}{{key}}"), valid_value(spec.items, f"{path}{{}}"), max_size=3
        )
    fields = {name: valid_value(child, f"{path}.{name}") for name, child in spec.fields.items()}
    strategy = st.fixed_dictionaries(
        {name: fields[name] for name in spec.required},
        optional={name: value for name, value in fields.items() if name not in spec.required},
    )
    if spec.any_of:
        strategy = strategy.filter(lambda value: any(name in value for name in spec.any_of))
    return strategy


_SCHEDULE_FIELDS = schema.PROPERTIES["SchedulingConfig"].fields


@st.composite
def scheduling_config(draw: st.DrawFn) -> dict[str, Any]:
    """A schedule valid at synth time too: starts 1 h to 300 days ahead, lasts 30 min to 300 days."""
    config: dict[str, Any] = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "EndBehavior": valid_value(_SCHEDULE_FIELDS["EndBehavior"], "SchedulingConfig.EndBehavior"),
                "MaintenanceWindows": valid_value(
                    _SCHEDULE_FIELDS["MaintenanceWindows"], "SchedulingConfig.MaintenanceWindows"
                ),
            },
        )
    )
    now = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0)
    start = now + timedelta(minutes=draw(st.integers(60, 300 * 24 * 60)))
    if draw(st.booleans()):
        config["StartTime"] = start.strftime(schema.SCHEDULE_TIME_FORMAT)
    if draw(st.booleans()):
        end = start + timedelta(minutes=draw(st.integers(30, 300 * 24 * 60)))
        config["EndTime"] = end.strftime(schema.SCHEDULE_TIME_FORMAT)
    return config


@st.composite
def document_properties(draw: st.DrawFn) -> dict[str, Any]:
    """Where the job document comes from: inline, S3, a template, or a managed template with parameters."""
    source = draw(st.sampled_from(["document", "document-source", "template", "managed-template"]))
    if source == "document":
        return {"Document": draw(_VALID_OVERRIDES["Document"])}
    if source == "document-source":
        return {"DocumentSource": draw(_VALID_OVERRIDES["DocumentSource"])}
    if source == "template":
        return {"JobTemplateArn": CUSTOMER_TEMPLATE_ARN}
    chosen: dict[str, Any] = {"JobTemplateArn": draw(st.sampled_from(MANAGED_TEMPLATE_ARNS))}
    if draw(st.booleans()):
        chosen["DocumentParameters"] = draw(valid_value(schema.PROPERTIES["DocumentParameters"], "DocumentParameters"))
    return chosen


_GATE_FIELDS = schema.PROPERTIES["RolloutGate"].fields


@st.composite
def rollout_gate(draw: st.DrawFn) -> dict[str, Any]:
    """A gate whose cross-field rules hold: distinct failure types, a bake shorter than the timeout."""
    gate: dict[str, Any] = draw(
        st.fixed_dictionaries(
            {
                "MinSucceededPercent": valid_value(
                    _GATE_FIELDS["MinSucceededPercent"], "RolloutGate.MinSucceededPercent"
                )
            },
            optional={
                name: valid_value(_GATE_FIELDS[name], f"RolloutGate.{name}")
                for name in ("MaxFailedPercent", "OnFailure", "ExpectedTargets")
            },
        )
    )
    if draw(st.booleans()):
        gate["FailureTypes"] = draw(st.lists(st.sampled_from(schema.GATE_FAILURE_TYPES), min_size=1, unique=True))
    timeout = draw(st.integers(1, schema.MAX_GATE_TIMEOUT_MINUTES))
    if draw(st.booleans()):
        gate["TimeoutInMinutes"] = timeout
    if draw(st.booleans()):
        gate["BakeTimeInMinutes"] = draw(st.integers(0, min(timeout, schema.DEFAULT_GATE_TIMEOUT_MINUTES) - 1))
    return gate


# Properties drawn on their own; the document group, the schedule and the gate are drawn together.
_INDEPENDENT = [
    name
    for name in schema.PROPERTIES
    if name
    not in {
        "Targets",
        "Document",
        "DocumentSource",
        "JobTemplateArn",
        "DocumentParameters",
        "SchedulingConfig",
        "RolloutGate",
    }
]
_VALID = {name: valid_value(schema.PROPERTIES[name], name) for name in schema.PROPERTIES}


@st.composite
def valid_properties(draw: st.DrawFn, *, gated: bool = False) -> dict[str, Any]:
    """A property set the schema, CreateJob and the synth-time checks all accept (typed values).

    With ``gated``, some sets carry a ``RolloutGate``. The handler fuzzing here
    leaves gates out: a gated Create waits for a fleet (tests/system/test_gate.py).
    """
    properties: dict[str, Any] = {"Targets": draw(_VALID["Targets"])}
    for name in _INDEPENDENT:
        if draw(st.booleans()):
            properties[name] = draw(_VALID[name])
    properties.update(draw(document_properties()))
    if draw(st.booleans()):
        properties["SchedulingConfig"] = draw(scheduling_config())
    if gated and draw(st.booleans()):
        properties["RolloutGate"] = draw(rollout_gate())
        # The gate's baton takes one of IoT's tags.
        properties["Tags"] = properties.get("Tags", [])[: schema.MAX_USER_TAGS - schema.GATE_TAG_COUNT]
    return properties


# ---------------------------------------------------------------------------
# Near-valid property sets: one value broken
# ---------------------------------------------------------------------------

_DELETE = object()

# Candidates that break a pattern or a check; each breaker keeps those that do.
_OFF_PATTERN = (
    "bad value!",
    "has space",
    "ünïcode",
    "arn:with space",
    "not-an-arn-but-long-enough",
    f"arn:aws:iot:{REGION}:{ACCOUNT}:job/not-a-target",
    f"arn:aws:iot:{REGION}:\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660\u0661\u0662:thing/x",
    "arn:aws:s3:::bucket/thing/x",
    "2030-01-01 10:00",
)
_FAILING_CHECKS = (
    "bell\x07",
    "line\nbreak",
    "{",
    '{"unterminated": ',
    "NaN",
    "aws:reserved",
    "AWS:Reserved",
    f"{OWNERSHIP_TAG_PREFIX}mine",
    "owner#team",
)
# Match the schedule pattern, but name no date and time.
_NOT_A_TIME = ("2030-13-01T10:00", "2030-02-30T10:00", "2030-01-01T24:00", "2030-01-01T10:60")
_HUGE_NUMBERS = ("1e999999", "9" * 5000, "-1e999999")


@dataclass(frozen=True)
class Broken:
    """A property set with one value broken, and the path its rejection names."""

    properties: dict[str, Any]
    path: str
    how: str


@dataclass(frozen=True)
class _Node:
    spec: Field
    value: Any
    location: tuple[Any, ...]
    path: str


def _walk(spec: Field, value: Any, location: tuple[Any, ...], path: str) -> Iterator[_Node]:
    yield _Node(spec, value, location, path)
    if spec.kind == "object":
        prefix = f"{path}." if path else ""
        for name, item in value.items():
            yield from _walk(spec.fields[name], item, (*location, name), prefix + name)
    elif spec.kind == "list":
        assert spec.items is not None
        for index, item in enumerate(value):
            yield from _walk(spec.items, item, (*location, index), f"{path}[{index}]")
    elif spec.kind == "map":
        assert spec.items is not None
        for key, item in value.items():
            # The schema shortens a long key in a path to 60 characters.
            shown = key if len(key) <= 60 else key[:57] + "..."
            yield from _walk(spec.items, item, (*location, key), f"{path}.{shown}")


def _fits(spec: Field, text: str) -> bool:
    return (spec.min is None or len(text) >= spec.min) and (spec.max is None or len(text) <= spec.max)


def _matches(spec: Field, text: str) -> bool:
    return spec.pattern is None or re.fullmatch(spec.pattern, text) is not None


def _string_breaks(node: _Node) -> Iterator[tuple[str, Any]]:
    spec, value = node.spec, node.value
    yield "wrong type (list)", [value]
    yield "wrong type (object)", {"Value": value}
    if spec.enum:
        yield "not in enum", "NOT_AN_OPTION"
        if value.lower() not in spec.enum:
            yield "not in enum (case)", value.lower()
        return
    if spec.max is not None:
        yield "too long", "x" * (int(spec.max) + 1)
    if spec.min:
        yield "too short", ""
    if spec.pattern is not None:
        for text in _OFF_PATTERN:
            if _fits(spec, text) and not _matches(spec, text):
                yield "off pattern", text
    if spec.checks:
        for text in _FAILING_CHECKS:
            if _fits(spec, text) and _matches(spec, text) and not all(c.test(text) for c in spec.checks):
                yield "failed check", text
    if spec.pattern == _SCHEDULE_FIELDS["StartTime"].pattern:
        for text in _NOT_A_TIME:
            yield "no such time", text


def _number_breaks(node: _Node) -> Iterator[tuple[str, Any]]:
    spec, value = node.spec, node.value
    yield "wrong type (list)", [value]
    yield "not a number", "fifty"
    yield "not finite", "NaN"
    yield "boolean", True
    if spec.min is not None:
        yield "below minimum", float(Decimal(str(spec.min)) - 1) if spec.kind == "number" else int(spec.min) - 1
    if spec.max is not None:
        yield "above maximum", float(Decimal(str(spec.max)) + 1) if spec.kind == "number" else int(spec.max) + 1
    if spec.max is not None or spec.kind == "number":
        # Beyond any bound, or without one: never worth converting to an int.
        for text in _HUGE_NUMBERS:
            if not (text.startswith("-") and spec.min is None):
                yield "huge", text
    if spec.kind == "integer":
        yield "fraction", value + 0.5
    elif spec.decimals is not None:
        finer = Decimal(str(spec.min or 0)) + Decimal(1).scaleb(-(spec.decimals + 1))
        yield "too many decimals", float(finer)


def _list_breaks(node: _Node) -> Iterator[tuple[str, Any]]:
    spec, value = node.spec, node.value
    yield "wrong type (string)", "not-a-list"
    yield "wrong type (object)", {"Item": "x"}
    if spec.min:
        yield "too few items", []
    if spec.max is not None and value:
        yield "too many items", [copy.deepcopy(value[0]) for _ in range(int(spec.max) + 1)]


def _object_breaks(node: _Node) -> Iterator[tuple[str, str, Any]]:
    """Yields (how, path, new value) for an object: its path differs for a missing field."""
    spec, value, path = node.spec, node.value, node.path
    prefix = f"{path}." if path else ""
    if path:
        yield "wrong type (string)", path, "not-an-object"
        yield "wrong type (list)", path, ["not-an-object"]
    yield "unknown field", prefix + UNKNOWN_NAME, {**value, UNKNOWN_NAME: "blue"}
    for name in spec.required:
        yield "required field missing", prefix + name, {key: item for key, item in value.items() if key != name}
    if spec.any_of:
        kept = {key: item for key, item in value.items() if key not in spec.any_of}
        yield "none of the any-of fields", path, kept


def _map_breaks(node: _Node) -> Iterator[tuple[str, str, Any]]:
    value, path = node.value, node.path
    yield "wrong type (string)", path, "not-a-map"
    yield "key off pattern", f"{path} key", {**value, "bad key!": "v"}
    yield "key too long", f"{path} key", {**value, "k" * 129: "v"}


def _set(properties: dict[str, Any], location: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(properties)
    if not location:
        return value if isinstance(value, dict) else changed
    parent: Any = changed
    for step in location[:-1]:
        parent = parent[step]
    if value is _DELETE:
        del parent[location[-1]]
    else:
        parent[location[-1]] = value
    return changed


def _cross_property_breaks(properties: dict[str, Any]) -> Iterator[Broken]:
    has_template = "JobTemplateArn" in properties
    if "Document" in properties:
        both = {**properties, "DocumentSource": DOCUMENT_SOURCES[0]}
        yield Broken(both, "DocumentSource", "Document and DocumentSource")
    for name in ("Document", "DocumentSource"):
        if name in properties and not has_template:
            neither = {key: value for key, value in properties.items() if key != name}
            yield Broken(neither, "Document", "no document at all")
    if not has_template:
        yield Broken({**properties, "DocumentParameters": {"command": "reboot"}}, "DocumentParameters", "no template")
    if "DocumentParameters" in properties:
        customer = {**properties, "JobTemplateArn": CUSTOMER_TEMPLATE_ARN}
        yield Broken(customer, "JobTemplateArn", "parameters for a customer template")
    schedule = properties.get("SchedulingConfig", {})
    if "StartTime" in schedule and "EndTime" in schedule:
        start = datetime.strptime(schedule["StartTime"], schema.SCHEDULE_TIME_FORMAT)
        too_soon = (start + timedelta(minutes=29)).strftime(schema.SCHEDULE_TIME_FORMAT)
        shortened = {**properties, "SchedulingConfig": {**schedule, "EndTime": too_soon}}
        yield Broken(shortened, "SchedulingConfig.EndTime", "schedule under 30 minutes")


def breakages(properties: dict[str, Any]) -> list[Broken]:
    """Every single-value breakage of a valid property set this module knows."""
    root = Field("object", fields=dict(schema.PROPERTIES), required=("Targets",))
    found: list[Broken] = []
    for node in _walk(root, properties, (), ""):
        simple: Iterator[tuple[str, Any]] = iter(())
        if node.spec.kind == "string":
            simple = _string_breaks(node)
        elif node.spec.kind in ("integer", "number"):
            simple = _number_breaks(node)
        elif node.spec.kind == "list":
            simple = _list_breaks(node)
            if node.spec.unique_by and node.value and (node.spec.max is None or len(node.value) < node.spec.max):
                duplicated = [*node.value, copy.deepcopy(node.value[0])]
                path = f"{node.path}[{len(node.value)}].{node.spec.unique_by}"
                found.append(Broken(_set(properties, node.location, duplicated), path, "duplicate"))
        for how, value in simple:
            found.append(Broken(_set(properties, node.location, value), node.path, how))
        located: Iterator[tuple[str, str, Any]] = iter(())
        if node.spec.kind == "object":
            located = _object_breaks(node)
        elif node.spec.kind == "map":
            located = _map_breaks(node)
        for how, path, value in located:
            found.append(Broken(_set(properties, node.location, value), path, how))
    found.extend(_cross_property_breaks(properties))
    return found


@st.composite
def near_valid_properties(draw: st.DrawFn, *, gated: bool = False) -> Broken:
    """A valid property set with exactly one value broken (see :func:`valid_properties` for ``gated``)."""
    properties = draw(valid_properties(gated=gated))
    candidates = breakages(properties)
    # Kind first, so that no kind of breakage crowds out the others.
    how = draw(st.sampled_from(sorted({broken.how for broken in candidates})))
    return draw(st.sampled_from([broken for broken in candidates if broken.how == how]))


# ---------------------------------------------------------------------------
# Junk
# ---------------------------------------------------------------------------

_ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=30)  # control characters included
_JUNK_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    _ANY_TEXT,
    st.just("\x00\x1b[31m\u202e\ufeff"),
    st.just("x" * 100_000),
)
_JUNK_VALUE = st.recursive(
    _JUNK_SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_ANY_TEXT, inner, max_size=3),
    max_leaves=12,
)
_DEEP_LIST: Any = []
for _ in range(200):
    _DEEP_LIST = [_DEEP_LIST]
_JUNK_FIELD_VALUE = st.one_of(
    _JUNK_VALUE,
    st.just({}),
    st.just([]),
    st.just(_DEEP_LIST),
    # Valid JSON, nested deeper than Python's recursion limit.
    st.just("[" * 5000 + "]" * 5000),
)
_PROPERTY_NAME = st.sampled_from([*schema.PROPERTIES, *schema.FRAMEWORK_PROPERTIES]) | _ANY_TEXT


@st.composite
def junk_properties(draw: st.DrawFn) -> Any:
    """ResourceProperties CloudFormation would never send, or barely."""
    shape = draw(st.sampled_from(["not an object", "random object", "valid set with junk"]))
    if shape == "not an object":
        return draw(st.one_of(_JUNK_SCALAR, st.lists(_JUNK_SCALAR, max_size=3)))
    if shape == "random object":
        return draw(st.dictionaries(_PROPERTY_NAME, _JUNK_FIELD_VALUE, max_size=4))
    properties = draw(valid_properties())
    name = draw(_PROPERTY_NAME)
    properties[name] = draw(_JUNK_FIELD_VALUE)
    return properties


# ---------------------------------------------------------------------------
# Physical ids
# ---------------------------------------------------------------------------

_JOB_ID_LIKE = st.from_regex(r"[a-zA-Z0-9_-]{1,64}", fullmatch=True)
_GENERATED_LIKE = st.builds(
    lambda logical_id, digest: f"FuzzStack-{logical_id}-{digest}",
    st.from_regex(r"Fuzz[0-9]{1,4}", fullmatch=True),
    st.from_regex(r"[0-9a-f]{12}", fullmatch=True),
)
_REQUEST_ID = st.uuids().map(str)
# The forms the provider answers, naming no job here: job ARNs of this account
# and region (plain, or a failed Create's, qualified by its request), job ARNs
# of other accounts, regions and partitions, and a failed Create's "no job" id.
_ARN_LIKE = st.one_of(
    _JOB_ID_LIKE.map(lambda job_id: JOB_ARN_PREFIX + job_id),
    _GENERATED_LIKE.map(lambda job_id: JOB_ARN_PREFIX + job_id),
    st.builds(
        lambda job_id, request_id: f"{JOB_ARN_PREFIX}{job_id}?request-id={request_id}",
        _JOB_ID_LIKE,
        _REQUEST_ID | st.just(""),
    ),
    st.builds(
        lambda prefix, job_id: prefix + job_id,
        st.sampled_from(
            [
                "arn:aws:iot:eu-west-1:123456789012:job/",
                "arn:aws:iot:us-east-1:210987654321:job/",
                "arn:aws-cn:iot:cn-north-1:123456789012:job/",
                f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/",
            ]
        ),
        _JOB_ID_LIKE,
    ),
    _REQUEST_ID.map(lambda request_id: f"create-failed:{request_id}"),
)
# Within CloudFormation's 1 KB.
PHYSICAL_IDS = st.one_of(
    st.just(""),
    _JOB_ID_LIKE,
    _GENERATED_LIKE,
    _ARN_LIKE,
    st.from_regex(r"FuzzStack_Fuzz[0-9]{1,4}_[A-Za-z0-9]{8}", fullmatch=True),  # crhelper's random form
    st.text(max_size=60),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=MAX_PHYSICAL_ID_CHARS),
    st.just("x" * MAX_PHYSICAL_ID_CHARS),
)
HUGE_PHYSICAL_IDS = st.one_of(
    st.integers(MAX_PHYSICAL_ID_CHARS + 1, 5000).map(lambda length: "p" * length),
    st.just("\u00e9" * 4000),
    st.just("p" * 100_000),
)


# ---------------------------------------------------------------------------
# Sending events
# ---------------------------------------------------------------------------


@dataclass
class Figures:
    """What one strategy's events got back."""

    events: int = 0
    success: int = 0
    failed: int = 0
    max_body_bytes: int = 0
    max_reason_chars: int = 0


FIGURES: dict[str, Figures] = {}


@pytest.fixture(scope="module", autouse=True)
def record_figures() -> Iterator[None]:
    """One figures row per strategy, once the module's tests have run."""
    yield
    for strategy, seen in FIGURES.items():
        figures.record(
            "Fuzzed events",
            strategy=strategy,
            examples=seen.events,
            failed_responses=seen.failed,
            success_responses=seen.success,
            max_body_bytes=seen.max_body_bytes,
            max_reason_chars=seen.max_reason_chars,
        )


# Fresh ids across every example, shrinking included, so jobs never collide.
_SERIALS = itertools.count()


@dataclass
class Fuzz:
    """Sends events through a handler made with the test's dependencies and checks the response contract on each."""

    aws: Any
    endpoint: CloudFormationEndpoint
    strategy: str
    deliver: handler.ProviderHandler = field(init=False)

    def __post_init__(self) -> None:
        self.deliver = handler.make_handler(self.aws.dependencies)

    def fresh(self) -> int:
        return next(_SERIALS)

    def job_ids(self) -> set[str]:
        """The ids of every job moto holds (read from its backend: ListJobs pages)."""
        return set(iot_backends[ACCOUNT][REGION].jobs)

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self.aws.iot.describe_job(jobId=job_id)["job"])

    def user_tags(self, job_id: str) -> dict[str, str]:
        arn = self.job(job_id)["jobArn"]
        tags = self.aws.iot.list_tags_for_resource(resourceArn=arn)["tags"]
        return {tag["Key"]: tag["Value"] for tag in tags if not tag["Key"].startswith(OWNERSHIP_TAG_PREFIX)}

    def build(
        self,
        request_type: str,
        properties: Any,
        *,
        logical_id: str,
        physical_id: str | None = None,
        old_properties: Any = None,
        as_cloudformation_sends: bool = True,
    ) -> dict[str, Any]:
        """An event; properties that are no object replace ``ResourceProperties`` whole."""
        built = event(
            request_type,
            {},
            response_url="",
            physical_id=physical_id,
            old_properties={} if request_type == "Update" else None,
            logical_id=logical_id,
            stack_id=STACK_ID,
        )
        for key, value in (("ResourceProperties", properties), ("OldResourceProperties", old_properties)):
            if key not in built:
                continue
            shaped = stringify(value) if as_cloudformation_sends else value
            built[key] = {**built[key], **shaped} if isinstance(value, dict) else shaped
        return built

    def send(self, built: dict[str, Any]) -> dict[str, Any]:
        """Deliver ``built`` and return the one response, after checking the contract."""
        url = self.endpoint.response_url(self.strategy)
        built["ResponseURL"] = url
        self.deliver(built, LambdaContext())
        requests = self.endpoint.requests_for(url)
        assert len(requests) == 1, f"expected exactly one response, got {len(requests)}"
        body = requests[0].body
        response = json.loads(body)
        assert isinstance(response, dict)
        reason = response.get("Reason", "")
        seen = FIGURES.setdefault(self.strategy, Figures())
        seen.events += 1
        seen.success += response.get("Status") == "SUCCESS"
        seen.failed += response.get("Status") == "FAILED"
        seen.max_body_bytes = max(seen.max_body_bytes, len(body))
        seen.max_reason_chars = max(seen.max_reason_chars, len(reason or ""))
        note(f"{built['RequestType']} -> {response.get('Status')}: {compact(reason)!r}")
        assert requests[0].body_size <= MAX_BODY_BYTES, f"response body of {requests[0].body_size} bytes"
        physical_id = response.get("PhysicalResourceId")
        assert isinstance(physical_id, str) and physical_id, f"PhysicalResourceId {physical_id!r}"
        assert len(physical_id) <= MAX_PHYSICAL_ID_CHARS, f"PhysicalResourceId of {len(physical_id)} characters"
        assert response["Status"] in ("SUCCESS", "FAILED")
        if response["Status"] == "FAILED":
            assert isinstance(reason, str) and reason.strip(), "FAILED without a reason"
        return dict(response)


@pytest.fixture
def fuzz_aws(aws: Any) -> Any:
    """The ``aws`` fixture, set up for many examples in one account.

    Deletions complete at once, the S3 objects ``DocumentSource`` names exist,
    and a Delete does not wait for a Create that may still be running (the
    grace period only matters for a Create that timed out, never here).
    """
    aws.fake.deletion_polls = 0
    aws.dependencies = replace(aws.dependencies, timing=replace(aws.dependencies.timing, in_flight_grace_seconds=0.0))
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=DOCUMENT_BUCKET)
    for key, body in DOCUMENT_OBJECTS.items():
        s3.put_object(Bucket=DOCUMENT_BUCKET, Key=key, Body=body)
    return aws


def unique_job_id(properties: Any, serial: int) -> Any:
    """The properties with their JobId, if any is a string, made unique to this example."""
    if not isinstance(properties, dict) or not isinstance(properties.get("JobId"), str):
        return properties
    suffix = f"-{serial}"
    return {**properties, "JobId": properties["JobId"][: 64 - len(suffix)] + suffix}


def verdict(properties: Any, *, at_create: bool = False) -> schema.InvalidPropertyError | str | None:
    """The schema's verdict on what the handler would see; ``None`` when valid.

    ``at_create`` adds the schedule's rules relative to now, which only a
    Create enforces. Anything but ``InvalidPropertyError`` escaping the schema
    is a schema bug.
    """
    try:
        parsed = schema.parse_properties(properties if isinstance(properties, dict) else {})
    except schema.InvalidPropertyError as error:
        return error
    problems = schema.schedule_problems(parsed, datetime.now(UTC)) if at_create else []
    return "; ".join(problems) or None


def assert_job_as_described(fuzz: Fuzz, job_id: str, properties: dict[str, Any]) -> None:
    """The job exists with the targets, description and tags the properties give."""
    job = fuzz.job(job_id)
    assert job["targets"] == properties["Targets"]
    if "Description" in properties:
        assert job["description"] == properties["Description"]
    assert fuzz.user_tags(job_id) == {tag["Key"]: tag["Value"] for tag in properties.get("Tags", [])}
    if "JobId" in properties:
        assert job_id == properties["JobId"]


def job_id_of(response: dict[str, Any]) -> str:
    """The JobId a successful Create's or Update's physical id (the job's ARN) names.

    Also checks the response's attributes: exactly ``Arn``, ``CreatedAt`` and ``JobId``.
    """
    physical_id = str(response["PhysicalResourceId"])
    job_id = job_id_in(physical_id)
    data = response["Data"]
    assert set(data) == {"Arn", "CreatedAt", "JobId"}, data
    assert (data["Arn"], data["JobId"]) == (physical_id, job_id)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", data["CreatedAt"]), data["CreatedAt"]
    return job_id


# ---------------------------------------------------------------------------
# Create
# ---------------------------------------------------------------------------


def compact(value: Any) -> Any:
    """``value`` with long strings cut, for readable failure reports."""
    if isinstance(value, str) and len(value) > 120:
        return f"{value[:40]}...<{len(value)} characters>"
    if isinstance(value, dict):
        return {compact(key): compact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [compact(item) for item in value]
    return value


@dataclass(frozen=True)
class Case:
    """Properties of one kind, and what their rejection must name."""

    kind: str
    properties: Any
    path: str | None = None
    as_cloudformation_sends: bool = True

    def __repr__(self) -> str:
        return (
            f"Case({self.kind!r}, {compact(self.properties)!r}, {self.path!r}, "
            f"as_cloudformation_sends={self.as_cloudformation_sends})"
        )


PROPERTY_CASES = st.one_of(
    valid_properties().map(lambda properties: Case("valid", properties)),
    near_valid_properties().map(lambda broken: Case("near-valid", broken.properties, broken.path)),
    st.builds(Case, st.just("junk"), junk_properties(), st.none(), st.booleans()),
)


@settings(FUZZ_SETTINGS, max_examples=examples(150))
@given(case=PROPERTY_CASES)
# Found by this test: a calendar-invalid time, an integer beyond any bound (int()
# of a huge exponent), and valid JSON nested deeper than Python's parser goes
# raised ValueError or RecursionError instead of naming the property.
@example(
    case=Case(
        "near-valid",
        {
            "Targets": [f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/a"],
            "Document": "{}",
            "SchedulingConfig": {"StartTime": "2030-13-01T10:00"},
        },
        "SchedulingConfig.StartTime",
    )
)
@example(
    case=Case(
        "near-valid",
        {"Targets": [f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/a"], "Document": "[" * 5000 + "]" * 5000},
        "Document",
    )
)
@example(
    case=Case(
        "near-valid",
        {
            "Targets": [f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/a"],
            "Document": "{}",
            "JobExecutionsRolloutConfig": {"MaximumPerMinute": "1e999999"},
        },
        "JobExecutionsRolloutConfig.MaximumPerMinute",
    )
)
# Well-formed, but already past: only the Create itself can tell.
@example(
    case=Case(
        "near-valid",
        {
            "Targets": [f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/a"],
            "Document": "{}",
            "SchedulingConfig": {"StartTime": "2020-01-01T10:00"},
        },
        "SchedulingConfig.StartTime",
    )
)
def test_create_answers_once_and_creates_a_job_only_for_valid_properties(
    fuzz_aws: Any, cfn_endpoint: CloudFormationEndpoint, case: Case
) -> None:
    fuzz = Fuzz(fuzz_aws, cfn_endpoint, "Create")
    serial = fuzz.fresh()
    properties = case.properties if case.kind == "near-valid" else unique_job_id(case.properties, serial)
    before = fuzz.job_ids()

    response = fuzz.send(
        fuzz.build(
            "Create",
            properties,
            logical_id=f"Create{serial}",
            as_cloudformation_sends=case.as_cloudformation_sends,
        )
    )

    created = fuzz.job_ids() - before
    rejection = verdict(stringify(properties) if case.as_cloudformation_sends else properties, at_create=True)
    if case.kind == "valid":
        assert rejection is None, f"the schema rejects a valid set: {rejection}"
        assert response["Status"] == "SUCCESS", response["Reason"]
        assert created == {job_id_of(response)}
        assert_job_as_described(fuzz, job_id_of(response), properties)
        return
    if case.kind == "near-valid":
        assert rejection is not None, f"the schema accepts a broken {case.path}"
        assert response["Status"] == "FAILED"
        assert case.path is not None and case.path in response["Reason"], (case.path, response["Reason"])
    if rejection is not None:
        assert response["Status"] == "FAILED"
        assert created == set(), "a rejected Create created a job"
        # Rejected before any CreateJob: the id names no job.
        assert response["PhysicalResourceId"] == f"create-failed:{response['RequestId']}"
        assert response["Data"] == {}
    elif response["Status"] == "SUCCESS":
        assert created == {job_id_of(response)}


# ---------------------------------------------------------------------------
# Update and Delete of the resource's own job
# ---------------------------------------------------------------------------

CHANGES = st.one_of(
    valid_properties().map(lambda properties: Case("valid", properties)),
    near_valid_properties().map(lambda broken: Case("near-valid", broken.properties, broken.path)),
    st.builds(Case, st.just("junk"), junk_properties(), st.none(), st.booleans()),
)


def _deleted_or_canceled(fuzz: Fuzz, job_id: str, properties: Any) -> None:
    cancel = isinstance(properties, dict) and properties.get("DeleteBehavior") == "CANCEL"
    if cancel:
        assert fuzz.job(job_id)["status"] == "CANCELED"
    else:
        assert job_id not in fuzz.job_ids()


@settings(FUZZ_SETTINGS, max_examples=examples(60))
@given(created=valid_properties(), change=CHANGES, keep_job_id=st.booleans())
def test_update_then_delete_of_the_resources_own_job(
    fuzz_aws: Any, cfn_endpoint: CloudFormationEndpoint, created: dict[str, Any], change: Case, keep_job_id: bool
) -> None:
    fuzz = Fuzz(fuzz_aws, cfn_endpoint, "Update and Delete of its own job")
    serial = fuzz.fresh()
    logical_id = f"Own{serial}"
    old = unique_job_id(created, serial)
    old_created = fuzz.send(fuzz.build("Create", old, logical_id=logical_id))
    old_id = old_created["PhysicalResourceId"]
    old_job = job_id_of(old_created)
    assert old_job in fuzz.job_ids()
    new = change.properties if change.kind == "near-valid" else unique_job_id(change.properties, fuzz.fresh())
    if change.kind == "valid" and keep_job_id and "JobId" in old:
        new = {**new, "JobId": old["JobId"]}
    before = fuzz.job_ids()

    response = fuzz.send(
        fuzz.build(
            "Update",
            new,
            logical_id=logical_id,
            physical_id=old_id,
            old_properties=old,
            as_cloudformation_sends=change.as_cloudformation_sends,
        )
    )

    new_id = response["PhysicalResourceId"]
    if response["Status"] == "FAILED":
        # CloudFormation keeps the resource's id when an Update fails.
        assert new_id == old_id
    rejection = verdict(stringify(new) if change.as_cloudformation_sends else new)
    if change.kind == "near-valid":
        assert change.path is not None and change.path in response["Reason"], (change.path, response["Reason"])
    if rejection is not None:
        assert response["Status"] == "FAILED"
        assert fuzz.job_ids() == before, "a rejected Update created or removed a job"
    elif change.kind == "valid":
        decision = update_decision.decide_update(
            schema.parse_properties(stringify(new)),
            schema.parse_properties(stringify(old)),
            old_job,
            old_job_id=old.get("JobId"),
        )
        if decision.action == "refuse":
            assert response["Status"] == "FAILED"
            assert "JobId" in response["Reason"]
            assert fuzz.job_ids() == before
        else:
            assert response["Status"] == "SUCCESS", response["Reason"]
            assert (new_id != old_id) == (decision.action == "replace")
            assert_job_as_described(fuzz, job_id_of(response), new)

    # CloudFormation deletes the job it kept, then (after a replacement) the old one.
    kept = new if response["Status"] == "SUCCESS" else old
    new_job = job_id_of(response) if response["Status"] == "SUCCESS" else old_job
    deleted = fuzz.send(fuzz.build("Delete", kept, logical_id=logical_id, physical_id=new_id))
    assert deleted["Status"] == "SUCCESS"
    assert deleted["PhysicalResourceId"] == new_id
    _deleted_or_canceled(fuzz, new_job, kept)
    if new_id != old_id:
        cleanup = fuzz.send(fuzz.build("Delete", old, logical_id=logical_id, physical_id=old_id))
        assert cleanup["Status"] == "SUCCESS"
        _deleted_or_canceled(fuzz, old_job, old)


# ---------------------------------------------------------------------------
# Update and Delete of arbitrary physical ids
# ---------------------------------------------------------------------------

ANY_PROPERTIES = st.one_of(
    valid_properties().map(lambda properties: Case("valid", properties)),
    near_valid_properties().map(lambda broken: Case("near-valid", broken.properties, broken.path)),
    st.builds(Case, st.just("junk"), junk_properties(), st.none(), st.booleans()),
)


@dataclass
class ArbitraryIdEvent:
    """One Update or Delete of an id this resource never created, and what it left."""

    built: dict[str, Any]
    response: dict[str, Any]
    properties: Any
    before: set[str]
    after: set[str]


def _arbitrary_id_event(fuzz: Fuzz, request_type: str, physical_id: str, case: Case, old: Any) -> ArbitraryIdEvent:
    serial = fuzz.fresh()
    properties = case.properties if case.kind == "near-valid" else unique_job_id(case.properties, serial)
    before = fuzz.job_ids()
    built = fuzz.build(
        request_type,
        properties,
        logical_id=f"Arbitrary{serial}",
        physical_id=physical_id,
        old_properties=old,
        as_cloudformation_sends=case.as_cloudformation_sends,
    )
    sent = copy.deepcopy(built)
    response = fuzz.send(built)
    return ArbitraryIdEvent(sent, response, properties, before, fuzz.job_ids())


def _named_job(physical_id: str) -> str | None:
    """The JobId a physical id names in this account and region, if it names one."""
    arn, _, _ = physical_id.partition("?request-id=")
    job_id = arn.removeprefix(JOB_ARN_PREFIX)
    return job_id if arn != job_id and re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", job_id) else None


def _update_decision(built: dict[str, Any], physical_id: str) -> update_decision.UpdateDecision:
    """What the provider decides for an Update of a job that is not there (or not ours)."""
    old_raw = built.get("OldResourceProperties")
    old_raw = old_raw if isinstance(old_raw, dict) else {}
    try:
        old = schema.parse_properties(old_raw) if old_raw else None
    except schema.InvalidPropertyError:
        old = None
    return update_decision.decide_update(
        schema.parse_properties(built["ResourceProperties"]),
        old,
        _named_job(physical_id) or "",
        old_job_id=old_raw.get("JobId"),
    )


def check_arbitrary_id_outcome(
    request_type: str, physical_id: str, case: Case, sent: ArbitraryIdEvent, fuzz: Fuzz
) -> None:
    """What Update and Delete of an id this resource never created must do."""
    response, properties, before, after = sent.response, sent.properties, sent.before, sent.after
    if request_type == "Delete":
        assert response["Status"] == "SUCCESS", response["Reason"]
        assert after == before, "a Delete of an id that is not this resource's job changed the jobs"
        if len(physical_id.encode()) <= MAX_PHYSICAL_ID_CHARS and physical_id:
            assert response["PhysicalResourceId"] == physical_id
        return
    rejection = verdict(stringify(properties) if case.as_cloudformation_sends else properties)
    if case.kind == "near-valid":
        assert case.path is not None and case.path in response["Reason"], (case.path, response["Reason"])
    if rejection is not None:
        assert response["Status"] == "FAILED"
        assert after == before, "a rejected Update created a job"
        return
    named = _named_job(physical_id)
    hypothesis_event(f"valid Update: {response['Status']}, names {'a' if named else 'no'} job")
    if response["Status"] == "FAILED":
        # Only a job that exists and is not this resource's makes a valid Update fail.
        assert named in before, f"a valid Update of {physical_id!r}, no job, failed: {response['Reason']}"
        assert after == before
        return
    action = _update_decision(sent.built, physical_id).action
    hypothesis_event(f"valid Update: {action}")
    if action == "replace":
        # A replacement: a new job, under its own ARN.
        assert after - before == {job_id_of(response)}
        assert response["PhysicalResourceId"] != physical_id
        assert_job_as_described(fuzz, job_id_of(response), properties)
    else:
        # No job of this resource to change (never was, or deleted outside the
        # stack): nothing is created, and the id stays as it was.
        assert after == before, "an Update of a job that is not there created one"
        if physical_id and len(physical_id.encode()) <= MAX_PHYSICAL_ID_CHARS:
            assert response["PhysicalResourceId"] == physical_id


_OLD_PROPERTIES = st.one_of(valid_properties(), junk_properties())


@settings(FUZZ_SETTINGS, max_examples=examples(100))
@given(
    request_type=st.sampled_from(["Update", "Delete"]),
    physical_id=PHYSICAL_IDS,
    case=ANY_PROPERTIES,
    old=_OLD_PROPERTIES,
)
def test_update_and_delete_of_ids_this_resource_never_created(
    fuzz_aws: Any, cfn_endpoint: CloudFormationEndpoint, request_type: str, physical_id: str, case: Case, old: Any
) -> None:
    fuzz = Fuzz(fuzz_aws, cfn_endpoint, "Update/Delete of arbitrary ids")
    sent = _arbitrary_id_event(fuzz, request_type, physical_id, case, old)
    check_arbitrary_id_outcome(request_type, physical_id, case, sent, fuzz)


# No shrinking: the explicit examples are already minimal, and shrinking 100 KB
# ids through the handler takes minutes.
@settings(FUZZ_SETTINGS, max_examples=examples(10), phases=[Phase.explicit, Phase.generate])
@given(
    request_type=st.sampled_from(["Update", "Delete"]),
    physical_id=HUGE_PHYSICAL_IDS,
    case=ANY_PROPERTIES,
    old=_OLD_PROPERTIES,
)
@example(request_type="Delete", physical_id="p" * 1025, case=Case("junk", {}), old=None)
@example(request_type="Delete", physical_id="p" * 5000, case=Case("junk", {}), old=None)
def test_update_and_delete_of_ids_over_cloudformations_limit(
    fuzz_aws: Any, cfn_endpoint: CloudFormationEndpoint, request_type: str, physical_id: str, case: Case, old: Any
) -> None:
    # CloudFormation only sends back ids it accepted (at most 1 KB); a huge one
    # must still get a response CloudFormation can take.
    fuzz = Fuzz(fuzz_aws, cfn_endpoint, "Update/Delete of ids over 1 KB")
    sent = _arbitrary_id_event(fuzz, request_type, physical_id, case, old)
    check_arbitrary_id_outcome(request_type, physical_id, case, sent, fuzz)
