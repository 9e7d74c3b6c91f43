"""The Python-side token check answers exactly as ``Token.is_unresolved`` does."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, CfnParameter, Fn, Stack, Token

from cdk_iot_job.tokens import is_unresolved


@pytest.fixture(scope="module")
def values() -> list[Any]:
    stack = Stack(App(), "Tokens")
    number = CfnParameter(stack, "Number", type="Number").value_as_number
    text = CfnParameter(stack, "Text").value_as_string
    strings = CfnParameter(stack, "List", type="List<String>").value_as_list
    return [
        "plain", "", "arn:aws:iot:us-east-1:123456789012:thing/x", "${Token[", "#{Token[TOKEN.1]}",
        text, f"prefix-{text}", Fn.join("-", ["a", text]), stack.account,
        0, -1, 2**31 - 1, 1.5, -1e300, True, False, number,
        [], ["a", "b"], [text], strings, ["x", *strings], {"Key": text}, {},
    ]  # fmt: skip


@pytest.mark.parametrize("index", range(24))
def test_python_side_check_agrees_with_jsii(values: list[Any], index: int) -> None:
    value = values[index]

    assert is_unresolved(value) == Token.is_unresolved(value), repr(value)
