"""Whether a value is an unresolved CDK token, answered in Python where it can be.

``Token.is_unresolved`` is a jsii round trip to Node.js. Validating a job asks
it about a dozen values, which made validation the largest part of synth for
stacks of hundreds of jobs; plain strings, numbers, lists and dicts are
answered here, and only other objects go to jsii.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Token

__all__ = ["is_unresolved"]

# Markers of CDK's string- and list-encoded tokens; a number token is a huge negative double.
_LIST_TOKEN_MARKER = "#{Token["
_TOKEN_MARKERS = ("${Token[", _LIST_TOKEN_MARKER)
_SMALLEST_NUMBER_TOKEN = -1e289


def is_unresolved(value: Any) -> bool:
    """Like ``Token.is_unresolved(value)``."""
    if isinstance(value, str):
        return any(marker in value for marker in _TOKEN_MARKERS) and bool(Token.is_unresolved(value))
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return value < _SMALLEST_NUMBER_TOKEN and bool(Token.is_unresolved(value))
    if isinstance(value, list | tuple):
        # An encoded list token is a list holding a "#{Token[...]}" string.
        # Tokens among its items do not make the list itself one.
        if any(isinstance(item, str) and _LIST_TOKEN_MARKER in item for item in value):
            return bool(Token.is_unresolved(list(value)))
        return False
    if isinstance(value, dict):
        # Plain data, never a token itself (its members are looked at one by one).
        return False
    return bool(Token.is_unresolved(value))
