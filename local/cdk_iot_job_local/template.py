"""Read a synthesized CDK cloud assembly and resolve a template the way a deployment would.

Used by the local engine (``engine.py``) and the whole-flow test
(``tests/system/test_flow.py``): both need the ``Custom::IotJob`` properties exactly
as CloudFormation would send them to the provider, and the asset folder
holding the provider's code.

What it covers is what our stacks use, no more:

* the cloud assembly: ``manifest.json`` -> stacks -> template and
  environment (account and region, :mod:`.environment`), and the
  ``asset.<hash>`` folder a Lambda function's ``Code.S3Key`` (``<hash>.zip``)
  names;
* the values of the resources created so far (``resources.py`` creates them
  in moto), recorded with :meth:`TemplateResolver.record`;
* parameters as CloudFormation takes them (:func:`with_parameters`): a given
  value or the ``Default``, ``CommaDelimitedList`` split, ``AllowedValues``
  and ``AllowedPattern`` checked, a missing value refused;
* ``Conditions`` (``Fn::Equals``, ``Fn::Not``, ``Fn::And``, ``Fn::Or``,
  ``Condition``), evaluated once per stack from its parameters: a resource or
  output whose ``Condition`` is false is left out of the stack, ``Fn::If``
  picks a branch, and ``Ref AWS::NoValue`` removes the key or list item it
  stands in;
* the intrinsics CDK emits for them: ``Ref`` (pseudo parameters of the
  stack's environment, resources),
  ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Sub``, ``Fn::Select``; anything else
  raises :class:`UnsupportedTemplateError` rather than being guessed;
* CloudFormation's stringification of scalars (:func:`cfn_events.stringify`);
* the order CloudFormation creates custom resources in (``DependsOn`` and
  references).
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdk_iot_job_provider import schema

from .environment import DEFAULT_ACCOUNT, DEFAULT_ENVIRONMENT, DEFAULT_PARTITION, DEFAULT_REGION, Environment
from .events import stringify

__all__ = [
    "CONDITION_FUNCTIONS",
    "DEFAULT_ACCOUNT",
    "DEFAULT_PARTITION",
    "DEFAULT_REGION",
    "INTRINSICS",
    "IOT_JOB_TYPE",
    "NO_VALUE",
    "PSEUDO_PARAMETERS",
    "Stack",
    "TemplateResolver",
    "UnsupportedCustomResourceError",
    "UnsupportedTemplateError",
    "get_att_parts",
    "load_stacks",
    "sub_variables",
    "with_parameters",
]

IOT_JOB_TYPE = schema.RESOURCE_TYPE
_STACK_ARTIFACT = "aws:cloudformation:stack"
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")
#: The pseudo parameters :class:`TemplateResolver` answers (``AWS::NoValue`` as :data:`NO_VALUE`).
PSEUDO_PARAMETERS = frozenset(
    {
        "AWS::Partition",
        "AWS::Region",
        "AWS::AccountId",
        "AWS::StackName",
        "AWS::StackId",
        "AWS::URLSuffix",
        "AWS::NoValue",
    }
)
#: The intrinsic functions :class:`TemplateResolver` resolves.
INTRINSICS = frozenset(
    {"Ref", "Fn::GetAtt", "Fn::Join", "Fn::Sub", "Fn::Select", "Fn::Split", "Fn::ImportValue", "Fn::If"}
)
#: The functions a ``Conditions`` entry is made of (their values may use :data:`INTRINSICS`).
CONDITION_FUNCTIONS = frozenset({"Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Condition"})
_LIST_TYPES = ("CommaDelimitedList", "List<")


class _NoValue:
    """``Ref AWS::NoValue``: the key or list item holding it is removed."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


#: What ``Ref AWS::NoValue`` resolves to; never part of a resolved value.
NO_VALUE: Any = _NoValue()


class UnsupportedTemplateError(ValueError):
    """The template uses something this small resolver does not model."""


class UnsupportedCustomResourceError(UnsupportedTemplateError):
    """The stack has custom resources the local engine cannot run (see :mod:`.support`).

    Attributes
    ----------
    logical_ids
        The resources, in template order.
    """

    def __init__(self, message: str, logical_ids: list[str]) -> None:
        super().__init__(message)
        self.logical_ids = logical_ids


