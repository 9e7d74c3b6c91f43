"""``Custom::AWS`` (``custom_resources.AwsCustomResource``): its SDK calls, made with boto3 against moto.

CDK's handler (aws-cdk ``custom-resource-handlers``,
``custom-resources/aws-custom-resource-handler``) runs on Node.js. This module
does what it does, per event:

* the call for the event's ``RequestType`` is the JSON string property of
  that name (``Create``, ``Update`` or ``Delete``); an event without one just
  succeeds;
* the default physical id: on Create the first of the calls'
  ``physicalResourceId.id``, else the ``LogicalResourceId``; on Update and
  Delete the call's ``physicalResourceId.id``, else the event's. The string
  ``PHYSICAL:RESOURCEID:`` in ``parameters`` stands for it;
* ``service`` is an SDK v2 name (``Iot``, ``S3``, ``CloudWatchLogs``) or a v3
  package (``@aws-sdk/client-iot``); ``action`` is ``describeEndpoint`` or
  ``DescribeEndpointCommand``. Both become boto3's service and operation;
  parameters are coerced to the operation's input shapes (``"5"`` for an
  integer, ``"true"`` for a boolean, text for a blob), as CDK's adapter does;
* ``region`` picks the client's region, and ``assumedRoleArn`` makes the call
  with credentials of an STS AssumeRole (in moto, the role's account);
* an error whose code matches ``ignoreErrorCodesMatching`` (a regular
  expression, searched) is ignored; any other fails the resource;
* Data is the response flattened as CDK flattens it: nested keys joined with
  ``.``, list items by index (``things.0.thingName``), plus ``region``;
  ``outputPaths`` (or ``outputPath``) keep the keys that start with one of
  them. Scalars are text (``true``, ``5``; timestamps in ISO 8601, which
  CDK's handler drops). boto3's ``ResponseMetadata`` is not SDK v3's
  ``$metadata`` and is left out;
* ``physicalResourceId.responsePath`` takes the id from the flattened
  response.

``InstallLatestAwsSdk``, ``apiVersion`` and the logging switches change
nothing here.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError

from .runtime import CustomResourceResponse

if TYPE_CHECKING:  # boto3-stubs: development only
    from botocore.model import Shape

    from .runtime import LocalAws

__all__ = [
    "AWS_SDK_FUNCTION_PREFIX",
    "AWS_SDK_TYPE",
    "SdkCall",
    "boto3_operation",
    "boto3_service",
    "flatten",
    "handle",
]

AWS_SDK_TYPE = "Custom::AWS"
#: The logical id prefix of AwsCustomResource's singleton function (its UUID).
AWS_SDK_FUNCTION_PREFIX = "AWS679f53fac002430cb0da5b7982bd2287"
_PHYSICAL_ID_REFERENCE = "PHYSICAL:RESOURCEID:"
_FAILED_ID = "{logical_id}-sdk-call-failed"
# SDK v2 class names and v3 packages whose boto3 name is not their lower-cased form.
_SERVICE_ALIASES = {
    "cloudwatchlogs": "logs",
    "cloudwatchevents": "events",
    "eventbridge": "events",
    "cognitoidentityserviceprovider": "cognito-idp",
    "cognitoidentityprovider": "cognito-idp",
    "elbv2": "elbv2",
    "elasticloadbalancingv2": "elbv2",
    "elasticloadbalancing": "elb",
    "iotdataplane": "iot-data",
    "sfn": "stepfunctions",
    "lexruntime": "lex-runtime",
    "marketplacecatalog": "marketplace-catalog",
}


class SdkCall:
    """One decoded ``Create``/``Update``/``Delete`` property of a ``Custom::AWS``.

    Parameters
    ----------
    call
        The JSON object CDK wrote (``service``, ``action``, ``parameters``, ...).
    """

    def __init__(self, call: Mapping[str, Any]) -> None:
        self.service = str(call["service"])
        self.action = str(call["action"])
        self.parameters: Any = call.get("parameters") or {}
        self.region: str | None = call.get("region")
        self.assumed_role_arn: str | None = call.get("assumedRoleArn")
        self.ignore_error_codes: str | None = call.get("ignoreErrorCodesMatching")
        physical = call.get("physicalResourceId") or {}
        self.physical_id: str | None = physical.get("id")
        self.physical_id_path: str | None = physical.get("responsePath")
        paths = [call["outputPath"]] if call.get("outputPath") else call.get("outputPaths")
        self.output_paths: list[str] | None = [str(path) for path in paths] if paths is not None else None

    @classmethod
    def decode(cls, text: Any) -> SdkCall | None:
        """The call a property holds (CDK writes a JSON string), or ``None`` when it has none."""
        if not text:
            return None
        return cls(text if isinstance(text, Mapping) else json.loads(text))

    def describe(self) -> str:
        """``Iot.describeEndpoint``, for plans and messages."""
        return f"{self.service}.{self.action}"


def handle(event: Mapping[str, Any], aws: LocalAws, *, account: str, region: str) -> CustomResourceResponse:
    """Answer one CloudFormation event of a ``Custom::AWS`` as CDK's handler would.

    Parameters
    ----------
    event
        The event as CloudFormation sends it.
    aws
        The embedded AWS the call goes to.
    account, region
        The stack's account and region (the function's, in AWS).
    """
    props: Mapping[str, Any] = event.get("ResourceProperties") or {}
    try:
        calls = {name: SdkCall.decode(props.get(name)) for name in ("Create", "Update", "Delete")}
        request = str(event["RequestType"])
        physical_id = _default_physical_id(event, request, calls)
        call = calls.get(request)
        data: dict[str, str] = {}
        if call is not None:
            flat = _invoke(call, aws, physical_id, account=account, region=region)
            data = flat if call.output_paths is None else _only(flat, call.output_paths)
            if call.physical_id_path is not None:
                if call.physical_id_path not in flat:
                    path = call.physical_id_path
                    raise ValueError(f"physicalResourceId.responsePath {path!r} is not in the response")
                physical_id = flat[call.physical_id_path]
        return CustomResourceResponse("SUCCESS", physical_id, "OK", dict(data))
    except (ClientError, BotoCoreError, ValueError, KeyError, TypeError) as error:
        reason = f"missing {error}" if isinstance(error, KeyError) else str(error)
        return CustomResourceResponse("FAILED", _FAILED_ID.format(logical_id=event["LogicalResourceId"]), reason, {})


def _default_physical_id(event: Mapping[str, Any], request: str, calls: Mapping[str, SdkCall | None]) -> str:
    if request == "Create":
        for name in ("Create", "Update", "Delete"):
            call = calls[name]
            if call is not None and call.physical_id is not None:
                return call.physical_id
        return str(event["LogicalResourceId"])
    call = calls.get(request)
    if call is not None and call.physical_id is not None:
        return call.physical_id
    return str(event["PhysicalResourceId"])


def _invoke(call: SdkCall, aws: LocalAws, physical_id: str, *, account: str, region: str) -> dict[str, str]:
    service = boto3_service(call.service)
    where = call.region or region
    if call.assumed_role_arn:
        client = _assumed_client(aws, service, call.assumed_role_arn, account=account, region=where)
    else:
        client = aws.any_client(service, account=account, region=where)
    operation = boto3_operation(client.meta.service_model.operation_names, call.action)
    shape = client.meta.service_model.operation_model(operation).input_shape
    parameters = _coerce(_with_physical_id(call.parameters, physical_id), shape)
    try:
        response = getattr(client, xform_name(operation))(**(parameters or {}))
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if call.ignore_error_codes and re.search(call.ignore_error_codes, code):
            return {}
        raise
    response.pop("ResponseMetadata", None)
    return {"region": where, **flatten(response)}


def _assumed_client(aws: LocalAws, service: str, role_arn: str, *, account: str, region: str) -> Any:
    sts = aws.any_client("sts", account=account, region=region)
    credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName="cdk-iot-job-local-sdk-call")["Credentials"]
    return aws.client_with(
        service,
        {
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"],
        },
        region,
    )


def _with_physical_id(value: Any, physical_id: str) -> Any:
    if value == _PHYSICAL_ID_REFERENCE:
        return physical_id
    if isinstance(value, list):
        return [_with_physical_id(item, physical_id) for item in value]
    if isinstance(value, dict):
        return {key: _with_physical_id(item, physical_id) for key, item in value.items()}
    return value


def _coerce(value: Any, shape: Shape | None) -> Any:
    """``value`` in the types ``shape`` wants, where a string or number stands for them."""
    if shape is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        members = shape.members  # type: ignore[attr-defined]
        return {key: _coerce(item, members.get(key)) for key, item in value.items()}
    if kind == "list" and isinstance(value, list):
        return [_coerce(item, shape.member) for item in value]  # type: ignore[attr-defined]
    if kind == "map" and isinstance(value, dict):
        return {key: _coerce(item, shape.value) for key, item in value.items()}  # type: ignore[attr-defined]
    if kind in ("integer", "long") and isinstance(value, str):
        return int(value)
    if kind in ("float", "double") and isinstance(value, str):
        return float(value)
    if kind == "boolean" and isinstance(value, str):
        return value.lower() == "true"
    if kind == "blob" and isinstance(value, str):
        return value.encode()
    if kind == "string" and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def flatten(value: Any, path: str = "") -> dict[str, str]:
    """A response as CDK flattens it: ``{"a.b": ..., "items.0.name": ...}``, scalars as text.

    Examples
    --------
    >>> flatten({"a": {"b": 1}, "items": [{"name": "x"}], "ok": True})
    {'a.b': '1', 'items.0.name': 'x', 'ok': 'true'}
    """
    if isinstance(value, dict):
        items: list[tuple[str, Any]] = [(str(key), item) for key, item in value.items()]
    elif isinstance(value, list | tuple):
        items = [(str(index), item) for index, item in enumerate(value)]
    else:
        return {path: _text(value)}
    flat: dict[str, str] = {}
    for key, item in items:
        flat.update(flatten(item, f"{path}.{key}" if path else key))
    return flat


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if hasattr(value, "read"):  # a streaming body
        return _text(value.read())
    if value is None:
        return ""
    return str(value)


def _only(flat: Mapping[str, str], paths: list[str]) -> dict[str, str]:
    return {key: item for key, item in flat.items() if any(key.startswith(path) for path in paths)}


def boto3_service(name: str) -> str:
    """boto3's name for an SDK v2 service name or v3 package (``Iot``, ``@aws-sdk/client-iot``: ``iot``).

    Raises
    ------
    ValueError
        When no service of this boto3 goes by that name.
    """
    wanted = re.sub(r"[^a-z0-9]", "", name.lower().removeprefix("@aws-sdk/client-"))
    wanted = re.sub(r"[^a-z0-9]", "", _SERVICE_ALIASES.get(wanted, wanted))
    services = _services()
    if wanted in services:
        return services[wanted]
    raise ValueError(f"service {name!r} is not known to boto3")


@cache
def _services() -> dict[str, str]:
    # boto3's names, compared without dashes: "iot-data" is "iotdata", SDK v2's IotData.
    return {re.sub(r"[^a-z0-9]", "", name): name for name in boto3.session.Session().get_available_services()}


def boto3_operation(operations: list[str], action: str) -> str:
    """The operation an SDK action names (``describeEndpoint``, ``DescribeEndpointCommand``: ``DescribeEndpoint``).

    Raises
    ------
    ValueError
        When the service has no such operation.
    """
    name = action.removesuffix("Command")
    for operation in operations:
        if operation.lower() == name.lower():
            return operation
    raise ValueError(f"action {action!r} is not an operation of this service")
