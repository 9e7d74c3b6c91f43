"""crhelper's private surface, as ``cdk_iot_job_provider.response`` uses it.

``OneResponseCfnResource`` overrides and relies on private members of
crhelper's ``CfnResource``, which is why crhelper is pinned exactly
(``crhelper==2.0.12`` in pyproject.toml). A new crhelper that renames,
removes or reshapes any of them would silently bring back what the adapter
prevents (a second response, crhelper's unbounded sender, its random physical
ids, its polling clients at cold start). This test names every such member
whose name, kind or signature is no longer what the adapter expects.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import crhelper.utils
from crhelper import CfnResource, resource_helper

from cdk_iot_job_provider.response import OneResponseCfnResource


@dataclass(frozen=True)
class Member:
    """A member of crhelper the adapter depends on, and the parameters it expects it to take."""

    owner: Any
    name: str
    parameters: tuple[str, ...]
    use: str
    overridden: bool = False

    @property
    def label(self) -> str:
        return f"{getattr(self.owner, '__name__', self.owner)}.{self.name}"


METHODS = (
    Member(
        CfnResource,
        "__init__",
        ("self", "json_logging", "log_level", "boto_level", "polling_interval", "sleep_on_delete", "ssl_verify"),
        "called with log_level='INFO' and sleep_on_delete=0",
    ),
    Member(CfnResource, "__call__", ("self", "event", "context"), "called for every event that has its keys"),
    Member(
        CfnResource,
        "_send",
        ("self", "status", "reason", "send_response"),
        "overridden: the one bounded response; crhelper calls it as _send() and _send(status, reason)",
        overridden=True,
    ),
    Member(CfnResource, "_timeout", ("self",), "overridden: the timer's FAILED answer naming the job", overridden=True),
    Member(
        CfnResource,
        "generate_physical_id",
        ("self", "event"),
        "overridden: a deterministic id instead of a random one",
        overridden=True,
    ),
    Member(CfnResource, "_set_timeout", ("self",), "starts the timer that calls _timeout"),
    Member(CfnResource, "_crhelper_init", ("self", "event", "context"), "sets _event and _response_url per event"),
    Member(CfnResource, "_wrap_function", ("self", "func"), "turns an exception of create/update/delete into FAILED"),
    Member(CfnResource, "_cfn_response", ("self", "event"), "calls generate_physical_id, then _send()"),
    Member(CfnResource, "_wait_for_cwlogs", ("self", "sleep"), "sleeps sleep_on_delete seconds on Delete"),
    Member(
        crhelper.utils,
        "_send_response",
        ("response_url", "response_body", "ssl_verify"),
        "crhelper's unbounded sender, which _send must never reach",
    ),
)

# Instance attributes crhelper's __init__ sets and the adapter reads or writes.
INSTANCE_ATTRIBUTES = {
    "_event": "the event the adapter's _send and _timeout answer",
    "_response_url": "where the adapter's _send PUTs the response",
    "_sleep_on_delete": "what sleep_on_delete=0 sets",
    "_timer": "the timer _set_timeout starts",
}


def _problems_of(member: Member) -> list[str]:
    value = getattr(member.owner, member.name, None)
    if value is None:
        return [f"{member.label} is missing ({member.use})"]
    if not callable(value):
        return [f"{member.label} is no longer callable ({member.use})"]
    found = tuple(inspect.signature(value).parameters)
    if found != member.parameters:
        return [f"{member.label} takes {found}, the adapter expects {member.parameters} ({member.use})"]
    if member.overridden:
        ours: Callable[..., Any] = getattr(OneResponseCfnResource, member.name)
        try:
            # Every call crhelper can make, with all its parameters passed by position.
            inspect.signature(ours).bind(*member.parameters)
        except TypeError as error:
            return [f"OneResponseCfnResource.{member.name} cannot be called as crhelper calls it: {error}"]
    return []


def test_crhelpers_private_surface_is_what_the_response_adapter_overrides_and_relies_on() -> None:
    problems = [problem for member in METHODS for problem in _problems_of(member)]
    polling_boto3 = getattr(resource_helper, "boto3", None)
    if not callable(getattr(polling_boto3, "client", None)):
        problems.append(
            "crhelper.resource_helper.boto3 is missing or has no client(): the adapter swaps it while "
            "CfnResource.__init__ runs, to skip the polling clients"
        )
    if not callable(getattr(crhelper.utils, "HTTPSConnection", None)):
        problems.append("crhelper.utils.HTTPSConnection is missing: the tests booby-trap it to prove it is never used")
    try:
        helper = OneResponseCfnResource(lambda event: "fallback", lambda event: "timed out")
    except Exception as error:
        problems.append(f"OneResponseCfnResource cannot be built on this crhelper: {type(error).__name__}: {error}")
    else:
        problems += [
            f"CfnResource() no longer sets {name} ({use})"
            for name, use in INSTANCE_ATTRIBUTES.items()
            if name not in vars(helper)
        ]

    assert not problems, (
        "crhelper's private surface changed; OneResponseCfnResource (cdk_iot_job_provider/response.py) "
        "must be reviewed before crhelper's pin moves:\n- " + "\n- ".join(problems)
    )
