"""The ``Custom::IotJob`` schema against ``AWS::IoT::Job``'s registry schema.

The registry schema is a copy, ``tests/fixtures/aws-iot-job.registry-schema.json``
(the CloudFormation resource provider schema of ``AWS::IoT::Job``), so the tests
also run in a fresh clone; one test checks the copy against the reference
notes' original when that is present. It is applied with ``jsonschema``'s
Draft 7 validator, whose ``pattern`` keyword here uses the ``regex`` module:
two registry patterns use Unicode classes (``\\p{L}``, ``\\p{C}``) that Python's
``re`` lacks.

Properties checked, each from both sides:

* what our validator (``schema.check``/``schema.parse_properties``, the code
  the construct and the handler run) accepts, the registry schema accepts too;
  candidates: our valid values, and values drawn from the registry schema;
* what the registry schema rejects, ours rejects too; candidates: registry
  values with one value broken (a bound, a pattern, a type, a required or an
  unknown field);
* a registry-valid value ours rejects is rejected by one of the documented
  rules below, and by no other: the list is exhaustive;
* the construct (synth time) and the provider (deploy time) agree on every
  generated literal: ``IotJob`` raises iff ``schema.parse_properties`` rejects,
  and otherwise the properties it synthesizes parse to the same values.

hypothesis-jsonschema 0.23.1 draws leaves only: its object strategy calls
``many.more()``, which hypothesis 6.170 no longer has, so objects and arrays
are drawn here by walking the schema, and ``from_schema`` draws their scalar
members.

Where ours is stricter than the registry schema (each an explicit test below):

* ``Document`` xor ``DocumentSource``, unless ``JobTemplateArn`` is set (CreateJob
  requires it; the registry lets both or neither through);
* ``DocumentParameters`` only with an AWS managed template's ARN
  (``arn:<partition>:iot:<region>::jobtemplate/AWS-...``), as CreateJob requires;
* limits of the CreateJob shapes the registry lacks: 1 to 100 ``Targets``, each
  a thing or thing-group ARN; ``Document`` must be JSON; ``DocumentParameters``
  keys of at most 128 characters and values without control characters;
  ``PresignedUrlConfig.RoleArn`` an ARN; ``RateIncreaseCriteria`` with at least
  one threshold; ``IncrementFactor`` with one decimal and ``ThresholdPercentage``
  with two (and not negative); ``TimeoutConfig.InProgressTimeoutInMinutes`` 1 to
  10080; integers 32-bit; schedule times ``YYYY-MM-DDTHH:MM`` that exist, at
  least 30 minutes apart (30 minutes to a year ahead is checked apart from the
  property set, by ``schema.schedule_problems``: the provider enforces it on
  Create, synth only warns);
* no IAM wildcard (``*`` or ``?``) in ``DocumentSource``,
  ``PresignedUrlConfig.RoleArn`` or the URL of a presigned-URL placeholder in
  ``Document``: each becomes an IAM policy resource;
* ``Tags``: at most 45 (IoT's 50 less the provider's five ownership tags),
  unique by key (the registry only rejects identical tags), no ``aws:`` and no
  ``cdk-iot-job:`` key prefix;
* messages never quote a value under ``Tags``, ``Document`` or
  ``DocumentParameters``: they may be secrets;
* patterns match whole values: the registry's ``^...$`` lets a trailing newline
  through (``$`` matches before it), ours does not;
* the Unicode database: ours uses Python's ``unicodedata`` (14.0 on Python
  3.11), the ``regex`` module a newer one, so a character assigned since counts
  as unassigned (a control character) here.

Where ours is looser, or adds to it:

* ``JobId`` is optional: the provider generates one (``<stack>-<logical id>-<hash>``,
  valid for the registry's pattern), as CloudFormation generates names;
* a number may arrive as its string (``"50"``): CloudFormation sends every
  scalar of a custom resource as a string;
* ``NamespaceId`` (CreateJob's ``namespaceId``) and ``DeleteBehavior`` (what the
  provider does on Delete) are not registry properties;
* create-only properties are the registry's plus ``NamespaceId``.
"""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import copy
import dataclasses
import itertools
import json
import re
import types
import typing
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import figures
import pytest
import regex
from depth import examples
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from jsonschema import Draft7Validator, ValidationError, validators
from test_fuzz_events import (
    ACCOUNT,
    DOCUMENT_SOURCES,
    MANAGED_TEMPLATE_ARNS,
    breakages,
    junk_properties,
    near_valid_properties,
    valid_properties,
    valid_value,
)

from cdk_iot_job_local.events import stringify
from cdk_iot_job_provider import schema
from cdk_iot_job_provider.ownership import Owner, generated_job_id

REGISTRY_SCHEMA_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "aws-iot-job.registry-schema.json"
# The reference notes' original, next to the repository (absent in a fresh clone).
REFERENCE_SCHEMA_PATH = Path(__file__).resolve().parents[3] / "shared" / "reference" / REGISTRY_SCHEMA_PATH.name

