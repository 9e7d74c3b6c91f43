"""One shape for a job's properties, read from a ``Custom::IotJob`` or an ``AWS::IoT::Job``.

Both resources name their properties as ``AWS::IoT::Job`` does (PascalCase);
``aws_iot.CfnJob`` keeps them camelCase until it renders, so both are read
rendered, then resolved with ``Stack.of(node).resolve``. What stays an
intrinsic (``Ref``, ``Fn::GetAtt``, ...) is unknown at synth: :func:`is_known`
says so, and the rules answer "not applicable" for it rather than guess. Like
cdk-nag's own rules, this reads the construct's properties, not raw overrides
(``add_property_override``).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

from aws_cdk import CfnResource, Stack

from cdk_iot_job_provider import schema

__all__ = [
    "NATIVE_RESOURCE_TYPE",
    "JobProperties",
    "TargetKind",
    "is_known",
    "literal_text",
    "read_job",
    "resource_types_of",
]

NATIVE_RESOURCE_TYPE = "AWS::IoT::Job"
_JOB_TYPES = frozenset({schema.RESOURCE_TYPE, NATIVE_RESOURCE_TYPE})
_TARGET_TYPES = {"AWS::IoT::Thing": "THING", "AWS::IoT::ThingGroup": "THING_GROUP"}


class TargetKind(enum.Enum):
    """What one entry of ``Targets`` is, as far as synth can tell."""

    THING = "THING"
    THING_GROUP = "THING_GROUP"
    UNKNOWN = "UNKNOWN"


def _is_intrinsic(value: Mapping[str, Any]) -> bool:
    return any(key == "Ref" or str(key).startswith("Fn::") for key in value)


def is_known(value: Any) -> bool:
    """Whether a resolved value holds no intrinsic function anywhere."""
    if isinstance(value, Mapping):
        return not _is_intrinsic(value) and all(is_known(item) for item in value.values())
    if isinstance(value, list):
        return all(is_known(item) for item in value)
    return True


def literal_text(value: Any) -> Iterator[str]:
    """The literal strings of a resolved value, also inside ``Fn::Join`` and ``Fn::Sub``.

    What a template shows of a value built from tokens: the parts between them.
    """
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from literal_text(item)
    elif isinstance(value, Mapping):
        if "Fn::Join" in value and isinstance(value["Fn::Join"], list) and len(value["Fn::Join"]) == 2:
            yield from literal_text(value["Fn::Join"][1])
        elif "Fn::Sub" in value:
            sub = value["Fn::Sub"]
            yield from literal_text(sub[0] if isinstance(sub, list) and sub else sub)
        elif is_known(value):
            for item in value.values():
                yield from literal_text(item)


@dataclass(frozen=True)
class JobProperties:
    """A job's resolved properties, PascalCase as ``AWS::IoT::Job`` names them.

    Attributes
    ----------
    resource_type
        ``Custom::IotJob`` or ``AWS::IoT::Job``.
    properties
        The resolved properties; unknown values are intrinsics (see :func:`is_known`).
    targets
        The kind of each target, or ``None`` when ``Targets`` itself is unknown.
    """

    resource_type: str
    properties: Mapping[str, Any]
    targets: tuple[TargetKind, ...] | None

    def get(self, *path: str) -> Any:
        """The value at ``path`` (``"AbortConfig", "CriteriaList"``); ``None`` when absent.

        An intrinsic on the way is returned as it is: the caller sees an unknown value.
        """
        value: Any = self.properties
        for key in path:
            if not isinstance(value, Mapping) or _is_intrinsic(value):
                return value
            value = value.get(key)
        return value

    @property
    def has_thing_group_target(self) -> bool | None:
        """``True`` with a thing group among the targets, ``False`` with none, ``None`` when unknown."""
        if self.targets is None:
            return None
        if TargetKind.THING_GROUP in self.targets:
            return True
        return None if TargetKind.UNKNOWN in self.targets else False

    @property
    def thing_count(self) -> int | None:
        """How many things are targeted, when every target is a known thing (no group, no token)."""
        if self.targets is None or any(kind is not TargetKind.THING for kind in self.targets):
            return None
        return len(self.targets)


def read_job(node: CfnResource, resource_types: Mapping[str, str] | None = None) -> JobProperties | None:
    """The job's properties, or ``None`` when ``node`` is not an IoT job.

    Parameters
    ----------
    node
        Any ``CfnResource``.
    resource_types
        The stack's resource types by logical id, to tell a ``Fn::GetAtt``
        target's kind (``aws_iot.CfnThing`` / ``CfnThingGroup`` targets).
        Default: such targets are unknown.
    """
    resource_type = node.cfn_resource_type
    if resource_type not in _JOB_TYPES:
        return None
    stack = Stack.of(node)
    # Protected in TypeScript, reachable through jsii: the same members cdk-nag's rules read.
    properties = stack.resolve(node._render_properties(node._cfn_properties))
    if not isinstance(properties, Mapping):
        properties = {}
    return JobProperties(resource_type, properties, _target_kinds(properties.get("Targets"), resource_types or {}))


def resource_types_of(stack: Stack) -> dict[str, str]:
    """Every resource type of ``stack`` by logical id."""
    resources = [
        cast(CfnResource, child)
        for child in stack.node.find_all()
        if CfnResource.is_cfn_resource(child) and Stack.of(child) is stack
    ]
    return {str(stack.resolve(resource.logical_id)): resource.cfn_resource_type for resource in resources}


def _target_kinds(targets: Any, resource_types: Mapping[str, str]) -> tuple[TargetKind, ...] | None:
    if not isinstance(targets, list):
        return None
    return tuple(_target_kind(target, resource_types) for target in targets)


_THING_GROUP_ARN = re.compile(r":thinggroup/")
_THING_ARN = re.compile(r":thing/")


def _target_kind(target: Any, resource_types: Mapping[str, str]) -> TargetKind:
    if isinstance(target, Mapping) and "Fn::GetAtt" in target:
        reference = target["Fn::GetAtt"]
        if isinstance(reference, list) and len(reference) == 2 and reference[1] == "Arn":
            return TargetKind(_TARGET_TYPES.get(resource_types.get(str(reference[0]), ""), "UNKNOWN"))
        return TargetKind.UNKNOWN
    # A literal ARN, or one formatted from the stack's pseudo parameters (JobTarget.thing_group(name)).
    if isinstance(target, Mapping) and "Fn::Join" not in target:
        return TargetKind.UNKNOWN
    text = "".join(literal_text(target))
    if _THING_GROUP_ARN.search(text):
        return TargetKind.THING_GROUP
    if _THING_ARN.search(text):
        return TargetKind.THING
    return TargetKind.UNKNOWN
