"""CloudFormation custom resource events, shaped as CloudFormation sends them."""

from __future__ import annotations

from typing import Any

__all__ = ["stringify"]


def stringify(value: Any) -> Any:
    """Properties as CloudFormation delivers them: every scalar a string.

    Numbers become ``"50"``/``"25.5"`` and booleans ``"true"``/``"false"``.
    """
    if isinstance(value, dict):
        return {key: stringify(item) for key, item in value.items()}
    if isinstance(value, list):
        return [stringify(item) for item in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value