REGISTRY: dict[str, Any] = json.loads(REGISTRY_SCHEMA_PATH.read_text())
READ_ONLY = {pointer.rsplit("/", 1)[-1] for pointer in REGISTRY["readOnlyProperties"]}
REGISTRY_PROPERTIES = [name for name in REGISTRY["properties"] if name not in READ_ONLY]
# Ours, beyond the registry's.
OUR_ADDITIONS = frozenset({"NamespaceId", "DeleteBehavior", "RolloutGate"})
SHARED_PROPERTIES = [name for name in REGISTRY_PROPERTIES if name in schema.PROPERTIES]
THING_ARN = f"arn:aws:iot:us-east-1:{ACCOUNT}:thing/sensor-001"
# The smallest valid set: explicit cases change one thing in it.
BASE = {"JobId": "firmware-2_4_1", "Targets": [THING_ARN], "Document": '{"operation":"reboot"}'}
NO_DOCUMENT = {name: value for name, value in BASE.items() if name != "Document"}
# A letter the regex module knows and Python's unicodedata does not yet, if any.
NEWER_CHARACTER = next(
    (
        char
        for char in map(chr, range(0x80, 0x30000))
        if unicodedata.category(char) == "Cn" and regex.match(r"\p{L}", char) is not None
    ),
    "",
)

CONFORMANCE_SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


# ---------------------------------------------------------------------------
# The registry schema as a validator
# ---------------------------------------------------------------------------


def _unicode_pattern(validator: Any, pattern: str, instance: Any, _schema: dict[str, Any]) -> Iterator[ValidationError]:
    # A search, as jsonschema's own pattern keyword does, but with Unicode property classes.
    if validator.is_type(instance, "string") and regex.search(pattern, instance) is None:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


RegistryValidator = validators.extend(Draft7Validator, {"pattern": _unicode_pattern})


def _with_definitions(node: dict[str, Any]) -> dict[str, Any]:
    return {**node, "definitions": REGISTRY["definitions"]}


RESOURCE_VALIDATOR = RegistryValidator(
    _with_definitions(
        {
            "type": "object",
            "properties": {name: REGISTRY["properties"][name] for name in REGISTRY_PROPERTIES},
            "required": REGISTRY["required"],
            "additionalProperties": False,
        }
    )
)
PROPERTY_VALIDATORS = {
    name: RegistryValidator(_with_definitions(REGISTRY["properties"][name])) for name in SHARED_PROPERTIES
}


def registry_accepts(name: str, value: Any) -> bool:
    """Whether the registry schema accepts ``value`` for the property ``name``."""
    return bool(PROPERTY_VALIDATORS[name].is_valid(value))


def ours(name: str, value: Any) -> schema.InvalidPropertyError | None:
    """Our verdict on one property: ``None`` when accepted, else the rejection."""
    try:
        schema.check(name, value)
    except schema.InvalidPropertyError as error:
        return error
    return None


def ours_on_set(properties: Any) -> schema.InvalidPropertyError | None:
    """Our verdict on a whole property set."""
    try:
        schema.parse_properties(properties)
    except schema.InvalidPropertyError as error:
        return error
    return None


# ---------------------------------------------------------------------------
# Drawing values from the registry schema
# ---------------------------------------------------------------------------

# Python's re has no Unicode classes: close equivalents, for drawing only (the
# validator above applies the registry's own patterns).
_DRAWABLE_PATTERNS = {
    r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$": r"^[\w .:/=+\-@\u00a0\u2000-\u200a\u3000]*\Z",
    r"^[^\p{C}]+$": r"^[^\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202e\ufeff]+\Z",
}
_NOT_DRAWN = {"description", "insertionOrder", "format"}


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        return _resolve(REGISTRY["definitions"][node["$ref"].rsplit("/", 1)[-1]])
    return node


def _drawable_leaf(node: dict[str, Any]) -> dict[str, Any]:
    leaf = {key: value for key, value in node.items() if key not in _NOT_DRAWN}
    if "pattern" in leaf:
        # Anchored at the very end: a trailing newline is a documented difference, tested on its own.
        leaf["pattern"] = _DRAWABLE_PATTERNS.get(leaf["pattern"], re.sub(r"\$$", r"\\Z", leaf["pattern"]))
    return leaf