@dataclass(frozen=True)
class Stack:
    """One stack of a cloud assembly.

    Attributes
    ----------
    name
        The stack name (``displayName``/artifact id).
    outdir
        The cloud assembly folder (``cdk.out``).
    template
        The parsed template.
    environment
        The account and region it is deployed to (the manifest's
        ``environment``); the defaults for an environment-agnostic stack.
    """

    name: str
    outdir: Path
    template: dict[str, Any]
    environment: Environment = DEFAULT_ENVIRONMENT
    #: Parameter values given for the deploy (``--parameter``); the others take their ``Default``.
    parameters: Mapping[str, str] = field(default_factory=dict)
    #: Resources of the template left out because their ``Condition`` is false, with that condition.
    omitted: Mapping[str, str] = field(default_factory=dict)
    #: The ``Conditions``, evaluated once from the parameters (:func:`with_parameters`).
    conditions: Mapping[str, bool] = field(default_factory=dict)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        """The template's ``Resources`` section."""
        resources: dict[str, dict[str, Any]] = self.template.get("Resources", {})
        return resources

    def logical_ids(self, resource_type: str) -> list[str]:
        """Logical ids of the resources of ``resource_type``, in template order."""
        return [name for name, res in self.resources.items() if res.get("Type") == resource_type]

    def creation_order(self) -> list[str]:
        """Every logical id, each after the resources it depends on (template order otherwise)."""
        names = list(self.resources)
        return self._after_dependencies(names, set(names))

    def iot_job_ids(self) -> list[str]:
        """The ``Custom::IotJob`` logical ids in the order CloudFormation creates them.

        A resource comes after every ``Custom::IotJob`` it depends on, through
        ``DependsOn`` or a ``Ref``/``Fn::GetAtt``/``Fn::Sub`` reference
        (directly or through other resources); ties keep template order.
        """
        jobs = self.logical_ids(IOT_JOB_TYPE)
        return self._after_dependencies(jobs, set(jobs))

    def _after_dependencies(self, seeds: list[str], keep: set[str]) -> list[str]:
        """A depth-first topological walk from ``seeds``, listing only the names in ``keep``."""
        ordered: list[str] = []
        done: set[str] = set()
        visiting: set[str] = set()

        def visit(name: str) -> None:
            if name in done:
                return
            if name in visiting:
                raise UnsupportedTemplateError(f"circular dependency through {name}")
            visiting.add(name)
            for dependency in self.dependencies(name):
                visit(dependency)
            visiting.discard(name)
            done.add(name)
            if name in keep:
                ordered.append(name)

        for name in seeds:
            visit(name)
        return ordered

    def dependencies(self, logical_id: str) -> list[str]:
        """Resources ``logical_id`` needs first: ``DependsOn`` and references."""
        return self._dependencies(logical_id)

    def _dependencies(self, logical_id: str) -> list[str]:
        resource = self.resources[logical_id]
        depends_on = resource.get("DependsOn", [])
        names = [depends_on] if isinstance(depends_on, str) else list(depends_on)
        names += _references(resource.get("Properties", {}))
        return [name for name in dict.fromkeys(names) if name in self.resources]

    def function_of(self, logical_id: str) -> str:
        """Logical id of the Lambda function a custom resource's ``ServiceToken`` names."""
        token = self.resources[logical_id]["Properties"]["ServiceToken"]
        if not (isinstance(token, dict) and "Fn::GetAtt" in token):
            raise UnsupportedTemplateError(f"{logical_id}: ServiceToken is not Fn::GetAtt of a function: {token!r}")
        target, attribute = _get_att_parts(token["Fn::GetAtt"])
        if attribute != "Arn" or self.resources[target]["Type"] != "AWS::Lambda::Function":
            raise UnsupportedTemplateError(f"{logical_id}: ServiceToken names {target}.{attribute}")
        return target

    def asset_dir(self, function_logical_id: str) -> Path:
        """The ``asset.<hash>`` folder holding a function's code.

        Found through the function's ``Code.S3Key`` (``<hash>.zip``) and the
        stack's asset manifest, which maps the hash to the folder.
        """
        code = self.resources[function_logical_id]["Properties"]["Code"]
        key = code.get("S3Key")
        if not isinstance(key, str) or not key.endswith(".zip"):
            raise UnsupportedTemplateError(f"{function_logical_id}: Code.S3Key is not '<hash>.zip': {key!r}")
        asset_hash = key.removesuffix(".zip")
        folder = f"asset.{asset_hash}"
        for manifest in self.outdir.glob(f"{self.name}.assets.json"):
            entry = json.loads(manifest.read_text()).get("files", {}).get(asset_hash)
            if entry is not None:
                folder = entry["source"]["path"]
        path = self.outdir / folder
        if not path.is_dir():
            raise FileNotFoundError(f"asset folder {path} of {function_logical_id} does not exist")
        return path


