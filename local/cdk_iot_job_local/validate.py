"""Template checks made before anything is planned or deployed, as CloudFormation validates a template.

CloudFormation refuses a template whose ``Fn::GetAtt`` names an attribute the
resource type does not have, or that uses an unknown function, before it
changes anything. :func:`check_template` does the same for what the local
engine models: every intrinsic in resource properties and in ``Outputs`` must
be one :class:`~cdk_iot_job_local.template.TemplateResolver` resolves, every
``Ref`` must name a resource, parameter or supported pseudo parameter, and
every ``Fn::GetAtt`` an attribute of :func:`resources.supported_attributes`.
``Conditions`` may only use the condition functions, on parameters and pseudo
parameters; every condition an ``Fn::If``, a resource or an output names must
be declared. The first problem is raised as one line naming where it is.
"""

from __future__ import annotations

from typing import Any

from .resources import supported_attributes
from .template import (
    CONDITION_FUNCTIONS,
    INTRINSICS,
    PSEUDO_PARAMETERS,
    Stack,
    UnsupportedTemplateError,
    get_att_parts,
    sub_variables,
)

__all__ = ["check_template"]


def check_template(stack: Stack) -> None:
    """Raise :class:`UnsupportedTemplateError` for the first intrinsic the engine cannot honour.

    Parameters
    ----------
    stack
        The stack whose ``Resources`` properties and ``Outputs`` are checked.

    Raises
    ------
    UnsupportedTemplateError
        One line: the stack, the place (``Resources.<id>.Properties`` or
        ``Outputs.<name>``) and what is wrong.
    """
    checker = _Checker(stack)
    for name, expression in checker.conditions.items():
        checker.condition(expression, f"Conditions.{name}")
    for logical_id, resource in stack.resources.items():
        checker.named_condition(resource.get("Condition"), f"Resources.{logical_id}.Condition")
        checker.walk(resource.get("Properties", {}), f"Resources.{logical_id}.Properties")
    for name, output in (stack.template.get("Outputs") or {}).items():
        if not isinstance(output, dict) or "Value" not in output:
            raise UnsupportedTemplateError(f"stack {stack.name}: Outputs.{name} has no Value")
        checker.named_condition(output.get("Condition"), f"Outputs.{name}.Condition")
        checker.walk(output["Value"], f"Outputs.{name}")
        if "Export" in output:
            checker.walk(output["Export"].get("Name"), f"Outputs.{name}.Export.Name")


class _Checker:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.parameters = set(stack.template.get("Parameters") or {})
        self.conditions: dict[str, Any] = dict(stack.template.get("Conditions") or {})
        # Resources a false Condition left out may still be named, in a branch that is not taken.
        self.resources = set(stack.resources) | set(stack.omitted)

    def fail(self, where: str, message: str) -> UnsupportedTemplateError:
        return UnsupportedTemplateError(f"stack {self.stack.name}: {where}: {message}")

    def walk(self, value: Any, where: str) -> None:
        if isinstance(value, list):
            for item in value:
                self.walk(item, where)
            return
        if not isinstance(value, dict):
            return
        # An intrinsic is a one-key object; IAM statements' "Condition" keys sit among others.
        ((key, argument),) = value.items() if len(value) == 1 else ((None, None),)
        is_condition = key == "Condition" and isinstance(argument, str)
        if key is None or not (key == "Ref" or key.startswith("Fn::") or is_condition):
            for item in value.values():
                self.walk(item, where)
            return
        if key not in INTRINSICS:
            raise self.fail(where, f"intrinsic {key} is not supported by the local engine")
        if key == "Ref":
            self.ref(argument, where)
        elif key == "Fn::GetAtt":
            self.get_att(argument, where)
        elif key == "Fn::Sub":
            self.sub(argument, where)
        elif key == "Fn::If":
            self.if_(argument, where)
        else:
            self.walk(argument, where)

    def if_(self, argument: Any, where: str) -> None:
        if not (isinstance(argument, list) and len(argument) == 3):
            raise self.fail(where, f"Fn::If takes [condition, value if true, value if false], not {argument!r}")
        self.named_condition(argument[0], where)
        self.walk(argument[1:], where)

    def named_condition(self, name: Any, where: str) -> None:
        """A condition named by ``Fn::If``, ``Condition`` or a resource's or output's ``Condition``."""
        if name is None:
            return
        if not isinstance(name, str) or name not in self.conditions:
            raise self.fail(where, f"condition {name!r} is not declared in Conditions")

    def condition(self, expression: Any, where: str) -> None:
        """A ``Conditions`` entry: condition functions only, on parameters and pseudo parameters."""
        key, argument = (
            next(iter(expression.items())) if isinstance(expression, dict) and len(expression) == 1 else ("", None)
        )
        if key not in CONDITION_FUNCTIONS:
            functions = ", ".join(sorted(CONDITION_FUNCTIONS))
            raise self.fail(where, f"{expression!r} is not a condition function ({functions})")
        if key == "Condition":
            self.named_condition(argument, where)
        elif key == "Fn::Equals":
            for value in argument if isinstance(argument, list) else [argument]:
                self.walk(value, where)
                for name in _refs(value):
                    if name in self.resources:
                        raise self.fail(
                            where, f"{name} is a resource: a condition can only use parameters and pseudo parameters"
                        )
        else:
            for item in argument if isinstance(argument, list) else [argument]:
                self.condition(item, where)

    def ref(self, name: Any, where: str) -> None:
        if not isinstance(name, str):
            raise self.fail(where, f"Ref takes a name, not {name!r}")
        if name.startswith("AWS::"):
            if name not in PSEUDO_PARAMETERS:
                raise self.fail(where, f"pseudo parameter {name} is not supported by the local engine")
        elif name not in self.resources and name not in self.parameters:
            raise self.fail(where, f"Ref {name} names no resource or parameter")

    def get_att(self, argument: Any, where: str) -> None:
        try:
            name, attribute = get_att_parts(argument)
        except (TypeError, ValueError):
            raise self.fail(where, f"Fn::GetAtt takes [resource, attribute], not {argument!r}") from None
        resource = self.stack.resources.get(name)
        if resource is None and name in self.stack.omitted:
            return  # its type's attributes are checked when its Condition holds
        if resource is None:
            raise self.fail(where, f"Fn::GetAtt {name}.{attribute}: no resource {name}")
        resource_type = str(resource.get("Type"))
        supported = supported_attributes(resource_type)
        if supported is not None and attribute not in supported:
            offered = ", ".join(sorted(supported)) or "none"
            raise self.fail(
                where, f"Fn::GetAtt {name}.{attribute}: {resource_type} has no attribute {attribute} (has: {offered})"
            )

    def sub(self, argument: Any, where: str) -> None:
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
        for item in dict(variables).values():
            self.walk(item, where)
        for name in sub_variables(str(text)):
            if name in variables:
                continue
            if "." in name:
                self.get_att(name, where)
            else:
                self.ref(name, where)


def _refs(value: Any) -> list[str]:
    """The names ``value`` refers to with ``Ref`` (and ``Fn::GetAtt``)."""
    if isinstance(value, list):
        return [name for item in value for name in _refs(item)]
    if not isinstance(value, dict):
        return []
    if len(value) == 1 and isinstance(value.get("Ref"), str):
        return [value["Ref"]]
    if len(value) == 1 and "Fn::GetAtt" in value:
        try:
            return [get_att_parts(value["Fn::GetAtt"])[0]]
        except (TypeError, ValueError):
            return []
    return [name for item in value.values() for name in _refs(item)]