def registry_values(node: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values the registry schema ``node`` describes.

    Objects and arrays are built here, scalars by hypothesis-jsonschema.
    """
    node = _resolve(node)
    kind = node.get("type")
    if kind == "object" and "patternProperties" in node:
        ((key_pattern, value_node),) = node["patternProperties"].items()
        key = st.from_regex(re.sub(r"\$$", r"\\Z", key_pattern))
        return st.dictionaries(key, registry_values(value_node), max_size=3)
    if kind == "object":
        members = {name: registry_values(child) for name, child in node.get("properties", {}).items()}
        required = node.get("required", [])
        return st.fixed_dictionaries(
            {name: members[name] for name in required},
            optional={name: member for name, member in members.items() if name not in required},
        )
    if kind == "array":
        low = node.get("minItems", 0)
        unique = (lambda item: json.dumps(item, sort_keys=True)) if node.get("uniqueItems") else None
        return st.lists(
            registry_values(node["items"]),
            min_size=low,
            max_size=min(node.get("maxItems", low + 3), low + 3),
            unique_by=unique,
        )
    return from_schema(_drawable_leaf(node))


# ---------------------------------------------------------------------------
# Breaking one value of a registry-valid value
# ---------------------------------------------------------------------------

_OFF_PATTERN = ("bad value!", "has space", "arn:with space", "line\nbreak\n", "bell\x07", "")


def _registry_breaks(node: dict[str, Any], value: Any) -> Iterator[Any]:
    """Values for one position that break a rule the registry states there."""
    node = _resolve(node)
    kind = node.get("type")
    if kind != "array":
        yield [value]
    if kind != "object":
        yield {"Value": value}
    if "enum" in node:
        yield "NOT_AN_OPTION"
    if kind == "string":
        if "maxLength" in node:
            yield "x" * (node["maxLength"] + 1)
        if node.get("minLength", 0) > 0:
            yield ""
        if "pattern" in node:
            yield from (text for text in _OFF_PATTERN if regex.search(node["pattern"], text) is None)
    if kind in ("integer", "number"):
        yield "fifty"
        if "minimum" in node:
            yield node["minimum"] - 1
        if "maximum" in node:
            yield node["maximum"] + 1
        if kind == "integer":
            yield value + 0.5
    if kind == "array":
        yield "not-a-list"
        if node.get("minItems", 0) > 0:
            yield value[: node["minItems"] - 1]
        if "maxItems" in node and value:
            yield [copy.deepcopy(value[0]) for _ in range(node["maxItems"] + 1)]
        if node.get("uniqueItems") and value:
            yield [*value, copy.deepcopy(value[0])]
    if kind == "object" and "patternProperties" in node:
        yield {**value, "bad key!": "v"}
    elif kind == "object":
        yield {**value, "Colour": "blue"}
        for name in node.get("required", []):
            yield {key: item for key, item in value.items() if key != name}


def _positions(
    node: dict[str, Any], value: Any, location: tuple[Any, ...]
) -> Iterator[tuple[dict[str, Any], Any, tuple[Any, ...]]]:
    node = _resolve(node)
    yield node, value, location
    if node.get("type") == "array" and isinstance(value, list):
        for index, item in enumerate(value):
            yield from _positions(node["items"], item, (*location, index))
    elif node.get("type") == "object" and isinstance(value, dict):
        children = node.get("properties", {})
        pattern_children = list(node.get("patternProperties", {}).values())
        for key, item in value.items():
            child = children.get(key) or (pattern_children[0] if pattern_children else None)
            if child is not None:
                yield from _positions(child, item, (*location, key))


def _replaced(value: Any, location: tuple[Any, ...], replacement: Any) -> Any:
    if not location:
        return replacement
    changed = copy.deepcopy(value)
    parent = changed
    for step in location[:-1]:
        parent = parent[step]
    parent[location[-1]] = replacement
    return changed


@st.composite
def registry_broken_values(draw: st.DrawFn, name: str) -> Any:
    """A registry-valid value of property ``name`` with one position broken."""
    node = REGISTRY["properties"][name]
    value = draw(registry_values(node))
    candidates = [
        _replaced(value, location, broken)
        for position, item, location in _positions(node, value, ())
        for broken in _registry_breaks(position, item)
    ]
    return draw(st.sampled_from(candidates))


# ---------------------------------------------------------------------------
# The documented stricter rules
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Stricter:
    """A rule by which ours rejects what the registry schema accepts."""

    name: str
    message: str = ""
    applies: Callable[[str, Any], bool] | None = None

    def explains(self, rejection: str, candidate: Any) -> bool:
        if self.applies is not None:
            return self.applies(rejection, candidate)
        return re.search(self.message, rejection) is not None


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _newer_unicode(_rejection: str, candidate: Any) -> bool:
    # Assigned in the regex module's Unicode, unassigned (a "control" category) in Python's.
    return any(
        unicodedata.category(char) == "Cn" and regex.match(r"\p{Cn}", char) is None
        for text in _strings(candidate)
        for char in text
    )


def _trailing_newline(rejection: str, candidate: Any) -> bool:
    return re.search(r"must match|control characters", rejection) is not None and any(
        text.endswith("\n") and "\n" not in text[:-1] for text in _strings(candidate)
    )


STRICTER = (
    Stricter("document xor document source", r"Document and DocumentSource are mutually exclusive|one of Document or"),
    Stricter("parameters need a managed template", r"DocumentParameters requires JobTemplateArn|AWS managed template"),
    Stricter("document is JSON", r"^Document must be valid JSON"),
    Stricter("targets are thing or thing-group ARNs", r"^Targets\[\d+\] .*must (match|be at least 1)"),
    Stricter("at most 100 targets", r"^Targets must have at most 100 item"),
    Stricter("parameter keys of 128 characters", r"^DocumentParameters key .*must be at most 128"),
    Stricter("parameter values without control characters", r"^DocumentParameters\.\S+ .*control characters"),
    Stricter("role is an ARN", r"^PresignedUrlConfig\.RoleArn .*must match arn:"),
    Stricter(
        "no IAM wildcards", re.escape(schema.IAM_WILDCARD_RULE) + "|" + re.escape(schema.PLACEHOLDER_WILDCARD_RULE)
    ),
    Stricter("a rate increase threshold", r"RateIncreaseCriteria must set at least one of"),
    Stricter("decimals", r"(IncrementFactor|ThresholdPercentage) .*digit\(s\) after the decimal point"),
    Stricter("threshold not negative", r"ThresholdPercentage .*must be at least 0"),
    Stricter(
        "timeout 1 to 10080 minutes", r"^TimeoutConfig\.InProgressTimeoutInMinutes .*must be at (least 1|most 10080)"
    ),
    Stricter("32-bit integers", r"must be at most 2147483647"),
    Stricter("schedule times", r"^SchedulingConfig\.(StartTime|EndTime) .*must (match|be a real date)"),
    Stricter("schedule of 30 minutes", r"must be at least 30 minutes after StartTime"),
    Stricter("at most 45 tags", rf"^Tags must have at most {schema.MAX_USER_TAGS} item"),
    Stricter("tag keys unique", r"^Tags\[\d+\]\.Key .*is a duplicate"),
    Stricter(
        "reserved tag prefixes", r"^Tags\[\d+\]\.Key .*(reserved prefix 'aws:'|must not start with 'cdk-iot-job:')"
    ),
    Stricter("whole-value patterns", applies=_trailing_newline),
    Stricter("Unicode database", applies=_newer_unicode),
)


def documented_rule(rejection: schema.InvalidPropertyError, candidate: Any) -> str | None:
    """The documented rule that explains ``rejection`` of a registry-valid ``candidate``."""
    return next((rule.name for rule in STRICTER if rule.explains(str(rejection), candidate)), None)


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------


@dataclass
class Tally:
    """Examples of one conformance property."""

    examples: int = 0
    accepted: int = 0
    rejected: int = 0
    disagreements: int = 0

    def count(self, accepted: bool) -> None:
        self.examples += 1
        self.accepted += accepted
        self.rejected += not accepted


TALLIES: dict[str, Tally] = {}


def tally(name: str) -> Tally:
    return TALLIES.setdefault(name, Tally())


@pytest.fixture(scope="module", autouse=True)
def record_figures() -> Iterator[None]:
    yield
    for name, seen in TALLIES.items():
        figures.record(
            "Schema conformance",
            property=name,
            examples=seen.examples,
            accepted=seen.accepted,
            rejected=seen.rejected,
            disagreements=seen.disagreements,
        )


def disagree(name: str, message: str) -> None:
    tally(name).disagreements += 1
    pytest.fail(message)


# ---------------------------------------------------------------------------
# The registry schema itself
# ---------------------------------------------------------------------------


def test_the_registry_schema_copy_is_the_reference_one() -> None:
    if not REFERENCE_SCHEMA_PATH.is_file():
        pytest.skip(f"no reference copy at {REFERENCE_SCHEMA_PATH} (a fresh clone)")
    assert json.loads(REFERENCE_SCHEMA_PATH.read_text()) == REGISTRY


def test_our_properties_are_the_registrys_writable_ones_plus_namespace_id_and_delete_behavior() -> None:
    assert set(schema.PROPERTIES) == set(REGISTRY_PROPERTIES) | OUR_ADDITIONS
    assert not OUR_ADDITIONS & set(REGISTRY["properties"])


def test_create_only_properties_are_the_registrys_plus_namespace_id() -> None:
    registry_create_only = {pointer.rsplit("/", 1)[-1] for pointer in REGISTRY["createOnlyProperties"]}
    assert registry_create_only | {"NamespaceId"} == schema.CREATE_ONLY_PROPERTIES


def test_updatable_properties_are_the_registrys_others() -> None:
    others = set(REGISTRY_PROPERTIES) - {p.rsplit("/", 1)[-1] for p in REGISTRY["createOnlyProperties"]}
    assert set(schema.UPDATABLE_PROPERTIES) == others | {"DeleteBehavior", "RolloutGate"}


# ---------------------------------------------------------------------------
# Ours accepts => the registry accepts
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", SHARED_PROPERTIES)
@settings(CONFORMANCE_SETTINGS, max_examples=examples(40))
@given(data=st.data())
def test_a_value_ours_accepts_the_registry_accepts(name: str, data: st.DataObject) -> None:
    candidates = st.one_of(valid_value(schema.PROPERTIES[name], name), registry_values(REGISTRY["properties"][name]))
    value = data.draw(candidates)
    rejection = ours(name, value)
    tally("ours accepts => registry accepts").count(rejection is None)
    if rejection is None and not registry_accepts(name, value):
        disagree("ours accepts => registry accepts", f"{name}: ours accepts {value!r}, the registry does not")
    if rejection is None:
        # As CloudFormation delivers it: every scalar a string, parsed to the same value.
        assert schema.check(name, stringify(value)) == schema.check(name, value)


@settings(CONFORMANCE_SETTINGS, max_examples=examples(150))
@given(properties=valid_properties(gated=True))
def test_a_valid_set_of_ours_is_valid_for_the_registry_once_the_provider_names_the_job(
    properties: dict[str, Any],
) -> None:
    assert ours_on_set(properties) is None
    as_registry = {name: value for name, value in properties.items() if name not in OUR_ADDITIONS}
    as_registry.setdefault("JobId", generated_job_id(Owner("arn:aws:cloudformation:x:1:stack/S/1", "Job", "r")))
    errors = [error.message for error in RESOURCE_VALIDATOR.iter_errors(as_registry)]
    tally("valid set of ours => registry accepts").count(not errors)
    if errors:
        disagree("valid set of ours => registry accepts", f"the registry rejects {properties!r}: {errors}")


# ---------------------------------------------------------------------------
# The registry rejects => ours rejects
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", SHARED_PROPERTIES)
@settings(CONFORMANCE_SETTINGS, max_examples=examples(40))
@given(data=st.data())
def test_a_value_the_registry_rejects_ours_rejects(name: str, data: st.DataObject) -> None:
    value = data.draw(registry_broken_values(name))
    registry_rejects = not registry_accepts(name, value)
    assume(registry_rejects)
    rejection = ours(name, value)
    tally("registry rejects => ours rejects").count(rejection is None)
    if rejection is None:
        disagree("registry rejects => ours rejects", f"{name}: the registry rejects {value!r}, ours accepts it")


# ---------------------------------------------------------------------------
# The registry accepts, ours rejects => a documented rule says why
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", SHARED_PROPERTIES)
@settings(CONFORMANCE_SETTINGS, max_examples=examples(40))
@given(data=st.data())
def test_a_registry_valid_value_ours_rejects_breaks_a_documented_rule(name: str, data: st.DataObject) -> None:
    value = data.draw(registry_values(REGISTRY["properties"][name]))
    # Drawing approximates the registry's Unicode classes; its validator has the last word.
    assume(registry_accepts(name, value))
    rejection = ours(name, value)
    tally("registry accepts, ours rejects => documented rule").count(rejection is None)
    if rejection is not None and documented_rule(rejection, value) is None:
        disagree(
            "registry accepts, ours rejects => documented rule",
            f"{name}: ours rejects the registry-valid {value!r} by no documented rule: {rejection}",
        )


_REGISTRY_SETS = registry_values(
    {
        "type": "object",
        "properties": {name: REGISTRY["properties"][name] for name in REGISTRY_PROPERTIES},
        "required": REGISTRY["required"],
    }
)


@st.composite
def registry_sets(draw: st.DrawFn) -> dict[str, Any]:
    """Registry-valid property sets.

    Half of the time their targets are thing ARNs and their document JSON, so
    that the rules ours checks after those are reached too.
    """
    properties: dict[str, Any] = draw(_REGISTRY_SETS)
    if draw(st.booleans()):
        properties["Targets"] = [f"{THING_ARN}-{index}" for index, _ in enumerate(properties["Targets"][:100])]
        if "Document" in properties:
            properties["Document"] = json.dumps(properties["Document"])
    return properties


@settings(CONFORMANCE_SETTINGS, max_examples=examples(150))
@given(properties=registry_sets())
def test_a_registry_valid_set_ours_rejects_breaks_a_documented_rule(properties: dict[str, Any]) -> None:
    assume(RESOURCE_VALIDATOR.is_valid(properties))
    rejection = ours_on_set(properties)
    tally("registry accepts set, ours rejects => documented rule").count(rejection is None)
    if rejection is not None and documented_rule(rejection, properties) is None:
        disagree(
            "registry accepts set, ours rejects => documented rule",
            f"ours rejects the registry-valid {properties!r} by no documented rule: {rejection}",
        )


# ---------------------------------------------------------------------------
# Our own rejections: the one failure type, naming the value
# ---------------------------------------------------------------------------


@settings(CONFORMANCE_SETTINGS, max_examples=examples(40))
@given(properties=valid_properties(gated=True))
def test_every_single_breakage_of_a_valid_set_is_rejected_naming_its_path(properties: dict[str, Any]) -> None:
    for broken in breakages(properties):
        for delivered in (broken.properties, stringify(broken.properties)):
            rejection = ours_on_set(delivered)
            tally("one value broken => rejected naming it").count(rejection is None)
            if rejection is None or broken.path not in str(rejection):
                disagree(
                    "one value broken => rejected naming it",
                    f"{broken.how} at {broken.path}: {rejection!r} for {delivered!r}",
                )


@settings(CONFORMANCE_SETTINGS, max_examples=examples(150))
@given(
    properties=st.one_of(
        junk_properties(), _REGISTRY_SETS, near_valid_properties(gated=True).map(lambda b: b.properties)
    )
)
# Each once escaped as ValueError or RecursionError, or hung converting a
# million-digit int: a time that does not exist, an integer without a bound,
# valid JSON nested deeper than Python's parser goes.
@example(properties={**BASE, "SchedulingConfig": {"EndTime": "2030-02-30T10:00"}})
@example(properties={**BASE, "AbortConfig": {"CriteriaList": [{"MinNumberOfExecutedThings": "1e999999"}]}})
@example(properties={**BASE, "Document": "[" * 5000 + "]" * 5000})
def test_the_validator_fails_only_with_invalid_property_error(properties: Any) -> None:
    # Anything else would reach CloudFormation as a reason that names no property,
    # and would fail the Delete that rolls back a failed Create.
    try:
        schema.parse_properties(properties)
    except schema.InvalidPropertyError as error:
        assert str(error)


# ---------------------------------------------------------------------------
# The documented differences, one by one
# ---------------------------------------------------------------------------


def registry_set_verdict(properties: dict[str, Any]) -> bool:
    return bool(RESOURCE_VALIDATOR.is_valid(properties))


STRICTER_CASES = [
    pytest.param({**BASE, "DocumentSource": DOCUMENT_SOURCES[0]}, "mutually exclusive", id="document-and-source"),
    pytest.param({"JobId": "j", "Targets": [THING_ARN]}, "one of Document or DocumentSource", id="no-document"),
    pytest.param({**BASE, "DocumentParameters": {"command": "reboot"}}, "requires JobTemplateArn", id="parameters"),
    pytest.param(
        {
            "JobId": "j",
            "Targets": [THING_ARN],
            "JobTemplateArn": f"arn:aws:iot:us-east-1:{ACCOUNT}:jobtemplate/mine",
            "DocumentParameters": {"command": "reboot"},
        },
        "must be an AWS managed template ARN",
        id="parameters-with-customer-template",
    ),
    pytest.param({**BASE, "Targets": ["sensor-001"]}, "Targets[0] 'sensor-001' must match", id="target-not-arn"),
    pytest.param({**BASE, "Targets": [THING_ARN] * 101}, "Targets must have at most 100", id="101-targets"),
    pytest.param({**BASE, "Document": "reboot"}, "Document must be valid JSON", id="document-not-json"),
    pytest.param(
        {**NO_DOCUMENT, "JobTemplateArn": MANAGED_TEMPLATE_ARNS[0], "DocumentParameters": {"k" * 129: "v"}},
        "DocumentParameters key",
        id="parameter-key-over-128",
    ),
    pytest.param(
        {**NO_DOCUMENT, "JobTemplateArn": MANAGED_TEMPLATE_ARNS[0], "DocumentParameters": {"k": "a\x07"}},
        "DocumentParameters.k must not contain control characters",
        id="parameter-value-control-character",
    ),
    pytest.param(
        {**NO_DOCUMENT, "DocumentSource": "https://s3.amazonaws.com/bucket/jobs/*.json"},
        "DocumentSource 'https://s3.amazonaws.com/bucket/jobs/*.json' must not contain '*' or '?'",
        id="document-source-wildcard",
    ),
    pytest.param(
        {**BASE, "PresignedUrlConfig": {"RoleArn": f"arn:aws:iam::{ACCOUNT}:role/firmware-*"}},
        "must not contain '*' or '?'",
        id="role-wildcard",
    ),
    pytest.param(
        {**BASE, "Document": '{"url":"${aws:iot:s3-presigned-url:https://s3.amazonaws.com/bucket/?.bin}"}'},
        "Document must not contain a presigned-URL placeholder whose URL has '*' or '?'",
        id="placeholder-wildcard",
    ),
    pytest.param(
        {**BASE, "PresignedUrlConfig": {"RoleArn": "role/firmware-download"}},
        "PresignedUrlConfig.RoleArn 'role/firmware-download' must match arn:",
        id="role-not-arn",
    ),
    pytest.param(
        {
            **BASE,
            "JobExecutionsRolloutConfig": {
                "ExponentialRate": {"BaseRatePerMinute": 5, "IncrementFactor": 2, "RateIncreaseCriteria": {}}
            },
        },
        "RateIncreaseCriteria must set at least one of",
        id="rate-increase-without-threshold",
    ),
    pytest.param(
        {
            **BASE,
            "JobExecutionsRolloutConfig": {
                "ExponentialRate": {
                    "BaseRatePerMinute": 5,
                    "IncrementFactor": 1.55,
                    "RateIncreaseCriteria": {"NumberOfSucceededThings": 1},
                }
            },
        },
        "IncrementFactor 1.55 must have at most 1 digit(s)",
        id="increment-factor-two-decimals",
    ),
    pytest.param(
        {
            **BASE,
            "AbortConfig": {
                "CriteriaList": [
                    {
                        "FailureType": "ALL",
                        "Action": "CANCEL",
                        "ThresholdPercentage": -1,
                        "MinNumberOfExecutedThings": 1,
                    }
                ]
            },
        },
        "ThresholdPercentage -1 must be at least 0",
        id="negative-threshold",
    ),
    pytest.param(
        {**BASE, "TimeoutConfig": {"InProgressTimeoutInMinutes": 10081}},
        "InProgressTimeoutInMinutes 10081 must be at most 10080",
        id="timeout-over-a-week",
    ),
    pytest.param(
        {**BASE, "JobExecutionsRolloutConfig": {"MaximumPerMinute": 2**31}},
        "MaximumPerMinute 2147483648 must be at most 2147483647",
        id="integer-over-32-bits",
    ),
    pytest.param(
        {**BASE, "SchedulingConfig": {"StartTime": "next tuesday"}},
        "SchedulingConfig.StartTime 'next tuesday' must match",
        id="schedule-time-format",
    ),
    pytest.param(
        {**BASE, "SchedulingConfig": {"StartTime": "2030-02-30T10:00"}},
        "SchedulingConfig.StartTime '2030-02-30T10:00' must be a real date and time",
        id="schedule-time-that-does-not-exist",
    ),
    pytest.param(
        {**BASE, "SchedulingConfig": {"StartTime": "2030-01-01T10:00", "EndTime": "2030-01-01T10:29"}},
        "must be at least 30 minutes after StartTime",
        id="schedule-under-30-minutes",
    ),
    pytest.param(
        {**BASE, "Tags": [{"Key": f"k{index}", "Value": ""} for index in range(46)]},
        "Tags must have at most 45",
        id="46-tags",
    ),
    pytest.param(
        {**BASE, "Tags": [{"Key": "team", "Value": "a"}, {"Key": "team", "Value": "b"}]},
        "Tags[1].Key 'team' is a duplicate",
        id="duplicate-tag-key",
    ),
    pytest.param({**BASE, "Tags": [{"Key": "aws:x", "Value": ""}]}, "reserved prefix 'aws:'", id="aws-tag-prefix"),
    pytest.param(
        {**BASE, "Tags": [{"Key": "cdk-iot-job:x", "Value": ""}]},
        "must not start with 'cdk-iot-job:'",
        id="ownership-tag-prefix",
    ),
    pytest.param({**BASE, "JobId": "firmware\n"}, "JobId 'firmware\\n' must match", id="job-id-trailing-newline"),
    pytest.param(
        {**BASE, "Description": "firmware\n"}, "must not contain control characters", id="description-trailing-newline"
    ),
    pytest.param(
        {**BASE, "Description": f"firmware {NEWER_CHARACTER}"},
        "must not contain control characters",
        id="character-newer-than-python-unicode",
        marks=pytest.mark.skipif(NEWER_CHARACTER == "", reason="Python's Unicode is as new as regex's"),
    ),
]


def test_every_documented_rule_has_an_example() -> None:
    explained = {
        documented_rule(rejection, case.values[0])
        for case in STRICTER_CASES
        if (rejection := ours_on_set(case.values[0])) is not None
    }
    unexercised = {"Unicode database"} if not NEWER_CHARACTER else set()
    assert explained == {rule.name for rule in STRICTER} - unexercised


@pytest.mark.parametrize(("properties", "message"), STRICTER_CASES)
def test_ours_is_stricter_than_the_registry_where_the_api_is(properties: dict[str, Any], message: str) -> None:
    assert registry_set_verdict(properties), list(RESOURCE_VALIDATOR.iter_errors(properties))
    rejection = ours_on_set(properties)
    assert rejection is not None and message in str(rejection), rejection
    assert documented_rule(rejection, properties) is not None


def test_a_schedule_in_the_past_is_a_valid_property_set_that_only_a_create_refuses() -> None:
    # A rollback or a later Update of a job whose start has passed must stay valid;
    # only creating a job (the provider's Create) checks the schedule against now.
    now = datetime.now(UTC)
    past = (now - timedelta(days=1)).strftime(schema.SCHEDULE_TIME_FORMAT)
    properties = {**BASE, "SchedulingConfig": {"StartTime": past}}
    assert registry_set_verdict(properties)
    assert ours_on_set(properties) is None
    problems = schema.schedule_problems(schema.parse_properties(properties), now)
    assert problems == [
        f"SchedulingConfig.StartTime '{past}' must be at least 30 minutes from now (UTC) when the job is created"
    ]
    ahead = (now + timedelta(hours=2)).strftime(schema.SCHEDULE_TIME_FORMAT)
    assert (
        schema.schedule_problems(schema.parse_properties({**BASE, "SchedulingConfig": {"StartTime": ahead}}), now) == []
    )


@pytest.mark.parametrize(
    "properties",
    [
        pytest.param({**BASE, "Tags": [{"Key": "api-key", "Value": "SECRET-VALUE" * 30}]}, id="tag-value-too-long"),
        pytest.param({**BASE, "Tags": {"api-key": "SECRET-VALUE"}}, id="tags-as-a-map"),
        pytest.param({**BASE, "Tags": ["api-key=SECRET-VALUE"]}, id="tags-as-strings"),
        pytest.param({**BASE, "Document": "SECRET-VALUE is not JSON"}, id="document"),
        pytest.param(
            {
                **NO_DOCUMENT,
                "JobTemplateArn": MANAGED_TEMPLATE_ARNS[0],
                "DocumentParameters": {"k": "SECRET-VALUE\x07"},
            },
            id="parameter-value",
        ),
        pytest.param(
            {**NO_DOCUMENT, "JobTemplateArn": MANAGED_TEMPLATE_ARNS[0], "DocumentParameters": ["SECRET-VALUE"]},
            id="parameters-as-a-list",
        ),
    ],
)
def test_a_rejection_never_quotes_a_value_that_may_be_a_secret(properties: dict[str, Any]) -> None:
    rejection = ours_on_set(properties)

    assert rejection is not None
    assert "SECRET-VALUE" not in str(rejection)


def test_job_id_is_optional_and_the_generated_one_is_valid_for_the_registry() -> None:
    without_id = {name: value for name, value in BASE.items() if name != "JobId"}
    assert ours_on_set(without_id) is None
    assert not registry_set_verdict(without_id)
    owner = Owner(f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/{'S' * 128}/5b8f2a40", "L" * 255, "request")
    assert registry_set_verdict({**without_id, "JobId": generated_job_id(owner)})


def test_numbers_may_arrive_as_strings_as_cloudformation_sends_them() -> None:
    typed = {**BASE, "TimeoutConfig": {"InProgressTimeoutInMinutes": 60}}
    as_sent = {**BASE, "TimeoutConfig": {"InProgressTimeoutInMinutes": "60"}}
    assert registry_set_verdict(typed) and not registry_set_verdict(as_sent)
    assert schema.parse_properties(as_sent) == schema.parse_properties(typed)


@pytest.mark.parametrize("addition", [{"NamespaceId": "fleet"}, {"DeleteBehavior": "CANCEL"}])
def test_namespace_id_and_delete_behavior_are_ours_only(addition: dict[str, str]) -> None:
    assert ours_on_set({**BASE, **addition}) is None
    assert not registry_set_verdict({**BASE, **addition})


# ---------------------------------------------------------------------------
# Synth time and deploy time agree on every literal
# ---------------------------------------------------------------------------


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _members(hint: Any) -> tuple[Any, ...]:
    return typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)


def _dataclass_in(hint: Any) -> type | None:
    return next((c for c in _members(hint) if dataclasses.is_dataclass(c) and isinstance(c, type)), None)


def _list_item_dataclass(hint: Any) -> type | None:
    lists = [member for member in _members(hint) if typing.get_origin(member) is list]
    return _dataclass_in(typing.get_args(lists[0])[0]) if lists else None


def as_config(cls: type, value: Any) -> Any:
    """``value`` as the construct's typed config ``cls``, when that class can hold it.

    An unknown key, a missing required field, a field whose default would fill
    the gap, or a value that is no mapping cannot be held: those go to the
    construct as they are (a plain mapping renders unchanged), as an untyped
    caller would pass them, so the schema still sees exactly the broken value.
    """
    if not isinstance(value, dict):
        return value
    fields = {item.name: item for item in dataclasses.fields(cls)}
    given = {_snake(key): item for key, item in value.items()}
    missing = [item for name, item in fields.items() if name not in given]
    if not set(given) <= set(fields) or any(item.default is not None for item in missing):
        return value
    hints = typing.get_type_hints(cls)
    converted: dict[str, Any] = {}
    for name, item in given.items():
        nested, listed = _dataclass_in(hints[name]), _list_item_dataclass(hints[name])
        if nested is not None and isinstance(item, dict):
            item = as_config(nested, item)
        elif listed is not None and isinstance(item, list):
            item = [as_config(listed, entry) for entry in item]
        converted[name] = item
    return cls(**converted)


def construct_kwargs(properties: dict[str, Any]) -> dict[str, Any] | None:
    """``IotJob`` keyword arguments for PascalCase properties; ``None`` when the API cannot say them.

    ``Tags`` is a mapping in the construct, so a tag list with a repeated key
    or another shape has no equivalent; a mapping ``Document`` means an object
    the construct renders as JSON, no longer the broken value.
    """
    import cdk_iot_job

    kwargs: dict[str, Any] = {}
    for name, value in properties.items():
        if name == "Tags":
            if not isinstance(value, list) or not all(
                isinstance(tag, dict) and set(tag) == {"Key", "Value"} and isinstance(tag["Key"], str) for tag in value
            ):
                return None
            as_mapping = {tag["Key"]: tag["Value"] for tag in value}
            if len(as_mapping) != len(value):
                return None
            kwargs["tags"] = as_mapping
        elif name == "Document" and isinstance(value, dict):
            return None
        elif name == "JobTemplateArn" and isinstance(value, str):
            # The managed-template catalog is a construct-only check; from_arn is its
            # documented way around, so both sides apply the schema's rules alone.
            kwargs["job_template"] = cdk_iot_job.JobTemplate.from_arn(value)
        elif isinstance(getattr(cdk_iot_job, name, None), type):
            kwargs[_snake(name)] = as_config(getattr(cdk_iot_job, name), value)
        else:
            kwargs[_snake(name)] = value
    return kwargs


def comparable(parsed: dict[str, Any]) -> dict[str, Any]:
    """Parsed properties with what the construct renders differently but means alike made equal.

    Tags are sorted by key and left out when empty; ``DeleteBehavior`` DELETE
    is the default, which the construct leaves out.
    """
    result = dict(parsed)
    tags = sorted(result.pop("Tags", []), key=lambda tag: tag["Key"])
    if tags:
        result["Tags"] = tags
    if result.get("DeleteBehavior") == "DELETE":
        del result["DeleteBehavior"]
    return result


@dataclass
class SynthStack:
    """One App and Stack for the module's generated jobs (jsii calls are slow)."""

    app: Any
    stack: Any
    jobs: dict[str, Any] = dataclasses.field(default_factory=dict)
    ids: Iterator[int] = dataclasses.field(default_factory=itertools.count)

    def rendered(self, job: Any) -> dict[str, Any]:
        """The job's resource properties as they reach CloudFormation, stringified as it sends them."""
        resource = job.resource.node.default_child
        properties = self.stack.resolve(resource._cfn_properties)
        return {name: value for name, value in stringify(properties).items() if name not in schema.FRAMEWORK_PROPERTIES}


@pytest.fixture(scope="module")
def synth_stack() -> SynthStack:
    from aws_cdk import App, Stack

    app = App()
    return SynthStack(app, Stack(app, "Conformance"))


def _synth_candidates() -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    return st.one_of(
        valid_properties(gated=True).map(lambda properties: ("valid", properties)),
        near_valid_properties(gated=True).map(lambda broken: ("near-valid", broken.properties)),
    )


def test_synth_time_and_deploy_time_validation_agree_on_every_literal(synth_stack: SynthStack) -> None:
    from aws_cdk.assertions import Template

    import cdk_iot_job

    agreement_name = "synth raises <=> deploy rejects; same values"
    agreement = tally(agreement_name)
    expected: dict[str, dict[str, Any]] = {}

    @settings(CONFORMANCE_SETTINGS, max_examples=examples(80))
    @given(candidate=_synth_candidates())
    def each(candidate: tuple[str, dict[str, Any]]) -> None:
        _kind, properties = candidate
        kwargs = construct_kwargs(properties)
        assume(kwargs is not None)
        assert kwargs is not None
        deploy_rejection = ours_on_set(stringify(properties))
        construct_id = f"Job{next(synth_stack.ids)}"
        try:
            job = cdk_iot_job.IotJob(synth_stack.stack, construct_id, **kwargs)
        except Exception as error:  # any exception stops the synth
            agreement.count(False)
            if deploy_rejection is None:
                disagree(agreement_name, f"synth raises {error!r}, the provider accepts {properties!r}")
            return
        agreement.count(True)
        if deploy_rejection is not None:
            disagree(agreement_name, f"synth accepts {properties!r}, the provider rejects it: {deploy_rejection}")
        rendered = job.node.default_child
        synthesized = synth_stack.rendered(job)
        if comparable(schema.parse_properties(synthesized)) != comparable(
            schema.parse_properties(stringify(properties))
        ):
            disagree(agreement_name, f"{properties!r} synthesizes as {synthesized!r}")
        expected[synth_stack.stack.get_logical_id(rendered.node.default_child)] = synthesized

    each()
    # The template itself, synthesized once: what CloudFormation would receive.
    resources = Template.from_stack(synth_stack.stack).find_resources("Custom::IotJob")
    assert expected, "no example built a job"
    for logical_id, synthesized in expected.items():
        in_template = stringify(resources[logical_id]["Properties"])
        in_template = {name: value for name, value in in_template.items() if name not in schema.FRAMEWORK_PROPERTIES}
        assert in_template == synthesized, logical_id