def load_stacks(outdir: Path | str) -> list[Stack]:
    """The CloudFormation stacks of a cloud assembly, in manifest order."""
    outdir = Path(outdir)
    manifest = json.loads((outdir / "manifest.json").read_text())
    stacks = []
    for artifact_id, artifact in manifest.get("artifacts", {}).items():
        if artifact.get("type") != _STACK_ARTIFACT:
            continue
        template_file = outdir / artifact["properties"]["templateFile"]
        name = artifact.get("displayName", artifact_id)
        environment = Environment.from_cdk(artifact.get("environment"))
        template = json.loads(template_file.read_text())
        stacks.append(Stack(name=name, outdir=outdir, template=template, environment=environment))
    return stacks


def with_parameters(stack: Stack, values: Mapping[str, str] | None = None) -> Stack:
    """``stack`` as CloudFormation deploys it with these parameter values.

    Each parameter takes its given value or its ``Default`` (a
    ``CommaDelimitedList`` split at commas); ``AllowedValues`` and
    ``AllowedPattern`` are checked (on each item of a list). The
    ``Conditions`` are then evaluated, and the resources and outputs whose
    ``Condition`` is false are left out of the returned stack's template.

    Raises
    ------
    UnsupportedTemplateError
        Naming the stack and the parameters: a value for a parameter the
        template does not declare, parameters with neither a value nor a
        ``Default``, or a value its constraints refuse; or a condition the
        engine cannot evaluate.
    """
    given = dict(values or {})
    declared: dict[str, Any] = stack.template.get("Parameters") or {}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise UnsupportedTemplateError(
            f"stack {stack.name}: Parameters: [{', '.join(unknown)}] do not exist in the template"
        )
    missing = [name for name, parameter in declared.items() if name not in given and "Default" not in parameter]
    if missing:
        raise UnsupportedTemplateError(f"stack {stack.name}: Parameters: [{', '.join(missing)}] must have values")
    for name, parameter in declared.items():
        _check_parameter(stack.name, name, parameter, given[name] if name in given else parameter["Default"])
    with_values = dataclasses.replace(stack, parameters=given)
    # Every condition, used or not, as CloudFormation validates them all.
    conditions = _evaluate_conditions(with_values)

    def kept(section: str) -> tuple[dict[str, Any], dict[str, str]]:
        entries: dict[str, Any] = stack.template.get(section) or {}
        omitted = {
            name: str(entry["Condition"])
            for name, entry in entries.items()
            if isinstance(entry, dict) and "Condition" in entry
        }
        for name, condition in omitted.items():
            if condition not in conditions:
                raise UnsupportedTemplateError(
                    f"stack {stack.name}: {section}.{name}: Condition {condition} is not declared in Conditions"
                )
        false = {name: condition for name, condition in omitted.items() if not conditions[condition]}
        return {name: entry for name, entry in entries.items() if name not in false}, false

    resources, omitted = kept("Resources")
    template = {**stack.template, "Resources": resources}
    if "Outputs" in stack.template:
        template["Outputs"] = kept("Outputs")[0]
    return dataclasses.replace(with_values, template=template, omitted=omitted, conditions=conditions)


def _evaluate_conditions(stack: Stack) -> dict[str, bool]:
    resolver = TemplateResolver(stack)
    for name in stack.template.get("Conditions") or {}:
        try:
            resolver.condition(name)
        except UnsupportedTemplateError as error:
            raise UnsupportedTemplateError(f"stack {stack.name}: {error}") from None
    return dict(resolver.conditions)


