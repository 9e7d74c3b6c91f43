"""How the local engine runs each custom resource: the one place that decides.

A custom resource (``Custom::*`` or ``AWS::CloudFormation::CustomResource``)
is run in one of three ways, or not at all:

``provider``
    Its ``ServiceToken`` is the ARN of a Lambda function with a ``python3.*``
    runtime and asset code (``Code.S3Key``): the function runs from its asset
    folder in a Lambda-like process (:class:`~.lambda_process.LambdaProcess`)
    against moto, as the ``Custom::IotJob`` provider does. The function may be
    in another stack (``Fn::ImportValue`` of its ARN), found once deployed.
``cdk``
    CDK's ``Custom::CDKBucketDeployment`` and ``Custom::S3AutoDeleteObjects``:
    their handlers are emulated in-process (:mod:`.cdk_handlers`).
``aws-sdk``
    ``Custom::AWS`` (``AwsCustomResource``, recognised by its type or its
    singleton function): the SDK calls are made with boto3
    (:mod:`.aws_sdk_call`).
``unsupported``
    Anything else: a function on Node.js or another runtime (the
    ``custom_resources.Provider`` framework among them), inline code, a
    container image, an SNS topic as ``ServiceToken``. ``plan`` flags it,
    ``deploy`` refuses the stack before changing anything, unless the engine
    skips unsupported resources: then it is recorded, not created
    (``skipped``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .aws_sdk_call import AWS_SDK_FUNCTION_PREFIX, AWS_SDK_TYPE, SdkCall
from .cdk_handlers import EMULATED_TYPES
from .state import ResourceState
from .template import Stack, UnsupportedCustomResourceError, get_att_parts

__all__ = [
    "NOT_SUPPORTED",
    "SKIP_FLAG",
    "SKIP_NOT_SUPPORTED",
    "Handling",
    "Support",
    "check_supported",
    "handling_of_deployed",
    "is_custom",
    "support_of",
]

#: The plan's action for a custom resource the deploy refuses.
NOT_SUPPORTED = "not supported locally"
#: The plan's action for one the deploy records without creating it.
SKIP_NOT_SUPPORTED = "skip (not supported locally)"
#: The command line option that skips them.
SKIP_FLAG = "--skip-unsupported"
_LAMBDA = "AWS::Lambda::Function"


class Handling(StrEnum):
    """How a custom resource is run locally (kept in :attr:`ResourceState.handling`)."""

    PROVIDER = "provider"
    CDK = "cdk"
    AWS_SDK = "aws-sdk"
    UNSUPPORTED = "unsupported"
    #: Recorded in the state without being created.
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Support:
    """The decision for one custom resource.

    Attributes
    ----------
    handling
        How it runs, or :attr:`Handling.UNSUPPORTED`.
    detail
        How it runs, or why it cannot, in a few words.
    function
        The logical id of its provider function in the same stack, if any.
    """

    handling: Handling
    detail: str = ""
    function: str | None = None

    @property
    def supported(self) -> bool:
        """Whether a deploy can run it."""
        return self.handling is not Handling.UNSUPPORTED


def is_custom(resource_type: str) -> bool:
    """Whether CloudFormation hands this type to a provider (a custom resource)."""
    return resource_type.startswith("Custom::") or resource_type == "AWS::CloudFormation::CustomResource"


def support_of(stack: Stack, logical_id: str, *, provider: ResourceState | None = None) -> Support:
    """How the custom resource ``logical_id`` of ``stack`` is run locally.

    Parameters
    ----------
    stack
        The stack as synthesized.
    logical_id
        A custom resource of it.
    provider
        The deployed function its ``ServiceToken`` names, when that is not a
        function of this stack (an imported ARN).
    """
    resource = stack.resources[logical_id]
    resource_type = str(resource.get("Type"))
    if resource_type in EMULATED_TYPES:
        return Support(Handling.CDK, "CDK's handler, emulated against moto S3")
    token = (resource.get("Properties") or {}).get("ServiceToken")
    target = _get_att_target(token)
    function = target if target in stack.resources and stack.resources[target].get("Type") == _LAMBDA else None
    if resource_type == AWS_SDK_TYPE or (function or "").startswith(AWS_SDK_FUNCTION_PREFIX):
        return Support(Handling.AWS_SDK, _sdk_calls(resource.get("Properties") or {}), function)
    if function is not None:
        return _function_support(function, stack.resources[function].get("Properties") or {})
    named = target or _ref_target(token)
    if named is not None and named in stack.resources:
        kind = stack.resources[named].get("Type")
        return Support(Handling.UNSUPPORTED, f"its ServiceToken names {named} ({kind}), not a Lambda function")
    if provider is not None:
        return _function_support(provider.physical_id, provider.properties)
    # An ARN from elsewhere: the deploy finds the function by it, or fails naming it.
    return Support(Handling.PROVIDER, "provider function deployed elsewhere, in a Lambda-like process")


def handling_of_deployed(resource: ResourceState) -> Handling:
    """How a deployed custom resource is run (a stack destroyed without its template)."""
    if resource.handling:
        return Handling(resource.handling)
    # State files from before handling was recorded held provider-backed resources only.
    if resource.type in EMULATED_TYPES:
        return Handling.CDK
    if resource.type == AWS_SDK_TYPE:
        return Handling.AWS_SDK
    return Handling.PROVIDER


def check_supported(stack: Stack, supports: Mapping[str, Support]) -> None:
    """Refuse a stack with custom resources the engine cannot run, in one line naming them.

    Raises
    ------
    UnsupportedCustomResourceError
        When any of ``supports`` is unsupported.
    """
    unsupported = [name for name, support in supports.items() if not support.supported]
    if not unsupported:
        return
    listed = "; ".join(f"{name} ({stack.resources[name].get('Type')}: {supports[name].detail})" for name in unsupported)
    raise UnsupportedCustomResourceError(
        f"stack {stack.name}: custom resources not supported locally: {listed}; "
        f"nothing was changed (deploy with {SKIP_FLAG} to record them as skipped)",
        unsupported,
    )


def _function_support(name: str, properties: Mapping[str, Any]) -> Support:
    runtime = properties.get("Runtime")
    code = properties.get("Code") or {}
    if not isinstance(runtime, str):
        return Support(Handling.UNSUPPORTED, f"its function {name} has no literal Runtime (a container image?)")
    if not runtime.startswith("python"):
        framework = " (the custom_resources.Provider framework)" if "framework" in name.lower() else ""
        return Support(
            Handling.UNSUPPORTED, f"its function {name} runs {runtime}{framework}; only Python functions run locally"
        )
    if not isinstance(code, Mapping) or "S3Key" not in code:
        return Support(Handling.UNSUPPORTED, f"its function {name} has no asset code (inline ZipFile or image)")
    return Support(Handling.PROVIDER, f"{runtime} function {name}, in a Lambda-like process", name)


def _sdk_calls(properties: Mapping[str, Any]) -> str:
    calls = []
    for request in ("Create", "Update", "Delete"):
        text = properties.get(request)
        try:
            call = SdkCall.decode(text)
        except (ValueError, KeyError, TypeError):
            call = None
        if call is not None:
            calls.append(f"{request} {call.describe()}")
    return "SDK calls through boto3: " + (", ".join(calls) or "none")


def _get_att_target(token: Any) -> str | None:
    if isinstance(token, dict) and len(token) == 1 and "Fn::GetAtt" in token:
        try:
            return get_att_parts(token["Fn::GetAtt"])[0]
        except (TypeError, ValueError):
            return None
    return None


def _ref_target(token: Any) -> str | None:
    if isinstance(token, dict) and len(token) == 1 and isinstance(token.get("Ref"), str):
        return str(token["Ref"])
    return None
