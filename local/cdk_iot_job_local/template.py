"""Read a synthesized CDK cloud assembly and resolve a template the way a deployment would.

Used by the local engine (``engine.py``) and the whole-flow test
(``tests/test_flow.py``): both need the ``Custom::IotJob`` properties exactly
as CloudFormation would send them to the provider, and the asset folder
holding the provider's code.

What it covers is what our stacks use, no more:

* the cloud assembly: ``manifest.json`` -> stacks -> template and
  environment (account and region, :mod:`.environment`), and the
  ``asset.<hash>`` folder a Lambda function's ``Code.S3Key`` (``<hash>.zip``)
  names;
* the values of the resources created so far (``resources.py`` creates them
  in moto), recorded with :meth:`TemplateResolver.record`;
* the intrinsics CDK emits for them: ``Ref`` (pseudo parameters of the
  stack's environment, resources),
  ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Sub``, ``Fn::Select``; anything else
  raises :class:`UnsupportedTemplateError` rather than being guessed;
* CloudFormation's stringification of scalars (:func:`cfn_events.stringify`);
* the order CloudFormation creates custom resources in (``DependsOn`` and
  references).
"""

from __future__ import annotations

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
    "DEFAULT_ACCOUNT",
    "DEFAULT_PARTITION",
    "DEFAULT_REGION",
    "INTRINSICS",
    "IOT_JOB_TYPE",
    "PSEUDO_PARAMETERS",
    "Stack",
    "TemplateResolver",
    "UnsupportedCustomResourceError",
    "UnsupportedTemplateError",
    "get_att_parts",
    "load_stacks",
    "sub_variables",
]

IOT_JOB_TYPE = schema.RESOURCE_TYPE
_STACK_ARTIFACT = "aws:cloudformation:stack"
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")
#: The pseudo parameters :class:`TemplateResolver` answers.
PSEUDO_PARAMETERS = frozenset(
    {"AWS::Partition", "AWS::Region", "AWS::AccountId", "AWS::StackName", "AWS::StackId", "AWS::URLSuffix"}
)
#: The intrinsic functions :class:`TemplateResolver` resolves.
INTRINSICS = frozenset({"Ref", "Fn::GetAtt", "Fn::Join", "Fn::Sub", "Fn::Select", "Fn::Split", "Fn::ImportValue"})


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
    # Resources recorded without being created (not supported locally), with why.
    _skipped: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
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
        properties: dict[str, Any] = stringify(resolved)
        return properties

    def resolve(self, value: Any) -> Any:
        """Replace every intrinsic in ``value`` by its value."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self._ref(argument)
            if key == "Fn::GetAtt":
                return self._get_att(*_get_att_parts(argument))
            if key == "Fn::Join":
                separator, items = argument
                return str(separator).join(str(item) for item in self.resolve(items))
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
        return {key: self.resolve(item) for key, item in value.items()}

    def _parameter(self, name: str, parameter: Mapping[str, Any]) -> Any:
        # No deploy-time values locally: a parameter is its Default.
        if "Default" not in parameter:
            raise UnsupportedTemplateError(f"parameter {name} has no Default, and local deploys take no values")
        default = parameter["Default"]
        if str(parameter.get("Type", "")).startswith("List<") or parameter.get("Type") == "CommaDelimitedList":
            return [item.strip() for item in str(default).split(",")]
        return default

    def _import(self, name: str) -> str:
        if name not in self.imports:
            if self.unknown is not None:
                return self.unknown(f"ImportValue {name}")
            raise UnsupportedTemplateError(f"Fn::ImportValue {name}: no deployed stack exports it")
        self.used_imports.add(name)
        return self.imports[name]

    def _pseudo(self, name: str) -> str:
        values = {
            "AWS::Partition": self.partition,
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::StackName": self.stack.name,
            "AWS::StackId": self.stack_id,
            "AWS::URLSuffix": self.environment.url_suffix,
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
        raise UnsupportedTemplateError(f"Ref {name}: not created yet")

    def _get_att(self, name: str, attribute: str) -> str:
        resource = self.stack.resources.get(name)
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
                return self._pseudo(name)
            if "." in name:
                return self._get_att(*name.split(".", 1))
            return str(self._ref(name))

        # ${!Literal} stands for the text ${Literal}.
        return _SUB_VARIABLE.sub(replace, str(text)).replace("${!", "${")