def _check_parameter(stack_name: str, name: str, parameter: Mapping[str, Any], value: Any) -> None:
    """CloudFormation's ``AllowedValues`` and ``AllowedPattern`` checks, on each item of a list."""
    items = _parameter_value(parameter, value)
    allowed = parameter.get("AllowedValues")
    pattern = parameter.get("AllowedPattern")
    for item in items if isinstance(items, list) else [items]:
        text = stringify(item)
        if allowed is not None and text not in [stringify(choice) for choice in allowed]:
            raise UnsupportedTemplateError(
                f"stack {stack_name}: Parameter '{name}' must be one of AllowedValues, not {text!r}"
            )
        if pattern is not None and _pattern(stack_name, name, str(pattern)).fullmatch(str(text)) is None:
            rule = parameter.get("ConstraintDescription") or f"must match pattern {pattern}"
            raise UnsupportedTemplateError(
                f"stack {stack_name}: Parameter '{name}' failed to satisfy constraint: {rule} (value {text!r})"
            )


def _pattern(stack_name: str, name: str, pattern: str) -> re.Pattern[str]:
    """An ``AllowedPattern`` (a Java regular expression) as Python reads it."""
    try:
        return re.compile(pattern)
    except re.error as error:
        raise UnsupportedTemplateError(
            f"stack {stack_name}: Parameter '{name}': AllowedPattern {pattern!r} is not a regular expression "
            f"the local engine reads ({error})"
        ) from None


def _parameter_value(parameter: Mapping[str, Any], value: Any) -> Any:
    """A parameter's value as ``Ref`` gives it: a list parameter's items, space trimmed."""
    if str(parameter.get("Type", "")).startswith(_LIST_TYPES):
        return [item.strip() for item in str(value).split(",")]
    return value


def get_att_parts(value: Any) -> tuple[str, str]:
    """``Fn::GetAtt``'s argument (``"Name.Attr"`` or ``[Name, Attr]``) as ``(Name, Attr)``."""
    return _get_att_parts(value)


def sub_variables(text: str) -> list[str]:
    """The ``${...}`` variables of an ``Fn::Sub`` string (``${!Literal}`` escapes excluded)."""
    return _SUB_VARIABLE.findall(text)


def _get_att_parts(value: Any) -> tuple[str, str]:
    if isinstance(value, str):
        target, _, attribute = value.partition(".")
        return target, attribute
    target, attribute = value
    return str(target), str(attribute)


