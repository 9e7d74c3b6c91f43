"""Read a CloudFormation template written in JSON or YAML.

YAML templates may use CloudFormation's short-form intrinsic tags (``!Ref``,
``!GetAtt``, ``!Sub``, ...). :func:`load_template` turns them into the long
(JSON) form that the rest of the local engine resolves, so a YAML template and
its JSON equivalent load to the same dictionary.

CloudFormation reads every scalar as text. PyYAML's YAML 1.1 implicit typing
would change some of them, so the loader used here:

* keeps timestamps as strings (``Version: 2012-10-17`` stays ``"2012-10-17"``);
* keeps a number only when its ``str()`` gives back the text written, else the
  text itself (``0755``, ``1_000``, ``12:30``, ``1e3`` and ``1.50`` stay
  strings, so stringifying later cannot change them);
* leaves booleans and nulls as YAML gives them (the engine stringifies
  ``true``/``false`` later).

Duplicate mapping keys, which CloudFormation rejects, are errors here too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["SHORT_FORM_FUNCTIONS", "CfnYamlLoader", "load_template"]

#: Short-form tags (without ``!``) that become ``{"Fn::<Name>": value}``.
SHORT_FORM_FUNCTIONS = (
    "Base64",
    "Cidr",
    "FindInMap",
    "GetAZs",
    "ImportValue",
    "Join",
    "Select",
    "Split",
    "Sub",
    "And",
    "Equals",
    "If",
    "Not",
    "Or",
)
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class CfnYamlLoader(yaml.SafeLoader):
    """A ``yaml.SafeLoader`` for CloudFormation templates.

    Understands the short-form intrinsic tags, keeps timestamps and
    non-canonical numbers as strings, and rejects duplicate keys.
    """

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Build a mapping, refusing keys that occur twice."""
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # an unhashable key: SafeConstructor reports it itself
            if duplicate:
                raise ConstructorError(
                    "while constructing a mapping", node.start_mark, f"found duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


# A subclass owns a copy: add_implicit_resolver and friends mutate class dicts.
CfnYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _canonical_int(loader: yaml.SafeLoader, node: Node) -> int | str:
    # Octal, hex, base 60 and underscores would not stringify back to the text.
    assert isinstance(node, ScalarNode)
    text = str(loader.construct_scalar(node))
    value = loader.construct_yaml_int(node)
    return value if str(value) == text else text


def _canonical_float(loader: yaml.SafeLoader, node: Node) -> float | str:
    assert isinstance(node, ScalarNode)
    text = str(loader.construct_scalar(node))
    value = loader.construct_yaml_float(node)
    return value if str(value) == text else text


def _argument(loader: yaml.SafeLoader, node: Node) -> Any:
    """The value under a short-form tag: a string, a list or a mapping."""
    if isinstance(node, ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, MappingNode):
        return loader.construct_mapping(node, deep=True)
    raise ConstructorError(None, None, f"unexpected node for {node.tag}", node.start_mark)


def _function(name: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: Node) -> dict[str, Any]:
        return {name: _argument(loader, node)}

    return construct


def _ref(loader: yaml.SafeLoader, node: Node) -> dict[str, Any]:
    if not isinstance(node, ScalarNode):
        raise ConstructorError(None, None, "!Ref takes a logical id or parameter name", node.start_mark)
    return {"Ref": loader.construct_scalar(node)}


def _get_att(loader: yaml.SafeLoader, node: Node) -> dict[str, Any]:
    value = _argument(loader, node)
    if isinstance(value, str):
        # Only the first dot separates: attribute names may contain dots.
        resource, dot, attribute = value.partition(".")
        if not dot or not resource or not attribute:
            raise ConstructorError(None, None, f"!GetAtt {value!r} is not 'LogicalId.AttributeName'", node.start_mark)
        return {"Fn::GetAtt": [resource, attribute]}
    if isinstance(value, list) and len(value) == 2:
        return {"Fn::GetAtt": value}
    raise ConstructorError(None, None, "!GetAtt takes 'A.B' or [A, B]", node.start_mark)


CfnYamlLoader.add_constructor("tag:yaml.org,2002:int", _canonical_int)
CfnYamlLoader.add_constructor("tag:yaml.org,2002:float", _canonical_float)
CfnYamlLoader.add_constructor("!Ref", _ref)
CfnYamlLoader.add_constructor("!GetAtt", _get_att)
CfnYamlLoader.add_constructor("!Condition", _function("Condition"))
for _name in SHORT_FORM_FUNCTIONS:
    CfnYamlLoader.add_constructor(f"!{_name}", _function(f"Fn::{_name}"))


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def load_template(path: Path) -> dict[str, Any]:
    """Read a CloudFormation template from a JSON or YAML file.

    Parameters
    ----------
    path : Path
        The template file. JSON is recognised by a leading ``{``; a ``.json``
        file must be JSON, anything else falls back to YAML.

    Returns
    -------
    dict[str, Any]
        The template, with YAML short-form intrinsics in their long form.

    Raises
    ------
    ValueError
        If the file cannot be read or parsed, uses an unknown tag or a
        duplicate key, or its top level is not a mapping. The message names
        the file.
    """
    path = Path(path)
    try:
        # utf-8-sig: editors on Windows like to start files with a BOM.
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot read template: {error}") from error

    template: Any
    if text.lstrip().startswith("{"):
        try:
            template = json.loads(text, object_pairs_hook=_reject_duplicates)
        except ValueError as error:
            if path.suffix.lower() == ".json":
                raise ValueError(f"{path}: invalid JSON template: {error}") from error
            template = _load_yaml(path, text)  # a flow-style YAML mapping
    else:
        template = _load_yaml(path, text)

    if not isinstance(template, dict):
        kind = "empty" if template is None else f"a {type(template).__name__}"
        raise ValueError(f"{path}: a template must be a mapping at the top level, not {kind}")
    return template


def _load_yaml(path: Path, text: str) -> Any:
    loader = CfnYamlLoader(text)
    loader.name = str(path)  # error marks then say the file, not "<unicode string>"
    try:
        return loader.get_single_data()
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: invalid YAML template: {error}") from error
    finally:
        loader.dispose()