def _references(value: Any) -> list[str]:
    """Logical ids a property value refers to (pseudo parameters excluded)."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str) and not item.startswith("AWS::"):
                found.append(item)
            elif key == "Fn::GetAtt":
                found.append(_get_att_parts(item)[0])
            elif key == "Fn::Sub":
                text = item if isinstance(item, str) else item[0]
                for name in _SUB_VARIABLE.findall(text):
                    if not name.startswith("AWS::"):
                        found.append(name.split(".")[0])
                found.extend(_references(item))
            else:
                found.extend(_references(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(_references(item))
    return found


@dataclass
class TemplateResolver:
    """Resolves one stack's intrinsics as CloudFormation would in the stack's account and region.

    Record each resource's physical id and attributes with :meth:`record` as
    it is created, so later resources can refer to it.

    Parameters
    ----------
    stack
        The stack to deploy; its ``environment`` answers the pseudo parameters.
    stack_id
        Its CloudFormation stack ARN; a fresh one by default.
    """

    stack: Stack
    stack_id: str = ""
    imports: Mapping[str, str] = field(default_factory=dict)
    # Plan mode: stands in for values only a deploy will know.
    unknown: Callable[[str], str] | None = None
    used_imports: set[str] = field(default_factory=set)
    _refs: dict[str, str] = field(default_factory=dict)
    _attributes: dict[str, dict[str, str]] = field(default_factory=dict)
    # The conditions evaluated so far (each once), and those being evaluated (a cycle is an error).
    _conditions: dict[str, bool] = field(default_factory=dict)
    _evaluating: list[str] = field(default_factory=list)
    # Resources recorded without being created (not supported locally), with why.
    _skipped: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._conditions = {**self.stack.conditions, **self._conditions}
        if not self.stack_id:
            self.stack_id = self.environment.arn("cloudformation", f"stack/{self.stack.name}/{uuid.uuid4()}")

    @property
    def environment(self) -> Environment:
        """The account and region the stack is deployed to."""
        return self.stack.environment

    @property
    def account(self) -> str:
        """``AWS::AccountId``."""
        return self.environment.account

    @property
    def region(self) -> str:
        """``AWS::Region``."""
        return self.environment.region

    @property
    def partition(self) -> str:
        """``AWS::Partition``."""
        return self.environment.partition

    def record(self, logical_id: str, physical_id: str, attributes: Mapping[str, str] | None = None) -> None:
        """Remember a resource's ``Ref`` value and ``Fn::GetAtt`` attributes."""
        self._refs[logical_id] = physical_id
        self._attributes[logical_id] = dict(attributes or {})
        self._skipped.pop(logical_id, None)

    def record_skipped(self, logical_id: str, physical_id: str, reason: str) -> None:
        """Remember a resource that was not created: ``Ref`` is ``physical_id``; ``Fn::GetAtt`` fails naming why."""
        self._refs[logical_id] = physical_id
        self._attributes.pop(logical_id, None)
        self._skipped[logical_id] = reason

    def forget(self, logical_id: str) -> None:
        """Drop what is known of a resource (plan: it is about to be replaced)."""
        self._refs.pop(logical_id, None)
        self._attributes.pop(logical_id, None)
        self._skipped.pop(logical_id, None)

    # ---------------------------------------------------------------- resolve
    def properties(self, logical_id: str) -> dict[str, Any]:
        """A resource's properties as CloudFormation sends them: resolved, scalars as strings."""
        resolved = self.resolve(self.stack.resources[logical_id].get("Properties", {}))
        properties: dict[str, Any] = {} if resolved is NO_VALUE else stringify(resolved)
        return properties

    def resolve(self, value: Any) -> Any:
        """Replace every intrinsic in ``value`` by its value.

        A key or list item whose value is ``Ref AWS::NoValue`` (directly or
        through ``Fn::If``) is removed; ``value`` itself may resolve to
        :data:`NO_VALUE`.
        """
        if isinstance(value, list):
            return [item for item in (self.resolve(item) for item in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self._ref(argument)
            if key == "Fn::If":
                return self._if(argument)
            if key == "Fn::GetAtt":
                return self._get_att(*_get_att_parts(argument))
            if key == "Fn::Join":
                separator, items = argument
                joined = self.resolve(items)
                if not isinstance(joined, list):
                    raise UnsupportedTemplateError(f"Fn::Join takes a list, not {joined!r}: {value!r}")
                return str(separator).join(str(stringify(item)) for item in joined)
            if key == "Fn::Sub":
                return self._sub(argument)
            if key == "Fn::Select":
                index, items = argument
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                separator, text = argument
                return str(self.resolve(text)).split(str(separator))
            if key == "Fn::ImportValue":
                return self._import(str(self.resolve(argument)))
            if key.startswith("Fn::") or key == "Condition":
                raise UnsupportedTemplateError(f"intrinsic {key} is not supported: {value!r}")
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    # ------------------------------------------------------------- conditions
    @property
    def conditions(self) -> dict[str, bool]:
        """The conditions evaluated so far, by name."""
        return dict(self._conditions)

    def condition(self, name: str) -> bool:
        """The value of the ``Conditions`` entry ``name``, evaluated on first use only."""
        if name in self._conditions:
            return self._conditions[name]
        declared = self.stack.template.get("Conditions") or {}
        if name not in declared:
            raise UnsupportedTemplateError(f"condition {name} is not declared in Conditions")
        if name in self._evaluating:
            cycle = " -> ".join([*self._evaluating[self._evaluating.index(name) :], name])
            raise UnsupportedTemplateError(f"Conditions refer to each other in a cycle: {cycle}")
        self._evaluating.append(name)
        try:
            value = self._evaluate(declared[name], f"Conditions.{name}")
        finally:
            self._evaluating.pop()
        self._conditions[name] = value
        return value

    def _evaluate(self, expression: Any, where: str) -> bool:
        if not (isinstance(expression, dict) and len(expression) == 1):
            raise UnsupportedTemplateError(f"{where}: {expression!r} is not a condition function")
        ((key, argument),) = expression.items()
        if key == "Condition":
            return self.condition(str(argument))
        if key not in CONDITION_FUNCTIONS or not isinstance(argument, list):
            functions = ", ".join(sorted(CONDITION_FUNCTIONS))
            raise UnsupportedTemplateError(f"{where}: {key} is not a condition function ({functions}): {expression!r}")
        if key == "Fn::Equals":
            if len(argument) != 2:
                raise UnsupportedTemplateError(f"{where}: Fn::Equals takes two values: {expression!r}")
            first, second = (stringify(self.resolve(item)) for item in argument)
            return bool(first == second)
        if key == "Fn::Not":
            if len(argument) != 1:
                raise UnsupportedTemplateError(f"{where}: Fn::Not takes one condition: {expression!r}")
            return not self._evaluate(argument[0], where)
        values = [self._evaluate(item, where) for item in argument]
        return all(values) if key == "Fn::And" else any(values)

    def _if(self, argument: Any) -> Any:
        if not (isinstance(argument, list) and len(argument) == 3 and isinstance(argument[0], str)):
            raise UnsupportedTemplateError(f"Fn::If takes [condition, value if true, value if false]: {argument!r}")
        name, when_true, when_false = argument
        return self.resolve(when_true if self.condition(name) else when_false)

    def _parameter(self, name: str, parameter: Mapping[str, Any]) -> Any:
        if name in self.stack.parameters:
            return _parameter_value(parameter, self.stack.parameters[name])
        if "Default" not in parameter:
            raise UnsupportedTemplateError(
                f"parameter {name} has no Default and no value was given (--parameter {name}=VALUE)"
            )
        return _parameter_value(parameter, parameter["Default"])

    def _import(self, name: str) -> str:
        if name not in self.imports:
            if self.unknown is not None:
                return self.unknown(f"ImportValue {name}")
            raise UnsupportedTemplateError(f"Fn::ImportValue {name}: no deployed stack exports it")
        self.used_imports.add(name)
        return self.imports[name]

    def _not_created(self, name: str) -> str:
        return f"{name} is not created, as its Condition {self.stack.omitted[name]} is false"

    def _pseudo(self, name: str) -> Any:
        values = {
            "AWS::Partition": self.partition,
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::StackName": self.stack.name,
            "AWS::StackId": self.stack_id,
            "AWS::URLSuffix": self.environment.url_suffix,
            "AWS::NoValue": NO_VALUE,
        }
        if name not in values:
            raise UnsupportedTemplateError(f"pseudo parameter {name} is not supported")
        return values[name]

    def _ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            return self._pseudo(name)
        if name in self._refs:
            return self._refs[name]
        parameter = self.stack.template.get("Parameters", {}).get(name)
        if parameter is not None:
            return self._parameter(name, parameter)
        resource = self.stack.resources.get(name)
        if self.unknown is not None and resource is not None:
            return self.unknown(name)
        if name in self.stack.omitted:
            raise UnsupportedTemplateError(f"Ref {name}: {self._not_created(name)}")
        raise UnsupportedTemplateError(f"Ref {name}: not created yet")

    def _get_att(self, name: str, attribute: str) -> str:
        resource = self.stack.resources.get(name)
        if resource is None and name in self.stack.omitted:
            raise UnsupportedTemplateError(f"Fn::GetAtt {name}.{attribute}: {self._not_created(name)}")
        if resource is None:
            raise UnsupportedTemplateError(f"Fn::GetAtt of unknown resource {name}")
        if name in self._skipped:
            # Even in a plan: the attribute will not exist after the deploy either.
            raise UnsupportedTemplateError(
                f"Fn::GetAtt {name}.{attribute}: {name} is skipped locally ({self._skipped[name]}), "
                "so it has no attributes"
            )
        attributes = self._attributes.get(name)
        if attributes is not None and attribute in attributes:
            return attributes[attribute]
        if (attributes is None or attribute not in attributes) and self.unknown is not None:
            return self.unknown(f"{name}.{attribute}")
        if attributes is None or attribute not in attributes:
            raise UnsupportedTemplateError(f"Fn::GetAtt {name}.{attribute}: not created yet")
        return attributes[attribute]

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {key: str(self.resolve(item)) for key, item in dict(variables).items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in values:
                return values[name]
            if name.startswith("AWS::"):
                return str(self._pseudo(name))
            if "." in name:
                return self._get_att(*name.split(".", 1))
            return str(self._ref(name))

        # ${!Literal} stands for the text ${Literal}.
        return _SUB_VARIABLE.sub(replace, str(text)).replace("${!", "${")
